//! `attribute`: the attribution report, credited conversions and revenue per channel (or any
//! dimension) under one or several models.
//!
//! # Contract
//!
//! ```sql
//! SELECT * FROM attribute(model [, model ...] [, name => value ...])
//! SELECT * FROM attribute(model => 'all' [, name => value ...])
//! ```
//!
//! Reads the journey model (`journey.events`: identities stitched, touches, conversions and
//! milestones from the configuration) or any relation given as `source`, and returns
//! `(model, <by>, conversions, revenue, share, removal_effect)`: per model, one row per
//! dimension value, ordered by credited conversions (descending), then value.
//!
//! - **Models**: every rule-based model of `common::attribution` (`first_touch`,
//!   `last_touch`, `last_non_direct`, `linear`, `position_based`/`u_shaped`, `j_shaped`,
//!   `inverse_j`, `time_decay` (option `half_life`, default 7 days), `w_shaped`,
//!   `full_path`/`z_shaped`, `custom` (option `weights => ARRAY[first, middle, last]`)), and the
//!   data-driven `markov` (`common::markov`, option `order`, default 1), `shapley` (the
//!   simplified Shapley of Zhao et al.: each conversion split equally over the journey's distinct
//!   values; converting journeys only) and `shapley_probability` (`common::shapley`: the
//!   conversion-probability game over converting and non-converting journeys). `'all'` gives
//!   every model except `custom`, side by side (rows of each model together, in the order
//!   first_touch, last_touch, last_non_direct, linear, position_based, time_decay, j_shaped,
//!   inverse_j, w_shaped, full_path, shapley, shapley_probability, markov).
//! - **Journeys**: a person's events are ordered by time; at equal times touches come first,
//!   then milestones, then conversions (so a touch at the conversion's second counts), touches by
//!   value. Each conversion's journey is the person's touches at or before it, no older than
//!   `lookback` (default 90 days, GA4's default) and, with `since_previous_conversion` (default
//!   true), after the person's previous conversion; then the last `lookback_steps` touches (0,
//!   the default: all); then the `transforms` in order (`common::path_transform`).
//! - **Milestones** (`w_shaped`, `full_path`): the touch of a milestone is the journey's last
//!   touch at or before the first `lead` (`opportunity`, `closed_won`) event within the journey's
//!   time span; the small-n, coinciding and fallback rules are those of `common::attribution`.
//! - **Non-converting journeys** (used by `markov` and `shapley_probability` only): a person's
//!   touches after their last conversion (all of them for a person who never converted), no
//!   older than `lookback` before the last of them, then steps and transforms as above.
//! - **Touchless conversions** are credited in full to `(direct)` under every model, never
//!   dropped. A touch whose dimension is NULL counts as `(none)`.
//! - **Exact credits**: `conversions` (numeric, 6 decimals) and `revenue` (numeric, 2
//!   decimals, the conversion `value` rounded to cents) add up **exactly**, per model, to the
//!   conversions and the revenue attributed. Each journey's credits are integers (10^-12 of a
//!   conversion, 10^-10 of a cent) adding up to its conversion and value; the sums are rounded
//!   to the output units by the largest-remainder method (ties by value). The data-driven models
//!   share the touched conversions and their revenue in proportion to their weights (removal
//!   effects, Shapley values; negative Shapley values count as 0) the same way. `share` is the
//!   model's conversions over all conversions; `removal_effect` is `markov`'s (NULL otherwise).
//! - **Spend** (`spend => 'ad_spend'`, a table or query with `day` (a date), the dimension
//!   (`by`, e.g. `channel` or `campaign`) and `spend`): three more columns, `spend`
//!   (numeric, 2 decimals: the dimension value's spend summed over the report's time range, the
//!   UTC days from the first to the last event the report reads), `roas` (credited revenue /
//!   spend: 0 for spend that earned nothing, NULL without spend or with spend 0) and
//!   `cost_per_conversion` (spend / credited conversions, to the cent; NULL without spend or
//!   conversions). A value with spend in range but no credit under a model gets a row of its own
//!   in that model (0 conversions and revenue). [`spend::SpendExec`] joins them, in the server.
//! - Deterministic: the answer depends only on the rows (a total order on everything read; exact
//!   integer sums; the solvers see the paths in sorted order).
//!
//! Its options, their types and defaults are listed in [`DOC`] (`docs/functions.md`, `\df+`).

use crate::common::attribution::{
    CLOSED_WON, DEFAULT_HALF_LIFE_MICROS, LEAD, Model, OPPORTUNITY, Touch, normalise, shares,
};
use crate::common::markov::{Chain, MarkovPath, removal_effects};
use crate::common::options::Options;
use crate::common::path_transform::{PathTouch, Transform, TransformSpec, apply};
use crate::common::rounding::{largest_remainder, round_units, split};
use crate::common::shapley::{ChannelSet, EXACT_CHANNELS, shapley_values};
use crate::docs::{self, FunctionDoc, Parameter};
use crate::error::ArgumentError;
use crate::physical::keep_rows::KeepRows;
use crate::physical::report::{
    Labels, ReportKernel, ReportQuery, ReportStages, ReportTable, Units, input_times, map_bytes, rows_by_group,
    source_relation, state_item, vec_bytes,
};
use crate::table::funnel::is_predicate;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Decimal128Builder, Float64Builder, Int64Builder, ListBuilder, RecordBatch, StringBuilder,
    UInt8Builder, UInt32Builder, UInt64Builder,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Field, Schema, SchemaRef};
use datafusion::arrow::datatypes::{UInt8Type, UInt32Type, UInt64Type};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{HashMap, ScalarValue};
use datafusion::error::Result;
use datafusion::physical_plan::ExecutionPlan;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

pub const NAME: &str = "attribute";

/// This function's reference ([`crate::docs`]).
pub const DOC: FunctionDoc = FunctionDoc {
    name: NAME,
    kind: docs::Kind::Report,
    usage: "attribute(model [, model ...] [, name => value, ...])",
    result: "TABLE(model text, channel text, conversions numeric, revenue numeric, share double precision, removal_effect double precision)",
    positional: "VARIADIC models text[]",
    options: &[
        Parameter {
            name: "model",
            sql_type: "text",
            default: None,
            meaning: "the models, instead of positional arguments (`model => 'all'`)",
        },
        Parameter::SOURCE,
        Parameter::column("person", "'person_id'"),
        Parameter::UNIT,
        Parameter::column("time", "'event_time'"),
        Parameter {
            name: "event",
            sql_type: "text",
            default: Some("'event_name'"),
            meaning: "the event column, for `conversion` event names",
        },
        Parameter {
            name: "by",
            sql_type: "text",
            default: Some("'channel'"),
            meaning: "the dimension credited: a column or expression (`stage` means `stage_reached`, the person's stage at the touch)",
        },
        Parameter { name: "touch", sql_type: "text", default: Some("'is_touch'"), meaning: "which rows are touches" },
        Parameter {
            name: "conversion",
            sql_type: "text[]",
            default: None,
            meaning: "event names or predicates (text or array)",
        },
        Parameter { name: "value", sql_type: "text", default: Some("'revenue'"), meaning: "the conversion's value" },
        Parameter {
            name: "lookback",
            sql_type: "interval",
            default: Some("'90 days'::interval"),
            meaning: "interval or seconds",
        },
        Parameter {
            name: "lookback_steps",
            sql_type: "integer",
            default: Some("0"),
            meaning: "keep the journey's last n touches (0: all)",
        },
        Parameter {
            name: "since_previous_conversion",
            sql_type: "boolean",
            default: Some("true"),
            meaning: "a journey starts after the previous conversion",
        },
        Parameter {
            name: "transforms",
            sql_type: "text[]",
            default: None,
            meaning: "e.g. `ARRAY['exposure', 'remove_if_last_and_not_all(Direct)']`",
        },
        Parameter {
            name: "half_life",
            sql_type: "interval",
            default: Some("'7 days'::interval"),
            meaning: "`time_decay`'s half-life",
        },
        Parameter {
            name: "weights",
            sql_type: "double precision[]",
            default: None,
            meaning: "`custom`'s first, middle and last weights",
        },
        Parameter { name: "order", sql_type: "integer", default: Some("1"), meaning: "`markov`'s order, 1 to 4" },
        Parameter {
            name: "direct",
            sql_type: "text",
            default: Some("'channel = ''Direct'''"),
            meaning: "which touches are Direct, for `last_non_direct`",
        },
        Parameter {
            name: "spend",
            sql_type: "text",
            default: None,
            meaning: "ad spend (`day`, the `by` dimension, `spend`): adds `spend`, `roas` and `cost_per_conversion`",
        },
        Parameter {
            name: "milestone",
            sql_type: "text",
            default: Some("'milestone'"),
            meaning: "`'lead'`, `'opportunity'` or `'closed_won'` per row, for `w_shaped` and `full_path`",
        },
    ],
    summary: "Attribution report: credited conversions and revenue per model and dimension value, under rule-based, Markov and Shapley models.",
    description: "credited `conversions` (numeric, 6 decimals) and `revenue` (numeric, cents) per `model` and dimension value (`by`, default `channel`; any column or expression: `campaign`, `page_url`, `stage`, ...), with `share` and Markov's `removal_effect`; every rule model of the window form of `attribute` plus `markov` (removal effects of the absorbing chain solved exactly, order `k` 1 to 4, non-converting journeys included), `shapley` (Zhao's simplified Shapley: each conversion split over its distinct values), `shapley_probability` (Shapley values of the conversion-rate game over converting and non-converting journeys, exact up to 20 values, seeded sampling beyond) and `'all'`; with `spend` (a table of `day`, the dimension and `spend`), also `spend`, `roas` (credited revenue / spend) and `cost_per_conversion` over the report's days; one journey per conversion (touches since the previous conversion, `lookback` default 90 days, `lookback_steps`), `transforms` (`exposure`, `unique`, `first`, `frequency`, `remove_if_not_all(X)`, `remove_if_last_and_not_all(X)`), touchless conversions to `(direct)`; each model's credits add up exactly to the conversions and revenue (contract in `udfs/src/table/attribute.rs`)",
    contract: "`udfs/src/table/attribute.rs`",
};
pub const DIRECT: &str = "(direct)";
pub const NONE: &str = "(none)";
const DEFAULT_LOOKBACK_MICROS: i64 = 90 * 86_400_000_000;
const MAX_ORDER: i64 = 4;
/// Internal units: a journey's conversion is 10^12 units, a cent of its value 10^10.
const CONVERSION_UNITS: i128 = 1_000_000_000_000;
const CENT_UNITS: i128 = 10_000_000_000;
/// Output scales.
const CONVERSION_SCALE: i8 = 6;
const REVENUE_SCALE: i8 = 2;
const OUTPUT_CONVERSION: i128 = 1_000_000;
/// The models of `'all'`, in output order.
const ALL: [&str; 13] = [
    "first_touch",
    "last_touch",
    "last_non_direct",
    "linear",
    "position_based",
    "time_decay",
    "j_shaped",
    "inverse_j",
    "w_shaped",
    "full_path",
    "shapley",
    "shapley_probability",
    "markov",
];
const MODELS: &str = "first_touch, last_touch, last_non_direct, linear, position_based, u_shaped, j_shaped, \
                      inverse_j, time_decay, w_shaped, full_path, z_shaped, custom, shapley, shapley_probability, \
                      markov, all";

/// The table function; `default_source` is the journey model's events view.
#[derive(Debug)]
pub struct AttributeReport {
    default_source: String,
}

impl AttributeReport {
    pub fn new(default_source: impl Into<String>) -> Self {
        AttributeReport { default_source: default_source.into() }
    }
}

mod query;
pub mod spend;

use query::*;

impl TableFunctionImpl for AttributeReport {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let query = AttributeQuery::parse(Options::parse(NAME, &args)?, &self.default_source)?;
        Ok(Arc::new(ReportTable::new(query)))
    }
}

/// The report's stages made again from its call, over an input of columns `input`.
pub(crate) fn stages(call: Options, input: &Schema) -> Result<Arc<dyn ReportStages>> {
    Arc::new(AttributeQuery::parse(call, "")?).stages(input)
}

impl ReportQuery for AttributeQuery {
    fn function(&self) -> &'static str {
        NAME
    }

    fn source(&self) -> &str {
        &self.source
    }

    fn person(&self) -> Option<&str> {
        Some(&self.person)
    }

    /// One row per source event: person, time, what it is. The rows that are neither touch,
    /// conversion nor milestone are dropped after it, by its [`ReportQuery::keep`].
    fn input_sql(&self) -> String {
        let mut columns = vec![
            format!("({}) AS p", self.person),
            format!("({}) AS t", self.time),
            format!("coalesce(({}), false) AS k", self.touch),
            format!("coalesce(({}), false) AS c", self.conversion),
            format!("CAST(({}) AS VARCHAR) AS b", self.by),
            format!(
                "CASE WHEN coalesce(({}), false) THEN CAST(coalesce(({}), 0) AS DECIMAL(38, {REVENUE_SCALE})) END AS v",
                self.conversion, self.value
            ),
        ];
        if let Some(d) = &self.direct {
            columns.push(format!("coalesce(({d}), false) AS d"));
        }
        if let Some(m) = &self.milestone {
            columns.push(format!("CAST(({m}) AS VARCHAR) AS m"));
        }
        format!("SELECT {} FROM {}", columns.join(", "), source_relation(&self.source))
    }

    /// The input rows the report reads: person and time present, and a touch, a conversion or
    /// a milestone (`p, t, k, c, b, v, [d], [m]`).
    fn keep(&self) -> Option<KeepRows> {
        let milestone = self.milestone.as_ref().map(|_| 6 + usize::from(self.direct.is_some()));
        Some(KeepRows { required: vec![0, 1], any_true: vec![2, 3], any_valid: milestone.into_iter().collect() })
    }

    /// The report's columns; with `spend`, also `spend`, `roas` and `cost_per_conversion`.
    fn schema(&self) -> SchemaRef {
        let mut fields = self.credit_fields(false);
        if self.spend.is_some() {
            fields.extend(spend::fields());
        }
        Arc::new(Schema::new(fields))
    }

    fn stages(self: Arc<Self>, input: &Schema) -> Result<Arc<dyn ReportStages>> {
        let key_schema = Arc::new(Schema::new(vec![input.field(0).clone()]));
        Ok(Arc::new(AttributeKernel { query: self, key_schema }))
    }

    fn joined_sql(&self) -> Option<String> {
        self.spend.as_ref().map(|spend| spend::input_sql(spend, &self.by))
    }

    fn join(&self, report: Arc<dyn ExecutionPlan>, joined: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(spend::SpendExec::new(
            report,
            joined,
            self.models.iter().map(|m| m.name.clone()).collect(),
            self.schema(),
        )))
    }
}

impl AttributeQuery {
    /// The credit columns; `ranged`: as the kernel answers with `spend`, with the time range
    /// read on a row of its own (`model` NULL) in two more columns ([`spend::SpendExec`]).
    fn credit_fields(&self, ranged: bool) -> Vec<Field> {
        let mut fields = vec![
            Field::new("model", DataType::Utf8, ranged),
            Field::new(&self.by_name, DataType::Utf8, ranged),
            Field::new("conversions", DataType::Decimal128(38, CONVERSION_SCALE), false),
            Field::new("revenue", DataType::Decimal128(38, REVENUE_SCALE), false),
            Field::new("share", DataType::Float64, true),
            Field::new("removal_effect", DataType::Float64, true),
        ];
        if ranged {
            fields.push(Field::new("first_time", DataType::Int64, true));
            fields.push(Field::new("last_time", DataType::Int64, true));
        }
        fields
    }

    /// What the kernel answers.
    fn kernel_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(self.credit_fields(self.spend.is_some())))
    }
}

#[derive(Debug)]
struct AttributeKernel {
    query: Arc<AttributeQuery>,
    key_schema: SchemaRef,
}

/// What an input row is, in the order rows of equal time are read.
const TOUCH: u8 = 0;
const MILESTONE: u8 = 1;
const CONVERSION: u8 = 2;

#[derive(Debug, Clone, Copy)]
struct Ev {
    t: i64,
    role: u8,
    /// Touch: its label; milestone: its bit.
    label: u32,
    direct: bool,
    /// Conversion: its value in cents.
    cents: i128,
}

/// Exact credits of one model, per label id.
#[derive(Debug, Default, Clone)]
struct Credits {
    conversions: Vec<i128>,
    cents: Vec<i128>,
}

impl Credits {
    fn add(&mut self, label: u32, conversions: i128, cents: i128) {
        let i = label as usize;
        if self.conversions.len() <= i {
            self.conversions.resize(i + 1, 0);
            self.cents.resize(i + 1, 0);
        }
        self.conversions[i] += conversions;
        self.cents[i] += cents;
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct PathCount {
    conversions: u64,
    nulls: u64,
    cents: i128,
}

struct Partial {
    labels: Labels,
    transforms: Vec<Transform>,
    units: Units,
    event_unit: Vec<u32>,
    events: Vec<Ev>,
    /// Per model (rule models and `shapley`).
    credits: Vec<Credits>,
    /// Distinct paths (label << 32 | frequency count) for the data-driven models.
    paths: HashMap<Vec<u64>, PathCount>,
    touchless: u64,
    touchless_cents: i128,
    /// With spend: the first and last times read.
    span: Option<(i64, i64)>,
}

impl fmt::Debug for Partial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Partial").field("events", &self.events.len()).finish()
    }
}

impl Partial {
    /// Widens the span of times read to cover `first..=last`.
    fn widen(&mut self, first: i64, last: i64) {
        self.span = Some(match self.span {
            Some((a, b)) => (a.min(first), b.max(last)),
            None => (first, last),
        });
    }

    fn fold(&mut self, q: &AttributeQuery) {
        let units = self.units.len();
        if self.events.is_empty() {
            return;
        }
        let (start, order) = rows_by_group(units, self.event_unit.iter().map(|&u| u as usize));
        let events = std::mem::take(&mut self.events);
        self.event_unit = vec![];
        // The labels are only read here; `journey` needs the rest of `self`.
        let labels = std::mem::take(&mut self.labels);
        let cmp = |a: &Ev, b: &Ev| {
            a.t.cmp(&b.t)
                .then(a.role.cmp(&b.role))
                .then_with(|| match a.role {
                    TOUCH => labels.get(a.label).cmp(labels.get(b.label)),
                    _ => a.label.cmp(&b.label),
                })
                .then(a.direct.cmp(&b.direct))
                .then(a.cents.cmp(&b.cents))
        };
        let mut person: Vec<Ev> = vec![];
        let mut touches: Vec<PathTouch> = vec![];
        let mut milestones: Vec<(i64, u8, usize)> = vec![];
        let needs_paths = q.needs_paths();
        for u in 0..units {
            person.clear();
            person.extend(order[start[u] as usize..start[u + 1] as usize].iter().map(|&i| events[i as usize]));
            if !person.is_sorted_by(|a, b| cmp(a, b) != Ordering::Greater) {
                person.sort_by(cmp);
            }
            touches.clear();
            milestones.clear();
            let mut previous: Option<i64> = None;
            for e in &person {
                match e.role {
                    TOUCH => touches.push(PathTouch {
                        label: e.label,
                        count: 0,
                        touch: Touch { t: e.t, direct: e.direct, milestones: 0 },
                    }),
                    MILESTONE => milestones.push((e.t, e.label as u8, touches.len())),
                    _ => {
                        let from = e.t.saturating_sub(q.lookback);
                        let after = if q.reset { previous } else { None };
                        let in_span = |t: i64| t >= from && after.is_none_or(|p| t > p);
                        let first = touches.partition_point(|p| !in_span(p.touch.t));
                        let mut journey = touches[first..].to_vec();
                        for bit in [LEAD, OPPORTUNITY, CLOSED_WON] {
                            if let Some(&(_, _, seen)) =
                                milestones.iter().find(|&&(t, b, _)| b == bit && in_span(t) && t <= e.t)
                                && seen > first
                            {
                                journey[seen - 1 - first].touch.milestones |= bit;
                            }
                        }
                        self.journey(q, journey, e.t, e.cents, true, needs_paths);
                        previous = Some(e.t);
                    }
                }
            }
            if needs_paths {
                let first = touches.partition_point(|p| previous.is_some_and(|c| p.touch.t <= c));
                if let Some(last) = touches[first..].last().map(|p| p.touch.t) {
                    let from = last.saturating_sub(q.lookback);
                    let tail: Vec<PathTouch> = touches[first..].iter().filter(|p| p.touch.t >= from).copied().collect();
                    self.journey(q, tail, last, 0, false, true);
                }
            }
        }
        self.labels = labels;
    }

    /// Credits one journey (a conversion at `t` worth `cents`, or a journey that did not convert).
    fn journey(
        &mut self,
        q: &AttributeQuery,
        mut path: Vec<PathTouch>,
        t: i64,
        cents: i128,
        converted: bool,
        paths: bool,
    ) {
        if q.lookback_steps > 0 && path.len() > q.lookback_steps {
            path.drain(..path.len() - q.lookback_steps);
        }
        for transform in &self.transforms {
            apply(transform, &mut path);
        }
        if path.is_empty() {
            if converted {
                self.touchless += 1;
                self.touchless_cents += cents;
            }
            return;
        }
        if paths {
            let key: Vec<u64> = path.iter().map(|p| (u64::from(p.label) << 32) | u64::from(p.count)).collect();
            let entry = self.paths.entry(key).or_default();
            if converted {
                entry.conversions += 1;
                entry.cents += cents;
            } else {
                entry.nulls += 1;
            }
        }
        if !converted {
            return;
        }
        let touches: Vec<Touch> = path.iter().map(|p| p.touch).collect();
        for (m, model) in q.models.iter().enumerate() {
            let weights = match model.kind {
                Kind::Rule(rule) => shares(rule, &touches, t).shares,
                Kind::Shapley => {
                    // An equal share to each value's first touch.
                    let mut w: Vec<f64> = (0..path.len())
                        .map(|i| if path[..i].iter().any(|p| p.label == path[i].label) { 0.0 } else { 1.0 })
                        .collect();
                    normalise(&mut w);
                    w
                }
                Kind::Markov | Kind::ShapleyProbability => continue,
            };
            let credits = &mut self.credits[m];
            split(&weights, CONVERSION_UNITS, |i, c| credits.add(path[i].label, c, 0));
            split(&weights, cents * CENT_UNITS, |i, c| credits.add(path[i].label, 0, c));
        }
    }
}

/// What a row of the partial state holds ([`state_schema`]).
const CREDIT_ROW: u8 = 0;
const PATH_ROW: u8 = 1;
const TOUCHLESS_ROW: u8 = 2;
const SPAN_ROW: u8 = 3;

/// The partial state's columns. Each row is one of: a model's credit to a value (`model`,
/// `label`, `conversions` and `cents` in the rule models' exact units); a distinct path (its
/// values and their frequency counts, how many journeys on it converted, did not, and their
/// cents); the conversions without touches (`conversions`, `cents`); with spend, the first
/// and last times read (microseconds, in `conversions` and `cents`).
fn state_schema() -> SchemaRef {
    let exact = DataType::Decimal128(38, 0);
    let list = |t: DataType| DataType::List(state_item(t));
    Arc::new(Schema::new(vec![
        Field::new("kind", DataType::UInt8, false),
        Field::new("model", DataType::UInt32, true),
        Field::new("label", DataType::Utf8, true),
        Field::new("path", list(DataType::Utf8), true),
        Field::new("counts", list(DataType::UInt32), true),
        Field::new("conversions", exact.clone(), false),
        Field::new("nulls", DataType::UInt64, false),
        Field::new("cents", exact, false),
    ]))
}

impl ReportKernel for AttributeKernel {
    type Partial = Partial;

    fn memory(&self, p: &Partial) -> usize {
        let credits: usize = p.credits.iter().map(|c| vec_bytes(&c.conversions) + vec_bytes(&c.cents)).sum();
        // The paths are counted once, at the end of the partition.
        let paths: usize = p.paths.keys().map(vec_bytes).sum();
        p.labels.memory()
            + p.units.memory()
            + vec_bytes(&p.event_unit)
            + vec_bytes(&p.events)
            + vec_bytes(&p.credits)
            + credits
            + map_bytes(&p.paths)
            + paths
    }

    fn name(&self) -> &'static str {
        NAME
    }

    fn call(&self) -> &Options {
        &self.query.call
    }

    fn schema(&self) -> SchemaRef {
        self.query.kernel_schema()
    }

    fn state_schema(&self) -> SchemaRef {
        state_schema()
    }

    fn encode(&self, partial: Partial) -> Result<RecordBatch> {
        let (mut kind, mut model) = (UInt8Builder::new(), UInt32Builder::new());
        let mut label = StringBuilder::new();
        let mut path = ListBuilder::new(StringBuilder::new()).with_field(state_item(DataType::Utf8));
        let mut counts = ListBuilder::new(UInt32Builder::new()).with_field(state_item(DataType::UInt32));
        let (mut conversions, mut cents) = (Decimal128Builder::new(), Decimal128Builder::new());
        let mut nulls = UInt64Builder::new();
        let labels = &partial.labels;
        for (m, c) in partial.credits.iter().enumerate() {
            for (l, (&conv, &value)) in c.conversions.iter().zip(&c.cents).enumerate() {
                if conv == 0 && value == 0 {
                    continue;
                }
                kind.append_value(CREDIT_ROW);
                model.append_value(m as u32);
                label.append_value(labels.get(l as u32));
                path.append_null();
                counts.append_null();
                conversions.append_value(conv);
                nulls.append_value(0);
                cents.append_value(value);
            }
        }
        for (key, count) in &partial.paths {
            kind.append_value(PATH_ROW);
            model.append_null();
            label.append_null();
            for k in key {
                path.values().append_value(labels.get((k >> 32) as u32));
                counts.values().append_value((k & 0xffff_ffff) as u32);
            }
            path.append(true);
            counts.append(true);
            conversions.append_value(i128::from(count.conversions));
            nulls.append_value(count.nulls);
            cents.append_value(count.cents);
        }
        if partial.touchless != 0 || partial.touchless_cents != 0 {
            kind.append_value(TOUCHLESS_ROW);
            model.append_null();
            label.append_null();
            path.append_null();
            counts.append_null();
            conversions.append_value(i128::from(partial.touchless));
            nulls.append_value(0);
            cents.append_value(partial.touchless_cents);
        }
        if let Some((first, last)) = partial.span {
            kind.append_value(SPAN_ROW);
            model.append_null();
            label.append_null();
            path.append_null();
            counts.append_null();
            conversions.append_value(i128::from(first));
            nulls.append_value(0);
            cents.append_value(i128::from(last));
        }
        let exact = |b: &mut Decimal128Builder| b.finish().with_precision_and_scale(38, 0);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(kind.finish()),
            Arc::new(model.finish()),
            Arc::new(label.finish()),
            Arc::new(path.finish()),
            Arc::new(counts.finish()),
            Arc::new(exact(&mut conversions)?),
            Arc::new(nulls.finish()),
            Arc::new(exact(&mut cents)?),
        ];
        Ok(RecordBatch::try_new(state_schema(), columns)?)
    }

    fn decode(&self, rows: &RecordBatch) -> Result<Partial> {
        let mut partial = self.new_partial()?;
        let kind = rows.column(0).as_primitive::<UInt8Type>();
        let model = rows.column(1).as_primitive::<UInt32Type>();
        let label = rows.column(2).as_string::<i32>();
        let path = rows.column(3).as_list::<i32>();
        let counts = rows.column(4).as_list::<i32>();
        let conversions = rows.column(5).as_primitive::<Decimal128Type>();
        let nulls = rows.column(6).as_primitive::<UInt64Type>();
        let cents = rows.column(7).as_primitive::<Decimal128Type>();
        let broken = || datafusion::error::DataFusionError::Internal(format!("{NAME}: a malformed partial state"));
        for i in 0..rows.num_rows() {
            match kind.value(i) {
                CREDIT_ROW => {
                    let id = partial.labels.id(label.value(i));
                    let credits = partial.credits.get_mut(model.value(i) as usize).ok_or_else(broken)?;
                    credits.add(id, conversions.value(i), cents.value(i));
                }
                PATH_ROW => {
                    let names = path.value(i);
                    let names = names.as_string::<i32>();
                    let n = counts.value(i);
                    let n = n.as_primitive::<UInt32Type>();
                    if names.len() != n.len() {
                        return Err(broken());
                    }
                    let key: Vec<u64> = (0..names.len())
                        .map(|j| (u64::from(partial.labels.id(names.value(j))) << 32) | u64::from(n.value(j)))
                        .collect();
                    let e = partial.paths.entry(key).or_default();
                    e.conversions += u64::try_from(conversions.value(i)).map_err(|_| broken())?;
                    e.nulls += nulls.value(i);
                    e.cents += cents.value(i);
                }
                TOUCHLESS_ROW => {
                    partial.touchless += u64::try_from(conversions.value(i)).map_err(|_| broken())?;
                    partial.touchless_cents += cents.value(i);
                }
                SPAN_ROW => {
                    let time = |v: i128| i64::try_from(v).map_err(|_| broken());
                    partial.widen(time(conversions.value(i))?, time(cents.value(i))?);
                }
                _ => return Err(broken()),
            }
        }
        Ok(partial)
    }

    fn new_partial(&self) -> Result<Partial> {
        let mut labels = Labels::default();
        let transforms = self.query.transforms.iter().map(|t| t.resolve(|l| labels.id(l))).collect();
        Ok(Partial {
            labels,
            transforms,
            units: Units::new(self.key_schema.clone())?,
            event_unit: vec![],
            events: vec![],
            credits: vec![Credits::default(); self.query.models.len()],
            paths: HashMap::new(),
            touchless: 0,
            touchless_cents: 0,
            span: None,
        })
    }

    fn update(&self, partial: &mut Partial, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let q = &self.query;
        let times = input_times(NAME, batch.column(1))?;
        let touch = batch.column(2).as_boolean();
        let conversion = batch.column(3).as_boolean();
        let label = cast(batch.column(4), &DataType::Utf8View)?;
        let label = label.as_string_view();
        let value = batch.column(5).as_primitive::<Decimal128Type>();
        let mut col = 6;
        let direct = q.direct.as_ref().map(|_| {
            col += 1;
            batch.column(col - 1).as_boolean()
        });
        let milestone = match &q.milestone {
            Some(_) => Some(cast(batch.column(col), &DataType::Utf8View)?),
            None => None,
        };
        let milestone = milestone.as_ref().map(|m| m.as_string_view());
        if q.spend.is_some()
            && let (Some(&first), Some(&last)) = (times.iter().min(), times.iter().max())
        {
            partial.widen(first, last);
        }
        let units = partial.units.intern(&[batch.column(0).clone()])?;
        for (i, &unit) in units.iter().enumerate() {
            let unit = unit as u32;
            let t = times[i];
            if touch.value(i) {
                let l = if label.is_valid(i) { label.value(i) } else { NONE };
                let ev = Ev {
                    t,
                    role: TOUCH,
                    label: partial.labels.id(l),
                    direct: direct.is_some_and(|d| d.value(i)),
                    cents: 0,
                };
                partial.events.push(ev);
                partial.event_unit.push(unit);
            }
            if let Some(m) = milestone
                && m.is_valid(i)
            {
                let bit = match m.value(i).to_ascii_lowercase().as_str() {
                    "lead" => LEAD,
                    "opportunity" => OPPORTUNITY,
                    "closed_won" => CLOSED_WON,
                    _ => 0,
                };
                if bit != 0 {
                    partial.events.push(Ev { t, role: MILESTONE, label: u32::from(bit), direct: false, cents: 0 });
                    partial.event_unit.push(unit);
                }
            }
            if conversion.value(i) {
                let cents = if value.is_valid(i) { value.value(i) } else { 0 };
                partial.events.push(Ev { t, role: CONVERSION, label: 0, direct: false, cents });
                partial.event_unit.push(unit);
            }
        }
        Ok(())
    }

    fn end_partition(&self, partial: &mut Partial) -> Result<()> {
        partial.fold(&self.query);
        Ok(())
    }

    fn finish(&self, partials: Vec<Partial>) -> Result<RecordBatch> {
        let q = &self.query;
        // Global labels, in text order.
        let mut names: Vec<String> = partials.iter().flat_map(|p| p.labels.labels.iter().cloned()).collect();
        names.push(DIRECT.to_string());
        names.sort_unstable();
        names.dedup();
        let global = |text: &str| names.binary_search_by(|n| n.as_str().cmp(text)).expect("every label is listed");
        let mut credits: Vec<(Vec<i128>, Vec<i128>)> =
            vec![(vec![0; names.len()], vec![0; names.len()]); q.models.len()];
        let mut paths: BTreeMap<Vec<u64>, PathCount> = BTreeMap::new();
        let (mut touchless, mut touchless_cents) = (0u64, 0i128);
        let mut span: Option<(i64, i64)> = None;
        for p in &partials {
            if let Some((a, b)) = p.span {
                span = Some(span.map_or((a, b), |(x, y)| (x.min(a), y.max(b))));
            }
            let ids: Vec<usize> = p.labels.labels.iter().map(|l| global(l)).collect();
            for (m, c) in p.credits.iter().enumerate() {
                for (local, (&conv, &cents)) in c.conversions.iter().zip(&c.cents).enumerate() {
                    credits[m].0[ids[local]] += conv;
                    credits[m].1[ids[local]] += cents;
                }
            }
            for (key, count) in &p.paths {
                let key: Vec<u64> =
                    key.iter().map(|k| ((ids[(k >> 32) as usize] as u64) << 32) | (k & 0xffff_ffff)).collect();
                let e = paths.entry(key).or_default();
                e.conversions += count.conversions;
                e.nulls += count.nulls;
                e.cents += count.cents;
            }
            touchless += p.touchless;
            touchless_cents += p.touchless_cents;
        }
        let direct = global(DIRECT);
        let touched: u64 = paths.values().map(|c| c.conversions).sum();
        let touched_cents: i128 = paths.values().map(|c| c.cents).sum();

        let (mut model_col, mut label_col) = (StringBuilder::new(), StringBuilder::new());
        let mut conv_col = Decimal128Builder::new();
        let mut revenue_col = Decimal128Builder::new();
        let (mut share_col, mut effect_col) = (Float64Builder::new(), Float64Builder::new());
        for (m, model) in q.models.iter().enumerate() {
            // Per global label: output conversions (10^-6) and cents, and the removal effect.
            let (conv, cents, effects): (Vec<i128>, Vec<i128>, Vec<Option<f64>>) = match model.kind {
                Kind::Rule(_) | Kind::Shapley => {
                    let (c, v) = &credits[m];
                    let mut conv = round_units(c, CONVERSION_UNITS / OUTPUT_CONVERSION);
                    let mut cents = round_units(v, CENT_UNITS);
                    conv[direct] += i128::from(touchless) * OUTPUT_CONVERSION;
                    cents[direct] += touchless_cents;
                    (conv, cents, vec![None; names.len()])
                }
                Kind::Markov | Kind::ShapleyProbability => {
                    let (weights, effects): (Vec<f64>, Vec<Option<f64>>) = if model.kind == Kind::Markov {
                        let e = markov_weights(&paths, names.len(), q.order);
                        (e.iter().map(|x| x.unwrap_or(0.0)).collect(), e)
                    } else {
                        let w = shapley_weights(&paths, names.len());
                        (w.iter().map(|x| x.unwrap_or(0.0)).collect(), w.iter().map(|x| x.map(|_| f64::NAN)).collect())
                    };
                    let fixed: Vec<i128> = weights.iter().map(|&w| (w * (1u64 << 52) as f64).round() as i128).collect();
                    let mut conv = largest_remainder(&fixed, i128::from(touched) * OUTPUT_CONVERSION);
                    let mut cents = largest_remainder(&fixed, touched_cents);
                    conv[direct] += i128::from(touchless) * OUTPUT_CONVERSION;
                    cents[direct] += touchless_cents;
                    (conv, cents, effects)
                }
            };
            let total: i128 = conv.iter().sum();
            // Every credited value; the data-driven models also list the values they gave nothing.
            let mut rows: Vec<usize> =
                (0..names.len()).filter(|&i| conv[i] != 0 || cents[i] != 0 || effects[i].is_some()).collect();
            rows.sort_by(|&a, &b| conv[b].cmp(&conv[a]).then_with(|| names[a].cmp(&names[b])));
            for i in rows {
                model_col.append_value(&model.name);
                label_col.append_value(&names[i]);
                conv_col.append_value(conv[i]);
                revenue_col.append_value(cents[i]);
                share_col.append_option((total > 0).then(|| conv[i] as f64 / total as f64));
                effect_col.append_option(effects[i].filter(|e| !e.is_nan()));
            }
        }
        let mut ranges: Vec<ArrayRef> = vec![];
        if q.spend.is_some() {
            // The credit rows leave the range NULL; one row of its own (`model` NULL) holds it.
            let rows = datafusion::arrow::array::ArrayBuilder::len(&share_col);
            let (mut first, mut last) = (Int64Builder::new(), Int64Builder::new());
            first.append_nulls(rows);
            last.append_nulls(rows);
            if let Some((a, b)) = span {
                model_col.append_null();
                label_col.append_null();
                conv_col.append_value(0);
                revenue_col.append_value(0);
                share_col.append_null();
                effect_col.append_null();
                first.append_value(a);
                last.append_value(b);
            }
            ranges = vec![Arc::new(first.finish()), Arc::new(last.finish())];
        }
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(model_col.finish()),
            Arc::new(label_col.finish()),
            Arc::new(conv_col.finish().with_precision_and_scale(38, CONVERSION_SCALE)?),
            Arc::new(revenue_col.finish().with_precision_and_scale(38, REVENUE_SCALE)?),
            Arc::new(share_col.finish()),
            Arc::new(effect_col.finish()),
        ];
        columns.extend(ranges);
        Ok(RecordBatch::try_new(q.kernel_schema(), columns)?)
    }
}

/// The global labels (below `labels`) on some path, in order.
fn path_labels(paths: &BTreeMap<Vec<u64>, PathCount>, labels: usize) -> Vec<usize> {
    let mut present = vec![false; labels];
    for k in paths.keys().flatten() {
        present[(k >> 32) as usize] = true;
    }
    (0..labels).filter(|&l| present[l]).collect()
}

/// Markov removal effects per global label (the credit weights); `None` for labels on no path.
fn markov_weights(paths: &BTreeMap<Vec<u64>, PathCount>, labels: usize, order: usize) -> Vec<Option<f64>> {
    let list: Vec<MarkovPath> = paths
        .iter()
        .map(|(k, c)| MarkovPath { states: k.clone(), conversions: c.conversions, nulls: c.nulls })
        .collect();
    let chain = Chain::build(&list, order);
    let channels = path_labels(paths, labels);
    let predicates: Vec<_> = channels.iter().map(|&l| move |s: u64| (s >> 32) as usize == l).collect();
    let (_, effects) = removal_effects(&chain, &predicates);
    let mut out = vec![None; labels];
    for (&l, e) in channels.iter().zip(effects) {
        out[l] = Some(e);
    }
    out
}

/// Conversion-probability Shapley values per global label (negative ones as 0; `None` for
/// labels on no path); when none is positive, the simplified Shapley split of the converting
/// journeys.
fn shapley_weights(paths: &BTreeMap<Vec<u64>, PathCount>, labels: usize) -> Vec<Option<f64>> {
    let channels = path_labels(paths, labels);
    let index = |l: usize| channels.binary_search(&l).expect("present");
    let mut sets: BTreeMap<Vec<usize>, (u64, u64)> = BTreeMap::new();
    for (k, c) in paths {
        let mut set: Vec<usize> = k.iter().map(|s| index((s >> 32) as usize)).collect();
        set.sort_unstable();
        set.dedup();
        let e = sets.entry(set).or_default();
        e.0 += c.conversions;
        e.1 += c.conversions + c.nulls;
    }
    let list: Vec<ChannelSet> =
        sets.iter().map(|(s, &(c, t))| ChannelSet { channels: s.clone(), conversions: c, journeys: t }).collect();
    let phi = shapley_values(channels.len(), &list, EXACT_CHANNELS);
    let mut out = vec![None; labels];
    for (&l, p) in channels.iter().zip(&phi) {
        out[l] = Some(p.max(0.0));
    }
    if out.iter().all(|w| w.is_none_or(|w| w <= 0.0)) {
        for s in &list {
            for &c in &s.channels {
                *out[channels[c]].get_or_insert(0.0) += s.conversions as f64 / s.channels.len() as f64;
            }
        }
    }
    out
}
