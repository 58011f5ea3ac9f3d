//! The cluster (issue 19): Apache DataFusion Ballista's scheduler and executors with journeydb's
//! functions and operators, and the server's side of it.
//!
//! The server plans every statement as it does alone; then [`distribute::Distribute`], the last
//! physical optimizer rule, hands the largest parts of the plan that can run anywhere (they read
//! files every node can read, and call no function bound to the session) to the scheduler as one
//! Ballista job each ([`distribute::ClusterExec`]). Catalog queries, temporary tables,
//! session-bound functions and what reads them run in the server. `EXPLAIN` shows which part
//! went where; `SET journeydb.cluster = off` keeps a session's statements local.
//!
//! - `journeydb scheduler`: [`run_scheduler`].
//! - `journeydb executor`: [`run_executor`].

pub mod codec;
pub mod distribute;
pub mod job;

use crate::config::Config;
use crate::error::{Error, Result};
use ballista_core::registry::BallistaFunctionRegistry;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::SessionState;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::prelude::{SessionConfig, SessionContext};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// The scheduler's default address.
pub const DEFAULT_SCHEDULER: &str = "127.0.0.1:50050";

/// `[cluster]` in the configuration.
#[derive(Debug, Clone, Default, serde::Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// The scheduler's `host:port`: with it, `serve` runs what can run distributed there.
    pub scheduler: Option<String>,
    /// Executors read every shuffle partition over Arrow Flight, even their own (what a
    /// cluster of several machines does; tests on one machine set it).
    pub force_remote_read: bool,
    /// Partitions per stage of what is sent (each a task on an executor): the executors' task
    /// slots together; 0 plans as the server alone does (its `target_partitions`).
    pub partitions: usize,
}

/// A session state with every function a plan may call on a cluster node: DataFusion's, the
/// journey functions and the PostgreSQL compatibility functions that do not depend on a
/// session. The scheduler decodes plans with it; executors run them with it.
pub fn node_state(config: SessionConfig, runtime: Arc<RuntimeEnv>) -> Result<SessionState> {
    let mut state =
        SessionStateBuilder::new().with_default_features().with_config(config).with_runtime_env(runtime).build();
    journeydb_udfs::register_all(&mut state)?;
    let ctx = SessionContext::new_with_state(state);
    crate::pg::value_limits::register(&ctx);
    crate::pg::checked_arithmetic::register(&ctx);
    crate::pg::datetime::register(&ctx);
    crate::pg::in_array::register(&ctx);
    crate::pg::text_cast::register(&ctx);
    crate::pg::substring_regex::register(&ctx);
    crate::pg::to_char::register(&ctx);
    Ok(ctx.state())
}

/// A node's runtime: spill files in `work_dir`, and the store's object storage when the data
/// is on S3 (local paths are read as they are: the same path on every node).
fn node_runtime(config: &Config, work_dir: Option<&std::path::Path>) -> Result<Arc<RuntimeEnv>> {
    let mut builder = RuntimeEnvBuilder::new();
    if let Some(dir) = work_dir {
        builder = builder.with_temp_file_path(dir);
    }
    let runtime = builder.build_arc()?;
    let location = config.location()?;
    if !location.is_local() {
        let objects = crate::store::Objects::open(&location, &config.store)?;
        runtime.register_object_store(objects.base_url(), objects.store().clone());
    }
    Ok(runtime)
}

/// Runs the scheduler on `listen` until the process ends.
pub async fn run_scheduler(listen: SocketAddr, config: &Config) -> Result<()> {
    use ballista_scheduler::cluster::BallistaCluster;
    use ballista_scheduler::config::SchedulerConfig;
    check_loopback("scheduler", listen)?;
    let runtime = node_runtime(config, None)?;
    let mut scheduler = SchedulerConfig::default()
        .with_hostname(listen.ip().to_string())
        .with_port(listen.port())
        // An executor killed mid-query is noticed and its tasks run elsewhere within seconds.
        .with_remove_executor_wait_secs(2);
    scheduler.bind_host = listen.ip().to_string();
    // Executors beat every 2 seconds (see run_executor): one silent for 10 is gone, and a job
    // left with no executor fails 10 seconds later instead of waiting for one.
    scheduler.executor_timeout_seconds = 10;
    scheduler.expire_dead_executor_interval_seconds = 2;
    scheduler.no_executors_grace_period_seconds = 10;
    scheduler.override_session_builder =
        Some(Arc::new(move |c: SessionConfig| node_state(c, runtime.clone()).map_err(crate::sql::into_datafusion)));
    scheduler.override_physical_codec = Some(Arc::new(codec::Codec::default()));
    let cluster = BallistaCluster::new_from_config(&scheduler).await.map_err(cluster_error)?;
    tracing::info!(%listen, "journeydb scheduler listening");
    ballista_scheduler::scheduler_process::start_server(cluster, listen, Arc::new(scheduler))
        .await
        .map_err(cluster_error)
}

/// `journeydb executor`'s options.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    pub scheduler: String,
    /// Arrow Flight (shuffle reads) listens here, task polling on the next port.
    pub listen: SocketAddr,
    pub work_dir: Option<PathBuf>,
    /// The memory this executor's tasks may hold together (`"2GB"`); the server's
    /// `memory_limit` when unset.
    pub memory_limit: Option<String>,
    /// Tasks run at once (default: the machine's cores).
    pub concurrent_tasks: Option<usize>,
}

/// Runs an executor until the process ends.
pub async fn run_executor(options: ExecutorOptions, config: &Config) -> Result<()> {
    use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
    check_loopback("executor", options.listen)?;
    let (host, port) = options
        .scheduler
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
        .ok_or_else(|| Error::Config(format!("--scheduler {}: expected host:port", options.scheduler)))?;
    let mut memory = config.clone();
    if let Some(m) = &options.memory_limit {
        memory.memory_limit = m.clone();
    }
    let memory = memory.memory_limit_bytes()?;
    let work_dir = match &options.work_dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("journeydb-executor-{}", options.listen.port())),
    };
    std::fs::create_dir_all(&work_dir)?;
    let runtime = node_runtime(config, Some(&work_dir))?;
    let state = node_state(SessionConfig::new(), runtime.clone())?;
    let mut executor =
        ExecutorProcessConfig {
            bind_host: options.listen.ip().to_string(),
            external_host: Some(options.listen.ip().to_string()),
            port: options.listen.port(),
            grpc_port: options.listen.port().checked_add(1).ok_or_else(|| {
                Error::Config(format!("--listen {}: the next port is for task polling", options.listen))
            })?,
            scheduler_host: host,
            scheduler_port: port,
            work_dir: Some(work_dir.to_string_lossy().to_string()),
            memory_pool_size: Some(memory as u64),
            executor_heartbeat_interval_seconds: 2,
            override_function_registry: Some(Arc::new(BallistaFunctionRegistry::from(&state))),
            override_physical_codec: Some(Arc::new(codec::Codec::default())),
            override_runtime_producer: Some(Arc::new(move |_: &SessionConfig| Ok(runtime.clone()))),
            ..Default::default()
        };
    if let Some(n) = options.concurrent_tasks {
        executor.vcores = n.max(1);
    }
    tracing::info!(listen = %options.listen, scheduler = %options.scheduler, memory, "journeydb executor starting");
    start_executor_process(Arc::new(executor)).await.map_err(cluster_error)
}

/// Nodes talk plain gRPC: beyond loopback only where the network is private (say so with
/// `JOURNEYDB_CLUSTER_PRIVATE_NETWORK=1`).
fn check_loopback(what: &str, listen: SocketAddr) -> Result<()> {
    if listen.ip().is_loopback() || std::env::var("JOURNEYDB_CLUSTER_PRIVATE_NETWORK").is_ok_and(|v| v == "1") {
        return Ok(());
    }
    Err(Error::Config(format!(
        "the {what} would listen on {listen}: cluster nodes talk unencrypted gRPC, so they listen on \
         loopback unless JOURNEYDB_CLUSTER_PRIVATE_NETWORK=1 says the network is private"
    )))
}

fn cluster_error(e: ballista_core::error::BallistaError) -> Error {
    Error::Store(format!("cluster: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_listen_on_loopback_unless_told_the_network_is_private() {
        assert!(check_loopback("scheduler", "127.0.0.1:50050".parse().expect("addr")).is_ok());
        assert!(check_loopback("executor", "[::1]:50051".parse().expect("addr")).is_ok());
        let err = check_loopback("scheduler", "0.0.0.0:50050".parse().expect("addr")).expect_err("refused");
        assert!(err.to_string().contains("JOURNEYDB_CLUSTER_PRIVATE_NETWORK=1"), "{err}");
    }
}
