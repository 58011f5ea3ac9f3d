//! The attribution report joined with ad spend (`attribute(..., spend => 'ad_spend')`): per
//! model and dimension value, the spend over the report's days, `roas` and
//! `cost_per_conversion` (the contract is in `attribute.rs`).
//!
//! The kernel answers the credits and, on a row of its own (`model` NULL), the first and last
//! times it read. [`SpendExec`] reads that answer, then streams the spend rows (`d`, `b`, `s`:
//! day, dimension value, amount), summing per value the amounts of the days in range (the
//! UTC days of those two times, both included), and writes the report: every credited row with
//! its spend, and in every model a row for each value that has spend but no credit. It holds
//! one sum per dimension value (reserved from the memory pool), never the spend rows. It runs in the server (a cluster runs the
//! report's partial stage and the spend scan below it).

use super::{CONVERSION_SCALE, NAME, NONE, OUTPUT_CONVERSION, REVENUE_SCALE};
use crate::common::plan_node::one_partition;
use crate::physical::report::source_relation;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Decimal128Builder, Float64Builder, RecordBatch, StringBuilder,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Date32Type, Decimal128Type, Field, Float64Type, Int64Type, SchemaRef};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, Partitioning};
use datafusion::physical_plan::execution_plan::{
    Boundedness, ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, ExecutionPlanProperties, PhysicalExpr, PlanProperties,
};
use futures::{StreamExt, TryStreamExt};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

const DAY_MICROS: i64 = 86_400_000_000;
/// What one sum holds beside its value's text, about: the map's entry.
const SUM_BYTES: usize = std::mem::size_of::<(String, i128)>() + 16;

/// The columns the spend adds to the report.
pub(super) fn fields() -> Vec<Field> {
    vec![
        Field::new("spend", DataType::Decimal128(38, REVENUE_SCALE), true),
        Field::new("roas", DataType::Float64, true),
        Field::new("cost_per_conversion", DataType::Decimal128(38, REVENUE_SCALE), true),
    ]
}

/// The spend rows, `d` (date), `b` (the dimension, as text) and `s` (the amount, to the cent),
/// from `spend` (a table or a query) and the report's dimension `by`.
pub(super) fn input_sql(spend: &str, by: &str) -> String {
    format!(
        "SELECT CAST(day AS DATE) AS d, CAST(({by}) AS VARCHAR) AS b, CAST(spend AS DECIMAL(38, {REVENUE_SCALE})) AS s \
         FROM {}",
        source_relation(spend)
    )
}

/// The report's credits (one partition) joined with the spend rows.
#[derive(Debug)]
pub struct SpendExec {
    report: Arc<dyn ExecutionPlan>,
    spend: Arc<dyn ExecutionPlan>,
    /// The report's models, in output order.
    models: Vec<String>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl SpendExec {
    pub fn new(
        report: Arc<dyn ExecutionPlan>,
        spend: Arc<dyn ExecutionPlan>,
        models: Vec<String>,
        schema: SchemaRef,
    ) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        SpendExec { report, spend, models, schema, properties }
    }
}

impl DisplayAs for SpendExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "SpendExec: {NAME}")
    }
}

impl ExecutionPlan for SpendExec {
    fn name(&self) -> &str {
        "SpendExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.report, &self.spend]
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
        let [report, spend]: [Arc<dyn ExecutionPlan>; 2] =
            children.try_into().map_err(|_| DataFusionError::Internal("SpendExec has two children".into()))?;
        Ok(Arc::new(SpendExec::new(report, spend, self.models.clone(), self.schema.clone())))
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(children, ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute))
    }

    fn required_input_distribution(&self) -> Vec<Distribution> {
        vec![Distribution::SinglePartition, Distribution::UnspecifiedDistribution]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![false, false]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false, false]
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!("SpendExec has one partition, asked for {partition}")));
        }
        let n = self.report.output_partitioning().partition_count();
        if n != 1 {
            return Err(DataFusionError::Internal(format!("SpendExec over a report of {n} partitions, not one")));
        }
        let report = self.report.execute(0, context.clone())?;
        // The spend rows, whatever their partitioning, read one after another.
        let spend = one_partition(&self.spend).execute(0, context.clone())?;
        let (models, schema) = (self.models.clone(), self.schema.clone());
        let reservation = MemoryConsumer::new(format!("{NAME} spend")).register(context.memory_pool());
        let answer = futures::stream::once(combine(report, spend, models, schema.clone(), reservation));
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, answer)))
    }
}

/// One credited row of a model.
struct Credit {
    label: String,
    /// In 10^-6 conversions and cents.
    conversions: i128,
    cents: i128,
    share: Option<f64>,
    effect: Option<f64>,
}

fn out_of_range() -> DataFusionError {
    DataFusionError::Execution(format!("{NAME}: spend out of range for numeric(38, {REVENUE_SCALE})"))
}

async fn combine(
    report: SendableRecordBatchStream,
    mut spend: SendableRecordBatchStream,
    models: Vec<String>,
    schema: SchemaRef,
    reservation: MemoryReservation,
) -> Result<RecordBatch> {
    let batches: Vec<RecordBatch> = report.try_collect().await?;
    let mut credits: BTreeMap<String, Vec<Credit>> = BTreeMap::new();
    let mut span: Option<(i64, i64)> = None;
    for b in &batches {
        let model = b.column(0).as_string::<i32>();
        let label = b.column(1).as_string::<i32>();
        let conversions = b.column(2).as_primitive::<Decimal128Type>();
        let cents = b.column(3).as_primitive::<Decimal128Type>();
        let share = b.column(4).as_primitive::<Float64Type>();
        let effect = b.column(5).as_primitive::<Float64Type>();
        let (first, last) = (b.column(6).as_primitive::<Int64Type>(), b.column(7).as_primitive::<Int64Type>());
        for i in 0..b.num_rows() {
            if model.is_null(i) {
                span = Some((first.value(i), last.value(i)));
                continue;
            }
            credits.entry(model.value(i).to_string()).or_default().push(Credit {
                label: label.value(i).to_string(),
                conversions: conversions.value(i),
                cents: cents.value(i),
                share: share.is_valid(i).then(|| share.value(i)),
                effect: effect.is_valid(i).then(|| effect.value(i)),
            });
        }
    }
    // The report's days: those of its first and last times (UTC).
    let days = span.map(|(a, b)| (a.div_euclid(DAY_MICROS), b.div_euclid(DAY_MICROS)));
    // One sum per dimension value, reserved from the memory pool as values arrive.
    let (mut spent, mut spent_bytes): (BTreeMap<String, i128>, usize) = (BTreeMap::new(), 0);
    while let Some(batch) = spend.next().await {
        let batch = batch?;
        let day = batch.column(0).as_primitive::<Date32Type>();
        let label = cast(batch.column(1), &DataType::Utf8)?;
        let label = label.as_string::<i32>();
        let amount = batch.column(2).as_primitive::<Decimal128Type>();
        let Some((from, to)) = days else { continue };
        for i in 0..batch.num_rows() {
            if day.is_null(i) || amount.is_null(i) || !(from..=to).contains(&i64::from(day.value(i))) {
                continue;
            }
            let value = if label.is_valid(i) { label.value(i) } else { NONE };
            if !spent.contains_key(value) {
                spent_bytes += value.len() + SUM_BYTES;
            }
            let sum = spent.entry(value.to_string()).or_default();
            *sum = sum.checked_add(amount.value(i)).ok_or_else(out_of_range)?;
        }
        reservation.try_resize(spent_bytes)?;
    }

    let mut model_col = StringBuilder::new();
    let mut label_col = StringBuilder::new();
    let (mut conv_col, mut revenue_col) = (Decimal128Builder::new(), Decimal128Builder::new());
    let (mut share_col, mut effect_col) = (Float64Builder::new(), Float64Builder::new());
    let (mut spend_col, mut roas_col, mut cost_col) =
        (Decimal128Builder::new(), Float64Builder::new(), Decimal128Builder::new());
    for model in &models {
        let mut rows = credits.remove(model).unwrap_or_default();
        let credited = rows.iter().any(|r| r.conversions != 0);
        let listed: std::collections::HashSet<String> = rows.iter().map(|r| r.label.clone()).collect();
        for label in spent.keys() {
            if !listed.contains(label) {
                let share = credited.then_some(0.0);
                rows.push(Credit { label: label.clone(), conversions: 0, cents: 0, share, effect: None });
            }
        }
        rows.sort_by(|a, b| b.conversions.cmp(&a.conversions).then_with(|| a.label.cmp(&b.label)));
        for r in rows {
            let spend = spent.get(&r.label).copied();
            model_col.append_value(model);
            label_col.append_value(&r.label);
            conv_col.append_value(r.conversions);
            revenue_col.append_value(r.cents);
            share_col.append_option(r.share);
            effect_col.append_option(r.effect);
            spend_col.append_option(spend);
            roas_col.append_option(spend.filter(|&s| s != 0).map(|s| r.cents as f64 / s as f64));
            let cost = match spend {
                Some(s) if r.conversions != 0 => {
                    Some(rounded_div(s.checked_mul(OUTPUT_CONVERSION).ok_or_else(out_of_range)?, r.conversions))
                }
                _ => None,
            };
            cost_col.append_option(cost);
        }
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(model_col.finish()),
        Arc::new(label_col.finish()),
        Arc::new(conv_col.finish().with_precision_and_scale(38, CONVERSION_SCALE)?),
        Arc::new(revenue_col.finish().with_precision_and_scale(38, REVENUE_SCALE)?),
        Arc::new(share_col.finish()),
        Arc::new(effect_col.finish()),
        Arc::new(spend_col.finish().with_precision_and_scale(38, REVENUE_SCALE)?),
        Arc::new(roas_col.finish()),
        Arc::new(cost_col.finish().with_precision_and_scale(38, REVENUE_SCALE)?),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// `n / d` rounded half away from zero (`d` non-zero).
fn rounded_div(n: i128, d: i128) -> i128 {
    let (q, r) = (n / d, n % d);
    if 2 * r.unsigned_abs() >= d.unsigned_abs() { q + n.signum() * d.signum() } else { q }
}

#[cfg(test)]
mod tests {
    use super::rounded_div;

    #[test]
    fn rounds_half_away_from_zero() {
        assert_eq!(rounded_div(5, 2), 3);
        assert_eq!(rounded_div(-5, 2), -3);
        assert_eq!(rounded_div(4, 3), 1);
        assert_eq!(rounded_div(5, 3), 2);
        assert_eq!(rounded_div(-5, -3), 2);
        assert_eq!(rounded_div(10_000 * 1_000_000, 3_000_000), 3333);
    }
}
