//! What the cohort reports (`retention`, `lifecycle`, `stickiness`) share: the options that say
//! where events are read and how time is cut into periods, events named by name or by
//! predicate, and reading an input's times and flags.

use crate::common::options::Options;
use crate::common::periods::{Interval, Periods, zone};
use crate::docs::Parameter;
use crate::error::ArgumentError;
use crate::table::funnel::is_predicate;
use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::catalog::TableFunctionArgs;
use datafusion::common::ScalarValue;
use datafusion::error::Result;

/// The options every cohort report takes, as [`Parameter`]s.
pub const TIME_ZONE: Parameter = Parameter {
    name: "time_zone",
    sql_type: "text",
    default: Some("current_setting('TimeZone')"),
    meaning: "the zone whose calendar cuts periods (the session's `TimeZone` unless given)",
};

/// The call's options with the session's time zone added unless the call names one.
pub fn options(function: &'static str, args: &TableFunctionArgs) -> Result<Options> {
    let session_zone = args.session().config_options().execution.time_zone.clone();
    Ok(Options::parse(function, args)?.with_default("time_zone", session_zone.map(|z| ScalarValue::Utf8(Some(z)))))
}

/// Where the events are read and how periods are cut.
#[derive(Debug, Clone)]
pub struct Common {
    pub source: String,
    pub person: String,
    pub time: String,
    pub event: String,
    pub periods: Periods,
}

impl Common {
    /// Reads `source`, `person`, `time`, `event`, `interval` (default `default_interval`) and
    /// `time_zone` from the call.
    pub fn parse(o: &mut Options, default_source: &str, default_interval: Interval) -> Result<Common> {
        let function = o.function();
        let source = o.string("source")?.unwrap_or_else(|| default_source.to_string());
        let person = o.string("person")?.unwrap_or_else(|| "person_id".into());
        let time = o.string("time")?.unwrap_or_else(|| "event_time".into());
        let event = o.string("event_column")?.unwrap_or_else(|| "event_name".into());
        let interval = match o.string("interval")? {
            Some(text) => Interval::parse(function, "interval", &text)?,
            None => default_interval,
        };
        let zone = zone(function, o.string("time_zone")?.as_deref())?;
        for (arg, v) in [("source", &source), ("person", &person), ("time", &time), ("event_column", &event)] {
            if v.trim().is_empty() {
                return Err(ArgumentError::new(function, arg, "must not be empty").into_datafusion());
            }
        }
        Ok(Common { source, person, time, event, periods: Periods { interval, zone } })
    }

    /// The SQL condition for an event given by name (`'purchase'`) or as a predicate over the
    /// source's columns (`'event_name = ''purchase'' AND revenue > 100'`); NULL is false.
    pub fn condition(&self, text: &str) -> String {
        if is_predicate(text) {
            format!("coalesce(({text}), FALSE)")
        } else {
            format!("coalesce(({}) = '{}', FALSE)", self.event, text.replace('\'', "''"))
        }
    }

    /// The period labels' type: instants shown in the report's zone.
    pub fn label_type(&self) -> DataType {
        DataType::Timestamp(TimeUnit::Microsecond, Some(self.periods.zone.name().into()))
    }
}

/// The `event_column` option: the column event names are compared with.
pub const EVENT_COLUMN: Parameter = Parameter {
    name: "event_column",
    sql_type: "text",
    default: Some("'event_name'"),
    meaning: "the column an event given by name is compared with",
};

/// The `interval` option.
pub const fn interval(default: &'static str) -> Parameter {
    Parameter {
        name: "interval",
        sql_type: "text",
        default: Some(default),
        meaning: "`'day'`, `'week'` (from Monday) or `'month'`",
    }
}

/// The input's boolean column `i` as a vector (NULL false).
pub fn flags(column: &ArrayRef) -> Vec<bool> {
    let b = column.as_boolean();
    (0..b.len()).map(|i| b.is_valid(i) && b.value(i)).collect()
}
