//! `hash_window`: window functions evaluated per hash group instead of after a full sort.
//!
//! DataFusion evaluates `f() OVER (PARTITION BY p ORDER BY o)` by sorting each input partition
//! on `(p, o)` and cutting the sorted rows into window partitions. The journey functions run
//! over one window partition per person with few rows each, so that sort on a string person key
//! is most of the work. This physical optimizer rule replaces a window operator whose input is
//! exactly that sort with [`HashWindowExec`]: it gathers the partition's rows (memory reserved
//! from the pool for the rows and their grouped copy; rows that do not fit are split into spill
//! files by the hash of their partition keys and evaluated one file at a time, see
//! [`super::spill_buckets`]; only a single window partition larger than the memory limit fails,
//! with resources exhausted), groups them by the partition keys in a hash table, orders each
//! group's rows by the `ORDER BY` keys (the sort's own options), and evaluates the window
//! expressions on each group as DataFusion's `WindowAggExec` does. Each window partition sees
//! the same rows in the same order, so the answers are the same; only the output rows come
//! grouped rather than globally sorted.
//!
//! The rule applies only where nothing above relies on that global order: the parent does not
//! require an ordering, and no order-preserving operator between it and the root does (the root
//! counts as needing its order, so a query's result order is never changed).

use super::spill_buckets::{Buckets, own_rows, queue_front};
use crate::common::plan_node::{ChunkDriver, driven_stream, only_child, slices};
use crate::physical::report::rows_by_group;
use datafusion::arrow::array::{ArrayRef, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{concat, concat_batches, take_record_batch};
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::config::ConfigOptions;
use datafusion::error::Result;
use datafusion::execution::SpillFile;
use datafusion::execution::disk_manager::DiskManager;
use datafusion::execution::memory_pool::MemoryConsumer;
use datafusion::execution::memory_pool::MemoryReservation;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::window::{StandardWindowExpr, StandardWindowFunctionExpr};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalSortExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::group_values::new_group_values;
use datafusion::physical_plan::aggregates::order::GroupOrdering;
use datafusion::physical_plan::execution_plan::{
    Boundedness, ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::metrics::{Count, ExecutionPlanMetricsSet, MetricsSet, SpillMetrics};
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::spill::SpillManager;
use datafusion::physical_plan::windows::{BoundedWindowAggExec, WindowAggExec, WindowUDFExpr};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PhysicalExpr, PlanProperties, WindowExpr,
};
use futures::StreamExt;
use futures::future::BoxFuture;
use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

/// The rule: see the module documentation.
#[derive(Debug, Default)]
pub struct HashWindow;

impl PhysicalOptimizerRule for HashWindow {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        rewrite(plan, true)
    }

    fn name(&self) -> &str {
        "hash_window"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Rewrites the window operators below `plan` whose output order nobody needs.
fn rewrite(plan: Arc<dyn ExecutionPlan>, order_needed: bool) -> Result<Arc<dyn ExecutionPlan>> {
    let children: Vec<Arc<dyn ExecutionPlan>> = plan.children().into_iter().cloned().collect();
    if children.is_empty() {
        return Ok(plan);
    }
    let required = plan.required_input_ordering();
    let maintains = plan.maintains_input_order();
    let mut changed = false;
    let mut new_children = Vec::with_capacity(children.len());
    for (i, child) in children.into_iter().enumerate() {
        let needed =
            required.get(i).is_some_and(|r| r.is_some()) || (order_needed && maintains.get(i).copied().unwrap_or(true));
        let mut new_child = rewrite(child.clone(), needed)?;
        if !needed && let Some(hashed) = HashWindowExec::replace(&new_child)? {
            new_child = hashed;
        }
        changed |= !Arc::ptr_eq(&new_child, &child);
        new_children.push(new_child);
    }
    if changed {
        plan.replace_children(new_children, ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute))
    } else {
        Ok(plan)
    }
}

/// Window expressions evaluated per hash group; one output partition per input partition.
#[derive(Debug, Clone)]
pub struct HashWindowExec {
    input: Arc<dyn ExecutionPlan>,
    window_expr: Vec<Arc<dyn WindowExpr>>,
    /// Per window expression: the journey function it calls, when it is one whose
    /// `evaluate_all` keeps no state between partitions (one evaluator then serves every group).
    reusable: Vec<Option<Arc<dyn StandardWindowFunctionExpr>>>,
    /// The sort the window operator's input had, split into partition keys and order keys.
    partition_by: Vec<Arc<dyn PhysicalExpr>>,
    order_by: Vec<PhysicalSortExpr>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl HashWindowExec {
    /// The window operator it stands for, over the sort on its keys of `input` (its input or
    /// one of the same schema): what the cluster codec sends, as DataFusion encodes it;
    /// [`HashWindowExec::replace`] makes it a [`HashWindowExec`] again.
    pub fn as_window(&self, input: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
        use datafusion::physical_expr::LexOrdering;
        let keys: Vec<PhysicalSortExpr> = self
            .partition_by
            .iter()
            .map(|p| PhysicalSortExpr::new_default(p.clone()))
            .chain(self.order_by.iter().cloned())
            .collect();
        let ordering = LexOrdering::new(keys)
            .ok_or_else(|| datafusion::error::DataFusionError::Internal("a hash window without keys".into()))?;
        let sorted = Arc::new(SortExec::new(ordering, input).with_preserve_partitioning(true));
        Ok(Arc::new(WindowAggExec::try_new(self.window_expr.clone(), sorted, false)?))
    }

    pub fn input(&self) -> &Arc<dyn ExecutionPlan> {
        &self.input
    }

    /// `node` as a [`HashWindowExec`] when it is a window operator over exactly the sort on its
    /// partition keys, then its order keys.
    pub fn replace(node: &Arc<dyn ExecutionPlan>) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let (exprs, sorted) = if let Some(w) = node.downcast_ref::<WindowAggExec>() {
            (w.window_expr().to_vec(), w.input().clone())
        } else if let Some(w) = node.downcast_ref::<BoundedWindowAggExec>() {
            (w.window_expr().to_vec(), w.input().clone())
        } else {
            return Ok(None);
        };
        let Some(sort) = sorted.downcast_ref::<SortExec>() else { return Ok(None) };
        let Some(first) = exprs.first() else { return Ok(None) };
        let (partition_by, order_by) = (first.partition_by().to_vec(), first.order_by().to_vec());
        if partition_by.is_empty()
            || sort.fetch().is_some()
            || !sort.preserve_partitioning() && sort.input().output_partitioning().partition_count() > 1
            || exprs.iter().any(|e| e.partition_by() != partition_by.as_slice() || e.order_by() != order_by.as_slice())
        {
            return Ok(None);
        }
        let keys: Vec<&PhysicalSortExpr> = sort.expr().iter().collect();
        if keys.len() != partition_by.len() + order_by.len() {
            return Ok(None);
        }
        let (head, tail) = keys.split_at(partition_by.len());
        let head_matches = head.iter().all(|k| partition_by.iter().any(|p| p.as_ref() == k.expr.as_ref()));
        let tail_matches = tail.iter().zip(&order_by).all(|(k, o)| *k == o);
        if !head_matches || !tail_matches {
            return Ok(None);
        }
        let input = sort.input().clone();
        let schema = node.schema();
        let properties = properties(&schema, &input);
        let reusable = exprs.iter().map(reusable_function).collect();
        Ok(Some(Arc::new(HashWindowExec {
            input,
            window_expr: exprs,
            reusable,
            partition_by,
            order_by,
            schema,
            properties,
            metrics: ExecutionPlanMetricsSet::new(),
        })))
    }

    /// Every row of one input partition, grouped and ordered, with the window columns.
    fn evaluate(&self, batch: RecordBatch) -> Result<RecordBatch> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(RecordBatch::new_empty(self.schema.clone()));
        }
        let keys: Vec<ArrayRef> =
            self.partition_by.iter().map(|e| e.evaluate(&batch)?.into_array(n)).collect::<Result<_>>()?;
        let key_schema = Arc::new(Schema::new(
            keys.iter()
                .enumerate()
                .map(|(i, k)| datafusion::arrow::datatypes::Field::new(format!("k{i}"), k.data_type().clone(), true))
                .collect::<Vec<_>>(),
        ));
        let mut groups = new_group_values(key_schema, &GroupOrdering::None)?;
        let mut group_of_row = vec![];
        groups.intern(&keys, &mut group_of_row)?;
        let count = groups.len();
        // Rows by group, then each group by its order keys (as the sort would).
        let (start, mut order) = rows_by_group(count, group_of_row.iter().copied());
        if !self.order_by.is_empty() {
            let columns: Vec<ArrayRef> =
                self.order_by.iter().map(|o| o.expr.evaluate(&batch)?.into_array(n)).collect::<Result<_>>()?;
            let fields: Vec<SortField> = self
                .order_by
                .iter()
                .zip(&columns)
                .map(|(o, c)| SortField::new_with_options(c.data_type().clone(), o.options))
                .collect();
            let rows = RowConverter::new(fields)?.convert_columns(&columns)?;
            for g in 0..count {
                let group = &mut order[start[g] as usize..start[g + 1] as usize];
                if group.len() > 1 {
                    group.sort_by(|&a, &b| rows.row(a as usize).cmp(&rows.row(b as usize)).then(a.cmp(&b)));
                }
            }
        }
        let sorted = take_record_batch(&batch, &UInt32Array::from(order))?;
        let mut per_expr: Vec<Vec<ArrayRef>> = vec![Vec::with_capacity(count); self.window_expr.len()];
        for ((e, reusable), out) in self.window_expr.iter().zip(&self.reusable).zip(per_expr.iter_mut()) {
            match reusable {
                // One evaluator and one evaluation of the arguments for every group.
                Some(f) => {
                    let args = f.evaluate_args(&sorted)?;
                    let mut evaluator = f.create_evaluator()?;
                    let mut values: Vec<ArrayRef> = Vec::with_capacity(args.len());
                    for g in 0..count {
                        let (from, len) = (start[g] as usize, (start[g + 1] - start[g]) as usize);
                        values.clear();
                        values.extend(args.iter().map(|a| a.slice(from, len)));
                        out.push(evaluator.evaluate_all(&values, len)?);
                    }
                }
                None => {
                    for g in 0..count {
                        let (from, len) = (start[g] as usize, (start[g + 1] - start[g]) as usize);
                        out.push(e.evaluate(&sorted.slice(from, len))?);
                    }
                }
            }
        }
        let mut columns = sorted.columns().to_vec();
        for arrays in per_expr {
            let refs: Vec<&dyn datafusion::arrow::array::Array> = arrays.iter().map(|a| a.as_ref()).collect();
            columns.push(concat(&refs)?);
        }
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

/// The output properties: the input's partitioning, no ordering, all at the end.
fn properties(schema: &SchemaRef, input: &Arc<dyn ExecutionPlan>) -> Arc<PlanProperties> {
    Arc::new(PlanProperties::new(
        EquivalenceProperties::new(schema.clone()),
        input.output_partitioning().clone(),
        EmissionType::Final,
        Boundedness::Bounded,
    ))
}

/// The function of `expr` when it is a journey window function (`attribute`, `sessionize`):
/// their evaluators keep no state between partitions and use no frame.
fn reusable_function(expr: &Arc<dyn WindowExpr>) -> Option<Arc<dyn StandardWindowFunctionExpr>> {
    let standard = expr.as_any().downcast_ref::<StandardWindowExpr>()?;
    let function = standard.get_standard_func_expr();
    let udf = function.as_any().downcast_ref::<WindowUDFExpr>()?;
    let name = udf.fun().name();
    (name == crate::window::attribute::NAME || name == crate::window::sessionize::NAME).then(|| function.clone())
}

impl DisplayAs for HashWindowExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let names: Vec<&str> = self.window_expr.iter().map(|e| e.name()).collect();
        write!(f, "HashWindowExec: [{}]", names.join(", "))
    }
}

impl ExecutionPlan for HashWindowExec {
    fn name(&self) -> &str {
        "HashWindowExec"
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
        let input = only_child(children, "HashWindowExec")?;
        let properties = properties(&self.schema, &input);
        Ok(Arc::new(HashWindowExec { input, properties, ..self.as_ref().clone() }))
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(children, ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute))
    }

    /// Rows of one window partition must all be in one input partition, as for the window
    /// operator this replaces.
    fn required_input_distribution(&self) -> Vec<datafusion::physical_plan::Distribution> {
        vec![datafusion::physical_plan::Distribution::KeyPartitioned(self.partition_by.clone())]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![false]
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context.clone())?;
        let reservation = MemoryConsumer::new(format!("HashWindowExec[{partition}]"))
            .with_can_spill(true)
            .register(context.memory_pool());
        let metrics = SpillMetrics::new(&self.metrics, partition);
        let spill_files = metrics.spill_file_count.clone();
        let reader = SpillManager::new(context.runtime_env(), metrics, self.input.schema());
        let driver = Driver {
            this: self.clone(),
            input: Some(input),
            queue: VecDeque::new(),
            reservation,
            disk: context.runtime_env().disk_manager.clone(),
            reader,
            spill_files,
            batch_size: context.session_config().batch_size().max(1),
        };
        Ok(driven_stream(self.schema.clone(), driver))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// Rows waiting to be evaluated: whole window partitions, in memory (reserved) or in a spill
/// file; `level` is the split a part that does not fit goes through next.
enum Work {
    Memory(Vec<RecordBatch>, u32),
    Spilled(Arc<dyn SpillFile>, u32),
}

/// One output partition's evaluation: gathers the input (splitting it into spill files by the
/// hash of the partition keys when it outgrows the memory reservation), then evaluates one
/// part at a time.
struct Driver {
    this: HashWindowExec,
    input: Option<SendableRecordBatchStream>,
    queue: VecDeque<Work>,
    reservation: MemoryReservation,
    disk: Arc<DiskManager>,
    reader: SpillManager,
    spill_files: Count,
    batch_size: usize,
}

impl Driver {
    /// Reads the whole input: in memory while the reservation grows, split into spill files
    /// from the first batch that does not fit.
    async fn gather(&mut self, mut input: SendableRecordBatchStream) -> Result<()> {
        let mut batches = vec![];
        let mut buckets: Option<Buckets> = None;
        while let Some(batch) = input.next().await {
            self.keep(batch?, &mut batches, &mut buckets, 0)?;
        }
        match buckets {
            Some(b) => self.enqueue(b, 1)?,
            None => self.queue.push_back(Work::Memory(batches, 0)),
        }
        Ok(())
    }

    /// `batch` kept in memory while the reservation grows; from the first batch that does not
    /// fit, the kept ones and every one after go to spill files split at `level`.
    fn keep(
        &mut self,
        batch: RecordBatch,
        batches: &mut Vec<RecordBatch>,
        split: &mut Option<Buckets>,
        level: u32,
    ) -> Result<()> {
        if let Some(b) = split {
            return b.append(&batch, &self.this.partition_by);
        }
        let fits = self.reservation.try_grow(batch.get_array_memory_size()).is_ok();
        batches.push(batch);
        if !fits {
            *split = Some(self.split(std::mem::take(batches), level)?);
        }
        Ok(())
    }

    /// `batches` written out by their keys' hash bits at `level`; their memory is released.
    fn split(&mut self, batches: Vec<RecordBatch>, level: u32) -> Result<Buckets> {
        let mut buckets = Buckets::new(
            &self.disk,
            self.this.input.schema(),
            level,
            "HashWindowExec",
            "one window partition (the rows of one PARTITION BY key) needs more memory than the limit",
        )?;
        for batch in batches {
            buckets.append(&batch, &self.this.partition_by)?;
        }
        self.reservation.free();
        Ok(buckets)
    }

    /// The files of a split, evaluated before anything else queued.
    fn enqueue(&mut self, buckets: Buckets, level: u32) -> Result<()> {
        queue_front(buckets, &mut self.queue, &self.spill_files, |file| Work::Spilled(file, level))
    }

    /// The output of the next part (empty when that part had to be split again); None at the
    /// end.
    async fn next_output(&mut self) -> Result<Option<Vec<RecordBatch>>> {
        if let Some(input) = self.input.take() {
            self.gather(input).await?;
        }
        let Some(work) = self.queue.pop_front() else { return Ok(None) };
        let (batches, level) = match work {
            Work::Memory(batches, level) => (batches, level),
            Work::Spilled(file, level) => {
                self.reservation.free();
                let mut stream = self.reader.read_spill_as_stream(file, None)?;
                let mut batches = vec![];
                let mut overflow: Option<Buckets> = None;
                while let Some(batch) = stream.next().await {
                    let batch = own_rows(&batch?)?;
                    self.keep(batch, &mut batches, &mut overflow, level)?;
                }
                if let Some(b) = overflow {
                    self.enqueue(b, level + 1)?;
                    return Ok(Some(vec![]));
                }
                (batches, level)
            }
        };
        if batches.is_empty() {
            return Ok(Some(vec![]));
        }
        let all = concat_batches(&self.this.input.schema(), &batches)?;
        // The grouped copy of the rows (and the window columns) is made before the input is
        // dropped: reserve for both, or split the part.
        if self.reservation.try_grow(all.get_array_memory_size()).is_err() {
            drop(all);
            let buckets = self.split(batches, level)?;
            self.enqueue(buckets, level + 1)?;
            return Ok(Some(vec![]));
        }
        drop(batches);
        let out = self.this.evaluate(all)?;
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
    use super::*;
    use crate::window::sessionize::Sessionize;
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::execution::SessionStateBuilder;
    use datafusion::logical_expr::WindowUDF;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// The plan and the answer of `sql` over a random table, with or without the rule.
    async fn run(partitions: usize, batch_size: usize, rule: bool, sql: &str) -> (String, String) {
        let mut builder = SessionStateBuilder::new()
            .with_default_features()
            .with_config(SessionConfig::new().with_target_partitions(partitions).with_batch_size(batch_size));
        if rule {
            builder = builder.with_physical_optimizer_rule(Arc::new(HashWindow));
        }
        let ctx = SessionContext::new_with_state(builder.build());
        ctx.register_udwf(WindowUDF::from(Sessionize::new()));
        let mut rng = crate::common::test_rng::TestRng(0x0123_4567_89ab_cdef);
        let rows: Vec<String> = (0..400)
            .map(|_| {
                let p = match rng.next(40) {
                    0 => "NULL".to_string(),
                    k => format!("'p{k}'"),
                };
                let q = rng.next(3);
                let v = match rng.next(10) {
                    0 => "NULL".to_string(),
                    k => (k * 7 % 5).to_string(),
                };
                format!("({p}, {q}, {}, {v})", rng.next(50))
            })
            .collect();
        ctx.sql(&format!("CREATE TABLE t (p VARCHAR, q BIGINT, ts BIGINT, v BIGINT) AS VALUES {}", rows.join(", ")))
            .await
            .expect("table");
        let df = ctx.sql(sql).await.expect("sql");
        let plan = df.clone().create_physical_plan().await.expect("plan");
        let text = displayable(plan.as_ref()).indent(true).to_string();
        let batches = df.collect().await.expect("collect");
        (text, pretty_format_batches(&batches).expect("format").to_string())
    }

    /// Window queries whose rows are then aggregated or re-sorted on other columns, with ties,
    /// NULL keys, two partition keys, descending keys, frames and peers.
    const QUERIES: [&str; 4] = [
        "SELECT p, q, ts, v, row_number() OVER (PARTITION BY p, q ORDER BY ts, v DESC NULLS FIRST) AS rn, \
         sum(v) OVER (PARTITION BY p, q ORDER BY ts, v DESC NULLS FIRST ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) \
         AS s FROM t ORDER BY v, ts, p, q, rn",
        "SELECT q, sum(c) FROM (SELECT q, count(*) OVER (PARTITION BY p ORDER BY ts) AS c FROM t) x \
         GROUP BY q ORDER BY q",
        "SELECT s, count(*) FROM (SELECT sessionize(ts, 5) OVER (PARTITION BY p ORDER BY ts, v) AS s FROM t) x \
         GROUP BY s ORDER BY s",
        "SELECT m, count(*) FROM (SELECT max(v) OVER (PARTITION BY q, p) AS m FROM t) x GROUP BY m ORDER BY m",
    ];

    #[tokio::test]
    async fn the_same_answers_as_the_sort_based_window() {
        for sql in QUERIES {
            for (partitions, batch_size) in [(1, 8192), (3, 7), (4, 1)] {
                let (plan, answer) = run(partitions, batch_size, true, sql).await;
                let (sorted_plan, expected) = run(partitions, batch_size, false, sql).await;
                assert!(plan.contains("HashWindowExec"), "{plan}");
                assert!(!sorted_plan.contains("HashWindowExec"), "{sorted_plan}");
                assert_eq!(answer, expected, "{sql} at {partitions} partitions, batch size {batch_size}");
                assert!(answer.lines().count() > 6, "{answer}");
            }
        }
    }

    /// A context whose memory pool holds `limit` bytes (None: unlimited), with the rule.
    fn limited(limit: Option<usize>, partitions: usize) -> SessionContext {
        use datafusion::execution::memory_pool::GreedyMemoryPool;
        use datafusion::execution::runtime_env::RuntimeEnvBuilder;
        let mut runtime = RuntimeEnvBuilder::new();
        if let Some(limit) = limit {
            runtime = runtime.with_memory_pool(Arc::new(GreedyMemoryPool::new(limit)));
        }
        let state = SessionStateBuilder::new()
            .with_default_features()
            .with_runtime_env(runtime.build_arc().expect("runtime"))
            .with_config(SessionConfig::new().with_target_partitions(partitions))
            .with_physical_optimizer_rule(Arc::new(HashWindow))
            .build();
        SessionContext::new_with_state(state)
    }

    /// The answer of `sql`, and how many files its HashWindowExec spilled.
    async fn spilled(ctx: &SessionContext, sql: &str) -> Result<(String, usize)> {
        let df = ctx.sql(sql).await?;
        let plan = df.clone().create_physical_plan().await?;
        let text = displayable(plan.as_ref()).indent(true).to_string();
        assert!(text.contains("HashWindowExec"), "{text}");
        let batches = datafusion::physical_plan::collect(plan.clone(), ctx.task_ctx()).await?;
        let mut files = 0;
        let mut stack = vec![plan];
        while let Some(node) = stack.pop() {
            if node.name() == "HashWindowExec" {
                files += node.metrics().and_then(|m| m.spill_count()).unwrap_or(0);
            }
            stack.extend(node.children().into_iter().cloned());
        }
        Ok((pretty_format_batches(&batches)?.to_string(), files))
    }

    #[tokio::test]
    async fn rows_beyond_the_memory_limit_spill_and_give_the_same_answers() {
        // 200,000 rows in 1,000 window partitions; 256 KiB holds a fraction of them.
        let sql = "SELECT v % 7 AS k, sum(rn), sum(s) FROM (SELECT v, row_number() OVER (PARTITION BY v % 1000 ORDER BY v) AS rn, \
                   sum(v) OVER (PARTITION BY v % 1000 ORDER BY v ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS s \
                   FROM (SELECT value AS v FROM generate_series(1, 200000))) x GROUP BY k";
        // No ORDER BY (a sort would want more than the limit): the lines, sorted, are compared.
        let sorted = |text: String| {
            let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
            lines.sort();
            lines
        };
        for partitions in [1, 2] {
            let (expected, none) = spilled(&limited(None, partitions), sql).await.expect("unlimited");
            assert_eq!(none, 0);
            let (answer, files) = spilled(&limited(Some(256 * 1024), partitions), sql).await.expect("spills");
            assert!(files >= 16, "{files} files spilled at {partitions} partitions");
            assert!(expected.lines().count() == 7 + 4, "{expected}");
            assert_eq!(sorted(answer), sorted(expected), "{partitions} partitions");
        }
    }

    #[tokio::test]
    async fn one_window_partition_beyond_the_memory_limit_is_an_error_not_a_crash() {
        // Every row has the same key: splitting cannot make it smaller.
        let sql = "SELECT v % 7 AS k, sum(rn) FROM (SELECT v, row_number() OVER (PARTITION BY v % 2 + 10 > 5 ORDER BY v) AS rn \
                   FROM (SELECT value AS v FROM generate_series(1, 200000))) x GROUP BY k";
        let err = spilled(&limited(Some(64 * 1024), 2), sql).await.expect_err("64 KiB cannot hold 200,000 rows");
        assert!(err.to_string().contains("Resources exhausted") && err.to_string().contains("HashWindowExec"), "{err}");
    }

    #[tokio::test]
    async fn an_order_the_result_relies_on_is_kept() {
        // The window's sort also orders the result, or a sorted aggregate streams over it:
        // nothing may replace it.
        for sql in [
            "SELECT p, ts, row_number() OVER (PARTITION BY p ORDER BY ts) AS rn FROM t",
            "SELECT p, sum(c) FROM (SELECT p, count(*) OVER (PARTITION BY p ORDER BY ts) AS c FROM t) x \
             GROUP BY p ORDER BY p",
        ] {
            for partitions in [1, 3] {
                let (plan, _) = run(partitions, 8192, true, sql).await;
                assert!(!plan.contains("HashWindowExec"), "{plan}");
            }
        }
    }
}
