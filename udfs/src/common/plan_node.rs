//! Plumbing shared by journeydb's own physical operators (the reports' stages, `KeepRowsExec`,
//! `HashWindowExec`, `FunnelAggregateExec`, `SpendExec`, `IdentityGraphExec`).

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;
use futures::future::BoxFuture;
use std::sync::Arc;

/// The one input of an operator that has one, from `replace_children`'s list.
pub fn only_child(mut children: Vec<Arc<dyn ExecutionPlan>>, operator: &str) -> Result<Arc<dyn ExecutionPlan>> {
    match (children.pop(), children.is_empty()) {
        (Some(input), true) => Ok(input),
        _ => Err(DataFusionError::Internal(format!("{operator} has exactly one input"))),
    }
}

/// `plan`'s rows in one partition: itself when it has one, else its partitions merged.
pub fn one_partition(plan: &Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> {
    use datafusion::physical_plan::ExecutionPlanProperties;
    match plan.output_partitioning().partition_count() {
        1 => plan.clone(),
        _ => Arc::new(datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec::new(plan.clone())),
    }
}

/// An operator's per-partition state machine that produces its output a part at a time.
pub trait ChunkDriver: Send + 'static {
    /// The next part's batches (possibly none); `None` at the end.
    fn next_chunks(&mut self) -> BoxFuture<'_, Result<Option<Vec<RecordBatch>>>>;
}

/// The batches `driver` produces, as a stream; it stops at the first error.
pub fn driven_stream<D: ChunkDriver>(schema: SchemaRef, driver: D) -> SendableRecordBatchStream {
    let output = futures::stream::unfold(Some(driver), |driver| async move {
        let mut driver = driver?;
        match driver.next_chunks().await {
            Ok(Some(chunks)) => Some((Ok(chunks), Some(driver))),
            Ok(None) => None,
            Err(e) => Some((Err(e), None)),
        }
    })
    .flat_map(|r: Result<Vec<RecordBatch>>| match r {
        Ok(chunks) => futures::stream::iter(chunks.into_iter().map(Ok)).boxed(),
        Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
    });
    Box::pin(RecordBatchStreamAdapter::new(schema, output))
}

/// `batch` cut into batches of at most `size` rows (none when it is empty).
pub fn slices(batch: &RecordBatch, size: usize) -> Vec<RecordBatch> {
    let size = size.max(1);
    (0..batch.num_rows()).step_by(size).map(|from| batch.slice(from, size.min(batch.num_rows() - from))).collect()
}
