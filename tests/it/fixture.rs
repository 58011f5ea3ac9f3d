//! Test fixtures: a data directory with the demo `events` table and small hand-made tables,
//! and a running server over it.

use datafusion::arrow::array::{ArrayRef, Decimal128Array, Int64Array, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use journeydb::config::Config;
use journeydb::demo::{DemoOptions, generate_to_dir};
use journeydb::server::{RunningServer, start};
use journeydb::session::Engine;
use std::path::Path;
use std::sync::Arc;

/// Events in the fixture's demo table (exact: `.slt` files count them).
pub const DEMO_EVENTS: u64 = 20_000;
pub const DEMO_SEED: u64 = 7;

pub fn write_parquet(path: &Path, batch: &RecordBatch) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let file = std::fs::File::create(path).expect("create");
    let mut w = ArrowWriter::try_new(file, batch.schema(), None).expect("writer");
    w.write(batch).expect("write");
    w.close().expect("close");
}

/// A tiny journey table with hand-checkable values, in two hive partitions.
pub fn write_touches(root: &Path) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("person", DataType::Utf8, false),
        Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), false),
        Field::new("channel", DataType::Utf8, true),
        Field::new("amount", DataType::Int64, true),
    ]));
    let day = |d: i64, h: i64| 1_735_689_600_000_000 + d * 86_400_000_000 + h * 3_600_000_000;
    let parts = [
        (
            "2025-01-01",
            vec!["p1", "p1", "p2"],
            vec![day(0, 1), day(0, 2), day(0, 3)],
            vec![Some("Organic Search"), Some("Paid Search"), None],
            vec![None, Some(100), None],
        ),
        (
            "2025-01-02",
            vec!["p2", "p3"],
            vec![day(1, 1), day(1, 5)],
            vec![Some("Email"), Some("Direct")],
            vec![Some(250), Some(40)],
        ),
    ];
    for (date, person, ts, channel, amount) in parts {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(person)),
            Arc::new(TimestampMicrosecondArray::from(ts)),
            Arc::new(StringArray::from(channel)),
            Arc::new(Int64Array::from(amount)),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns).expect("batch");
        write_parquet(&root.join("touches").join(format!("day={date}")).join("part-0.parquet"), &batch);
    }
}

/// `steps`: hand-made page paths for `journey_paths` (person, ts, node), split over two files so
/// that people's rows arrive from different files. Minutes after 2025-01-01 00:00 UTC:
/// u1 home 0, pricing 1, signup 2, pricing 3; u2 home 0, home 1, pricing 2, signup 3;
/// u3 /blog/a 0, /blog/b 1, home 50; u4 signup 0, pricing 0 (a tie); u5 home 0;
/// u6 NULL 0, home 1.
pub fn write_steps(root: &Path) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("person", DataType::Utf8, false),
        Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
        Field::new("node", DataType::Utf8, true),
    ]));
    let rows: [&[(&str, i64, Option<&str>)]; 2] = [
        &[
            ("u1", 0, Some("home")),
            ("u2", 3, Some("signup")),
            ("u1", 2, Some("signup")),
            ("u3", 0, Some("/blog/a")),
            ("u4", 0, Some("signup")),
            ("u6", 0, None),
            ("u2", 0, Some("home")),
        ],
        &[
            ("u1", 1, Some("pricing")),
            ("u2", 1, Some("home")),
            ("u1", 3, Some("pricing")),
            ("u2", 2, Some("pricing")),
            ("u3", 1, Some("/blog/b")),
            ("u3", 50, Some("home")),
            ("u4", 0, Some("pricing")),
            ("u5", 0, Some("home")),
            ("u6", 1, Some("home")),
        ],
    ];
    for (i, rows) in rows.iter().enumerate() {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())),
            Arc::new(
                TimestampMicrosecondArray::from(
                    rows.iter().map(|r| 1_735_689_600_000_000 + r.1 * 60_000_000).collect::<Vec<_>>(),
                )
                .with_timezone("UTC"),
            ),
            Arc::new(StringArray::from(rows.iter().map(|r| r.2).collect::<Vec<_>>())),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns).expect("batch");
        write_parquet(&root.join("steps").join(format!("part-{i}.parquet")), &batch);
    }
}

/// `journeys`: hand-made customer journeys for the `attribute` report (person, ts, event,
/// channel, milestone, revenue numeric(12,2)), split over two files. Days after 2025-01-01:
/// a: Organic Search visit 0, Paid Search visit 10, form_submit 10 +1h (lead), Direct live_chat
///    17 (opportunity), Direct phone_call 24 and purchase 100.00 at the same second;
/// b: Email visit 0, purchase 50.00 1, Email visit 10, purchase 30.00 11;
/// c: purchase 20.00 at 5 (no touch); d: Display visit 3 (never converts);
/// e: Paid Search visit 0, purchase 10.00 at 100 (beyond a 90-day lookback);
/// f: Display visit 1, Email visit 2, purchase 40.00 3, Display visit 4.
pub fn write_journeys(root: &Path) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("person", DataType::Utf8, false),
        Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), false),
        Field::new("event", DataType::Utf8, false),
        Field::new("channel", DataType::Utf8, true),
        Field::new("milestone", DataType::Utf8, true),
        Field::new("revenue", DataType::Decimal128(12, 2), true),
    ]));
    type Row = (&'static str, i64, &'static str, Option<&'static str>, Option<&'static str>, Option<i128>);
    let hour = |d: i64, h: i64| 1_735_689_600_000_000 + d * 86_400_000_000 + h * 3_600_000_000;
    let rows: [Vec<Row>; 2] = [
        vec![
            ("a", hour(24, 0), "purchase", None, None, Some(10000)),
            ("a", hour(0, 0), "visit", Some("Organic Search"), None, None),
            ("b", hour(0, 0), "visit", Some("Email"), None, None),
            ("a", hour(17, 0), "live_chat", Some("Direct"), Some("opportunity"), None),
            ("c", hour(5, 0), "purchase", None, None, Some(2000)),
            ("e", hour(100, 0), "purchase", None, None, Some(1000)),
            ("f", hour(4, 0), "visit", Some("Display"), None, None),
            ("b", hour(11, 0), "purchase", None, None, Some(3000)),
        ],
        vec![
            ("a", hour(10, 1), "form_submit", None, Some("lead"), None),
            ("a", hour(10, 0), "visit", Some("Paid Search"), None, None),
            ("a", hour(24, 0), "phone_call", Some("Direct"), None, None),
            ("b", hour(1, 0), "purchase", None, None, Some(5000)),
            ("b", hour(10, 0), "visit", Some("Email"), None, None),
            ("d", hour(3, 0), "visit", Some("Display"), None, None),
            ("e", hour(0, 0), "visit", Some("Paid Search"), None, None),
            ("f", hour(3, 0), "purchase", None, None, Some(4000)),
            ("f", hour(2, 0), "visit", Some("Email"), None, None),
            ("f", hour(1, 0), "visit", Some("Display"), None, None),
        ],
    ];
    for (i, rows) in rows.iter().enumerate() {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())),
            Arc::new(TimestampMicrosecondArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())),
            Arc::new(StringArray::from(rows.iter().map(|r| r.2).collect::<Vec<_>>())),
            Arc::new(StringArray::from(rows.iter().map(|r| r.3).collect::<Vec<_>>())),
            Arc::new(StringArray::from(rows.iter().map(|r| r.4).collect::<Vec<_>>())),
            Arc::new(
                Decimal128Array::from(rows.iter().map(|r| r.5).collect::<Vec<_>>())
                    .with_precision_and_scale(12, 2)
                    .expect("decimal"),
            ),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns).expect("batch");
        write_parquet(&root.join("journeys").join(format!("part-{i}.parquet")), &batch);
    }
}

/// A data directory holding `events` (demo, 20000 events, seed 7), `touches`, `steps` and
/// `journeys`.
pub fn data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    generate_to_dir(
        dir.path(),
        &DemoOptions { events: DEMO_EVENTS, seed: DEMO_SEED, events_per_file: 8_000, ..Default::default() },
    )
    .expect("demo");
    write_touches(dir.path());
    write_steps(dir.path());
    write_journeys(dir.path());
    dir
}

pub fn engine(dir: &Path, batch_size: usize, partitions: usize) -> Arc<Engine> {
    Engine::new(Config { data_dir: dir.to_path_buf(), batch_size, target_partitions: partitions, ..Config::default() })
        .expect("engine")
}

/// Runs `test` on the server's runtime, whose threads have the server's stacks: the journey
/// model's SQL with a CRM and accounts is deep to plan in a debug build.
pub fn on_server_runtime(test: impl std::future::Future<Output = ()> + Send + 'static) {
    let runtime = journeydb::server::runtime("test").expect("runtime");
    runtime.block_on(runtime.spawn(test)).expect("test");
}

/// A server over `dir` with the configuration changed by `change`.
pub async fn server_with(dir: &Path, change: impl FnOnce(&mut Config)) -> RunningServer {
    let mut config = Config { data_dir: dir.to_path_buf(), ..Config::default() };
    change(&mut config);
    let engine = Engine::new(config).expect("engine");
    start(engine, "127.0.0.1:0".parse().expect("addr")).await.expect("server")
}

/// A self-signed certificate for localhost and 127.0.0.1 made by openssl in `dir`: the
/// certificate's and the key's paths (PEM).
pub fn self_signed_cert(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    (cert, key)
}

/// A server on 127.0.0.1 with a free port, over `dir`.
pub async fn server(dir: &Path) -> RunningServer {
    start(engine(dir, 8192, 0), "127.0.0.1:0".parse().expect("addr")).await.expect("server")
}

pub async fn connect(server: &RunningServer) -> tokio_postgres::Client {
    connect_as(server, "journey").await
}

pub async fn connect_as(server: &RunningServer, user: &str) -> tokio_postgres::Client {
    let conn_str = format!("host=127.0.0.1 port={} user={user} dbname=journeydb", server.addr.port());
    let (client, connection) = tokio_postgres::connect(&conn_str, tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// The rows of a simple-protocol answer, as text.
pub fn text_rows(messages: Vec<tokio_postgres::SimpleQueryMessage>) -> Vec<Vec<Option<String>>> {
    messages
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect()
}

/// Runs `sql` in the simple protocol: its rows as text.
pub async fn texts(client: &tokio_postgres::Client, sql: &str) -> Vec<Vec<Option<String>>> {
    text_rows(client.simple_query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e:?}")))
}

/// The tests' Python (ChannelAttribution, the PostgreSQL drivers): `JOURNEYDB_TEST_PYTHON`,
/// else the project's test venv.
pub fn python() -> std::path::PathBuf {
    venv_tool("JOURNEYDB_TEST_PYTHON", ".venv-test/bin/python")
}

/// The Python whose drivers are the newest releases (`.venv-test-latest`, upgraded by
/// scripts/install-test-deps.sh): `JOURNEYDB_TEST_PYTHON_LATEST`, else the project's venv.
pub fn python_latest() -> std::path::PathBuf {
    venv_tool("JOURNEYDB_TEST_PYTHON_LATEST", ".venv-test-latest/bin/python")
}

/// Apache Superset's Python (`.venv-superset`): `JOURNEYDB_TEST_SUPERSET_PYTHON`, else the
/// project's venv.
pub fn superset_python() -> std::path::PathBuf {
    venv_tool("JOURNEYDB_TEST_SUPERSET_PYTHON", ".venv-superset/bin/python")
}

/// dbt (dbt-core and dbt-postgres 1.11): `JOURNEYDB_TEST_DBT`, else the project's dbt venv.
pub fn dbt() -> std::path::PathBuf {
    venv_tool("JOURNEYDB_TEST_DBT", ".venv-dbt/bin/dbt")
}

fn venv_tool(var: &str, relative: &str) -> std::path::PathBuf {
    if let Ok(p) = std::env::var(var) {
        return p.into();
    }
    let p = root().join(relative);
    assert!(p.exists(), "{} is missing: run scripts/install-test-deps.sh (scripts/test.sh does)", p.display());
    p
}

/// Runs `tests/python/<script>` against the server on `port` with the tests' Python; it must
/// end with "all ok". Returns its output.
pub async fn run_python(script: &str, port: u16) -> String {
    run_python_with(python(), script, port).await
}

/// [`run_python`] with another Python (`python_latest()`: the drivers' newest releases).
pub async fn run_python_with(python: std::path::PathBuf, script: &str, port: u16) -> String {
    run_script(python, script, vec![port.to_string()]).await
}

/// Runs `tests/python/<script>` with `python` and `args`; it must end with "all ok". Returns
/// its output.
pub async fn run_script(python: std::path::PathBuf, script: &str, args: Vec<String>) -> String {
    let path = root().join("tests/python").join(script);
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python).arg(path).args(args).output().expect("python runs")
    })
    .await
    .expect("python");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("all ok"), "{text}");
    text
}

/// Runs `tests/python/<script>` with `args`: its standard output's lines (it must succeed).
pub async fn run_script_lines(python: std::path::PathBuf, script: &str, args: Vec<String>) -> Vec<String> {
    let path = root().join("tests/python").join(script);
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python).arg(path).args(args).output().expect("python runs")
    })
    .await
    .expect("python");
    assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

/// The project's folder, where the tests' files are (`sql/`, `tests/`, `scripts/`). Cargo and
/// nextest say it at run time; the folder the binary was compiled in is only the fallback, since
/// a test binary built from another clone of the same sources (CI's, sharing the target
/// directory) is reused as it is and would read that clone's files.
pub fn root() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// Starts `command` (a `journeydb serve` with `--listen 127.0.0.1:0`, or one wrapped by another
/// program) and returns it with the port it printed it listens on; its output is drained so it
/// never blocks on it.
pub fn spawn_listening(command: std::process::Command) -> (std::process::Child, u16) {
    spawn_listening_logged(command, std::process::Stdio::null())
}

/// [`spawn_listening`], with the server's standard error (its panics, if any) going to `stderr`.
pub fn spawn_listening_logged(
    mut command: std::process::Command,
    stderr: std::process::Stdio,
) -> (std::process::Child, u16) {
    use std::io::BufRead;
    let mut child = command.stdout(std::process::Stdio::piped()).stderr(stderr).spawn().expect("server binary");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = std::io::BufReader::new(stdout).lines();
    let port = loop {
        let line = lines.next().expect("server exited before listening").expect("line");
        if let Some(addr) = line.strip_prefix("journeydb listening on ") {
            break addr.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, port)
}
