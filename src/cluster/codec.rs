//! How journeydb's operators travel to the scheduler and executors: Ballista's own nodes
//! (shuffle readers and writers) through Ballista's codec, ours through a message of their own,
//! told apart by a leading tag. The same codec runs on the server, the scheduler (which
//! re-encodes each task's plan) and every executor.

use ballista_core::serde::BallistaPhysicalExtensionCodec;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use journeydb_udfs::physical::keep_rows::{KeepRows, KeepRowsExec};
use std::sync::Arc;

/// The first bytes of an encoded journeydb operator (Ballista's messages are protobuf, whose
/// first byte is a field tag, never 0).
const TAG: &[u8] = b"\0jdb1";

/// The kinds of journeydb operators the codec encodes.
const KEEP_ROWS: u8 = 1;

#[derive(Debug, Default)]
pub struct Codec {
    ballista: BallistaPhysicalExtensionCodec,
}

impl PhysicalExtensionCodec for Codec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let Some(ours) = buf.strip_prefix(TAG) else {
            return self.ballista.try_decode(buf, inputs, ctx, converter);
        };
        let input = match inputs {
            [one] => one.clone(),
            _ => return Err(DataFusionError::Internal(format!("a journeydb operator with {} inputs", inputs.len()))),
        };
        match ours.split_first() {
            Some((&KEEP_ROWS, rest)) => {
                let mut lists = Lists(rest);
                let keep = KeepRows { required: lists.next()?, any_true: lists.next()?, any_valid: lists.next()? };
                Ok(Arc::new(KeepRowsExec::new(input, keep)))
            }
            _ => Err(DataFusionError::Internal("an unknown journeydb operator in a plan".into())),
        }
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        if let Some(k) = node.downcast_ref::<KeepRowsExec>() {
            buf.extend_from_slice(TAG);
            buf.push(KEEP_ROWS);
            let keep = k.keep();
            for list in [&keep.required, &keep.any_true, &keep.any_valid] {
                put_list(buf, list);
            }
            return Ok(());
        }
        self.ballista.try_encode(node, buf, converter)
    }
}

/// A list of column indexes: its length, then each, as little-endian u32s.
fn put_list(buf: &mut Vec<u8>, list: &[usize]) {
    buf.extend_from_slice(&(list.len() as u32).to_le_bytes());
    for &i in list {
        buf.extend_from_slice(&(i as u32).to_le_bytes());
    }
}

/// Reads what [`put_list`] wrote, one list at a time.
struct Lists<'a>(&'a [u8]);

impl Lists<'_> {
    fn u32(&mut self) -> Result<u32> {
        let (head, rest) = self
            .0
            .split_first_chunk::<4>()
            .ok_or_else(|| DataFusionError::Internal("a truncated journeydb operator".into()))?;
        self.0 = rest;
        Ok(u32::from_le_bytes(*head))
    }

    fn next(&mut self) -> Result<Vec<usize>> {
        let n = self.u32()?;
        (0..n).map(|_| self.u32().map(|i| i as usize)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::physical_plan::empty::EmptyExec;
    use datafusion_proto::physical_plan::AsExecutionPlan;
    use datafusion_proto::protobuf::PhysicalPlanNode;

    #[test]
    fn keep_rows_travels_and_comes_back_the_same() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Boolean, true),
            Field::new("c", DataType::Utf8, true),
        ]));
        let keep = KeepRows { required: vec![0], any_true: vec![1], any_valid: vec![2, 0] };
        let plan: Arc<dyn ExecutionPlan> = Arc::new(KeepRowsExec::new(Arc::new(EmptyExec::new(schema)), keep.clone()));
        let codec = Codec::default();
        let node = PhysicalPlanNode::try_from_physical_plan(plan, &codec).expect("encode");
        let ctx = datafusion::prelude::SessionContext::new();
        let back = node.try_into_physical_plan(&ctx.task_ctx(), &codec).expect("decode");
        let back = back.downcast_ref::<KeepRowsExec>().expect("a KeepRowsExec");
        assert_eq!(back.keep(), &keep);
        assert_eq!(back.children()[0].name(), "EmptyExec");
        assert!(
            codec
                .try_decode(
                    b"\0jdb1\x09",
                    &[],
                    &ctx.task_ctx(),
                    &datafusion_proto::physical_plan::DefaultPhysicalProtoConverter {}
                )
                .is_err()
        );
    }
}
