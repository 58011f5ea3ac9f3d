//! `retention`: do people come back? Cohorts by the period of a start event, and how many of
//! each cohort do a return event in each period after.
//!
//! # Contract
//!
//! ```sql
//! SELECT * FROM retention(start => 'signup', return => 'page_view' [, name => value ...])
//! ```
//!
//! Reads the journey model (`journey.events`) or any `source`, and returns one row per cohort
//! and period: `([breakdown,] cohort, period, cohort_size, retained, rate [, value])`.
//!
//! - `start` and `return` are events: a name compared with `event_column` (default
//!   `event_name`), or a predicate over the source's columns (`'event_name = ''purchase'' AND
//!   revenue > 100'`), as the funnel's steps. Rows with a NULL person or time are skipped.
//! - Periods are calendar days, weeks (from Monday) or months (`interval`, default `'day'`) in
//!   the session's time zone (`time_zone` to choose another). `cohort` is the start of the
//!   cohort's period, a `timestamp with time zone`.
//! - `cohort => 'first'` (default, "first time"): a person belongs to the cohort of their first
//!   start event, once. `'recurring'`: to the cohort of every period in which they did a start
//!   event, each time from their first start event in that period.
//! - `period` k counts from the cohort's start event: with calendar periods (default) k is the
//!   period holding the return event minus the cohort's period; with `rolling => true` k is the
//!   number of whole days, weeks (24 hours, 7 days) or local calendar months since the start
//!   event itself. Only return events at or after the start event count.
//! - `retained` at period 0 is the cohort's size (PostHog's convention: the start makes day 0);
//!   at k > 0, the people of the cohort with a return event in period k (`mode => 'on'`,
//!   default), or in period k or any later one (`'on_or_after'`, so the curve never rises).
//!   `rate` = retained / cohort_size. Periods 0 to `periods - 1` (default 8) are listed, except
//!   those after the data's last period (the latest start or return event): a period not yet
//!   lived is left out, not shown as 0.
//! - `value => 'revenue'` adds `value`: the sum of that expression over the cohort's return
//!   events in the period (NULL counts 0), exact to the cent (`numeric(38,2)`); with
//!   `cumulative => true`, the sum over periods 0 to k (the cohort's lifetime value so far).
//! - `by => expression` adds `breakdown` first: its value on the cohort's start event (ties in
//!   time: the smallest), `(none)` when NULL.
//! - Rows are ordered by breakdown, cohort, period. The answer does not depend on row order,
//!   batch size, partitioning or thread count: every choice above is by time, then by value.

use crate::common::options::Options;
use crate::common::periods::{Clock, Interval};
use crate::docs::{FunctionDoc, Kind, Parameter};
use crate::error::ArgumentError;
use crate::physical::report::{Labels, Units, input_times, map_bytes, vec_bytes};
use crate::physical::report::{ReportKernel, ReportQuery, ReportStages, ReportTable, source_relation};
use crate::table::cohorts::{self, Common, flags};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Decimal128Builder, Float64Builder, Int32Builder, Int64Builder, RecordBatch,
    StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Field, Int32Type, Int64Type, Schema, SchemaRef};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::HashMap;
use datafusion::error::Result;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

pub const NAME: &str = "retention";
/// The most periods a report may list.
pub const MAX_PERIODS: i64 = 1000;
const NONE: &str = "(none)";

/// This function's reference ([`crate::docs`]).
pub const DOC: FunctionDoc = FunctionDoc {
    name: NAME,
    kind: Kind::Report,
    usage: "retention(start => ..., return => ... [, name => value, ...])",
    result: "TABLE(cohort timestamp with time zone, period integer, cohort_size bigint, retained bigint, rate double precision)",
    positional: "",
    options: &[
        Parameter::SOURCE,
        Parameter::column("person", "'person_id'"),
        Parameter::column("time", "'event_time'"),
        cohorts::EVENT_COLUMN,
        Parameter {
            name: "start",
            sql_type: "text",
            default: None,
            meaning: "the event that puts a person in a cohort: a name or a predicate",
        },
        Parameter {
            name: "return",
            sql_type: "text",
            default: None,
            meaning: "the event that counts as coming back: a name or a predicate",
        },
        cohorts::interval("'day'"),
        Parameter {
            name: "periods",
            sql_type: "integer",
            default: Some("8"),
            meaning: "periods listed (0 to periods - 1), 1 to [`MAX_PERIODS`]",
        },
        Parameter {
            name: "mode",
            sql_type: "text",
            default: Some("'on'"),
            meaning: "`'on'` (a return in period k) or `'on_or_after'` (in k or later)",
        },
        Parameter {
            name: "cohort",
            sql_type: "text",
            default: Some("'first'"),
            meaning: "`'first'` (the first start event) or `'recurring'` (every period with a start event)",
        },
        Parameter {
            name: "rolling",
            sql_type: "boolean",
            default: Some("false"),
            meaning: "periods counted from the start event itself instead of the calendar",
        },
        Parameter {
            name: "by",
            sql_type: "text",
            default: None,
            meaning: "a breakdown expression, read on the start event",
        },
        Parameter {
            name: "value",
            sql_type: "text",
            default: None,
            meaning: "an expression summed over the return events (adds `value`)",
        },
        Parameter {
            name: "cumulative",
            sql_type: "boolean",
            default: Some("false"),
            meaning: "`value` summed over periods 0 to k",
        },
        cohorts::TIME_ZONE,
    ],
    summary: "Cohorts by the period of a start event, and how many come back in each period after (first-time or recurring, calendar or rolling).",
    description: "one row per cohort and period `([breakdown,] cohort, period, cohort_size, retained, rate [, value])`: people grouped by the day, week or month (session time zone) of their first (or every) `start` event; `retained` at period k = those with a `return` event in period k (`mode => 'on'`) or in k or later (`'on_or_after'`), all of the cohort at period 0; calendar or `rolling` periods; periods after the data's last are left out; `by` breakdown on the start event; `value` sums (optionally `cumulative`) for cohort lifetime value",
    contract: "`udfs/src/table/retention.rs`",
};

/// The table function; `default_source` is the journey model's events view.
#[derive(Debug)]
pub struct RetentionReport {
    default_source: String,
}

impl RetentionReport {
    pub fn new(default_source: impl Into<String>) -> Self {
        RetentionReport { default_source: default_source.into() }
    }
}

impl TableFunctionImpl for RetentionReport {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let query = RetentionQuery::parse(cohorts::options(NAME, &args)?, &self.default_source)?;
        Ok(Arc::new(ReportTable::new(query)))
    }
}

/// The report's stages made again from its call, over an input of columns `input`.
pub(crate) fn stages(call: Options, input: &Schema) -> Result<Arc<dyn ReportStages>> {
    Arc::new(RetentionQuery::parse(call, "")?).stages(input)
}

/// A validated call.
#[derive(Debug, Clone)]
pub struct RetentionQuery {
    common: Common,
    start: String,
    ret: String,
    periods: usize,
    on_or_after: bool,
    recurring: bool,
    rolling: bool,
    by: Option<String>,
    value: Option<String>,
    cumulative: bool,
    call: Options,
}

impl RetentionQuery {
    fn parse(mut o: Options, default_source: &str) -> Result<RetentionQuery> {
        let call = o.clone();
        let bad = |arg: &str, msg: String| ArgumentError::new(NAME, arg, msg).into_datafusion();
        if !o.positional().is_empty() {
            return Err(bad("1", "options must be named: retention(start => 'signup', return => 'page_view')".into()));
        }
        let common = Common::parse(&mut o, default_source, Interval::Day)?;
        let start =
            o.string("start")?.ok_or_else(|| bad("start", "is required: the event that starts a cohort".into()))?;
        let ret = o
            .string("return")?
            .ok_or_else(|| bad("return", "is required: the event that counts as coming back".into()))?;
        let periods = o.int("periods", 1, MAX_PERIODS)?.unwrap_or(8) as usize;
        let on_or_after = match o.string("mode")?.map(|m| m.to_ascii_lowercase()).as_deref() {
            None | Some("on") => false,
            Some("on_or_after") => true,
            Some(other) => return Err(bad("mode", format!("must be 'on' or 'on_or_after', got '{other}'"))),
        };
        let recurring = match o.string("cohort")?.map(|m| m.to_ascii_lowercase()).as_deref() {
            None | Some("first") => false,
            Some("recurring") => true,
            Some(other) => return Err(bad("cohort", format!("must be 'first' or 'recurring', got '{other}'"))),
        };
        let rolling = o.bool("rolling")?.unwrap_or(false);
        let by = o.string("by")?;
        let value = o.string("value")?;
        let cumulative = o.bool("cumulative")?.unwrap_or(false);
        if cumulative && value.is_none() {
            return Err(bad("cumulative", "needs value => an expression to sum".into()));
        }
        o.finish(&DOC.option_names())?;
        Ok(RetentionQuery { common, start, ret, periods, on_or_after, recurring, rolling, by, value, cumulative, call })
    }
}

impl ReportQuery for RetentionQuery {
    fn function(&self) -> &'static str {
        NAME
    }

    fn source(&self) -> &str {
        &self.common.source
    }

    /// One row per start or return event: `(p, t, s, r[, b][, v])`.
    fn input_sql(&self) -> String {
        let c = &self.common;
        let by = self.by.as_ref().map(|b| format!(", CAST(({b}) AS VARCHAR) AS b")).unwrap_or_default();
        let value = self.value.as_ref().map(|v| format!(", CAST(({v}) AS DECIMAL(38, 2)) AS v")).unwrap_or_default();
        let (b, v) = (if self.by.is_some() { ", b" } else { "" }, if self.value.is_some() { ", v" } else { "" });
        format!(
            "SELECT p, t, s, r{b}{v} FROM (SELECT ({person}) AS p, ({time}) AS t, {s} AS s, {r} AS r{by}{value} \
             FROM {from}) AS journey_input WHERE p IS NOT NULL AND t IS NOT NULL AND (s OR r)",
            person = c.person,
            time = c.time,
            s = c.condition(&self.start),
            r = c.condition(&self.ret),
            from = source_relation(&c.source),
        )
    }

    fn schema(&self) -> SchemaRef {
        let mut fields = vec![];
        if self.by.is_some() {
            fields.push(Field::new("breakdown", DataType::Utf8, false));
        }
        fields.extend([
            Field::new("cohort", self.common.label_type(), false),
            Field::new("period", DataType::Int32, false),
            Field::new("cohort_size", DataType::Int64, false),
            Field::new("retained", DataType::Int64, false),
            Field::new("rate", DataType::Float64, false),
        ]);
        if self.value.is_some() {
            fields.push(Field::new("value", DataType::Decimal128(38, 2), false));
        }
        Arc::new(Schema::new(fields))
    }

    /// No sort: each partition numbers its people in a hash table (a person's rows all land in
    /// one partition) and keeps their start and return events apart.
    fn stages(self: Arc<Self>, input: &Schema) -> Result<Arc<dyn ReportStages>> {
        let key_schema = Arc::new(Schema::new(vec![input.field(0).clone()]));
        Ok(Arc::new(RetentionKernel { query: self, key_schema }))
    }
}

#[derive(Debug)]
struct RetentionKernel {
    query: Arc<RetentionQuery>,
    key_schema: SchemaRef,
}

/// Per (breakdown, cohort ordinal, period): people and value in cents.
type Counts = HashMap<(String, i64, i32), (i64, i128)>;

/// A label id for a NULL breakdown value.
const NO_LABEL: u32 = u32::MAX;

struct Partial {
    clock: Clock,
    /// Person key -> dense unit id (a person's rows all land in one partition).
    units: Units,
    labels: Labels,
    /// Start events: (unit, time, breakdown label).
    starts: Vec<(u32, i64, u32)>,
    /// Return events: (unit, time, value in cents).
    returns: Vec<(u32, i64, i128)>,
    counts: Counts,
    /// The latest time of any event read.
    last: Option<i64>,
}

impl fmt::Debug for Partial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Partial").field("starts", &self.starts.len()).field("returns", &self.returns.len()).finish()
    }
}

/// One cohort entry of a person: its start time and period, and its breakdown value.
struct Entry {
    t0: i64,
    cohort: i64,
    by: String,
}

impl RetentionKernel {
    /// Every person's cohort entries and returns, folded into the counts.
    fn fold(&self, partial: &mut Partial) {
        let q = &self.query;
        let periods = q.common.periods;
        let mut starts = std::mem::take(&mut partial.starts);
        let returns = std::mem::take(&mut partial.returns);
        let labels = &partial.labels;
        let text = |id: u32| if id == NO_LABEL { NONE } else { labels.get(id) };
        // By person, in time, ties by breakdown value.
        starts.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)).then_with(|| text(a.2).cmp(text(b.2))));
        // Each person's entries: the first start, or the first of each period with one.
        let mut entries: Vec<Entry> = vec![];
        let mut range: Vec<(u32, u32)> = vec![(0, 0); partial.units.len()];
        let mut i = 0;
        while i < starts.len() {
            let unit = starts[i].0;
            let begin = entries.len() as u32;
            let mut seen = None;
            while i < starts.len() && starts[i].0 == unit {
                let (_, t, by) = starts[i];
                let cohort = partial.clock.ordinal(t);
                if seen != Some(cohort) && (q.recurring || entries.len() as u32 == begin) {
                    // The smallest value among the starts at this time comes first: a NULL
                    // (none) only when no start then has one.
                    let mut best = by;
                    let mut j = i;
                    while j < starts.len() && starts[j].0 == unit && starts[j].1 == t {
                        if best == NO_LABEL {
                            best = starts[j].2;
                        }
                        j += 1;
                    }
                    entries.push(Entry { t0: t, cohort, by: text(best).to_string() });
                    seen = Some(cohort);
                }
                i += 1;
            }
            range[unit as usize] = (begin, entries.len() as u32);
        }
        // Returns: (entry, period) reached, and the value per (entry, period).
        let mut reached: Vec<(u32, u32)> = vec![];
        let mut furthest: Vec<i64> = vec![-1; entries.len()];
        let mut cents: HashMap<(u32, u32), i128> = HashMap::new();
        for &(unit, t, c) in &returns {
            let (begin, end) = range.get(unit as usize).copied().unwrap_or((0, 0));
            for e in begin..end {
                let entry = &entries[e as usize];
                if t < entry.t0 {
                    continue;
                }
                let k = if q.rolling { periods.rolling(entry.t0, t) } else { partial.clock.ordinal(t) - entry.cohort };
                furthest[e as usize] = furthest[e as usize].max(k);
                if let Some(k) = u32::try_from(k).ok().filter(|&k| (k as usize) < q.periods) {
                    reached.push((e, k));
                    if c != 0 {
                        *cents.entry((e, k)).or_default() += c;
                    }
                }
            }
        }
        reached.sort_unstable();
        reached.dedup();
        let mut add = |e: u32, k: u32, people: i64, value: i128| {
            let entry = &entries[e as usize];
            let slot = partial.counts.entry((entry.by.clone(), entry.cohort, k as i32)).or_default();
            slot.0 += people;
            slot.1 += value;
        };
        for (e, f) in furthest.iter().enumerate() {
            add(e as u32, 0, 1, 0);
            if q.on_or_after {
                for k in 1..=(*f).min(q.periods as i64 - 1) {
                    add(e as u32, k as u32, 1, 0);
                }
            }
        }
        if !q.on_or_after {
            for &(e, k) in reached.iter().filter(|r| r.1 > 0) {
                add(e, k, 1, 0);
            }
        }
        for (&(e, k), &c) in &cents {
            add(e, k, 0, c);
        }
    }
}

fn state_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("breakdown", DataType::Utf8, true),
        Field::new("cohort", DataType::Int64, false),
        Field::new("period", DataType::Int32, false),
        Field::new("people", DataType::Int64, false),
        Field::new("cents", DataType::Decimal128(38, 2), false),
    ]))
}

impl ReportKernel for RetentionKernel {
    type Partial = Partial;

    fn memory(&self, p: &Partial) -> usize {
        // The counts are made once, at the end of the partition.
        let text: usize = p.counts.keys().map(|k| k.0.capacity()).sum();
        p.units.memory()
            + p.labels.memory()
            + vec_bytes(&p.starts)
            + vec_bytes(&p.returns)
            + map_bytes(&p.counts)
            + text
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
            clock: Clock::new(self.query.common.periods),
            units: Units::new(self.key_schema.clone())?,
            labels: Labels::default(),
            starts: vec![],
            returns: vec![],
            counts: Counts::default(),
            last: None,
        })
    }

    fn update(&self, partial: &mut Partial, batch: &RecordBatch) -> Result<()> {
        let q = &self.query;
        let times = input_times(NAME, batch.column(1))?;
        let (starts, rets) = (flags(batch.column(2)), flags(batch.column(3)));
        let mut next = 4;
        let by = q.by.as_ref().map(|_| {
            next += 1;
            cast(batch.column(next - 1), &DataType::Utf8)
        });
        let by = by.transpose()?;
        let by = by.as_ref().map(|b| b.as_string::<i32>());
        let value = q.value.as_ref().map(|_| batch.column(next).as_primitive::<Decimal128Type>());
        if let Some(&t) = times.iter().max() {
            partial.last = Some(partial.last.map_or(t, |l| l.max(t)));
        }
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let units = partial.units.intern(&[batch.column(0).clone()])?;
        for (i, &unit) in units.iter().enumerate() {
            let unit = unit as u32;
            if starts[i] {
                let label = match by {
                    Some(b) if b.is_valid(i) => partial.labels.id(b.value(i)),
                    _ => NO_LABEL,
                };
                partial.starts.push((unit, times[i], label));
            }
            if rets[i] {
                let cents = value.map_or(0, |v| if v.is_valid(i) { v.value(i) } else { 0 });
                partial.returns.push((unit, times[i], cents));
            }
        }
        Ok(())
    }

    fn end_partition(&self, partial: &mut Partial) -> Result<()> {
        self.fold(partial);
        Ok(())
    }

    /// One row per (breakdown, cohort, period), and a row with a NULL breakdown holding the
    /// latest time in `cohort` (period -1).
    fn encode(&self, partial: Partial) -> Result<RecordBatch> {
        let (mut by, mut cohort, mut period) = (StringBuilder::new(), Int64Builder::new(), Int32Builder::new());
        let (mut people, mut cents) = (Int64Builder::new(), Decimal128Builder::new().with_precision_and_scale(38, 2)?);
        for ((b, c, k), (n, v)) in partial.counts {
            by.append_value(b);
            cohort.append_value(c);
            period.append_value(k);
            people.append_value(n);
            cents.append_value(v);
        }
        if let Some(last) = partial.last {
            by.append_null();
            cohort.append_value(last);
            period.append_value(-1);
            people.append_value(0);
            cents.append_value(0);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(by.finish()),
            Arc::new(cohort.finish()),
            Arc::new(period.finish()),
            Arc::new(people.finish()),
            Arc::new(cents.finish()),
        ];
        Ok(RecordBatch::try_new(state_schema(), columns)?)
    }

    fn decode(&self, rows: &RecordBatch) -> Result<Partial> {
        let mut partial = self.new_partial()?;
        let by = rows.column(0).as_string::<i32>();
        let cohort = rows.column(1).as_primitive::<Int64Type>();
        let period = rows.column(2).as_primitive::<Int32Type>();
        let people = rows.column(3).as_primitive::<Int64Type>();
        let cents = rows.column(4).as_primitive::<Decimal128Type>();
        for i in 0..rows.num_rows() {
            if by.is_null(i) {
                partial.last = Some(partial.last.map_or(cohort.value(i), |l| l.max(cohort.value(i))));
                continue;
            }
            let slot = partial.counts.entry((by.value(i).to_string(), cohort.value(i), period.value(i))).or_default();
            slot.0 += people.value(i);
            slot.1 += cents.value(i);
        }
        Ok(partial)
    }

    fn finish(&self, partials: Vec<Partial>) -> Result<RecordBatch> {
        let q = &self.query;
        let periods = &q.common.periods;
        let mut counts: BTreeMap<(String, i64, i32), (i64, i128)> = BTreeMap::new();
        let mut last: Option<i64> = None;
        for p in partials {
            if let Some(l) = p.last {
                last = Some(last.map_or(l, |x| x.max(l)));
            }
            for (key, (n, v)) in p.counts {
                let slot = counts.entry(key).or_default();
                slot.0 += n;
                slot.1 += v;
            }
        }
        let last = last.map(|t| periods.ordinal(t));
        let mut breakdown = StringBuilder::new();
        let mut cohort = TimestampMicrosecondBuilder::new().with_data_type(q.common.label_type());
        let (mut period, mut size, mut retained) = (Int32Builder::new(), Int64Builder::new(), Int64Builder::new());
        let mut rate = Float64Builder::new();
        let mut value = Decimal128Builder::new().with_precision_and_scale(38, 2)?;
        // The cohorts: their period-0 rows.
        let cohorts: Vec<(String, i64, i64)> =
            counts.iter().filter(|((_, _, k), _)| *k == 0).map(|((b, c, _), (n, _))| (b.clone(), *c, *n)).collect();
        for (b, c, n) in cohorts {
            let mut running = 0i128;
            for k in 0..q.periods as i32 {
                // Periods after the data's last one have not been lived yet.
                if last.is_some_and(|l| c + i64::from(k) > l) {
                    break;
                }
                let (people, cents) = counts.get(&(b.clone(), c, k)).copied().unwrap_or_default();
                running += cents;
                if q.by.is_some() {
                    breakdown.append_value(&b);
                }
                cohort.append_value(periods.start(c));
                period.append_value(k);
                size.append_value(n);
                retained.append_value(people);
                rate.append_value(people as f64 / n as f64);
                value.append_value(if q.cumulative { running } else { cents });
            }
        }
        let mut columns: Vec<ArrayRef> = vec![];
        if q.by.is_some() {
            columns.push(Arc::new(breakdown.finish()));
        }
        columns.extend([
            Arc::new(cohort.finish()) as ArrayRef,
            Arc::new(period.finish()),
            Arc::new(size.finish()),
            Arc::new(retained.finish()),
            Arc::new(rate.finish()),
        ]);
        if q.value.is_some() {
            columns.push(Arc::new(value.finish()));
        }
        Ok(RecordBatch::try_new(q.schema(), columns)?)
    }
}
