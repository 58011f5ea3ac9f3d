//! Writes over the wire with tokio-postgres: COPY FROM STDIN (text, CSV, binary) and COPY TO
//! STDOUT, failed copies leaving nothing, readers during rewrites seeing whole versions, and
//! the crash test: the server killed with SIGKILL in the middle of a COPY and of a CREATE
//! TABLE AS, restarted on the same data directory.

use crate::fixture;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use std::path::Path;
use std::process::{Child, Command};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;

/// Every file or folder under `dir` whose name ends in `.tmp` (what an unfinished write leaves).
pub(crate) fn staged_leftovers(dir: &Path) -> Vec<String> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.ends_with(".tmp") {
                out.push(e.path().display().to_string());
            }
            if e.path().is_dir() && !e.path().is_symlink() {
                stack.push(e.path());
            }
        }
    }
    out
}

async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.expect(sql).get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_from_stdin_in_every_format_and_copy_to_stdout() {
    let dir = fixture::data_dir();
    let server = fixture::server(dir.path()).await;
    copies_in_every_format(&server).await;
}

/// The body of [`copy_from_stdin_in_every_format_and_copy_to_stdout`], against any server (the tests of `s3.rs` run it on S3).
pub(crate) async fn copies_in_every_format(server: &journeydb::server::RunningServer) {
    let client = fixture::connect(server).await;
    client
        .batch_execute("CREATE SCHEMA c; CREATE TABLE c.t (id BIGINT, name TEXT, ts TIMESTAMP, amount DOUBLE PRECISION, ok BOOLEAN)")
        .await
        .expect("create");

    // Text: tab-separated, \N, backslash escapes, a column list (the rest NULL).
    let sink = client.copy_in("COPY c.t (id, name, ts) FROM STDIN").await.expect("copy text");
    futures::pin_mut!(sink);
    sink.send(Bytes::from_static(
        b"1\ttab\\there\t2025-01-01 10:00:00\n2\t\\N\t\\N\n3\tback\\\\slash\\nnl\t2025-01-02 00:00:00\n",
    ))
    .await
    .expect("send");
    assert_eq!(sink.finish().await.expect("finish"), 3);

    // CSV with a header, quotes, embedded delimiters and newlines, data split mid-record.
    let sink = client.copy_in("COPY c.t FROM STDIN WITH (FORMAT csv, HEADER true)").await.expect("copy csv");
    futures::pin_mut!(sink);
    for part in
        ["id,name,ts,amount,ok\n4,\"a,b\",2025-02-01 00:00:00,1.5,t\n5,\"say \"\"hi\"\"", "\nthere\",,,f\n6,,,,\n"]
    {
        sink.send(Bytes::from(part.as_bytes().to_vec())).await.expect("send");
    }
    assert_eq!(sink.finish().await.expect("finish"), 3);

    // Binary, as asyncpg and BinaryCopyInWriter send it.
    let sink = client.copy_in("COPY c.t (id, name, amount, ok) FROM STDIN (FORMAT binary)").await.expect("copy binary");
    let writer = BinaryCopyInWriter::new(sink, &[Type::INT8, Type::TEXT, Type::FLOAT8, Type::BOOL]);
    futures::pin_mut!(writer);
    writer.as_mut().write(&[&7i64, &"seven", &7.25f64, &true]).await.expect("row");
    writer.as_mut().write(&[&8i64, &None::<&str>, &None::<f64>, &None::<bool>]).await.expect("row");
    assert_eq!(writer.finish().await.expect("finish"), 2);

    let rows = client.query("SELECT id, name, ts, amount, ok FROM c.t ORDER BY id", &[]).await.expect("read");
    let got: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{}|{:?}|{:?}|{:?}|{:?}",
                r.get::<_, i64>(0),
                r.get::<_, Option<String>>(1),
                r.get::<_, Option<chrono::NaiveDateTime>>(2).map(|t| t.to_string()),
                r.get::<_, Option<f64>>(3),
                r.get::<_, Option<bool>>(4)
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            "1|Some(\"tab\\there\")|Some(\"2025-01-01 10:00:00\")|None|None",
            "2|None|None|None|None",
            "3|Some(\"back\\\\slash\\nnl\")|Some(\"2025-01-02 00:00:00\")|None|None",
            "4|Some(\"a,b\")|Some(\"2025-02-01 00:00:00\")|Some(1.5)|Some(true)",
            "5|Some(\"say \\\"hi\\\"\\nthere\")|None|None|Some(false)",
            "6|None|None|None|None",
            "7|Some(\"seven\")|None|Some(7.25)|Some(true)",
            "8|None|None|None|None",
        ]
    );

    // COPY TO STDOUT: CSV with a header, text, and binary read back through COPY FROM.
    let csv = copy_out(
        &client,
        "COPY (SELECT id, name, ok FROM c.t WHERE id IN (2, 4, 5) ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)",
    )
    .await;
    assert_eq!(csv, "id,name,ok\n2,,\n4,\"a,b\",t\n5,\"say \"\"hi\"\"\nthere\",f\n");
    let text = copy_out(&client, "COPY (SELECT id, name FROM c.t WHERE id IN (1, 2, 3) ORDER BY id) TO STDOUT").await;
    assert_eq!(text, "1\ttab\\there\n2\t\\N\n3\tback\\\\slash\\nnl\n");
    let binary = copy_out_bytes(&client, "COPY c.t TO STDOUT (FORMAT binary)").await;
    client.batch_execute("CREATE TABLE c.t2 AS SELECT * FROM c.t WHERE FALSE").await.expect("empty copy");
    let sink = client.copy_in("COPY c.t2 FROM STDIN (FORMAT binary)").await.expect("copy back");
    futures::pin_mut!(sink);
    sink.send(Bytes::from(binary)).await.expect("send");
    assert_eq!(sink.finish().await.expect("finish"), 8);
    let same = count(&client, "SELECT count(*) FROM (SELECT * FROM c.t EXCEPT ALL SELECT * FROM c.t2) d").await;
    assert_eq!(same, 0, "binary COPY out and in round-trips every value");
}

async fn copy_out_bytes(client: &tokio_postgres::Client, sql: &str) -> Vec<u8> {
    let stream = client.copy_out(sql).await.expect(sql);
    futures::pin_mut!(stream);
    let mut out = vec![];
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.expect("chunk"));
    }
    out
}

async fn copy_out(client: &tokio_postgres::Client, sql: &str) -> String {
    String::from_utf8(copy_out_bytes(client, sql).await).expect("utf8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_copies_leave_nothing_and_the_connection_serves_on() {
    let dir = fixture::data_dir();
    let server = fixture::server(dir.path()).await;
    failed_copies_leave_nothing(&server).await;
    assert!(staged_leftovers(dir.path()).is_empty(), "{:?}", staged_leftovers(dir.path()));
}

/// The body of [`failed_copies_leave_nothing_and_the_connection_serves_on`], against any server (the tests of `s3.rs` run it on S3).
pub(crate) async fn failed_copies_leave_nothing(server: &journeydb::server::RunningServer) {
    let client = fixture::connect(server).await;
    client.batch_execute("CREATE TABLE f (id INT, name TEXT); INSERT INTO f VALUES (1, 'one')").await.expect("create");

    // A bad value in the third row: the error names the line and column; no row is added.
    let sink = client.copy_in("COPY f FROM STDIN (FORMAT csv)").await.expect("copy");
    futures::pin_mut!(sink);
    sink.send(Bytes::from_static(b"2,two\n3,three\nfour,4\n5,five\n")).await.expect("send");
    let err = sink.finish().await.expect_err("bad integer");
    assert_eq!(err.code(), Some(&SqlState::INVALID_TEXT_REPRESENTATION), "{err:?}");
    let msg = err.as_db_error().map(|e| e.message().to_string()).unwrap_or_default();
    assert!(msg.contains("\"four\"") && msg.contains("line 3") && msg.contains("column id"), "{msg}");
    assert_eq!(count(&client, "SELECT count(*) FROM f").await, 1);

    // Too many columns.
    let sink = client.copy_in("COPY f FROM STDIN").await.expect("copy");
    futures::pin_mut!(sink);
    sink.send(Bytes::from_static(b"2\ttwo\textra\n")).await.expect("send");
    let err = sink.finish().await.expect_err("extra column");
    assert_eq!(err.code(), Some(&SqlState::BAD_COPY_FILE_FORMAT), "{err:?}");

    // The client gives up (CopyFail when the sink is dropped unfinished).
    {
        let sink = client.copy_in("COPY f FROM STDIN").await.expect("copy");
        futures::pin_mut!(sink);
        sink.send(Bytes::from_static(b"2\ttwo\n")).await.expect("send");
    }
    assert_eq!(count(&client, "SELECT count(*) FROM f").await, 1);

    // Errors before any data: unknown table and column, COPY from a file. (Each on a new
    // connection: after a copy_in that fails to start, tokio-postgres sends CopyFail and a
    // second Sync, and reads the extra ReadyForQuery as the next statement's.)
    for (sql, code) in [
        ("COPY f (nope) FROM STDIN", SqlState::UNDEFINED_COLUMN),
        ("COPY nope FROM STDIN", SqlState::UNDEFINED_TABLE),
        ("COPY f FROM '/etc/passwd'", SqlState::INSUFFICIENT_PRIVILEGE),
    ] {
        let fresh = fixture::connect(server).await;
        let err = fresh.copy_in::<_, Bytes>(sql).await.map(|_| ()).expect_err(sql);
        assert_eq!(err.code(), Some(&code), "{sql}: {err:?}");
        let err = fixture::connect(server).await.simple_query(sql).await.map(|_| ()).expect_err(sql);
        assert_eq!(err.code(), Some(&code), "simple protocol: {sql}: {err:?}");
    }
    assert_eq!(count(&client, "SELECT count(*) FROM f").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_see_the_old_or_the_new_version_never_a_mix() {
    let dir = fixture::data_dir();
    let server = fixture::server(dir.path()).await;
    readers_see_whole_versions(&server).await;
}

/// The body of [`readers_see_the_old_or_the_new_version_never_a_mix`], against any server (the tests of `s3.rs` run it on S3).
pub(crate) async fn readers_see_whole_versions(server: &journeydb::server::RunningServer) {
    let writer = fixture::connect(server).await;
    writer
        .batch_execute("CREATE TABLE v AS SELECT 1 AS k FROM generate_series(1, 1000); INSERT INTO v SELECT 1 FROM generate_series(1, 1000)")
        .await
        .expect("create");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = vec![];
    for _ in 0..3 {
        let client = fixture::connect(server).await;
        let stop = stop.clone();
        readers.push(tokio::spawn(async move {
            let mut seen = std::collections::BTreeSet::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = client.query_one("SELECT count(*), count(DISTINCT k), min(k) FROM v", &[]).await.expect("read");
                seen.insert((r.get::<_, i64>(0), r.get::<_, i64>(1)));
            }
            seen
        }));
    }
    // Each step moves between whole states: 2000 rows of one value, or 2000 + 2000 of two.
    for round in 0..6 {
        let (old, new) = if round % 2 == 0 { (1, 2) } else { (2, 1) };
        writer
            .batch_execute(&format!("INSERT INTO v SELECT {new} FROM generate_series(1, 2000)"))
            .await
            .expect("insert");
        writer.batch_execute(&format!("DELETE FROM v WHERE k = {old}")).await.expect("delete");
        // UPDATE publishes whole versions too: 2000 rows of one value throughout.
        writer.batch_execute(&format!("UPDATE v SET k = k + 10 WHERE k = {new}")).await.expect("update");
        writer.batch_execute(&format!("UPDATE v SET k = {new}")).await.expect("update");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut all = std::collections::BTreeSet::new();
    for r in readers {
        all.extend(r.await.expect("reader"));
    }
    for (rows, values) in &all {
        assert!(
            matches!((rows, values), (2000, 1) | (4000, 2)),
            "a reader saw {rows} rows of {values} values: {all:?}"
        );
    }
    assert_eq!(count(&writer, "SELECT count(*) FROM v WHERE k = 1").await, 2000);
}

/// The journeydb binary serving `dir`, and the port it listens on.
fn spawn_server(dir: &Path) -> (Child, u16) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_journeydb"));
    command.args(["serve", "--data", &dir.display().to_string(), "--listen", "127.0.0.1:0"]);
    fixture::spawn_listening(command)
}

/// Table `d` of ids 1 to 300 in three files of 100 (a CREATE TABLE AS and two INSERTs).
pub(crate) const THREE_FILES: &str = "CREATE TABLE d AS SELECT generate_series AS id FROM generate_series(1, 100); \
     INSERT INTO d SELECT generate_series FROM generate_series(101, 200); \
     INSERT INTO d SELECT generate_series FROM generate_series(201, 300)";

/// Waits until `server` is well into writing a file staged under `dir`, then kills it with
/// SIGKILL.
pub(crate) async fn kill_while_writing(server: &mut Child, dir: &Path) {
    let (dir, pid) = (dir.to_path_buf(), server.id());
    tokio::task::spawn_blocking(move || wait_for_staged_file(&dir, pid)).await.expect("wait");
    server.kill().expect("SIGKILL");
    server.wait().expect("reaped");
}

/// After the kill of a COPY into `k`, what the crash tests made before is intact: `k`'s one
/// row (none of the COPY's), schema `keep` with its view over `k`, and `k`'s comment.
pub(crate) async fn assert_kept(client: &tokio_postgres::Client, comment: &str) {
    assert_eq!(count(client, "SELECT count(*) FROM k").await, 1, "none of the killed COPY's rows");
    // Schemas, views and comments persist across restarts.
    assert_eq!(count(client, "SELECT count(*) FROM keep.ids").await, 1);
    let kept: String = client
        .query_one("SELECT obj_description(c.oid, 'pg_class') FROM pg_class c WHERE c.relname = 'k'", &[])
        .await
        .expect("comment")
        .get(0);
    assert_eq!(kept, comment);
}

/// A COPY into `k (id, payload)` far larger than the test waits for: the server is killed
/// while it runs (the task ends when the connection does).
pub(crate) fn endless_copy(client: tokio_postgres::Client) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let sink = client.copy_in("COPY k FROM STDIN").await.expect("copy");
        futures::pin_mut!(sink);
        let line = "x".repeat(200);
        for i in 0..2_000_000u64 {
            let chunk: String = (0..100).map(|j| format!("{}\t{line}\n", i * 100 + j)).collect();
            if sink.send(Bytes::from(chunk)).await.is_err() {
                return;
            }
        }
        panic!("the copy should have been cut off by the kill");
    })
}

pub(crate) async fn connect_port(port: u16) -> tokio_postgres::Client {
    let conn = format!("host=127.0.0.1 port={port} user=journey dbname=journeydb");
    let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// Waits until a write is well under way: a staged (`.tmp`) file holds 1 MB (row groups are
/// written as the data arrives). It waits on progress, not on the clock (issue 24: a debug build
/// under load took over a minute): it fails only after 60 s in which neither the staged files
/// grew nor server `pid` used any CPU.
fn wait_for_staged_file(dir: &Path, pid: u32) {
    let size = |p: &String| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    // utime + stime of the process, in clock ticks (fields 14 and 15 of /proc/PID/stat).
    let cpu = || -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let after_name = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        after_name.split_whitespace().skip(11).take(2).filter_map(|f| f.parse::<u64>().ok()).sum()
    };
    let mut progress = (0u64, cpu());
    let mut last = std::time::Instant::now();
    loop {
        let staged: Vec<String> = staged_leftovers(dir).into_iter().filter(|p| p.ends_with(".parquet.tmp")).collect();
        if staged.iter().any(|p| size(p) > 1 << 20) {
            return;
        }
        let now = (staged.iter().map(size).sum(), cpu());
        if now != progress {
            progress = now;
            last = std::time::Instant::now();
        }
        assert!(last.elapsed().as_secs() < 60, "no write started, and no progress for 60 s");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_in_the_middle_of_copy_and_create_table_as_leaves_no_partial_data() {
    let dir = fixture::data_dir();
    let path = dir.path().to_path_buf();
    let (mut server, port) = spawn_server(&path);
    let client = connect_port(port).await;
    client
        .batch_execute(
            "CREATE TABLE k (id BIGINT, payload TEXT); INSERT INTO k VALUES (1, 'kept'); \
             CREATE SCHEMA keep; CREATE VIEW keep.ids AS SELECT id FROM k; COMMENT ON TABLE k IS 'kept across restarts'",
        )
        .await
        .expect("create");

    // A large COPY, killed while its file is being written.
    let copier = endless_copy(client);
    kill_while_writing(&mut server, &path).await;
    copier.await.expect("copier");

    let (mut server, port) = spawn_server(&path);
    let client = connect_port(port).await;
    assert_kept(&client, "kept across restarts").await;
    assert!(staged_leftovers(&path).is_empty(), "cleaned on open: {:?}", staged_leftovers(&path));

    // A large CREATE TABLE AS, killed while it writes.
    let ctas = tokio::spawn(async move {
        client
            .batch_execute(
                "CREATE TABLE big AS SELECT e.*, g AS copy FROM events e CROSS JOIN generate_series(1, 400) g",
            )
            .await
    });
    kill_while_writing(&mut server, &path).await;
    assert!(ctas.await.expect("ctas task").is_err(), "the statement was cut off");

    let (mut server, port) = spawn_server(&path);
    let client = connect_port(port).await;
    let err = client.query("SELECT count(*) FROM big", &[]).await.expect_err("no half table");
    assert_eq!(err.code(), Some(&SqlState::UNDEFINED_TABLE));
    assert_eq!(count(&client, "SELECT count(*) FROM k").await, 1);
    assert!(staged_leftovers(&path).is_empty(), "{:?}", staged_leftovers(&path));
    assert!(!path.join("big").exists(), "the cut-off table's files are removed on open");
    let log: Vec<_> = std::fs::read_dir(path.join("k/_delta_log")).expect("log").flatten().collect();
    assert_eq!(log.len(), 2, "k is its CREATE and its INSERT, nothing of the COPY: {log:?}");
    server.kill().expect("stop");
    server.wait().expect("reaped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_drivers_copy_and_insert() {
    let dir = fixture::data_dir();
    let server = fixture::server(dir.path()).await;
    fixture::run_python("writes.py", server.addr.port()).await;
    assert!(staged_leftovers(dir.path()).is_empty());
}

/// The same writes with the drivers' newest releases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_drivers_at_their_newest_releases_copy_and_insert() {
    let dir = fixture::data_dir();
    let server = fixture::server(dir.path()).await;
    fixture::run_python_with(fixture::python_latest(), "writes.py", server.addr.port()).await;
    assert!(staged_leftovers(dir.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journeydb_import_adds_files_a_running_server_reads() {
    let dir = fixture::data_dir();
    let server = fixture::server(dir.path()).await;
    import_beside_a_server(&server, &dir.path().to_string_lossy(), |_| {}).await;
}

/// `journeydb import --data <data> crm.deals` run beside `server` (`command` adds what the
/// process needs to reach the data): a CSV and a JSON file become rows the server reads, and an
/// import with a bad file names the file, line and column and adds nothing.
pub async fn import_beside_a_server(
    server: &journeydb::server::RunningServer,
    data: &str,
    command: impl Fn(&mut Command),
) {
    let files = tempfile::tempdir().expect("tmp");
    let csv = files.path().join("deals.csv");
    std::fs::write(&csv, "deal_id,amount,closed_at\n1,100.5,2025-01-01T00:00:00\n2,20,2025-02-01T00:00:00\n")
        .expect("csv");
    let json = files.path().join("more.jsonl");
    std::fs::write(&json, "{\"deal_id\": 3, \"amount\": 7}\n").expect("json");
    let bad = files.path().join("bad.csv");
    std::fs::write(&bad, "deal_id,amount\n4,x\n").expect("csv");
    let import = |args: &[&Path]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_journeydb"));
        c.args(["import", "--data", data, "crm.deals"]);
        command(&mut c);
        for a in args {
            c.arg(a);
        }
        c.output().expect("journeydb import")
    };
    let client = fixture::connect(server).await;
    client.batch_execute("CREATE SCHEMA crm").await.expect("schema");
    let out = import(&[&csv, &json]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported 3 rows into crm.deals"));
    let out = import(&[&csv, &bad]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(err.contains("bad.csv") && err.contains("line 2") && err.contains("\"amount\""), "{err}");
    let r = client
        .query_one("SELECT count(*), CAST(sum(amount) AS DOUBLE PRECISION) FROM crm.deals", &[])
        .await
        .expect("read");
    assert_eq!((r.get::<_, i64>(0), r.get::<_, f64>(1)), (3, 127.5), "the failed import added nothing");
}

/// The inodes of a table's Parquet files: a file kept by a rewrite is the same inode.
/// (The files of the table's current Delta version, as its log lists them.)
fn file_inodes(data: &Path, table: &str) -> std::collections::BTreeSet<u64> {
    use std::os::unix::fs::MetadataExt;
    let store = journeydb::store::Store::open(data).expect("store");
    let files = store.table_files("public", table).expect("files");
    files.files.iter().map(|f| std::fs::metadata(data.join(table).join(&f.path)).expect("meta").ino()).collect()
}

/// UPDATE (issue 24): the files without a changed row stay the same files, the count is the
/// rows changed, and a condition with a subquery spans files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_rewrites_only_the_files_it_touches() {
    let dir = fixture::data_dir();
    let server = fixture::server(dir.path()).await;
    let client = fixture::connect(&server).await;
    client
        .batch_execute(
            "CREATE TABLE up AS SELECT generate_series AS id, 'x' AS tag FROM generate_series(1, 100); \
             INSERT INTO up SELECT generate_series, 'x' FROM generate_series(101, 200); \
             INSERT INTO up SELECT generate_series, 'x' FROM generate_series(201, 300)",
        )
        .await
        .expect("three files");
    let inodes = || file_inodes(dir.path(), "up");
    let before = inodes();
    let n = client.execute("UPDATE up SET tag = 'y' || id WHERE id BETWEEN 150 AND 160", &[]).await.expect("update");
    assert_eq!(n, 11);
    let after = inodes();
    assert_eq!(before.intersection(&after).count(), 2, "the two untouched files are the same files");
    assert_eq!(count(&client, "SELECT count(*) FROM up WHERE tag LIKE 'y%'").await, 11);
    assert_eq!(count(&client, "SELECT count(*) FROM up").await, 300);
    let n = client
        .execute("UPDATE up SET id = -id WHERE id IN (SELECT id FROM up WHERE id % 100 = 0)", &[])
        .await
        .expect("update");
    assert_eq!(n, 3);
    assert_eq!(count(&client, "SELECT count(*) FROM up WHERE id < 0").await, 3);
    assert_eq!(count(&client, "SELECT count(*) FROM up").await, 300);
    assert_eq!(client.execute("UPDATE up SET tag = 'z' WHERE id > 1000", &[]).await.expect("none"), 0);
    assert_eq!(inodes().len(), 3);
    let err = client.batch_execute("UPDATE touches SET channel = 'x'").await.expect_err("partitioned");
    assert_eq!(err.code(), Some(&SqlState::FEATURE_NOT_SUPPORTED));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_rewrites_only_the_files_it_touches() {
    let dir = fixture::data_dir();
    let server = fixture::server(dir.path()).await;
    let client = fixture::connect(&server).await;
    client.batch_execute(THREE_FILES).await.expect("three files");
    let inodes = || file_inodes(dir.path(), "d");
    let before = inodes();
    assert_eq!(before.len(), 3);
    client.batch_execute("DELETE FROM d WHERE id BETWEEN 150 AND 160").await.expect("delete");
    let after = inodes();
    assert_eq!(after.len(), 3);
    assert_eq!(before.intersection(&after).count(), 2, "the two untouched files are the same files");
    assert_eq!(count(&client, "SELECT count(*) FROM d").await, 289);
    // A condition with a subquery, over several files at once.
    client.batch_execute("DELETE FROM d WHERE id IN (SELECT id FROM d WHERE id % 100 = 0)").await.expect("delete");
    assert_eq!(count(&client, "SELECT count(*) FROM d").await, 286);
    client.batch_execute("DELETE FROM d").await.expect("delete all");
    assert_eq!(count(&client, "SELECT count(*) FROM d").await, 0);
    let cols: i64 = count(&client, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'd'").await;
    assert_eq!(cols, 1, "an emptied table keeps its columns");
    // A folder the user made (the fixture's `steps`) becomes a Delta table of its files.
    let plain = dir.path().join("steps");
    assert!(plain.is_dir() && !plain.join("_delta_log").exists());
    let before = count(&client, "SELECT count(*) FROM steps").await;
    let gone = count(&client, "SELECT count(*) FROM steps WHERE node = 'home'").await;
    assert!(gone > 0 && gone < before);
    client.batch_execute("DELETE FROM steps WHERE node = 'home'").await.expect("delete");
    assert!(plain.join("_delta_log").is_dir(), "now a Delta table");
    assert_eq!(count(&client, "SELECT count(*) FROM steps").await, before - gone);
    // Hive-partitioned folders are not written to.
    let err = client.batch_execute("DELETE FROM touches WHERE channel = 'Email'").await.expect_err("partitioned");
    assert_eq!(err.code(), Some(&SqlState::FEATURE_NOT_SUPPORTED));
}

/// OPTIMIZE and VACUUM (issue 18) on a local disk: see [`optimize_then_vacuum`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optimize_compacts_small_files_and_vacuum_removes_what_no_version_needs() {
    let dir = fixture::data_dir();
    let server = fixture::server_with(dir.path(), |c| c.store.vacuum_retention_hours = Some(0.0)).await;
    let on_disk = || {
        std::fs::read_dir(dir.path().join("small"))
            .expect("dir")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".parquet"))
            .count()
    };
    optimize_then_vacuum(&server, || file_inodes(dir.path(), "small").len(), on_disk).await;
    let client = fixture::connect(&server).await;
    let err = client.batch_execute("OPTIMIZE touches").await.expect_err("partitioned");
    assert_eq!(err.code(), Some(&SqlState::FEATURE_NOT_SUPPORTED));
}

/// The small files of many INSERTs into a new table `small` compacted into one with the same
/// rows, in one commit; VACUUM (on a server with no retention) removes the files no version
/// needs any more, and the table reads the same after. `live` counts the files of the table's
/// version, `on_disk` the Parquet files in its folder.
pub async fn optimize_then_vacuum(
    server: &journeydb::server::RunningServer,
    live: impl Fn() -> usize,
    on_disk: impl Fn() -> usize,
) {
    let client = fixture::connect(server).await;
    client.batch_execute("CREATE TABLE small (id BIGINT)").await.expect("create");
    for i in 0..10 {
        client.execute("INSERT INTO small VALUES ($1), ($1 + 100)", &[&i64::from(i)]).await.expect("insert");
    }
    assert_eq!(live(), 10);
    let sum = "SELECT CAST(sum(id) AS BIGINT) FROM small";
    let before = count(&client, sum).await;
    client.batch_execute("OPTIMIZE small").await.expect("optimize");
    assert_eq!(live(), 1, "one file now");
    assert_eq!(on_disk(), 11, "the old files stay until VACUUM");
    assert_eq!(count(&client, sum).await, before);
    assert_eq!(count(&client, "SELECT count(*) FROM small").await, 20);
    client.batch_execute("VACUUM small").await.expect("vacuum");
    assert_eq!(on_disk(), 1);
    assert_eq!(count(&client, sum).await, before);
    // Every table at once; FULL compacts first; a plain folder has nothing to remove.
    client.batch_execute("VACUUM").await.expect("vacuum everything");
    client.batch_execute("VACUUM FULL small").await.expect("vacuum full");
    assert_eq!(count(&client, "SELECT count(*) FROM small").await, 20);
    let err = client.batch_execute("VACUUM nothing_here").await.expect_err("no table");
    assert_eq!(err.code(), Some(&SqlState::UNDEFINED_TABLE));
}
