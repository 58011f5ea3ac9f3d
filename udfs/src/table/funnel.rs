//! `funnel`: a funnel report, one row per step, with drop-off and time to convert.
//!
//! # Contract
//!
//! ```sql
//! SELECT * FROM funnel(step, step, ... [, name => value ...])
//! ```
//!
//! Reads the journey model (`journey.events`, identities stitched), or any relation given as
//! `source`, and returns one row per step (per breakdown value with `by`):
//! `([breakdown,] step, step_name, users, conversion_from_previous, conversion_from_start,
//! drop_off, drop_off_rate, avg_seconds, median_seconds, p90_seconds)`.
//!
//! - **Steps** are constant text, 1 to [`MAX_STEPS`]. A step that parses as a boolean SQL
//!   expression (a comparison, `LIKE`, `IN`, `IS`, `BETWEEN`, `AND`/`OR`/`NOT`) is a predicate
//!   over the source's columns (`'event_name = ''page_view'' AND page_url LIKE ''/pricing%'''`);
//!   anything else is an event name compared with the `event` column (`'signup'`,
//!   `'Form submitted'`, `'add-to-cart'`). A NULL predicate is false.
//! - A step written `'!text'` (event name or predicate) is an **exclusion** between the steps
//!   before and after it: see `common::funnel_chain` (the person stays at the step reached and
//!   must redo the step before the exclusion to go on). `exclude => ARRAY[...]` adds exclusions
//!   between the first and the last step.
//! - Each person (or session, `count => 'sessions'`) is one unit; its chain through the steps
//!   follows `common::funnel_chain`: `order => 'ordered'` (default; other events may come
//!   between steps, equal times may chain, one event fills one step), `'strict'` (the steps'
//!   events must be consecutive among the unit's events in the source) or `'any'` (row `k`
//!   counts units that did `k` of the steps, in any order, within one window; `step_name` is
//!   `'k of N'`). `window` (default 14 days) is inclusive, from the step-1 event.
//! - `optional => ARRAY[2]`: steps a unit may skip (not the first or the last; not with
//!   `'any'`). The next step's previous step is then the nearest mandatory one before it.
//! - `users` (named `sessions` with `count => 'sessions'`): units whose chain performed the
//!   step. `conversion_from_previous` = users / users of the previous mandatory step (1 for
//!   step 1), `conversion_from_start` = users / users of step 1, `drop_off` = users of the
//!   previous mandatory step minus users, `drop_off_rate` = drop_off / that (NULL when it is
//!   0). Units that never reach step 1 appear nowhere.
//! - **Time to convert**: from the previous performed step's event to this step's event, over
//!   the units that performed this step, **zero seconds included** (PostHog drops them):
//!   `avg_seconds`, `median_seconds` and `p90_seconds` (continuous percentiles, PostgreSQL's
//!   `percentile_cont`). NULL for step 1.
//! - **Breakdown** `by => expression` (text): the unit's value is, per `attribution`:
//!   `'first_touch'` (default) the earliest non-NULL value among all the unit's events (in
//!   the source, steps or not), `'last_touch'` the latest non-NULL value at or before the
//!   chain's last step, `'step_N'` the value on the event that filled step N. Ties in time go to
//!   the smallest value. A unit without a value is `(none)` (never dropped). The `top` values
//!   (default 25) by step-1 users stay; the rest are summed into `(other)`. Rows are ordered by
//!   step-1 users, then value, then step.
//! - **Trend** `trend => 'day'|'week'|'month'`: the same figures per period of funnel entry (the
//!   unit's step-1 event), calendar periods in the session's time zone (`time_zone`), a
//!   `period` column first (`timestamp with time zone`); periods with no entry are not listed.
//! - **Compare** `compare => INTERVAL '28 days'`: the funnel over the events of the last 28 days
//!   before `until` (default: the statement's start) and over the events of the 28 days before
//!   those, each on its own (a unit's chain uses only its events of the range), a `range` column
//!   first (`'current'`, then `'previous'`). Not with `trend`, only with `output => 'steps'`.
//! - `output => 'time_to_convert'`: a histogram of conversion times from step `from_step`
//!   (default 1) to step `to_step` (default the last), over the units that performed both:
//!   rows `([breakdown,] bin_start_seconds, bin_end_seconds, users)`. Times are whole seconds
//!   (rounded down); `bins` (default 10) bins of one width, the smallest whole number of seconds
//!   with which `bins` bins cover the shortest to the longest time; bin k holds times in
//!   `[bin_start_seconds, bin_end_seconds)`. Every bin is listed, empty ones too; with `by`,
//!   each value over the same bins.
//! - `output => 'people'`: the units behind a figure, to export: `status => 'converted'`
//!   (default) lists those counted in `users` of `step` (default the last), `'dropped'` those
//!   counted in its `drop_off` (they performed the previous mandatory step, not this one):
//!   rows `([breakdown,] person_id, entered_at, last_step)`, `entered_at` the unit's step-1 time,
//!   `last_step` the furthest step it reached, ordered by entered_at then person_id. Not with
//!   `count => 'sessions'`.
//! - Deterministic: a unit's events are ordered by (time, first step met, steps met,
//!   exclusions met, breakdown value), a total order on everything the report reads, so the
//!   answer depends only on the rows, never on their order, batch size or partitioning.
//!
//! Options (all named, all constant):
//!
//! Its options, their types and defaults are listed in [`DOC`] (`docs/functions.md`, `\df+`).

use crate::aggregate::events::set_bits;
use crate::common::funnel_chain::{Chain, ChainSpec, Chains, Event, NO_EVENT, Order, SKIPPED, order_key};
use crate::common::options::Options;
use crate::common::periods::{Interval, Periods, zone};
use crate::docs::{FunctionDoc, Kind, Parameter};
use crate::error::ArgumentError;
use crate::physical::keep_rows::KeepRows;
use crate::physical::report::{
    Labels, ReportKernel, ReportQuery, ReportStages, ReportTable, Units, input_times, map_bytes, rows_by_group,
    source_relation, state_item, vec_bytes,
};
use crate::table::cohorts;
use chrono_tz::Tz;
use datafusion::arrow::array::TimestampMicrosecondBuilder;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Builder, Int32Builder, Int64Builder, ListBuilder, RecordBatch,
    StringBuilder, UInt32Builder,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::datatypes::{Int64Type, UInt32Type};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{HashMap, ScalarValue};
use datafusion::error::Result;
use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr as SqlExpr, UnaryOperator};
use datafusion::sql::sqlparser::tokenizer::Token;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

pub const NAME: &str = "funnel";

/// This function's reference ([`crate::docs`]).
pub const DOC: FunctionDoc = FunctionDoc {
    name: NAME,
    kind: Kind::Report,
    usage: "funnel(step, step, ... [, name => value, ...])",
    result: "TABLE(step integer, step_name text, users bigint, conversion_from_previous double precision, conversion_from_start double precision, drop_off bigint, drop_off_rate double precision, avg_seconds double precision, median_seconds double precision, p90_seconds double precision)",
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
            meaning: "an interval (or seconds): the longest time from step 1 to the last step",
        },
        Parameter {
            name: "order",
            sql_type: "text",
            default: Some("'ordered'"),
            meaning: "`'ordered'`, `'strict'` or `'any'`",
        },
        Parameter {
            name: "optional",
            sql_type: "integer[]",
            default: None,
            meaning: "step numbers that may be skipped",
        },
        Parameter {
            name: "exclude",
            sql_type: "text[]",
            default: None,
            meaning: "exclusion steps between the first and the last step",
        },
        Parameter { name: "by", sql_type: "text", default: None, meaning: "a breakdown expression" },
        Parameter {
            name: "attribution",
            sql_type: "text",
            default: Some("'first_touch'"),
            meaning: "`'first_touch'`, `'last_touch'` or `'step_N'`",
        },
        Parameter {
            name: "top",
            sql_type: "integer",
            default: Some("25"),
            meaning: "breakdown values kept, 1 to [`MAX_TOP`]",
        },
        Parameter { name: "count", sql_type: "text", default: Some("'users'"), meaning: "`'users'` or `'sessions'`" },
        Parameter {
            name: "session",
            sql_type: "text",
            default: Some("'session'"),
            meaning: "the session column or expression for `count => 'sessions'`",
        },
        Parameter {
            name: "trend",
            sql_type: "text",
            default: None,
            meaning: "`'day'`, `'week'` or `'month'`: the figures per period of entry (adds `period`)",
        },
        Parameter {
            name: "compare",
            sql_type: "interval",
            default: None,
            meaning: "the funnel over this long before `until` and over the same length before that (adds `range`)",
        },
        Parameter {
            name: "until",
            sql_type: "timestamp with time zone",
            default: Some("now()"),
            meaning: "where `compare`'s current range ends",
        },
        Parameter {
            name: "output",
            sql_type: "text",
            default: Some("'steps'"),
            meaning: "`'steps'`, `'time_to_convert'` (a histogram) or `'people'` (who converted or dropped)",
        },
        Parameter {
            name: "bins",
            sql_type: "integer",
            default: Some("10"),
            meaning: "histogram bins for `output => 'time_to_convert'`, 1 to 1000",
        },
        Parameter {
            name: "from_step",
            sql_type: "integer",
            default: Some("1"),
            meaning: "where the time to convert starts",
        },
        Parameter {
            name: "to_step",
            sql_type: "integer",
            default: None,
            meaning: "where the time to convert ends (default the last step)",
        },
        Parameter {
            name: "step",
            sql_type: "integer",
            default: None,
            meaning: "the step whose people `output => 'people'` lists (default the last)",
        },
        Parameter {
            name: "status",
            sql_type: "text",
            default: Some("'converted'"),
            meaning: "`'converted'` (counted in `users`) or `'dropped'` (counted in `drop_off`)",
        },
        cohorts::TIME_ZONE,
    ],
    summary: "Funnel report: people (or sessions) reaching each step, conversion and drop-off rates, and the time to convert.",
    description: "one row per step: `users` (or `sessions`), `conversion_from_previous`, `conversion_from_start`, `drop_off` and `drop_off_rate` (against the previous mandatory step), `avg_seconds`, `median_seconds`, `p90_seconds` from the previous step (zero-second conversions included); steps are event names or predicates (`'page_url LIKE ''/pricing%'''`), `'!step'` between two steps is an exclusion; options `window` (default 14 days, inclusive from step 1), `order` (`ordered`, `strict`, `any`), `optional => ARRAY[2]`, `exclude`, `by` with `attribution` (`first_touch`, `last_touch`, `step_N`) and `top` (plus `(other)`, `(none)`), `count => 'sessions'`, `source`/`person`/`time`/`event`; `trend` per period of entry; `output => 'time_to_convert'` (a histogram with `bins`, `from_step`, `to_step`) or `'people'` (`step`, `status => 'converted'` or `'dropped'`)",
    contract: "`udfs/src/table/funnel.rs`",
};
/// The most steps (and exclusions) a funnel may have.
pub const MAX_STEPS: usize = crate::common::funnel_chain::MAX_STEPS;
/// The most breakdown values a report may list.
pub const MAX_TOP: i64 = 1000;
pub const OTHER: &str = "(other)";
pub const NONE: &str = "(none)";
const DEFAULT_WINDOW_MICROS: i64 = 14 * 86_400_000_000;

/// The table function; `default_source` is the journey model's events view.
#[derive(Debug)]
pub struct Funnel {
    default_source: String,
}

impl Funnel {
    pub fn new(default_source: impl Into<String>) -> Self {
        Funnel { default_source: default_source.into() }
    }
}

/// Whose value a breakdown shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attribution {
    FirstTouch,
    LastTouch,
    /// 1-based.
    Step(usize),
}

/// What the report returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Steps,
    /// Steps 1-based.
    TimeToConvert {
        from: usize,
        to: usize,
        bins: usize,
    },
    People {
        step: usize,
        dropped: bool,
    },
}

/// A validated call.
#[derive(Debug, Clone)]
pub struct FunnelQuery {
    pub source: String,
    pub person: String,
    pub time: String,
    pub event: String,
    /// The steps as written, and their SQL conditions.
    pub steps: Vec<(String, String)>,
    /// The exclusions' SQL conditions; their step ranges are in `spec`.
    pub exclusions: Vec<String>,
    pub spec: ChainSpec,
    pub by: Option<String>,
    pub attribution: Attribution,
    pub top: usize,
    pub sessions: Option<String>,
    /// Periods of entry (`trend`), or none.
    pub trend: Option<Periods>,
    /// `compare`: the current range's end and the ranges' length, in microseconds.
    pub compare: Option<(i64, i64)>,
    /// The zone `trend` and `entered_at` are read in.
    pub zone: Tz,
    pub output: Output,
    /// The call, as given.
    pub call: Options,
}

/// True when `text` reads as a boolean SQL expression rather than an event name.
pub fn is_predicate(text: &str) -> bool {
    let Ok(mut parser) = crate::dialect::parser(text) else { return false };
    let Ok(expr) = parser.parse_expr() else { return false };
    if parser.peek_token().token != Token::EOF {
        return false;
    }
    fn boolean(e: &SqlExpr) -> bool {
        match e {
            SqlExpr::BinaryOp { op, .. } => matches!(
                op,
                BinaryOperator::Eq
                    | BinaryOperator::NotEq
                    | BinaryOperator::Lt
                    | BinaryOperator::LtEq
                    | BinaryOperator::Gt
                    | BinaryOperator::GtEq
                    | BinaryOperator::And
                    | BinaryOperator::Or
                    | BinaryOperator::PGRegexMatch
                    | BinaryOperator::PGRegexIMatch
                    | BinaryOperator::PGRegexNotMatch
                    | BinaryOperator::PGRegexNotIMatch
            ),
            SqlExpr::UnaryOp { op: UnaryOperator::Not, .. } => true,
            SqlExpr::Nested(inner) => boolean(inner),
            SqlExpr::Like { .. }
            | SqlExpr::ILike { .. }
            | SqlExpr::SimilarTo { .. }
            | SqlExpr::InList { .. }
            | SqlExpr::InSubquery { .. }
            | SqlExpr::Between { .. }
            | SqlExpr::IsNull(_)
            | SqlExpr::IsNotNull(_)
            | SqlExpr::IsTrue(_)
            | SqlExpr::IsFalse(_)
            | SqlExpr::IsNotTrue(_)
            | SqlExpr::IsNotFalse(_)
            | SqlExpr::IsDistinctFrom(_, _)
            | SqlExpr::IsNotDistinctFrom(_, _) => true,
            _ => false,
        }
    }
    boolean(&expr)
}

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

impl FunnelQuery {
    /// Reads a call of `funnel` (or of a report built on its steps: errors name the call's
    /// function).
    pub(crate) fn parse(mut o: Options, default_source: &str) -> Result<FunnelQuery> {
        let function = o.function();
        let bad = |arg: &str, msg: String| ArgumentError::new(function, arg, msg).into_datafusion();
        let call = o.clone();
        let source = o.string("source")?.unwrap_or_else(|| default_source.to_string());
        let person = o.person()?;
        let time = o.string("time")?.unwrap_or_else(|| "event_time".into());
        let event = o.string("event")?.unwrap_or_else(|| "event_name".into());
        let window = o.duration_micros("window")?.unwrap_or(DEFAULT_WINDOW_MICROS);
        let order = match o.string("order")?.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("ordered") => Order::Ordered,
            Some("strict") => Order::Strict,
            Some("any") => Order::Any,
            Some(other) => return Err(bad("order", format!("must be 'ordered', 'strict' or 'any', got '{other}'"))),
        };
        let optional_steps = o.ints("optional", 1, MAX_STEPS as i64)?.unwrap_or_default();
        let exclude_all = o.strings("exclude")?.unwrap_or_default();
        let by = o.string("by")?;
        let attribution = match o.string("attribution")?.map(|a| a.to_ascii_lowercase()) {
            None => Attribution::FirstTouch,
            Some(a) if a == "first_touch" => Attribution::FirstTouch,
            Some(a) if a == "last_touch" => Attribution::LastTouch,
            Some(a) => match a.strip_prefix("step_").and_then(|n| n.parse::<usize>().ok()) {
                Some(n) if n >= 1 => Attribution::Step(n),
                _ => {
                    return Err(bad(
                        "attribution",
                        format!("must be 'first_touch', 'last_touch' or 'step_N', got '{a}'"),
                    ));
                }
            },
        };
        let top = o.int("top", 1, MAX_TOP)?.unwrap_or(25) as usize;
        let sessions = match o.string("count")?.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("users") => None,
            Some("sessions") => Some(()),
            Some(other) => return Err(bad("count", format!("must be 'users' or 'sessions', got '{other}'"))),
        };
        let session = o.string("session")?;
        let zone = zone(NAME, o.string("time_zone")?.as_deref())?;
        let trend = o.string("trend")?.map(|t| Interval::parse(NAME, "trend", &t)).transpose()?;
        let output_name = o.string("output")?.map(|s| s.to_ascii_lowercase());
        let compare = o.duration_micros("compare")?;
        let until = o.timestamp_micros("until")?;
        let bins = o.int("bins", 1, 1000)?;
        let from_step = o.int("from_step", 1, MAX_STEPS as i64)?;
        let to_step = o.int("to_step", 1, MAX_STEPS as i64)?;
        let people_step = o.int("step", 1, MAX_STEPS as i64)?;
        let status = o.string("status")?.map(|s| s.to_ascii_lowercase());
        let sessions = match (sessions, session) {
            (Some(()), s) => Some(s.unwrap_or_else(|| "session".into())),
            (None, Some(_)) => return Err(bad("session", "is used only with count => 'sessions'".into())),
            (None, None) => None,
        };
        // Steps and exclusions, positional.
        let mut steps: Vec<(String, String)> = vec![];
        let mut exclusions: Vec<String> = vec![];
        let mut ranges: Vec<(usize, usize)> = vec![];
        let condition = |text: &str| {
            if is_predicate(text) { format!("({text})") } else { format!("({event}) = {}", quote(text)) }
        };
        let positional = o.positional().to_vec();
        for (i, v) in positional.iter().enumerate() {
            let arg = format!("{}", i + 1);
            let text = match v {
                ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)) | ScalarValue::LargeUtf8(Some(s)) => {
                    s.trim().to_string()
                }
                other => {
                    return Err(bad(
                        &arg,
                        format!("must be a step: an event name or a predicate as text, got {other}"),
                    ));
                }
            };
            if let Some(x) = text.strip_prefix('!') {
                let x = x.trim();
                if steps.is_empty() {
                    return Err(bad(&arg, "is an exclusion ('!...') before the first step".into()));
                }
                if x.is_empty() {
                    return Err(bad(&arg, "is an empty exclusion".into()));
                }
                exclusions.push(condition(x));
                ranges.push((steps.len(), steps.len() + 1));
            } else {
                if text.is_empty() {
                    return Err(bad(&arg, "is an empty step".into()));
                }
                steps.push((text.clone(), condition(&text)));
            }
        }
        if steps.is_empty() {
            return Err(bad("1", "a funnel needs at least one step: funnel('signup', 'purchase', ...)".into()));
        }
        if steps.len() > MAX_STEPS {
            return Err(bad("steps", format!("there must be at most {MAX_STEPS} steps, got {}", steps.len())));
        }
        if ranges.last().is_some_and(|&(_, to)| to > steps.len()) {
            return Err(bad("exclude", "an exclusion ('!...') must come between two steps".into()));
        }
        for x in &exclude_all {
            if steps.len() < 2 {
                return Err(bad("exclude", "needs at least two steps".into()));
            }
            exclusions.push(condition(x.trim()));
            ranges.push((1, steps.len()));
        }
        if exclusions.len() > MAX_STEPS {
            return Err(bad("exclude", format!("there must be at most {MAX_STEPS} exclusions")));
        }
        if order == Order::Any && !exclusions.is_empty() {
            return Err(bad("exclude", "exclusions need an order: not with order => 'any'".into()));
        }
        let mut optional = 0u32;
        for &k in &optional_steps {
            let k = k as usize;
            if order == Order::Any {
                return Err(bad("optional", "optional steps need an order: not with order => 'any'".into()));
            }
            if k == 1 || k >= steps.len() {
                return Err(bad(
                    "optional",
                    format!("step {k} cannot be optional: only steps between the first and the last can"),
                ));
            }
            optional |= 1 << (k - 1);
        }
        if let Attribution::Step(n) = attribution
            && n > steps.len()
        {
            return Err(bad("attribution", format!("step_{n} is beyond the {} steps", steps.len())));
        }
        let n = steps.len();
        let unused = |given: bool, arg: &str, with: &str| {
            if given { Err(bad(arg, format!("is used only with output => '{with}'"))) } else { Ok(()) }
        };
        let output = match output_name.as_deref() {
            None | Some("steps") => {
                unused(bins.is_some(), "bins", "time_to_convert")?;
                unused(from_step.is_some(), "from_step", "time_to_convert")?;
                unused(to_step.is_some(), "to_step", "time_to_convert")?;
                unused(people_step.is_some(), "step", "people")?;
                unused(status.is_some(), "status", "people")?;
                Output::Steps
            }
            Some("time_to_convert") => {
                unused(people_step.is_some(), "step", "people")?;
                unused(status.is_some(), "status", "people")?;
                let (from, to) = (from_step.unwrap_or(1) as usize, to_step.map_or(n, |t| t as usize));
                if to > n || from >= to {
                    return Err(bad(
                        "to_step",
                        format!("the time to convert needs 1 <= from_step < to_step <= {n}, got {from} and {to}"),
                    ));
                }
                Output::TimeToConvert { from, to, bins: bins.unwrap_or(10) as usize }
            }
            Some("people") => {
                unused(bins.is_some(), "bins", "time_to_convert")?;
                unused(from_step.is_some(), "from_step", "time_to_convert")?;
                unused(to_step.is_some(), "to_step", "time_to_convert")?;
                let step = people_step.map_or(n, |s| s as usize);
                if step > n {
                    return Err(bad("step", format!("step {step} is beyond the {n} steps")));
                }
                let dropped = match status.as_deref() {
                    None | Some("converted") => false,
                    Some("dropped") => true,
                    Some(other) => {
                        return Err(bad("status", format!("must be 'converted' or 'dropped', got '{other}'")));
                    }
                };
                if dropped && step == 1 {
                    return Err(bad(
                        "status",
                        "'dropped' needs a step after the first: nobody drops off at step 1".into(),
                    ));
                }
                if sessions.is_some() {
                    return Err(bad("output", "'people' lists people: not with count => 'sessions'".into()));
                }
                Output::People { step, dropped }
            }
            Some(other) => {
                return Err(bad("output", format!("must be 'steps', 'time_to_convert' or 'people', got '{other}'")));
            }
        };
        if trend.is_some() && output != Output::Steps {
            return Err(bad("trend", "is used only with output => 'steps'".into()));
        }
        let compare = match (compare, until) {
            (None, Some(_)) => return Err(bad("until", "is used only with compare".into())),
            (None, None) => None,
            (Some(0), _) => return Err(bad("compare", "must be longer than zero".into())),
            (Some(len), until) => {
                if trend.is_some() {
                    return Err(bad(
                        "compare",
                        "cannot go with trend: compare the periods of the trend instead".into(),
                    ));
                }
                if output != Output::Steps {
                    return Err(bad("compare", "is used only with output => 'steps'".into()));
                }
                let until = until.ok_or_else(|| bad("until", "is needed with compare".into()))?;
                Some((until, len))
            }
        };
        let trend = trend.map(|interval| Periods { interval, zone });
        o.finish(&DOC.option_names())?;
        for (arg, v) in [("source", &source), ("person", &person), ("time", &time), ("event", &event)] {
            if v.trim().is_empty() {
                return Err(bad(arg, "must not be empty".into()));
            }
        }
        let spec = ChainSpec { steps: steps.len(), window, order, optional, exclusions: ranges };
        Ok(FunnelQuery {
            source,
            person,
            time,
            event,
            steps,
            exclusions,
            spec,
            by,
            attribution,
            top,
            sessions,
            trend,
            compare,
            zone,
            output,
            call,
        })
    }

    /// Instants shown in the report's zone.
    fn time_type(&self) -> DataType {
        DataType::Timestamp(TimeUnit::Microsecond, Some(self.zone.name().into()))
    }

    /// The step a step's conversion is measured from: the nearest mandatory one before it.
    pub(crate) fn previous(&self, step: usize) -> Option<usize> {
        if self.spec.order == Order::Any {
            return (step > 1).then(|| step - 1);
        }
        (1..step).rev().find(|&k| self.spec.optional & (1 << (k - 1)) == 0)
    }
}

impl TableFunctionImpl for Funnel {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let mut call = cohorts::options(NAME, &args)?;
        if call.named().iter().any(|(n, _)| n == "compare") {
            // The current range ends when the statement began, unless the call says.
            let now = args.session().execution_props().query_execution_start_time.map(|t| t.timestamp_micros());
            call =
                call.with_default("until", now.map(|t| ScalarValue::TimestampMicrosecond(Some(t), Some("UTC".into()))));
        }
        let query = FunnelQuery::parse(call, &self.default_source)?;
        Ok(Arc::new(ReportTable::new(query)))
    }
}

/// The report's stages made again from its call, over an input of columns `input`.
pub(crate) fn stages(call: Options, input: &Schema) -> Result<Arc<dyn ReportStages>> {
    Arc::new(FunnelQuery::parse(call, "")?).stages(input)
}

impl ReportQuery for FunnelQuery {
    fn function(&self) -> &'static str {
        NAME
    }

    fn source(&self) -> &str {
        &self.source
    }

    fn person(&self) -> Option<&str> {
        Some(&self.person)
    }

    /// The input query: one row per source event, with its unit and each step's condition.
    /// The rows that cannot matter are dropped after it, by its [`ReportQuery::keep`].
    fn input_sql(&self) -> String {
        let mut columns = vec![format!("({}) AS p", self.person), format!("({}) AS t", self.time)];
        if let Some(s) = &self.sessions {
            columns.push(format!("({s}) AS s"));
        }
        if let Some(b) = &self.by {
            columns.push(format!("CAST(({b}) AS VARCHAR) AS b"));
        }
        for (k, (_, cond)) in self.steps.iter().enumerate() {
            columns.push(format!("coalesce({cond}, false) AS c{k}"));
        }
        for (k, cond) in self.exclusions.iter().enumerate() {
            columns.push(format!("coalesce({cond}, false) AS x{k}"));
        }
        format!("SELECT {} FROM {}", columns.join(", "), source_relation(&self.source))
    }

    /// The input rows the report reads: person and time present and, unless the order is
    /// strict (where the events between steps matter), a step or an exclusion met, or a
    /// breakdown value present when the touch may be an event that is no step.
    fn keep(&self) -> Option<KeepRows> {
        let mut keep = KeepRows { required: vec![0, 1], ..KeepRows::default() };
        if self.spec.order == Order::Strict {
            return Some(keep);
        }
        let first = 2 + usize::from(self.sessions.is_some()) + usize::from(self.by.is_some());
        keep.any_true = (first..first + self.steps.len() + self.exclusions.len()).collect();
        if self.by.is_some() && matches!(self.attribution, Attribution::FirstTouch | Attribution::LastTouch) {
            keep.any_valid = vec![first - 1];
        }
        Some(keep)
    }

    fn schema(&self) -> SchemaRef {
        let float = |n: &str| Field::new(n, DataType::Float64, true);
        let mut fields = vec![];
        if self.compare.is_some() {
            fields.push(Field::new("range", DataType::Utf8, false));
        }
        if self.trend.is_some() {
            fields.push(Field::new("period", self.time_type(), false));
        }
        if self.by.is_some() {
            fields.push(Field::new("breakdown", DataType::Utf8, false));
        }
        match self.output {
            Output::Steps => {}
            Output::TimeToConvert { .. } => {
                fields.extend([
                    Field::new("bin_start_seconds", DataType::Int64, false),
                    Field::new("bin_end_seconds", DataType::Int64, false),
                    Field::new("users", DataType::Int64, false),
                ]);
                return Arc::new(Schema::new(fields));
            }
            Output::People { .. } => {
                fields.extend([
                    Field::new("person_id", DataType::Utf8, false),
                    Field::new("entered_at", self.time_type(), false),
                    Field::new("last_step", DataType::Int32, false),
                ]);
                return Arc::new(Schema::new(fields));
            }
        }
        fields.extend([
            Field::new("step", DataType::Int32, false),
            Field::new("step_name", DataType::Utf8, false),
            Field::new(if self.sessions.is_some() { "sessions" } else { "users" }, DataType::Int64, false),
            float("conversion_from_previous"),
            float("conversion_from_start"),
            Field::new("drop_off", DataType::Int64, false),
            float("drop_off_rate"),
            float("avg_seconds"),
            float("median_seconds"),
            float("p90_seconds"),
        ]);
        Arc::new(Schema::new(fields))
    }

    /// No sort: each partition groups its units in a hash table (a unit's rows all land in one
    /// partition), and each unit's events are ordered in the kernel.
    fn stages(self: Arc<Self>, input: &Schema) -> Result<Arc<dyn ReportStages>> {
        let mut key_fields = vec![input.field(0).clone()];
        if self.sessions.is_some() {
            key_fields.push(input.field(2).clone());
        }
        let key_schema = Arc::new(Schema::new(key_fields));
        Ok(Arc::new(FunnelKernel { query: self, key_schema }))
    }
}

#[derive(Debug)]
struct FunnelKernel {
    query: Arc<FunnelQuery>,
    /// The unit key's columns: person, and session when counting sessions.
    key_schema: SchemaRef,
}

/// One step's figures for one breakdown value.
#[derive(Debug, Default, Clone)]
struct StepAcc {
    users: i64,
    /// Microseconds from the previous performed step, one per unit.
    durations: Vec<i64>,
}

/// One partition's state: every unit's events (a unit's rows all land in one partition), then,
/// at the end of the partition, its figures.
struct Partial {
    labels: Labels,
    chains: Chains,
    /// Unit key (person, and session when counting sessions) -> dense unit id.
    units: Units,
    /// Per event: its unit, the event, its breakdown label ([`NULL_LABEL`] for NULL; no labels
    /// without a breakdown).
    event_unit: Vec<u32>,
    events: Vec<Event>,
    event_labels: Vec<u32>,
    /// Per period of entry (0 without a trend) and breakdown label ([`NULL_LABEL`]: no
    /// breakdown, or none), per step.
    acc: HashMap<(i64, u32), Vec<StepAcc>>,
    /// `output => 'time_to_convert'`: per breakdown label, the units' times in microseconds.
    conversions: HashMap<u32, Vec<i64>>,
    /// `output => 'people'`: (person, entered at, last step, breakdown label).
    people: Vec<(String, i64, u32, u32)>,
}

const NULL_LABEL: u32 = u32::MAX;

impl fmt::Debug for Partial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Partial").field("events", &self.events.len()).finish()
    }
}

/// Orders labels by text, NULL first.
fn label_cmp(labels: &Labels, a: u32, b: u32) -> Ordering {
    match (a == NULL_LABEL, b == NULL_LABEL) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        _ => labels.get(a).cmp(labels.get(b)),
    }
}

impl Partial {
    /// Runs every unit's chain and folds it into the figures.
    fn fold(&mut self, q: &FunnelQuery) -> Result<()> {
        let units = self.units.len();
        if self.events.is_empty() {
            return Ok(());
        }
        // The people's keys as text, by unit id, when the report lists them.
        let persons = match q.output {
            Output::People { .. } => Some(cast(&self.units.emit()?[0], &DataType::Utf8)?),
            _ => None,
        };
        let persons = persons.as_ref().map(|p| p.as_string::<i32>());
        // Counting sort of the events by unit.
        let (start, order) = rows_by_group(units, self.event_unit.iter().map(|&u| u as usize));
        let mut unit: Vec<(Event, u32)> = vec![];
        let mut sorted: Vec<Event> = vec![];
        let mut labels: Vec<u32> = vec![];
        let text = &self.labels;
        let cmp = |a: &(Event, u32), b: &(Event, u32)| {
            order_key(&a.0).cmp(&order_key(&b.0)).then_with(|| label_cmp(text, a.1, b.1))
        };
        // The ranges of `compare` (0 the current, 1 the previous), or all the time there is.
        let ranges: Vec<(i64, i64, i64)> = match q.compare {
            Some((until, len)) => vec![
                (0, until.saturating_sub(len), until),
                (1, until.saturating_sub(len.saturating_mul(2)), until.saturating_sub(len)),
            ],
            None => vec![(-1, i64::MIN, i64::MAX)],
        };
        for u in 0..units {
            unit.clear();
            unit.extend(
                order[start[u] as usize..start[u + 1] as usize].iter().map(|&i| {
                    (self.events[i as usize], self.event_labels.get(i as usize).copied().unwrap_or(NULL_LABEL))
                }),
            );
            if !unit.is_sorted_by(|a, b| cmp(a, b) != Ordering::Greater) {
                unit.sort_by(cmp);
            }
            for &(range, from, to) in &ranges {
                sorted.clear();
                labels.clear();
                for e in unit.iter().filter(|e| e.0.t >= from && e.0.t < to) {
                    sorted.push(e.0);
                    labels.push(e.1);
                }
                let chain = self.chains.run(&q.spec, &sorted);
                if chain.level == 0 {
                    continue;
                }
                let label = if q.by.is_none() {
                    NULL_LABEL
                } else {
                    breakdown_label(q, &chain, &sorted, &labels, &self.labels)
                };
                let performed = |k: usize| chain.times.get(k - 1).is_some_and(|&t| t != SKIPPED);
                match q.output {
                    Output::Steps => {}
                    Output::TimeToConvert { from, to, .. } => {
                        if performed(from) && performed(to) {
                            self.conversions
                                .entry(label)
                                .or_default()
                                .push(chain.times[to - 1] - chain.times[from - 1]);
                        }
                        continue;
                    }
                    Output::People { step, dropped } => {
                        let counted = if dropped {
                            q.previous(step).is_some_and(performed) && !performed(step)
                        } else {
                            performed(step)
                        };
                        if let (true, Some(persons)) = (counted, persons) {
                            let person = persons.value(u).to_string();
                            self.people.push((person, chain.times[0], chain.level as u32, label));
                        }
                        continue;
                    }
                }
                let period = if range >= 0 { range } else { q.trend.map_or(0, |p| p.ordinal(chain.times[0])) };
                let steps = self.acc.entry((period, label)).or_insert_with(|| vec![StepAcc::default(); q.spec.steps]);
                let mut previous: Option<i64> = None;
                for (k, &t) in chain.times.iter().enumerate() {
                    if t == SKIPPED {
                        continue;
                    }
                    steps[k].users += 1;
                    if let Some(p) = previous {
                        steps[k].durations.push(t - p);
                    }
                    previous = Some(t);
                }
            }
        }
        self.events = vec![];
        self.event_unit = vec![];
        self.event_labels = vec![];
        Ok(())
    }
}

/// The chain kernel's events of a batch: each row's time, the steps and the exclusions it meets.
pub(crate) fn chain_events<'a>(
    times: &'a [i64],
    steps: &[&BooleanArray],
    exclusions: &[&BooleanArray],
) -> impl Iterator<Item = Event> + 'a {
    let (mut masks, mut excl) = (vec![0u32; times.len()], vec![0u32; times.len()]);
    for (columns, out) in [(steps, &mut masks), (exclusions, &mut excl)] {
        for (k, c) in columns.iter().enumerate() {
            set_bits(c, 1 << k, out);
        }
    }
    times.iter().zip(masks.into_iter().zip(excl)).map(|(&t, (steps, excl))| Event { t, steps, excl })
}

/// The unit's breakdown value: see the contract (`attribution`).
fn breakdown_label(q: &FunnelQuery, chain: &Chain<'_>, events: &[Event], labels: &[u32], text: &Labels) -> u32 {
    match q.attribution {
        Attribution::FirstTouch | Attribution::LastTouch => {
            let last = q.attribution == Attribution::LastTouch;
            let until = chain.times.iter().rev().find(|&&t| t != SKIPPED).copied().unwrap_or(i64::MAX);
            let mut best: Option<(i64, u32)> = None;
            for (e, &l) in events.iter().zip(labels) {
                if l == NULL_LABEL || (last && e.t > until) {
                    continue;
                }
                let better = match best {
                    None => true,
                    Some((t, b)) => {
                        let time = if last { e.t.cmp(&t) } else { t.cmp(&e.t) };
                        time == Ordering::Greater || (time == Ordering::Equal && text.get(l) < text.get(b))
                    }
                };
                if better {
                    best = Some((e.t, l));
                }
            }
            best.map_or(NULL_LABEL, |(_, l)| l)
        }
        Attribution::Step(n) => match chain.events.get(n - 1) {
            Some(&e) if e != NO_EVENT => labels[e as usize],
            _ => NULL_LABEL,
        },
    }
}

/// The partial state's columns, one row per (period, breakdown value, step): the period of
/// entry (0 without a trend), the value (NULL for no breakdown, or none), the step (1-based),
/// its units, and their times from the previous step. `output => 'time_to_convert'` writes
/// step 0 rows with the conversion times in `durations`; `output => 'people'` one row per
/// person (`person`, `entered`, the last step in `users`).
fn state_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("period", DataType::Int64, false),
        Field::new("label", DataType::Utf8, true),
        Field::new("step", DataType::UInt32, false),
        Field::new("users", DataType::Int64, false),
        Field::new("durations", DataType::List(state_item(DataType::Int64)), false),
        Field::new("person", DataType::Utf8, true),
        Field::new("entered", DataType::Int64, true),
    ]))
}

impl ReportKernel for FunnelKernel {
    type Partial = Partial;

    fn memory(&self, p: &Partial) -> usize {
        let steps: usize = p.acc.values().flat_map(|s| s.iter().map(|a| vec_bytes(&a.durations))).sum();
        let times: usize = p.conversions.values().map(vec_bytes).sum();
        // People are listed once, at the end of the partition.
        let people: usize = p.people.iter().map(|x| x.0.capacity()).sum();
        p.labels.memory()
            + p.units.memory()
            + vec_bytes(&p.event_unit)
            + vec_bytes(&p.events)
            + vec_bytes(&p.event_labels)
            + map_bytes(&p.acc)
            + p.acc.values().map(vec_bytes).sum::<usize>()
            + steps
            + map_bytes(&p.conversions)
            + times
            + vec_bytes(&p.people)
            + people
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

    fn encode(&self, partial: Partial) -> Result<RecordBatch> {
        let (mut period, mut label) = (Int64Builder::new(), StringBuilder::new());
        let (mut step, mut users) = (UInt32Builder::new(), Int64Builder::new());
        let mut durations = ListBuilder::new(Int64Builder::new()).with_field(state_item(DataType::Int64));
        let (mut person, mut entered) = (StringBuilder::new(), Int64Builder::new());
        let text = |id: u32| (id != NULL_LABEL).then(|| partial.labels.get(id));
        for ((p, id), steps) in &partial.acc {
            for (k, acc) in steps.iter().enumerate() {
                period.append_value(*p);
                label.append_option(text(*id));
                step.append_value(k as u32 + 1);
                users.append_value(acc.users);
                durations.values().append_slice(&acc.durations);
                durations.append(true);
                person.append_null();
                entered.append_null();
            }
        }
        for (id, times) in &partial.conversions {
            period.append_value(0);
            label.append_option(text(*id));
            step.append_value(0);
            users.append_value(times.len() as i64);
            durations.values().append_slice(times);
            durations.append(true);
            person.append_null();
            entered.append_null();
        }
        for (who, at, last, id) in &partial.people {
            period.append_value(0);
            label.append_option(text(*id));
            step.append_value(0);
            users.append_value(i64::from(*last));
            durations.append(true);
            person.append_value(who);
            entered.append_value(*at);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(period.finish()),
            Arc::new(label.finish()),
            Arc::new(step.finish()),
            Arc::new(users.finish()),
            Arc::new(durations.finish()),
            Arc::new(person.finish()),
            Arc::new(entered.finish()),
        ];
        Ok(RecordBatch::try_new(state_schema(), columns)?)
    }

    fn decode(&self, rows: &RecordBatch) -> Result<Partial> {
        let mut partial = self.new_partial()?;
        let period = rows.column(0).as_primitive::<Int64Type>();
        let label = rows.column(1).as_string::<i32>();
        let step = rows.column(2).as_primitive::<UInt32Type>();
        let users = rows.column(3).as_primitive::<Int64Type>();
        let durations = rows.column(4).as_list::<i32>();
        let (person, entered) = (rows.column(5).as_string::<i32>(), rows.column(6).as_primitive::<Int64Type>());
        let steps = self.query.spec.steps;
        for i in 0..rows.num_rows() {
            let id = if label.is_valid(i) { partial.labels.id(label.value(i)) } else { NULL_LABEL };
            if person.is_valid(i) {
                partial.people.push((person.value(i).to_string(), entered.value(i), users.value(i) as u32, id));
                continue;
            }
            let k = step.value(i) as usize;
            if k == 0 {
                let times = durations.value(i);
                partial
                    .conversions
                    .entry(id)
                    .or_default()
                    .extend_from_slice(times.as_primitive::<Int64Type>().values());
                continue;
            }
            if !(1..=steps).contains(&k) {
                return Err(datafusion::error::DataFusionError::Internal(format!("{NAME}: a state of step {k}")));
            }
            let acc =
                &mut partial.acc.entry((period.value(i), id)).or_insert_with(|| vec![StepAcc::default(); steps])[k - 1];
            acc.users += users.value(i);
            acc.durations.extend_from_slice(durations.value(i).as_primitive::<Int64Type>().values());
        }
        Ok(partial)
    }

    fn new_partial(&self) -> Result<Partial> {
        Ok(Partial {
            labels: Labels::default(),
            chains: Chains::default(),
            units: Units::new(self.key_schema.clone())?,
            event_unit: vec![],
            events: vec![],
            event_labels: vec![],
            acc: HashMap::new(),
            conversions: HashMap::new(),
            people: vec![],
        })
    }

    fn update(&self, partial: &mut Partial, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let q = &self.query;
        let mut col = 0;
        let mut next = || {
            col += 1;
            batch.column(col - 1).clone()
        };
        let person = next();
        let time = next();
        let session = q.sessions.as_ref().map(|_| next());
        let label = q.by.as_ref().map(|_| next());
        let steps: Vec<ArrayRef> = (0..q.steps.len()).map(|_| next()).collect();
        let exclusions: Vec<ArrayRef> = (0..q.exclusions.len()).map(|_| next()).collect();
        let times = input_times(NAME, &time)?;
        let label = label.map(|l| cast(&l, &DataType::Utf8View)).transpose()?;
        let label = label.as_ref().map(|l| l.as_string_view());
        let steps: Vec<_> = steps.iter().map(|c| c.as_boolean()).collect();
        let exclusions: Vec<_> = exclusions.iter().map(|c| c.as_boolean()).collect();
        let mut key_columns = vec![person];
        key_columns.extend(session);
        let units = partial.units.intern(&key_columns)?;
        let rows = batch.num_rows();
        partial.event_unit.extend(units.iter().map(|&u| u as u32));
        partial.events.extend(chain_events(&times, &steps, &exclusions));
        match label {
            None => {}
            Some(l) => {
                for i in 0..rows {
                    let id = if l.is_valid(i) { partial.labels.id(l.value(i)) } else { NULL_LABEL };
                    partial.event_labels.push(id);
                }
            }
        }
        Ok(())
    }

    fn end_partition(&self, partial: &mut Partial) -> Result<()> {
        partial.fold(&self.query)
    }

    fn finish(&self, mut partials: Vec<Partial>) -> Result<RecordBatch> {
        match self.query.output {
            Output::Steps => steps_report(&self.query, &mut partials),
            Output::TimeToConvert { bins, .. } => time_to_convert(&self.query, &mut partials, bins),
            Output::People { .. } => people(&self.query, &mut partials),
        }
    }
}

/// A label's text, [`NONE`] for NULL.
fn label_text(labels: &Labels, id: u32) -> String {
    if id == NULL_LABEL { NONE.to_string() } else { labels.get(id).to_string() }
}

/// The figures per step: see the contract.
fn steps_report(q: &FunnelQuery, partials: &mut [Partial]) -> Result<RecordBatch> {
    // Partition-local labels become text; figures merged per (period, value).
    let mut merged: HashMap<(i64, Option<String>), Vec<StepAcc>> = HashMap::new();
    for p in partials.iter_mut() {
        for ((period, label), steps) in p.acc.drain() {
            let key = (period, (label != NULL_LABEL).then(|| p.labels.get(label).to_string()));
            let into = merged.entry(key).or_insert_with(|| vec![StepAcc::default(); q.spec.steps]);
            for (a, b) in into.iter_mut().zip(steps) {
                a.users += b.users;
                a.durations.extend(b.durations);
            }
        }
    }
    // The periods, ascending; without a trend, one (0), listed even when nobody entered.
    let mut periods: Vec<i64> = merged.keys().map(|(p, _)| *p).collect();
    periods.sort_unstable();
    periods.dedup();
    if q.compare.is_some() {
        periods = vec![0, 1];
    } else if q.trend.is_none() && periods.is_empty() {
        periods.push(0);
    }
    // Breakdown values ranked by step-1 units over all periods, then by value; the top stay.
    let mut totals: HashMap<String, i64> = HashMap::new();
    for ((_, label), steps) in &merged {
        *totals.entry(label.clone().unwrap_or_else(|| NONE.to_string())).or_default() += steps[0].users;
    }
    let mut ranked: Vec<(String, i64)> = totals.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let kept: HashMap<String, usize> =
        ranked.iter().take(q.top).enumerate().map(|(i, (v, _))| (v.clone(), i)).collect();
    let mut groups: Vec<(i64, String, Vec<StepAcc>)> = vec![];
    for &period in &periods {
        if q.by.is_none() {
            let steps = merged.remove(&(period, None)).unwrap_or_else(|| vec![StepAcc::default(); q.spec.steps]);
            groups.push((period, String::new(), steps));
            continue;
        }
        let mut values: Vec<(usize, String, Vec<StepAcc>)> = vec![];
        let mut other: Option<Vec<StepAcc>> = None;
        let keys: Vec<(i64, Option<String>)> = merged.keys().filter(|(p, _)| *p == period).cloned().collect();
        for key in keys {
            let steps = merged.remove(&key).unwrap_or_default();
            let value = key.1.unwrap_or_else(|| NONE.to_string());
            match kept.get(&value) {
                Some(&rank) => values.push((rank, value, steps)),
                None => {
                    let into = other.get_or_insert_with(|| vec![StepAcc::default(); q.spec.steps]);
                    for (a, b) in into.iter_mut().zip(steps) {
                        a.users += b.users;
                        a.durations.extend(b.durations);
                    }
                }
            }
        }
        values.sort_by_key(|v| v.0);
        groups.extend(values.into_iter().map(|(_, v, steps)| (period, v, steps)));
        if let Some(steps) = other {
            groups.push((period, OTHER.to_string(), steps));
        }
    }
    let mut range_col = StringBuilder::new();
    let mut period_col = TimestampMicrosecondBuilder::new().with_data_type(q.time_type());
    let mut breakdown = StringBuilder::new();
    let (mut step, mut name) = (Int32Builder::new(), StringBuilder::new());
    let (mut users, mut drop_off) = (Int64Builder::new(), Int64Builder::new());
    let (mut from_previous, mut from_start, mut drop_rate) =
        (Float64Builder::new(), Float64Builder::new(), Float64Builder::new());
    let (mut avg, mut median, mut p90) = (Float64Builder::new(), Float64Builder::new(), Float64Builder::new());
    let ratio = |a: i64, b: i64| (b > 0).then(|| a as f64 / b as f64);
    for (period, value, mut steps) in groups {
        let first = steps[0].users;
        for k in 1..=q.spec.steps {
            let prev = q.previous(k).map(|p| steps[p - 1].users);
            let acc = &mut steps[k - 1];
            if let Some(trend) = &q.trend {
                period_col.append_value(trend.start(period));
            }
            range_col.append_value(if period == 0 { "current" } else { "previous" });
            breakdown.append_value(&value);
            step.append_value(k as i32);
            if q.spec.order == Order::Any {
                name.append_value(format!("{k} of {}", q.spec.steps));
            } else {
                name.append_value(&q.steps[k - 1].0);
            }
            users.append_value(acc.users);
            match prev {
                None => {
                    from_previous.append_option(ratio(acc.users, acc.users));
                    drop_off.append_value(0);
                    drop_rate.append_option(ratio(0, acc.users));
                }
                Some(p) => {
                    from_previous.append_option(ratio(acc.users, p));
                    drop_off.append_value(p - acc.users);
                    drop_rate.append_option(ratio(p - acc.users, p));
                }
            }
            from_start.append_option(ratio(acc.users, first));
            acc.durations.sort_unstable();
            let d = &acc.durations;
            let total: i128 = d.iter().map(|&x| x as i128).sum();
            avg.append_option((!d.is_empty()).then(|| total as f64 / d.len() as f64 / 1e6));
            median.append_option(percentile(d, 0.5).map(|x| x / 1e6));
            p90.append_option(percentile(d, 0.9).map(|x| x / 1e6));
        }
    }
    let mut columns: Vec<ArrayRef> = vec![];
    if q.compare.is_some() {
        columns.push(Arc::new(range_col.finish()));
    }
    if q.trend.is_some() {
        columns.push(Arc::new(period_col.finish()));
    }
    if q.by.is_some() {
        columns.push(Arc::new(breakdown.finish()));
    }
    columns.extend([
        Arc::new(step.finish()) as ArrayRef,
        Arc::new(name.finish()),
        Arc::new(users.finish()),
        Arc::new(from_previous.finish()),
        Arc::new(from_start.finish()),
        Arc::new(drop_off.finish()),
        Arc::new(drop_rate.finish()),
        Arc::new(avg.finish()),
        Arc::new(median.finish()),
        Arc::new(p90.finish()),
    ]);
    Ok(RecordBatch::try_new(q.schema(), columns)?)
}

/// The histogram of conversion times: see the contract.
fn time_to_convert(q: &FunnelQuery, partials: &mut [Partial], bins: usize) -> Result<RecordBatch> {
    let mut merged: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for p in partials.iter_mut() {
        for (label, times) in p.conversions.drain() {
            merged
                .entry(label_text(&p.labels, label))
                .or_default()
                .extend(times.iter().map(|t| t.div_euclid(1_000_000)));
        }
    }
    let all = merged.values().flatten();
    let (lo, hi) = (all.clone().min().copied(), all.max().copied());
    let mut values: Vec<(String, Vec<i64>)> = merged.into_iter().collect();
    // The values with the most units first, then by value.
    values.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.0.cmp(&b.0)));
    let (mut breakdown, mut start, mut end, mut users) =
        (StringBuilder::new(), Int64Builder::new(), Int64Builder::new(), Int64Builder::new());
    if let (Some(lo), Some(hi)) = (lo, hi) {
        let span = hi - lo + 1;
        let width = (span + bins as i64 - 1) / bins as i64;
        let used = (span + width - 1) / width;
        for (value, times) in &values {
            let mut counts = vec![0i64; used as usize];
            for t in times {
                counts[((t - lo) / width) as usize] += 1;
            }
            for (k, n) in counts.iter().enumerate() {
                breakdown.append_value(value);
                start.append_value(lo + k as i64 * width);
                end.append_value(lo + (k as i64 + 1) * width);
                users.append_value(*n);
            }
        }
    }
    let mut columns: Vec<ArrayRef> = vec![];
    if q.by.is_some() {
        columns.push(Arc::new(breakdown.finish()));
    }
    columns.extend([Arc::new(start.finish()) as ArrayRef, Arc::new(end.finish()), Arc::new(users.finish())]);
    Ok(RecordBatch::try_new(q.schema(), columns)?)
}

/// The people behind a step's figure: see the contract.
fn people(q: &FunnelQuery, partials: &mut [Partial]) -> Result<RecordBatch> {
    let mut rows: Vec<(i64, String, u32, String)> = vec![];
    for p in partials.iter_mut() {
        for (person, at, last, label) in p.people.drain(..) {
            rows.push((at, person, last, label_text(&p.labels, label)));
        }
    }
    rows.sort();
    let (mut breakdown, mut person, mut last) = (StringBuilder::new(), StringBuilder::new(), Int32Builder::new());
    let mut entered = TimestampMicrosecondBuilder::new().with_data_type(q.time_type());
    for (at, who, step, label) in &rows {
        breakdown.append_value(label);
        person.append_value(who);
        entered.append_value(*at);
        last.append_value(*step as i32);
    }
    let mut columns: Vec<ArrayRef> = vec![];
    if q.by.is_some() {
        columns.push(Arc::new(breakdown.finish()));
    }
    columns.extend([Arc::new(person.finish()) as ArrayRef, Arc::new(entered.finish()), Arc::new(last.finish())]);
    Ok(RecordBatch::try_new(q.schema(), columns)?)
}

/// PostgreSQL's `percentile_cont` over sorted values: linear interpolation between the two
/// nearest ranks.
pub fn percentile(sorted: &[i64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let pos = p * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let (a, b) = (sorted[lo] as f64, sorted[hi] as f64);
    Some(a + (pos - lo as f64) * (b - a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_event_names_unless_they_read_as_predicates() {
        for name in ["signup", "Form submitted", "add-to-cart", "$pageview", "checkout.started", "a/b"] {
            assert!(!is_predicate(name), "{name}");
        }
        for p in [
            "event_name = 'page_view'",
            "page_url LIKE '/pricing%'",
            "event_name IN ('a', 'b')",
            "revenue > 100 AND channel = 'Email'",
            "NOT is_touch",
            "(channel IS NOT NULL)",
            "page_url ~ '^/docs'",
            "revenue BETWEEN 1 AND 2",
        ] {
            assert!(is_predicate(p), "{p}");
        }
    }

    #[test]
    fn percentile_cont() {
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&[7], 0.9), Some(7.0));
        assert_eq!(percentile(&[1, 2, 3, 4], 0.5), Some(2.5));
        // PostgreSQL: percentile_cont(0.9) over 1..10 = 9.1
        assert_eq!(percentile(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9), Some(9.1));
    }
}
