//! The journey explorer: a web page served beside the wire protocol (`http_listen`, default
//! 127.0.0.1:5480) that shows the funnel, the Sankey of paths, attribution by model and one
//! person's journey without typing SQL.
//!
//! - The page ([`PAGE`], `page.html`, in the binary) draws its charts as SVG itself, in plain
//!   JavaScript: no chart library, nothing downloaded at run time, no Node step. Bars, a Sankey
//!   and a timeline are a few hundred lines; a library would be a pinned npm dependency, a
//!   build step and a bundle to audit for what the page needs.
//! - The page sends parameters, never SQL. Each view's statement is written here from them
//!   (every text a quoted literal, every number a number), run in a session of its own as a
//!   client's statement runs (the same engine, planner, memory pool, and `statement_timeout`,
//!   [`STATEMENT_TIMEOUT`]), and sent back with its rows, so the page shows the SQL to copy
//!   into psql, a dashboard or a dbt model. Errors come back with their SQLSTATE.
//! - Trust, as the wire protocol's: without users, the explorer trusts loopback visitors and
//!   no one else. With `[[auth.users]]`, a visitor logs in (`POST /api/login`, the password
//!   checked against the same SCRAM verifier psql's login is, failures answered ever later as
//!   the wire protocol's are) and gets a session cookie (random, HttpOnly, SameSite=Strict,
//!   [`SESSION_HOURS`]); each view then runs as that user. With `auth.tls_cert` and
//!   `auth.tls_key` the explorer speaks HTTPS only (the same certificate as the wire
//!   protocol's TLS; the cookie is then `Secure`), and only then, with users, may it listen
//!   beyond loopback and answer other machines ([`crate::config::Config::validate`]).
//!
//! Routes (every answer at most [`MAX_ROWS`] rows): `GET /` the page; `POST /api/login`; `GET /api/meta` the event names (with counts), the dimensions and
//! a few people with conversions; `POST /api/funnel`, `/api/paths`, `/api/attribution` and
//! `/api/person` take JSON parameters. Every answer is `{"sql", "columns", "rows"}` (rows as
//! arrays, numbers as numbers) or, with status 400, `{"error": {"sqlstate", "message",
//! "detail", "hint"}}`.

use crate::error::{Error, SqlState, to_pg_error};
// Every text from the page goes into its statement as a PostgreSQL string literal.
use crate::pg::format::quote_literal as quote;
use crate::session::Engine;
use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use serde::Deserialize;
use serde_json::{Value, json};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// The page: markup, style and script in one file.
pub const PAGE: &str = include_str!("page.html");

/// Each view's statement stops after this long (57014), as `SET statement_timeout` would.
pub const STATEMENT_TIMEOUT: &str = "120s";

/// The most rows a view sends (the answer says `"truncated": true` beyond): what the server
/// holds and formats for a page stays bounded, as the wire protocol's streaming keeps it.
pub const MAX_ROWS: usize = 10_000;

/// How long a login lasts.
pub const SESSION_HOURS: u64 = 12;
const COOKIE: &str = "journeydb_explorer";

/// How long a visitor has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// What the routes share: the engine, and with users configured, who logged in.
struct Explorer {
    engine: Arc<Engine>,
    users: Option<Arc<crate::server::auth::Users>>,
    /// Served over TLS: the cookie is `Secure`, and with users, other machines may visit.
    secure: bool,
    sessions: std::sync::Mutex<std::collections::HashMap<String, (String, std::time::Instant)>>,
    failures: crate::server::auth::Failures,
}

type Shared = State<Arc<Explorer>>;

impl Explorer {
    /// The user a request runs as: the logged-in one (by the session cookie), or without
    /// users, the default user; none when the visitor must log in first ([`login_first`]).
    fn user(&self, headers: &HeaderMap) -> Option<String> {
        if self.users.is_none() {
            return Some("journey".into());
        }
        let token = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .find(|(name, _)| *name == COOKIE)
            .map(|(_, value)| value.to_string());
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let lifetime = std::time::Duration::from_secs(SESSION_HOURS * 3600);
        sessions.retain(|_, (_, at)| at.elapsed() < lifetime);
        token.and_then(|t| sessions.get(&t).map(|(user, _)| user.clone()))
    }

    /// Other machines may visit only over TLS and with a login; everyone else is refused.
    fn refuse(&self, peer: SocketAddr) -> Option<Response> {
        let trusted = peer.ip().is_loopback() || (self.secure && self.users.is_some());
        (!trusted).then(|| {
            let message = "the explorer answers other machines only over TLS with users configured";
            (StatusCode::FORBIDDEN, Json(json!({"error": {"sqlstate": "28000", "message": message}}))).into_response()
        })
    }
}

/// 401 (28000): the page then shows its login form.
fn login_first() -> Response {
    let body = json!({"error": {"sqlstate": "28000", "message": "log in to the explorer"}});
    (StatusCode::UNAUTHORIZED, Json(body)).into_response()
}

/// The rule models the timeline can show per touch (the window form of `attribute`).
const TIMELINE_MODELS: [&str; 6] = ["first_touch", "last_touch", "linear", "position_based", "j_shaped", "inverse_j"];

/// The report models the attribution view may ask for.
const REPORT_MODELS: [&str; 10] = [
    "first_touch",
    "last_touch",
    "linear",
    "position_based",
    "time_decay",
    "j_shaped",
    "inverse_j",
    "last_non_direct",
    "markov",
    "shapley",
];

/// Serves the explorer on `listener` until `shutdown` resolves: over TLS when the
/// configuration has a certificate and key.
pub async fn serve(
    engine: Arc<Engine>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let config = engine.config();
    let users = Some(config.users().map_err(std::io::Error::other)?).filter(|u| !u.is_empty()).map(Arc::new);
    let tls = match (&config.auth.tls_cert, &config.auth.tls_key) {
        (Some(cert), Some(key)) => Some(crate::server::auth::https_acceptor(cert, key).map_err(std::io::Error::other)?),
        _ => None,
    };
    let secure = tls.is_some();
    let state =
        Arc::new(Explorer { engine, users, secure, sessions: Default::default(), failures: Default::default() });
    let app = axum::Router::new()
        .route("/", get(page))
        .route("/api/login", post(login))
        .route("/api/meta", get(meta))
        .route("/api/funnel", post(funnel))
        .route("/api/paths", post(paths))
        .route("/api/attribution", post(attribution))
        .route("/api/person", post(person))
        .with_state(state);
    let incoming = Incoming::new(listener, tls)?;
    axum::serve(incoming, app.into_make_service_with_connect_info::<Visitor>()).with_graceful_shutdown(shutdown).await
}

/// A connection the explorer serves: plain TCP, or TLS after its handshake.
trait Connection: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Connection for T {}

/// The explorer's connections: a task accepts them and, with TLS, runs each handshake in a
/// task of its own (at most [`HANDSHAKE_TIMEOUT`]), so a slow or silent visitor holds up no
/// one; finished connections queue here for the HTTP server.
struct Incoming {
    ready: tokio::sync::mpsc::Receiver<(Box<dyn Connection>, SocketAddr)>,
    local: SocketAddr,
    accepting: tokio::task::AbortHandle,
}

impl Incoming {
    fn new(listener: TcpListener, tls: Option<pgwire::tokio::TlsAcceptor>) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let (queue, ready) = tokio::sync::mpsc::channel(64);
        let accepting = tokio::spawn(async move {
            loop {
                let (socket, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of descriptors and the like: wait a little rather than spin.
                        tracing::warn!(error = %e, "the explorer could not accept a connection");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let queue = queue.clone();
                match &tls {
                    None => {
                        if queue.send((Box::new(socket) as Box<dyn Connection>, peer)).await.is_err() {
                            return;
                        }
                    }
                    Some(tls) => {
                        let tls = tls.clone();
                        tokio::spawn(async move {
                            match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(socket)).await {
                                Ok(Ok(stream)) => {
                                    let _ = queue.send((Box::new(stream) as Box<dyn Connection>, peer)).await;
                                }
                                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "explorer TLS handshake failed"),
                                Err(_) => tracing::debug!(%peer, "explorer TLS handshake timed out"),
                            }
                        });
                    }
                }
            }
        })
        .abort_handle();
        Ok(Self { ready, local, accepting })
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl axum::serve::Listener for Incoming {
    type Io = Box<dyn Connection>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accepting task is gone only once this is dropped: never here.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// Who is visiting: the peer's address.
#[derive(Clone, Copy, Debug)]
struct Visitor(SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, Incoming>> for Visitor {
    fn connect_info(stream: axum::serve::IncomingStream<'_, Incoming>) -> Self {
        Visitor(*stream.remote_addr())
    }
}

/// Binds `listen` and serves the explorer in the background; the address bound.
pub async fn start(engine: Arc<Engine>, listen: SocketAddr) -> std::io::Result<(SocketAddr, ExplorerHandle)> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(engine, listener, async move {
        let _ = stopped.await;
    }));
    Ok((addr, ExplorerHandle { stop, task }))
}

/// A running explorer ([`start`]).
pub struct ExplorerHandle {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl ExplorerHandle {
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

type Peer = ConnectInfo<Visitor>;

async fn page(State(x): Shared, ConnectInfo(Visitor(peer)): Peer) -> Response {
    if let Some(refused) = x.refuse(peer) {
        return refused;
    }
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], PAGE).into_response()
}

#[derive(Debug, Deserialize)]
pub struct LoginRequest {
    pub user: String,
    pub password: String,
}

async fn login(State(x): Shared, ConnectInfo(Visitor(peer)): Peer, Json(r): Json<LoginRequest>) -> Response {
    if let Some(refused) = x.refuse(peer) {
        return refused;
    }
    let Some(users) = x.users.clone() else {
        return Json(json!({"user": "journey"})).into_response();
    };
    // The password's key derivation (thousands of HMAC rounds) runs off the threads that serve
    // connections.
    let (user, password) = (r.user.clone(), r.password);
    let right = tokio::task::spawn_blocking(move || users.check(&user, &password)).await.unwrap_or(false);
    if !right {
        tokio::time::sleep(x.failures.record(peer.ip())).await;
        let message = format!("password authentication failed for user \"{}\"", r.user);
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": {"sqlstate": "28P01", "message": message}})))
            .into_response();
    }
    let mut bytes = [0u8; 32];
    if getrandom::fill(&mut bytes).is_err() {
        return failure(&Error::sql(SqlState::InternalError, "no random numbers for a session"));
    }
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    x.sessions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(token.clone(), (r.user.clone(), std::time::Instant::now()));
    let secure = if x.secure { "; Secure" } else { "" };
    let cookie =
        format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}", SESSION_HOURS * 3600);
    ([(header::SET_COOKIE, cookie)], Json(json!({"user": r.user}))).into_response()
}

async fn meta(State(x): Shared, ConnectInfo(Visitor(peer)): Peer, headers: HeaderMap) -> Response {
    if let Some(refused) = x.refuse(peer) {
        return refused;
    }
    let Some(user) = x.user(&headers) else { return login_first() };
    let engine = &x.engine;
    let events = "SELECT event_name, count(*) AS events FROM journey.events WHERE event_name IS NOT NULL \
                  GROUP BY event_name ORDER BY events DESC, event_name LIMIT 200";
    let people = "SELECT person_id, count(*) AS conversions FROM journey.conversions GROUP BY person_id \
                  ORDER BY conversions DESC, person_id LIMIT 20";
    // Ad spend tables (a `day` and a `spend` column), with the dimensions they can join by.
    let spend = "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' \
                 AND table_name IN (SELECT table_name FROM information_schema.columns WHERE table_schema = 'public' \
                 AND column_name = 'spend') ORDER BY table_name, ordinal_position";
    let (events, people, spend) =
        match (run(engine, &user, events).await, run(engine, &user, people).await, run(engine, &user, spend).await) {
            (Ok(e), Ok(p), Ok(s)) => (e, p, s),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return failure(&e),
        };
    let mut spend_tables: Vec<(String, Vec<String>)> = vec![];
    for row in spend["rows"].as_array().into_iter().flatten() {
        let (Some(table), Some(column)) = (row[0].as_str(), row[1].as_str()) else { continue };
        match spend_tables.last_mut() {
            Some((t, columns)) if t == table => columns.push(column.to_string()),
            _ => spend_tables.push((table.to_string(), vec![column.to_string()])),
        }
    }
    let spend_tables: Vec<Value> = spend_tables
        .into_iter()
        .filter(|(_, columns)| columns.iter().any(|c| c == "day"))
        .map(|(table, columns)| json!({"table": table, "columns": columns}))
        .collect();
    Json(json!({
        "events": events["rows"],
        "people": people["rows"],
        "spend_tables": spend_tables,
        "dimensions": ["channel", "source", "medium", "campaign", "session_channel", "page_url", "stage"],
        "nodes": ["event_name", "page_url", "channel", "stage", "stage_reached"],
        "report_models": REPORT_MODELS,
        "timeline_models": TIMELINE_MODELS,
    }))
    .into_response()
}

/// `texts` as a SQL text array.
fn array(texts: &[String]) -> String {
    format!("ARRAY[{}]", texts.iter().map(|t| quote(t)).collect::<Vec<_>>().join(", "))
}

/// A non-empty, trimmed text, or none.
fn given(text: &Option<String>) -> Option<&str> {
    text.as_deref().map(str::trim).filter(|t| !t.is_empty())
}

fn bad(message: impl Into<String>) -> Error {
    Error::sql(SqlState::InvalidParameterValue, message)
}

#[derive(Debug, Deserialize)]
pub struct FunnelStep {
    /// An event name or a predicate (`page_url LIKE '/pricing%'`).
    pub event: String,
    #[serde(default)]
    pub optional: bool,
}

#[derive(Debug, Deserialize)]
pub struct FunnelRequest {
    pub steps: Vec<FunnelStep>,
    #[serde(default)]
    pub exclude: Vec<String>,
    #[serde(default = "default_window_days")]
    pub window_days: u32,
    pub by: Option<String>,
    pub order: Option<String>,
}

fn default_window_days() -> u32 {
    14
}

/// The `funnel` statement of a request.
pub fn funnel_sql(r: &FunnelRequest) -> Result<String, Error> {
    if r.steps.is_empty() {
        return Err(bad("a funnel needs at least one step"));
    }
    let mut args: Vec<String> = r.steps.iter().map(|s| quote(s.event.trim())).collect();
    args.push(format!("window => INTERVAL '{} days'", r.window_days));
    let optional: Vec<String> =
        r.steps.iter().enumerate().filter(|(_, s)| s.optional).map(|(i, _)| (i + 1).to_string()).collect();
    if !optional.is_empty() {
        args.push(format!("optional => ARRAY[{}]", optional.join(", ")));
    }
    let exclude: Vec<String> = r.exclude.iter().map(|e| e.trim().to_string()).filter(|e| !e.is_empty()).collect();
    if !exclude.is_empty() {
        args.push(format!("exclude => {}", array(&exclude)));
    }
    if let Some(order) = given(&r.order) {
        args.push(format!("\"order\" => {}", quote(order)));
    }
    if let Some(by) = given(&r.by) {
        args.push(format!("by => {}", quote(by)));
    }
    Ok(format!("SELECT * FROM funnel({})", args.join(", ")))
}

#[derive(Debug, Deserialize)]
pub struct PathsRequest {
    #[serde(default = "default_node")]
    pub node: String,
    pub start: Option<String>,
    pub end: Option<String>,
    #[serde(default = "default_max_steps")]
    pub max_steps: u32,
    #[serde(default = "default_top")]
    pub top: u32,
}

fn default_node() -> String {
    "event_name".into()
}

fn default_max_steps() -> u32 {
    5
}

fn default_top() -> u32 {
    8
}

/// The `journey_paths` statement of a request.
pub fn paths_sql(r: &PathsRequest) -> Result<String, Error> {
    let mut args = vec![
        format!("node => {}", quote(r.node.trim())),
        format!("max_steps => {}", r.max_steps),
        format!("top => {}", r.top),
    ];
    if let Some(start) = given(&r.start) {
        args.push(format!("start => {}", quote(start)));
    }
    if let Some(end) = given(&r.end) {
        args.push(format!("\"end\" => {}", quote(end)));
    }
    Ok(format!(
        "SELECT depth, source, target, users, paths, avg_seconds FROM journey_paths({}) \
         ORDER BY depth, users DESC, source, target",
        args.join(", ")
    ))
}

#[derive(Debug, Deserialize)]
pub struct AttributionRequest {
    pub conversion: String,
    pub models: Vec<String>,
    #[serde(default = "default_by")]
    pub by: String,
    #[serde(default = "default_lookback_days")]
    pub lookback_days: u32,
    /// An ad spend table (a name, checked) to join: ROAS per model and value.
    #[serde(default)]
    pub spend: Option<String>,
}

fn default_by() -> String {
    "channel".into()
}

fn default_lookback_days() -> u32 {
    90
}

/// The `attribute` statement of a request: the models side by side.
pub fn attribution_sql(r: &AttributionRequest) -> Result<String, Error> {
    if r.models.is_empty() {
        return Err(bad("choose at least one model"));
    }
    if let Some(m) = r.models.iter().find(|m| !REPORT_MODELS.contains(&m.as_str())) {
        return Err(bad(format!("unknown model \"{m}\": one of {}", REPORT_MODELS.join(", "))));
    }
    let conversion = r.conversion.trim();
    if conversion.is_empty() {
        return Err(bad("choose the conversion"));
    }
    let mut args: Vec<String> = r.models.iter().map(|m| quote(m)).collect();
    args.push(format!("conversion => {}", quote(conversion)));
    args.push(format!("by => {}", quote(r.by.trim())));
    args.push(format!("lookback => INTERVAL '{} days'", r.lookback_days));
    if let Some(spend) = r.spend.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        let name = |part: &str| {
            part.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        if !spend.split('.').all(name) || spend.split('.').count() > 2 {
            return Err(bad(format!("spend must name a table, not \"{spend}\"")));
        }
        args.push(format!("spend => {}", quote(spend)));
    }
    Ok(format!("SELECT * FROM attribute({}) ORDER BY 1, 2", args.join(", ")))
}

#[derive(Debug, Deserialize)]
pub struct PersonRequest {
    pub person_id: String,
    pub conversion: String,
    #[serde(default = "default_model")]
    pub model: String,
}

fn default_model() -> String {
    "linear".into()
}

/// One person's events in time order, each touch with its share of its journey's conversion
/// under a rule model: a journey is the touches after the previous conversion up to this one
/// (the report's journeys without its lookback), `journey` numbering them from 1.
pub fn person_sql(r: &PersonRequest) -> Result<String, Error> {
    if !TIMELINE_MODELS.contains(&r.model.as_str()) {
        return Err(bad(format!("unknown model \"{}\": one of {}", r.model, TIMELINE_MODELS.join(", "))));
    }
    let (person, conversion, model) = (quote(r.person_id.trim()), quote(r.conversion.trim()), quote(&r.model));
    Ok(format!(
        "WITH e AS (SELECT event_time, event_name, channel, is_touch, revenue, \
         CAST(1 + coalesce(sum(CASE WHEN event_name = {conversion} THEN 1 ELSE 0 END) OVER (ORDER BY event_time, \
         event_name ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS bigint) AS journey \
         FROM journey.events WHERE person_id = {person}) \
         SELECT event_time, event_name, channel, journey, \
         CASE WHEN is_touch THEN attribute({model}) OVER (PARTITION BY journey, is_touch ORDER BY event_time, channel) END \
         AS credit, revenue FROM e ORDER BY event_time, event_name"
    ))
}

async fn funnel(
    State(x): Shared,
    ConnectInfo(Visitor(peer)): Peer,
    headers: HeaderMap,
    Json(r): Json<FunnelRequest>,
) -> Response {
    answer(&x, peer, &headers, funnel_sql(&r)).await
}

async fn paths(
    State(x): Shared,
    ConnectInfo(Visitor(peer)): Peer,
    headers: HeaderMap,
    Json(r): Json<PathsRequest>,
) -> Response {
    answer(&x, peer, &headers, paths_sql(&r)).await
}

async fn attribution(
    State(x): Shared,
    ConnectInfo(Visitor(peer)): Peer,
    headers: HeaderMap,
    Json(r): Json<AttributionRequest>,
) -> Response {
    answer(&x, peer, &headers, attribution_sql(&r)).await
}

async fn person(
    State(x): Shared,
    ConnectInfo(Visitor(peer)): Peer,
    headers: HeaderMap,
    Json(r): Json<PersonRequest>,
) -> Response {
    answer(&x, peer, &headers, person_sql(&r)).await
}

/// Runs a view's statement as the request's user and answers with it and its rows, or with
/// its error.
async fn answer(x: &Explorer, peer: SocketAddr, headers: &HeaderMap, sql: Result<String, Error>) -> Response {
    if let Some(refused) = x.refuse(peer) {
        return refused;
    }
    let Some(user) = x.user(headers) else { return login_first() };
    let result = match sql {
        Ok(sql) => run(&x.engine, &user, &sql).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(body) => Json(body).into_response(),
        Err(e) => failure(&e),
    }
}

fn failure(e: &Error) -> Response {
    let pg = to_pg_error(e);
    if pg.code == SqlState::InternalError {
        tracing::error!(error = %e, "internal error in the explorer");
    }
    let body = json!({"error": {
        "sqlstate": pg.code.code(),
        "message": pg.message,
        "detail": pg.detail,
        "hint": pg.hint,
    }});
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

/// Runs `sql` in a new session of `user` (database journeydb, as a psql connection) and
/// returns `{sql, columns, rows}`.
async fn run(engine: &Arc<Engine>, user: &str, sql: &str) -> Result<Value, Error> {
    let mut session = engine.session(user, "journeydb")?;
    session.execute_sql(&format!("SET statement_timeout = '{STATEMENT_TIMEOUT}'")).await?;
    let (schema, batches, truncated) = crate::server::handler::query_rows(&mut session, sql, MAX_ROWS).await?;
    Ok(json!({"sql": sql, "columns": columns(&schema), "rows": rows(&batches)?, "truncated": truncated}))
}

fn columns(schema: &SchemaRef) -> Vec<Value> {
    schema.fields().iter().map(|f| json!({"name": f.name(), "type": f.data_type().to_string()})).collect()
}

/// Every row as an array: numbers as JSON numbers, NULL as null, anything else as its text.
fn rows(batches: &[RecordBatch]) -> Result<Vec<Value>, Error> {
    let options = FormatOptions::default();
    let mut out = vec![];
    for batch in batches {
        let formatters: Vec<ArrayFormatter> =
            batch.columns().iter().map(|c| ArrayFormatter::try_new(c.as_ref(), &options)).collect::<Result<_, _>>()?;
        for i in 0..batch.num_rows() {
            let row: Vec<Value> = batch
                .columns()
                .iter()
                .zip(&formatters)
                .map(|(column, f)| {
                    if column.is_null(i) {
                        return Value::Null;
                    }
                    let text = f.value(i).to_string();
                    let number = match column.data_type() {
                        t if t.is_signed_integer() => text.parse::<i64>().ok().map(serde_json::Number::from),
                        t if t.is_unsigned_integer() => text.parse::<u64>().ok().map(serde_json::Number::from),
                        t if is_fractional(t) => text.parse::<f64>().ok().and_then(serde_json::Number::from_f64),
                        _ => None,
                    };
                    number.map_or(Value::String(text), Value::Number)
                })
                .collect();
            out.push(Value::Array(row));
        }
    }
    Ok(out)
}

fn is_fractional(t: &DataType) -> bool {
    t.is_floating() || matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..))
}
