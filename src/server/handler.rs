//! The handlers of one connection: startup (loopback trust), simple query, extended query.

use super::cancel::{Cancels, Interrupt, in_execution_context, interruptible, on_execution_runtime, timeout_ms};
use super::copy::{CopyInState, copy_out_stream, send_copy_out};
use super::params;
use super::pg_wire_error;
use crate::error::{Error, SqlState};
use crate::pg;
use crate::pg::encode::encode_batch;
use crate::session::{Engine, Output, Session};
use async_trait::async_trait;
use datafusion::arrow::datatypes::Schema;
use datafusion::common::ScalarValue;
use datafusion::sql::sqlparser::ast::Statement;
use futures::{Sink, SinkExt, StreamExt, stream};
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::sasl::scram::ScramAuth;
use pgwire::api::auth::{
    DefaultServerParameterProvider, StartupHandler, finish_authentication, protocol_negotiation,
    save_startup_parameters_to_metadata,
};
use pgwire::api::copy::CopyHandler;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{
    CopyResponse, DescribePortalResponse, DescribeStatementResponse, FieldFormat, FieldInfo, QueryResponse, Response,
    Tag,
};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, METADATA_DATABASE, METADATA_USER, PgWireServerHandlers, Type};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};

/// One connection's handlers; pgwire asks for them once per connection.
pub struct ConnectionHandlers {
    conn: Arc<Connection>,
    cancels: Arc<Cancels>,
}

impl ConnectionHandlers {
    /// A connection's handlers; it is registered in `cancels` (the server's) until it closes.
    /// It takes its place among `places` once it has authenticated; without one (the server is
    /// full) its startup is refused with 53300.
    /// With `security.users`, the connection authenticates with SCRAM-SHA-256.
    pub fn new(engine: Arc<Engine>, cancels: Arc<Cancels>, places: Places, security: &Security) -> ConnectionHandlers {
        let signal = Arc::new(tokio::sync::watch::channel(0u64).0);
        let (pid, secret) = cancels.register(signal.clone());
        // Two handlers: over TLS, SCRAM-SHA-256-PLUS binds the authentication to the channel;
        // in the clear, only SCRAM-SHA-256 may be offered (libpq refuses PLUS there).
        let handler = |cert: Option<&Arc<Vec<u8>>>| {
            security.users.as_ref().map(|users| {
                let mut scram = ScramAuth::new(users.clone() as Arc<dyn pgwire::api::auth::AuthSource>);
                if let Some(cert) = cert
                    && let Err(e) = scram.configure_certificate(cert)
                {
                    tracing::warn!(error = %e, "no SCRAM channel binding");
                }
                SASLAuthStartupHandler::new(Arc::new(server_parameters()))
                    .with_scram(scram)
                    .with_pid_secret_key_generator(Arc::new(FixedKey(pid, secret)))
            })
        };
        let sasl = handler(None);
        let sasl_tls = security.cert_pem.as_ref().and_then(|c| handler(Some(c)));
        ConnectionHandlers {
            conn: Arc::new(Connection {
                engine: engine.clone(),
                session: Mutex::new(None),
                parser: Arc::new(StatementParser { engine }),
                pid,
                secret,
                signal,
                cancels: cancels.clone(),
                copy: std::sync::Mutex::new(None),
                places,
                slot: std::sync::Mutex::new(None),
                authenticated: tokio::sync::watch::channel(false).0,
                sasl,
                sasl_tls,
                failures: security.failures.clone(),
            }),
            cancels,
        }
    }
}

impl PgWireServerHandlers for ConnectionHandlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.conn.clone()
    }
    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.conn.clone()
    }
    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.conn.clone()
    }
    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        self.cancels.clone()
    }
    fn copy_handler(&self) -> Arc<impl CopyHandler> {
        self.conn.clone()
    }
}

/// A COPY data message this big is parsed off the connections' threads.
const HEAVY_COPY_DATA: usize = 256 << 10;

impl Connection {
    fn take_copy(&self) -> Option<CopyInState> {
        self.copy.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

#[async_trait]
impl CopyHandler for Connection {
    async fn on_copy_data<C>(&self, _client: &mut C, copy_data: CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // Errors are kept and reported at CopyDone, so the client's remaining data is dropped.
        if let Some(state) = self.copy.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            // Parsing a big piece or writing a batch of rows is work for a thread that may
            // block, not for one that serves connections.
            let heavy = copy_data.data.len() >= HEAVY_COPY_DATA || state.writes_next();
            if heavy && tokio::runtime::Handle::current().runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
            {
                tokio::task::block_in_place(|| state.data(&copy_data.data));
            } else {
                state.data(&copy_data.data);
            }
        }
        Ok(())
    }

    async fn on_copy_done<C>(&self, client: &mut C, _done: CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let state = self.take_copy().ok_or_else(|| {
            pg_wire_error(&Error::sql(SqlState::SyntaxErrorOrAccessRuleViolation, "no COPY in progress"))
        })?;
        let store = self.engine.store().clone();
        let rows = tokio::task::spawn_blocking(move || state.finish(&store))
            .await
            .map_err(|e| pg_wire_error(&Error::Store(format!("COPY failed: {e}"))))?
            .map_err(|e| pg_wire_error(&e))?;
        client.send(PgWireBackendMessage::CommandComplete(Tag::new("COPY").with_rows(rows as usize).into())).await?;
        Ok(())
    }

    async fn on_copy_fail<C>(&self, _client: &mut C, fail: CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // Dropping the state removes the file it was writing.
        drop(self.take_copy());
        pg_wire_error(&Error::sql(SqlState::QueryCanceled, format!("COPY from stdin failed: {}", fail.message)))
    }
}

pub struct Connection {
    engine: Arc<Engine>,
    session: Mutex<Option<Session>>,
    parser: Arc<StatementParser>,
    /// Process id and secret key for cancel requests, and the signal they fire.
    pid: i32,
    secret: i32,
    signal: Arc<tokio::sync::watch::Sender<u64>>,
    cancels: Arc<Cancels>,
    /// The COPY FROM in progress, if any (dropped with the connection: its file goes too).
    copy: std::sync::Mutex<Option<CopyInState>>,
    /// The server's places (`max_connections`), and this connection's once it authenticated,
    /// given back when it closes.
    places: Places,
    slot: std::sync::Mutex<Option<ConnectionSlot>>,
    /// Becomes true when the connection has authenticated (the startup timeout ends there).
    authenticated: tokio::sync::watch::Sender<bool>,
    /// SCRAM-SHA-256 authentication, when users are configured (else trust, on loopback only).
    sasl: Option<SASLAuthStartupHandler<DefaultServerParameterProvider>>,
    /// The same with channel binding, for connections over TLS.
    sasl_tls: Option<SASLAuthStartupHandler<DefaultServerParameterProvider>>,
    failures: Arc<super::auth::Failures>,
}

/// What the server authenticates with: the configured users (None: trust) and, with TLS, the
/// certificate for SCRAM channel binding.
#[derive(Debug, Default, Clone)]
pub struct Security {
    pub users: Option<Arc<super::auth::Users>>,
    pub cert_pem: Option<Arc<Vec<u8>>>,
    /// The server's failed authentications, which slow the next ones from the same address.
    pub failures: Arc<super::auth::Failures>,
}

/// Gives pgwire's authentication the process id and secret key the cancel registry knows.
struct FixedKey(i32, i32);

impl pgwire::api::PidSecretKeyGenerator for FixedKey {
    fn generate(&self, _client: &dyn ClientInfo) -> (i32, pgwire::messages::startup::SecretKey) {
        (self.0, pgwire::messages::startup::SecretKey::I32(self.1))
    }
}

/// A bounded number of places: the connections the server serves at once (`max_connections`,
/// taken once a connection has authenticated, so that idle sockets cannot lock users out), and
/// apart from them the connections still starting up.
#[derive(Debug, Clone)]
pub struct Places {
    taken: Arc<std::sync::atomic::AtomicUsize>,
    max: usize,
}

impl Places {
    pub fn new(max: usize) -> Places {
        Places { taken: Arc::default(), max }
    }

    /// A place, if fewer than `max` are taken.
    pub fn take(&self) -> Option<ConnectionSlot> {
        self.taken
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.max).then_some(n + 1))
            .ok()
            .map(|_| ConnectionSlot(self.taken.clone()))
    }
}

/// A place among [`Places`], given back when dropped.
#[derive(Debug)]
pub struct ConnectionSlot(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.cancels.remove(self.pid);
    }
}

/// The parameters PostgreSQL reports to the client whenever they change (GUC_REPORT), with
/// the names it reports them under.
const REPORTED: [(&str, &str); 4] = [
    ("timezone", "TimeZone"),
    ("datestyle", "DateStyle"),
    ("intervalstyle", "IntervalStyle"),
    ("application_name", "application_name"),
];

/// The reported parameters' values now.
fn reported(session: &Session) -> Vec<String> {
    let settings = session.settings();
    REPORTED.iter().map(|(name, _)| settings.get(name).unwrap_or_default()).collect()
}

/// A ParameterStatus for each reported parameter whose value is not `before`'s (a SET, RESET
/// or DISCARD changed it), as PostgreSQL sends them: drivers read the session's TimeZone from it.
async fn report_changes<C>(client: &mut C, before: &[String], session: &Session) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    for ((_, shown), (was, now)) in REPORTED.iter().zip(before.iter().zip(reported(session))) {
        if *was != now {
            let status = pgwire::messages::startup::ParameterStatus::new(shown.to_string(), now);
            client.feed(PgWireBackendMessage::ParameterStatus(status)).await?;
        }
    }
    Ok(())
}

/// What a client runs: a statement of a simple query, or a prepared statement with its plan.
enum Run<'a> {
    Statement(&'a Statement),
    Prepared(&'a crate::sql::Prepared),
}

/// Runs a statement under a cancel request and `statement_timeout` (planning and the result
/// stream).
async fn execute_interruptible(
    session: &mut Session,
    signal: &tokio::sync::watch::Sender<u64>,
    run: Run<'_>,
    params: &[ScalarValue],
) -> Result<Output, Error> {
    let timeout = session.settings().get("statement_timeout").ok().and_then(|v| timeout_ms(&v)).unwrap_or(0);
    let mut fired = Interrupt::new(signal, timeout).fired();
    let lane = super::cancel::Lane::take();
    let output = tokio::select! {
        output = in_execution_context(lane.clone(), async {
            match run {
                Run::Statement(stmt) => session.execute(stmt, params).await,
                Run::Prepared(prepared) => session.execute_prepared(prepared, params).await,
            }
        }) => output?,
        e = &mut fired => return Err(Error::DataFusion(e)),
    };
    Ok(match output {
        Output::Rows(stream) => Output::Rows(interruptible(on_execution_runtime(lane, stream), fired)),
        other => other,
    })
}

/// Runs `sql`, one query, in `session` as a client's simple-query statement runs (planned and
/// executed on the execution runtime, under `statement_timeout`) and collects its first
/// `max_rows` rows, the rest not computed (the stream is dropped): what the explorer's views
/// run. The flag says whether rows were left out.
pub async fn query_rows(
    session: &mut Session,
    sql: &str,
    max_rows: usize,
) -> Result<(datafusion::arrow::datatypes::SchemaRef, Vec<datafusion::arrow::array::RecordBatch>, bool), Error> {
    let statements = session.parse(sql)?;
    let [stmt] = statements.as_slice() else {
        return Err(Error::sql(SqlState::SyntaxError, "one statement expected"));
    };
    let (signal, _) = tokio::sync::watch::channel(0u64);
    match execute_interruptible(session, &signal, Run::Statement(stmt), &[]).await? {
        Output::Rows(mut stream) => {
            let schema = stream.schema();
            let (mut batches, mut rows) = (vec![], 0);
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                if rows + batch.num_rows() > max_rows {
                    batches.push(batch.slice(0, max_rows - rows));
                    return Ok((schema, batches, true));
                }
                rows += batch.num_rows();
                batches.push(batch);
            }
            Ok((schema, batches, false))
        }
        _ => Err(Error::sql(SqlState::FeatureNotSupported, "not a query")),
    }
}

/// `sql` parsed off the connection's thread, under a cancel request and `statement_timeout`
/// when `signal` is given (parsing is linear and bounded, but a 64 MB statement takes time).
async fn parse_interruptible(
    engine: &Arc<Engine>,
    sql: &str,
    interrupt: Option<(&tokio::sync::watch::Sender<u64>, u64)>,
) -> Result<Vec<Statement>, Error> {
    let (engine, text) = (engine.clone(), sql.to_string());
    let parsed = super::cancel::off_connection(move || engine.parse(&text));
    let joined = match interrupt {
        Some((signal, timeout)) => tokio::select! {
            parsed = parsed => parsed,
            e = Interrupt::new(signal, timeout).fired() => return Err(Error::DataFusion(e)),
        },
        None => parsed.await,
    };
    joined
        .map_err(|e| Error::DataFusion(datafusion::error::DataFusionError::Internal(format!("parsing failed: {e}"))))?
}

impl Connection {
    /// The session, created on first use from the startup user and database.
    async fn session<C: ClientInfo>(&self, client: &C) -> PgWireResult<MappedMutexGuard<'_, Session>> {
        let mut guard = self.session.lock().await;
        if guard.is_none() {
            let user = client.metadata().get(METADATA_USER).cloned().unwrap_or_else(|| "journey".into());
            let database = client.metadata().get(METADATA_DATABASE).cloned().unwrap_or_else(|| user.clone());
            let session = self.engine.session(&user, &database).map_err(|e| pg_wire_error(&e))?;
            let superuser = self.engine.config().auth.users.iter().any(|u| u.name == user && u.superuser);
            let caller = super::cancel::Caller { user: user.clone(), superuser };
            super::backend::register(session.context(), self.pid, self.cancels.clone(), caller);
            self.cancels.set_user(self.pid, &user);
            *guard = Some(session);
        }
        if self.cancels.is_terminated(self.pid) {
            return Err(PgWireError::UserError(Box::new(
                SqlState::AdminShutdown.error_info("terminating connection due to administrator command"),
            )));
        }
        MutexGuard::try_map(guard, Option::as_mut).map_err(|_| PgWireError::NotReadyForQuery)
    }
}

fn server_parameters() -> DefaultServerParameterProvider {
    let mut p = DefaultServerParameterProvider::default();
    p.server_version = format!("{} (journeydb {})", pg::SERVER_VERSION, env!("CARGO_PKG_VERSION"));
    p.date_style = "ISO, MDY".into();
    p.time_zone = "UTC".into();
    p
}

#[async_trait]
impl StartupHandler for Connection {
    async fn on_startup<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let sasl = if client.is_secure() { self.sasl_tls.as_ref().or(self.sasl.as_ref()) } else { self.sasl.as_ref() };
        if let Some(sasl) = sasl {
            if let Err(e) = sasl.on_startup(client, message).await {
                if e.code() == SqlState::InvalidPassword.code() {
                    tokio::time::sleep(self.failures.record(client.socket_addr().ip())).await;
                }
                return Err(e);
            }
            // Authenticated: only now does the connection count against max_connections.
            if matches!(client.state(), pgwire::api::PgWireConnectionState::ReadyForQuery) {
                self.take_place()?;
            }
            return Ok(());
        }
        if let PgWireFrontendMessage::Startup(ref startup) = message {
            protocol_negotiation(client, startup).await?;
            save_startup_parameters_to_metadata(client, startup);
            self.take_place()?;
            // Trust is only allowed on loopback (Config::validate refuses anything else).
            if !client.socket_addr().ip().is_loopback() {
                return Err(PgWireError::UserError(Box::new(
                    SqlState::InvalidAuthorizationSpecification
                        .error_info("connections are accepted from loopback addresses only"),
                )));
            }
            client.set_pid_and_secret_key(self.pid, pgwire::messages::startup::SecretKey::I32(self.secret));
            finish_authentication(client, &server_parameters()).await?;
        }
        Ok(())
    }
}

impl Connection {
    /// Takes this connection's place among the server's, or refuses it with 53300; the startup
    /// timeout ends either way.
    fn take_place(&self) -> PgWireResult<()> {
        let _ = self.authenticated.send(true);
        let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(self.places.take().ok_or_else(|| too_many_clients(self.engine.config().max_connections))?);
        }
        Ok(())
    }
}

impl ConnectionHandlers {
    /// Interrupts the connection's running statement, as a cancel request does: called when
    /// the client has gone, so that its statement does not run on for nobody.
    pub fn interrupter(&self) -> impl Fn() + Send + 'static {
        let signal = self.conn.signal.clone();
        move || signal.send_modify(|n| *n += 1)
    }

    /// Resolves once the connection has authenticated (never, if it does not).
    pub fn authenticated(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.conn.authenticated.subscribe();
        async move {
            if rx.wait_for(|a| *a).await.is_err() {
                futures::future::pending::<()>().await;
            }
        }
    }
}

/// PostgreSQL's answer beyond max_connections.
fn too_many_clients(max: usize) -> PgWireError {
    PgWireError::UserError(Box::new(
        SqlState::TooManyConnections.error_info(format!("sorry, too many clients already (max_connections is {max})")),
    ))
}

/// Field descriptions of a result schema, with per-column formats.
fn fields(schema: &Schema, format: &Format) -> Vec<FieldInfo> {
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let t = params::pg_type_for(Some(f.data_type()));
            FieldInfo::new(f.name().clone(), None, None, t, format_for(format, i))
                .with_type_modifier(pg::types::type_modifier(f.data_type()))
        })
        .collect()
}

fn format_for(format: &Format, i: usize) -> FieldFormat {
    match format {
        Format::Individual(codes) => codes.get(i).map(|c| FieldFormat::from(*c)).unwrap_or(FieldFormat::Text),
        other => other.format_for(i),
    }
}

/// A statement's result as a pgwire response; rows are streamed batch by batch. A COPY FROM
/// leaves its state in `copy` for the CopyData that follows.
fn response(output: Output, format: &Format, copy: &std::sync::Mutex<Option<CopyInState>>) -> Response {
    match output {
        Output::CopyIn(target) => {
            let state = CopyInState::new(*target);
            let (code, columns) = (state.format().code(), state.columns());
            *copy.lock().unwrap_or_else(|p| p.into_inner()) = Some(state);
            Response::CopyIn(CopyResponse::new(code, columns, stream::empty()))
        }
        Output::CopyOut(out) => {
            let (code, columns) = (out.format.code(), out.rows.schema().fields().len());
            Response::CopyOut(CopyResponse::new(code, columns, copy_out_stream(out)))
        }
        Output::Rows(stream) => {
            let schema = stream.schema();
            let fields = Arc::new(fields(&schema, format));
            let formats: Vec<FieldFormat> = fields.iter().map(|f| f.format()).collect();
            let rows = stream.flat_map(move |batch| {
                let encoded = batch.map_err(|e| pg_wire_error(&Error::DataFusion(e))).and_then(|b| {
                    encode_batch(&b, &formats)
                        .map_err(|e| pg_wire_error(&Error::Store(format!("cannot encode result: {}", e.0))))
                });
                match encoded {
                    Ok(rows) => stream::iter(rows.into_iter().map(Ok).collect::<Vec<_>>()),
                    Err(e) => stream::iter(vec![Err(e)]),
                }
            });
            Response::Query(QueryResponse::new(fields, rows))
        }
        Output::Command(tag) => Response::Execution(Tag::new(&tag)),
        Output::TransactionStart(tag) => Response::TransactionStart(Tag::new(&tag)),
        Output::TransactionEnd(tag) => Response::TransactionEnd(Tag::new(&tag)),
    }
}

#[async_trait]
impl SimpleQueryHandler for Connection {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut session = self.session(client).await?;
        let timeout = session.settings().get("statement_timeout").ok().and_then(|v| timeout_ms(&v)).unwrap_or(0);
        let statements = parse_interruptible(&self.engine, query, Some((&self.signal, timeout)))
            .await
            .map_err(|e| pg_wire_error(&e))?;
        let mut responses = Vec::with_capacity(statements.len());
        for stmt in &statements {
            let before = reported(&session);
            let executed = execute_interruptible(&mut session, &self.signal, Run::Statement(stmt), &[]).await;
            report_changes(client, &before, &session).await?;
            let result = match executed {
                // Sent here, in order, when it is the string's first result.
                Ok(Output::CopyOut(out)) if responses.is_empty() => {
                    send_copy_out(client, out).await.map(Response::Execution)
                }
                Ok(output) => Ok(response(output, &Format::UnifiedText, &self.copy)),
                Err(e) => Err(pg_wire_error(&e)),
            };
            match result {
                Ok(r) => responses.push(r),
                Err(e) => {
                    // Earlier statements' results are sent, then the error ends the string.
                    match e {
                        PgWireError::UserError(info) if !responses.is_empty() => responses.push(Response::Error(info)),
                        other => return Err(other),
                    }
                    break;
                }
            }
        }
        Ok(responses)
    }
}

/// A parsed statement of the extended protocol, with the plan it keeps ([`crate::sql::prepared`]).
type Prepared = Arc<crate::sql::Prepared>;

pub struct StatementParser {
    engine: Arc<Engine>,
}

#[async_trait]
impl QueryParser for StatementParser {
    type Statement = Prepared;

    async fn parse_sql<C>(&self, _client: &C, sql: &str, _types: &[Option<Type>]) -> PgWireResult<Option<Prepared>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let mut statements = parse_interruptible(&self.engine, sql, None).await.map_err(|e| pg_wire_error(&e))?;
        match statements.len() {
            0 => Ok(None),
            1 => Ok(statements.pop().map(|statement| Arc::new(crate::sql::Prepared::new(statement)))),
            _ => Err(PgWireError::UserError(Box::new(
                SqlState::SyntaxError.error_info("cannot insert multiple commands into a prepared statement"),
            ))),
        }
    }

    fn get_parameter_types(&self, _stmt: &Prepared) -> PgWireResult<Vec<Type>> {
        // Describe is answered by `do_describe_statement`, which can plan.
        Ok(vec![])
    }

    fn get_result_schema(&self, _stmt: &Prepared, _format: Option<&Format>) -> PgWireResult<Vec<FieldInfo>> {
        Ok(vec![])
    }
}

#[async_trait]
impl ExtendedQueryHandler for Connection {
    type Statement = Prepared;
    type QueryParser = StatementParser;

    fn query_parser(&self) -> Arc<StatementParser> {
        self.parser.clone()
    }

    async fn do_describe_statement<C>(
        &self,
        client: &mut C,
        target: &StoredStatement<Prepared>,
    ) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut session = self.session(client).await?;
        let d = session.describe_prepared(&target.statement).await.map_err(|e| pg_wire_error(&e))?;
        let count = d.params.len().max(target.parameter_types.len());
        let param_types = (0..count)
            .map(|i| match target.parameter_types.get(i).cloned().flatten() {
                Some(t) if t != Type::UNKNOWN => t,
                _ => params::pg_type_for(d.params.get(i).and_then(|p| p.as_ref())),
            })
            .map(|t| if t == Type::UNKNOWN { Type::TEXT } else { t })
            .collect();
        Ok(DescribeStatementResponse::new(param_types, fields(&d.schema, &Format::UnifiedText)))
    }

    async fn do_describe_portal<C>(
        &self,
        client: &mut C,
        portal: &Portal<Prepared>,
    ) -> PgWireResult<DescribePortalResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut session = self.session(client).await?;
        let d = session.describe_prepared(&portal.statement.statement).await.map_err(|e| pg_wire_error(&e))?;
        Ok(DescribePortalResponse::new(fields(&d.schema, &portal.result_column_format)))
    }

    async fn do_query<C>(&self, client: &mut C, portal: &Portal<Prepared>, _max_rows: usize) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut session = self.session(client).await?;
        let prepared = &portal.statement.statement;
        let declared =
            |i: usize| portal.statement.parameter_types.get(i).cloned().flatten().filter(|t| *t != Type::UNKNOWN);
        // A binary value of a type the client did not declare has the type we described for it
        // (clients take it from our Describe); only then is the statement planned for its types.
        let undeclared_binary = (0..portal.parameters.len())
            .any(|i| declared(i).is_none() && format_for(&portal.parameter_format, i) == FieldFormat::Binary);
        let described: Vec<Option<Type>> = if undeclared_binary {
            let d = session.describe_prepared(prepared).await.map_err(|e| pg_wire_error(&e))?;
            d.params.iter().map(|p| p.as_ref().map(|dt| params::pg_type_for(Some(dt)))).collect()
        } else {
            vec![]
        };
        let values = portal
            .parameters
            .iter()
            .enumerate()
            .map(|(i, bytes)| {
                let wire = declared(i).or_else(|| described.get(i).cloned().flatten());
                params::decode(i, bytes.as_deref(), format_for(&portal.parameter_format, i), wire.as_ref())
            })
            .collect::<Result<Vec<ScalarValue>, Error>>()
            .map_err(|e| pg_wire_error(&e))?;
        let before = reported(&session);
        let executed = execute_interruptible(&mut session, &self.signal, Run::Prepared(prepared), &values).await;
        report_changes(client, &before, &session).await?;
        let output = executed.map_err(|e| pg_wire_error(&e))?;
        if let Output::CopyOut(out) = output {
            return send_copy_out(client, out).await.map(Response::Execution);
        }
        Ok(response(output, &portal.result_column_format, &self.copy))
    }
}
