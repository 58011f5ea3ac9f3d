//! The execution shape shared by the report table functions.
//!
//! A report reads its input (the journey model or the relation given as `source`) through SQL
//! planned in the caller's session, hash-partitioned by person and, when the report gives sort
//! keys, sorted within each partition by them, so that every person's rows arrive together and
//! in order (without keys, a person's rows are all in one partition, in no particular order).
//! The report then runs in two stages, as DataFusion's own aggregates do:
//!
//! - [`ReportPartialExec`]: one task per partition folds the partition's rows into a partial
//!   state ([`ReportKernel::update`], then [`ReportKernel::end_partition`]) and emits it as
//!   rows ([`ReportKernel::encode`]); as many output partitions as input partitions;
//! - [`ReportFinalExec`]: over those rows in one partition, decodes them
//!   ([`ReportKernel::decode`]) and combines them into the report ([`ReportKernel::finish`]).
//!
//! Between the two, the partial states are merged into one partition. That is where a cluster
//! cuts the report into stages: the partial stage runs on executors, each task reading only its
//! own partition, and the final stage wherever the states are gathered. Each state row stands
//! alone (it names its labels by text), so the answer never depends on how the rows were
//! split into batches or partitions, nor on how the input was: kernels are written so, and the
//! tests check it. The partial stage is rebuilt on another node from the report's call
//! ([`ReportKernel::call`], [`crate::table::report_stages`]).
//!
//! Memory: each partition's state is reserved from the session's memory pool as it grows
//! ([`ReportKernel::memory`], checked after every batch), and so are the states the final stage
//! holds; a report the pool cannot hold fails with DataFusion's `ResourcesExhausted` (SQLSTATE
//! 53200), naming the report, instead of growing past the server's limit.

use crate::common::options::Options;
use crate::physical::keep_rows::{KeepRows, KeepRowsExec};
use datafusion::arrow::array::AsArray;
use datafusion::arrow::array::{ArrayRef, RecordBatch, UInt32Array};
use datafusion::arrow::buffer::ScalarBuffer;
use datafusion::arrow::compute::cast;
use datafusion::arrow::compute::kernels::partition::partition;
use datafusion::arrow::compute::{SortOptions, take};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNode;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionState;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryPool};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::physical_expr::{
    EquivalenceProperties, LexOrdering, OrderingRequirements, Partitioning, PhysicalSortExpr,
};
use datafusion::physical_plan::aggregates::group_values::{GroupValues, new_group_values};
use datafusion::physical_plan::aggregates::order::GroupOrdering;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::execution_plan::{
    Boundedness, ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::expressions::{Column, col};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, ExecutionPlanProperties, PhysicalExpr, PlanProperties,
};
use futures::{StreamExt, TryStreamExt};
use std::fmt;
use std::sync::Arc;

/// The input column every report partitions by: the person (or unit) key.
pub const PERSON: &str = "p";

/// What a report does with its sorted input.
pub trait ReportKernel: fmt::Debug + Send + Sync + 'static {
    /// The state one partition folds its rows into.
    type Partial: Send + 'static;

    fn name(&self) -> &'static str;
    /// The call the report was made from, what the kernel is made again from on another node.
    fn call(&self) -> &Options;
    /// The input columns each partition is sorted by; none by default.
    fn keys(&self) -> &'static [&'static str] {
        &[]
    }
    /// The report's columns.
    fn schema(&self) -> SchemaRef;
    fn new_partial(&self) -> Result<Self::Partial>;
    /// Folds one batch (of one partition, in sorted order) into the partition's state.
    fn update(&self, partial: &mut Self::Partial, batch: &RecordBatch) -> Result<()>;
    /// Called once a partition's rows are all read, in that partition's task.
    fn end_partition(&self, _partial: &mut Self::Partial) -> Result<()> {
        Ok(())
    }
    /// The columns of a partial state written as rows.
    fn state_schema(&self) -> SchemaRef;
    /// A partition's finished state as rows over [`ReportKernel::state_schema`]. Each row stands
    /// alone: whatever rows of whatever partitions one batch holds, [`ReportKernel::decode`]
    /// reads them as a state, and [`ReportKernel::finish`] merges such states into the report
    /// of all the rows.
    fn encode(&self, partial: Self::Partial) -> Result<RecordBatch>;
    fn decode(&self, rows: &RecordBatch) -> Result<Self::Partial>;
    /// Combines states into the report.
    fn finish(&self, partials: Vec<Self::Partial>) -> Result<RecordBatch>;
    /// The bytes `partial` holds (its buffers' capacities, what they point to included), what
    /// its partition reserves from the memory pool. Called after every batch: it must cost
    /// little beside [`ReportKernel::update`] (no walk over everything read so far).
    fn memory(&self, partial: &Self::Partial) -> usize;
}

/// A report's two stages, whatever its kernel: what [`ReportPartialExec`] and
/// [`ReportFinalExec`] run.
pub trait ReportStages: fmt::Debug + Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn call(&self) -> &Options;
    fn keys(&self) -> &'static [&'static str];
    fn schema(&self) -> SchemaRef;
    fn state_schema(&self) -> SchemaRef;
    /// One partition's rows folded and encoded; chunks of at most `batch_size` rows. The state
    /// is reserved from `pool` as it grows.
    fn fold(
        self: Arc<Self>,
        rows: SendableRecordBatchStream,
        batch_size: usize,
        pool: &Arc<dyn MemoryPool>,
        partition: usize,
    ) -> SendableRecordBatchStream;
    /// The report over every state row `states` yields, the decoded states reserved from `pool`.
    fn merge(
        self: Arc<Self>,
        states: SendableRecordBatchStream,
        pool: &Arc<dyn MemoryPool>,
    ) -> SendableRecordBatchStream;
}

impl<K: ReportKernel> ReportStages for K {
    fn name(&self) -> &'static str {
        ReportKernel::name(self)
    }

    fn call(&self) -> &Options {
        ReportKernel::call(self)
    }

    fn keys(&self) -> &'static [&'static str] {
        ReportKernel::keys(self)
    }

    fn schema(&self) -> SchemaRef {
        ReportKernel::schema(self)
    }

    fn state_schema(&self) -> SchemaRef {
        ReportKernel::state_schema(self)
    }

    fn fold(
        self: Arc<Self>,
        mut rows: SendableRecordBatchStream,
        batch_size: usize,
        pool: &Arc<dyn MemoryPool>,
        partition: usize,
    ) -> SendableRecordBatchStream {
        let schema = ReportKernel::state_schema(self.as_ref());
        let consumer = MemoryConsumer::new(format!("{}[{partition}]", ReportKernel::name(self.as_ref())));
        let reservation = consumer.register(pool);
        let state = async move {
            let mut partial = self.new_partial()?;
            while let Some(batch) = rows.next().await {
                self.update(&mut partial, &batch?)?;
                reservation.try_resize(self.memory(&partial))?;
            }
            self.end_partition(&mut partial)?;
            reservation.try_resize(self.memory(&partial))?;
            let state = self.encode(partial)?;
            reservation.try_resize(state.get_array_memory_size())?;
            let chunks = crate::common::plan_node::slices(&state, batch_size);
            Ok::<_, DataFusionError>(futures::stream::iter(chunks.into_iter().map(Ok)))
        };
        let stream = futures::stream::once(state).try_flatten();
        Box::pin(RecordBatchStreamAdapter::new(schema, stream))
    }

    fn merge(
        self: Arc<Self>,
        mut states: SendableRecordBatchStream,
        pool: &Arc<dyn MemoryPool>,
    ) -> SendableRecordBatchStream {
        let schema = ReportKernel::schema(self.as_ref());
        let consumer = MemoryConsumer::new(format!("{}[final]", ReportKernel::name(self.as_ref())));
        let reservation = consumer.register(pool);
        let report = async move {
            let mut partials = vec![];
            while let Some(batch) = states.next().await {
                let batch = batch?;
                if batch.num_rows() > 0 {
                    let partial = self.decode(&batch)?;
                    reservation.try_grow(self.memory(&partial))?;
                    partials.push(partial);
                }
            }
            self.finish(partials)
        };
        Box::pin(RecordBatchStreamAdapter::new(schema, futures::stream::once(report)))
    }
}

/// A report's validated call: the SQL of its input, and its plan over that input.
pub trait ReportQuery: fmt::Debug + Send + Sync + 'static {
    /// The function's name, for errors.
    fn function(&self) -> &'static str;
    /// The `source` option, for errors.
    fn source(&self) -> &str;
    /// Whose journeys the report follows (the `person` expression), for errors.
    fn person(&self) -> Option<&str> {
        None
    }
    fn input_sql(&self) -> String;
    /// The input rows the report reads (over the input's columns), when it reads fewer than
    /// all: the others are dropped right after the input's projection ([`KeepRowsExec`]), and,
    /// when the source is more than table scans (a join, such as the journey model's
    /// stitching, or an aggregate), also by the same condition as a filter on the input, which
    /// DataFusion pushes below the expensive part. Over plain tables the projection-side filter
    /// alone is cheaper.
    fn keep(&self) -> Option<KeepRows> {
        None
    }
    fn schema(&self) -> SchemaRef;
    /// The report's stages over an input of columns `input`.
    fn stages(self: Arc<Self>, input: &Schema) -> Result<Arc<dyn ReportStages>>;

    /// A second relation the report's answer is joined with (the attribution report's ad
    /// spend): its SQL, planned in the caller's session as the input is. None: no join.
    fn joined_sql(&self) -> Option<String> {
        None
    }

    /// The report's answer (`report`, one partition) joined with the rows of
    /// [`ReportQuery::joined_sql`] (`joined`).
    fn join(&self, report: Arc<dyn ExecutionPlan>, _joined: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(report)
    }
}

/// A report as a table: its input planned, in the caller's session, when it is scanned.
#[derive(Debug)]
pub struct ReportTable<Q: ReportQuery> {
    query: Arc<Q>,
    schema: SchemaRef,
}

impl<Q: ReportQuery> ReportTable<Q> {
    pub fn new(query: Q) -> Self {
        ReportTable { schema: query.schema(), query: Arc::new(query) }
    }
}

#[async_trait::async_trait]
impl<Q: ReportQuery> TableProvider for ReportTable<Q> {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let q = &self.query;
        let keep = q.keep();
        let source = format!("source \"{}\"", q.source());
        let input = plan_input(state, &q.input_sql(), keep.as_ref())
            .await
            .map_err(unreadable(q.function(), &source))
            .map_err(|e| without_accounts(q.as_ref(), e))?;
        // Always there: it also compacts the rows' strings before they are partitioned and sorted.
        let input: Arc<dyn ExecutionPlan> = Arc::new(KeepRowsExec::new(input, keep.unwrap_or_default()));
        let stages = q.clone().stages(&input.schema())?;
        let report = report_plan(input, state.config().target_partitions(), stages)?;
        let report = match q.joined_sql() {
            Some(sql) => {
                let joined = plan_input(state, &sql, None).await.map_err(unreadable(q.function(), &sql))?;
                q.join(report, joined)?
            }
            None => report,
        };
        project(report, projection)
    }
}

/// The error of `function` reading `what`: a column it lacks (a step, `by` or `person` naming
/// it) as it is, saying which with its own SQLSTATE (42703); anything else saying what could
/// not be read.
pub fn unreadable(function: &str, what: &str) -> impl FnOnce(DataFusionError) -> DataFusionError {
    let context = format!("{function}: cannot read {what}");
    move |e| match e.find_root() {
        DataFusionError::SchemaError(..) => e,
        _ => DataFusionError::Plan(format!("{context}: {e}")),
    }
}

/// A report by account (`unit => 'account'`) over a source without `account_id`: an error that
/// says where accounts come from, rather than the missing column.
fn without_accounts<Q: ReportQuery>(q: &Q, e: DataFusionError) -> DataFusionError {
    let missing = matches!(e.find_root(), DataFusionError::SchemaError(err, _)
        if matches!(err.as_ref(), datafusion::common::SchemaError::FieldNotFound { field, .. } if field.name == "account_id"));
    if !missing || q.person() != Some("account_id") {
        return e;
    }
    crate::ArgumentError::new(
        q.function(),
        "unit",
        format!(
            "'account' reads the source's account_id, and source \"{}\" has none: the journey model has it \
             with [journey.accounts] (a groups or mapping table, or email_domain = true)",
            q.source()
        ),
    )
    .into_datafusion()
}

/// Plans `sql` in the caller's session (its catalogs, functions and settings) with the
/// session's planner ([`crate::common::source_planner`]), with `keep` as a filter over its
/// columns when the source is more than table scans (see [`ReportQuery::keep`]).
pub async fn plan_input(state: &dyn Session, sql: &str, keep: Option<&KeepRows>) -> Result<Arc<dyn ExecutionPlan>> {
    let state = state
        .as_any()
        .downcast_ref::<SessionState>()
        .ok_or_else(|| DataFusionError::Internal("report functions need a SessionState".into()))?;
    let plan = crate::common::source_planner::plan_source(state, sql).await?;
    // The input is planned as if alone: what travels to a cluster is decided once, over the
    // whole plan the report is part of (the report's partial stage goes with its input). A
    // server that sends parts of plans to a cluster reads this option (journeydb's
    // `journeydb.cluster`; where it is not registered, setting it fails and changes nothing).
    let mut alone = state.clone();
    let _ = alone.config_mut().options_mut().set("journeydb.cluster", "false");
    let df = datafusion::dataframe::DataFrame::new(alone, plan);
    let df = match keep {
        Some(keep) if !scans_only(df.logical_plan())? => {
            let names: Vec<String> = df.schema().fields().iter().map(|f| f.name().clone()).collect();
            let predicate = df.parse_sql_expr(&keep.sql(&names))?;
            df.filter(predicate)?
        }
        _ => df,
    };
    df.create_physical_plan().await
}

/// True when `plan` only reads tables: scans, projections, filters, aliases, limits.
fn scans_only(plan: &LogicalPlan) -> Result<bool> {
    let mut only = true;
    plan.apply(|node| {
        only &= matches!(
            node,
            LogicalPlan::Projection(_)
                | LogicalPlan::Filter(_)
                | LogicalPlan::TableScan(_)
                | LogicalPlan::SubqueryAlias(_)
                | LogicalPlan::Limit(_)
        );
        Ok(if only { TreeNodeRecursion::Continue } else { TreeNodeRecursion::Stop })
    })?;
    Ok(only)
}

/// The report over `input`: `input` hash-partitioned on column [`PERSON`] into `partitions`,
/// sorted by the kernel's keys within each partition (ascending, NULLs last), the partial
/// stage, the states merged into one partition, the final stage.
pub fn report_plan(
    input: Arc<dyn ExecutionPlan>,
    partitions: usize,
    stages: Arc<dyn ReportStages>,
) -> Result<Arc<dyn ExecutionPlan>> {
    let person = col(PERSON, &input.schema())?;
    let hash = Partitioning::Hash(vec![person], partitions.max(1));
    let repartitioned: Arc<dyn ExecutionPlan> = Arc::new(RepartitionExec::try_new(input, hash)?);
    let input: Arc<dyn ExecutionPlan> = match ordering(&repartitioned.schema(), stages.keys())? {
        Some(o) => Arc::new(SortExec::new(o, repartitioned).with_preserve_partitioning(true)),
        None => repartitioned,
    };
    let partial: Arc<dyn ExecutionPlan> = Arc::new(ReportPartialExec::try_new(input, stages.clone())?);
    let states = Arc::new(CoalescePartitionsExec::new(partial));
    Ok(Arc::new(ReportFinalExec::new(states, stages)))
}

/// A report's `time` input column (a timestamp or a date) as microseconds since the epoch.
pub fn input_times(function: &str, column: &ArrayRef) -> Result<ScalarBuffer<i64>> {
    let t = cast(column, &DataType::Timestamp(TimeUnit::Microsecond, None)).map_err(|e| {
        crate::error::ArgumentError::new(function, "time", format!("must be a timestamp or a date: {e}"))
            .into_datafusion()
    })?;
    Ok(t.as_primitive::<TimestampMicrosecondType>().values().clone())
}

/// The item field of a list column of a partial state (its items are never NULL): the one
/// field both the state's schema and the builder writing the column use.
pub fn state_item(data_type: DataType) -> FieldRef {
    Arc::new(Field::new_list_field(data_type, false))
}

/// The sort by columns `keys` of `schema`, ascending with NULLs last; none without keys.
fn ordering(schema: &SchemaRef, keys: &[&str]) -> Result<Option<LexOrdering>> {
    let options = SortOptions { descending: false, nulls_first: false };
    let exprs: Vec<PhysicalSortExpr> =
        keys.iter().map(|k| Ok(PhysicalSortExpr::new(col(k, schema)?, options))).collect::<Result<_>>()?;
    Ok(LexOrdering::new(exprs))
}

/// The partial stage: each partition of its input (hash-partitioned by person, sorted by the
/// kernel's keys) folded into a state, emitted as rows in the same partition.
#[derive(Debug)]
pub struct ReportPartialExec {
    input: Arc<dyn ExecutionPlan>,
    stages: Arc<dyn ReportStages>,
    person: Arc<dyn PhysicalExpr>,
    ordering: Option<LexOrdering>,
    properties: Arc<PlanProperties>,
}

impl ReportPartialExec {
    /// Over `input` partitioned and sorted as [`report_plan`] makes it.
    pub fn try_new(input: Arc<dyn ExecutionPlan>, stages: Arc<dyn ReportStages>) -> Result<Self> {
        let schema = input.schema();
        let person = col(PERSON, &schema)?;
        let ordering = ordering(&schema, stages.keys())?;
        let partitions = input.output_partitioning().partition_count();
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(stages.state_schema()),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        Ok(ReportPartialExec { input, stages, person, ordering, properties })
    }

    /// The stages this partial stage belongs to.
    pub fn stages(&self) -> &Arc<dyn ReportStages> {
        &self.stages
    }
}

impl DisplayAs for ReportPartialExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "ReportPartialExec: {}", self.stages.name())
    }
}

impl ExecutionPlan for ReportPartialExec {
    fn name(&self) -> &str {
        "ReportPartialExec"
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
        let input = crate::common::plan_node::only_child(children, "ReportPartialExec")?;
        Ok(Arc::new(ReportPartialExec::try_new(input, self.stages.clone())?))
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(children, ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute))
    }

    /// Every person's rows in one partition, sorted: the optimizer must keep what
    /// [`report_plan`] built.
    fn required_input_distribution(&self) -> Vec<Distribution> {
        vec![Distribution::KeyPartitioned(vec![self.person.clone()])]
    }

    fn required_input_ordering(&self) -> Vec<Option<OrderingRequirements>> {
        vec![self.ordering.clone().map(OrderingRequirements::from)]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![false]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let rows = self.input.execute(partition, context.clone())?;
        Ok(self.stages.clone().fold(rows, context.session_config().batch_size(), context.memory_pool(), partition))
    }
}

/// The final stage: every partial state, in one partition, combined into the report.
#[derive(Debug)]
pub struct ReportFinalExec {
    input: Arc<dyn ExecutionPlan>,
    stages: Arc<dyn ReportStages>,
    properties: Arc<PlanProperties>,
}

impl ReportFinalExec {
    pub fn new(input: Arc<dyn ExecutionPlan>, stages: Arc<dyn ReportStages>) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(stages.schema()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        ReportFinalExec { input, stages, properties }
    }
}

impl DisplayAs for ReportFinalExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "ReportFinalExec: {}", self.stages.name())
    }
}

impl ExecutionPlan for ReportFinalExec {
    fn name(&self) -> &str {
        "ReportFinalExec"
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
        let input = crate::common::plan_node::only_child(children, "ReportFinalExec")?;
        Ok(Arc::new(ReportFinalExec::new(input, self.stages.clone())))
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(children, ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute))
    }

    /// Every state, from every partition.
    fn required_input_distribution(&self) -> Vec<Distribution> {
        vec![Distribution::SinglePartition]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![false]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!("ReportFinalExec has one partition, asked for {partition}")));
        }
        let n = self.input.output_partitioning().partition_count();
        if n != 1 {
            return Err(DataFusionError::Internal(format!("ReportFinalExec over {n} partitions, not one")));
        }
        let states = self.input.execute(0, context.clone())?;
        Ok(self.stages.clone().merge(states, context.memory_pool()))
    }
}

/// `plan` with only the columns a scan asked for.
pub fn project(plan: Arc<dyn ExecutionPlan>, projection: Option<&Vec<usize>>) -> Result<Arc<dyn ExecutionPlan>> {
    let Some(columns) = projection else { return Ok(plan) };
    let schema = plan.schema();
    let exprs: Vec<(Arc<dyn PhysicalExpr>, String)> = columns
        .iter()
        .map(|&i| {
            let name = schema.field(i).name().clone();
            (Arc::new(Column::new(&name, i)) as Arc<dyn PhysicalExpr>, name)
        })
        .collect();
    Ok(Arc::new(ProjectionExec::try_new(exprs, plan)?))
}

/// The FROM item for a report's `source` option: a table or view name as is, a query
/// (`SELECT`, `WITH`, `VALUES`) as a derived table.
pub fn source_relation(source: &str) -> String {
    let trimmed = source.trim_start();
    let lower = trimmed.get(..6).unwrap_or("").to_ascii_lowercase();
    if lower.starts_with("select") || lower.starts_with("with") || lower.starts_with("values") {
        format!("({trimmed}) AS journey_source")
    } else {
        trimmed.to_string()
    }
}

/// Text labels interned to dense ids (per partition; merged by text in `finish`).
#[derive(Debug, Default)]
pub struct Labels {
    pub labels: Vec<String>,
    ids: datafusion::common::HashMap<String, u32>,
    /// The labels' text, in bytes.
    text: usize,
}

impl Labels {
    pub fn id(&mut self, label: &str) -> u32 {
        if let Some(&id) = self.ids.get(label) {
            return id;
        }
        let id = self.labels.len() as u32;
        self.text += label.len();
        self.labels.push(label.to_string());
        self.ids.insert(label.to_string(), id);
        id
    }

    pub fn get(&self, id: u32) -> &str {
        &self.labels[id as usize]
    }

    /// The bytes the labels hold (each text twice: in the list and as a key).
    pub fn memory(&self) -> usize {
        vec_bytes(&self.labels) + map_bytes(&self.ids) + 2 * self.text
    }
}

/// The bytes a vector's buffer holds (not what its items point to).
pub fn vec_bytes<T>(v: &Vec<T>) -> usize {
    v.capacity() * size_of::<T>()
}

/// The bytes a hash table's buckets hold, a control byte each (not what its entries point to).
pub fn map_bytes<K, V, S>(m: &datafusion::common::HashMap<K, V, S>) -> usize {
    m.capacity() * (size_of::<(K, V)>() + 1)
}

/// Rows ordered by their group, stably (a counting sort): `keys[i]` is row `i`'s group, below
/// `groups`. Returns the groups' start offsets (`groups + 1` of them) and the row indexes in
/// group order, so that group `g`'s rows are `order[start[g]..start[g + 1]]`.
pub fn rows_by_group(groups: usize, keys: impl Iterator<Item = usize> + Clone) -> (Vec<u32>, Vec<u32>) {
    let mut start = vec![0u32; groups + 1];
    for g in keys.clone() {
        start[g + 1] += 1;
    }
    for g in 0..groups {
        start[g + 1] += start[g];
    }
    let mut next = start.clone();
    let mut order = vec![0u32; start[groups] as usize];
    for (i, g) in keys.enumerate() {
        order[next[g] as usize] = i as u32;
        next[g] += 1;
    }
    (start, order)
}

/// A partition's units (people, or people and sessions), numbered densely in the order they
/// are first seen: what the reports that group people in a hash table instead of sorting them
/// keep their per-unit state by.
pub struct Units {
    groups: Box<dyn GroupValues>,
    /// The unit of each row of the batch interned last.
    ids: Vec<usize>,
    /// Scratch for [`intern_runs`].
    runs: Vec<usize>,
}

impl Units {
    /// Units keyed by the columns of `key_schema`.
    pub fn new(key_schema: SchemaRef) -> Result<Units> {
        Ok(Units { groups: new_group_values(key_schema, &GroupOrdering::None)?, ids: vec![], runs: vec![] })
    }

    /// The unit of each row of `keys` (one array per key column), new units numbered next.
    pub fn intern(&mut self, keys: &[ArrayRef]) -> Result<&[usize]> {
        intern_runs(self.groups.as_mut(), keys, &mut self.runs, &mut self.ids)?;
        Ok(&self.ids)
    }

    /// How many units there are.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes the units' keys and scratch hold.
    pub fn memory(&self) -> usize {
        self.groups.size() + vec_bytes(&self.ids) + vec_bytes(&self.runs)
    }

    /// Every unit's key columns, in unit order; no unit is left.
    pub fn emit(&mut self) -> Result<Vec<ArrayRef>> {
        self.groups.emit(datafusion::logical_expr::EmitTo::All)
    }
}

/// Interns each row's key (`keys`, one array per key column) into `groups`, writing the group
/// ids to `ids`, one per row. Event stores are often clustered by person or session (written
/// per visit, or sorted for compression), so consecutive equal keys are found first, a cheap
/// comparison of neighbours, and each run is hashed once; rows that are not in runs are
/// interned as they are. `runs` is scratch space.
pub fn intern_runs(
    groups: &mut dyn GroupValues,
    keys: &[ArrayRef],
    runs: &mut Vec<usize>,
    ids: &mut Vec<usize>,
) -> Result<()> {
    let rows = keys.first().map_or(0, |k| k.len());
    let ranges = partition(keys)?.ranges();
    // Runs of one row: taking the run starts would only copy the keys.
    if ranges.len() * 4 > rows * 3 {
        return groups.intern(keys, ids);
    }
    let starts = UInt32Array::from_iter_values(ranges.iter().map(|r| r.start as u32));
    let firsts: Vec<ArrayRef> = keys.iter().map(|k| take(k, &starts, None)).collect::<Result<_, _>>()?;
    groups.intern(&firsts, runs)?;
    ids.clear();
    ids.reserve(rows);
    for (range, &id) in ranges.iter().zip(runs.iter()) {
        ids.extend(std::iter::repeat_n(id, range.len()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_by_group_is_a_stable_counting_sort() {
        let (start, order) = rows_by_group(3, [2usize, 0, 2, 1, 0].into_iter());
        assert_eq!(start, vec![0, 2, 3, 5]);
        assert_eq!(order, vec![1, 4, 3, 0, 2]);
        let (start, order) = rows_by_group(0, std::iter::empty());
        assert_eq!((start, order), (vec![0], vec![]));
    }

    /// Interning by runs gives every row the group that interning row by row gives (the same
    /// ids, since groups are numbered in first-seen order either way), with and without runs,
    /// NULL keys and two key columns.
    #[test]
    fn intern_runs_matches_row_by_row_interning() {
        use crate::common::test_rng::TestRng;
        use datafusion::arrow::array::{Int64Array, StringViewArray};
        use datafusion::arrow::datatypes::{DataType, Field, Schema};
        use datafusion::physical_plan::aggregates::group_values::new_group_values;
        use datafusion::physical_plan::aggregates::order::GroupOrdering;
        let mut rng = TestRng(0x5eed);
        for (case, run) in [1u64, 2, 9, 50].into_iter().enumerate() {
            for columns in 1..=2 {
                let rows = 2_000;
                let (mut people, mut sessions) = (vec![], vec![]);
                while people.len() < rows {
                    let len = 1 + rng.next(run) as usize;
                    let p = match rng.next(20) {
                        0 => None,
                        // Long enough to live outside the view.
                        n => Some(format!("person-with-a-long-name-{}", rng.next(200) + n)),
                    };
                    let s = rng.next(3) as i64;
                    for _ in 0..len.min(rows - people.len()) {
                        people.push(p.clone());
                        sessions.push(if rng.next(10) == 0 { s + 1 } else { s });
                    }
                }
                let mut keys: Vec<ArrayRef> = vec![Arc::new(StringViewArray::from(people))];
                let mut fields = vec![Field::new("p", DataType::Utf8View, true)];
                if columns == 2 {
                    keys.push(Arc::new(Int64Array::from(sessions)));
                    fields.push(Field::new("s", DataType::Int64, true));
                }
                let schema = Arc::new(Schema::new(fields));
                let mut by_runs = new_group_values(schema.clone(), &GroupOrdering::None).expect("test");
                let mut by_rows = new_group_values(schema, &GroupOrdering::None).expect("test");
                let (mut scratch, mut runs_ids, mut rows_ids) = (vec![], vec![], vec![]);
                // In batches, so that runs cross batch boundaries.
                for start in (0..rows).step_by(300) {
                    let len = 300.min(rows - start);
                    let batch: Vec<ArrayRef> = keys.iter().map(|k| k.slice(start, len)).collect();
                    intern_runs(by_runs.as_mut(), &batch, &mut scratch, &mut runs_ids).expect("test");
                    by_rows.intern(&batch, &mut rows_ids).expect("test");
                    assert_eq!(runs_ids, rows_ids, "case {case}, {columns} columns, rows from {start}");
                }
                assert_eq!(by_runs.len(), by_rows.len());
            }
        }
    }

    /// The report's filter goes into the input's SQL over a join (where DataFusion pushes it
    /// below the join), not over plain tables (where the report filters more cheaply itself).
    #[tokio::test]
    async fn an_input_filter_is_added_over_joins_only() {
        let ctx = datafusion::prelude::SessionContext::new();
        for sql in [
            "CREATE TABLE e (p VARCHAR, n VARCHAR) AS VALUES ('a', 'x'), ('b', 'y')",
            "CREATE TABLE ids (p VARCHAR, u VARCHAR) AS VALUES ('a', 'u1')",
            "CREATE VIEW stitched AS SELECT coalesce(ids.u, e.p) AS p, e.n FROM e LEFT JOIN ids ON e.p = ids.p",
        ] {
            ctx.sql(sql).await.expect("setup").collect().await.expect("setup");
        }
        let state = ctx.state();
        let text = |plan: &Arc<dyn ExecutionPlan>| {
            datafusion::physical_plan::displayable(plan.as_ref()).indent(true).to_string()
        };
        let keep = KeepRows { any_true: vec![1], ..KeepRows::default() };
        let filter = Some(&keep);
        let plain = plan_input(&state, "SELECT p, n = 'x' AS c FROM e", filter).await.expect("plain");
        assert!(!text(&plain).contains("FilterExec"), "{}", text(&plain));
        let joined = plan_input(&state, "SELECT p, n = 'x' AS c FROM stitched", filter).await.expect("joined");
        let text = text(&joined);
        let filter_at = text.find("FilterExec").expect("a filter");
        assert!(filter_at > text.find("JoinExec").expect("a join"), "the filter is below the join: {text}");
    }
}
