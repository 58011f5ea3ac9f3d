//! tokio-postgres against a real server on 127.0.0.1: the acceptance query, types in
//! binary and text, parameters, errors, per-connection sessions, and the live store.

use crate::fixture;
use chrono::{DateTime, Utc};
use tokio_postgres::SimpleQueryMessage;
use tokio_postgres::error::SqlState;

use fixture::{text_rows, texts};

#[tokio::test]
async fn revenue_by_channel_answers_over_both_protocols() {
    let dir = fixture::data_dir();
    let server = fixture::server(dir.path()).await;
    let client = fixture::connect(&server).await;
    let sql = "SELECT channel, count(*), sum(revenue) FROM events GROUP BY 1 ORDER BY 1";
    let simple = text_rows(client.simple_query(sql).await.expect("simple"));
    assert_eq!(simple.len(), 9, "8 channels and the events without one: {simple:?}");
    let total: i64 = simple.iter().map(|r| r[1].as_deref().expect("count").parse::<i64>().expect("int")).sum();
    assert_eq!(total, fixture::DEMO_EVENTS as i64);
    // The same answer in binary through the extended protocol.
    let rows = client.query(sql, &[]).await.expect("extended");
    assert_eq!(rows.len(), simple.len());
    for (row, text) in rows.iter().zip(&simple) {
        assert_eq!(row.get::<_, Option<String>>(0), text[0]);
        assert_eq!(row.get::<_, i64>(1).to_string(), text[1].clone().expect("count"));
    }
    let cols = client.prepare(sql).await.expect("prepare");
    let names: Vec<&str> = cols.columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, ["channel", "count", "sum"]);
    let types: Vec<u32> = cols.columns().iter().map(|c| c.type_().oid()).collect();
    assert_eq!(types, [25, 20, 1700], "text, int8, numeric");
    server.stop().await;
}

#[tokio::test]
async fn typed_parameters_text_and_binary() {
    let dir = fixture::data_dir();
    let server = fixture::server(dir.path()).await;
    let client = fixture::connect(&server).await;
    let n: i64 = client
        .query_one("SELECT count(*) FROM events WHERE event_name = $1", &[&"purchase"])
        .await
        .expect("text param")
        .get(0);
    let expected: i64 = client
        .query_one("SELECT count(*) FROM events WHERE event_name = 'purchase'", &[])
        .await
        .expect("literal")
        .get(0);
    assert_eq!(n, expected);
    assert!(n > 0);
    let row = client
        .query_one("SELECT $1::bigint + 1, $2::double * 2, $3::boolean", &[&41i64, &1.25f64, &true])
        .await
        .expect("binary params");
    assert_eq!((row.get::<_, i64>(0), row.get::<_, f64>(1), row.get::<_, bool>(2)), (42, 2.5, true));
    let since: DateTime<Utc> = "2025-03-01T00:00:00Z".parse().expect("ts");
    let later: i64 = client
        .query_one("SELECT count(*) FROM events WHERE event_time >= $1", &[&since])
        .await
        .expect("ts param")
        .get(0);
    let literal: i64 = client
        .query_one("SELECT count(*) FROM events WHERE event_time >= TIMESTAMPTZ '2025-03-01T00:00:00Z'", &[])
        .await
        .expect("ts literal")
        .get(0);
    assert_eq!(later, literal);
    assert!(later > 0 && later < fixture::DEMO_EVENTS as i64);
    server.stop().await;
}

#[tokio::test]
async fn binary_and_text_results_agree() {
    let dir = fixture::data_dir();
    let server = fixture::server(dir.path()).await;
    let client = fixture::connect(&server).await;
    let sql = "SELECT event_time, revenue, user_id FROM events WHERE revenue IS NOT NULL ORDER BY event_time, user_id LIMIT 5";
    let text = text_rows(client.simple_query(sql).await.expect("simple"));
    let binary = client.query(sql, &[]).await.expect("binary");
    assert_eq!(text.len(), 5);
    for (t, b) in text.iter().zip(&binary) {
        let ts: DateTime<Utc> = b.get(0);
        assert_eq!(format!("{}+00", ts.format("%Y-%m-%d %H:%M:%S")), t[0].clone().expect("ts"));
        let revenue: crate::slt::WireText = b.get(1);
        assert_eq!(Some(revenue.0), t[1]);
    }
    server.stop().await;
}

#[tokio::test]
async fn the_session_time_zone_shows_and_buckets_stored_instants() {
    use chrono::TimeZone;
    let dir = fixture::data_dir();
    let server = fixture::server(dir.path()).await;
    let client = fixture::connect(&server).await;
    let instants: Vec<DateTime<Utc>> =
        client.query("SELECT event_time FROM events", &[]).await.expect("instants").iter().map(|r| r.get(0)).collect();
    let first = *instants.iter().min().expect("events");
    let zone = chrono_tz::America::New_York;
    client.simple_query("SET TimeZone = 'America/New_York'").await.expect("set");
    // Shown in New York's wall clock with its offset; binary results are the same instants.
    let shown = texts(&client, "SELECT min(event_time) FROM events").await;
    let local = zone.from_utc_datetime(&first.naive_utc());
    assert_eq!(shown, [[Some(local.format("%Y-%m-%d %H:%M:%S%:::z").to_string())]]);
    let again: DateTime<Utc> =
        client.query_one("SELECT min(event_time) FROM events", &[]).await.expect("binary").get(0);
    assert_eq!(again, first);
    // Days are New York's days: the same buckets the client makes from the instants.
    let mut expected = std::collections::BTreeMap::<DateTime<Utc>, i64>::new();
    for t in &instants {
        let day = zone.from_utc_datetime(&t.naive_utc()).date_naive().and_hms_opt(0, 0, 0).expect("midnight");
        let midnight = zone.from_local_datetime(&day).earliest().expect("local midnight").with_timezone(&Utc);
        *expected.entry(midnight).or_default() += 1;
    }
    let got: std::collections::BTreeMap<DateTime<Utc>, i64> = client
        .query("SELECT date_trunc('day', event_time), count(*) FROM events GROUP BY 1", &[])
        .await
        .expect("days")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(got, expected);
    assert!(got.keys().all(|d| d.format("%H").to_string() != "00"), "New York midnights are not UTC midnights");
    // The journey model's views and an hour extracted follow the zone too; RESET goes back to UTC.
    let hours = texts(
        &client,
        "SELECT CAST(extract(hour FROM min(event_time)) AS INT), CAST(min(event_time) AS DATE) FROM journey.events",
    )
    .await;
    assert_eq!(hours, [[Some(local.format("%-H").to_string()), Some(local.format("%Y-%m-%d").to_string())]]);
    client.simple_query("RESET TimeZone").await.expect("reset");
    let shown = texts(&client, "SELECT min(event_time) FROM events").await;
    assert_eq!(shown, [[Some(first.format("%Y-%m-%d %H:%M:%S+00").to_string())]]);
    let err = client.simple_query("SET TimeZone = 'Mars/Olympus_Mons'").await.expect_err("unknown zone");
    assert_eq!(err.code(), Some(&SqlState::INVALID_PARAMETER_VALUE));
}

#[tokio::test]
async fn errors_have_sqlstates_and_the_connection_stays_usable() {
    let dir = fixture::data_dir();
    let server = fixture::server(dir.path()).await;
    let client = fixture::connect(&server).await;
    let cases = [
        ("SELECT * FROM missing_table", SqlState::UNDEFINED_TABLE),
        ("SELECT nope FROM events", SqlState::UNDEFINED_COLUMN),
        ("SELECT nope(1)", SqlState::UNDEFINED_FUNCTION),
        ("SELEC 1", SqlState::SYNTAX_ERROR),
        ("CREATE SEQUENCE s", SqlState::FEATURE_NOT_SUPPORTED),
        ("DROP TABLE no_such_table", SqlState::UNDEFINED_TABLE),
    ];
    for (sql, code) in cases {
        for extended in [false, true] {
            let err = if extended {
                client.query(sql, &[]).await.map(|_| ()).expect_err(sql)
            } else {
                client.simple_query(sql).await.map(|_| ()).expect_err(sql)
            };
            assert_eq!(err.code(), Some(&code), "{sql}: {err:?}");
            let one: i32 = client.query_one("SELECT 1::int", &[]).await.expect("still usable").get(0);
            assert_eq!(one, 1);
        }
    }
    // In a multi-statement string, the statements before the error ran.
    let err = client.simple_query("SELECT 1; SELECT * FROM missing_table; SELECT 2").await.expect_err("second fails");
    assert_eq!(err.code(), Some(&SqlState::UNDEFINED_TABLE));
    server.stop().await;
}

#[tokio::test]
async fn each_connection_has_its_own_session() {
    let dir = fixture::data_dir();
    let server = fixture::server(dir.path()).await;
    let a = fixture::connect(&server).await;
    let b = fixture::connect(&server).await;
    a.simple_query("SET application_name = 'a'").await.expect("set");
    let show = |m: Vec<SimpleQueryMessage>| text_rows(m)[0][0].clone();
    assert_eq!(show(a.simple_query("SHOW application_name").await.expect("a")), Some("a".into()));
    assert_eq!(show(b.simple_query("SHOW application_name").await.expect("b")), Some(String::new()));
    server.stop().await;
}

#[tokio::test]
async fn the_store_picks_up_new_tables_and_files() {
    let dir = fixture::data_dir();
    let server = fixture::server(dir.path()).await;
    let client = fixture::connect(&server).await;
    let count = |sql: &'static str| {
        let client = &client;
        async move { client.query_one(sql, &[]).await.map(|r| r.get::<_, i64>(0)) }
    };
    assert_eq!(count("SELECT count(*) FROM touches").await.expect("touches"), 5);
    let err = count("SELECT count(*) FROM later").await.expect_err("not yet");
    assert_eq!(err.code(), Some(&SqlState::UNDEFINED_TABLE));
    // A new folder becomes a table; a new file in a table adds its rows.
    fixture::write_touches(&dir.path().join("later_root"));
    std::fs::rename(dir.path().join("later_root/touches"), dir.path().join("later")).expect("move");
    assert_eq!(count("SELECT count(*) FROM later").await.expect("new table"), 5);
    let extra = dir.path().join("extra");
    fixture::write_touches(&extra);
    std::fs::rename(
        extra.join("touches/day=2025-01-02/part-0.parquet"),
        dir.path().join("touches/day=2025-01-02/part-1.parquet"),
    )
    .expect("add file");
    assert_eq!(count("SELECT count(*) FROM touches").await.expect("more rows"), 7);
    // Staged (temporary) files are never read.
    std::fs::write(dir.path().join("touches/day=2025-01-02/part-2.parquet.tmp"), b"half written").expect("tmp");
    assert_eq!(count("SELECT count(*) FROM touches").await.expect("tmp ignored"), 7);
    server.stop().await;
}

#[tokio::test]
async fn a_corrupt_file_fails_its_table_only() {
    let dir = fixture::data_dir();
    let broken = dir.path().join("broken");
    let good = dir.path().join("good_copy");
    fixture::write_touches(&good);
    std::fs::create_dir_all(&broken).expect("mkdir");
    std::fs::rename(good.join("touches/day=2025-01-01/part-0.parquet"), broken.join("a.parquet")).expect("valid file");
    std::fs::write(broken.join("b.parquet"), b"PAR1 this is not parquet at all").expect("corrupt file");
    let server = fixture::server(dir.path()).await;
    let client = fixture::connect(&server).await;
    let err = client.query("SELECT count(*) FROM broken", &[]).await.expect_err("corrupt");
    assert_eq!(err.code(), Some(&SqlState::DATA_CORRUPTED), "{err:?}");
    let message = err.as_db_error().expect("db error").message().to_string();
    assert!(message.contains("broken/b.parquet"), "names the file: {message}");
    // Everything else keeps working, and the table is still listed.
    let n: i64 = client.query_one("SELECT count(*) FROM events", &[]).await.expect("events").get(0);
    assert_eq!(n, fixture::DEMO_EVENTS as i64);
    let tables = text_rows(
        client
            .simple_query("SELECT relname FROM pg_catalog.pg_class WHERE relnamespace = 2200 ORDER BY 1")
            .await
            .expect("list"),
    );
    let names: Vec<String> = tables.into_iter().filter_map(|r| r[0].clone()).collect();
    assert!(names.contains(&"broken".to_string()) && names.contains(&"events".to_string()), "{names:?}");
    server.stop().await;
}

#[tokio::test]
async fn large_results_stream_in_full() {
    let dir = fixture::data_dir();
    let server = fixture::server(dir.path()).await;
    let client = fixture::connect(&server).await;
    let rows = client.query("SELECT * FROM events", &[]).await.expect("all rows");
    assert_eq!(rows.len(), fixture::DEMO_EVENTS as usize);
    let simple = text_rows(client.simple_query("SELECT event_name FROM events").await.expect("simple"));
    assert_eq!(simple.len(), fixture::DEMO_EVENTS as usize);
    server.stop().await;
}

/// Runs for minutes unless stopped: counting a long series.
const SLOW: &str = "SELECT count(*) FROM generate_series(1, 50000000000) AS s";

/// `statement_timeout` and a cancel request stop a running statement (not only its planning)
/// with 57014 over both protocols; the connection, and the other connections, go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_timeout_and_cancel_requests_stop_running_statements() {
    use std::time::{Duration, Instant};
    let dir = fixture::data_dir();
    let server = fixture::server(dir.path()).await;
    let client = fixture::connect(&server).await;
    let other = fixture::connect(&server).await;
    client.simple_query("SET statement_timeout = '300ms'").await.expect("set");
    for extended in [false, true] {
        let started = Instant::now();
        let err = if extended {
            client.query(SLOW, &[]).await.map(|_| ()).expect_err("times out")
        } else {
            client.simple_query(SLOW).await.map(|_| ()).expect_err("times out")
        };
        assert_eq!(err.code(), Some(&SqlState::QUERY_CANCELED), "{err:?}");
        let message = err.as_db_error().map(|e| e.message().to_string()).unwrap_or_default();
        assert_eq!(message, "canceling statement due to statement timeout");
        assert!(started.elapsed() < Duration::from_secs(20), "stopped after {:?}", started.elapsed());
        let one: i32 = client.query_one("SELECT 1::int", &[]).await.expect("still usable").get(0);
        assert_eq!(one, 1);
    }
    client.simple_query("RESET statement_timeout").await.expect("reset");
    for extended in [false, true] {
        let token = client.cancel_token();
        let cancel = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            token.cancel_query(tokio_postgres::NoTls).await
        });
        let started = Instant::now();
        let err = if extended {
            client.query(SLOW, &[]).await.map(|_| ()).expect_err("canceled")
        } else {
            client.simple_query(SLOW).await.map(|_| ()).expect_err("canceled")
        };
        cancel.await.expect("task").expect("cancel request sent");
        assert_eq!(err.code(), Some(&SqlState::QUERY_CANCELED), "{err:?}");
        let message = err.as_db_error().map(|e| e.message().to_string()).unwrap_or_default();
        assert_eq!(message, "canceling statement due to user request");
        assert!(started.elapsed() < Duration::from_secs(20), "stopped after {:?}", started.elapsed());
        // A cancel request that arrives between statements is spent: the next one runs.
        let n: i64 = client.query_one("SELECT count(*) FROM events", &[]).await.expect("usable").get(0);
        assert_eq!(n, fixture::DEMO_EVENTS as i64);
    }
    let n: i64 = other.query_one("SELECT count(*) FROM events", &[]).await.expect("other connection").get(0);
    assert_eq!(n, fixture::DEMO_EVENTS as i64);
    server.stop().await;
}

/// `pg_cancel_backend(pid)` from another connection stops the statement that connection runs
/// (57014) and leaves it usable; `pg_terminate_backend(pid)` (dbt's Ctrl-C) also closes it
/// (57P01 at its next statement). `pg_backend_pid()` is the connection's process id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_cancel_backend_and_pg_terminate_backend_stop_another_connection() {
    use std::time::Duration;
    let dir = fixture::data_dir();
    let server = fixture::server(dir.path()).await;
    let victim = std::sync::Arc::new(fixture::connect(&server).await);
    let admin = fixture::connect(&server).await;
    let pid: i32 = victim.query_one("SELECT pg_backend_pid()", &[]).await.expect("pid").get(0);
    let own: i32 = admin.query_one("SELECT pg_backend_pid()", &[]).await.expect("pid").get(0);
    assert_ne!(pid, own);
    for (function, code) in
        [("pg_cancel_backend", SqlState::QUERY_CANCELED), ("pg_terminate_backend", SqlState::QUERY_CANCELED)]
    {
        let running = tokio::spawn({
            let victim = victim.clone();
            async move { victim.simple_query(SLOW).await.map(|_| ()) }
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        // The process id bound as a parameter the client leaves untyped: typed by the function.
        let statement = admin.prepare(&format!("SELECT {function}($1)")).await.expect("prepare");
        assert_eq!(statement.params(), [tokio_postgres::types::Type::INT8]);
        let done: bool = admin.query_one(&statement, &[&i64::from(pid)]).await.expect("call").get(0);
        assert!(done, "{function}");
        let err = tokio::time::timeout(Duration::from_secs(20), running).await.expect("stops").expect("task");
        assert_eq!(err.expect_err("stopped").code(), Some(&code), "{function}");
        if function == "pg_cancel_backend" {
            let one: i32 = victim.query_one("SELECT 1::int", &[]).await.expect("still usable").get(0);
            assert_eq!(one, 1);
        }
    }
    let err = victim.simple_query("SELECT 1").await.expect_err("terminated");
    assert_eq!(err.code(), Some(&SqlState::ADMIN_SHUTDOWN), "{err:?}");
    assert!(victim.is_closed() || victim.simple_query("SELECT 1").await.is_err());
    let unknown: bool = admin.query_one("SELECT pg_terminate_backend(999999)", &[]).await.expect("call").get(0);
    assert!(!unknown);
    let n: i64 = admin.query_one("SELECT count(*) FROM events", &[]).await.expect("admin goes on").get(0);
    assert_eq!(n, fixture::DEMO_EVENTS as i64);
    server.stop().await;
}

/// A prepared statement is planned by its Describe and run with that plan by every Execute
/// (issue 17), until what the plan was made from changes: the session's settings, its
/// temporary tables, the store's layout, the files of a table it reads.
#[tokio::test]
async fn a_prepared_statement_is_planned_once_until_what_it_reads_changes() {
    let dir = fixture::data_dir();
    let engine = fixture::engine(dir.path(), 8192, 0);
    let server = journeydb::server::start(engine.clone(), "127.0.0.1:0".parse().expect("addr")).await.expect("server");
    let client = fixture::connect(&server).await;
    let plans = || engine.planner().plans_made();
    let count = client.prepare("SELECT count(*) FROM touches WHERE coalesce(amount, 0) >= $1").await.expect("prepare");
    let first = client.prepare("SELECT min(ts)::text FROM steps").await.expect("prepare");
    let run = |min: i64| {
        let (client, count) = (&client, &count);
        async move { client.query_one(count, &[&min]).await.expect("count").get::<_, i64>(0) }
    };
    let before = plans();
    for (min, expected) in [(0, 5), (50, 2), (200, 1), (0, 5), (1000, 0)] {
        assert_eq!(run(min).await, expected, "amount >= {min}");
    }
    assert_eq!(plans(), before, "five executions, no new plan");

    // A file added to the table: the plan is remade (and reads it).
    let extra = dir.path().join("extra");
    fixture::write_touches(&extra);
    std::fs::rename(
        extra.join("touches/day=2025-01-02/part-0.parquet"),
        dir.path().join("touches/day=2025-01-02/part-1.parquet"),
    )
    .expect("add file");
    assert_eq!(run(0).await, 7);
    assert_eq!(run(0).await, 7);
    assert_eq!(plans(), before + 1, "one new plan for the new file");

    // The session's time zone: the plan shows instants in it.
    let utc: String = client.query_one(&first, &[]).await.expect("first").get(0);
    assert_eq!(utc, "2025-01-01 00:00:00+00");
    client.batch_execute("SET TimeZone = 'Asia/Tokyo'").await.expect("set");
    let tokyo: String = client.query_one(&first, &[]).await.expect("first").get(0);
    assert_eq!(tokyo, "2025-01-01 09:00:00+09");

    // A temporary table of the same name hides the store's table from then on.
    client.batch_execute("CREATE TEMPORARY TABLE touches AS SELECT 1000 AS amount").await.expect("temp");
    assert_eq!(run(0).await, 1, "the temporary table");
    client.batch_execute("DROP TABLE touches").await.expect("drop temp");
    assert_eq!(run(0).await, 7, "the store's table again");

    // A view replaced by another session: the plan reading it is remade.
    let other = fixture::connect(&server).await;
    other.batch_execute("CREATE VIEW big AS SELECT * FROM touches WHERE amount > 100").await.expect("view");
    let big = client.prepare("SELECT count(*) FROM big").await.expect("prepare view");
    assert_eq!(client.query_one(&big, &[]).await.expect("big").get::<_, i64>(0), 2);
    let before = plans();
    assert_eq!(client.query_one(&big, &[]).await.expect("big").get::<_, i64>(0), 2);
    assert_eq!(plans(), before, "a view's plan is kept too");
    other.batch_execute("CREATE OR REPLACE VIEW big AS SELECT * FROM touches WHERE amount > 10").await.expect("view");
    assert_eq!(client.query_one(&big, &[]).await.expect("big").get::<_, i64>(0), 5);
    server.stop().await;
}

/// libpq's PQexecPrepared (pgbench -M prepared) sends Bind, Describe, Execute for each run:
/// the Describe does not plan again either.
#[tokio::test]
async fn pgbench_prepared_plans_each_statement_once() {
    let dir = fixture::data_dir();
    let engine = fixture::engine(dir.path(), 8192, 0);
    let server = journeydb::server::start(engine.clone(), "127.0.0.1:0".parse().expect("addr")).await.expect("server");
    let script = dir.path().join("prepared.sql");
    std::fs::write(&script, "\\set n random(1, 100)\nSELECT count(*) FROM touches WHERE amount > :n;\n")
        .expect("script");
    let before = engine.planner().plans_made();
    let port = server.addr.port().to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("pgbench")
            .args(["-n", "-M", "prepared", "-t", "20", "-h", "127.0.0.1", "-p", &port, "-U", "journey", "-f"])
            .arg(&script)
            .arg("journeydb")
            .output()
    })
    .await
    .expect("join")
    .expect("pgbench must be installed (postgresql-client)");
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "pgbench failed:\n{text}");
    assert!(text.contains("number of transactions actually processed: 20/20"), "{text}");
    assert_eq!(engine.planner().plans_made() - before, 1, "20 executions, one plan:\n{text}");
    server.stop().await;
}

/// Stopping the server (`serve`'s shutdown): no new connections; a connection running a
/// statement gets its answer first; then every connection is told FATAL 57P01 and closed.
#[tokio::test]
async fn stopping_the_server_lets_running_statements_finish_then_closes_connections() {
    let dir = fixture::data_dir();
    let server = fixture::server(dir.path()).await;
    let conn_str = format!("host=127.0.0.1 port={} user=journey dbname=journeydb", server.addr.port());
    let (idle, connection) = tokio_postgres::connect(&conn_str, tokio_postgres::NoTls).await.expect("connect");
    let idle_ended = tokio::spawn(connection);
    assert_eq!(idle.query_one("SELECT 1", &[]).await.expect("idle").get::<_, i64>(0), 1);
    let busy = fixture::connect(&server).await;
    let running = tokio::spawn(async move {
        let sql = "SELECT count(*) FROM generate_series(1, 30000000) AS s(i) WHERE i % 7 = 0";
        busy.query_one(sql, &[]).await.map(|r| r.get::<_, i64>(0))
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!running.is_finished(), "the statement must still run when the server is told to stop");
    let asked = std::time::Instant::now();
    server.stop().await;
    assert!(asked.elapsed() < journeydb::server::SHUTDOWN_GRACE, "stopped within the grace: {:?}", asked.elapsed());
    assert_eq!(running.await.expect("join").expect("the running statement is answered"), 30_000_000 / 7);
    let closed = idle_ended.await.expect("join").expect_err("the idle connection is closed");
    assert_eq!(closed.code(), Some(&SqlState::ADMIN_SHUTDOWN), "{closed}");
    assert!(tokio_postgres::connect(&conn_str, tokio_postgres::NoTls).await.is_err(), "no new connections");
}
