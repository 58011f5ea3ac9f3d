//! PostgreSQL's date and time functions that DataFusion lacks or spells differently, as
//! Metabase's generated SQL calls them: `age(a [, b])` (a symbolic interval: years, months,
//! days, time), `timezone(zone, ts)` (`ts AT TIME ZONE zone`: an instant to the wall clock of
//! the zone, a wall clock of the zone to an instant) and `make_time(hour, minute, seconds)` with
//! fractional seconds. Timestamps with a time zone are read in UTC.

use crate::error::{Error, SqlState};
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeZone, Timelike};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, IntervalMonthDayNanoArray, Time64MicrosecondArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{
    DataType, Float64Type, Int64Type, IntervalMonthDayNano, TimeUnit, TimestampMicrosecondType,
};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use datafusion::prelude::SessionContext;

pub fn register(ctx: &SessionContext) {
    for f in [Function::Age, Function::Timezone, Function::MakeTime] {
        ctx.register_udf(ScalarUDF::from(DateTimeUdf {
            function: f,
            signature: Signature::variadic_any(Volatility::Stable),
        }));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Function {
    Age,
    Timezone,
    MakeTime,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct DateTimeUdf {
    function: Function,
    signature: Signature,
}

const MICROS: DataType = DataType::Timestamp(TimeUnit::Microsecond, None);

fn sql_error(code: SqlState, message: String) -> DataFusionError {
    DataFusionError::External(Box::new(Error::Sql(code, message)))
}

fn arity(name: &str, args: usize, allowed: &[usize]) -> Result<()> {
    if allowed.contains(&args) {
        Ok(())
    } else {
        Err(sql_error(SqlState::UndefinedFunction, format!("function {name} with {args} arguments does not exist")))
    }
}

impl ScalarUDFImpl for DateTimeUdf {
    fn name(&self) -> &str {
        match self.function {
            Function::Age => "age",
            Function::Timezone => "timezone",
            Function::MakeTime => "make_time",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match self.function {
            Function::Age => {
                arity("age", args.len(), &[1, 2])?;
                Ok(DataType::Interval(datafusion::arrow::datatypes::IntervalUnit::MonthDayNano))
            }
            Function::Timezone => {
                arity("timezone", args.len(), &[2])?;
                Ok(match &args[1] {
                    // An instant becomes the zone's wall clock; a wall clock becomes an instant.
                    DataType::Timestamp(_, Some(_)) => MICROS,
                    _ => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                })
            }
            Function::MakeTime => {
                arity("make_time", args.len(), &[3])?;
                Ok(DataType::Time64(TimeUnit::Microsecond))
            }
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        super::functions::over_arrays(&args.args, args.number_rows, |arrays, rows| match self.function {
            Function::Age => age(arrays, rows),
            Function::Timezone => timezone(arrays),
            Function::MakeTime => make_time(arrays),
        })
    }
}

/// Microseconds since the epoch (UTC for an instant, the wall clock otherwise).
pub(crate) fn micros(a: &ArrayRef) -> Result<TimestampMicrosecondArray> {
    let naive = match a.data_type() {
        DataType::Timestamp(unit, Some(_)) => {
            // The instant's UTC wall clock: reinterpret the stored value without the zone.
            let plain = DataType::Timestamp(*unit, None);
            let values = datafusion::arrow::compute::cast(a, &DataType::Int64)?;
            datafusion::arrow::compute::cast(&datafusion::arrow::compute::cast(&values, &plain)?, &MICROS)?
        }
        _ => datafusion::arrow::compute::cast(a, &MICROS)?,
    };
    Ok(naive.as_primitive::<TimestampMicrosecondType>().clone())
}

/// Microseconds since the epoch of the wall clock: an instant's in its zone (the session's
/// TimeZone), a plain timestamp's or date's as it is.
pub(crate) fn wall_clock(a: &ArrayRef) -> Result<TimestampMicrosecondArray> {
    let utc = micros(a)?;
    let DataType::Timestamp(_, Some(zone)) = a.data_type() else { return Ok(utc) };
    Ok(utc.unary(|us| {
        let offset = to_datetime(us).and_then(|t| super::time_zone::offset_at(zone, t)).unwrap_or(0);
        us + i64::from(offset) * 1_000_000
    }))
}

fn to_datetime(us: i64) -> Option<NaiveDateTime> {
    DateTime::from_timestamp_micros(us).map(|d| d.naive_utc())
}

/// `age(a, b)`: `a - b` as PostgreSQL's `age` shows it, field by field with borrowing (whole
/// months and years, then days, then time); `age(a)` is `age(current_date, a)`.
fn age(a: &[ArrayRef], rows: usize) -> Result<ArrayRef> {
    let (later, earlier) =
        if a.len() == 2 { (Some(wall_clock(&a[0])?), wall_clock(&a[1])?) } else { (None, wall_clock(&a[0])?) };
    let today = chrono::Utc::now().date_naive().and_hms_opt(0, 0, 0).unwrap_or_default();
    let mut out = Vec::with_capacity(rows);
    for i in 0..rows {
        let first = match &later {
            Some(l) if l.is_null(i) => None,
            Some(l) => to_datetime(l.value(i)),
            None => Some(today),
        };
        let second = if earlier.is_null(i) { None } else { to_datetime(earlier.value(i)) };
        out.push(match (first, second) {
            (Some(x), Some(y)) => Some(symbolic_difference(x, y)),
            _ => None,
        });
    }
    Ok(std::sync::Arc::new(IntervalMonthDayNanoArray::from(out)))
}

fn days_in_month(year: i32, month: u32) -> i64 {
    let next =
        if month == 12 { NaiveDate::from_ymd_opt(year + 1, 1, 1) } else { NaiveDate::from_ymd_opt(year, month + 1, 1) };
    match (next, NaiveDate::from_ymd_opt(year, month, 1)) {
        (Some(n), Some(f)) => (n - f).num_days(),
        _ => 30,
    }
}

/// PostgreSQL's `timestamp_age`: fields subtracted, the sign taken from the order, borrows
/// normalised with the month lengths of the earlier timestamp.
pub fn symbolic_difference(a: NaiveDateTime, b: NaiveDateTime) -> IntervalMonthDayNano {
    let field = |d: &NaiveDateTime| {
        [
            i64::from(d.year()),
            i64::from(d.month()),
            i64::from(d.day()),
            i64::from(d.hour()),
            i64::from(d.minute()),
            i64::from(d.second()),
            i64::from(d.nanosecond() / 1000),
        ]
    };
    let (fa, fb) = (field(&a), field(&b));
    let mut d: Vec<i64> = fa.iter().zip(fb.iter()).map(|(x, y)| x - y).collect();
    let negative = a < b;
    if negative {
        d.iter_mut().for_each(|v| *v = -*v);
    }
    let (year, month) = if negative { (a.year(), a.month()) } else { (b.year(), b.month()) };
    let limits = [0, 12, 0, 24, 60, 60, 1_000_000];
    for i in (1..7).rev() {
        while d[i] < 0 {
            d[i] += if i == 2 { days_in_month(year, month) } else { limits[i] };
            d[i - 1] -= 1;
        }
    }
    if negative {
        d.iter_mut().for_each(|v| *v = -*v);
    }
    let months = (d[0] * 12 + d[1]) as i32;
    let nanos = (((d[3] * 60 + d[4]) * 60 + d[5]) * 1_000_000 + d[6]) * 1000;
    IntervalMonthDayNano::new(months, d[2] as i32, nanos)
}

fn zone(name: &str) -> Result<chrono_tz::Tz> {
    super::time_zone::parse(name)
        .ok_or_else(|| sql_error(SqlState::InvalidParameterValue, format!("time zone \"{name}\" not recognized")))
}

/// `timezone(zone, ts)`, PostgreSQL's `ts AT TIME ZONE zone`.
fn timezone(a: &[ArrayRef]) -> Result<ArrayRef> {
    let zones = datafusion::arrow::compute::cast(&a[0], &DataType::Utf8)?;
    let zones = zones.as_string::<i32>();
    let instant = matches!(a[1].data_type(), DataType::Timestamp(_, Some(_)));
    let values = micros(&a[1])?;
    let mut out = Vec::with_capacity(values.len());
    for i in 0..values.len() {
        if values.is_null(i) || zones.is_null(i) {
            out.push(None);
            continue;
        }
        let tz = zone(zones.value(i))?;
        let Some(t) = to_datetime(values.value(i)) else {
            out.push(None);
            continue;
        };
        let shifted = if instant {
            // The wall clock in the zone at that instant.
            tz.from_utc_datetime(&t).naive_local()
        } else {
            // The instant at which the zone's clocks showed t (the earlier one when the clocks
            // went back; for a time skipped forward, the time an hour on).
            match tz.from_local_datetime(&t) {
                chrono::LocalResult::Single(x) | chrono::LocalResult::Ambiguous(x, _) => x.naive_utc(),
                chrono::LocalResult::None => tz
                    .from_local_datetime(&(t + chrono::Duration::hours(1)))
                    .earliest()
                    .map(|x| x.naive_utc())
                    .unwrap_or(t),
            }
        };
        out.push(Some(shifted.and_utc().timestamp_micros()));
    }
    let array = TimestampMicrosecondArray::from(out);
    Ok(std::sync::Arc::new(if instant { array } else { array.with_timezone("UTC") }))
}

/// `make_time(hour, minute, seconds)`: seconds may have a fraction; fields out of range are
/// 22008 as in PostgreSQL.
fn make_time(a: &[ArrayRef]) -> Result<ArrayRef> {
    let hours = datafusion::arrow::compute::cast(&a[0], &DataType::Int64)?;
    let minutes = datafusion::arrow::compute::cast(&a[1], &DataType::Int64)?;
    let seconds = datafusion::arrow::compute::cast(&a[2], &DataType::Float64)?;
    let (h, m, s) =
        (hours.as_primitive::<Int64Type>(), minutes.as_primitive::<Int64Type>(), seconds.as_primitive::<Float64Type>());
    let mut out = Vec::with_capacity(h.len());
    for i in 0..h.len() {
        if h.is_null(i) || m.is_null(i) || s.is_null(i) {
            out.push(None);
            continue;
        }
        let (hv, mv, sv) = (h.value(i), m.value(i), s.value(i));
        let valid = (0..24).contains(&hv) && (0..60).contains(&mv) && (0.0..60.0).contains(&sv)
            || (hv == 24 && mv == 0 && sv == 0.0);
        if !valid {
            return Err(sql_error(
                SqlState::DatetimeFieldOverflow,
                format!("time field value out of range: {hv}:{mv:02}:{sv:02}"),
            ));
        }
        out.push(Some((hv * 3600 + mv * 60) * 1_000_000 + (sv * 1_000_000.0).round() as i64));
    }
    Ok(std::sync::Arc::new(Time64MicrosecondArray::from(out)))
}

#[cfg(test)]
mod tests {
    use super::symbolic_difference;
    use chrono::NaiveDateTime;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").expect("timestamp")
    }

    /// Values from PostgreSQL 15 (`SELECT age(a, b)`).
    #[test]
    fn age_as_postgresql_computes_it() {
        let i = symbolic_difference(at("2001-04-10 00:00:00"), at("1957-06-13 00:00:00"));
        // 43 years 9 mons 27 days
        assert_eq!((i.months, i.days, i.nanoseconds), (43 * 12 + 9, 27, 0));
        let i = symbolic_difference(at("1957-06-13 00:00:00"), at("2001-04-10 00:00:00"));
        assert_eq!((i.months, i.days, i.nanoseconds), (-(43 * 12 + 9), -27, 0));
        // 1 mon 12:00:00: the day borrowed from the hours is given back by January's 31 days.
        let i = symbolic_difference(at("2024-03-01 00:00:00"), at("2024-01-31 12:00:00"));
        assert_eq!((i.months, i.days, i.nanoseconds), (1, 0, 12 * 3600 * 1_000_000_000));
        // 10 days 23:59:59
        let i = symbolic_difference(at("2024-03-11 23:59:59"), at("2024-03-01 00:00:00"));
        assert_eq!((i.months, i.days, i.nanoseconds), (0, 10, 86_399 * 1_000_000_000));
    }
}
