//! The one seam between planning and running: every plan a client's statement runs (a query,
//! the rows an INSERT, CREATE TABLE AS or COPY reads) is started by the engine's [`Executor`].
//! [`Local`] runs it on this machine's runtime. With a cluster, the plan it runs already holds
//! its jobs: the last physical optimizer rule ([`crate::cluster::distribute::Distribute`],
//! installed by [`crate::session::Engine`]) replaces what can run distributed with the
//! operator that runs it on the cluster.

use crate::error::Result;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;

/// Runs logical plans made by [`crate::sql::Planner`] in a session's context.
#[async_trait::async_trait]
pub trait Executor: std::fmt::Debug + Send + Sync {
    /// Optimises `plan`, makes its physical plan and starts it: the rows stream as they come.
    async fn execute(&self, ctx: &SessionContext, plan: LogicalPlan) -> Result<SendableRecordBatchStream>;
}

/// Runs plans in the process, on the session's runtime (memory pool, spill directory).
#[derive(Debug, Default)]
pub struct Local;

#[async_trait::async_trait]
impl Executor for Local {
    async fn execute(&self, ctx: &SessionContext, plan: LogicalPlan) -> Result<SendableRecordBatchStream> {
        Ok(ctx.execute_logical_plan(plan).await?.execute_stream().await?)
    }
}
