//! `lifecycle` and `stickiness`: how people's activity comes and goes from period to period.
//!
//! # Contract
//!
//! ```sql
//! SELECT * FROM lifecycle(event => 'page_view' [, interval => 'week', ...])
//! SELECT * FROM stickiness(event => 'page_view' [, interval => 'day', within => 'week', ...])
//! ```
//!
//! Both read the journey model (`journey.events`) or any `source`. A person is **active** in a
//! period (calendar day, week from Monday or month of `interval`, in the session's time zone or
//! `time_zone`) when they did `event` then: a name compared with `event_column` (default
//! `event_name`), or a predicate over the source's columns (`'event_name = ''purchase'' AND
//! revenue > 100'`). Rows with a NULL person or time are skipped.
//!
//! `lifecycle` returns `(period, status, persons)`: for every period from the first to the last
//! in which anyone was active, four rows (zeros included), PostHog's statuses:
//! - `new`: active now for the first time (the person's first active period in the data; PostHog
//!   uses the person's creation time, which an event store does not have);
//! - `returning`: active now and in the period before;
//! - `resurrecting`: active now, not in the period before, but in some period before that;
//! - `dormant`: active in the period before, not now. PostHog charts these as negative numbers;
//!   `persons` is the count, never negative.
//!
//! `stickiness` returns `(intervals, persons)`: how many people were active in exactly k of the
//! periods, for k from 1 to the most any person reached. With `within => 'week'` or `'month'`
//! (coarser than `interval`), activity is counted per such calendar window and the rows are
//! `(period, intervals, persons)`: per window, how many people were active in exactly k of its
//! intervals (a week `interval` belongs to the window its Monday falls in).
//!
//! Both are deterministic: a person's activity is a set of periods, whatever the rows' order,
//! batch size or partitioning.

use crate::common::options::Options;
use crate::common::periods::{Clock, Interval, Periods};
use crate::docs::{FunctionDoc, Kind, Parameter};
use crate::error::ArgumentError;
use crate::physical::report::{ReportKernel, ReportQuery, ReportStages, ReportTable, source_relation};
use crate::physical::report::{Units, input_times, map_bytes, vec_bytes};
use crate::table::cohorts::{self, Common};
use datafusion::arrow::array::{
    ArrayRef, AsArray, Int32Builder, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Int32Type, Int64Type, Schema, SchemaRef};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::HashMap;
use datafusion::error::Result;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

pub const LIFECYCLE: &str = "lifecycle";
pub const STICKINESS: &str = "stickiness";

/// The statuses, in the order the rows list them.
pub const STATUSES: [&str; 4] = ["new", "returning", "resurrecting", "dormant"];

/// `lifecycle`'s reference ([`crate::docs`]).
pub const LIFECYCLE_DOC: FunctionDoc = FunctionDoc {
    name: LIFECYCLE,
    kind: Kind::Report,
    usage: "lifecycle(event => ... [, name => value, ...])",
    result: "TABLE(period timestamp with time zone, status text, persons bigint)",
    positional: "",
    options: &[
        Parameter::SOURCE,
        Parameter::column("person", "'person_id'"),
        Parameter::column("time", "'event_time'"),
        cohorts::EVENT_COLUMN,
        Parameter {
            name: "event",
            sql_type: "text",
            default: None,
            meaning: "the activity: an event name or a predicate",
        },
        cohorts::interval("'week'"),
        cohorts::TIME_ZONE,
    ],
    summary: "Per period, how many people are new, returning, resurrecting or dormant (PostHog's lifecycle).",
    description: "four rows per period `(period, status, persons)` from the first to the last active period (session time zone): `new` (first active period), `returning` (active now and in the period before), `resurrecting` (active now, not before, but earlier), `dormant` (active before, not now; a count, not negative)",
    contract: "`udfs/src/table/activity.rs`",
};

/// `stickiness`'s reference.
pub const STICKINESS_DOC: FunctionDoc = FunctionDoc {
    name: STICKINESS,
    kind: Kind::Report,
    usage: "stickiness(event => ... [, name => value, ...])",
    result: "TABLE(intervals integer, persons bigint)",
    positional: "",
    options: &[
        Parameter::SOURCE,
        Parameter::column("person", "'person_id'"),
        Parameter::column("time", "'event_time'"),
        cohorts::EVENT_COLUMN,
        Parameter {
            name: "event",
            sql_type: "text",
            default: None,
            meaning: "the activity: an event name or a predicate",
        },
        cohorts::interval("'day'"),
        Parameter {
            name: "within",
            sql_type: "text",
            default: None,
            meaning: "`'week'` or `'month'`: count per calendar window (adds `period`)",
        },
        cohorts::TIME_ZONE,
    ],
    summary: "How many people were active in exactly k periods (PostHog's stickiness), overall or per window.",
    description: "rows `(intervals, persons)`: people active in exactly k days, weeks or months (session time zone), k from 1 to the most reached; with `within => 'week'` or `'month'` per calendar window: `(period, intervals, persons)`",
    contract: "`udfs/src/table/activity.rs`",
};

/// The table functions; `default_source` is the journey model's events view.
#[derive(Debug)]
pub struct ActivityReport {
    name: &'static str,
    default_source: String,
}

impl ActivityReport {
    pub fn lifecycle(default_source: impl Into<String>) -> Self {
        ActivityReport { name: LIFECYCLE, default_source: default_source.into() }
    }

    pub fn stickiness(default_source: impl Into<String>) -> Self {
        ActivityReport { name: STICKINESS, default_source: default_source.into() }
    }
}

impl TableFunctionImpl for ActivityReport {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let query = ActivityQuery::parse(cohorts::options(self.name, &args)?, &self.default_source)?;
        Ok(Arc::new(ReportTable::new(query)))
    }
}

/// Either report's stages made again from its call, over an input of columns `input`.
pub(crate) fn stages(call: Options, input: &Schema) -> Result<Arc<dyn ReportStages>> {
    Arc::new(ActivityQuery::parse(call, "")?).stages(input)
}

/// A validated call of either report.
#[derive(Debug, Clone)]
pub struct ActivityQuery {
    common: Common,
    event: String,
    /// `stickiness` per window (`within`); `None` for `lifecycle` and for all the data.
    within: Option<Periods>,
    call: Options,
}

impl ActivityQuery {
    fn lifecycle(&self) -> bool {
        self.call.function() == LIFECYCLE
    }

    fn parse(mut o: Options, default_source: &str) -> Result<ActivityQuery> {
        let call = o.clone();
        let name = o.function();
        let bad = |arg: &str, msg: String| ArgumentError::new(name, arg, msg).into_datafusion();
        if !o.positional().is_empty() {
            return Err(bad("1", format!("options must be named: {name}(event => 'page_view')")));
        }
        let default_interval = if name == LIFECYCLE { Interval::Week } else { Interval::Day };
        let common = Common::parse(&mut o, default_source, default_interval)?;
        let event = o
            .string("event")?
            .ok_or_else(|| bad("event", "is required: the event that makes a person active".into()))?;
        let within = if name == STICKINESS {
            match o.string("within")? {
                None => None,
                Some(text) => {
                    let interval = Interval::parse(name, "within", &text)?;
                    let coarser = matches!(
                        (common.periods.interval, interval),
                        (Interval::Day, Interval::Week | Interval::Month) | (Interval::Week, Interval::Month)
                    );
                    if !coarser {
                        return Err(bad(
                            "within",
                            format!(
                                "must be longer than interval '{}', got '{}'",
                                common.periods.interval.name(),
                                interval.name()
                            ),
                        ));
                    }
                    Some(Periods { interval, zone: common.periods.zone })
                }
            }
        } else {
            None
        };
        let options = if name == LIFECYCLE { LIFECYCLE_DOC.option_names() } else { STICKINESS_DOC.option_names() };
        o.finish(&options)?;
        Ok(ActivityQuery { common, event, within, call })
    }
}

impl ReportQuery for ActivityQuery {
    fn function(&self) -> &'static str {
        self.call.function()
    }

    fn source(&self) -> &str {
        &self.common.source
    }

    /// One row per active event: `(p, t)`.
    fn input_sql(&self) -> String {
        let c = &self.common;
        format!(
            "SELECT p, t FROM (SELECT ({person}) AS p, ({time}) AS t, {active} AS a FROM {from}) AS journey_input \
             WHERE p IS NOT NULL AND t IS NOT NULL AND a",
            person = c.person,
            time = c.time,
            active = c.condition(&self.event),
            from = source_relation(&c.source),
        )
    }

    fn schema(&self) -> SchemaRef {
        let period = Field::new("period", self.common.label_type(), false);
        let persons = Field::new("persons", DataType::Int64, false);
        Arc::new(Schema::new(if self.lifecycle() {
            vec![period, Field::new("status", DataType::Utf8, false), persons]
        } else if self.within.is_some() {
            vec![period, Field::new("intervals", DataType::Int32, false), persons]
        } else {
            vec![Field::new("intervals", DataType::Int32, false), persons]
        }))
    }

    /// No sort: each partition numbers its people in a hash table (a person's rows all land in
    /// one partition) and sorts (person number, period) pairs.
    fn stages(self: Arc<Self>, input: &Schema) -> Result<Arc<dyn ReportStages>> {
        let key_schema = Arc::new(Schema::new(vec![input.field(0).clone()]));
        Ok(Arc::new(ActivityKernel { query: self, key_schema }))
    }
}

#[derive(Debug)]
struct ActivityKernel {
    query: Arc<ActivityQuery>,
    key_schema: SchemaRef,
}

/// Per (period ordinal or window, status index or k): persons. The window is 0 for stickiness
/// over all the data.
type Counts = HashMap<(i64, i32), i64>;

struct Partial {
    clock: Clock,
    /// Person key -> dense unit id (a person's rows all land in one partition).
    units: Units,
    /// (unit, active period ordinal) per row read, repeats of the row before left out.
    pairs: Vec<(u32, i64)>,
    counts: Counts,
    /// The first and last active period of anyone (lifecycle's range).
    range: Option<(i64, i64)>,
}

impl fmt::Debug for Partial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Partial").field("pairs", &self.pairs.len()).field("range", &self.range).finish()
    }
}

impl ActivityKernel {
    /// Every person's distinct active periods, folded into the counts.
    fn fold(&self, partial: &mut Partial) {
        let mut pairs = std::mem::take(&mut partial.pairs);
        // Rows of a person usually come together (and units are numbered as first seen).
        if !pairs.is_sorted() {
            pairs.sort_unstable();
        }
        pairs.dedup();
        let mut active: Vec<i64> = vec![];
        let mut start = 0;
        while start < pairs.len() {
            let unit = pairs[start].0;
            let end = start + pairs[start..].iter().take_while(|p| p.0 == unit).count();
            active.clear();
            active.extend(pairs[start..end].iter().map(|p| p.1));
            self.person(&active, partial);
            start = end;
        }
    }

    /// One person's active periods (ascending, distinct) folded into the counts.
    fn person(&self, active: &[i64], partial: &mut Partial) {
        if let (Some(&first), Some(&last)) = (active.first(), active.last()) {
            partial.range = Some(partial.range.map_or((first, last), |(a, b)| (a.min(first), b.max(last))));
            let mut count = |key: (i64, i32)| *partial.counts.entry(key).or_default() += 1;
            if self.query.lifecycle() {
                for (i, &a) in active.iter().enumerate() {
                    let status = match i {
                        0 => 0,
                        _ if active[i - 1] == a - 1 => 1,
                        _ => 2,
                    };
                    count((a, status));
                    if active.get(i + 1) != Some(&(a + 1)) {
                        count((a + 1, 3));
                    }
                }
            } else if let Some(within) = &self.query.within {
                let periods = &self.query.common.periods;
                let mut windows: BTreeMap<i64, i32> = BTreeMap::new();
                for &a in active {
                    *windows.entry(within.ordinal(periods.start(a))).or_default() += 1;
                }
                for (w, k) in windows {
                    count((w, k));
                }
            } else {
                count((0, active.len() as i32));
            }
        }
    }
}

fn state_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("period", DataType::Int64, false),
        Field::new("key", DataType::Int32, false),
        Field::new("persons", DataType::Int64, false),
    ]))
}

/// The `key` of the state row holding the range: (first, last) as (period, persons).
const RANGE: i32 = i32::MIN;

impl ReportKernel for ActivityKernel {
    type Partial = Partial;

    fn memory(&self, p: &Partial) -> usize {
        p.units.memory() + vec_bytes(&p.pairs) + map_bytes(&p.counts)
    }

    fn name(&self) -> &'static str {
        self.query.call.function()
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
            pairs: vec![],
            counts: Counts::default(),
            range: None,
        })
    }

    fn update(&self, partial: &mut Partial, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let times = input_times(self.query.call.function(), batch.column(1))?;
        let units = partial.units.intern(&[batch.column(0).clone()])?;
        for (i, &unit) in units.iter().enumerate() {
            let pair = (unit as u32, partial.clock.ordinal(times[i]));
            if partial.pairs.last() != Some(&pair) {
                partial.pairs.push(pair);
            }
        }
        Ok(())
    }

    fn end_partition(&self, partial: &mut Partial) -> Result<()> {
        self.fold(partial);
        Ok(())
    }

    fn encode(&self, partial: Partial) -> Result<RecordBatch> {
        let (mut period, mut key, mut persons) = (Int64Builder::new(), Int32Builder::new(), Int64Builder::new());
        for ((p, k), n) in partial.counts {
            period.append_value(p);
            key.append_value(k);
            persons.append_value(n);
        }
        if let Some((first, last)) = partial.range {
            period.append_value(first);
            key.append_value(RANGE);
            persons.append_value(last);
        }
        let columns: Vec<ArrayRef> =
            vec![Arc::new(period.finish()), Arc::new(key.finish()), Arc::new(persons.finish())];
        Ok(RecordBatch::try_new(state_schema(), columns)?)
    }

    fn decode(&self, rows: &RecordBatch) -> Result<Partial> {
        let mut partial = self.new_partial()?;
        let period = rows.column(0).as_primitive::<Int64Type>();
        let key = rows.column(1).as_primitive::<Int32Type>();
        let persons = rows.column(2).as_primitive::<Int64Type>();
        for i in 0..rows.num_rows() {
            let (p, k, n) = (period.value(i), key.value(i), persons.value(i));
            if k == RANGE {
                partial.range = Some(partial.range.map_or((p, n), |(a, b)| (a.min(p), b.max(n))));
            } else {
                *partial.counts.entry((p, k)).or_default() += n;
            }
        }
        Ok(partial)
    }

    fn finish(&self, partials: Vec<Partial>) -> Result<RecordBatch> {
        let q = &self.query;
        let mut counts: BTreeMap<(i64, i32), i64> = BTreeMap::new();
        let mut range: Option<(i64, i64)> = None;
        for p in partials {
            if let Some((a, b)) = p.range {
                range = Some(range.map_or((a, b), |(x, y)| (x.min(a), y.max(b))));
            }
            for (key, n) in p.counts {
                *counts.entry(key).or_default() += n;
            }
        }
        let mut label = TimestampMicrosecondBuilder::new().with_data_type(q.common.label_type());
        let (mut status, mut intervals, mut persons) = (StringBuilder::new(), Int32Builder::new(), Int64Builder::new());
        let mut columns: Vec<ArrayRef> = vec![];
        if q.lifecycle() {
            if let Some((first, last)) = range {
                for p in first..=last {
                    for (s, name) in STATUSES.iter().enumerate() {
                        label.append_value(q.common.periods.start(p));
                        status.append_value(name);
                        persons.append_value(counts.get(&(p, s as i32)).copied().unwrap_or(0));
                    }
                }
            }
            columns.extend([
                Arc::new(label.finish()) as ArrayRef,
                Arc::new(status.finish()),
                Arc::new(persons.finish()),
            ]);
        } else {
            let most = counts.keys().map(|&(_, k)| k).max().unwrap_or(0);
            let windows: Vec<i64> = {
                let mut w: Vec<i64> = counts.keys().map(|&(w, _)| w).collect();
                w.dedup();
                w
            };
            for w in windows {
                for k in 1..=most {
                    if let Some(within) = &q.within {
                        label.append_value(within.start(w));
                    }
                    intervals.append_value(k);
                    persons.append_value(counts.get(&(w, k)).copied().unwrap_or(0));
                }
            }
            if q.within.is_some() {
                columns.push(Arc::new(label.finish()));
            }
            columns.extend([Arc::new(intervals.finish()) as ArrayRef, Arc::new(persons.finish())]);
        }
        Ok(RecordBatch::try_new(q.schema(), columns)?)
    }
}
