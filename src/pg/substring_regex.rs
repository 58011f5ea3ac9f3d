//! PostgreSQL's regular-expression form of `substring(text FROM pattern)` (the rewriter turns
//! a pattern given as a string literal into `pg_substring_regex`): the part of the text the
//! first parenthesised group matched, or the whole match when the pattern has no group; NULL
//! when nothing matches. Metabase's "regex extract" column uses it.

use crate::error::{Error, SqlState};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use std::sync::Arc;

pub fn register(ctx: &SessionContext) {
    ctx.register_udf(super::functions::udf(
        "pg_substring_regex",
        vec![DataType::Utf8, DataType::Utf8],
        DataType::Utf8,
        Arc::new(|a, _| substring_regex(a[0].as_string::<i32>(), a[1].as_string::<i32>())),
    ));
}

fn substring_regex(
    text: &datafusion::arrow::array::StringArray,
    patterns: &datafusion::arrow::array::StringArray,
) -> datafusion::error::Result<ArrayRef> {
    let mut compiled: Option<(String, regex::Regex)> = None;
    let mut out = Vec::with_capacity(text.len());
    for i in 0..text.len() {
        if text.is_null(i) || patterns.is_null(i) {
            out.push(None);
            continue;
        }
        let pattern = patterns.value(i);
        if compiled.as_ref().is_none_or(|(p, _)| p != pattern) {
            let re = regex::Regex::new(pattern).map_err(|e| {
                DataFusionError::External(Box::new(Error::Sql(
                    SqlState::InvalidRegularExpression,
                    format!("invalid regular expression: {}", e.to_string().lines().last().unwrap_or_default().trim()),
                )))
            })?;
            compiled = Some((pattern.to_string(), re));
        }
        let Some((_, re)) = &compiled else { unreachable!("compiled above") };
        out.push(extract(re, text.value(i)));
    }
    Ok(Arc::new(StringArray::from(out)))
}

/// The first group's match when the pattern has groups (NULL when that group took no part),
/// else the whole match.
pub fn extract(re: &regex::Regex, text: &str) -> Option<String> {
    let caps = re.captures(text)?;
    let m = if re.captures_len() > 1 { caps.get(1) } else { caps.get(0) };
    m.map(|m| m.as_str().to_string())
}

#[cfg(test)]
mod tests {
    use super::extract;

    #[test]
    fn first_group_or_whole_match() {
        let re = |p: &str| regex::Regex::new(p).expect("pattern");
        // PostgreSQL: substring('Thomas' from '...$') = 'mas'; from 'T(h)o' = 'h'.
        assert_eq!(extract(&re("...$"), "Thomas").as_deref(), Some("mas"));
        assert_eq!(extract(&re("T(h)o"), "Thomas").as_deref(), Some("h"));
        assert_eq!(extract(&re("x+"), "Thomas"), None);
        assert_eq!(extract(&re("/([a-z]+)"), "/pricing/plans").as_deref(), Some("pricing"));
    }
}
