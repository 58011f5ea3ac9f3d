//! Apache Superset 6.1 (PyPI, `.venv-superset`) against a journeydb server, through its own
//! PostgreSQL driver and REST API (`tests/python/superset.py`): the database added and tested,
//! schemas, tables, views and columns reflected, SQL Lab running every cookbook example, the
//! dashboard bundle of `examples/superset/` imported, each chart's data from the chart-data API
//! against the same question over the wire, and a headless Chromium screenshot of the
//! dashboard (`target/test-artifacts/superset-dashboard.png`).

use crate::fixture;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn superset_shows_journeydb_dashboards_unchanged() {
    let dir = fixture::data_dir();
    let server = fixture::server(dir.path()).await;
    let work = tempfile::tempdir().expect("superset home");
    let artifacts = fixture::root().join("target/test-artifacts").display().to_string();
    let args = vec![server.addr.port().to_string(), work.path().display().to_string(), artifacts];
    let text = fixture::run_script(fixture::superset_python(), "superset.py", args).await;
    println!("{text}");
}
