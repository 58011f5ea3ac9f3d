//! The Python stack analysts use, reading: psycopg 3 (text and binary results, server-side
//! parameters), psycopg2, asyncpg (binary protocol, prepared statements), and SQLAlchemy 2
//! with pandas.read_sql over both psycopg drivers, each running the funnel and attribution
//! reports and a parameterised query (`tests/python/reads.py`), all giving the same answers;
//! and instants in the zone SET TimeZone names; SQLAlchemy's whole inspector API. Run at the
//! pinned versions and again at the newest releases the registry serves.

use crate::fixture;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_drivers_sqlalchemy_and_pandas_read_journey_reports() {
    let dir = fixture::data_dir();
    let server = fixture::server(dir.path()).await;
    let text = fixture::run_python("reads.py", server.addr.port()).await;
    assert!(text.contains("ok pandas.read_sql funnel via postgresql+psycopg\n"), "{text}");
    assert!(text.contains("ok psycopg 3 follows SET TimeZone\n"), "{text}");
}

/// The same script with the drivers' newest releases (issue 24: SQLAlchemy 2.1's inspector
/// failed on journeydb while the tests pinned 2.0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_drivers_at_their_newest_releases_read_journey_reports() {
    let dir = fixture::data_dir();
    let server = fixture::server(dir.path()).await;
    let text = fixture::run_python_with(fixture::python_latest(), "reads.py", server.addr.port()).await;
    assert!(text.contains("ok pandas.read_sql_table via postgresql+psycopg\n"), "{text}");
    let versions = text.lines().find(|l| l.starts_with("versions: ")).unwrap_or_default();
    println!("{versions}");
}
