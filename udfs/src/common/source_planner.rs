//! How a report's `source => 'SELECT ...'` becomes a plan.
//!
//! The engine that serves these functions plans SQL its own way (for journeydb: PostgreSQL's
//! pre-parse fixes, AST rewrites and plan passes), and a report's source must be planned that
//! way too, or the same SELECT answers differently as a source than as a statement. This
//! crate does not know that engine: the engine installs a [`SourcePlanner`] in the session's
//! configuration ([`install`]), and [`plan_source`] uses it. Without one (this crate's own
//! tests), a source is planned as DataFusion's `SessionContext::sql` would.

use datafusion::error::Result;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionConfig;
use std::fmt::Debug;
use std::sync::Arc;

/// Plans one query's text in a session.
#[async_trait::async_trait]
pub trait SourcePlanner: Send + Sync + Debug {
    async fn plan(&self, state: &SessionState, sql: &str) -> Result<LogicalPlan>;
}

/// The planner a session's configuration holds (a `SessionConfig` extension).
#[derive(Debug)]
struct Installed(Arc<dyn SourcePlanner>);

/// `config` with `planner` as the way report sources are planned.
pub fn install(config: SessionConfig, planner: Arc<dyn SourcePlanner>) -> SessionConfig {
    config.with_extension(Arc::new(Installed(planner)))
}

/// `sql` planned in `state` by the installed planner, else by DataFusion's.
pub async fn plan_source(state: &SessionState, sql: &str) -> Result<LogicalPlan> {
    match state.config().get_extension::<Installed>() {
        Some(installed) => installed.0.plan(state, sql).await,
        None => state.create_logical_plan(sql).await,
    }
}
