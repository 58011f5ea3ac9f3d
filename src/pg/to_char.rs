//! `to_char(timestamp | date, pattern)` with PostgreSQL's template patterns (`YYYY-MM-DD
//! HH24:MI:SS`, `FM` to drop padding, `Mon`, `Dy`, `AM`, quoted literal text), in place of
//! DataFusion's, which reads strftime patterns and gives PostgreSQL's back as literal text.
//! Timestamps with a time zone are shown in UTC. Patterns journeydb cannot honour exactly
//! (upper-case or padded month and day names, `Q`, `TZ`, ...) are an error, never a wrong
//! answer.

use crate::error::{Error, SqlState};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use datafusion::prelude::SessionContext;
use std::sync::Arc;

pub fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::from(ToChar { signature: Signature::variadic_any(Volatility::Stable) }));
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ToChar {
    signature: Signature,
}

/// PostgreSQL's pattern as a chrono format, or the error naming what is not supported.
pub fn chrono_format(pattern: &str) -> std::result::Result<String, Error> {
    // Longest first: `HH24` before `HH`, `YYYY` before `YY`, `DDD` before `DD`.
    const NUMERIC: [(&str, &str); 14] = [
        ("YYYY", "Y"),
        ("IYYY", "G"),
        ("HH24", "H"),
        ("HH12", "I"),
        ("DDD", "j"),
        ("YY", "y"),
        ("MM", "m"),
        ("DD", "d"),
        ("HH", "I"),
        ("MI", "M"),
        ("SS", "S"),
        ("IW", "V"),
        ("MS", "3f"),
        ("US", "6f"),
    ];
    const NAMES: [(&str, &str); 8] = [
        ("FMMonth", "%B"),
        ("FMDay", "%A"),
        ("Mon", "%b"),
        ("Dy", "%a"),
        ("AM", "%p"),
        ("PM", "%p"),
        ("am", "%P"),
        ("pm", "%P"),
    ];
    let unsupported =
        |what: &str| Error::Sql(SqlState::FeatureNotSupported, format!("to_char pattern \"{what}\" is not supported"));
    let mut out = String::new();
    let mut rest = pattern;
    while !rest.is_empty() {
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            out.push_str(&quoted[..end].replace('%', "%%"));
            rest = quoted.get(end + 1..).unwrap_or("");
            continue;
        }
        // Padded names, and `SSSS` (not `SS` twice), before the patterns they begin with.
        if let Some(name) =
            ["Month", "MONTH", "month", "Day", "DAY", "day", "SSSS"].iter().find(|n| rest.starts_with(*n))
        {
            return Err(unsupported(name));
        }
        if let Some((p, f)) = NAMES.iter().find(|(p, _)| rest.starts_with(p)) {
            out.push_str(f);
            rest = &rest[p.len()..];
            continue;
        }
        let (fill, body) = match rest.strip_prefix("FM") {
            Some(b) => (true, b),
            None => (false, rest),
        };
        if let Some((p, f)) = NUMERIC.iter().find(|(p, _)| body.starts_with(p)) {
            // FM drops the zero padding of numbers (not of fractions or years).
            let flag = if fill && !matches!(*p, "MS" | "US" | "YYYY" | "IYYY") { "-" } else { "" };
            out.push('%');
            out.push_str(flag);
            out.push_str(f);
            rest = &body[p.len()..];
            continue;
        }
        for name in [
            "MONTH", "Month", "month", "MON", "mon", "DAY", "Day", "day", "DY", "dy", "TZ", "tz", "Q", "CC", "WW",
            "RM", "rm", "pm", "SSSS", "J", "W", "D",
        ] {
            if body.starts_with(name) {
                return Err(unsupported(name));
            }
        }
        let c = rest.chars().next().unwrap_or(' ');
        if c == '%' {
            out.push_str("%%");
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    Ok(out)
}

impl ScalarUDFImpl for ToChar {
    fn name(&self) -> &str {
        "to_char"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if args.len() != 2
            || !matches!(args[0], DataType::Timestamp(..) | DataType::Date32 | DataType::Date64 | DataType::Null)
        {
            return Err(DataFusionError::External(Box::new(Error::Sql(
                SqlState::UndefinedFunction,
                format!(
                    "function to_char({}) does not exist",
                    args.iter().map(|a| crate::pg::types::pg_type_of(a).name).collect::<Vec<_>>().join(", ")
                ),
            ))));
        }
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        super::functions::over_arrays(&args.args, args.number_rows, |a, _| to_char(&a[0], &a[1]))
    }
}

/// Each value formatted with its row's pattern.
fn to_char(values: &ArrayRef, patterns: &ArrayRef) -> Result<ArrayRef> {
    let patterns = datafusion::arrow::compute::cast(patterns, &DataType::Utf8)?;
    let patterns = patterns.as_string::<i32>();
    // The wall clock: an instant's in its zone (the session's), a timestamp's or date's as it is.
    let micros = super::datetime::wall_clock(values)?;
    let mut compiled: Option<(String, String)> = None;
    let mut out = Vec::with_capacity(micros.len());
    for i in 0..micros.len() {
        if micros.is_null(i) || patterns.is_null(i) {
            out.push(None);
            continue;
        }
        let pattern = patterns.value(i);
        if compiled.as_ref().is_none_or(|(p, _)| p != pattern) {
            let f = chrono_format(pattern).map_err(|e| DataFusionError::External(Box::new(e)))?;
            compiled = Some((pattern.to_string(), f));
        }
        let Some((_, format)) = &compiled else { unreachable!("compiled above") };
        let t = chrono::DateTime::from_timestamp_micros(micros.value(i)).map(|d| d.naive_utc());
        out.push(t.map(|t| t.format(format).to_string()));
    }
    Ok(Arc::new(StringArray::from(out)))
}

#[cfg(test)]
mod tests {
    use super::chrono_format;

    #[test]
    fn postgresql_patterns_as_chrono_formats() {
        assert_eq!(chrono_format("YYYY-MM-DD HH24:MI:SS").ok().as_deref(), Some("%Y-%m-%d %H:%M:%S"));
        assert_eq!(chrono_format("FMDD/FMMM \"at\" HH12 AM").ok().as_deref(), Some("%-d/%-m at %I %p"));
        assert_eq!(chrono_format("Dy, DD Mon YYYY \"100%\"").ok().as_deref(), Some("%a, %d %b %Y 100%%"));
        assert!(chrono_format("Month").is_err());
        assert!(chrono_format("YYYY-Q").is_err());
        assert!(chrono_format("SSSS").is_err());
        assert_eq!(chrono_format("FMMonth FMDay").ok().as_deref(), Some("%B %A"));
    }
}
