//! Arguments of the report table functions: positional values and `name => value` options.
//!
//! DataFusion's planner does not accept named arguments in a FROM-clause function, so the
//! engine rewrites each `name => value` into two positional arguments, the marker
//! `'=>name'` ([`NAMED_PREFIX`]) and the value, before planning. Every argument must be a
//! constant; it is evaluated once, at plan time (so `INTERVAL '30 minutes'`, `ARRAY['a', 'b']`,
//! `-1` or `2 * 3` are all fine). Unknown or repeated options are rejected, naming the function
//! and the option.

use crate::common::duration::{day_micros, out_of_range};
use crate::error::ArgumentError;
use datafusion::arrow::array::{Array, RecordBatch, RecordBatchOptions};
use datafusion::arrow::datatypes::{DataType, IntervalUnit, Schema};
use datafusion::catalog::TableFunctionArgs;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::Expr;
use std::sync::Arc;

/// Marks the name of a named argument after the engine's rewrite: `'=>window'`.
pub const NAMED_PREFIX: &str = "=>";

/// The arguments of one call.
#[derive(Debug, Clone)]
pub struct Options {
    function: &'static str,
    positional: Vec<ScalarValue>,
    named: Vec<(String, ScalarValue)>,
}

impl Options {
    /// Evaluates the call's arguments.
    pub fn parse(function: &'static str, args: &TableFunctionArgs) -> Result<Options> {
        let mut positional = vec![];
        let mut named: Vec<(String, ScalarValue)> = vec![];
        let mut pending: Option<String> = None;
        for (i, expr) in args.exprs().iter().enumerate() {
            let value = evaluate(function, i, expr, args)?;
            if let Some(name) = pending.take() {
                named.push((name, value));
                continue;
            }
            match &value {
                ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)) if s.starts_with(NAMED_PREFIX) => {
                    let name = s[NAMED_PREFIX.len()..].to_ascii_lowercase();
                    if named.iter().any(|(n, _)| *n == name) {
                        return Err(ArgumentError::new(function, &name, "is given twice").into_datafusion());
                    }
                    pending = Some(name);
                }
                _ if !named.is_empty() => {
                    return Err(ArgumentError::new(
                        function,
                        format!("{}", i + 1),
                        "is positional after a named argument; name it too",
                    )
                    .into_datafusion());
                }
                _ => positional.push(value),
            }
        }
        if let Some(name) = pending {
            return Err(ArgumentError::new(function, name, "has no value").into_datafusion());
        }
        Ok(Options { function, positional, named })
    }

    /// A call's arguments as [`Options::parse`] read them (see [`Options::named`]).
    pub fn from_values(
        function: &'static str,
        positional: Vec<ScalarValue>,
        named: Vec<(String, ScalarValue)>,
    ) -> Options {
        Options { function, positional, named }
    }

    pub fn function(&self) -> &'static str {
        self.function
    }

    /// The call with option `name` set to `value` unless the call gives it: a default taken
    /// from the session (its time zone), kept in the call so that a node that rebuilds the
    /// report from the call uses the same.
    pub fn with_default(mut self, name: &str, value: Option<ScalarValue>) -> Options {
        if let Some(value) = value.filter(|v| !v.is_null())
            && !self.named.iter().any(|(n, _)| n == name)
        {
            self.named.push((name.to_string(), value));
        }
        self
    }

    /// The named arguments not read yet, in the order given.
    pub fn named(&self) -> &[(String, ScalarValue)] {
        &self.named
    }

    pub fn positional(&self) -> &[ScalarValue] {
        &self.positional
    }

    fn error(&self, name: &str, message: impl Into<String>) -> datafusion::error::DataFusionError {
        ArgumentError::new(self.function, name, message).into_datafusion()
    }

    /// Removes and returns option `name`; NULL counts as not given.
    fn take(&mut self, name: &str) -> Option<ScalarValue> {
        let i = self.named.iter().position(|(n, _)| n == name)?;
        let (_, v) = self.named.remove(i);
        (!v.is_null()).then_some(v)
    }

    pub fn string(&mut self, name: &str) -> Result<Option<String>> {
        match self.take(name) {
            None => Ok(None),
            Some(v) => scalar_string(&v).map(Some).ok_or_else(|| self.error(name, "must be a text value")),
        }
    }

    /// Whose journeys a report follows: `person` (a column or expression, `person_id` by
    /// default), or `unit => 'account'`, each account's people as one journey: the source's
    /// `account_id` (the journey model has it with `[journey.accounts]`); rows without an
    /// account are left out, as rows without a person are.
    pub fn person(&mut self) -> Result<String> {
        let person = self.string("person")?;
        match self.string("unit")?.map(|u| u.trim().to_ascii_lowercase()).as_deref() {
            None | Some("person") => Ok(person.unwrap_or_else(|| "person_id".into())),
            Some("account") if person.is_some() => {
                Err(self.error("unit", "'account' reads the source's account_id: give either person or unit"))
            }
            Some("account") => Ok("account_id".into()),
            Some(other) => Err(self.error("unit", format!("must be 'person' or 'account', got '{other}'"))),
        }
    }

    /// An integer within `min..=max`.
    pub fn int(&mut self, name: &str, min: i64, max: i64) -> Result<Option<i64>> {
        let Some(v) = self.take(name) else { return Ok(None) };
        let n = match v.cast_to(&DataType::Int64) {
            Ok(ScalarValue::Int64(Some(n))) if v.data_type().is_integer() => Some(n),
            // A quoted literal is read as the option's type, as PostgreSQL reads an untyped one.
            _ => scalar_string(&v).and_then(|text| text.trim().parse::<i64>().ok()),
        };
        let Some(n) = n else {
            return Err(self.error(name, format!("must be an integer (such as 10 or '10'), got {v}")));
        };
        if !(min..=max).contains(&n) {
            return Err(self.error(name, format!("must be between {min} and {max}, got {n}")));
        }
        Ok(Some(n))
    }

    pub fn bool(&mut self, name: &str) -> Result<Option<bool>> {
        match self.take(name) {
            None => Ok(None),
            Some(ScalarValue::Boolean(b)) => Ok(b),
            Some(v) => match scalar_string(&v).as_deref().and_then(parse_bool) {
                Some(b) => Ok(Some(b)),
                None => Err(self.error(name, format!("must be true or false, got {v}"))),
            },
        }
    }

    /// A positive duration in microseconds: an interval without months, or a number of seconds.
    /// Text is read as an interval (`'7 days'`, `'1 hour 30 minutes'`) or a number of seconds
    /// (`'90'`), as PostgreSQL reads an untyped literal passed where an interval is expected.
    pub fn duration_micros(&mut self, name: &str) -> Result<Option<i64>> {
        let Some(given) = self.take(name) else { return Ok(None) };
        let v = match scalar_string(&given) {
            Some(text) => match text.trim().parse::<f64>() {
                Ok(seconds) => ScalarValue::Float64(Some(seconds)),
                Err(_) => {
                    given.cast_to(&DataType::Interval(IntervalUnit::MonthDayNano)).unwrap_or_else(|_| given.clone())
                }
            },
            None => given.clone(),
        };
        let micros = match &v {
            ScalarValue::IntervalMonthDayNano(Some(i)) if i.months == 0 => Some(
                day_micros(i64::from(i.days), i.nanoseconds / 1000).ok_or_else(|| out_of_range(self.function, name))?,
            ),
            ScalarValue::IntervalDayTime(Some(i)) => Some(
                day_micros(i64::from(i.days), i64::from(i.milliseconds) * 1000)
                    .ok_or_else(|| out_of_range(self.function, name))?,
            ),
            v if v.data_type().is_numeric() => match v.cast_to(&DataType::Float64) {
                Ok(ScalarValue::Float64(Some(s))) if s.is_finite() => {
                    let micros = (s * 1e6).round();
                    // `as` would saturate silently: beyond i64 is out of range, as for intervals.
                    if micros.abs() >= 9.2e18 {
                        return Err(out_of_range(self.function, name));
                    }
                    Some(micros as i64)
                }
                _ => None,
            },
            _ => None,
        };
        match micros {
            Some(m) if m >= 0 => Ok(Some(m)),
            _ => Err(self.error(
                name,
                format!(
                    "must be a non-negative interval without months (INTERVAL '7 days' or '7 days') \
                     or a number of seconds, got {given}"
                ),
            )),
        }
    }

    /// An instant in microseconds since the epoch: a timestamp (with or without time zone; one
    /// without is read as UTC) or text that reads as one (`'2025-03-01'`, `'2025-03-01 12:00+02'`).
    pub fn timestamp_micros(&mut self, name: &str) -> Result<Option<i64>> {
        let Some(v) = self.take(name) else { return Ok(None) };
        let utc = DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Microsecond, Some("+00:00".into()));
        match v.cast_to(&utc) {
            Ok(ScalarValue::TimestampMicrosecond(Some(t), _)) => Ok(Some(t)),
            _ => {
                Err(self
                    .error(name, format!("must be a timestamp such as TIMESTAMPTZ '2025-03-01 00:00:00+00', got {v}")))
            }
        }
    }

    /// A list of text values: `ARRAY['a', 'b']`, or one text value.
    pub fn strings(&mut self, name: &str) -> Result<Option<Vec<String>>> {
        let Some(v) = self.take(name) else { return Ok(None) };
        if let Some(s) = scalar_string(&v) {
            return Ok(Some(vec![s]));
        }
        let list = match &v {
            ScalarValue::List(a) => a.value(0),
            ScalarValue::LargeList(a) => a.value(0),
            ScalarValue::FixedSizeList(a) => a.value(0),
            _ => return Err(self.error(name, format!("must be a text array such as ARRAY['a', 'b'], got {v}"))),
        };
        let mut out = vec![];
        for i in 0..list.len() {
            match ScalarValue::try_from_array(&list, i).ok().as_ref().and_then(scalar_string) {
                Some(s) => out.push(s),
                None => return Err(self.error(name, "must hold non-NULL text values only")),
            }
        }
        Ok(Some(out))
    }

    /// A list of integers within `min..=max`: `ARRAY[2, 3]`, or one integer.
    pub fn ints(&mut self, name: &str, min: i64, max: i64) -> Result<Option<Vec<i64>>> {
        let Some(v) = self.take(name) else { return Ok(None) };
        let values = elements(&v)?;
        let mut out = vec![];
        for x in values {
            match x.cast_to(&DataType::Int64) {
                Ok(ScalarValue::Int64(Some(n))) if x.data_type().is_integer() && (min..=max).contains(&n) => {
                    out.push(n)
                }
                _ => {
                    return Err(self
                        .error(name, format!("must hold integers between {min} and {max} such as ARRAY[2], got {v}")));
                }
            }
        }
        Ok(Some(out))
    }

    /// A list of finite numbers: `ARRAY[0.5, 0, 0.5]`.
    pub fn floats(&mut self, name: &str) -> Result<Option<Vec<f64>>> {
        let Some(v) = self.take(name) else { return Ok(None) };
        let values = elements(&v)?;
        let mut out = vec![];
        for x in values {
            match x.cast_to(&DataType::Float64) {
                Ok(ScalarValue::Float64(Some(f))) if x.data_type().is_numeric() && f.is_finite() => out.push(f),
                _ => return Err(self.error(name, format!("must hold numbers such as ARRAY[0.4, 0.2, 0.4], got {v}"))),
            }
        }
        Ok(Some(out))
    }

    /// Rejects whatever option is left over, listing the known ones.
    pub fn finish(self, known: &[&str]) -> Result<()> {
        if let Some((name, _)) = self.named.first() {
            return Err(ArgumentError::new(
                self.function,
                name,
                format!("is not an option of {} (options: {})", self.function, known.join(", ")),
            )
            .into_datafusion());
        }
        Ok(())
    }
}

/// The elements of an array value (`ARRAY[...]`), or the value itself.
fn elements(v: &ScalarValue) -> Result<Vec<ScalarValue>> {
    match v {
        ScalarValue::List(a) => {
            let list = a.value(0);
            (0..list.len()).map(|i| ScalarValue::try_from_array(&list, i)).collect()
        }
        v => Ok(vec![v.clone()]),
    }
}

/// A boolean written as text, as PostgreSQL reads one (`'true'`, `'f'`, `'yes'`, `'off'`, `'1'`).
fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "t" | "true" | "y" | "yes" | "on" | "1" => Some(true),
        "f" | "false" | "n" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

fn scalar_string(v: &ScalarValue) -> Option<String> {
    match v {
        ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)) | ScalarValue::LargeUtf8(Some(s)) => {
            Some(s.clone())
        }
        _ => None,
    }
}

/// Evaluates a constant argument.
fn evaluate(function: &'static str, i: usize, expr: &Expr, args: &TableFunctionArgs) -> Result<ScalarValue> {
    if let Expr::Literal(v, _) = expr {
        return Ok(v.clone());
    }
    let not_constant = || {
        ArgumentError::new(function, format!("{}", i + 1), format!("must be a constant, got {expr}")).into_datafusion()
    };
    let physical = args.session().create_physical_expr(expr.clone(), &DFSchema::empty()).map_err(|_| not_constant())?;
    let one_row = RecordBatch::try_new_with_options(
        Arc::new(Schema::empty()),
        vec![],
        &RecordBatchOptions::new().with_row_count(Some(1)),
    )?;
    let array = physical.evaluate(&one_row).map_err(|_| not_constant())?.into_array(1)?;
    ScalarValue::try_from_array(&array, 0)
}
