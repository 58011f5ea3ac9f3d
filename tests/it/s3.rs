//! The store on object storage (issue 18): a real S3-compatible server on 127.0.0.1
//! (`moto_server` from PyPI's `moto[server]`, installed in `.venv-test` by
//! scripts/install-test-deps.sh), a TCP relay in front of it that the fault test cuts, and the
//! `deltalake` Python package reading and writing the same tables.

use crate::fixture;
use journeydb::store::{Location, Objects, StoreOptions};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio_postgres::error::SqlState;

/// A `moto_server` on a free port of 127.0.0.1, killed when dropped.
pub struct Moto {
    child: Child,
    pub port: u16,
}

impl Moto {
    pub fn start() -> Moto {
        let server = fixture::python().with_file_name("moto_server");
        assert!(server.exists(), "{} is missing: run scripts/install-test-deps.sh", server.display());
        let port = free_port();
        let child = Command::new(server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "moto_server did not listen on {port}");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Moto { child, port }
    }

    /// Creates `bucket` (an unsigned `PUT /bucket`, which moto accepts).
    pub fn bucket(&self, bucket: &str) {
        http(self.port, &format!("PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"));
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Sends one HTTP request and returns the status line.
fn http(port: u16, request: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.write_all(request.as_bytes()).expect("send");
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).expect("read");
    let status = String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or_default().to_string();
    assert!(status.contains(" 200"), "{request}: {status}");
    status
}

/// The options of a server on `port`: credentials moto accepts, plain HTTP, and listings not
/// trusted at all (other programs' writes are seen at once) unless `refresh` says otherwise.
fn options(port: u16, refresh: f64) -> StoreOptions {
    StoreOptions {
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        region: Some("us-east-1".into()),
        access_key_id: Some("journeydb".into()),
        secret_access_key: Some("not-a-secret".into()),
        allow_http: Some(true),
        refresh_seconds: Some(refresh),
        request_timeout_seconds: Some(5),
        vacuum_retention_hours: None,
    }
}

/// Copies the fixture's data directory (the demo events, `touches`, `steps`, `journeys`) to
/// `s3://bucket/prefix`.
fn upload_fixture(objects: &Objects) -> tempfile::TempDir {
    let dir = fixture::data_dir();
    let mut stack = vec![dir.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir.path()).expect("inside").to_string_lossy().to_string();
                objects.upload(&p, &rel).expect("upload");
            }
        }
    }
    dir
}

/// A moto server with bucket `bucket` holding the fixture's tables under `prefix`: the server,
/// the options to reach it, the objects there, and the local copy (kept while it is used).
fn moto_with_fixture(bucket: &str, prefix: &str) -> (Moto, StoreOptions, Objects, tempfile::TempDir) {
    let moto = Moto::start();
    moto.bucket(bucket);
    let opts = options(moto.port, 0.0);
    let location = Location::parse(&format!("s3://{bucket}/{prefix}")).expect("location");
    let objects = Objects::open(&location, &opts).expect("objects");
    let local = upload_fixture(&objects);
    (moto, opts, objects, local)
}

/// An in-process server over `s3://bucket/prefix` of moto on `port`.
async fn s3_server(bucket: &str, prefix: &str, options: StoreOptions) -> journeydb::server::RunningServer {
    let data = format!("s3://{bucket}/{prefix}");
    fixture::server_with(Path::new("unused"), move |c| {
        c.data_dir = data.into();
        c.store = options;
    })
    .await
}

/// The `AWS_*` variables that point a journeydb process at moto on `port`.
fn aws_env(command: &mut Command, port: u16) {
    command
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
        .env("AWS_ACCESS_KEY_ID", "journeydb")
        .env("AWS_SECRET_ACCESS_KEY", "not-a-secret")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ALLOW_HTTP", "true");
}

async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.expect(sql).get(0)
}

/// The `.slt` files that touch the store (tables, writes, catalog, the journey reports), over
/// the wire against a server whose data is in S3: the same answers as on a local disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_corpus_answers_the_same_on_s3() {
    let (_moto, opts, objects, _local) = moto_with_fixture("corpus", "data");
    let server = s3_server("corpus", "data", opts).await;
    for file in ["store.slt", "writes.slt", "funnel.slt", "attribute_report.slt", "journey_paths.slt"] {
        crate::slt::run_over_the_wire(server.addr.port(), &fixture::root().join("sql/slt").join(file), false).await;
    }
    // What journeydb wrote is Delta: a log of commits under the table's folder.
    let client = fixture::connect(&server).await;
    client.batch_execute("CREATE TABLE written AS SELECT event_name FROM events LIMIT 10").await.expect("ctas");
    let log = objects.list("written/_delta_log").expect("log");
    assert!(log.files.iter().any(|f| f.location.as_ref().ends_with("00000000000000000000.json")), "{log:?}");
    server.stop().await;
}

/// Tables journeydb writes read the same in delta-rs (the `deltalake` package), and tables
/// delta-rs writes (created, appended to, then overwritten) read the same in journeydb.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_tables_are_shared_with_delta_rs_both_ways() {
    let moto = Moto::start();
    moto.bucket("lake");
    let server = s3_server("lake", "p", options(moto.port, 0.0)).await;
    let client = fixture::connect(&server).await;
    client
        .batch_execute(
            "CREATE TABLE ours (id BIGINT, name TEXT, score DOUBLE PRECISION, day DATE, at TIMESTAMPTZ, ok BOOLEAN, \
             amount NUMERIC(12, 2)); \
             INSERT INTO ours VALUES (1, 'a', 1.5, '2025-01-01', '2025-01-01 10:00:00+00', true, 10.25), \
             (2, NULL, NULL, NULL, NULL, NULL, NULL); \
             INSERT INTO ours VALUES (3, 'c', -2, '2025-03-01', '2025-03-01 00:00:00.5+00', false, 0); \
             DELETE FROM ours WHERE id = 2",
        )
        .await
        .expect("write");
    let script = format!(
        r#"
import json, sys
from deltalake import DeltaTable, write_deltalake
import pandas as pd
so = {{"AWS_ENDPOINT_URL": "http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "journeydb",
      "AWS_SECRET_ACCESS_KEY": "not-a-secret", "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true",
      "conditional_put": "etag"}}
t = DeltaTable("s3://lake/p/ours", storage_options=so)
print("version", t.version())
print("schema", [(f.name, str(f.type)) for f in t.schema().fields])
rows = t.to_pandas().sort_values("id")
for r in rows.itertuples(index=False):
    print("row", r.id, r.name, r.score, r.day, r.at.isoformat(), r.ok, r.amount)
df = pd.DataFrame({{"id": [1, 2, 3], "label": ["x", "y", None]}})
write_deltalake("s3://lake/p/theirs", df, storage_options=so)
write_deltalake("s3://lake/p/theirs", df.head(1), mode="append", storage_options=so)
print("appended")
"#,
        port = moto.port
    );
    let out = python(&script);
    assert!(out.contains("version 3\n"), "create, insert, insert, delete: {out}");
    for expected in [
        "('id', 'PrimitiveType(\"long\")')",
        "('name', 'PrimitiveType(\"string\")')",
        "('score', 'PrimitiveType(\"double\")')",
        "('day', 'PrimitiveType(\"date\")')",
        "('at', 'PrimitiveType(\"timestamp\")')",
        "('ok', 'PrimitiveType(\"boolean\")')",
        "('amount', 'PrimitiveType(\"decimal(12,2)\")')",
    ] {
        assert!(out.contains(expected), "{expected} in {out}");
    }
    assert!(out.contains("row 1 a 1.5 2025-01-01 2025-01-01T10:00:00+00:00 True 10.25\n"), "{out}");
    assert!(out.contains("row 3 c -2.0 2025-03-01 2025-03-01T00:00:00.500000+00:00 False 0.00\n"), "{out}");
    assert!(!out.contains("row 2 "), "deleted: {out}");
    // Theirs, in journeydb: created, then appended to.
    let rows = fixture::texts(&client, "SELECT id, label FROM theirs ORDER BY id, label").await;
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert_eq!(rows[0], [Some("1".to_string()), Some("x".to_string())]);
    assert_eq!(rows[3], [Some("3".to_string()), None]);
    // Overwritten there: journeydb reads the new version only.
    let out = python(&format!(
        r#"
from deltalake import write_deltalake
import pandas as pd
so = {{"AWS_ENDPOINT_URL": "http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "journeydb",
      "AWS_SECRET_ACCESS_KEY": "not-a-secret", "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true",
      "conditional_put": "etag"}}
write_deltalake("s3://lake/p/theirs", pd.DataFrame({{"id": [9], "label": ["z"]}}), mode="overwrite", storage_options=so)
print("overwritten")
"#,
        port = moto.port
    ));
    assert!(out.contains("overwritten"), "{out}");
    assert_eq!(fixture::texts(&client, "SELECT id, label FROM theirs").await, [[Some("9".into()), Some("z".into())]]);
    // And journeydb writes to their table: one more commit on their log.
    client.batch_execute("INSERT INTO theirs VALUES (10, 'ours')").await.expect("insert into theirs");
    assert_eq!(count(&client, "SELECT count(*) FROM theirs").await, 2);
    server.stop().await;
}

fn python(script: &str) -> String {
    let out = Command::new(fixture::python()).arg("-c").arg(script).output().expect("python");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    text
}

/// A TCP relay from a port of its own to `target`, which the test can cut (every connection
/// dropped, new ones refused) and restore.
struct Relay {
    port: u16,
    up: Arc<AtomicBool>,
}

impl Relay {
    async fn start(target: u16) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let up = Arc::new(AtomicBool::new(true));
        let flag = up.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { return };
                if !flag.load(Ordering::SeqCst) {
                    continue;
                }
                let flag = flag.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await else { return };
                    let copy = tokio::io::copy_bidirectional(&mut inbound, &mut outbound);
                    tokio::pin!(copy);
                    loop {
                        tokio::select! {
                            _ = &mut copy => return,
                            _ = tokio::time::sleep(std::time::Duration::from_millis(20)) => {
                                if !flag.load(Ordering::SeqCst) {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        Relay { port, up }
    }

    fn set(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
    }
}

/// The object store going away mid-session gives a clear error (58030) in seconds, never a
/// hang; when it is back the next query works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_connection_to_the_object_store_is_an_error_not_a_hang() {
    let moto = Moto::start();
    moto.bucket("faults");
    let relay = Relay::start(moto.port).await;
    let opts = options(relay.port, 0.0);
    let objects = Objects::open(&Location::parse("s3://faults/d").expect("location"), &opts).expect("objects");
    let _local = upload_fixture(&objects);
    let server = s3_server("faults", "d", opts.clone()).await;
    let client = fixture::connect(&server).await;
    assert_eq!(count(&client, "SELECT count(*) FROM events").await, fixture::DEMO_EVENTS as i64);

    relay.set(false);
    let started = std::time::Instant::now();
    let err = client.query("SELECT count(*) FROM events", &[]).await.expect_err("no object store");
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "failed in {:?}", started.elapsed());
    let code = err.code().cloned();
    assert!(code == Some(SqlState::IO_ERROR) || code.as_ref().is_some_and(|c| c.code().starts_with("08")), "{err:?}");
    relay.set(true);
    assert_eq!(count(&client, "SELECT count(*) FROM events").await, fixture::DEMO_EVENTS as i64, "works again");
    server.stop().await;
}

/// Two servers appending to one table at once lose nothing: Delta's conditional commits put
/// each append in a version of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_writing_one_table_lose_nothing() {
    let moto = Moto::start();
    moto.bucket("shared");
    let opts = options(moto.port, 0.0);
    let server = s3_server("shared", "d", opts.clone()).await;
    let client = fixture::connect(&server).await;
    client.batch_execute("CREATE TABLE shared (writer INT, n INT)").await.expect("create");
    let other = s3_server("shared", "d", opts).await;
    let other_client = fixture::connect(&other).await;
    let rounds = 8;
    let write = |c: tokio_postgres::Client, writer: i32| async move {
        for n in 0..rounds {
            c.execute("INSERT INTO shared VALUES ($1, $2)", &[&writer, &n]).await.expect("insert");
        }
        c
    };
    let (a, b) = tokio::join!(write(client, 1), write(other_client, 2));
    assert_eq!(count(&a, "SELECT count(*) FROM shared").await, 2 * i64::from(rounds), "nothing lost");
    assert_eq!(
        count(&b, "SELECT count(*) FROM (SELECT DISTINCT writer, n FROM shared) AS d").await,
        2 * i64::from(rounds)
    );
    server.stop().await;
    other.stop().await;
}

/// dbt's whole project, twice (tables replaced through renames, views, incremental models by
/// delete+insert and by MERGE, a snapshot, comments), with the data on S3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dbt_build_passes_twice_on_s3() {
    let (_moto, opts, _objects, _local) = moto_with_fixture("dbt", "warehouse");
    let server = s3_server("dbt", "warehouse", opts).await;
    crate::dbt::build_twice_and_check(&server).await;
    server.stop().await;
}

/// The crash test of the writes, on S3: SIGKILL during a large COPY and during a large CREATE
/// TABLE AS (each while its file is being written, before it is uploaded); after a restart no
/// row of either is visible, the table, view and comment made before are intact, and the
/// server reads its credentials and endpoint from the `AWS_*` variables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_leaves_no_partial_data_on_s3() {
    use crate::writes::{assert_kept, connect_port, kill_while_writing};
    let (moto, _opts, _objects, _local) = moto_with_fixture("crash", "d");
    let staging = tempfile::tempdir().expect("tmp");
    let spawn = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_journeydb"));
        command.args(["serve", "--data", "s3://crash/d", "--listen", "127.0.0.1:0"]).env("TMPDIR", staging.path());
        aws_env(&mut command, moto.port);
        fixture::spawn_listening(command)
    };
    let (mut server, port) = spawn();
    let client = connect_port(port).await;
    client
        .batch_execute(
            "CREATE TABLE k (id BIGINT, payload TEXT); INSERT INTO k VALUES (1, 'kept'); \
             CREATE SCHEMA keep; CREATE VIEW keep.ids AS SELECT id FROM k; COMMENT ON TABLE k IS 'kept'",
        )
        .await
        .expect("create");
    let copier = crate::writes::endless_copy(client);
    kill_while_writing(&mut server, staging.path()).await;
    copier.await.expect("copier");

    let (mut server, port) = spawn();
    let client = connect_port(port).await;
    assert_kept(&client, "kept").await;
    let ctas = tokio::spawn(async move {
        client
            .batch_execute(
                "CREATE TABLE big AS SELECT e.*, g AS copy FROM events e CROSS JOIN generate_series(1, 400) g",
            )
            .await
    });
    kill_while_writing(&mut server, staging.path()).await;
    assert!(ctas.await.expect("ctas task").is_err(), "the statement was cut off");

    let (mut server, port) = spawn();
    let client = connect_port(port).await;
    let err = client.query("SELECT count(*) FROM big", &[]).await.expect_err("no half table");
    assert_eq!(err.code(), Some(&SqlState::UNDEFINED_TABLE));
    assert_eq!(count(&client, "SELECT count(*) FROM k").await, 1);
    // The name is free again.
    client.batch_execute("CREATE TABLE big AS SELECT 1 AS one").await.expect("create big");
    assert_eq!(count(&client, "SELECT count(*) FROM big").await, 1);
    server.kill().expect("stop");
    server.wait().expect("reaped");
}

/// The writes tests that need only a server, on S3: COPY in every format and out, failed
/// copies leaving nothing (no row, no file), readers seeing whole versions while a writer
/// inserts, deletes and updates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writes_tests_pass_on_s3() {
    let (_moto, opts, objects, _local) = moto_with_fixture("writes", "w");
    let server = s3_server("writes", "w", opts).await;
    crate::writes::copies_in_every_format(&server).await;
    crate::writes::failed_copies_leave_nothing(&server).await;
    let files = objects.list_all("f").expect("f");
    let data: Vec<_> = files.iter().filter(|m| m.location.as_ref().ends_with(".parquet")).collect();
    assert_eq!(data.len(), 1, "the INSERT's file only: {files:?}");
    crate::writes::readers_see_whole_versions(&server).await;
    server.stop().await;
}

/// DELETE and UPDATE on S3 keep the files without a changed row: the new version lists the
/// same paths for them, and one new file for the one rewritten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewrites_keep_the_files_they_do_not_touch_on_s3() {
    let moto = Moto::start();
    moto.bucket("rewrites");
    let opts = options(moto.port, 0.0);
    let server = s3_server("rewrites", "r", opts.clone()).await;
    let client = fixture::connect(&server).await;
    client.batch_execute(crate::writes::THREE_FILES).await.expect("three files");
    let store = journeydb::store::Store::open_location(&Location::parse("s3://rewrites/r").expect("location"), &opts)
        .expect("store");
    let files = || -> std::collections::BTreeSet<String> {
        store.table_files("public", "d").expect("files").files.into_iter().map(|f| f.path).collect()
    };
    let before = files();
    assert_eq!(before.len(), 3);
    client.batch_execute("DELETE FROM d WHERE id BETWEEN 150 AND 160").await.expect("delete");
    let after = files();
    assert_eq!(after.len(), 3);
    assert_eq!(before.intersection(&after).count(), 2, "the two untouched files are the same files");
    client.batch_execute("UPDATE d SET id = -id WHERE id = 250").await.expect("update");
    let updated = files();
    assert_eq!(after.intersection(&updated).count(), 2);
    assert_eq!(count(&client, "SELECT count(*) FROM d").await, 289);
    assert_eq!(count(&client, "SELECT count(*) FROM d WHERE id < 0").await, 1);
    server.stop().await;
}

/// OPTIMIZE and VACUUM on S3: the same compaction and removal as on a local disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optimize_and_vacuum_work_on_s3() {
    let moto = Moto::start();
    moto.bucket("maintenance");
    let opts = StoreOptions { vacuum_retention_hours: Some(0.0), ..options(moto.port, 0.0) };
    let server = s3_server("maintenance", "m", opts.clone()).await;
    let location = Location::parse("s3://maintenance/m").expect("location");
    let store = journeydb::store::Store::open_location(&location, &opts).expect("store");
    let objects = Objects::open(&location, &opts).expect("objects");
    let live = || store.table_files("public", "small").expect("files").files.len();
    let on_disk = || {
        let all = objects.list_all("small").expect("list");
        let data = |m: &&object_store::ObjectMeta| !m.location.as_ref().contains("_delta_log");
        all.iter().filter(data).filter(|m| m.location.as_ref().ends_with(".parquet")).count()
    };
    crate::writes::optimize_then_vacuum(&server, live, on_disk).await;
    server.stop().await;
}

/// `journeydb import` into an S3 store while a server serves it: the same as on a local disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journeydb_import_adds_files_a_server_on_s3_reads() {
    let moto = Moto::start();
    moto.bucket("import");
    let server = s3_server("import", "i", options(moto.port, 0.0)).await;
    crate::writes::import_beside_a_server(&server, "s3://import/i", |c| aws_env(c, moto.port)).await;
    server.stop().await;
}
