//! `hash_window`: window functions evaluated per hash group instead of after a full sort.
//!
//! DataFusion evaluates `f() OVER (PARTITION BY p ORDER BY o)` by sorting each input partition
//! on `(p, o)` and cutting the sorted rows into window partitions. The journey functions run
//! over one window partition per person with few rows each, so that sort on a string person key
//! is most of the work. This physical optimizer rule replaces a window operator whose input is
//! exactly that sort with [`HashWindowExec`]: it gathers the partition's rows (memory reserved
//! from the pool for the rows and their grouped copy; it does not spill, so a partition that
//! does not fit fails with a resources-exhausted error), groups them by the partition keys in a hash table, orders each
//! group's rows by the `ORDER BY` keys (the sort's own options), and evaluates the window
//! expressions on each group as DataFusion's `WindowAggExec` does. Each window partition sees
//! the same rows in the same order, so the answers are the same; only the output rows come
//! grouped rather than globally sorted.
//!
//! The rule applies only where nothing above relies on that global order: the parent does not
//! require an ordering, and no order-preserving operator between it and the root does (the root
//! counts as needing its order, so a query's result order is never changed).

use crate::common::report::rows_by_group;
use datafusion::arrow::array::{ArrayRef, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{concat, concat_batches, take_record_batch};
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::config::ConfigOptions;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::memory_pool::MemoryConsumer;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::window::{StandardWindowExpr, StandardWindowFunctionExpr};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalSortExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::group_values::new_group_values;
use datafusion::physical_plan::aggregates::order::GroupOrdering;
use datafusion::physical_plan::execution_plan::{
    Boundedness, ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::windows::{BoundedWindowAggExec, WindowAggExec, WindowUDFExpr};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PhysicalExpr, PlanProperties, WindowExpr,
};
use futures::StreamExt;
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
}

impl HashWindowExec {
    /// `node` as a [`HashWindowExec`] when it is a window operator over exactly the sort on its
    /// partition keys, then its order keys.
    fn replace(node: &Arc<dyn ExecutionPlan>) -> Result<Option<Arc<dyn ExecutionPlan>>> {
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
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let Some(input) = children.pop().filter(|_| children.is_empty()) else {
            return Err(DataFusionError::Internal("HashWindowExec has exactly one input".into()));
        };
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
        let mut input = self.input.execute(partition, context.clone())?;
        let batch_size = context.session_config().batch_size().max(1);
        let this = self.clone();
        let reservation = MemoryConsumer::new(format!("HashWindowExec[{partition}]")).register(context.memory_pool());
        let output = futures::stream::once(async move {
            let input_schema = input.schema();
            let mut batches = vec![];
            while let Some(batch) = input.next().await {
                let batch = batch?;
                reservation.try_grow(batch.get_array_memory_size())?;
                batches.push(batch);
            }
            let all = concat_batches(&input_schema, &batches)?;
            drop(batches);
            // The grouped copy of the rows (and the window columns) is made before the input
            // is dropped: reserve for both.
            reservation.try_grow(all.get_array_memory_size())?;
            let out = this.evaluate(all)?;
            let chunks: Vec<Result<RecordBatch>> = (0..out.num_rows())
                .step_by(batch_size)
                .map(|from| Ok(out.slice(from, batch_size.min(out.num_rows() - from))))
                .collect();
            // The reservation lasts until the last chunk is taken.
            Ok::<_, DataFusionError>(futures::stream::iter(chunks).map(move |c| {
                let _held = &reservation;
                c
            }))
        })
        .map(|r| match r {
            Ok(s) => s.boxed(),
            Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
        })
        .flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), output)))
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

    #[tokio::test]
    async fn a_partition_beyond_the_memory_limit_is_an_error_not_a_crash() {
        use datafusion::execution::memory_pool::GreedyMemoryPool;
        use datafusion::execution::runtime_env::RuntimeEnvBuilder;
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(GreedyMemoryPool::new(64 * 1024)))
            .build_arc()
            .expect("runtime");
        let state = SessionStateBuilder::new()
            .with_default_features()
            .with_runtime_env(runtime)
            .with_config(SessionConfig::new().with_target_partitions(2))
            .with_physical_optimizer_rule(Arc::new(HashWindow))
            .build();
        let ctx = SessionContext::new_with_state(state);
        let sql = "SELECT v % 7 AS k, sum(rn) FROM (SELECT v, row_number() OVER (PARTITION BY v % 1000 ORDER BY v) AS rn \
                   FROM (SELECT value AS v FROM generate_series(1, 200000))) x GROUP BY k";
        let df = ctx.sql(sql).await.expect("sql");
        let plan = df.clone().create_physical_plan().await.expect("plan");
        let text = displayable(plan.as_ref()).indent(true).to_string();
        assert!(text.contains("HashWindowExec"), "{text}");
        let err = df.collect().await.expect_err("64 KiB cannot hold 200,000 rows");
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
