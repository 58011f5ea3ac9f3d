//! Spilling for [`super::hash_window::HashWindowExec`] and
//! [`crate::physical::funnel_aggregate::FunnelAggregateExec`]: rows written to [`FANOUT`]
//! spill files by a hash of their keys (window partition keys, group keys), so that each file
//! holds whole window partitions (whole groups) and can be evaluated on its own. A file that
//! still does not fit is split again on the next bits of the same hash, up to [`MAX_LEVEL`]
//! times; rows of one key always stay together, so a single key whose rows outgrow the memory
//! limit fails with resources exhausted.

use datafusion::arrow::array::{RecordBatch, UInt32Array};
use datafusion::arrow::compute::take_record_batch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::common::hash_utils::{RandomState, create_hashes};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::disk_manager::DiskManager;
use datafusion::execution::{SpillFile, SpillWriter};
use datafusion::physical_plan::PhysicalExpr;
use datafusion::physical_plan::metrics::Count;
use std::collections::VecDeque;
use std::io::BufWriter;
use std::sync::Arc;

/// Files per split (4 bits of the hash each).
pub const FANOUT: usize = 16;
/// Splits at most: 16^4 files in all.
pub const MAX_LEVEL: u32 = 4;
/// Independent of the hash `RepartitionExec` spreads rows over partitions with, so that the
/// rows of one input partition spread over every file.
const SEED: u64 = 0x006a_6f75_726e_6579;

/// An Arrow IPC stream into a spill file, opened at the file's first rows.
type Writer = StreamWriter<BufWriter<Box<dyn SpillWriter>>>;

/// Rows being written to [`FANOUT`] files (Arrow IPC streams, as DataFusion's own spill files
/// are) by the hash bits of one level.
pub struct Buckets {
    files: Vec<(Arc<dyn SpillFile>, Option<Writer>)>,
    schema: SchemaRef,
    level: u32,
}

impl Buckets {
    /// New files for a split at `level` (0 first), named after `owner`; beyond [`MAX_LEVEL`],
    /// resources exhausted with `too_big` (the rows of one key do not fit in memory).
    pub fn new(
        disk: &Arc<DiskManager>,
        schema: SchemaRef,
        level: u32,
        owner: &'static str,
        too_big: &'static str,
    ) -> Result<Buckets> {
        if level >= MAX_LEVEL {
            return Err(DataFusionError::ResourcesExhausted(format!("{owner}: {too_big}")));
        }
        let files = (0..FANOUT).map(|_| disk.create_tmp_file(owner).map(|f| (f, None))).collect::<Result<Vec<_>>>()?;
        Ok(Buckets { files, schema, level })
    }

    /// Writes each row of `batch` to the file of its keys' hash.
    pub fn append(&mut self, batch: &RecordBatch, keys: &[Arc<dyn PhysicalExpr>]) -> Result<()> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        let arrays = keys.iter().map(|k| k.evaluate(batch)?.into_array(n)).collect::<Result<Vec<_>>>()?;
        let mut hashes = vec![0u64; n];
        create_hashes(&arrays, &RandomState::with_seed(SEED), &mut hashes)?;
        let mut rows: Vec<Vec<u32>> = vec![vec![]; FANOUT];
        for (i, h) in hashes.iter().enumerate() {
            rows[bucket(*h, self.level)].push(i as u32);
        }
        for ((file, writer), rows) in self.files.iter_mut().zip(rows) {
            if rows.is_empty() {
                continue;
            }
            let writer = match writer {
                Some(w) => w,
                None => writer.insert(StreamWriter::try_new(BufWriter::new(file.open_writer()?), &self.schema)?),
            };
            writer.write(&take_record_batch(batch, &UInt32Array::from(rows))?)?;
        }
        Ok(())
    }

    /// The files that received rows, complete.
    pub fn finish(self) -> Result<Vec<Arc<dyn SpillFile>>> {
        let mut out = vec![];
        for (file, writer) in self.files {
            if let Some(mut w) = writer {
                w.finish()?;
                let mut inner = w.into_inner()?.into_inner().map_err(|e| DataFusionError::IoError(e.into_error()))?;
                inner.finish()?;
                out.push(file);
            }
        }
        Ok(out)
    }
}

/// The files of a split put at the front of `queue` (as `wrap` makes them), in order, to be
/// read before anything queued; counted in `files_spilled`.
pub fn queue_front<T>(
    buckets: Buckets,
    queue: &mut VecDeque<T>,
    files_spilled: &Count,
    wrap: impl Fn(Arc<dyn SpillFile>) -> T,
) -> Result<()> {
    let files = buckets.finish()?;
    files_spilled.add(files.len());
    for file in files.into_iter().rev() {
        queue.push_front(wrap(file));
    }
    Ok(())
}

/// A batch read back from a spill file shares the buffer it was decoded from with the file's
/// other batches: copied, it holds (and counts) its own rows only.
pub fn own_rows(batch: &RecordBatch) -> Result<RecordBatch> {
    Ok(take_record_batch(batch, &UInt32Array::from_iter_values(0..batch.num_rows() as u32))?)
}

fn bucket(hash: u64, level: u32) -> usize {
    ((hash >> (4 * level)) as usize) % FANOUT
}

#[cfg(test)]
mod tests {
    use super::bucket;

    #[test]
    fn each_level_reads_its_own_bits() {
        let h = 0x0000_0000_0000_4321u64;
        assert_eq!([bucket(h, 0), bucket(h, 1), bucket(h, 2), bucket(h, 3)], [1, 2, 3, 4]);
    }
}
