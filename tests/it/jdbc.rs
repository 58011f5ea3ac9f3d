//! pgjdbc (Debian's libpostgresql-jdbc-java, Java 17) the way Metabase uses it: session
//! settings, typed parameters, a journey report and the DatabaseMetaData calls of Metabase's
//! sync (`tests/java/JdbcCheck.java`), and a replay of the SQL Metabase's PostgreSQL driver
//! sends (`tests/java/MetabaseSync.java`); each compiled here with javac.

use crate::fixture;
use std::path::Path;
use std::process::Command;

const JAR: &str = "/usr/share/java/postgresql.jar";

/// Compiles `tests/java/<class>.java` and runs it against a server on a fresh fixture; the
/// program prints `all ok` when every check passed.
async fn run_java(class: &'static str) {
    assert!(Path::new(JAR).exists(), "{JAR} is missing: scripts/install-test-deps.sh installs libpostgresql-jdbc-java");
    let dir = fixture::data_dir();
    let server = fixture::server(dir.path()).await;
    let port = server.addr.port();
    let classes = tempfile::tempdir().expect("tmp");
    let source = crate::fixture::root().join(format!("tests/java/{class}.java"));
    let out = Command::new("javac").args(["-cp", JAR, "-d"]).arg(classes.path()).arg(&source).output().expect("javac");
    assert!(out.status.success(), "javac: {}", String::from_utf8_lossy(&out.stderr));
    let classpath = format!("{JAR}:{}", classes.path().display());
    let out = tokio::task::spawn_blocking(move || {
        Command::new("java").args(["-cp", &classpath, class, &port.to_string()]).output().expect("java")
    })
    .await
    .expect("java");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("all ok"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgjdbc_queries_parameters_and_database_metadata() {
    run_java("JdbcCheck").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metabase_sync_and_query_sql_replayed_through_pgjdbc() {
    run_java("MetabaseSync").await;
}
