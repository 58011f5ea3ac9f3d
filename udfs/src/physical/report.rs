//! The execution shape shared by the report table functions.
//!
//! A report reads its input (the journey model or the relation given as `source`) through SQL
//! planned in the caller's session, hash-partitioned by person and, when the report gives sort
//! keys, sorted within each partition by them, so that every person's rows arrive together and
//! in order (without keys, a person's rows are all in one partition, in no particular order).
//! One task per partition folds the rows into a partial state ([`ReportKernel::update`], then
//! [`ReportKernel::end_partition`]); the partial states are then combined into the report
//! ([`ReportKernel::finish`]). The answer depends only on the
//! rows, never on how they were split into partitions or batches: kernels are written so, and
//! the tests check it.

use crate::physical::keep_rows::{KeepRows, KeepRowsExec};
use datafusion::arrow::array::{ArrayRef, RecordBatch, UInt32Array};
use datafusion::arrow::compute::kernels::partition::partition;
use datafusion::arrow::compute::{SortOptions, take};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::runtime::SpawnedTask;
use datafusion::common::tree_node::TreeNode;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionState;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::physical_expr::{
    EquivalenceProperties, LexOrdering, OrderingRequirements, Partitioning, PhysicalSortExpr,
};
use datafusion::physical_plan::aggregates::group_values::GroupValues;
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
use futures::StreamExt;
use std::fmt;
use std::sync::Arc;

/// What a report does with its sorted input.
pub trait ReportKernel: fmt::Debug + Send + Sync + 'static {
    /// The state one partition folds its rows into.
    type Partial: Send + 'static;

    fn name(&self) -> &'static str;
    fn new_partial(&self) -> Result<Self::Partial>;
    /// Folds one batch (of one partition, in sorted order) into the partition's state.
    fn update(&self, partial: &mut Self::Partial, batch: &RecordBatch) -> Result<()>;
    /// Called once a partition's rows are all read, in that partition's task.
    fn end_partition(&self, _partial: &mut Self::Partial) -> Result<()> {
        Ok(())
    }
    /// Combines the partitions' states into the report.
    fn finish(&self, partials: Vec<Self::Partial>) -> Result<RecordBatch>;
}

/// A report's validated call: the SQL of its input, and its plan over that input.
pub trait ReportQuery: fmt::Debug + Send + Sync + 'static {
    /// The function's name, for errors.
    fn function(&self) -> &'static str;
    /// The `source` option, for errors.
    fn source(&self) -> &str;
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
    /// The report over its planned input (a [`ReportExec`]).
    fn plan(self: Arc<Self>, input: Arc<dyn ExecutionPlan>, partitions: usize) -> Result<Arc<dyn ExecutionPlan>>;
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
        let input = plan_input(state, &q.input_sql(), keep.as_ref()).await.map_err(|e| {
            DataFusionError::Plan(format!("{}: cannot read source \"{}\": {e}", q.function(), q.source()))
        })?;
        let input: Arc<dyn ExecutionPlan> = match keep {
            Some(keep) => Arc::new(KeepRowsExec::new(input, keep)),
            None => input,
        };
        let report = q.clone().plan(input, state.config().target_partitions())?;
        project(report, projection)
    }
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
    // The report folds its input in this process, so the input is planned to run here as well:
    // a server that sends parts of plans to a cluster reads this option (journeydb's
    // `journeydb.cluster`; where it is not registered, setting it fails and changes nothing).
    let mut here = state.clone();
    let _ = here.config_mut().options_mut().set("journeydb.cluster", "false");
    let df = datafusion::dataframe::DataFrame::new(here, plan);
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

/// Runs a [`ReportKernel`] over its input hash-partitioned by person and sorted within each
/// partition; one output partition.
#[derive(Debug)]
pub struct ReportExec<K: ReportKernel> {
    input: Arc<dyn ExecutionPlan>,
    kernel: Arc<K>,
    schema: SchemaRef,
    person: Arc<dyn PhysicalExpr>,
    ordering: Option<LexOrdering>,
    properties: Arc<PlanProperties>,
}

impl<K: ReportKernel> ReportExec<K> {
    /// `input` is repartitioned on column `person` into `partitions` and sorted by columns
    /// `keys` (ascending, NULLs last) within each partition; no sort when `keys` is empty.
    pub fn try_new(
        input: Arc<dyn ExecutionPlan>,
        person: &str,
        keys: &[&str],
        partitions: usize,
        kernel: Arc<K>,
        schema: SchemaRef,
    ) -> Result<Self> {
        let input_schema = input.schema();
        let person = col(person, &input_schema)?;
        let options = SortOptions { descending: false, nulls_first: false };
        let exprs: Vec<PhysicalSortExpr> =
            keys.iter().map(|k| Ok(PhysicalSortExpr::new(col(k, &input_schema)?, options))).collect::<Result<_>>()?;
        let ordering = LexOrdering::new(exprs);
        let hash = Partitioning::Hash(vec![person.clone()], partitions.max(1));
        let repartitioned: Arc<dyn ExecutionPlan> = Arc::new(RepartitionExec::try_new(input, hash)?);
        let input = match &ordering {
            Some(o) => Arc::new(SortExec::new(o.clone(), repartitioned).with_preserve_partitioning(true)),
            None => repartitioned,
        };
        Ok(Self::with_input(input, kernel, schema, person, ordering))
    }

    fn with_input(
        input: Arc<dyn ExecutionPlan>,
        kernel: Arc<K>,
        schema: SchemaRef,
        person: Arc<dyn PhysicalExpr>,
        ordering: Option<LexOrdering>,
    ) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        ReportExec { input, kernel, schema, person, ordering, properties }
    }
}

impl<K: ReportKernel> DisplayAs for ReportExec<K> {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "ReportExec: {}", self.kernel.name())
    }
}

impl<K: ReportKernel> ExecutionPlan for ReportExec<K> {
    fn name(&self) -> &str {
        "ReportExec"
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
        let input = crate::common::plan_node::only_child(children, "ReportExec")?;
        Ok(Arc::new(ReportExec::with_input(
            input,
            self.kernel.clone(),
            self.schema.clone(),
            self.person.clone(),
            self.ordering.clone(),
        )))
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(children, ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute))
    }

    /// Every person's rows in one partition, sorted: the optimizer must keep what
    /// [`ReportExec::try_new`] built.
    fn required_input_distribution(&self) -> Vec<Distribution> {
        vec![Distribution::KeyPartitioned(vec![self.person.clone()])]
    }

    fn required_input_ordering(&self) -> Vec<Option<OrderingRequirements>> {
        vec![self.ordering.clone().map(OrderingRequirements::from)]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![false]
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!("ReportExec has one partition, asked for {partition}")));
        }
        let n = self.input.output_partitioning().partition_count();
        let mut tasks = Vec::with_capacity(n);
        for p in 0..n {
            let mut stream = self.input.execute(p, context.clone())?;
            let kernel = self.kernel.clone();
            tasks.push(SpawnedTask::spawn(async move {
                let mut partial = kernel.new_partial()?;
                while let Some(batch) = stream.next().await {
                    kernel.update(&mut partial, &batch?)?;
                }
                kernel.end_partition(&mut partial)?;
                Ok::<_, DataFusionError>(partial)
            }));
        }
        let kernel = self.kernel.clone();
        let output = futures::stream::once(async move {
            let mut partials = Vec::with_capacity(tasks.len());
            for t in tasks {
                let partial = t.join().await.map_err(|e| DataFusionError::ExecutionJoin(Box::new(e)))??;
                partials.push(partial);
            }
            kernel.finish(partials)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), output)))
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
}

impl Labels {
    pub fn id(&mut self, label: &str) -> u32 {
        if let Some(&id) = self.ids.get(label) {
            return id;
        }
        let id = self.labels.len() as u32;
        self.labels.push(label.to_string());
        self.ids.insert(label.to_string(), id);
        id
    }

    pub fn get(&self, id: u32) -> &str {
        &self.labels[id as usize]
    }
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
