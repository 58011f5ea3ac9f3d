//! psql, the real client, against a real server: the acceptance session.

use crate::fixture;
use std::process::Command;

fn psql(port: u16, args: &[&str]) -> (String, String) {
    let out = Command::new("psql")
        .args(["-X", "-h", "127.0.0.1", "-p", &port.to_string(), "-U", "journey", "journeydb"])
        .args(args)
        .output()
        .expect("psql must be installed (postgresql-client; .ci/run installs it)");
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_session() {
    let dir = fixture::data_dir();
    let server = fixture::server(dir.path()).await;
    let port = server.addr.port();
    let (out, err) = tokio::task::spawn_blocking(move || {
        psql(
            port,
            &[
                "-c",
                "SELECT channel, count(*), sum(revenue) FROM events GROUP BY 1 ORDER BY 1",
                "-c",
                "\\dt",
                "-c",
                "\\d events",
                "-c",
                "SELECT * FROM missing_table",
                "-c",
                "\\x",
                "-c",
                "SELECT version()",
            ],
        )
    })
    .await
    .expect("psql");
    assert!(out.contains("    channel     | count |    sum    "), "{out}");
    assert!(out.contains("(9 rows)"), "{out}");
    assert!(out.contains(" public | app_events | table | journey"), "{out}");
    assert!(out.contains(" public | events     | table | journey"), "{out}");
    assert!(out.contains("Table \"public.events\""), "{out}");
    assert!(out.contains(" event_time   | timestamp with time zone |"), "{out}");
    assert!(out.contains(" revenue      | numeric(12,2)            |"), "{out}");
    assert!(err.contains("ERROR:  relation \"missing_table\" does not exist"), "{err}");
    // A second session: expanded display, timing, and the journey functions in `\df`.
    let (out, err) = tokio::task::spawn_blocking(move || {
        let args = [
            "-c",
            "\\x",
            "-c",
            "SELECT version()",
            "-c",
            "\\timing on",
            "-c",
            "SELECT 1 AS one",
            "-c",
            "\\x",
            "-c",
            "\\df",
            "-c",
            "\\d+ events",
            "-c",
            "\\dv journey.*",
            "-c",
            "\\dn",
            "-c",
            "\\d journey.touchpoints",
        ];
        psql(port, &args)
    })
    .await
    .expect("psql");
    assert!(err.is_empty(), "{err}");
    assert!(out.contains("version | PostgreSQL 16.6 (journeydb"), "{out}");
    assert!(out.contains("Time: "), "{out}");
    assert!(out.contains(" public | sessionize    | bigint "), "{out}");
    assert!(out.contains(" public | funnel        | TABLE(step integer, step_name text, users bigint,"), "{out}");
    assert!(
        out.contains(" revenue      | numeric(12,2)            |           |          |         | main     |"),
        "{out}"
    );
    // The journey model: its views listed and described, its schema in `\dn`.
    assert!(out.contains(" journey | events      | view | journey"), "{out}");
    assert!(out.contains(" journey | identities  | view | journey"), "{out}");
    assert!(out.contains(" journey | journey"), "{out}");
    assert!(out.contains("View \"journey.touchpoints\""), "{out}");
    assert!(out.contains(" person_id     | text                     |"), "{out}");
    server.stop().await;
}
