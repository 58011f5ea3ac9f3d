//! The pgwire server: accept loop, per-connection handlers, Arrow to PostgreSQL encoding.
//!
//! - [`handler`]: startup, simple and extended query for one connection; each connection has
//!   its own [`crate::session::Session`].
//! - [`auth`]: SCRAM-SHA-256 users from the configuration, TLS.
//! - [`cancel`]: cancel requests and `statement_timeout` stop a running statement (57014).
//! - Arrow values as PostgreSQL text and binary values: [`crate::pg::encode`].
//! - [`params`]: bound parameters as DataFusion values.

pub mod auth;
pub mod backend;
pub mod cancel;
pub mod copy;
pub mod handler;
pub mod params;
pub mod wire;

use crate::config::Config;
use crate::error::Result;
use crate::session::Engine;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Turns any journeydb error into the PostgreSQL error the client sees.
pub fn pg_wire_error(err: &crate::Error) -> pgwire::error::PgWireError {
    let pg = crate::error::to_pg_error(err);
    if pg.code == crate::error::SqlState::InternalError {
        tracing::error!(error = %err, "internal error");
    }
    let mut info = pg.code.error_info_as(crate::error::Severity::Error, pg.message);
    info.detail = pg.detail;
    info.hint = pg.hint;
    pgwire::error::PgWireError::UserError(Box::new(info))
}

/// The stack of every thread that parses, plans or executes statements (the connections' and
/// the execution runtime's): deep enough for the deepest statement the parser lets through
/// (`journeydb_udfs::complexity::MAX_DEPTH`), whose tree every rewrite, plan pass and
/// evaluation walks recursively. Only what a thread touches is ever resident.
pub const THREAD_STACK_BYTES: usize = 64 << 20;
/// Blocking threads (file reads, writes) a runtime may start, so that stacks stay bounded.
pub const MAX_BLOCKING_THREADS: usize = 16;

/// A runtime for the server's connections or statements, with [`THREAD_STACK_BYTES`] stacks.
pub fn runtime(name: &str) -> std::io::Result<tokio::runtime::Runtime> {
    runtime_with(name, MAX_BLOCKING_THREADS)
}

/// [`runtime`], with at most `blocking` blocking threads.
pub fn runtime_with(name: &str, blocking: usize) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .thread_name(name)
        .thread_stack_size(THREAD_STACK_BYTES)
        .max_blocking_threads(blocking)
        .enable_all()
        .build()
}

/// Connections that have not authenticated yet, beyond which new sockets are closed at once.
pub const MAX_STARTING: usize = 64;
/// How long a connection may take to authenticate (PostgreSQL's `authentication_timeout` is a
/// minute; an idle socket holding a starting place for that long is what locked users out).
pub const STARTUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long open connections have, once the server is told to stop, to finish the statement
/// they run; then they are closed (their statements cancelled).
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// A server accepting connections in the background ([`start`]).
pub struct RunningServer {
    pub addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<()>>,
}

impl RunningServer {
    /// Stops the server as [`serve`] does when told to: no new connections, the open ones
    /// closed after their running statement (within [`SHUTDOWN_GRACE`]).
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

/// Binds `listen` (port 0 picks a free port) and [`serve`]s in the background.
pub async fn start(engine: Arc<Engine>, listen: SocketAddr) -> Result<RunningServer> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let (shutdown, mut stop) = watch::channel(false);
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    let task = tokio::spawn(serve(engine, listener, stopped));
    Ok(RunningServer { addr, shutdown, task })
}

/// Serves the connections `listener` accepts until `shutdown` resolves. Then it accepts no
/// more; each open connection finishes the statement it runs, is told FATAL 57P01
/// ("terminating connection due to administrator command", as PostgreSQL's fast shutdown)
/// and closes. Connections still busy after [`SHUTDOWN_GRACE`] are closed as they are.
pub async fn serve(engine: Arc<Engine>, listener: TcpListener, shutdown: impl Future<Output = ()>) -> Result<()> {
    let cancels = Arc::new(cancel::Cancels::default());
    let places = handler::Places::new(engine.config().max_connections);
    // Connections still starting up have places of their own, and little time.
    let starting = handler::Places::new(MAX_STARTING);
    let users = engine.config().users()?;
    let tls = engine.config().tls()?;
    let cert_pem = match &engine.config().auth.tls_cert {
        Some(p) => Some(Arc::new(std::fs::read(p)?)),
        None => None,
    };
    let security =
        handler::Security { users: (!users.is_empty()).then(|| Arc::new(users)), cert_pem, failures: Arc::default() };
    let (closing, closing_rx) = watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let Some(start) = starting.take() else {
                        tracing::warn!(%peer, "too many connections starting up: closed");
                        continue;
                    };
                    let handlers = handler::ConnectionHandlers::new(engine.clone(), cancels.clone(), places.clone(), &security);
                    let authenticated = handlers.authenticated();
                    let interrupt = handlers.interrupter();
                    let tls = tls.clone();
                    let closing = closing_rx.clone();
                    connections.spawn(async move {
                        let serve = wire::serve(socket, tls, handlers, interrupt, closing);
                        tokio::pin!(serve);
                        // Authenticate within STARTUP_TIMEOUT, holding a starting place until then.
                        let timed_out = tokio::select! {
                            r = &mut serve => return report(peer, r),
                            t = tokio::time::timeout(STARTUP_TIMEOUT, authenticated) => t.is_err(),
                        };
                        drop(start);
                        if timed_out {
                            tracing::debug!(%peer, "no authentication within the startup timeout: closed");
                            return;
                        }
                        report(peer, serve.await);
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }
    drop(listener);
    let _ = closing.send(true);
    let open = connections.len();
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async { while connections.join_next().await.is_some() {} });
    if drained.await.is_err() {
        tracing::warn!(open, busy = connections.len(), "connections still busy after the shutdown grace: closed");
        connections.shutdown().await;
    }
    Ok(())
}

fn report(peer: SocketAddr, outcome: std::io::Result<()>) {
    if let Err(e) = outcome {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// `journeydb serve`: binds the configured address and serves until interrupted (Ctrl-C or
/// SIGTERM). The data directory is the caller's to prepare (`journeydb serve` creates the
/// demo dataset in a missing one first, see `main.rs`).
pub async fn run(config: Config) -> Result<()> {
    let engine = Engine::new(config)?;
    let listener = TcpListener::bind(engine.config().listen).await?;
    let addr = listener.local_addr()?;
    tracing::info!(
        %addr,
        data = %engine.store().location(),
        tables = ?engine.store().table_names(),
        "journeydb is ready: psql -h {} -p {} -U journey journeydb",
        addr.ip(),
        addr.port()
    );
    println!("journeydb listening on {addr}");
    let explorer = start_explorer(&engine).await;
    serve(engine, listener, interrupted()).await?;
    if let Some(explorer) = explorer {
        explorer.stop().await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Starts the explorer on `http_listen` unless it is off; a port already taken only costs the
/// explorer, not the server.
async fn start_explorer(engine: &Arc<Engine>) -> Option<crate::explorer::ExplorerHandle> {
    let addr = engine.config().http_address().ok().flatten()?;
    match crate::explorer::start(engine.clone(), addr).await {
        Ok((bound, handle)) => {
            let scheme = if engine.config().auth.tls_cert.is_some() { "https" } else { "http" };
            println!("journeydb explorer on {scheme}://{bound}/");
            Some(handle)
        }
        Err(e) => {
            tracing::warn!(%addr, error = %e, "the explorer could not listen: it is off");
            None
        }
    }
}

/// Resolves at Ctrl-C (SIGINT) or SIGTERM (what `docker stop` and systemd send).
async fn interrupted() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
    tracing::info!("shutting down: open connections finish their statement, then close");
}
