//! The pgwire server: accept loop, per-connection handlers, Arrow to PostgreSQL encoding.
//!
//! - [`handler`]: startup, simple and extended query for one connection; each connection has
//!   its own [`crate::session::Session`].
//! - [`auth`]: SCRAM-SHA-256 users from the configuration, TLS.
//! - [`cancel`]: cancel requests and `statement_timeout` stop a running statement (57014).
//! - [`encode`]: Arrow values as PostgreSQL text and binary values.
//! - [`params`]: bound parameters as DataFusion values.

pub mod auth;
pub mod backend;
pub mod cancel;
pub mod copy;
pub mod encode;
pub mod handler;
pub mod params;
pub mod wire;

use crate::config::Config;
use crate::demo::{DemoOptions, generate_to_dir};
use crate::error::Result;
use crate::session::Engine;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

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

/// A server accepting connections in the background.
pub struct RunningServer {
    pub addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// Stops accepting connections (open connections finish on their own).
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

/// Binds `listen` (port 0 picks a free port) and serves in the background.
pub async fn start(engine: Arc<Engine>, listen: SocketAddr) -> Result<RunningServer> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let (shutdown, mut stop) = watch::channel(false);
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
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.changed() => break,
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
                        tokio::spawn(async move {
                            let serve = wire::serve(socket, tls, handlers, interrupt);
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
    });
    Ok(RunningServer { addr, shutdown, task })
}

fn report(peer: SocketAddr, outcome: std::io::Result<()>) {
    if let Err(e) = outcome {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// `journeydb serve`: creates the demo dataset in a missing data directory, then serves until
/// interrupted.
pub async fn run(config: Config) -> Result<()> {
    if !config.data_dir.exists() && config.demo_events > 0 {
        tracing::info!(dir = %config.data_dir.display(), events = config.demo_events, "creating the demo dataset");
        let opts = DemoOptions { events: config.demo_events, seed: config.demo_seed, ..DemoOptions::default() };
        let dir = config.data_dir.clone();
        let stats = tokio::task::spawn_blocking(move || generate_to_dir(&dir, &opts))
            .await
            .map_err(|e| crate::Error::Config(format!("demo generation failed: {e}")))??;
        tracing::info!("{stats}");
    }
    let listen = config.listen;
    let engine = Engine::new(config)?;
    let server = start(engine.clone(), listen).await?;
    tracing::info!(
        addr = %server.addr,
        data = %engine.store().root().display(),
        tables = ?engine.store().table_names(),
        "journeydb is ready: psql -h {} -p {} -U journey journeydb",
        server.addr.ip(),
        server.addr.port()
    );
    println!("journeydb listening on {}", server.addr);
    tokio::signal::ctrl_c().await?;
    tracing::info!("shutting down");
    server.stop().await;
    Ok(())
}
