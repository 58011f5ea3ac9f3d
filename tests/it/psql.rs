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
            "-c",
            "\\d+ journey.conversions",
            "-c",
            "\\x",
            "-c",
            "\\df+ funnel",
        ];
        psql(port, &args)
    })
    .await
    .expect("psql");
    assert!(err.is_empty(), "{err}");
    assert!(out.contains("version | PostgreSQL 16.6 (journeydb"), "{out}");
    assert!(out.contains("Time: "), "{out}");
    // `\df`: the name column is as wide as the longest journey function's name.
    let width = journeydb_udfs::catalog().iter().map(|d| d.name.len()).max().unwrap_or(0);
    assert!(out.contains(&format!(" public | {:<width$} | bigint ", "sessionize")), "{out}");
    assert!(
        out.contains(&format!(" public | {:<width$} | TABLE(step integer, step_name text, users bigint,", "funnel")),
        "{out}"
    );
    assert!(out.contains(&format!(" public | {:<width$} | boolean ", "sequence_match")), "{out}");
    assert!(
        out.contains(" revenue      | numeric(12,2)            |           |          |         | main     |"),
        "{out}"
    );
    // `\df+`: each function's summary, from the reference kept in its code (udfs/src/docs.rs).
    let summary = journeydb_udfs::table::funnel::DOC.summary;
    assert!(out.contains(&format!("Description         | {summary}")), "{out}");
    assert!(out.contains("Language            | internal"), "{out}");
    // The journey model: its views listed and described, its schema in `\dn`.
    assert!(out.contains(" journey | events      | view | journey"), "{out}");
    assert!(out.contains(" journey | identities  | view | journey"), "{out}");
    assert!(out.contains(" journey | journey"), "{out}");
    assert!(out.contains("View \"journey.touchpoints\""), "{out}");
    // (psql pads the name column to the longest name, `session_channel`.)
    assert!(out.lines().any(|l| l.starts_with(" person_id ") && l.contains("| text                     |")), "{out}");
    // `\d+` of a view shows its definition (pg_get_viewdef).
    assert!(out.contains("View definition:\nSELECT *, row_number() OVER (PARTITION BY person_id"), "{out}");
    server.stop().await;
}

/// psql's `\copy` both ways (COPY FROM STDIN / TO STDOUT underneath), DDL, and `\d` of what it
/// made, with comments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_copy_and_ddl() {
    let dir = fixture::data_dir();
    let server = fixture::server(dir.path()).await;
    let port = server.addr.port();
    let files = tempfile::tempdir().expect("tmp");
    let input = files.path().join("leads.csv");
    std::fs::write(&input, "id,email,score\n1,a@x.io,0.5\n2,\"b,c@x.io\",\n3,,1.25\n").expect("csv");
    let output = files.path().join("out.csv");
    let (i, o) = (input.display().to_string(), output.display().to_string());
    let (out, err) = tokio::task::spawn_blocking(move || {
        let copy_in = format!("\\copy crm.leads from '{i}' with (format csv, header)");
        let copy_out = format!("\\copy (select id, email from crm.leads order by id) to '{o}' with csv header");
        psql(
            port,
            &[
                "-c",
                "CREATE SCHEMA crm",
                "-c",
                "CREATE TABLE crm.leads (id int, email text, score double precision)",
                "-c",
                &copy_in,
                "-c",
                &copy_out,
                "-c",
                "COMMENT ON TABLE crm.leads IS 'inbound leads'",
                "-c",
                "COMMENT ON COLUMN crm.leads.email IS 'work address'",
                "-c",
                "CREATE VIEW crm.scored AS SELECT id, score FROM crm.leads WHERE score IS NOT NULL",
                "-c",
                "\\d+ crm.leads",
                "-c",
                "\\dt+ crm.*",
                "-c",
                "\\dv crm.*",
                "-c",
                "\\dn",
                "-c",
                "SELECT count(*) FROM crm.scored",
            ],
        )
    })
    .await
    .expect("psql");
    assert!(err.is_empty(), "{err}");
    assert!(out.contains("COPY 3"), "{out}");
    assert_eq!(std::fs::read_to_string(&output).expect("out"), "id,email\n1,a@x.io\n2,\"b,c@x.io\"\n3,\n");
    assert!(out.contains("Table \"crm.leads\""), "{out}");
    assert!(out.contains(" email  | text             |           |          |         | extended |"), "{out}");
    assert!(out.contains("work address"), "{out}");
    assert!(out.contains(" crm    | leads | table | journey"), "{out}");
    assert!(out.contains("inbound leads"), "{out}");
    assert!(out.contains(" crm    | scored | view | journey"), "{out}");
    assert!(out.contains(" crm     | journey"), "{out}");
    assert!(out.contains("     2\n"), "{out}");
    server.stop().await;
}
