//! How journeydb's operators travel to the scheduler and executors: Ballista's own nodes
//! (shuffle readers and writers) through Ballista's codec, ours through a message of their own,
//! told apart by a leading tag. The same codec runs on the server, the scheduler (which
//! re-encodes each task's plan) and every executor.

use ballista_core::serde::BallistaPhysicalExtensionCodec;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::AggregateExec;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion_proto::physical_plan::AsExecutionPlan;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use datafusion_proto::protobuf::PhysicalPlanNode;
use journeydb_udfs::physical::funnel_aggregate::FunnelAggregateExec;
use journeydb_udfs::physical::hash_window::HashWindowExec;
use journeydb_udfs::physical::keep_rows::{KeepRows, KeepRowsExec};
use std::sync::Arc;

/// The first bytes of an encoded journeydb operator (Ballista's messages are protobuf, whose
/// first byte is a field tag, never 0).
const TAG: &[u8] = b"\0jdb1";

/// The kinds of journeydb operators the codec encodes.
const KEEP_ROWS: u8 = 1;
/// `window_funnel`'s single-phase grouping, sent as the `AggregateExec` it replaced.
const FUNNEL_AGGREGATE: u8 = 2;
/// The per-key window evaluation, sent as the window operator and sort it replaced.
const HASH_WINDOW: u8 = 3;

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
            Some((&FUNNEL_AGGREGATE, rest)) => {
                let plan = self.decode_over(rest, input, ctx)?;
                let aggregate = plan
                    .downcast_ref::<AggregateExec>()
                    .ok_or_else(|| DataFusionError::Internal("a funnel aggregate sent as something else".into()))?;
                let funnel = FunnelAggregateExec::try_from_aggregate(aggregate)?
                    .ok_or_else(|| DataFusionError::Internal("a funnel aggregate that is not one any more".into()))?;
                Ok(Arc::new(funnel))
            }
            Some((&HASH_WINDOW, rest)) => {
                let plan = self.decode_over(rest, input, ctx)?;
                HashWindowExec::replace(&plan)?
                    .ok_or_else(|| DataFusionError::Internal("a hash window that is not one any more".into()))
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
        if let Some(f) = node.downcast_ref::<FunnelAggregateExec>() {
            let stand_in = Arc::new(f.as_aggregate(placeholder(f.input()))?);
            return self.encode_standing_in(FUNNEL_AGGREGATE, stand_in, buf);
        }
        if let Some(w) = node.downcast_ref::<HashWindowExec>() {
            let stand_in = w.as_window(placeholder(w.input()))?;
            return self.encode_standing_in(HASH_WINDOW, stand_in, buf);
        }
        self.ballista.try_encode(node, buf, converter)
    }
}

/// What stands for an operator's input in the plan that stands for the operator: an empty
/// scan of the same columns (the input itself travels as the operator's child).
fn placeholder(input: &Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> {
    Arc::new(EmptyExec::new(input.schema()))
}

impl Codec {
    /// Encodes DataFusion's plan `stand_in` (over a [`placeholder`]) for an operator of kind
    /// `kind`.
    fn encode_standing_in(&self, kind: u8, stand_in: Arc<dyn ExecutionPlan>, buf: &mut Vec<u8>) -> Result<()> {
        let node = PhysicalPlanNode::try_from_physical_plan(stand_in, self)?;
        buf.extend_from_slice(TAG);
        buf.push(kind);
        node.try_encode(buf)
    }

    /// Decodes a plan [`Codec::encode_standing_in`] wrote and puts `input` in place of its
    /// placeholder.
    fn decode_over(
        &self,
        bytes: &[u8],
        input: Arc<dyn ExecutionPlan>,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let plan = PhysicalPlanNode::try_decode(bytes)?.try_into_physical_plan(ctx, self)?;
        plan.transform_up(|node| {
            Ok(if node.downcast_ref::<EmptyExec>().is_some() {
                Transformed::yes(input.clone())
            } else {
                Transformed::no(node)
            })
        })
        .map(|t| t.data)
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

    /// `window_funnel`'s grouping and the per-key window evaluation, planned by journeydb's
    /// rules over a table: encoded and decoded, the plan is the same plan and answers the same.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn journey_operators_travel_and_come_back_the_same() {
        use datafusion::execution::SessionStateBuilder;
        use datafusion::prelude::{SessionConfig, SessionContext};
        let runtime = Arc::new(datafusion::execution::runtime_env::RuntimeEnv::default());
        let config = SessionConfig::new().with_target_partitions(3);
        let state = crate::cluster::node_state(config, runtime).expect("state");
        let mut builder = SessionStateBuilder::new_from_existing(state);
        for rule in journeydb_udfs::physical_optimizer_rules() {
            builder = builder.with_physical_optimizer_rule(rule);
        }
        let ctx = SessionContext::new_with_state(builder.build());
        ctx.sql(
            "CREATE TABLE t AS SELECT 'p' || (i % 7) AS person, to_timestamp(i * 37 % 1000) AS ts, \
             CASE i % 3 WHEN 0 THEN 'home' WHEN 1 THEN 'pricing' ELSE 'signup' END AS node \
             FROM generate_series(1, 500) AS s(i)",
        )
        .await
        .expect("table")
        .collect()
        .await
        .expect("rows");
        let codec = Codec::default();
        for (operator, sql) in [
            (
                "FunnelAggregateExec",
                "SELECT person, window_funnel(INTERVAL '100 seconds', ts, node = 'home', node = 'pricing', \
                 node = 'signup') AS level FROM t GROUP BY person ORDER BY person",
            ),
            (
                "HashWindowExec",
                "SELECT person, ts, node, sessionize(ts, INTERVAL '30 seconds') OVER (PARTITION BY person ORDER BY ts) \
                 AS s FROM t ORDER BY person, ts, node",
            ),
        ] {
            let plan = ctx.sql(sql).await.expect(sql).create_physical_plan().await.expect("plan");
            let shown = datafusion::physical_plan::displayable(plan.as_ref()).indent(false).to_string();
            assert!(shown.contains(operator), "{shown}");
            let node = PhysicalPlanNode::try_from_physical_plan(plan.clone(), &codec).expect("encode");
            let back = node.try_into_physical_plan(&ctx.task_ctx(), &codec).expect("decode");
            assert_eq!(datafusion::physical_plan::displayable(back.as_ref()).indent(false).to_string(), shown);
            let rows = |p: Arc<dyn ExecutionPlan>| {
                let ctx = ctx.task_ctx();
                async move {
                    let batches = datafusion::physical_plan::collect(p, ctx).await.expect("run");
                    datafusion::arrow::util::pretty::pretty_format_batches(&batches).expect("format").to_string()
                }
            };
            assert_eq!(rows(back).await, rows(plan).await);
        }
    }
}
