//! The journey explorer's HTTP side against the wire protocol: the page is served, each view
//! answers what its own SQL answers over the wire, errors carry their SQLSTATE, and a visitor
//! cannot make it run anything but the view's statement.

use crate::fixture;
use serde_json::{Value, json};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP/1.1 request on a fresh connection: the status and the body.
async fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> (u16, String) {
    let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let payload = body.map(Value::to_string).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{payload}",
        payload.len()
    );
    socket.write_all(request.as_bytes()).await.expect("send");
    let mut answer = vec![];
    socket.read_to_end(&mut answer).await.expect("read");
    let answer = String::from_utf8(answer).expect("utf-8");
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status");
    (status, body.to_string())
}

/// A server over the demo fixture and the explorer beside it, on the same engine (the data
/// directory is kept alive by the caller).
async fn server_and_explorer()
-> (tempfile::TempDir, journeydb::server::RunningServer, SocketAddr, journeydb::explorer::ExplorerHandle) {
    let dir = fixture::data_dir();
    let engine = fixture::engine(dir.path(), 8192, 2);
    let server = journeydb::server::start(engine.clone(), "127.0.0.1:0".parse().expect("addr")).await.expect("server");
    let (addr, explorer) =
        journeydb::explorer::start(engine, "127.0.0.1:0".parse().expect("addr")).await.expect("explorer");
    (dir, server, addr, explorer)
}

async fn api(addr: SocketAddr, path: &str, body: Value) -> Value {
    let (status, text) = http(addr, "POST", path, Some(&body)).await;
    assert_eq!(status, 200, "{path}: {text}");
    serde_json::from_str(&text).expect("json")
}

/// A JSON cell and a text cell from the wire are the same value.
fn same(json: &Value, text: &Option<String>) -> bool {
    match (json, text) {
        (Value::Null, None) => true,
        (Value::Number(n), Some(t)) => {
            t.parse::<f64>().is_ok_and(|x| (x - n.as_f64().unwrap_or(f64::NAN)).abs() < 1e-9)
        }
        (Value::String(s), Some(t)) => s == t,
        _ => false,
    }
}

/// The view's rows against its SQL run over the wire, in the columns named.
async fn check_against_wire(client: &tokio_postgres::Client, answer: &Value, columns: &[&str]) {
    let sql = answer["sql"].as_str().expect("sql");
    let names: Vec<&str> = answer["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| c["name"].as_str().expect("as the explorer answers"))
        .collect();
    let wire = fixture::text_rows(client.simple_query(sql).await.expect("the view's SQL runs over the wire"));
    let rows = answer["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), wire.len(), "{sql}");
    assert!(!rows.is_empty(), "{sql}");
    for (row, text) in rows.iter().zip(&wire) {
        for name in columns {
            let i = names.iter().position(|n| n == name).unwrap_or_else(|| panic!("{name} in {names:?}"));
            assert!(same(&row[i], &text[i]), "{name}: {} vs {:?} in {sql}", row[i], text[i]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_explorer_answers_what_its_sql_answers_over_the_wire() {
    let (_dir, server, addr, explorer) = server_and_explorer().await;
    let client = fixture::connect(&server).await;

    let (status, page) = http(addr, "GET", "/", None).await;
    assert_eq!(status, 200);
    assert!(page.contains("<title>journeydb explorer</title>") && page.contains("/api/funnel"), "{page}");

    let (status, meta) = http(addr, "GET", "/api/meta", None).await;
    assert_eq!(status, 200, "{meta}");
    let meta: Value = serde_json::from_str(&meta).expect("json");
    let events: Vec<&str> = meta["events"]
        .as_array()
        .expect("as the explorer answers")
        .iter()
        .map(|r| r[0].as_str().expect("as the explorer answers"))
        .collect();
    for e in ["page_view", "form_submit", "purchase"] {
        assert!(events.contains(&e), "{events:?}");
    }
    assert!(!meta["people"].as_array().expect("as the explorer answers").is_empty(), "people with conversions: {meta}");

    // The funnel as the page builds it: steps, an optional one, an exclusion, a breakdown.
    let steps = json!([{"event": "page_view"}, {"event": "form_submit", "optional": true}, {"event": "purchase"}]);
    let funnel = api(addr, "/api/funnel", json!({"steps": steps, "window_days": 30, "exclude": ["unsubscribe"]})).await;
    let sql = funnel["sql"].as_str().expect("as the explorer answers");
    assert!(sql.contains("optional => ARRAY[2]") && sql.contains("exclude => ARRAY['unsubscribe']"), "{sql}");
    check_against_wire(&client, &funnel, &["step", "step_name", "users", "conversion_from_start", "median_seconds"])
        .await;
    let by = api(addr, "/api/funnel", json!({"steps": steps, "by": "channel"})).await;
    check_against_wire(&client, &by, &["step", "users"]).await;

    let paths =
        api(addr, "/api/paths", json!({"node": "event_name", "start": "page_view", "max_steps": 4, "top": 5})).await;
    check_against_wire(&client, &paths, &["depth", "source", "target", "users", "paths"]).await;

    let models = json!(["first_touch", "linear", "markov"]);
    let attribution =
        api(addr, "/api/attribution", json!({"conversion": "purchase", "models": models, "by": "channel"})).await;
    check_against_wire(&client, &attribution, &["model", "channel", "conversions", "revenue"]).await;
    // Each model credits the same conversions in all.
    let mut totals = std::collections::BTreeMap::<String, f64>::new();
    for r in attribution["rows"].as_array().expect("as the explorer answers") {
        *totals.entry(r[0].as_str().expect("as the explorer answers").to_string()).or_default() +=
            r[2].as_f64().expect("as the explorer answers");
    }
    assert_eq!(totals.len(), 3, "{totals:?}");
    let first = *totals.values().next().expect("as the explorer answers");
    assert!(first > 0.0 && totals.values().all(|t| (t - first).abs() < 1e-6), "{totals:?}");
    // A milestone as the conversion (the page offers lead, opportunity and closed_won).
    let body = json!({"conversion": "milestone = 'lead'", "models": ["linear"], "by": "channel"});
    let leads = api(addr, "/api/attribution", body).await;
    check_against_wire(&client, &leads, &["model", "channel", "conversions"]).await;
    assert!(leads["rows"].as_array().is_some_and(|r| !r.is_empty()), "{leads}");
    // With the demo's ad spend (offered by /api/meta): spend and ROAS per model and channel.
    let offered = meta["spend_tables"].as_array().expect("spend tables");
    assert!(offered.iter().any(|t| t["table"] == "ad_spend" && t["columns"].to_string().contains("\"channel\"")));
    let body = json!({"conversion": "purchase", "models": models, "by": "channel", "spend": "ad_spend"});
    let roas = api(addr, "/api/attribution", body).await;
    assert!(roas["sql"].as_str().is_some_and(|s| s.contains("spend => 'ad_spend'")), "{roas}");
    check_against_wire(&client, &roas, &["model", "channel", "revenue", "spend", "roas", "cost_per_conversion"]).await;

    // One person's timeline: each converting journey's touches share its conversion exactly.
    let person = meta["people"][0][0].as_str().expect("as the explorer answers").to_string();
    let timeline =
        api(addr, "/api/person", json!({"person_id": person, "conversion": "purchase", "model": "linear"})).await;
    check_against_wire(&client, &timeline, &["event_name", "channel", "journey", "credit"]).await;
    let mut journeys = std::collections::BTreeMap::<i64, (f64, bool)>::new();
    for r in timeline["rows"].as_array().expect("as the explorer answers") {
        let j = journeys.entry(r[3].as_i64().expect("a journey number")).or_default();
        j.0 += r[4].as_f64().unwrap_or(0.0);
        j.1 |= r[1] == "purchase";
    }
    let converted: Vec<f64> = journeys.values().filter(|j| j.1 && j.0 > 0.0).map(|j| j.0).collect();
    assert!(!converted.is_empty(), "{timeline}");
    assert!(converted.iter().all(|c| (c - 1.0).abs() < 1e-9), "{journeys:?}");

    // Errors: with their SQLSTATE, status 400, and the explorer serves on.
    for (path, body, code) in [
        ("/api/funnel", json!({"steps": []}), "22023"),
        ("/api/attribution", json!({"conversion": "purchase", "models": ["nope"]}), "22023"),
        // The spend is a table's name, never a query.
        ("/api/attribution", json!({"conversion": "purchase", "models": ["linear"], "spend": "SELECT 1"}), "22023"),
        (
            "/api/attribution",
            json!({"conversion": "purchase", "models": ["linear"], "spend": "no_such_table"}),
            "42P01",
        ),
        ("/api/person", json!({"person_id": "x", "conversion": "purchase", "model": "markov"}), "22023"),
        ("/api/funnel", json!({"steps": [{"event": "no_such_column = 1"}, {"event": "purchase"}]}), "42703"),
    ] {
        let (status, text) = http(addr, "POST", path, Some(&body)).await;
        assert_eq!(status, 400, "{path} {body}: {text}");
        let error: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(error["error"]["sqlstate"], code, "{path} {body}: {text}");
    }
    // Text from the page is quoted, never spliced: a step that tries to end the statement is
    // an event name nobody did.
    let sneaky = json!({"steps": [{"event": "page_view"}, {"event": "x'); DROP TABLE events; --"}]});
    let answer = api(addr, "/api/funnel", sneaky).await;
    assert_eq!(answer["rows"][1][2], json!(0), "{answer}");
    assert_eq!(answer["truncated"], json!(false), "{answer}");
    // A backslash too (PostgreSQL's quote_literal writes it as an escape string).
    let slashed = api(addr, "/api/funnel", json!({"steps": [{"event": "page_view"}, {"event": "a\\'b"}]})).await;
    assert!(slashed["sql"].as_str().is_some_and(|q| q.contains("E'a\\\\''b'")), "{slashed}");
    assert_eq!(slashed["rows"][1][1], json!("a\\'b"), "{slashed}");
    let n: i64 = client.query_one("SELECT count(*) FROM events", &[]).await.expect("events still there").get(0);
    assert!(n > 0);

    explorer.stop().await;
    server.stop().await;
}

/// The explorer in headless Chromium (selenium, `tests/python/explorer.py`): the demo's funnel
/// on opening, a funnel built by clicking with a step moved up, the Sankey, attribution and a
/// person's timeline, each number on the page checked against the page's SQL over the wire,
/// and an error shown with its SQLSTATE. Screenshots go to `target/test-artifacts/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_explorer_in_a_real_browser() {
    let (_dir, server, addr, explorer) = server_and_explorer().await;
    let artifacts = fixture::root().join("target/test-artifacts").display().to_string();
    let args = vec![addr.port().to_string(), server.addr.port().to_string(), artifacts];
    let text = fixture::run_script(fixture::python(), "explorer.py", args).await;
    println!("{text}");
    explorer.stop().await;
    server.stop().await;
}

/// With users configured, a visitor logs in with the same user and password as psql's (checked
/// against the SCRAM verifier) and gets a session cookie; without one, or with a forged one,
/// every view answers 401 (28000); a wrong password is 401 (28P01); the views run as the user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_users_the_explorer_asks_for_a_login() {
    let dir = fixture::data_dir();
    let verifier = journeydb::server::auth::hash_password("s3cret").expect("hash");
    let mut config = journeydb::config::Config { data_dir: dir.path().to_path_buf(), ..Default::default() };
    config.auth.users.push(journeydb::config::UserConfig {
        name: "analyst".into(),
        password: verifier,
        superuser: false,
    });
    let engine = journeydb::session::Engine::new(config).expect("engine");
    let (addr, explorer) =
        journeydb::explorer::start(engine, "127.0.0.1:0".parse().expect("addr")).await.expect("explorer");

    let (status, page) = http(addr, "GET", "/", None).await;
    assert_eq!(status, 200, "the page itself (with its login form) is served");
    assert!(page.contains("id=\"login\""));
    let (status, text) = http(addr, "GET", "/api/meta", None).await;
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("\"28000\""), "{text}");
    let (status, text) = http(addr, "POST", "/api/login", Some(&json!({"user": "analyst", "password": "wrong"}))).await;
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("\"28P01\""), "{text}");

    // The right password: a cookie, and the views answer with it (and only with it).
    let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let body = json!({"user": "analyst", "password": "s3cret"}).to_string();
    let request = format!(
        "POST /api/login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(request.as_bytes()).await.expect("send");
    let mut answer = String::new();
    socket.read_to_string(&mut answer).await.expect("read");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let cookie = answer
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: ").or_else(|| l.strip_prefix("Set-Cookie: ")))
        .expect("a session cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let pair = cookie.split(';').next().expect("name=value").to_string();
    let with_cookie = |pair: String| async move {
        let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let request = format!("GET /api/meta HTTP/1.1\r\nHost: {addr}\r\nCookie: {pair}\r\nConnection: close\r\n\r\n");
        socket.write_all(request.as_bytes()).await.expect("send");
        let mut answer = String::new();
        socket.read_to_string(&mut answer).await.expect("read");
        answer
    };
    let meta = with_cookie(pair.clone()).await;
    assert!(meta.starts_with("HTTP/1.1 200") && meta.contains("page_view"), "{meta}");
    let forged = with_cookie("journeydb_explorer=00ff".into()).await;
    assert!(forged.starts_with("HTTP/1.1 401"), "{forged}");
    explorer.stop().await;
}

/// With a certificate and users, the explorer speaks HTTPS only: in headless Chromium the page
/// asks for a login, a wrong password shows 28P01 on the form, the right one shows the demo's
/// funnel (checked against its SQL over the wire, over TLS with the same password), the cookie
/// is Secure and HttpOnly; plain HTTP gets no page, and an HTTPS client checking the
/// certificate gets 401 from the views without the cookie; a silent connection stalls no one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_the_explorer_logs_in_in_a_real_browser() {
    let dir = fixture::data_dir();
    let certs = tempfile::tempdir().expect("tmp");
    let (cert, key) = fixture::self_signed_cert(certs.path());
    let verifier = journeydb::server::auth::hash_password("s3cret pass").expect("hash");
    let mut config = journeydb::config::Config { data_dir: dir.path().to_path_buf(), ..Default::default() };
    config.auth.users =
        vec![journeydb::config::UserConfig { name: "analyst".into(), password: verifier, superuser: false }];
    (config.auth.tls_cert, config.auth.tls_key) = (Some(cert.clone()), Some(key));
    let engine = journeydb::session::Engine::new(config).expect("engine");
    let server = journeydb::server::start(engine.clone(), "127.0.0.1:0".parse().expect("addr")).await.expect("server");
    let (addr, explorer) =
        journeydb::explorer::start(engine, "127.0.0.1:0".parse().expect("addr")).await.expect("explorer");

    // Plain HTTP to the HTTPS port: the handshake fails, no page.
    let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
    socket
        .write_all(format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .expect("send");
    let mut answer = vec![];
    let _ = tokio::time::timeout(std::time::Duration::from_secs(15), socket.read_to_end(&mut answer)).await;
    assert!(!String::from_utf8_lossy(&answer).contains("HTTP/1.1 200"), "plain HTTP got a page");

    // A visitor that connects and never says a word holds up no one: the browser is served
    // while it waits out its handshake.
    let silent = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let artifacts = fixture::root().join("target/test-artifacts").display().to_string();
    let args = vec![addr.port().to_string(), server.addr.port().to_string(), cert.display().to_string(), artifacts];
    let text = fixture::run_script(fixture::python(), "explorer_login.py", args).await;
    println!("{text}");
    drop(silent);
    explorer.stop().await;
    server.stop().await;
}

/// A view sends at most `MAX_ROWS` rows and says when it left some out; the statement stops
/// there (its stream is dropped), so what the server holds for a page stays bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_sends_at_most_max_rows() {
    let dir = fixture::data_dir();
    let engine = fixture::engine(dir.path(), 1000, 2);
    let mut session = engine.session("journey", "journeydb").expect("session");
    let max = journeydb::explorer::MAX_ROWS;
    let many = format!("SELECT i FROM generate_series(1, {}) AS t(i)", 10 * max);
    let (_, batches, truncated) = journeydb::server::handler::query_rows(&mut session, &many, max).await.expect("rows");
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), max);
    assert!(truncated);
    let few = format!("SELECT i FROM generate_series(1, {max}) AS t(i)");
    let (_, batches, truncated) = journeydb::server::handler::query_rows(&mut session, &few, max).await.expect("rows");
    assert_eq!((batches.iter().map(|b| b.num_rows()).sum::<usize>(), truncated), (max, false));
}
