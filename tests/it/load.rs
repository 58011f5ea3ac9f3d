//! The concurrency test: pgbench (Debian's postgresql-client) runs 32 connections of mixed
//! journey queries (`tests/load/*.sql`: a plain aggregate, funnel, attribute, journey_paths)
//! for a bounded time, in the simple and the prepared (extended) protocol. No transaction may
//! fail, and the server serves a new connection afterwards.

use crate::fixture;
use std::process::Command;

fn pgbench(port: u16, mode: &str, seconds: u32) -> String {
    let scripts = crate::fixture::root().join("tests/load");
    let script = |name: &str, weight: u32| format!("{}@{weight}", scripts.join(name).display());
    let out = Command::new("pgbench")
        .args(["-n", "-c", "32", "-j", "2", "-T", &seconds.to_string(), "-M", mode])
        .args(["-f", &script("plain.sql", 3), "-f", &script("funnel.sql", 1)])
        .args(["-f", &script("attribute.sql", 1), "-f", &script("paths.sql", 1)])
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "journey", "journeydb"])
        .output()
        .expect("pgbench must be installed (postgresql-client; scripts/install-test-deps.sh installs it)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "pgbench failed:\n{text}");
    text
}

fn number_after(text: &str, label: &str) -> f64 {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .and_then(|rest| rest.trim().trim_start_matches('=').split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no \"{label}\" in pgbench's output:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_connections_of_mixed_journey_queries() {
    let dir = fixture::data_dir();
    let server = fixture::server(dir.path()).await;
    let port = server.addr.port();
    for mode in ["simple", "prepared"] {
        let out = tokio::task::spawn_blocking(move || pgbench(port, mode, 8)).await.expect("pgbench");
        let done = number_after(&out, "number of transactions actually processed:");
        let failed = number_after(&out, "number of failed transactions:");
        let latency = number_after(&out, "latency average");
        let tps = number_after(&out, "tps");
        eprintln!("{mode}: {done} transactions, {failed} failed, latency {latency} ms, {tps} tps");
        assert!(done >= 32.0, "{mode}: every connection ran at least once:\n{out}");
        assert_eq!(failed, 0.0, "{mode}:\n{out}");
        for script in ["plain.sql", "funnel.sql", "attribute.sql", "paths.sql"] {
            assert!(out.contains(script), "{mode}: {script} ran:\n{out}");
        }
    }
    let client = fixture::connect(&server).await;
    let n: i64 = client.query_one("SELECT count(*) FROM events", &[]).await.expect("still serving").get(0);
    assert_eq!(n, 20_000);
}
