//! PostgreSQL 15 (Debian's `postgresql-15`, started here on a private port) as the oracle:
//! every statement of `sql/oracle/*.sql` runs on it and on journeydb in the simple protocol;
//! the answers, column names and rows as the text both send, must be the same, and where PostgreSQL fails journeydb
//! must fail with the same SQLSTATE.

use crate::fixture;
use std::path::{Path, PathBuf};
use std::process::Command;
use tokio_postgres::{Client, SimpleQueryMessage};

const BIN: &str = "/usr/lib/postgresql/15/bin";

/// A PostgreSQL 15 server in a temporary folder, stopped when dropped.
pub(crate) struct Postgres {
    dir: tempfile::TempDir,
    port: u16,
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

/// Runs a PostgreSQL program, as the `postgres` user when the tests run as root (the server
/// refuses to run as root).
fn pg_command(program: &str) -> Command {
    let path = Path::new(BIN).join(program);
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(path);
        c
    } else {
        Command::new(path)
    }
}

impl Postgres {
    /// The port it listens on, on 127.0.0.1.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    pub(crate) fn start() -> Postgres {
        assert!(
            Path::new(BIN).join("initdb").exists(),
            "{BIN}/initdb is missing: scripts/install-test-deps.sh installs postgresql-15"
        );
        let dir = tempfile::tempdir().expect("tmp");
        if is_root() {
            let out = Command::new("chown").args(["-R", "postgres"]).arg(dir.path()).output().expect("chown");
            assert!(out.status.success(), "chown: {}", String::from_utf8_lossy(&out.stderr));
        }
        let data: PathBuf = dir.path().join("data");
        let out = pg_command("initdb")
            .args(["-A", "trust", "-U", "journey", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync", "-D"])
            .arg(&data)
            .output()
            .expect("initdb");
        assert!(
            out.status.success(),
            "initdb: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
        let options =
            format!("-p {port} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c TimeZone=UTC", dir.path().display());
        let out = pg_command("pg_ctl")
            .args(["-w", "-t", "60", "-D"])
            .arg(&data)
            .args(["-o", &options, "-l"])
            .arg(dir.path().join("log"))
            .arg("start")
            .output()
            .expect("pg_ctl");
        let log = std::fs::read_to_string(dir.path().join("log")).unwrap_or_default();
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}{log}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Postgres { dir, port }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ =
            pg_command("pg_ctl").args(["-m", "immediate", "-D"]).arg(self.dir.path().join("data")).arg("stop").output();
    }
}

pub(crate) async fn connect(port: u16, dbname: &str) -> Client {
    let conn = format!("host=127.0.0.1 port={port} user=journey dbname={dbname}");
    let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// A statement's answer: its column names, then its rows, as text; or the SQLSTATE of its error.
pub(crate) async fn answer(client: &Client, sql: &str) -> Result<Vec<Vec<Option<String>>>, String> {
    match client.simple_query(sql).await {
        Ok(messages) => Ok(messages
            .iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::RowDescription(columns) => {
                    Some(columns.iter().map(|c| Some(format!("column {}", c.name()))).collect())
                }
                SimpleQueryMessage::Row(r) => Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect()),
                _ => None,
            })
            .collect()),
        Err(e) => Err(e.code().map(|c| c.code().to_string()).unwrap_or_else(|| e.to_string())),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_and_errors_as_postgresql_15_gives_them() {
    let postgres = tokio::task::spawn_blocking(Postgres::start).await.expect("start");
    let oracle = connect(postgres.port, "postgres").await;
    let dir = fixture::data_dir();
    let server = fixture::server(dir.path()).await;
    let ours = fixture::connect(&server).await;
    let folder = crate::fixture::root().join("sql/oracle");
    let mut files: Vec<_> = std::fs::read_dir(&folder).expect("sql/oracle").map(|e| e.expect("entry").path()).collect();
    files.sort();
    let mut checked = 0;
    let mut differences = vec![];
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read");
        for (n, line) in text.lines().enumerate() {
            let sql = line.trim();
            if sql.is_empty() || sql.starts_with("--") {
                continue;
            }
            let expected = answer(&oracle, sql).await;
            let got = answer(&ours, sql).await;
            checked += 1;
            if expected != got {
                differences.push(format!(
                    "{}:{}: {sql}\n  postgresql: {expected:?}\n  journeydb:  {got:?}",
                    file.file_name().unwrap_or_default().to_string_lossy(),
                    n + 1
                ));
            }
        }
    }
    assert!(checked > 20, "only {checked} statements");
    assert!(differences.is_empty(), "{} of {checked} differ:\n{}", differences.len(), differences.join("\n"));
    // The server kept serving through the errors.
    assert_eq!(
        answer(&ours, "SELECT 1 AS one").await,
        Ok(vec![vec![Some("column one".into())], vec![Some("1".into())]])
    );
}
