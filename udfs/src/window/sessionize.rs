//! `sessionize`: the session number of each event of a person.
//!
//! # Contract
//!
//! ```sql
//! sessionize(ts [, gap [, split_key]]) OVER (PARTITION BY person ORDER BY ts)
//! ```
//!
//! Returns the 1-based session number (`bigint`) of each row within its partition.
//!
//! - A session starts at the partition's first row with a non-NULL `ts`, and at every row whose
//!   `ts` is **more than** `gap` after the previous row's `ts` (strictly greater: a gap of exactly
//!   30 minutes continues the session, as in GA4 and Snowplow; PostHog splits at `>=`).
//! - `gap` is a constant: an `INTERVAL` without months for a timestamp `ts` (default
//!   `INTERVAL '30 minutes'`), or an integer in `ts`'s own units for an integer `ts`. A negative
//!   gap or one with months is rejected, naming the argument.
//! - `split_key` (optional, any type) also starts a session when its value is non-NULL and differs
//!   from the last non-NULL value seen in the current session: pass `campaign` to split on a change
//!   of campaign (Universal Analytics), or `date_trunc('day', ts AT TIME ZONE 'Europe/Paris')` to
//!   split at local midnight. A NULL key carries no information and never splits.
//! - NULL `ts`: the row's session is NULL and it does not affect the gaps of the others.
//! - Ties (equal `ts`) are in the same session, whatever their order, so the numbering depends
//!   only on the multiset of `(ts, split_key)` values: deterministic under any row order, batch
//!   size or partitioning. Rows must reach the function ordered by `ts`
//!   (`ORDER BY ts`, optionally with more keys after it); a decreasing `ts` is an error.
//!
//! Differences from the anchors: DuckDB and ClickHouse have no such function (users write
//! `lag()` + running `sum()`); PostHog's `$session_id` is assigned at ingestion.

use crate::common::duration::within;
use crate::docs::{FunctionDoc, Kind};
use crate::error::ArgumentError;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, make_comparator};
use datafusion::arrow::compute::{SortOptions, cast};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type, IntervalUnit, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::function::{PartitionEvaluatorArgs, WindowUDFFieldArgs};
use datafusion::logical_expr::{PartitionEvaluator, Signature, Volatility, WindowUDFImpl};
use datafusion::physical_expr::expressions::Literal;
use std::sync::Arc;

pub const NAME: &str = "sessionize";

/// This function's reference ([`crate::docs`]).
pub const DOC: FunctionDoc = FunctionDoc {
    name: NAME,
    kind: Kind::Window,
    usage: "sessionize(ts [, gap [, split_key]]) OVER (PARTITION BY person ORDER BY ts)",
    result: "bigint",
    positional: "ts timestamp with time zone, gap interval DEFAULT '00:30:00'::interval, split_key anyelement DEFAULT NULL",
    options: &[],
    summary: "The 1-based session number of each event of a person: a new session after a gap, or when the split key changes.",
    description: "the 1-based session number of each event: a new session after a gap of more than `gap` (default `INTERVAL '30 minutes'`), or when the non-NULL `split_key` changes (pass `campaign`, or `date_trunc('day', ts)` to split at midnight); NULL `ts` gives NULL; ties share a session",
    contract: "`udfs/src/window/sessionize.rs`",
};
/// The default inactivity gap: 30 minutes, in microseconds.
pub const DEFAULT_GAP_MICROS: i64 = 30 * 60 * 1_000_000;

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Sessionize {
    signature: Signature,
}

impl Default for Sessionize {
    fn default() -> Self {
        Self::new()
    }
}

impl Sessionize {
    pub fn new() -> Self {
        Sessionize { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

fn is_timestamp(dt: &DataType) -> bool {
    matches!(dt, DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64)
}

impl WindowUDFImpl for Sessionize {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let bad = |arg: &str, msg: String| Err(ArgumentError::new(NAME, arg, msg).into_datafusion());
        let Some(ts) = arg_types.first() else {
            return bad("ts", "is required: sessionize(ts [, gap [, split_key]])".into());
        };
        if arg_types.len() > 3 {
            return bad("split_key", format!("is the last argument; got {} arguments", arg_types.len()));
        }
        let ts_type = match ts {
            t if is_timestamp(t) => DataType::Timestamp(TimeUnit::Microsecond, None),
            t if t.is_integer() => DataType::Int64,
            DataType::Null => DataType::Timestamp(TimeUnit::Microsecond, None),
            other => return bad("ts", format!("must be a timestamp or an integer, not {other}")),
        };
        let mut out = vec![ts_type.clone()];
        if let Some(gap) = arg_types.get(1) {
            match (&ts_type, gap) {
                (DataType::Timestamp(_, _), DataType::Interval(_) | DataType::Duration(_)) => {
                    out.push(DataType::Interval(IntervalUnit::MonthDayNano))
                }
                (DataType::Int64, g) if g.is_integer() => out.push(DataType::Int64),
                (_, DataType::Null) => out.push(DataType::Null),
                (DataType::Int64, g) => return bad("gap", format!("must be an integer for an integer ts, not {g}")),
                (_, g) => return bad("gap", format!("must be an interval for a timestamp ts, not {g}")),
            }
        }
        if let Some(key) = arg_types.get(2) {
            out.push(key.clone());
        }
        Ok(out)
    }

    fn partition_evaluator(&self, args: PartitionEvaluatorArgs) -> Result<Box<dyn PartitionEvaluator>> {
        let exprs = args.input_exprs();
        let is_int = args.input_fields().first().is_some_and(|f| f.data_type().is_integer());
        let gap = match exprs.get(1) {
            None => {
                if is_int {
                    return Err(ArgumentError::new(NAME, "gap", "is required for an integer ts").into_datafusion());
                }
                DEFAULT_GAP_MICROS
            }
            Some(e) => {
                let Some(lit) = e.downcast_ref::<Literal>() else {
                    return Err(ArgumentError::new(NAME, "gap", "must be a constant").into_datafusion());
                };
                gap_value(lit.value())?
            }
        };
        Ok(Box::new(SessionizeEvaluator { gap }))
    }

    fn field(&self, field_args: WindowUDFFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(Field::new(field_args.name(), DataType::Int64, true)))
    }
}

/// The gap in `ts` units (microseconds for timestamps).
fn gap_value(v: &ScalarValue) -> Result<i64> {
    crate::common::duration::constant_micros(NAME, "gap", v)
}

#[derive(Debug)]
struct SessionizeEvaluator {
    gap: i64,
}

impl PartitionEvaluator for SessionizeEvaluator {
    fn evaluate_all(&mut self, values: &[ArrayRef], num_rows: usize) -> Result<ArrayRef> {
        let ts = cast(&values[0], &DataType::Int64)?;
        let ts = ts.as_primitive::<Int64Type>();
        let ts: Vec<Option<i64>> = ts.iter().collect();
        let sessions = match values.get(2) {
            None => session_numbers(&ts, self.gap, |_, _| false, |_| false)?,
            Some(key) => {
                let cmp = make_comparator(key.as_ref(), key.as_ref(), SortOptions::default())?;
                session_numbers(&ts, self.gap, |a, b| cmp(a, b).is_ne(), |i| key.is_null(i))?
            }
        };
        debug_assert_eq!(sessions.len(), num_rows);
        Ok(Arc::new(Int64Array::from(sessions)))
    }
}

/// The kernel. `differs(i, j)`: rows `i` and `j` have different split keys; `key_null(i)`: row
/// `i` has no split key.
pub fn session_numbers(
    ts: &[Option<i64>],
    gap: i64,
    differs: impl Fn(usize, usize) -> bool,
    key_null: impl Fn(usize) -> bool,
) -> Result<Vec<Option<i64>>> {
    let mut out = Vec::with_capacity(ts.len());
    let mut session = 0i64;
    let mut prev: Option<i64> = None;
    // The row holding the session's last non-NULL split key.
    let mut key_row: Option<usize> = None;
    for (i, t) in ts.iter().enumerate() {
        let Some(t) = *t else {
            out.push(None);
            continue;
        };
        let new_session = match prev {
            None => true,
            Some(p) if t < p => {
                return Err(DataFusionError::Execution(format!(
                    "{NAME}: rows must be ordered by the ts argument (OVER (... ORDER BY ts))"
                )));
            }
            Some(p) => !within(t, p, gap) || (!key_null(i) && key_row.is_some_and(|k| differs(k, i))),
        };
        if new_session {
            session += 1;
            key_row = None;
        }
        if !key_null(i) {
            key_row = Some(i);
        }
        prev = Some(t);
        out.push(Some(session));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000_000;

    fn plain(ts: &[Option<i64>], gap: i64) -> Vec<Option<i64>> {
        session_numbers(ts, gap, |_, _| false, |_| false).expect("ordered")
    }

    #[test]
    fn gaps_split_strictly_greater() {
        let ts = [Some(0), Some(10 * MIN), Some(40 * MIN), Some(70 * MIN + 1), Some(70 * MIN + 1)];
        assert_eq!(plain(&ts, 30 * MIN), [Some(1), Some(1), Some(1), Some(2), Some(2)]);
        assert_eq!(plain(&ts, 0), [Some(1), Some(2), Some(3), Some(4), Some(4)], "zero gap: ties only");
        assert_eq!(plain(&[], 30 * MIN), Vec::<Option<i64>>::new());
    }

    #[test]
    fn nulls_are_skipped() {
        let ts = [None, Some(0), None, Some(31 * MIN)];
        assert_eq!(plain(&ts, 30 * MIN), [None, Some(1), None, Some(2)]);
    }

    #[test]
    fn split_key_changes_start_sessions_nulls_do_not() {
        let ts = [Some(0), Some(MIN), Some(2 * MIN), Some(3 * MIN), Some(4 * MIN)];
        let key = [Some("a"), None, Some("a"), Some("b"), None];
        let s = session_numbers(&ts, 30 * MIN, |a, b| key[a] != key[b], |i| key[i].is_none()).expect("ok");
        assert_eq!(s, [Some(1), Some(1), Some(1), Some(2), Some(2)]);
    }

    #[test]
    fn unordered_input_is_an_error() {
        let err = session_numbers(&[Some(5), Some(1)], 1, |_, _| false, |_| false).expect_err("unordered");
        assert!(err.to_string().contains("ORDER BY ts"), "{err}");
    }

    #[test]
    fn shuffled_ties_give_the_same_numbers() {
        // Any order consistent with ORDER BY ts gives the same multiset of (ts, session).
        let ts = [Some(0), Some(0), Some(31 * MIN), Some(31 * MIN), Some(90 * MIN)];
        let a = plain(&ts, 30 * MIN);
        let mut reversed_ties = ts;
        reversed_ties.swap(0, 1);
        reversed_ties.swap(2, 3);
        assert_eq!(plain(&reversed_ties, 30 * MIN), a);
    }

    #[test]
    fn gap_arguments_are_checked() {
        use datafusion::arrow::datatypes::IntervalMonthDayNano;
        let month = ScalarValue::IntervalMonthDayNano(Some(IntervalMonthDayNano::new(1, 0, 0)));
        assert!(gap_value(&month).expect_err("months").to_string().contains("months"));
        assert!(gap_value(&ScalarValue::Int64(Some(-1))).is_err());
        assert_eq!(
            gap_value(&ScalarValue::IntervalMonthDayNano(Some(IntervalMonthDayNano::new(0, 1, 1_000)))).expect("ok"),
            86_400_000_001
        );
    }
}
