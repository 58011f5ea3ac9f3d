//! Issue 25: statements that took the server down. The server runs as its own process (the
//! `journeydb` binary) under an address-space limit (`prlimit --as`), so that a regression
//! fails this test instead of exhausting the machine; after every probe the process must still
//! be running and answer the next connection.

use crate::fixture::{data_dir, text_rows};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The server's address space: generous for its thread stacks and the 1 GB memory limit,
/// far below the machine's memory.
const ADDRESS_SPACE_BYTES: u64 = 8 << 30;

/// The `journeydb` binary serving `dir` on a free port, under the address-space limit.
struct Server {
    child: Child,
    port: u16,
    _config: tempfile::NamedTempFile,
}

impl Server {
    fn start(dir: &std::path::Path) -> Server {
        let config = tempfile::NamedTempFile::new().expect("config");
        std::fs::write(config.path(), "memory_limit = \"1GB\"\nlisten = \"127.0.0.1:0\"\n").expect("write config");
        let mut command = Command::new("prlimit");
        command
            .arg(format!("--as={ADDRESS_SPACE_BYTES}"))
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_journeydb"))
            .args(["serve", "--config"])
            .arg(config.path())
            .arg("--data")
            .arg(dir);
        let (child, port) = crate::fixture::spawn_listening(command);
        Server { child, port, _config: config }
    }

    async fn client(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(
            &format!("host=127.0.0.1 port={} user=journey dbname=journeydb", self.port),
            tokio_postgres::NoTls,
        )
        .await
        .expect("connect");
        tokio::spawn(conn);
        client
    }

    /// Still running, and a new connection answers.
    async fn assert_alive(&mut self, after: &str) {
        assert!(self.child.try_wait().expect("wait").is_none(), "the server died after {after}");
        let c = self.client().await;
        assert_eq!(
            text_rows(c.simple_query("SELECT 1").await.expect("SELECT 1")),
            [[Some("1".to_string())]],
            "{after}"
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The SQLSTATE of `sql`, or "ok" and its first value.
async fn outcome(c: &tokio_postgres::Client, sql: &str) -> String {
    match c.simple_query(sql).await {
        Ok(m) => format!("ok {}", text_rows(m).first().and_then(|r| r[0].clone()).unwrap_or_default()),
        Err(e) => e.code().map(|c| c.code().to_string()).unwrap_or_else(|| format!("no code: {e}")),
    }
}

fn terms(n: usize, op: &str, term: &str) -> String {
    vec![term; n].join(op)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_statement_takes_the_server_down() {
    let dir = data_dir();
    let mut server = Server::start(dir.path());
    let c = server.client().await;
    let cases: Vec<(String, &str)> = vec![
        // Flat chains: what PostgreSQL answers runs, what nests too deep is 54001.
        (format!("SELECT {}", terms(1000, " + ", "1")), "ok 1000"),
        (format!("SELECT length({})", terms(1000, " || ", "'a'")), "ok 1000"),
        (format!("SELECT count(*) FROM events WHERE {}", terms(1000, " AND ", "event_time IS NOT NULL")), "ok 20000"),
        (format!("SELECT count(*) FROM events WHERE {}", terms(20_000, " OR ", "revenue = 1")), "ok 0"),
        (format!("SELECT 1{}", "::int".repeat(300)), "ok 1"),
        (format!("SELECT count(*) FROM ({}) u", terms(500, " UNION ALL ", "SELECT 1 AS x")), "ok 500"),
        (format!("SELECT {}", terms(20_000, " + ", "1")), "54001"),
        (format!("SELECT 1{}", "::int".repeat(20_000)), "54001"),
        // Nested calls parsed in linear time (2^depth before).
        (format!("SELECT {}1{}", "abs(".repeat(40), ")".repeat(40)), "ok 1"),
        (format!("SELECT {}1{}", "coalesce(".repeat(40), ")".repeat(40)), "ok 1"),
        (format!("SELECT {}1{}", "(SELECT ".repeat(12), ")".repeat(12)), "ok 1"),
        // DataFusion's optimizer doubles its time with each level of subqueries in expressions.
        (format!("SELECT {}1{}", "(SELECT ".repeat(30), ")".repeat(30)), "54001"),
        (format!("SELECT 1 WHERE 1 IN {}(SELECT 1){}", "(SELECT 1 WHERE 1 IN ".repeat(30), ")".repeat(30)), "54001"),
        (format!("SELECT count(*) FROM {}events{}", "(SELECT * FROM ".repeat(40), ") t".repeat(40)), "ok 20000"),
        // Sizes no value can hold, refused before anything is allocated.
        ("SELECT lpad('x', 2147483647)".into(), "54000"),
        ("SELECT repeat('x', 2000000000)".into(), "54000"),
        ("SELECT format('%9999999999s', 1)".into(), "22003"),
        ("SELECT array_repeat(1, 1000000000)".into(), "54000"),
        // Small ones: the right SQLSTATE instead of XX000 or a silent acceptance.
        ("SELECT 'a' ~ '('".into(), "2201B"),
        ("SELECT regexp_replace('a', '(', 'b')".into(), "2201B"),
        ("SET statement_timeout = 'abc'".into(), "22023"),
        ("SET statement_timeout = '-1'".into(), "22023"),
    ];
    for (sql, want) in &cases {
        let started = Instant::now();
        let got = outcome(&c, sql).await;
        let head: String = sql.chars().take(60).collect();
        assert_eq!(&got, want, "{head}...");
        assert!(started.elapsed() < Duration::from_secs(60), "{head}... took {:?}", started.elapsed());
        server.assert_alive(&head).await;
    }
}

/// Views that read each other: a cycle is refused when it is made, and a view that expands to
/// thousands of views fails fast with 54001 instead of growing without bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_that_read_each_other_cannot_take_the_server_down() {
    let dir = data_dir();
    let mut server = Server::start(dir.path());
    let c = server.client().await;
    c.batch_execute("CREATE VIEW va AS SELECT 1 AS x; CREATE VIEW vb AS SELECT * FROM va UNION ALL SELECT * FROM va")
        .await
        .expect("views");
    assert_eq!(outcome(&c, "CREATE OR REPLACE VIEW va AS SELECT * FROM vb UNION ALL SELECT * FROM vb").await, "42P17");
    assert_eq!(outcome(&c, "CREATE OR REPLACE VIEW va AS SELECT * FROM va").await, "42P17");
    assert_eq!(outcome(&c, "SELECT count(*) FROM vb").await, "ok 2");
    // Each view reads the one before twice: v_i's plan expands to about 7 * 2^i nodes, beyond
    // the bound (100,000) from v14 on, which is then refused quickly instead of growing on.
    c.batch_execute("CREATE VIEW v0 AS SELECT 1 AS x").await.expect("v0");
    let mut refused = None;
    for i in 1..=20 {
        let p = i - 1;
        let started = Instant::now();
        let got = outcome(&c, &format!("CREATE VIEW v{i} AS SELECT * FROM v{p} UNION ALL SELECT * FROM v{p}")).await;
        assert!(started.elapsed() < Duration::from_secs(30), "v{i} took {:?}", started.elapsed());
        if got == "54001" {
            refused = Some(i);
            break;
        }
        assert_eq!(got, "ok ", "v{i}");
    }
    assert!(refused.is_some_and(|i| (12..=16).contains(&i)), "{refused:?}");
    assert_eq!(outcome(&c, "SELECT count(*) FROM v8").await, "ok 256");
    // Catalog listings still answer, with every view listed.
    let got = outcome(&c, "SELECT count(*) FROM information_schema.tables WHERE table_name LIKE 'v%'").await;
    assert!(got.starts_with("ok "), "{got}");
    server.assert_alive("the views").await;
}
