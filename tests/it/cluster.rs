//! The cluster (issue 19): a `journeydb scheduler` and two `journeydb executor` processes on
//! 127.0.0.1, every shuffle read over Arrow Flight as between machines; the server sends
//! statements' distributed parts there and must answer exactly as alone.

use crate::fixture;
use journeydb::config::Config;
use journeydb::session::Engine;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A scheduler and its executors, stopped when dropped.
pub struct Cluster {
    pub scheduler: String,
    scheduler_process: Child,
    pub executors: Vec<Child>,
    /// Each executor's work directory (its shuffle files).
    pub work_dirs: Vec<std::path::PathBuf>,
    _work: tempfile::TempDir,
}

/// A port nothing listens on, and the next one too (an executor takes both).
fn two_free_ports() -> u16 {
    loop {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        if port < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

/// Waits until something accepts connections on `port`.
fn wait_listening(port: u16, what: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(child.try_wait().expect("wait").is_none(), "{what} exited before listening");
        assert!(Instant::now() < deadline, "{what} is not listening on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Cluster {
    pub fn start(executors: usize) -> Cluster {
        Cluster::start_logged(executors, None)
    }

    /// [`Cluster::start`], with the scheduler's log (at level info) in file `log`.
    pub fn start_logged(executors: usize, log: Option<&std::path::Path>) -> Cluster {
        let work = tempfile::tempdir().expect("work");
        let bin = env!("CARGO_BIN_EXE_journeydb");
        let port = two_free_ports();
        let scheduler = format!("127.0.0.1:{port}");
        let (level, stderr) = match log {
            Some(file) => ("info", Stdio::from(std::fs::File::create(file).expect("log file"))),
            None => ("warn", Stdio::inherit()),
        };
        let mut scheduler_process = Command::new(bin)
            .args(["scheduler", "--listen", &scheduler])
            .env("RUST_LOG", level)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("journeydb scheduler");
        wait_listening(port, "the scheduler", &mut scheduler_process);
        let mut children = vec![];
        let work_dirs: Vec<_> = (0..executors).map(|i| work.path().join(format!("executor-{i}"))).collect();
        for dir in &work_dirs {
            let port = two_free_ports();
            let mut child = Command::new(bin)
                .args(["executor", "--scheduler", &scheduler, "--listen", &format!("127.0.0.1:{port}")])
                .args(["--memory-limit", "512MB", "--concurrent-tasks", "2", "--work-dir"])
                .arg(dir)
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("journeydb executor");
            // The Flight service starts once the executor has registered with the scheduler.
            wait_listening(port, "an executor", &mut child);
            children.push(child);
        }
        Cluster { scheduler, scheduler_process, executors: children, work_dirs, _work: work }
    }

    /// An engine over `data` whose statements' distributed parts run on this cluster.
    pub fn engine(&self, data: &std::path::Path) -> Arc<Engine> {
        let mut config = Config { data_dir: data.to_path_buf(), ..Config::default() };
        config.cluster.scheduler = Some(self.scheduler.clone());
        config.cluster.force_remote_read = true;
        Engine::new(config).expect("engine")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in self.executors.iter_mut().chain([&mut self.scheduler_process]) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

async fn explain(engine: &Arc<Engine>, settings: &str, sql: &str) -> String {
    let session = engine.session("journey", "journeydb").expect("session");
    let mut db = crate::slt::InProcess::new(session);
    use sqllogictest::AsyncDB;
    if !settings.is_empty() {
        db.run(settings).await.expect("set");
    }
    match db.run(&format!("EXPLAIN {sql}")).await.expect("explain") {
        sqllogictest::DBOutput::Rows { rows, .. } => rows.iter().map(|r| r.join(" ")).collect::<Vec<_>>().join("\n"),
        _ => panic!("EXPLAIN gave no rows"),
    }
}

/// Every `.slt` file and every cookbook example answers on a cluster exactly as alone, and the
/// plans show what ran there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_corpus_and_the_cookbook_answer_the_same_on_a_cluster() {
    let cluster = Cluster::start(2);
    let dir = fixture::data_dir();
    let engine = cluster.engine(dir.path());
    let grouped = "SELECT event_name, count(*) FROM events GROUP BY event_name";
    let plan = explain(&engine, "", grouped).await;
    assert!(plan.contains("ClusterExec: scheduler="), "{plan}");
    let plan = explain(&engine, "SET journeydb.cluster = off", grouped).await;
    assert!(!plan.contains("ClusterExec"), "{plan}");
    // What reads only the catalog or constants stays in the server.
    let plan = explain(&engine, "", "SELECT relname FROM pg_catalog.pg_class").await;
    assert!(!plan.contains("ClusterExec"), "{plan}");
    // The journey operators run on the executors: window_funnel's grouping, the per-key
    // window evaluation.
    for (operator, sql) in [
        (
            "FunnelAggregateExec",
            "SELECT person, window_funnel(INTERVAL '1 hour', ts, node = 'home', node = 'signup') FROM steps GROUP BY person",
        ),
        (
            "HashWindowExec",
            "SELECT person, ts, sessionize(ts) OVER (PARTITION BY person ORDER BY ts) AS s FROM steps ORDER BY 1, 2, 3",
        ),
    ] {
        let plan = explain(&engine, "", sql).await;
        let (sent, operator_at) = (plan.find("ClusterExec: scheduler="), plan.find(operator));
        assert!(sent.is_some() && operator_at.is_some() && sent < operator_at, "{plan}");
    }
    // A report's partial stage runs on the executors with its input, its final stage in the
    // server over the states sent back.
    let report = "SELECT * FROM funnel('home', 'signup', source => 'steps', person => 'person', time => 'ts', \
                  event => 'node')";
    let plan = explain(&engine, "", report).await;
    let at = |name: &str| plan.find(name).unwrap_or_else(|| panic!("no {name} in {plan}"));
    assert!(
        at("ReportFinalExec") < at("ClusterExec: scheduler=") && at("ClusterExec") < at("ReportPartialExec"),
        "{plan}"
    );
    assert_eq!(plan.matches("ClusterExec").count(), 1, "{plan}");
    let plan = explain(&engine, "SET journeydb.cluster = off", report).await;
    assert!(plan.contains("ReportPartialExec") && !plan.contains("ClusterExec"), "{plan}");
    // A table journeydb wrote (a Delta table) is read as its version's Parquet files there.
    {
        use sqllogictest::AsyncDB;
        let mut db = crate::slt::InProcess::new(engine.session("journey", "journeydb").expect("session"));
        db.run("CREATE TABLE written AS SELECT event_name, channel FROM events").await.expect("ctas");
        db.run("INSERT INTO written SELECT event_name, channel FROM events LIMIT 10").await.expect("insert");
    }
    let on_written = "SELECT channel, count(*) FROM written GROUP BY channel";
    let plan = explain(&engine, "", on_written).await;
    assert!(plan.contains("ClusterExec: scheduler=") && !plan.contains("DeltaScan"), "{plan}");
    let plan = explain(&engine, "SET journeydb.cluster = off", on_written).await;
    assert!(plan.contains("DeltaScan"), "{plan}");
    assert_eq!(answer(&engine, "", &format!("{on_written} ORDER BY 1")).await, {
        answer(&engine, "SET journeydb.cluster = off", &format!("{on_written} ORDER BY 1")).await
    });
    answer(&engine, "", "DROP TABLE written").await;
    for file in crate::slt::slt_files() {
        let started = Instant::now();
        crate::slt::run_in_process(&engine, &file).await;
        eprintln!("{} on the cluster: {:?}", file.display(), started.elapsed());
    }
    crate::examples::answer_as_recorded(&engine).await;
}

/// The reports' determinism test over random events (ties in time, several row orders and file
/// splits) with the cluster among the engines: the cluster at 1 and 4 partitions per stage
/// answers as the server alone does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reports_answer_the_same_on_random_events_on_a_cluster() {
    let cluster = Cluster::start(2);
    crate::journey::reports_agree_on_random_events(|dir| {
        let mut engines = vec![("alone".to_string(), fixture::engine(dir, 8192, 2))];
        for (partitions, batch_size) in [(1, 8192), (4, 3)] {
            let mut config =
                Config { data_dir: dir.to_path_buf(), target_partitions: partitions, batch_size, ..Config::default() };
            config.cluster.scheduler = Some(cluster.scheduler.clone());
            config.cluster.force_remote_read = true;
            engines.push((format!("cluster {partitions}/{batch_size}"), Engine::new(config).expect("engine")));
        }
        engines
    })
    .await;
}

/// One executor killed with SIGKILL while a query runs: the answer is still the right one
/// (Ballista reruns the lost tasks on the other executor, or the job fails and runs in the
/// server), nothing hangs, and the next query runs on the executor left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_executor_costs_time_not_the_answer() {
    let mut cluster = Cluster::start(2);
    let dir = tempfile::tempdir().expect("tmp");
    journeydb::demo::generate_to_dir(
        dir.path(),
        &journeydb::demo::DemoOptions { events: 600_000, seed: 7, events_per_file: 50_000, ..Default::default() },
    )
    .expect("demo");
    let engine = cluster.engine(dir.path());
    let sql = "SELECT channel, count(DISTINCT anonymous_id), count(*), CAST(sum(revenue) AS BIGINT) \
               FROM events GROUP BY channel ORDER BY channel";
    let alone = answer(&engine, "SET journeydb.cluster = off", sql).await;
    assert_eq!(answer(&engine, "", sql).await, alone);
    // The first executor to write shuffle files of the new job is killed.
    let jobs = |dir: &std::path::Path| -> std::collections::BTreeSet<std::ffi::OsString> {
        std::fs::read_dir(dir).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default()
    };
    let before: Vec<_> = cluster.work_dirs.iter().map(|d| jobs(d)).collect();
    let running = {
        let engine = engine.clone();
        tokio::spawn(async move { answer(&engine, "", sql).await })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let busy = loop {
        let new = cluster.work_dirs.iter().zip(&before).position(|(d, b)| !jobs(d).is_subset(b));
        if let Some(i) = new {
            break i;
        }
        assert!(Instant::now() < deadline, "no executor got a task");
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let mut victim = cluster.executors.remove(busy);
    victim.kill().expect("SIGKILL");
    victim.wait().expect("reaped");
    assert!(!running.is_finished(), "the query ended before the executor was killed: make it longer");
    let during = tokio::time::timeout(Duration::from_secs(120), running).await.expect("no hang").expect("task");
    assert_eq!(during, alone);
    let after = tokio::time::timeout(Duration::from_secs(120), answer(&engine, "", sql)).await.expect("no hang");
    assert_eq!(after, alone);
}

/// A statement stopped by `statement_timeout` or a cancel request stops its job on the cluster
/// too: the client gets 57014 at once, the scheduler is told to cancel the job, and the session
/// goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_statement_cancels_its_job() {
    let logs = tempfile::tempdir().expect("tmp");
    let log = logs.path().join("scheduler.log");
    let cluster = Cluster::start_logged(2, Some(&log));
    let dir = tempfile::tempdir().expect("tmp");
    journeydb::demo::generate_to_dir(
        dir.path(),
        &journeydb::demo::DemoOptions { events: 600_000, seed: 7, events_per_file: 50_000, ..Default::default() },
    )
    .expect("demo");
    let scheduler = cluster.scheduler.clone();
    let server = fixture::server_with(dir.path(), move |c| {
        c.cluster.scheduler = Some(scheduler);
        c.cluster.force_remote_read = true;
    })
    .await;
    let client = fixture::connect(&server).await;
    client.batch_execute("SET statement_timeout = 150").await.expect("set");
    let heavy = "SELECT count(DISTINCT (anonymous_id, event_time, page_url)) FROM events";
    let started = Instant::now();
    let err = client.query(heavy, &[]).await.expect_err("stopped by statement_timeout");
    assert_eq!(err.code(), Some(&tokio_postgres::error::SqlState::QUERY_CANCELED), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&log).expect("log").contains("Received cancellation request for job") {
        assert!(Instant::now() < deadline, "the scheduler was never told to cancel the job");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client.batch_execute("SET statement_timeout = 0").await.expect("reset");
    let n: i64 =
        client.query_one("SELECT count(*) FROM events WHERE channel = 'Email'", &[]).await.expect("next").get(0);
    assert!(n > 0);
    server.stop().await;
}

/// The rows of `sql` in a new session of `engine`, after `settings` (none for a statement).
async fn answer(engine: &Arc<Engine>, settings: &str, sql: &str) -> Vec<Vec<String>> {
    use sqllogictest::AsyncDB;
    let mut db = crate::slt::InProcess::new(engine.session("journey", "journeydb").expect("session"));
    if !settings.is_empty() {
        db.run(settings).await.expect("set");
    }
    match db.run(sql).await.expect(sql) {
        sqllogictest::DBOutput::Rows { rows, .. } => rows,
        _ => vec![],
    }
}

/// A server whose scheduler is not there: what would run on the cluster fails with 58030 and a
/// message naming the scheduler, at once; what runs in the server still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_scheduler_is_58030_not_a_hang() {
    let port = two_free_ports();
    let dir = fixture::data_dir();
    let server =
        fixture::server_with(dir.path(), move |c| c.cluster.scheduler = Some(format!("127.0.0.1:{port}"))).await;
    let client = fixture::connect(&server).await;
    let started = Instant::now();
    let err = client.query("SELECT channel, count(*) FROM events GROUP BY channel", &[]).await.expect_err("no cluster");
    assert_eq!(err.code(), Some(&tokio_postgres::error::SqlState::IO_ERROR), "{err}");
    let message = err.as_db_error().map(|e| e.message().to_string()).unwrap_or_default();
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
    let n: i64 = client.query_one("SELECT count(*) FROM pg_catalog.pg_class", &[]).await.expect("catalog").get(0);
    assert!(n > 0);
    client.batch_execute("SET journeydb.cluster = off").await.expect("off");
    client.query("SELECT channel, count(*) FROM events GROUP BY channel", &[]).await.expect("in the server");
    server.stop().await;
}

/// `[cluster] partitions` sets how many tasks each stage of what is sent has (planned only:
/// `EXPLAIN` reaches no scheduler); a server without a cluster plans as it did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_partitions_set_the_tasks_per_stage() {
    let dir = fixture::data_dir();
    let engine = |scheduler: Option<&str>| {
        let mut config = Config { data_dir: dir.path().to_path_buf(), target_partitions: 2, ..Config::default() };
        config.cluster.scheduler = scheduler.map(String::from);
        config.cluster.partitions = 7;
        Engine::new(config).expect("engine")
    };
    let grouped = "SELECT event_name, count(*) FROM events GROUP BY event_name";
    let plan = explain(&engine(Some("127.0.0.1:9")), "", grouped).await;
    assert!(plan.contains("ClusterExec") && plan.contains("Hash([event_name@0], 7)"), "{plan}");
    let plan = explain(&engine(None), "", grouped).await;
    assert!(!plan.contains("ClusterExec") && plan.contains("Hash([event_name@0], 2)"), "{plan}");
}
