//! `funnel_correlation`: which events and which property values go with converting.
//!
//! # Contract
//!
//! ```sql
//! SELECT * FROM funnel_correlation(step, step, ... [, candidates => ARRAY['event_name', 'channel'], ...])
//! ```
//!
//! The steps and the funnel options (`window`, `order`, `optional`, exclusions, `source`,
//! `person`, `time`, `event`) are the `funnel` report's, and so is each person's chain. Then:
//!
//! - A person who reached step 1 is a **converter** when their chain reached the last step, a
//!   **non-converter** otherwise. Their **span** runs from their step-1 event to their
//!   last-step event (converters), or to the end of the window after their step-1 event
//!   (non-converters): what happened after converting cannot have caused it.
//! - `candidates` (default: the `event` column) are expressions over the source's rows. A
//!   person **has** value `v` of candidate `c` when one of their events in their span has
//!   `c = v` (NULL values are no value). For the `event` column itself (kind `event`), the
//!   funnel's step events do not count: a step cannot predict itself.
//! - Per (candidate, value): `converters` (a) and `non_converters` (c) who have it; with `b` and
//!   `d` the converters and non-converters who do not, the **odds ratio** `((a + 0.5)(d + 0.5)) /
//!   ((b + 0.5)(c + 0.5))` (Haldane-Anscombe: every cell plus one half, so a value only
//!   converters have gets a finite ratio), its 95% confidence interval `exp(ln OR ± 1.96 SE)` with
//!   `SE = sqrt(1/(a+.5) + 1/(b+.5) + 1/(c+.5) + 1/(d+.5))` (Woolf), and the two-sided `p_value` of
//!   `z = ln OR / SE`. `conversion_rate` = a / (a + c). `correlation` is `'success'` when the
//!   ratio is above 1, `'failure'` below, `'none'` at 1.
//! - Rows are ranked by p_value, then by |ln OR| (largest first), then candidate and value; the
//!   first `top` (default 25) are listed.
//!
//! Compared with PostHog's correlation analysis (the reference to beat): PostHog counts a
//! person's events over the whole query range, so events after converting (the receipt page)
//! "predict" conversion; it adds 1 to each count without saying how sure a ratio is, so a value
//! two people have ranks beside one two thousand have; and it reads person properties as they
//! are now. Here the span stops at conversion, every ratio has its interval and p-value and the
//! ranking uses them, and properties are read on the events themselves. Still a correlation: a
//! value that goes with converting need not cause it.

use crate::common::funnel_chain::{Chains, Event, order_key};
use crate::common::options::Options;
use crate::docs::{FunctionDoc, Kind, Parameter};
use crate::error::ArgumentError;
use crate::physical::report::{
    Labels, ReportKernel, ReportQuery, ReportStages, ReportTable, Units, input_times, map_bytes, rows_by_group,
    source_relation, vec_bytes,
};
use crate::table::funnel::{FunnelQuery, chain_events};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Builder, Int32Builder, Int64Builder, RecordBatch, StringBuilder,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Int32Type, Int64Type, Schema, SchemaRef};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{HashMap, HashSet};
use datafusion::error::Result;
use std::fmt;
use std::sync::Arc;

pub const NAME: &str = "funnel_correlation";
/// The most candidate expressions.
pub const MAX_CANDIDATES: usize = 16;
/// The options this report takes (the funnel's that shape the chain, and its own).
const OPTIONS: [&str; 11] =
    ["source", "person", "time", "event", "window", "order", "optional", "exclude", "candidates", "top", "time_zone"];

/// This function's reference ([`crate::docs`]).
pub const DOC: FunctionDoc = FunctionDoc {
    name: NAME,
    kind: Kind::Report,
    usage: "funnel_correlation(step, step, ... [, candidates => ARRAY[...], name => value, ...])",
    result: "TABLE(candidate text, value text, converters bigint, non_converters bigint, conversion_rate double precision, odds_ratio double precision, ci_low double precision, ci_high double precision, p_value double precision, correlation text)",
    positional: "VARIADIC steps text[]",
    options: &[
        Parameter::SOURCE,
        Parameter::column("person", "'person_id'"),
        Parameter::UNIT,
        Parameter::column("time", "'event_time'"),
        Parameter::column("event", "'event_name'"),
        Parameter {
            name: "window",
            sql_type: "interval",
            default: Some("'14 days'::interval"),
            meaning: "as `funnel`'s; a non-converter's span ends there",
        },
        Parameter { name: "order", sql_type: "text", default: Some("'ordered'"), meaning: "as `funnel`'s" },
        Parameter { name: "optional", sql_type: "integer[]", default: None, meaning: "as `funnel`'s" },
        Parameter { name: "exclude", sql_type: "text[]", default: None, meaning: "as `funnel`'s" },
        Parameter {
            name: "candidates",
            sql_type: "text[]",
            default: Some("ARRAY['event_name']"),
            meaning: "expressions whose values are tested (the `event` column: the events done)",
        },
        Parameter { name: "top", sql_type: "integer", default: Some("25"), meaning: "rows listed" },
        crate::table::cohorts::TIME_ZONE,
    ],
    summary: "Which events and property values go with converting in a funnel: counts, odds ratio with its confidence interval and p-value, ranked.",
    description: "per candidate value `(candidate, value, converters, non_converters, conversion_rate, odds_ratio, ci_low, ci_high, p_value, correlation)`: people who reached step 1, split by reaching the last step, each with their events from step 1 to converting (or to the window's end); odds ratio with every cell plus 0.5, Woolf's 95% interval and the p-value of its z; step events do not count as event candidates; ranked by p-value, then strength",
    contract: "`udfs/src/table/correlation.rs`",
};

/// The table function; `default_source` is the journey model's events view.
#[derive(Debug)]
pub struct FunnelCorrelation {
    default_source: String,
}

impl FunnelCorrelation {
    pub fn new(default_source: impl Into<String>) -> Self {
        FunnelCorrelation { default_source: default_source.into() }
    }
}

impl TableFunctionImpl for FunnelCorrelation {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let query = CorrelationQuery::parse(crate::table::cohorts::options(NAME, &args)?, &self.default_source)?;
        Ok(Arc::new(ReportTable::new(query)))
    }
}

/// The report's stages made again from its call, over an input of columns `input`.
pub(crate) fn stages(call: Options, input: &Schema) -> Result<Arc<dyn ReportStages>> {
    Arc::new(CorrelationQuery::parse(call, "")?).stages(input)
}

/// A validated call.
#[derive(Debug, Clone)]
pub struct CorrelationQuery {
    funnel: FunnelQuery,
    /// The candidate expressions, as given.
    candidates: Vec<String>,
    call: Options,
}

impl CorrelationQuery {
    fn parse(mut o: Options, default_source: &str) -> Result<CorrelationQuery> {
        let call = o.clone();
        if let Some((name, _)) = o.named().iter().find(|(n, _)| !OPTIONS.contains(&n.as_str())) {
            return Err(ArgumentError::new(
                NAME,
                name,
                format!("is not an option of {NAME} (options: {})", OPTIONS.join(", ")),
            )
            .into_datafusion());
        }
        let candidates = o.strings("candidates")?;
        let funnel = FunnelQuery::parse(o, default_source)?;
        let candidates = candidates.unwrap_or_else(|| vec![funnel.event.clone()]);
        if candidates.is_empty() || candidates.len() > MAX_CANDIDATES {
            return Err(ArgumentError::new(
                NAME,
                "candidates",
                format!("must hold 1 to {MAX_CANDIDATES} expressions, got {}", candidates.len()),
            )
            .into_datafusion());
        }
        if candidates.iter().any(|c| c.trim().is_empty()) {
            return Err(ArgumentError::new(NAME, "candidates", "must not hold an empty expression").into_datafusion());
        }
        Ok(CorrelationQuery { funnel, candidates, call })
    }

    /// Whether candidate `i` is the event column (whose step events do not count).
    fn is_event(&self, i: usize) -> bool {
        self.candidates[i].trim() == self.funnel.event.trim()
    }

    fn candidate_name(&self, i: usize) -> String {
        if self.is_event(i) { "event".to_string() } else { self.candidates[i].clone() }
    }
}

impl ReportQuery for CorrelationQuery {
    fn function(&self) -> &'static str {
        NAME
    }

    fn source(&self) -> &str {
        &self.funnel.source
    }

    fn person(&self) -> Option<&str> {
        Some(&self.funnel.person)
    }

    /// One row per source event: `(p, t, c0.., x.., l0..)`.
    fn input_sql(&self) -> String {
        let f = &self.funnel;
        let mut columns = vec![format!("({}) AS p", f.person), format!("({}) AS t", f.time)];
        for (k, (_, cond)) in f.steps.iter().enumerate() {
            columns.push(format!("coalesce({cond}, false) AS c{k}"));
        }
        for (k, cond) in f.exclusions.iter().enumerate() {
            columns.push(format!("coalesce({cond}, false) AS x{k}"));
        }
        for (k, c) in self.candidates.iter().enumerate() {
            columns.push(format!("CAST(({c}) AS VARCHAR) AS l{k}"));
        }
        format!(
            "SELECT * FROM (SELECT {} FROM {}) AS journey_input WHERE p IS NOT NULL AND t IS NOT NULL",
            columns.join(", "),
            source_relation(&f.source)
        )
    }

    fn schema(&self) -> SchemaRef {
        let float = |n: &str| Field::new(n, DataType::Float64, false);
        Arc::new(Schema::new(vec![
            Field::new("candidate", DataType::Utf8, false),
            Field::new("value", DataType::Utf8, false),
            Field::new("converters", DataType::Int64, false),
            Field::new("non_converters", DataType::Int64, false),
            float("conversion_rate"),
            float("odds_ratio"),
            float("ci_low"),
            float("ci_high"),
            float("p_value"),
            Field::new("correlation", DataType::Utf8, false),
        ]))
    }

    fn stages(self: Arc<Self>, input: &Schema) -> Result<Arc<dyn ReportStages>> {
        let key_schema = Arc::new(Schema::new(vec![input.field(0).clone()]));
        Ok(Arc::new(CorrelationKernel { query: self, key_schema }))
    }
}

#[derive(Debug)]
struct CorrelationKernel {
    query: Arc<CorrelationQuery>,
    key_schema: SchemaRef,
}

const NULL_LABEL: u32 = u32::MAX;

/// One partition's state: every person's events (a person's rows all land in one partition),
/// then, at the end of the partition, the counts.
struct Partial {
    units: Units,
    chains: Chains,
    labels: Labels,
    /// Per event: its unit, the event, and its candidates' labels (one per candidate).
    event_unit: Vec<u32>,
    events: Vec<Event>,
    event_labels: Vec<u32>,
    /// Per (candidate, label): (converters, non-converters) who have it.
    counts: HashMap<(u32, u32), (i64, i64)>,
    /// Converters and non-converters in all.
    totals: (i64, i64),
}

impl fmt::Debug for Partial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Partial").field("events", &self.events.len()).field("totals", &self.totals).finish()
    }
}

impl CorrelationKernel {
    fn fold(&self, partial: &mut Partial) {
        let q = &self.query;
        let spec = &q.funnel.spec;
        let m = q.candidates.len();
        let units = partial.units.len();
        let (start, order) = rows_by_group(units, partial.event_unit.iter().map(|&u| u as usize));
        let mut unit: Vec<u32> = vec![];
        let mut sorted: Vec<Event> = vec![];
        let mut has: HashSet<(u32, u32)> = HashSet::new();
        for u in 0..units {
            unit.clear();
            unit.extend_from_slice(&order[start[u] as usize..start[u + 1] as usize]);
            // The chain depends only on the order key; which values a span holds not at all.
            unit.sort_by_key(|&i| order_key(&partial.events[i as usize]));
            sorted.clear();
            sorted.extend(unit.iter().map(|&i| partial.events[i as usize]));
            let chain = partial.chains.run(spec, &sorted);
            if chain.level == 0 {
                continue;
            }
            let converted = chain.level == spec.steps;
            let entry = chain.times[0];
            let end = if converted { chain.times[spec.steps - 1] } else { entry.saturating_add(spec.window) };
            has.clear();
            for (&i, e) in unit.iter().zip(&sorted) {
                if e.t < entry || e.t > end {
                    continue;
                }
                for k in 0..m {
                    let label = partial.event_labels[i as usize * m + k];
                    if label != NULL_LABEL && !(e.steps != 0 && q.is_event(k)) {
                        has.insert((k as u32, label));
                    }
                }
            }
            if converted {
                partial.totals.0 += 1;
            } else {
                partial.totals.1 += 1;
            }
            for &key in &has {
                let slot = partial.counts.entry(key).or_default();
                if converted {
                    slot.0 += 1;
                } else {
                    slot.1 += 1;
                }
            }
        }
        partial.events = vec![];
        partial.event_unit = vec![];
        partial.event_labels = vec![];
    }
}

/// The state's columns: one row per (candidate, value) with its counts, and one row with
/// candidate -1 holding the totals.
fn state_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("candidate", DataType::Int32, false),
        Field::new("value", DataType::Utf8, true),
        Field::new("converters", DataType::Int64, false),
        Field::new("non_converters", DataType::Int64, false),
    ]))
}

/// `erfc(x)` for x >= 0, to about 1e-7 (Numerical Recipes' Chebyshev fit).
fn erfc(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.5 * x);
    let poly = -x * x - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    t * poly.exp()
}

/// A value's odds ratio, its interval's ends and its p-value.
type Odds = (f64, f64, f64, f64);

/// The figures of one value: `a`, `c` converters and non-converters who have it, of `total`.
pub fn odds(a: i64, c: i64, total: (i64, i64)) -> Odds {
    let (b, d) = ((total.0 - a) as f64 + 0.5, (total.1 - c) as f64 + 0.5);
    let (a, c) = (a as f64 + 0.5, c as f64 + 0.5);
    let ratio = (a * d) / (b * c);
    let se = (1.0 / a + 1.0 / b + 1.0 / c + 1.0 / d).sqrt();
    let z = ratio.ln() / se;
    let p = erfc(z.abs() / std::f64::consts::SQRT_2).min(1.0);
    (ratio, (ratio.ln() - 1.959_964 * se).exp(), (ratio.ln() + 1.959_964 * se).exp(), p)
}

impl ReportKernel for CorrelationKernel {
    type Partial = Partial;

    fn memory(&self, p: &Partial) -> usize {
        p.units.memory()
            + p.labels.memory()
            + vec_bytes(&p.event_unit)
            + vec_bytes(&p.events)
            + vec_bytes(&p.event_labels)
            + map_bytes(&p.counts)
    }

    fn name(&self) -> &'static str {
        NAME
    }

    fn call(&self) -> &Options {
        &self.query.call
    }

    fn schema(&self) -> SchemaRef {
        self.query.schema()
    }

    fn state_schema(&self) -> SchemaRef {
        state_schema()
    }

    fn new_partial(&self) -> Result<Partial> {
        Ok(Partial {
            units: Units::new(self.key_schema.clone())?,
            chains: Chains::default(),
            labels: Labels::default(),
            event_unit: vec![],
            events: vec![],
            event_labels: vec![],
            counts: HashMap::new(),
            totals: (0, 0),
        })
    }

    fn update(&self, partial: &mut Partial, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let f = &self.query.funnel;
        let (steps, exclusions, m) = (f.steps.len(), f.exclusions.len(), self.query.candidates.len());
        let times = input_times(NAME, batch.column(1))?;
        let units = partial.units.intern(&[batch.column(0).clone()])?;
        let rows = batch.num_rows();
        let conditions: Vec<&BooleanArray> =
            (2..2 + steps + exclusions).map(|k| batch.column(k).as_boolean()).collect();
        let labels: Vec<ArrayRef> = (0..m)
            .map(|k| cast(batch.column(2 + steps + exclusions + k), &DataType::Utf8View))
            .collect::<std::result::Result<_, _>>()?;
        partial.event_unit.extend(units.iter().map(|&u| u as u32));
        partial.events.extend(chain_events(&times, &conditions[..steps], &conditions[steps..]));
        for i in 0..rows {
            for l in &labels {
                let l = l.as_string_view();
                let id = if l.is_valid(i) { partial.labels.id(l.value(i)) } else { NULL_LABEL };
                partial.event_labels.push(id);
            }
        }
        Ok(())
    }

    fn end_partition(&self, partial: &mut Partial) -> Result<()> {
        self.fold(partial);
        Ok(())
    }

    fn encode(&self, partial: Partial) -> Result<RecordBatch> {
        let (mut candidate, mut value) = (Int32Builder::new(), StringBuilder::new());
        let (mut converters, mut non_converters) = (Int64Builder::new(), Int64Builder::new());
        for ((k, label), (a, c)) in &partial.counts {
            candidate.append_value(*k as i32);
            value.append_value(partial.labels.get(*label));
            converters.append_value(*a);
            non_converters.append_value(*c);
        }
        candidate.append_value(-1);
        value.append_null();
        converters.append_value(partial.totals.0);
        non_converters.append_value(partial.totals.1);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(candidate.finish()),
            Arc::new(value.finish()),
            Arc::new(converters.finish()),
            Arc::new(non_converters.finish()),
        ];
        Ok(RecordBatch::try_new(state_schema(), columns)?)
    }

    fn decode(&self, rows: &RecordBatch) -> Result<Partial> {
        let mut partial = self.new_partial()?;
        let candidate = rows.column(0).as_primitive::<Int32Type>();
        let value = rows.column(1).as_string::<i32>();
        let (a, c) = (rows.column(2).as_primitive::<Int64Type>(), rows.column(3).as_primitive::<Int64Type>());
        for i in 0..rows.num_rows() {
            if candidate.value(i) < 0 {
                partial.totals.0 += a.value(i);
                partial.totals.1 += c.value(i);
                continue;
            }
            let key = (candidate.value(i) as u32, partial.labels.id(value.value(i)));
            let slot = partial.counts.entry(key).or_default();
            slot.0 += a.value(i);
            slot.1 += c.value(i);
        }
        Ok(partial)
    }

    fn finish(&self, partials: Vec<Partial>) -> Result<RecordBatch> {
        let q = &self.query;
        let mut counts: HashMap<(u32, String), (i64, i64)> = HashMap::new();
        let mut totals = (0i64, 0i64);
        for p in &partials {
            totals.0 += p.totals.0;
            totals.1 += p.totals.1;
            for ((k, label), (a, c)) in &p.counts {
                let slot = counts.entry((*k, p.labels.get(*label).to_string())).or_default();
                slot.0 += a;
                slot.1 += c;
            }
        }
        let mut rows: Vec<(String, String, i64, i64, Odds)> = counts
            .into_iter()
            .map(|((k, v), (a, c))| (q.candidate_name(k as usize), v, a, c, odds(a, c, totals)))
            .collect();
        rows.sort_by(|x, y| {
            x.4.3
                .total_cmp(&y.4.3)
                .then_with(|| y.4.0.ln().abs().total_cmp(&x.4.0.ln().abs()))
                .then_with(|| x.0.cmp(&y.0))
                .then_with(|| x.1.cmp(&y.1))
        });
        rows.truncate(q.funnel.top);
        let (mut candidate, mut value) = (StringBuilder::new(), StringBuilder::new());
        let (mut converters, mut non_converters) = (Int64Builder::new(), Int64Builder::new());
        let mut floats: Vec<Float64Builder> = (0..5).map(|_| Float64Builder::new()).collect();
        let mut correlation = StringBuilder::new();
        for (k, v, a, c, (ratio, low, high, p)) in &rows {
            candidate.append_value(k);
            value.append_value(v);
            converters.append_value(*a);
            non_converters.append_value(*c);
            for (b, x) in floats.iter_mut().zip([*a as f64 / (a + c) as f64, *ratio, *low, *high, *p]) {
                b.append_value(x);
            }
            correlation.append_value(if *ratio > 1.0 {
                "success"
            } else if *ratio < 1.0 {
                "failure"
            } else {
                "none"
            });
        }
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(candidate.finish()),
            Arc::new(value.finish()),
            Arc::new(converters.finish()),
            Arc::new(non_converters.finish()),
        ];
        columns.extend(floats.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
        columns.push(Arc::new(correlation.finish()));
        Ok(RecordBatch::try_new(q.schema(), columns)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odds_ratio_interval_and_p_value() {
        // 30 of 40 converters and 10 of 60 non-converters have it.
        let (ratio, low, high, p) = odds(30, 10, (40, 60));
        let want = (30.5 * 50.5) / (10.5 * 10.5);
        assert!((ratio - want).abs() < 1e-9, "{ratio}");
        assert!(low < ratio && ratio < high && low > 1.0, "{low} {high}");
        assert!(p < 1e-6, "{p}");
        // No difference: ratio 1, p 1.
        let (ratio, _, _, p) = odds(10, 15, (20, 30));
        assert!((ratio - 1.0).abs() < 0.1 && p > 0.5, "{ratio} {p}");
        // erfc against known values.
        assert!((erfc(0.0) - 1.0).abs() < 1e-7);
        assert!((erfc(1.0) - 0.157_299_207).abs() < 1e-7);
        assert!((erfc(1.959_964 / std::f64::consts::SQRT_2) - 0.05).abs() < 1e-6);
    }
}
