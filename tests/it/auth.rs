//! Authentication and TLS against a real server: SCRAM-SHA-256 users from the configuration
//! (tokio-postgres and psql log in with the password; a wrong, an empty or an unknown user's
//! password fail with 28P01, each repeated failure answered later, and the server serves on), TLS with a certificate made by openssl
//! (psql with sslmode=require, and SCRAM channel binding over it), and a server without TLS
//! refusing sslmode=require.

use crate::fixture;
use journeydb::config::UserConfig;
use std::process::Command;
use tokio_postgres::error::SqlState;

async fn login(port: u16, user: &str, password: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let conn = format!("host=127.0.0.1 port={port} user={user} password='{password}' dbname=journeydb");
    let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

fn psql(port: u16, password: &str, sslmode: &str, sql: &str) -> (bool, String) {
    let out = Command::new("psql")
        .args(["-X", "-At", "-h", "127.0.0.1", "-p", &port.to_string(), "-U", "analyst", "-d", "journeydb", "-c", sql])
        .env("PGPASSWORD", password)
        .env("PGSSLMODE", sslmode)
        .output()
        .expect("psql");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_users_and_tls() {
    let dir = fixture::data_dir();
    let certs = tempfile::tempdir().expect("tmp");
    let (cert, key) = fixture::self_signed_cert(certs.path());
    let verifier = journeydb::server::auth::hash_password("s3cret pass").expect("hash");
    let (c, k) = (cert.clone(), key.clone());
    let server = fixture::server_with(dir.path(), move |config| {
        config.auth.users = vec![UserConfig { name: "analyst".into(), password: verifier, superuser: false }];
        config.auth.tls_cert = Some(c);
        config.auth.tls_key = Some(k);
    })
    .await;
    let port = server.addr.port();

    let client = login(port, "analyst", "s3cret pass").await.expect("the right password");
    let n: i64 = client.query_one("SELECT count(*) FROM events", &[]).await.expect("query").get(0);
    assert_eq!(n, 20_000);
    for (user, password) in [("analyst", "wrong"), ("analyst", ""), ("mallory", "s3cret pass")] {
        let Err(err) = login(port, user, password).await else { panic!("{user}/{password:?} must not log in") };
        assert_eq!(err.code(), Some(&SqlState::INVALID_PASSWORD), "{user}: {err:?}");
    }
    let n: i64 = client.query_one("SELECT count(*) FROM events", &[]).await.expect("still serving").get(0);
    assert_eq!(n, 20_000);
    // Repeated failures from one address are answered ever later (the three above took
    // 1, 2 and 3 steps); the right password is not delayed.
    let step = journeydb::server::auth::Failures::STEP;
    let started = std::time::Instant::now();
    for _ in 0..3 {
        let Err(err) = login(port, "analyst", "guess").await else { panic!("a guess must not log in") };
        assert_eq!(err.code(), Some(&SqlState::INVALID_PASSWORD), "{err:?}");
    }
    assert!(started.elapsed() >= step * (4 + 5 + 6), "three more failures took {:?}", started.elapsed());
    let started = std::time::Instant::now();
    login(port, "analyst", "s3cret pass").await.expect("the right password after failures");
    assert!(started.elapsed() < std::time::Duration::from_secs(1), "a good login took {:?}", started.elapsed());

    // psql over TLS (SCRAM-SHA-256-PLUS when channel binding is offered), and without it.
    let (ok, out) =
        tokio::task::spawn_blocking(move || psql(port, "s3cret pass", "require", "SELECT count(*) FROM events"))
            .await
            .expect("psql");
    assert!(ok && out.trim() == "20000", "{out}");
    let (ok, out) = tokio::task::spawn_blocking(move || {
        Command::new("psql")
            .args([
                "-X",
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "analyst",
                "-d",
                "journeydb",
                "-c",
                "\\conninfo",
            ])
            .env("PGPASSWORD", "s3cret pass")
            .env("PGSSLMODE", "require")
            .output()
            .map(|o| (o.status.success(), String::from_utf8_lossy(&o.stdout).to_string()))
            .expect("psql")
    })
    .await
    .expect("psql");
    assert!(ok && out.contains("SSL connection"), "{out}");
    let (ok, out) =
        tokio::task::spawn_blocking(move || psql(port, "s3cret pass", "disable", "SELECT 1")).await.expect("psql");
    assert!(ok && out.trim() == "1", "{out}");
    let (ok, out) = tokio::task::spawn_blocking(move || psql(port, "nope", "require", "SELECT 1")).await.expect("psql");
    assert!(!ok && out.to_lowercase().contains("password authentication failed"), "{out}");

    // A server without TLS: sslmode=require cannot connect.
    let plain = fixture::server(dir.path()).await;
    let plain_port = plain.addr.port();
    let (ok, out) =
        tokio::task::spawn_blocking(move || psql(plain_port, "", "require", "SELECT 1")).await.expect("psql");
    assert!(!ok && out.contains("SSL"), "{out}");
}
