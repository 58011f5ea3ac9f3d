//! Limits: the connection limit (53300 beyond it, a freed place is taken again) and the memory
//! limit (a sort or a per-key window larger than the memory spills and answers; what cannot
//! spill fails with 53200),
//! the server serving every other connection throughout.

use crate::fixture;
use tokio_postgres::error::SqlState;

async fn try_connect(port: u16) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let conn = format!("host=127.0.0.1 port={port} user=journey dbname=journeydb");
    let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// Issue 25: a place was taken at TCP accept and held for pgwire's 60 s startup timeout, so
/// five idle sockets locked everyone out of a server with `max_connections = 5`. Places are
/// now taken after authentication, and sockets that never authenticate have places of their
/// own for a short while.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_do_not_take_the_places_of_users() {
    let dir = fixture::data_dir();
    let server = fixture::server_with(dir.path(), |c| c.max_connections = 3).await;
    let port = server.addr.port();
    let mut idle = vec![];
    for _ in 0..20 {
        idle.push(tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("socket"));
    }
    let started = std::time::Instant::now();
    let mut open = vec![];
    for _ in 0..3 {
        open.push(try_connect(port).await.expect("the idle sockets hold no place"));
    }
    assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
    let Err(err) = try_connect(port).await else { panic!("a fourth user must be refused") };
    assert_eq!(err.code(), Some(&SqlState::TOO_MANY_CONNECTIONS), "{err:?}");
    drop(idle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_are_refused_with_53300() {
    let dir = fixture::data_dir();
    let server = fixture::server_with(dir.path(), |c| c.max_connections = 3).await;
    let port = server.addr.port();
    let mut open = vec![];
    for _ in 0..3 {
        open.push(try_connect(port).await.expect("within the limit"));
    }
    let Err(err) = try_connect(port).await else { panic!("a fourth connection must be refused") };
    assert_eq!(err.code(), Some(&SqlState::TOO_MANY_CONNECTIONS), "{err:?}");
    for c in &open {
        let one: i32 = c.query_one("SELECT 1::int", &[]).await.expect("still serving").get(0);
        assert_eq!(one, 1);
    }
    // A closed connection gives its place back.
    drop(open.pop());
    let start = std::time::Instant::now();
    let again = loop {
        match try_connect(port).await {
            Ok(c) => break c,
            Err(e) if start.elapsed().as_secs() < 10 => {
                assert_eq!(e.code(), Some(&SqlState::TOO_MANY_CONNECTIONS));
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => panic!("the place was not given back: {e:?}"),
        }
    };
    let n: i64 = again.query_one("SELECT count(*) FROM events", &[]).await.expect("query").get(0);
    assert_eq!(n, 20_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_larger_than_the_memory_limit_spill_or_fail_with_53200() {
    let dir = fixture::data_dir();
    let spill = tempfile::tempdir().expect("spill dir");
    let spill_path = spill.path().to_path_buf();
    let server = fixture::server_with(dir.path(), move |c| {
        c.memory_limit = "64MB".into();
        c.spill_dir = Some(spill_path);
        c.target_partitions = 2;
    })
    .await;
    let client = fixture::connect(&server).await;
    let other = fixture::connect(&server).await;
    // 2 million rows sorted by a text key: far more than 64 MB in Arrow, so the sort spills.
    let sorted = "SELECT e.user_id, e.page_url, g FROM events e CROSS JOIN generate_series(1, 100) g \
                  ORDER BY e.page_url, e.user_id, g";
    let stream = client.copy_out(&format!("COPY ({sorted}) TO STDOUT")).await.expect("sort runs");
    futures::pin_mut!(stream);
    let (mut lines, mut previous, mut ordered) = (0u64, String::new(), true);
    let mut pending = Vec::new();
    while let Some(chunk) = futures::StreamExt::next(&mut stream).await {
        pending.extend_from_slice(&chunk.expect("chunk"));
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let key = String::from_utf8_lossy(&line).split('\t').nth(1).unwrap_or_default().to_string();
            ordered &= key >= previous || key == "\\N";
            previous = key;
            lines += 1;
        }
    }
    assert_eq!(lines, 2_000_000);
    assert!(ordered, "the spilled sort still sorts");
    // A window over 2 million rows grouped per key (journeydb's HashWindowExec): its rows
    // spill into files by key and each file is evaluated on its own; the same answer as the
    // per-key counts give (each of the 100 copies of a person's events numbered 1..n).
    let window = "SELECT count(*), CAST(sum(rn) AS BIGINT) FROM (SELECT row_number() OVER (PARTITION BY concat(e.user_id, '/', g) \
                  ORDER BY e.event_time) AS rn FROM events e CROSS JOIN generate_series(1, 100) g) x";
    let plan: Vec<String> = client
        .query(&format!("EXPLAIN {window}"), &[])
        .await
        .expect("explain")
        .iter()
        .map(|r| r.get::<_, String>(1))
        .collect();
    assert!(plan.iter().any(|p| p.contains("HashWindowExec")), "{plan:?}");
    let row = client.query_one(window, &[]).await.expect("the window spills and answers");
    let (count, sum): (i64, i64) = (row.get(0), row.get(1));
    let expected: i64 = client
        .query_one(
            "SELECT CAST(sum(c * (c + 1) / 2) AS BIGINT) FROM (SELECT count(*) AS c FROM events GROUP BY user_id) t",
            &[],
        )
        .await
        .expect("expected")
        .get(0);
    assert_eq!((count, sum), (2_000_000, 100 * expected));
    // window_funnel over 6 million rows, 300 copies of each user's events (journeydb's
    // FunnelAggregateExec): group states outgrow 64 MB, spill by key hash and each file is
    // merged on its own; each copy of a user's events reaches the user's level.
    let funnel = |from: &str, group: &str| {
        format!(
            "SELECT level, count(*) FROM (SELECT window_funnel(INTERVAL '7 days', e.event_time, e.event_name = 'page_view', \
             e.event_name = 'email_click', e.event_name = 'form_submit') AS level FROM {from} GROUP BY {group}) x \
             GROUP BY level ORDER BY level"
        )
    };
    let copies = funnel("events e CROSS JOIN generate_series(1, 300) g", "concat(e.user_id, '/', g)");
    let analyzed: Vec<String> = client
        .query(&format!("EXPLAIN ANALYZE {copies}"), &[])
        .await
        .expect("explain analyze")
        .iter()
        .map(|r| r.get::<_, String>(1))
        .collect();
    let line = analyzed.join("\n").lines().find(|l| l.contains("FunnelAggregateExec")).map(str::to_string);
    let line = line.unwrap_or_else(|| panic!("{analyzed:?}"));
    assert!(!line.contains("spill_count=0"), "the funnel's groups spilled: {line}");
    let levels =
        |rows: Vec<tokio_postgres::Row>| -> Vec<(i32, i64)> { rows.iter().map(|r| (r.get(0), r.get(1))).collect() };
    let spilled = levels(client.query(&copies, &[]).await.expect("the funnel spills and answers"));
    let once = levels(client.query(&funnel("events e", "e.user_id"), &[]).await.expect("once"));
    assert!(once.len() >= 3, "{once:?}");
    assert_eq!(spilled, once.iter().map(|&(l, n)| (l, 300 * n)).collect::<Vec<_>>());
    // A hash join's build side cannot spill: 53200 when it does not fit, and the server serves on.
    let big =
        "SELECT e.page_url || e.user_id || e.anonymous_id || g AS k FROM events e CROSS JOIN generate_series(1, 100) g";
    let err = client
        .query(&format!("SELECT count(*) FROM ({big}) a JOIN ({big}) b ON a.k = b.k"), &[])
        .await
        .expect_err("beyond the memory limit");
    assert_eq!(err.code(), Some(&SqlState::OUT_OF_MEMORY), "{err:?}");
    let n: i64 = other.query_one("SELECT count(*) FROM events", &[]).await.expect("other connection").get(0);
    assert_eq!(n, 20_000);
    let n: i64 = client.query_one("SELECT count(*) FROM events", &[]).await.expect("same connection").get(0);
    assert_eq!(n, 20_000);
}

/// A report holds its partitions' events (or their per-person state) while it reads them,
/// reserved from the memory pool as it grows: each report over 200 copies of every cookie (4
/// million events) outgrows a 32 MB pool and fails with 53200 naming the report, where before
/// it grew past the limit unseen; over the events once, each answers, and the server serves on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_reserve_their_state_from_the_memory_pool() {
    let dir = fixture::data_dir();
    let spill = tempfile::tempdir().expect("spill dir");
    let spill_path = spill.path().to_path_buf();
    let server = fixture::server_with(dir.path(), move |c| {
        c.memory_limit = "32MB".into();
        c.spill_dir = Some(spill_path);
        // One partition: a sort that spills holds nothing another partition's sort could want.
        c.target_partitions = 1;
    })
    .await;
    let client = fixture::connect(&server).await;
    let copies = "SELECT concat(e.anonymous_id, ''/'', g) AS p, e.event_time, e.event_name, e.channel, e.revenue \
                  FROM events e CROSS JOIN generate_series(1, 200) g";
    let once = "SELECT anonymous_id AS p, event_time, event_name, channel, revenue FROM events";
    let reports = [
        ("funnel", "funnel('page_view', 'email_click', source => '{s}', person => 'p')"),
        ("funnel_correlation", "funnel_correlation('page_view', 'email_click', source => '{s}', person => 'p')"),
        (
            "attribute",
            "attribute('linear', source => '{s}', person => 'p', touch => 'channel IS NOT NULL', conversion => 'purchase')",
        ),
        (
            "retention",
            "retention(start => 'page_view', return => 'page_view', periods => 4, source => '{s}', person => 'p')",
        ),
        ("lifecycle", "lifecycle(event => 'page_view', interval => 'week', source => '{s}', person => 'p')"),
        ("stickiness", "stickiness(event => 'page_view', source => '{s}', person => 'p')"),
        ("journey_paths", "journey_paths(source => '{s}', person => 'p')"),
    ];
    for (name, call) in reports {
        let sql = |source: &str| format!("SELECT count(*) FROM {}", call.replace("{s}", source));
        let err = client.query_one(&sql(copies), &[]).await.expect_err("beyond the memory limit");
        assert_eq!(err.code(), Some(&SqlState::OUT_OF_MEMORY), "{name}: {err:?}");
        let db = err.as_db_error().expect("a server error");
        let said = format!("{} {}", db.message(), db.detail().unwrap_or_default());
        assert!(said.contains(&format!("{name}[")), "{name} is named: {said}");
        let rows: i64 = client.query_one(&sql(once), &[]).await.expect("the report fits once").get(0);
        assert!(rows > 0, "{name}");
    }
}
