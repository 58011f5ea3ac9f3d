//! `KeepRowsExec`: drops the rows a report cannot use, after its input's projection.
//!
//! A report's input query computes, per source row, the person and time and one boolean column
//! per step condition. Written as a SQL `WHERE`, the rows that match no step would be dropped
//! by a filter that DataFusion places below the projection: it evaluates every step condition
//! twice (once to filter, once to project) and copies every source column it reads. This node
//! filters the projected rows instead, from columns already computed: a row is kept when its
//! `required` columns are all non-NULL and, if any `any_true` or `any_valid` columns are given,
//! one of the `any_true` columns is true or one of the `any_valid` columns is non-NULL.
//!
//! Partitioning and row order are the input's (rows are only dropped).
//!
//! It also gives each string view column that shares buffers much larger than its rows hold
//! (a join's output points into the whole build side, a Parquet scan's into whole pages) buffers
//! of its own ([`compact_views`]). The report hash-partitions and sorts its input next, and both
//! count a batch's memory as every buffer it points into: without this, 10M rows of a join
//! counted as tens of GB and the sort failed for want of memory it did not use.

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch};
use datafusion::arrow::buffer::BooleanBuffer;
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PhysicalExpr, PlanProperties};
use futures::StreamExt;
use std::fmt;
use std::sync::Arc;

/// Which columns decide whether a row is kept (indexes into the input's columns).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeepRows {
    /// Every one must be non-NULL.
    pub required: Vec<usize>,
    /// Boolean columns: one must be true (NULL is false) ...
    pub any_true: Vec<usize>,
    /// ... or one of these must be non-NULL. With both lists empty, no such condition.
    pub any_valid: Vec<usize>,
}

impl KeepRows {
    /// The rows of `batch` to keep; `None` when all are.
    pub fn mask(&self, batch: &RecordBatch) -> Result<Option<BooleanBuffer>> {
        let rows = batch.num_rows();
        let mut keep: Option<BooleanBuffer> = None;
        let and = |keep: Option<BooleanBuffer>, b: &BooleanBuffer| Some(keep.map_or_else(|| b.clone(), |k| &k & b));
        for &c in &self.required {
            if let Some(nulls) = batch.column(c).logical_nulls() {
                keep = and(keep, nulls.inner());
            }
        }
        if !self.any_true.is_empty() || !self.any_valid.is_empty() {
            let mut any = BooleanBuffer::new_unset(rows);
            for &c in &self.any_true {
                let column = batch.column(c);
                let Some(values) = column.as_boolean_opt() else {
                    return Err(DataFusionError::Internal(format!("column {c} is not boolean")));
                };
                any = match values.logical_nulls() {
                    Some(nulls) => &any | &(values.values() & nulls.inner()),
                    None => &any | values.values(),
                };
            }
            for &c in &self.any_valid {
                any = match batch.column(c).logical_nulls() {
                    Some(nulls) => &any | nulls.inner(),
                    None => BooleanBuffer::new_set(rows),
                };
            }
            keep = and(keep, &any);
        }
        Ok(keep.filter(|k| k.count_set_bits() < rows))
    }

    /// The same condition in SQL, over columns named `names`.
    pub fn sql(&self, names: &[String]) -> String {
        let mut all: Vec<String> = self.required.iter().map(|&c| format!("{} IS NOT NULL", names[c])).collect();
        let mut any: Vec<String> = self.any_true.iter().map(|&c| names[c].clone()).collect();
        any.extend(self.any_valid.iter().map(|&c| format!("{} IS NOT NULL", names[c])));
        if !any.is_empty() {
            all.push(format!("({})", any.join(" OR ")));
        }
        if all.is_empty() { "true".into() } else { all.join(" AND ") }
    }

    /// `batch` without the rows to drop, its string views compacted ([`compact_views`]).
    pub fn apply(&self, batch: RecordBatch) -> Result<RecordBatch> {
        let kept = match self.mask(&batch)? {
            None => batch,
            Some(keep) => filter_record_batch(&batch, &BooleanArray::new(keep, None))?,
        };
        compact_views(kept)
    }
}

/// `batch` with each string or binary view column whose buffers hold more than twice the bytes
/// its rows use (and over 64 KiB) copied into buffers of its own; other columns as they are.
pub fn compact_views(batch: RecordBatch) -> Result<RecordBatch> {
    fn sparse(buffers: &[datafusion::arrow::buffer::Buffer], lengths: impl Iterator<Item = u32>) -> bool {
        let held: usize = buffers.iter().map(|b| b.capacity()).sum();
        if held <= 65_536 {
            return false;
        }
        // Views of up to 12 bytes are stored inline, in no buffer.
        let used: usize = lengths.filter(|&l| l > 12).map(|l| l as usize).sum();
        held > 2 * used
    }
    let mut columns = batch.columns().to_vec();
    let mut changed = false;
    for c in columns.iter_mut() {
        let compacted: Option<ArrayRef> = match c.data_type() {
            DataType::Utf8View => {
                let v = c.as_string_view();
                sparse(v.data_buffers(), v.lengths()).then(|| Arc::new(v.gc()) as ArrayRef)
            }
            DataType::BinaryView => {
                let v = c.as_binary_view();
                sparse(v.data_buffers(), v.lengths()).then(|| Arc::new(v.gc()) as ArrayRef)
            }
            _ => None,
        };
        if let Some(compacted) = compacted {
            *c = compacted;
            changed = true;
        }
    }
    if !changed {
        return Ok(batch);
    }
    Ok(RecordBatch::try_new(batch.schema(), columns)?)
}

#[derive(Debug)]
pub struct KeepRowsExec {
    input: Arc<dyn ExecutionPlan>,
    keep: KeepRows,
    metrics: ExecutionPlanMetricsSet,
}

impl KeepRowsExec {
    pub fn new(input: Arc<dyn ExecutionPlan>, keep: KeepRows) -> Self {
        KeepRowsExec { input, keep, metrics: ExecutionPlanMetricsSet::new() }
    }

    /// Which rows it keeps.
    pub fn keep(&self) -> &KeepRows {
        &self.keep
    }
}

impl DisplayAs for KeepRowsExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let k = &self.keep;
        write!(f, "KeepRowsExec: required={:?}, any_true={:?}, any_valid={:?}", k.required, k.any_true, k.any_valid)
    }
}

impl ExecutionPlan for KeepRowsExec {
    fn name(&self) -> &str {
        "KeepRowsExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
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

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = crate::common::plan_node::only_child(children, "KeepRowsExec")?;
        Ok(Arc::new(KeepRowsExec::new(input, self.keep.clone())))
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(children, ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        let schema = input.schema();
        let keep = self.keep.clone();
        let metrics = BaselineMetrics::new(&self.metrics, partition);
        let output = input.map(move |batch| {
            let timer = metrics.elapsed_compute().timer();
            let kept = keep.apply(batch?);
            timer.done();
            if let Ok(b) = &kept {
                metrics.record_output(b.num_rows());
            }
            kept
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, output)))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("p", DataType::Utf8, true),
            Field::new("t", DataType::Int64, true),
            Field::new("c0", DataType::Boolean, true),
            Field::new("c1", DataType::Boolean, true),
            Field::new("b", DataType::Utf8, true),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec![Some("a"), None, Some("c"), Some("d"), Some("e"), Some("f")])),
            Arc::new(Int64Array::from(vec![Some(1), Some(2), None, Some(4), Some(5), Some(6)])),
            Arc::new(BooleanArray::from(vec![Some(true), Some(true), Some(true), Some(false), None, Some(false)])),
            Arc::new(BooleanArray::from(vec![None, Some(false), Some(false), Some(false), Some(true), None])),
            Arc::new(StringArray::from(vec![None, None, None, Some("x"), None, None])),
        ];
        RecordBatch::try_new(schema, columns).expect("test")
    }

    fn kept(keep: KeepRows) -> Vec<String> {
        let b = keep.apply(batch()).expect("test");
        let p = b.column(0).as_string::<i32>();
        (0..b.num_rows()).map(|i| p.value(i).to_string()).collect()
    }

    #[test]
    fn required_columns_must_be_non_null() {
        assert_eq!(kept(KeepRows { required: vec![0, 1], ..Default::default() }), ["a", "d", "e", "f"]);
    }

    #[test]
    fn one_step_true_or_one_value_present() {
        let steps = KeepRows { required: vec![0, 1], any_true: vec![2, 3], any_valid: vec![] };
        assert_eq!(kept(steps), ["a", "e"]);
        let with_touch = KeepRows { required: vec![0, 1], any_true: vec![2, 3], any_valid: vec![4] };
        assert_eq!(kept(with_touch), ["a", "d", "e"]);
    }

    #[test]
    fn the_same_condition_in_sql() {
        let names: Vec<String> = ["p", "t", "c0", "c1", "b"].iter().map(|s| s.to_string()).collect();
        let keep = KeepRows { required: vec![0, 1], any_true: vec![2, 3], any_valid: vec![4] };
        assert_eq!(keep.sql(&names), "p IS NOT NULL AND t IS NOT NULL AND (c0 OR c1 OR b IS NOT NULL)");
        assert_eq!(KeepRows::default().sql(&names), "true");
    }

    #[test]
    fn a_batch_kept_whole_is_passed_on_as_is() {
        let all = KeepRows { required: vec![], any_true: vec![], any_valid: vec![] };
        assert!(all.mask(&batch()).expect("test").is_none());
        let b = batch();
        assert_eq!(all.apply(b.clone()).expect("test"), b);
    }

    /// A few rows that point into a large shared buffer get buffers of their own: the same
    /// values, a fraction of the memory; compact columns and other types are left as they are.
    #[test]
    fn sparse_string_views_are_compacted() {
        use datafusion::arrow::array::StringViewArray;
        let big: StringViewArray = (0..20_000).map(|i| Some(format!("person-with-a-long-id-{i:08}"))).collect();
        let few = big.slice(100, 10);
        let schema = Arc::new(Schema::new(vec![
            Field::new("p", DataType::Utf8View, true),
            Field::new("t", DataType::Int64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![Arc::new(few.clone()) as ArrayRef, Arc::new(Int64Array::from((0..10).collect::<Vec<i64>>()))],
        )
        .expect("batch");
        let before = batch.get_array_memory_size();
        let after = compact_views(batch.clone()).expect("compact");
        assert!(after.get_array_memory_size() * 20 < before, "{} -> {}", before, after.get_array_memory_size());
        assert_eq!(after.column(0).as_string_view().iter().collect::<Vec<_>>(), few.iter().collect::<Vec<_>>());
        assert!(Arc::ptr_eq(after.column(1), batch.column(1)));
        // Already compact: the same arrays.
        let again = compact_views(after.clone()).expect("compact");
        assert!(Arc::ptr_eq(again.column(0), after.column(0)));
        // The report's filter compacts too.
        let kept = KeepRows::default().apply(batch).expect("apply");
        assert_eq!(kept.get_array_memory_size(), after.get_array_memory_size());
    }
}
