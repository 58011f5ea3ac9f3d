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
use journeydb_udfs::common::options::Options;
use journeydb_udfs::physical::funnel_aggregate::FunnelAggregateExec;
use journeydb_udfs::physical::hash_window::HashWindowExec;
use journeydb_udfs::physical::keep_rows::{KeepRows, KeepRowsExec};
use journeydb_udfs::physical::report::{ReportFinalExec, ReportPartialExec};
use journeydb_udfs::table::{REPORTS, report_stages};
use prost::Message;
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
/// A report's partial stage, sent as the report's call (the final stage stays in the server).
const REPORT_PARTIAL: u8 = 4;

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
                let mut read = Reader(rest);
                let keep = KeepRows { required: read.list()?, any_true: read.list()?, any_valid: read.list()? };
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
            Some((&REPORT_PARTIAL, rest)) => {
                let call = Reader(rest).call()?;
                let stages = report_stages(call, &input.schema())?;
                Ok(Arc::new(ReportPartialExec::try_new(input, stages)?))
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
        if let Some(r) = node.downcast_ref::<ReportPartialExec>() {
            buf.extend_from_slice(TAG);
            buf.push(REPORT_PARTIAL);
            return put_call(buf, r.stages().call());
        }
        self.ballista.try_encode(node, buf, converter)
    }
}

impl Codec {
    /// journeydb's operators that never travel: a report's final stage merges, in the server,
    /// the states its partial stages send back.
    pub fn stays_in_server(node: &dyn ExecutionPlan) -> bool {
        node.downcast_ref::<ReportFinalExec>().is_some()
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

/// A number, as a little-endian u32: how every count, index and length is written.
fn put_u32(buf: &mut Vec<u8>, n: usize) {
    buf.extend_from_slice(&(n as u32).to_le_bytes());
}

/// A list of column indexes: its length, then each.
fn put_list(buf: &mut Vec<u8>, list: &[usize]) {
    put_u32(buf, list.len());
    for &i in list {
        put_u32(buf, i);
    }
}

/// Bytes: their length, then them.
fn put_bytes(buf: &mut Vec<u8>, bytes: &[u8]) {
    put_u32(buf, bytes.len());
    buf.extend_from_slice(bytes);
}

/// A report's call: its function's name, the count of its positional arguments and each, then
/// the count of its named ones and each with its name; the values as DataFusion's protobuf
/// scalars.
fn put_call(buf: &mut Vec<u8>, call: &Options) -> Result<()> {
    let value = |v: &datafusion::common::ScalarValue| -> Result<Vec<u8>> {
        let proto = datafusion_proto::protobuf::ScalarValue::try_from(v)
            .map_err(|e| DataFusionError::Internal(format!("a report argument that cannot travel: {e}")))?;
        Ok(proto.encode_to_vec())
    };
    put_bytes(buf, call.function().as_bytes());
    put_u32(buf, call.positional().len());
    for v in call.positional() {
        put_bytes(buf, &value(v)?);
    }
    put_u32(buf, call.named().len());
    for (name, v) in call.named() {
        put_bytes(buf, name.as_bytes());
        put_bytes(buf, &value(v)?);
    }
    Ok(())
}

/// Reads what the `put_*` functions wrote, in the order they wrote it.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn u32(&mut self) -> Result<usize> {
        let (head, rest) = self
            .0
            .split_first_chunk::<4>()
            .ok_or_else(|| DataFusionError::Internal("a truncated journeydb operator".into()))?;
        self.0 = rest;
        Ok(u32::from_le_bytes(*head) as usize)
    }

    fn list(&mut self) -> Result<Vec<usize>> {
        let n = self.u32()?;
        (0..n).map(|_| self.u32()).collect()
    }

    fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()?;
        if self.0.len() < n {
            return Err(DataFusionError::Internal("a truncated journeydb operator".into()));
        }
        let (bytes, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(bytes)
    }

    fn text(&mut self) -> Result<String> {
        String::from_utf8(self.bytes()?.to_vec())
            .map_err(|_| DataFusionError::Internal("a malformed journeydb operator".into()))
    }

    fn value(&mut self) -> Result<datafusion::common::ScalarValue> {
        let proto = datafusion_proto::protobuf::ScalarValue::decode(self.bytes()?)
            .map_err(|e| DataFusionError::Internal(format!("a malformed report argument: {e}")))?;
        (&proto).try_into().map_err(|e| DataFusionError::Internal(format!("a malformed report argument: {e}")))
    }

    /// What [`put_call`] wrote.
    fn call(&mut self) -> Result<Options> {
        let name = self.text()?;
        let function = REPORTS
            .into_iter()
            .find(|r| *r == name)
            .ok_or_else(|| DataFusionError::Internal(format!("{name} is not a report")))?;
        let positional = (0..self.u32()?).map(|_| self.value()).collect::<Result<_>>()?;
        let named = (0..self.u32()?).map(|_| Ok((self.text()?, self.value()?))).collect::<Result<_>>()?;
        Ok(Options::from_values(function, positional, named))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::common::tree_node::TreeNodeRecursion;
    use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};

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

    /// `window_funnel`'s grouping, the per-key window evaluation and the reports' partial
    /// stages (made again from their calls), planned by journeydb's rules over a table: encoded
    /// and decoded, the plan is the same plan and answers the same.
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
        for (name, f) in journeydb_udfs::table_functions("t") {
            ctx.register_udtf(name, f);
        }
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
            // The reports, their named arguments as the server's parser hands them on.
            (
                "ReportPartialExec: funnel",
                "SELECT * FROM funnel('home', 'pricing', 'signup', '=>source', 't', '=>person', 'person', '=>time', 'ts', \
                 '=>event', 'node', '=>window', INTERVAL '100 seconds', '=>optional', ARRAY[2])",
            ),
            (
                "ReportPartialExec: attribute",
                "SELECT * FROM attribute(ARRAY['linear', 'markov'], 'shapley', '=>source', 't', '=>person', 'person', \
                 '=>time', 'ts', '=>event', 'node', '=>touch', 'node <> ''signup''', '=>conversion', 'signup', \
                 '=>by', 'node', '=>value', '1.5', '=>lookback', INTERVAL '1 hour') ORDER BY 1, 2",
            ),
            (
                "ReportPartialExec: journey_paths",
                "SELECT * FROM journey_paths('=>source', 't', '=>person', 'person', '=>time', 'ts', '=>node', 'node', \
                 '=>max_steps', 3) ORDER BY 1, 2, 3",
            ),
        ] {
            let plan = ctx.sql(sql).await.expect(sql).create_physical_plan().await.expect("plan");
            let shown = datafusion::physical_plan::displayable(plan.as_ref()).indent(false).to_string();
            assert!(shown.contains(operator), "{shown}");
            let travel = |p: Arc<dyn ExecutionPlan>| {
                let node = PhysicalPlanNode::try_from_physical_plan(p, &codec).expect("encode");
                node.try_into_physical_plan(&ctx.task_ctx(), &codec).expect("decode")
            };
            // A report's final stage stays in the server: what travels is below it.
            let back = if shown.contains("ReportFinalExec") {
                let sent = plan.clone().transform_down(|node| {
                    Ok(if node.name() == "ReportFinalExec" {
                        let below = travel(node.children()[0].clone());
                        let options = ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute);
                        Transformed::new(node.replace_children(vec![below], options)?, true, TreeNodeRecursion::Jump)
                    } else {
                        Transformed::no(node)
                    })
                });
                sent.expect("sent").data
            } else {
                travel(plan.clone())
            };
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
