//! `single_phase`: a physical optimizer rule that aggregates `window_funnel` in one phase.
//!
//! DataFusion plans a grouped aggregate in two phases: a partial aggregate per input partition,
//! a hash repartition of the partial states on the group keys, a final aggregate. For
//! `window_funnel` the partial state of a group is every event of the group, so the partial
//! phase saves nothing: it interns every group once more and copies every event list into the
//! final phase. When every aggregate of an `AggregateExec` is `window_funnel`, this rule
//! repartitions the input rows on the group keys instead and aggregates once
//! (`SinglePartitioned`; `Single` with one partition), with
//! [`super::funnel_aggregate::FunnelAggregateExec`] (keys interned by runs, group states
//! spilled by key hash). An aggregate DataFusion planned in one phase itself (one partition)
//! gets the same operator. The answer is the same (the function does not depend on how rows
//! are split); only the work differs. Any other shape is left alone.

use crate::aggregate::events::EVENT_LISTS;
use crate::physical::funnel_aggregate::FunnelAggregateExec;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::config::ConfigOptions;
use datafusion::error::Result;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties, Partitioning};

use std::sync::Arc;

#[derive(Debug, Default)]
pub struct SinglePhaseFunnel;

impl SinglePhaseFunnel {
    fn rewrite(node: &Arc<dyn ExecutionPlan>, partitions: usize) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let Some(last) = node.downcast_ref::<AggregateExec>() else { return Ok(None) };
        if matches!(last.mode(), AggregateMode::Single | AggregateMode::SinglePartitioned) {
            // Planned in one phase already (one partition): only the operator changes.
            let funnels_only =
                !last.aggr_expr().is_empty() && last.aggr_expr().iter().all(|a| EVENT_LISTS.contains(&a.fun().name()));
            if !funnels_only {
                return Ok(None);
            }
            return Ok(FunnelAggregateExec::try_from_aggregate(last)?.map(|e| Arc::new(e) as Arc<dyn ExecutionPlan>));
        }
        if !matches!(last.mode(), AggregateMode::Final | AggregateMode::FinalPartitioned) {
            return Ok(None);
        }
        // The partial aggregate below, through the exchange the planner put in between.
        let mut below = last.input().clone();
        while below.is::<RepartitionExec>() || below.is::<CoalescePartitionsExec>() {
            let Some(child) = below.children().first().map(|c| (*c).clone()) else { return Ok(None) };
            below = child;
        }
        let Some(partial) = below.downcast_ref::<AggregateExec>() else { return Ok(None) };
        let group_by = partial.group_expr();
        if *partial.mode() != AggregateMode::Partial
            || !group_by.is_single()
            || group_by.expr().is_empty()
            || partial.aggr_expr().is_empty()
            || !partial.aggr_expr().iter().all(|a| EVENT_LISTS.contains(&a.fun().name()))
        {
            return Ok(None);
        }
        let input = partial.input().clone();
        let (mode, input): (AggregateMode, Arc<dyn ExecutionPlan>) = if partitions > 1 {
            let hash = Partitioning::Hash(group_by.input_exprs(), partitions);
            (AggregateMode::SinglePartitioned, Arc::new(RepartitionExec::try_new(input, hash)?))
        } else if input.output_partitioning().partition_count() > 1 {
            (AggregateMode::Single, Arc::new(CoalescePartitionsExec::new(input)))
        } else {
            (AggregateMode::Single, input)
        };
        let single = AggregateExec::try_new(
            mode,
            group_by.clone(),
            partial.aggr_expr().to_vec(),
            partial.filter_expr().to_vec(),
            input,
            partial.input_schema(),
        )?;
        let same_partitions = single.properties().output_partitioning().partition_count()
            == last.properties().output_partitioning().partition_count();
        if single.schema() != last.schema() || !same_partitions {
            return Ok(None);
        }
        Ok(Some(match FunnelAggregateExec::try_from_aggregate(&single)? {
            Some(exec) => Arc::new(exec),
            None => Arc::new(single),
        }))
    }
}

impl PhysicalOptimizerRule for SinglePhaseFunnel {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        let partitions = config.execution.target_partitions;
        plan.transform_up(|node| {
            Ok(match Self::rewrite(&node, partitions)? {
                Some(single) => Transformed::yes(single),
                None => Transformed::no(node),
            })
        })
        .data()
    }

    fn name(&self) -> &str {
        "single_phase_funnel"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::window_funnel::WindowFunnel;
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::execution::SessionStateBuilder;
    use datafusion::logical_expr::AggregateUDF;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::{SessionConfig, SessionContext};

    async fn plan_and_answer(partitions: usize, rule: bool, sql: &str) -> (String, String) {
        let mut builder = SessionStateBuilder::new()
            .with_default_features()
            .with_config(SessionConfig::new().with_target_partitions(partitions).with_batch_size(2));
        if rule {
            builder = builder.with_physical_optimizer_rule(Arc::new(SinglePhaseFunnel));
        }
        let ctx = SessionContext::new_with_state(builder.build());
        ctx.register_udaf(AggregateUDF::from(WindowFunnel::new()));
        ctx.sql(
            "CREATE TABLE t (p VARCHAR, ts BIGINT, e VARCHAR) AS VALUES ('a', 1, 'x'), ('b', 5, 'x'), \
             ('a', 2, 'y'), ('c', 1, 'y'), ('b', 20, 'y'), ('a', 3, 'z'), ('d', 0, 'x'), ('d', 0, 'y')",
        )
        .await
        .expect("table");
        let df = ctx.sql(sql).await.expect("sql");
        let plan = df.clone().create_physical_plan().await.expect("plan");
        let text = displayable(plan.as_ref()).indent(true).to_string();
        let batches = df.collect().await.expect("collect");
        (text, pretty_format_batches(&batches).expect("format").to_string())
    }

    const FUNNEL: &str =
        "SELECT p, window_funnel(10, ts, e = 'x', e = 'y', e = 'z') AS level FROM t GROUP BY p ORDER BY p";

    #[tokio::test]
    async fn window_funnel_aggregates_in_one_phase_with_the_same_answer() {
        for partitions in [1, 2, 4] {
            let (plan, answer) = plan_and_answer(partitions, true, FUNNEL).await;
            let (two_phase, expected) = plan_and_answer(partitions, false, FUNNEL).await;
            assert!(!plan.contains("mode=Partial"), "{plan}");
            assert!(plan.contains("FunnelAggregateExec"), "{plan}");
            // DataFusion plans one partition in one phase itself.
            assert_eq!(two_phase.contains("mode=Partial"), partitions > 1, "{two_phase}");
            assert_eq!(answer, expected);
            assert!(answer.contains("| a | 3     |") && answer.contains("| b | 1     |"), "{answer}");
        }
    }

    #[tokio::test]
    async fn other_aggregates_keep_two_phases() {
        let sql = "SELECT p, window_funnel(10, ts, e = 'x', e = 'y') AS level, count(*) AS n FROM t GROUP BY p";
        let (plan, _) = plan_and_answer(2, true, sql).await;
        assert!(plan.contains("mode=Partial"), "{plan}");
    }
}
