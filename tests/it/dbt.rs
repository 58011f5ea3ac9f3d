//! dbt-core 1.11 with dbt-postgres 1.11 (from PyPI, in `.venv-dbt`) builds the project of
//! `tests/dbt/` against a real server: sources on the demo events, staging views, tables
//! calling attribute() and funnel(), incremental models (delete+insert, and merge), a seed, a snapshot
//! (check strategy: UPDATE ... FROM and md5) and schema tests, documentation persisted as
//! comments. Twice: the second run replaces every table and
//! view and takes the incremental path. Then `dbt docs generate` reads the catalog back.

use crate::fixture;
use std::path::Path;
use std::process::Command;

fn dbt(command: &'static [&'static str], port: u16, work: &Path) -> String {
    let project = crate::fixture::root().join("tests/dbt");
    let out = Command::new(fixture::dbt())
        .args(command)
        .arg("--profiles-dir")
        .arg(&project)
        .arg("--project-dir")
        .arg(&project)
        .env("JOURNEYDB_PORT", port.to_string())
        .env("DBT_TARGET_PATH", work.join("target"))
        .env("DBT_LOG_PATH", work.join("logs"))
        .env("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        .env("DBT_PARTIAL_PARSE", "false")
        .output()
        .expect("dbt runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "dbt {command:?} failed:\n{text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dbt_build_passes_twice() {
    let dir = fixture::data_dir();
    let server = fixture::server(dir.path()).await;
    build_twice_and_check(&server).await;
}

/// `dbt build` twice against `server` (over the fixture's data), then its tables, views,
/// snapshot, comments and catalog checked.
pub async fn build_twice_and_check(server: &journeydb::server::RunningServer) {
    let port = server.addr.port();
    let work = tempfile::tempdir().expect("tmp");
    let w = work.path().to_path_buf();
    // The second run hands Email to another owner: the snapshot closes its row and adds one.
    for (run, args) in [(1, &["build"][..]), (2, &["build", "--vars", "{round: 2}"][..])] {
        let w = w.clone();
        let args: &'static [&'static str] = args;
        let out = tokio::task::spawn_blocking(move || dbt(args, port, &w)).await.expect("dbt");
        assert!(out.contains("PASS=20 WARN=0 ERROR=0 SKIP=0"), "run {run}:\n{out}");
    }
    let client = fixture::connect(server).await;
    // The snapshot (issue 24: UPDATE ... FROM, md5): every channel current once, Email twice.
    let rows = client
        .query(
            "SELECT channel, owner, dbt_valid_to IS NULL FROM snapshots.channel_owners_snapshot \
             WHERE channel = 'Email' ORDER BY dbt_valid_from, dbt_valid_to NULLS LAST",
            &[],
        )
        .await
        .expect("snapshot");
    let email: Vec<(String, bool)> = rows.iter().map(|r| (r.get(1), r.get(2))).collect();
    assert_eq!(email, [("lifecycle".to_string(), false), ("growth".to_string(), true)]);
    let (all, current, seeded): (i64, i64, i64) = {
        let r = client
            .query_one(
                "SELECT count(*), count(*) FILTER (WHERE dbt_valid_to IS NULL), \
                 (SELECT count(*) FROM analytics.channel_owners) FROM snapshots.channel_owners_snapshot",
                &[],
            )
            .await
            .expect("counts");
        (r.get(0), r.get(1), r.get(2))
    };
    assert_eq!((all, current), (seeded + 1, seeded));
    // The incremental model recomputed its last day without duplicating it.
    let r = client
        .query_one(
            "SELECT (SELECT count(*) FROM events), (SELECT CAST(sum(events) AS BIGINT) FROM analytics.daily_channel_events)",
            &[],
        )
        .await
        .expect("counts");
    assert_eq!(r.get::<_, i64>(0), r.get::<_, i64>(1));
    // So did the one kept by MERGE (dbt's `merge` strategy, issue 24), row for row.
    let same: i64 = client
        .query_one(
            "SELECT count(*) FROM (SELECT day_channel, CAST(events AS BIGINT) FROM analytics.daily_channel_events \
             EXCEPT ALL SELECT day_channel, CAST(events AS BIGINT) FROM analytics.daily_channel_merged) AS d",
            &[],
        )
        .await
        .expect("merged")
        .get(0);
    assert_eq!(same, 0);
    let merged: i64 =
        client.query_one("SELECT count(*) FROM analytics.daily_channel_merged", &[]).await.expect("merged").get(0);
    let kept: i64 =
        client.query_one("SELECT count(*) FROM analytics.daily_channel_events", &[]).await.expect("kept").get(0);
    assert_eq!(merged, kept);
    // Every model's credits add up to the journey model's purchases.
    let rows = client
        .query("SELECT model, CAST(sum(conversions) AS TEXT) FROM analytics.channel_attribution GROUP BY model ORDER BY model", &[])
        .await
        .expect("attribution");
    let purchases: i64 =
        client.query_one("SELECT count(*) FROM journey.conversions", &[]).await.expect("conversions").get(0);
    assert_eq!(rows.len(), 3);
    for r in rows {
        let total: String = r.get(1);
        assert_eq!(total.parse::<f64>().expect("number"), purchases as f64, "{}", r.get::<_, String>(0));
    }
    let tables: Vec<String> = client
        .query("SELECT tablename FROM pg_tables WHERE schemaname = 'analytics' ORDER BY 1", &[])
        .await
        .expect("tables")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        tables,
        ["buyer_funnel", "channel_attribution", "channel_owners", "daily_channel_events", "daily_channel_merged"]
    );
    let views: Vec<String> = client
        .query("SELECT viewname FROM pg_views WHERE schemaname = 'analytics' ORDER BY 1", &[])
        .await
        .expect("views")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(views, ["stg_events", "stg_purchases"], "no __dbt_tmp or __dbt_backup relation is left");
    // persist_docs: dbt's COMMENT ON statements.
    let comment: String = client
        .query_one(
            "SELECT obj_description(c.oid, 'pg_class') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'analytics' AND c.relname = 'channel_attribution'",
            &[],
        )
        .await
        .expect("comment")
        .get(0);
    assert!(comment.starts_with("Revenue credited to each channel"), "{comment}");
    // docs generate: dbt's catalog query (pg_class, pg_attribute, format_type, pg_description).
    let w = w.clone();
    let out = tokio::task::spawn_blocking(move || dbt(&["docs", "generate"], port, &w)).await.expect("dbt docs");
    assert!(!out.contains("Encountered an error while generating catalog"), "{out}");
    let catalog = std::fs::read_to_string(work.path().join("target/catalog.json")).expect("catalog.json");
    for needle in [
        "\"model.journey_project.channel_attribution\"",
        "\"numeric(38,2)\"",
        "\"source.journey_project.raw.events\"",
        "\"timestamp with time zone\"",
        "\"The attribution model\"",
    ] {
        assert!(catalog.contains(needle), "{needle} missing from catalog.json");
    }
}
