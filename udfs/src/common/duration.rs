//! Constant durations: a window or a gap given as an `INTERVAL` (for timestamps) or an integer
//! (in an integer timestamp's own units).

use crate::error::ArgumentError;
use datafusion::arrow::error::ArrowError;
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// `days` and `micros` as one number of microseconds, or None beyond what an i64 holds (about
/// 292,000 years: `213503983 days` wrapped around to 16 hours).
pub fn day_micros(days: i64, micros: i64) -> Option<i64> {
    days.checked_mul(MICROS_PER_DAY)?.checked_add(micros)
}

/// 22003 for a duration no timestamp difference can reach.
pub fn out_of_range(function: &str, argument: &str) -> DataFusionError {
    DataFusionError::ArrowError(
        Box::new(ArrowError::ArithmeticOverflow(format!(
            "{function}: argument \"{argument}\" is out of range: at most 106751991 days (what 64-bit microseconds hold)"
        ))),
        None,
    )
}

/// Whether `later - earlier <= window`, computed without overflow: timestamps (integer ones
/// especially) may sit anywhere in i64, and their difference may not.
pub fn within(later: i64, earlier: i64, window: i64) -> bool {
    i128::from(later) - i128::from(earlier) <= i128::from(window)
}

/// `v` in microseconds (intervals) or as given (integers). Months and years are refused (their
/// length varies), and so are NULL and negative values; errors name `function` and `argument`.
pub fn constant_micros(function: &str, argument: &str, v: &ScalarValue) -> Result<i64> {
    let bad = |msg: String| Err(ArgumentError::new(function, argument, msg).into_datafusion());
    let micros = match v {
        ScalarValue::IntervalMonthDayNano(Some(i)) => {
            if i.months != 0 {
                return bad("cannot have months or years: their length varies".into());
            }
            day_micros(i64::from(i.days), i.nanoseconds / 1_000).ok_or_else(|| out_of_range(function, argument))?
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
