//! `FunnelAggregateExec`: the one-phase grouped aggregate [`super::single_phase`] plans for
//! `window_funnel`.
//!
//! It does what DataFusion's `AggregateExec` does in `Single`/`SinglePartitioned` mode (group
//! the input rows by the group keys, feed each aggregate's `GroupsAccumulator`, emit one row per
//! group), with two differences:
//!
//! - **Keys are interned by runs** ([`intern_runs`]): event stores are often clustered by
//!   person or session, and a run of equal keys is hashed once. For `window_funnel` over a
//!   person column, interning each row's string key was the largest single cost.
//! - **Spilling by key hash.** When the groups' state outgrows the memory reservation (or
//!   the partition's share of the pool's limit: the limit over the partitions plus one), every
//!   group's state (`GroupsAccumulator::state`) is written to 16 spill files by a hash
//!   of its keys, and accumulation starts again from empty; this repeats as often as needed.
//!   At the end, each file holds the states of whole groups: it is merged
//!   (`GroupsAccumulator::merge_batch`) and evaluated alone. A file whose merge does not fit is
//!   split again on the next bits of the hash ([`Buckets`]). Only the state of one group larger
//!   than the memory limit fails, with resources exhausted.
//!
//! The answer is the aggregate's: the accumulators are the same and each group sees the same
//! rows; only the order of the output rows differs (it is unspecified in both).

use crate::common::plan_node::{ChunkDriver, driven_stream, only_child, slices};
use crate::physical::report::intern_runs;
use crate::physical::spill_buckets::{Buckets, own_rows, queue_front};
use datafusion::arrow::array::{ArrayRef, BooleanArray, RecordBatch};
use datafusion::arrow::datatypes::{FieldRef, Schema, SchemaRef};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SpillFile;
use datafusion::execution::disk_manager::DiskManager;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryLimit, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_plan::aggregates::group_values::{GroupValues, new_group_values};
use datafusion::physical_plan::aggregates::order::GroupOrdering;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::execution_plan::{
    Boundedness, ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::expressions::Column;
use datafusion::physical_plan::metrics::{BaselineMetrics, Count, ExecutionPlanMetricsSet, MetricsSet, SpillMetrics};
use datafusion::physical_plan::spill::SpillManager;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, ExecutionPlanProperties, Partitioning, PhysicalExpr,
    PlanProperties,
};
use futures::StreamExt;
use futures::future::BoxFuture;
use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

const NAME: &str = "FunnelAggregateExec";

#[derive(Debug, Clone)]
pub struct FunnelAggregateExec {
    input: Arc<dyn ExecutionPlan>,
    /// The group keys over the input, and their schema.
    keys: Vec<Arc<dyn PhysicalExpr>>,
    key_schema: SchemaRef,
    aggregates: Vec<Arc<AggregateFunctionExpr>>,
    filters: Vec<Option<Arc<dyn PhysicalExpr>>>,
    /// Keys, then every aggregate's state fields: what spill files hold.
    state_schema: SchemaRef,
    /// Keys, then every aggregate's value: the output (the aggregate's own schema).
    schema: SchemaRef,
    /// One partition, or the input's partitions keyed on the group keys.
    single: bool,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl FunnelAggregateExec {
    /// The same aggregation as `aggregate`, a one-phase (`Single` or `SinglePartitioned`)
    /// `AggregateExec` with one grouping set, no ordering and no limit; `None` for any other.
    pub fn try_from_aggregate(aggregate: &AggregateExec) -> Result<Option<Self>> {
        let group_by = aggregate.group_expr();
        let single = match aggregate.mode() {
            AggregateMode::Single => true,
            AggregateMode::SinglePartitioned => false,
            _ => return Ok(None),
        };
        if !group_by.is_single()
            || group_by.expr().is_empty()
            || aggregate.limit_options().is_some()
            || aggregate.aggr_expr().iter().any(|a| !a.order_bys().is_empty())
        {
            return Ok(None);
        }
        let input = aggregate.input().clone();
        let key_schema = group_by.group_schema(&input.schema())?;
        let mut state_fields: Vec<FieldRef> = key_schema.fields().iter().cloned().collect();
        for a in aggregate.aggr_expr() {
            state_fields.extend(a.state_fields()?);
        }
        let state_schema = Arc::new(Schema::new(state_fields));
        let schema = aggregate.schema();
        Ok(Some(FunnelAggregateExec {
            properties: properties(&schema, &input),
            input,
            keys: group_by.input_exprs(),
            key_schema,
            aggregates: aggregate.aggr_expr().to_vec(),
            filters: aggregate.filter_expr().to_vec(),
            state_schema,
            schema,
            single,
            metrics: ExecutionPlanMetricsSet::new(),
        }))
    }

    /// The `AggregateExec` it stands for, over `input` (its input or one of the same schema):
    /// what the cluster codec sends, as DataFusion encodes it.
    pub fn as_aggregate(&self, input: Arc<dyn ExecutionPlan>) -> Result<AggregateExec> {
        use datafusion::physical_plan::aggregates::PhysicalGroupBy;
        let names = self.key_schema.fields().iter().map(|f| f.name().clone());
        let group_by = PhysicalGroupBy::new_single(self.keys.iter().cloned().zip(names).collect());
        let mode = if self.single { AggregateMode::Single } else { AggregateMode::SinglePartitioned };
        let schema = input.schema();
        AggregateExec::try_new(mode, group_by, self.aggregates.clone(), self.filters.clone(), input, schema)
    }

    pub fn input(&self) -> &Arc<dyn ExecutionPlan> {
        &self.input
    }

    fn accumulators(&self) -> Result<Vec<Box<dyn GroupsAccumulator>>> {
        self.aggregates.iter().map(|a| a.create_groups_accumulator()).collect()
    }
}

/// The output properties: as many partitions as the input, no ordering, all at the end.
fn properties(schema: &SchemaRef, input: &Arc<dyn ExecutionPlan>) -> Arc<PlanProperties> {
    Arc::new(PlanProperties::new(
        EquivalenceProperties::new(schema.clone()),
        Partitioning::UnknownPartitioning(input.output_partitioning().partition_count()),
        EmissionType::Final,
        Boundedness::Bounded,
    ))
}

impl DisplayAs for FunnelAggregateExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let keys: Vec<String> = self.keys.iter().map(|k| k.to_string()).collect();
        let aggregates: Vec<&str> = self.aggregates.iter().map(|a| a.name()).collect();
        write!(f, "{NAME}: gby=[{}], aggr=[{}]", keys.join(", "), aggregates.join(", "))
    }
}

impl ExecutionPlan for FunnelAggregateExec {
    fn name(&self) -> &str {
        NAME
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        for k in &self.keys {
            if f(k)? == TreeNodeRecursion::Stop {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = only_child(children, NAME)?;
        let properties = properties(&self.schema, &input);
        let metrics = ExecutionPlanMetricsSet::new();
        Ok(Arc::new(FunnelAggregateExec { input, properties, metrics, ..(*self).clone() }))
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(children, ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute))
    }

    fn required_input_distribution(&self) -> Vec<Distribution> {
        if self.single {
            vec![Distribution::SinglePartition]
        } else {
            vec![Distribution::KeyPartitioned(self.keys.clone())]
        }
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![false]
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context.clone())?;
        let reservation =
            MemoryConsumer::new(format!("{NAME}[{partition}]")).with_can_spill(true).register(context.memory_pool());
        let spill = SpillMetrics::new(&self.metrics, partition);
        let spill_files = spill.spill_file_count.clone();
        let reader = SpillManager::new(context.runtime_env(), spill, self.state_schema.clone());
        let driver = Driver {
            grouping: Grouping::new(self)?,
            this: self.clone(),
            input: Some(input),
            queue: VecDeque::new(),
            reservation,
            disk: context.runtime_env().disk_manager.clone(),
            reader,
            spill_files,
            baseline: BaselineMetrics::new(&self.metrics, partition),
            batch_size: context.session_config().batch_size().max(1),
            share: match context.memory_pool().memory_limit() {
                MemoryLimit::Finite(limit) => limit / (self.properties.output_partitioning().partition_count() + 1),
                MemoryLimit::Infinite | MemoryLimit::Unknown => usize::MAX,
            },
        };
        Ok(driven_stream(self.schema.clone(), driver))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// Groups being accumulated: their keys and each aggregate's state.
struct Grouping {
    groups: Box<dyn GroupValues>,
    accumulators: Vec<Box<dyn GroupsAccumulator>>,
    ids: Vec<usize>,
    runs: Vec<usize>,
}

impl Grouping {
    fn new(this: &FunnelAggregateExec) -> Result<Self> {
        Ok(Grouping {
            groups: new_group_values(this.key_schema.clone(), &GroupOrdering::None)?,
            accumulators: this.accumulators()?,
            ids: vec![],
            runs: vec![],
        })
    }

    fn size(&self) -> usize {
        self.groups.size()
            + self.accumulators.iter().map(|a| a.size()).sum::<usize>()
            + (self.ids.capacity() + self.runs.capacity()) * std::mem::size_of::<usize>()
    }

    /// Folds input rows into the groups.
    fn update(&mut self, this: &FunnelAggregateExec, batch: &RecordBatch) -> Result<()> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        let keys = this.keys.iter().map(|k| k.evaluate(batch)?.into_array(n)).collect::<Result<Vec<_>>>()?;
        intern_runs(self.groups.as_mut(), &keys, &mut self.runs, &mut self.ids)?;
        let total = self.groups.len();
        for ((aggregate, filter), acc) in this.aggregates.iter().zip(&this.filters).zip(&mut self.accumulators) {
            let values = aggregate
                .expressions()
                .iter()
                .map(|e| e.evaluate(batch)?.into_array(n))
                .collect::<Result<Vec<ArrayRef>>>()?;
            let filter = match filter {
                Some(f) => Some(f.evaluate(batch)?.into_array(n)?),
                None => None,
            };
            let filter = match &filter {
                Some(f) => Some(f.as_any().downcast_ref::<BooleanArray>().ok_or_else(|| {
                    DataFusionError::Internal(format!("{NAME}: an aggregate's FILTER is not boolean"))
                })?),
                None => None,
            };
            acc.update_batch(&values, &self.ids, filter, total)?;
        }
        Ok(())
    }

    /// Folds state rows (keys, then the aggregates' state columns) into the groups.
    fn merge(&mut self, this: &FunnelAggregateExec, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let k = this.keys.len();
        intern_runs(self.groups.as_mut(), &batch.columns()[..k], &mut self.runs, &mut self.ids)?;
        let total = self.groups.len();
        let mut column = k;
        for (aggregate, acc) in this.aggregates.iter().zip(&mut self.accumulators) {
            let width = aggregate.state_fields()?.len();
            acc.merge_batch(&batch.columns()[column..column + width], &self.ids, total)?;
            column += width;
        }
        Ok(())
    }

    /// Every group's keys and state, as one batch of `state_schema`; the groups are emptied.
    fn take_state(&mut self, this: &FunnelAggregateExec) -> Result<RecordBatch> {
        let mut columns = self.groups.emit(EmitTo::All)?;
        for acc in &mut self.accumulators {
            columns.extend(acc.state(EmitTo::All)?);
        }
        *self = Grouping::new(this)?;
        Ok(RecordBatch::try_new(this.state_schema.clone(), columns)?)
    }

    /// Every group's keys and values, as one batch of the output schema.
    fn evaluate(&mut self, this: &FunnelAggregateExec) -> Result<RecordBatch> {
        if self.groups.is_empty() {
            return Ok(RecordBatch::new_empty(this.schema.clone()));
        }
        let mut columns = self.groups.emit(EmitTo::All)?;
        for acc in &mut self.accumulators {
            columns.push(acc.evaluate(EmitTo::All)?);
        }
        *self = Grouping::new(this)?;
        Ok(RecordBatch::try_new(this.schema.clone(), columns)?)
    }
}

/// One output partition: accumulates its input (spilling group states by key hash when they
/// outgrow the reservation), then evaluates the groups in memory or one spill file at a time.
struct Driver {
    this: FunnelAggregateExec,
    grouping: Grouping,
    input: Option<SendableRecordBatchStream>,
    /// Spill files to merge, each with the level a split of it would use.
    queue: VecDeque<(Arc<dyn SpillFile>, u32)>,
    reservation: MemoryReservation,
    disk: Arc<DiskManager>,
    reader: SpillManager,
    spill_files: Count,
    baseline: BaselineMetrics,
    batch_size: usize,
    /// The most this partition holds: the pool's limit shared among the partitions and the
    /// rest of the plan. Without it, a partition still gathering its input could hold the
    /// whole pool while another merges its spill files, and that one would split its files
    /// until it failed.
    share: usize,
}

impl Driver {
    fn buckets(&self, level: u32) -> Result<Buckets> {
        Buckets::new(
            &self.disk,
            self.this.state_schema.clone(),
            level,
            NAME,
            "the state of one group (the rows of one GROUP BY key) needs more memory than the limit",
        )
    }

    /// The state's key columns, to hash spilled rows by.
    fn state_keys(&self) -> Vec<Arc<dyn PhysicalExpr>> {
        (0..self.this.keys.len())
            .map(|i| Arc::new(Column::new(self.this.state_schema.field(i).name(), i)) as Arc<dyn PhysicalExpr>)
            .collect()
    }

    /// True when the groups still fit: within this partition's share and in the reservation.
    fn fits(&mut self) -> bool {
        let size = self.grouping.size();
        size <= self.share && self.reservation.try_resize(size).is_ok()
    }

    /// The groups' state written to `buckets`; memory released.
    fn spill(&mut self, buckets: &mut Buckets) -> Result<()> {
        let state = self.grouping.take_state(&self.this)?;
        buckets.append(&state, &self.state_keys())?;
        self.reservation.free();
        Ok(())
    }

    fn enqueue(&mut self, buckets: Buckets, level: u32) -> Result<()> {
        queue_front(buckets, &mut self.queue, &self.spill_files, |file| (file, level))
    }

    /// Reads the whole input.
    async fn gather(&mut self, mut input: SendableRecordBatchStream) -> Result<Option<RecordBatch>> {
        let mut buckets: Option<Buckets> = None;
        let elapsed = self.baseline.elapsed_compute().clone();
        while let Some(batch) = input.next().await {
            let batch = batch?;
            let timer = elapsed.timer();
            self.grouping.update(&self.this, &batch)?;
            if !self.fits() {
                let mut b = match buckets.take() {
                    Some(b) => b,
                    None => self.buckets(0)?,
                };
                self.spill(&mut b)?;
                buckets = Some(b);
            }
            timer.done();
        }
        match buckets {
            None => Ok(Some(self.grouping.evaluate(&self.this)?)),
            Some(mut b) => {
                self.spill(&mut b)?;
                self.enqueue(b, 1)?;
                Ok(None)
            }
        }
    }

    /// Merges one spill file's states and evaluates them; `None` when the file had to be split.
    async fn merge_file(&mut self, file: Arc<dyn SpillFile>, level: u32) -> Result<Option<RecordBatch>> {
        let mut stream = self.reader.read_spill_as_stream(file, None)?;
        let mut overflow: Option<Buckets> = None;
        let elapsed = self.baseline.elapsed_compute().clone();
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            let _timer = elapsed.timer();
            if let Some(b) = &mut overflow {
                b.append(&batch, &self.state_keys())?;
                continue;
            }
            let batch = own_rows(&batch)?;
            self.grouping.merge(&self.this, &batch)?;
            if !self.fits() {
                let mut b = self.buckets(level)?;
                self.spill(&mut b)?;
                overflow = Some(b);
            }
        }
        if let Some(b) = overflow {
            self.enqueue(b, level + 1)?;
            return Ok(None);
        }
        let _timer = elapsed.timer();
        Ok(Some(self.grouping.evaluate(&self.this)?))
    }

    /// The next output batches (possibly none); `None` at the end.
    async fn next_output(&mut self) -> Result<Option<Vec<RecordBatch>>> {
        let out = if let Some(input) = self.input.take() {
            self.gather(input).await?
        } else {
            let Some((file, level)) = self.queue.pop_front() else {
                self.reservation.free();
                return Ok(None);
            };
            self.merge_file(file, level).await?
        };
        self.reservation.free();
        let Some(out) = out else { return Ok(Some(vec![])) };
        self.baseline.record_output(out.num_rows());
        Ok(Some(slices(&out, self.batch_size)))
    }
}

impl ChunkDriver for Driver {
    fn next_chunks(&mut self) -> BoxFuture<'_, Result<Option<Vec<RecordBatch>>>> {
        Box::pin(self.next_output())
    }
}

#[cfg(test)]
mod tests {
    use crate::aggregate::window_funnel::WindowFunnel;
    use crate::physical::single_phase::SinglePhaseFunnel;
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::error::Result;
    use datafusion::execution::SessionStateBuilder;
    use datafusion::execution::memory_pool::GreedyMemoryPool;
    use datafusion::execution::runtime_env::RuntimeEnvBuilder;
    use datafusion::logical_expr::AggregateUDF;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::{SessionConfig, SessionContext};
    use std::sync::Arc;

    /// A context with `window_funnel`, the rule or not, and a memory pool of `limit` bytes.
    fn context(partitions: usize, batch_size: usize, rule: bool, limit: Option<usize>) -> SessionContext {
        let mut runtime = RuntimeEnvBuilder::new();
        if let Some(limit) = limit {
            runtime = runtime.with_memory_pool(Arc::new(GreedyMemoryPool::new(limit)));
        }
        let mut builder = SessionStateBuilder::new()
            .with_default_features()
            .with_runtime_env(runtime.build_arc().expect("runtime"))
            .with_config(SessionConfig::new().with_target_partitions(partitions).with_batch_size(batch_size));
        if rule {
            builder = builder.with_physical_optimizer_rule(Arc::new(SinglePhaseFunnel));
        }
        let ctx = SessionContext::new_with_state(builder.build());
        ctx.register_udaf(AggregateUDF::from(WindowFunnel::new()));
        ctx
    }

    /// `rows` events of `people` people (some NULL), clustered in runs of 4 and scattered: a
    /// person's rows come in several runs, far apart.
    fn events(rows: usize, people: usize) -> String {
        format!(
            "CREATE VIEW t AS SELECT CASE WHEN v % 97 = 0 THEN NULL ELSE 'person-number-' || ((v / 4) * 7919 % {people}) END AS p, \
             (v * 31) % 1000 AS ts, CASE v % 5 WHEN 0 THEN 'x' WHEN 1 THEN 'y' WHEN 2 THEN 'z' ELSE 'w' END AS e, v % 2 = 0 AS even \
             FROM (SELECT value AS v FROM generate_series(1, {rows}))"
        )
    }

    /// The sorted answer of `sql`, the plan's text and how many files its FunnelAggregateExec
    /// spilled.
    async fn run(ctx: &SessionContext, events: &str, sql: &str) -> Result<(Vec<String>, String, usize)> {
        ctx.sql(events).await?.collect().await?;
        let plan = ctx.sql(sql).await?.create_physical_plan().await?;
        let text = displayable(plan.as_ref()).indent(true).to_string();
        let batches = datafusion::physical_plan::collect(plan.clone(), ctx.task_ctx()).await?;
        let mut files = 0;
        let mut stack = vec![plan];
        while let Some(node) = stack.pop() {
            if node.name() == "FunnelAggregateExec" {
                files += node.metrics().and_then(|m| m.spill_count()).unwrap_or(0);
            }
            stack.extend(node.children().into_iter().cloned());
        }
        let mut lines: Vec<String> = pretty_format_batches(&batches)?.to_string().lines().map(str::to_string).collect();
        lines.sort();
        Ok((lines, text, files))
    }

    const QUERIES: [&str; 3] = [
        "SELECT p, window_funnel(100, ts, e = 'x', e = 'y', e = 'z') AS level FROM t GROUP BY p",
        "SELECT p, window_funnel(50, ts, e = 'x', e = 'y', e = 'z', 'strict_order') AS a, \
         window_funnel(500, ts, e = 'x', e = 'z') FILTER (WHERE even) AS b FROM t GROUP BY p",
        "SELECT p, even, window_funnel(100, ts, e = 'w', e = 'x') AS level FROM t GROUP BY p, even",
    ];

    #[tokio::test]
    async fn the_same_answers_as_datafusions_aggregate() {
        let t = events(9_000, 600);
        for sql in QUERIES {
            let (expected, plan, _) = run(&context(2, 8192, false, None), &t, sql).await.expect("without the rule");
            assert!(!plan.contains("FunnelAggregateExec"), "{plan}");
            assert!(expected.len() > 600, "{}", expected.len());
            for partitions in [1, 2, 3] {
                for batch_size in [1, 2, 3, 1000] {
                    let ctx = context(partitions, batch_size, true, None);
                    let (answer, plan, files) = run(&ctx, &t, sql).await.expect("with the rule");
                    assert!(plan.contains("FunnelAggregateExec"), "{plan}");
                    assert_eq!(files, 0);
                    assert_eq!(answer, expected, "{sql} at {partitions} partitions, batch size {batch_size}");
                }
            }
        }
    }

    #[tokio::test]
    async fn groups_beyond_the_memory_limit_spill_and_give_the_same_answers() {
        let t = events(60_000, 3_000);
        for sql in QUERIES {
            let (expected, _, _) = run(&context(2, 8192, false, None), &t, sql).await.expect("unlimited");
            assert!(expected.len() > 3000, "{}", expected.len());
            for partitions in [1, 2] {
                let ctx = context(partitions, 512, true, Some(200 * 1024));
                let (answer, _, files) = run(&ctx, &t, sql).await.expect("spills");
                assert!(files >= 16, "{files} files spilled at {partitions} partitions: {sql}");
                assert_eq!(answer, expected, "{sql} at {partitions} partitions");
            }
        }
    }

    #[tokio::test]
    async fn one_group_beyond_the_memory_limit_is_an_error_not_a_crash() {
        let ctx = context(2, 512, true, Some(64 * 1024));
        let sql = "SELECT p, window_funnel(100, ts, e = 'x', e = 'y') AS level FROM (SELECT 'everyone' AS p, ts, e FROM t) GROUP BY p";
        let err =
            run(&ctx, &events(60_000, 3_000), sql).await.expect_err("64 KiB cannot hold 60,000 events of one group");
        let text = err.to_string();
        assert!(text.contains("Resources exhausted") && text.contains("FunnelAggregateExec"), "{text}");
    }
}
