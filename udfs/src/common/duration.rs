//! Constant durations: a window or a gap given as an `INTERVAL` (for timestamps) or an integer
//! (in an integer timestamp's own units).

use crate::error::ArgumentError;
use datafusion::common::ScalarValue;
use datafusion::error::Result;

/// `v` in microseconds (intervals) or as given (integers). Months and years are refused (their
/// length varies), and so are NULL and negative values; errors name `function` and `argument`.
pub fn constant_micros(function: &str, argument: &str, v: &ScalarValue) -> Result<i64> {
    let bad = |msg: String| Err(ArgumentError::new(function, argument, msg).into_datafusion());
    let micros = match v {
        ScalarValue::IntervalMonthDayNano(Some(i)) => {
            if i.months != 0 {
                return bad("cannot have months or years: their length varies".into());
            }
            i64::from(i.days) * 86_400_000_000 + i.nanoseconds / 1_000
        }
        ScalarValue::Int64(Some(n)) => *n,
        v if v.is_null() => return bad("must not be NULL".into()),
        other => return bad(format!("must be an interval or an integer, not {}", other.data_type())),
    };
    if micros < 0 {
        return bad("must not be negative".into());
    }
    Ok(micros)
}
