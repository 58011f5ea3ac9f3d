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
    let artifacts = fixture::root().join("target/test-artifacts");
    let python = fixture::superset_python();
    let script = fixture::root().join("tests/python/superset.py");
    let (port, home) = (server.addr.port().to_string(), work.path().to_path_buf());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python).arg(script).arg(port).arg(home).arg(artifacts).output()
    })
    .await
    .expect("join")
    .expect("python runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("all ok"), "{text}");
    println!("{text}");
}
