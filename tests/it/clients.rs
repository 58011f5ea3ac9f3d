//! The Python stack analysts use, reading: psycopg 3 (text and binary results, server-side
//! parameters), psycopg2, asyncpg (binary protocol, prepared statements), and SQLAlchemy 2
//! with pandas.read_sql over both psycopg drivers, each running the funnel and attribution
//! reports and a parameterised query (`tests/python/reads.py`), all giving the same answers.

use crate::fixture;
use std::path::Path;
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_drivers_sqlalchemy_and_pandas_read_journey_reports() {
    let dir = fixture::data_dir();
    let server = fixture::server(dir.path()).await;
    let port = server.addr.port();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/reads.py");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(fixture::python()).arg(script).arg(port.to_string()).output().expect("python runs")
    })
    .await
    .expect("python");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("all ok"), "{text}");
    assert!(text.contains("ok pandas.read_sql funnel via postgresql+psycopg\n"), "{text}");
}
