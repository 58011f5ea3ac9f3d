//! Which part of a plan runs on the cluster: the last physical optimizer rule, [`Distribute`],
//! replaces each largest subtree that can travel with a [`ClusterExec`], which runs it as one
//! Ballista job and streams its rows back.
//!
//! A subtree travels when it reads files (a plan of constants is not worth a job), every node
//! of it encodes with [`super::codec::Codec`] and decodes with the functions every node has
//! ([`super::node_state`]), its scalar functions are those nodes' own (not the session's
//! `current_setting`, `current_user`, catalog helpers) and it reads no in-memory table (temporary
//! tables, the catalog). A job answers in one partition, so a subtree is cut only where its
//! parent takes any partitioning or one partition: below an operator that needs its input
//! hash-partitioned (a partitioned join, the funnel aggregate), the cut goes lower and the
//! repartitioning runs in the server. A sorted subtree is merged in order on the cluster.

use super::ClusterConfig;
use super::codec::Codec;
use super::job::JobError;
use crate::error::{Error, SqlState};
use ballista_core::extension::SessionConfigExt;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::config::ConfigOptions;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionState;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::ScalarFunctionExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::execution_plan::{
    Boundedness, ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, ExecutionPlanProperties, Partitioning, PhysicalExpr,
    PlanProperties,
};
use datafusion_proto::physical_plan::AsExecutionPlan;
use datafusion_proto::protobuf::PhysicalPlanNode;
use futures::{StreamExt, TryStreamExt};
use std::fmt;
use std::sync::Arc;

datafusion::common::extensions_options! {
    /// `journeydb.*` settings DataFusion's planner sees.
    pub struct ClusterOptions {
        /// Run what can run distributed on the cluster (when the server has one).
        pub cluster: bool, default = true
        /// Whether the server has a cluster.
        pub configured: bool, default = false
    }
}

impl ClusterOptions {
    /// Whether this session's plans go to a cluster.
    pub fn active(&self) -> bool {
        self.cluster && self.configured
    }
}

impl datafusion::config::ConfigExtension for ClusterOptions {
    const PREFIX: &'static str = "journeydb";
}

/// Where jobs go and how they are encoded, shared by the rule and every [`ClusterExec`].
#[derive(Debug)]
pub struct Target {
    scheduler: super::job::Scheduler,
    force_remote_read: bool,
    codec: Codec,
    /// What a cluster node knows: its functions decode the plans sent.
    nodes: Arc<TaskContext>,
    /// The functions a session registers of its own (bound to its user, settings, catalog).
    session_only: std::sync::OnceLock<std::collections::HashSet<String>>,
}

impl Target {
    pub fn new(config: &ClusterConfig, scheduler: String) -> crate::error::Result<Arc<Target>> {
        let runtime = Arc::new(datafusion::execution::runtime_env::RuntimeEnv::default());
        let state: SessionState = super::node_state(datafusion::prelude::SessionConfig::new(), runtime)?;
        Ok(Arc::new(Target {
            scheduler: super::job::Scheduler::new(scheduler),
            force_remote_read: config.force_remote_read,
            codec: Codec::default(),
            nodes: Arc::new(TaskContext::from(&state)),
            session_only: Default::default(),
        }))
    }

    /// Whether [`Target::session_functions`] was told already.
    pub fn knows_session_functions(&self) -> bool {
        self.session_only.get().is_some()
    }

    /// Notes the names of the functions sessions register of their own (the same in every
    /// session: the first says).
    pub fn session_functions(&self, names: impl Iterator<Item = String>) {
        let _ = self.session_only.get_or_init(|| names.collect());
    }

    /// What [`Distribute`] needs to know of `plan` and each subtree of it, learnt in one pass.
    #[recursive::recursive]
    fn survey(&self, plan: &Arc<dyn ExecutionPlan>) -> Survey {
        let children: Vec<Survey> = plan.children().into_iter().map(|c| self.survey(c)).collect();
        let reads_files = children.iter().any(|c| c.reads_files) || scans_files(plan.as_ref());
        let may_travel = children.iter().all(|c| c.may_travel)
            && plan.downcast_ref::<ClusterExec>().is_none()
            && !in_memory(plan.as_ref())
            && !Codec::stays_in_server(plan.as_ref())
            && self.own_functions(plan);
        Survey { reads_files, may_travel, children }
    }

    /// True when every scalar function `node`'s expressions call is the one the nodes have
    /// under that name (the same implementation, not the session's function of that name).
    fn own_functions(&self, node: &Arc<dyn ExecutionPlan>) -> bool {
        let mut ok = true;
        let _ = node.apply_expressions(&mut |root: &Arc<dyn PhysicalExpr>| {
            root.apply(|e| {
                if let Some(f) = e.downcast_ref::<ScalarFunctionExpr>() {
                    let theirs = self.nodes.scalar_functions().get(f.name());
                    ok &= self.session_only.get().is_none_or(|s| !s.contains(f.name()));
                    ok &= theirs.is_some_and(|t| {
                        implementation(t.inner().as_ref()) == implementation(f.fun().inner().as_ref())
                    });
                }
                Ok(if ok { TreeNodeRecursion::Continue } else { TreeNodeRecursion::Stop })
            })?;
            Ok(if ok { TreeNodeRecursion::Continue } else { TreeNodeRecursion::Stop })
        });
        ok
    }

    /// `plan` encoded, when it encodes and decodes with the nodes' functions.
    fn encode(&self, plan: &Arc<dyn ExecutionPlan>) -> Option<Vec<u8>> {
        let node = PhysicalPlanNode::try_from_physical_plan(plan.clone(), &self.codec).ok()?;
        let mut encoded = vec![];
        node.try_encode(&mut encoded).ok()?;
        node.try_into_physical_plan(&self.nodes, &self.codec).ok()?;
        Some(encoded)
    }

    /// Runs `plan` (one partition) as a Ballista job. A job that failed (a task's error, an
    /// executor lost more often than Ballista retries) runs again in the server, before any row
    /// was sent: the answer is then the server's, and so is the error, with its SQLSTATE (an
    /// executor's error reaches the server as text). A scheduler that cannot be reached is
    /// SQLSTATE 58030.
    async fn run(
        self: Arc<Self>,
        plan: Arc<dyn ExecutionPlan>,
        encoded: Vec<u8>,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let config = context
            .session_config()
            .clone()
            .upgrade_for_ballista()
            .with_ballista_shuffle_reader_force_remote_read(self.force_remote_read)
            // Our physical optimizer rules made the plan; the scheduler only cuts it.
            .with_ballista_adaptive_query_planner(false);
        match self.scheduler.run(encoded, plan.schema(), &config).await {
            Ok(rows) => Ok(rows),
            Err(JobError::Failed(message)) => {
                tracing::warn!(scheduler = %self.scheduler.address(), error = %message, "a cluster job failed; running it in the server");
                plan.execute(0, context)
            }
            Err(JobError::Unreachable(message)) => Err(DataFusionError::External(Box::new(Error::sql(
                SqlState::IoError,
                format!("cluster at {}: {message}", self.scheduler.address()),
            )))),
        }
    }
}

/// Which code a function runs: its implementation's type.
fn implementation(f: &dyn datafusion::logical_expr::ScalarUDFImpl) -> std::any::TypeId {
    (f as &dyn std::any::Any).type_id()
}

/// True for a scan of rows held in the server's memory.
fn in_memory(node: &dyn ExecutionPlan) -> bool {
    node.downcast_ref::<DataSourceExec>().is_some_and(|d| d.data_source().is::<MemorySourceConfig>())
}

/// True for a scan of files.
fn scans_files(node: &dyn ExecutionPlan) -> bool {
    node.downcast_ref::<DataSourceExec>().is_some_and(|d| d.data_source().is::<FileScanConfig>())
}

/// What [`Target::survey`] learns of a subtree, and of each of its children's.
struct Survey {
    /// It reads files (a plan of constants is not worth a job).
    reads_files: bool,
    /// No node of it stays in the server, by what the node is (see the module's
    /// documentation); whether it encodes is learnt when it is sent.
    may_travel: bool,
    children: Vec<Survey>,
}

/// Operators whose inputs are theirs alone: nothing below them is sent without them.
const OPAQUE: [&str; 3] = ["DeltaScanExec", "DeltaScanMetaExec", "ColumnMappingExec"];

/// The physical optimizer rule that sends what can travel to the cluster.
#[derive(Debug)]
pub struct Distribute {
    pub target: Arc<Target>,
}

impl PhysicalOptimizerRule for Distribute {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        if !config.extensions.get::<ClusterOptions>().is_none_or(|o| o.cluster) {
            // Off for this session.
            return Ok(plan);
        }
        // A plan optimized before (a part planned as a statement of its own) holds its jobs
        // already: they are put back as they were sent (one partition, in order), since the
        // optimizer may have relied on that (a sort above one pushed below a repartition that
        // keeps order only over one partition), and the whole is cut again.
        let plan = plan
            .transform_up(|node| {
                Ok(match node.downcast_ref::<ClusterExec>() {
                    Some(c) => Transformed::yes(c.job.clone()),
                    None => Transformed::no(node),
                })
            })?
            .data;
        let survey = self.target.survey(&plan);
        self.cut(plan, &survey, true)
    }

    fn name(&self) -> &str {
        "journeydb_distribute"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

impl Distribute {
    /// `plan` with its largest travelling subtrees sent; `whole` when its consumer takes it in
    /// one partition. A subtree that may travel but does not encode (an operator the codec does
    /// not know, which should not happen) is tried again at each level below.
    #[recursive::recursive]
    fn cut(&self, plan: Arc<dyn ExecutionPlan>, survey: &Survey, whole: bool) -> Result<Arc<dyn ExecutionPlan>> {
        if !survey.reads_files {
            return Ok(plan);
        }
        if whole
            && survey.may_travel
            && let Some(sent) = ClusterExec::try_new(plan.clone(), self.target.clone())
        {
            return Ok(Arc::new(sent));
        }
        // A Delta scan reads its files through an inner scan made for it (with columns only it
        // understands): the two stay together.
        if OPAQUE.contains(&plan.name()) {
            return Ok(plan);
        }
        let wants = plan.input_distribution_requirements();
        let children: Vec<Arc<dyn ExecutionPlan>> = plan.children().into_iter().cloned().collect();
        let mut changed = false;
        let mut cut = Vec::with_capacity(children.len());
        for (i, child) in children.iter().enumerate() {
            let whole = matches!(
                wants.child_distribution(i),
                None | Some(Distribution::UnspecifiedDistribution) | Some(Distribution::SinglePartition)
            );
            let c = self.cut(child.clone(), &survey.children[i], whole)?;
            changed |= !Arc::ptr_eq(&c, child);
            cut.push(c);
        }
        if changed {
            plan.replace_children(cut, ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute))
        } else {
            Ok(plan)
        }
    }
}

/// A subtree run on the cluster as one Ballista job: one partition, in the subtree's order.
/// Its child is the subtree (shown by `EXPLAIN`, never run in the server).
#[derive(Debug)]
pub struct ClusterExec {
    input: Arc<dyn ExecutionPlan>,
    /// What is sent: `input`, its partitions merged into one (in order, when it is sorted).
    job: Arc<dyn ExecutionPlan>,
    /// `job` encoded, as the scheduler receives it.
    encoded: Vec<u8>,
    target: Arc<Target>,
    properties: Arc<PlanProperties>,
}

impl ClusterExec {
    /// `input` as a job; none when it does not encode, or does not decode with the nodes'
    /// functions.
    fn try_new(input: Arc<dyn ExecutionPlan>, target: Arc<Target>) -> Option<Self> {
        let job: Arc<dyn ExecutionPlan> = if input.output_partitioning().partition_count() <= 1 {
            input.clone()
        } else {
            match input.output_ordering() {
                Some(o) => Arc::new(SortPreservingMergeExec::new(o.clone(), input.clone())),
                None => Arc::new(CoalescePartitionsExec::new(input.clone())),
            }
        };
        let properties = Arc::new(PlanProperties::new(
            job.equivalence_properties().clone(),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        let encoded = target.encode(&job)?;
        Some(ClusterExec { input, job, encoded, target, properties })
    }

    /// Where Ballista cuts the subtree into stages: at each shuffle (hash repartitioning) and
    /// each merge of partitions.
    fn stages(&self) -> usize {
        let mut cuts = 0;
        let _ = self.job.apply(|node| {
            let shuffle = node
                .downcast_ref::<RepartitionExec>()
                .is_some_and(|r| matches!(r.partitioning(), Partitioning::Hash(..)));
            let merge = node.downcast_ref::<CoalescePartitionsExec>().is_some()
                || node.downcast_ref::<SortPreservingMergeExec>().is_some();
            cuts += usize::from(shuffle || merge);
            Ok(TreeNodeRecursion::Continue)
        });
        cuts + 1
    }
}

impl DisplayAs for ClusterExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "ClusterExec: scheduler={}, stages={}", self.target.scheduler.address(), self.stages())
    }
}

impl ExecutionPlan for ClusterExec {
    fn name(&self) -> &str {
        "ClusterExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = journeydb_udfs::common::plan_node::only_child(children, "ClusterExec")?;
        let sent = ClusterExec::try_new(input, self.target.clone())
            .ok_or_else(|| DataFusionError::Internal("a cluster job's plan that cannot travel any more".into()))?;
        Ok(Arc::new(sent))
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(children, ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute))
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!("ClusterExec has one partition, asked for {partition}")));
        }
        let job = self.target.clone().run(self.job.clone(), self.encoded.clone(), context);
        let rows = futures::stream::once(job).try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema(), rows.boxed())))
    }
}
