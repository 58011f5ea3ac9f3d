//! Array bounds and the text functions clients and dbt call: `format`, `quote_literal`,
//! `quote_ident`, `parse_ident`.

use super::*;

pub(super) fn register(ctx: &SessionContext, store: &Arc<Store>, info: &SessionInfo, path: &SearchPathFn) {
    let (text, int8) = (DataType::Utf8, DataType::Int64);
    let _ = (&text, &int8, store, info, path);
    // array_lower(array, dim) and array_upper(array, dim): the bounds of a one-dimensional
    // array (1 and its length; NULL for an empty array or another dimension).
    for (name, upper) in [("array_lower", false), ("array_upper", true)] {
        ctx.register_udf(udf(
            name,
            vec![
                DataType::List(Arc::new(datafusion::arrow::datatypes::Field::new("item", DataType::Utf8, true))),
                int8.clone(),
            ],
            int8.clone(),
            Arc::new(move |a, _| {
                let lists = a[0].as_list::<i32>();
                let dims = a[1].as_primitive::<Int64Type>();
                Ok(Arc::new(
                    (0..lists.len())
                        .map(|i| {
                            let n = lists.value_length(i) as i64;
                            let valid = !lists.is_null(i) && !dims.is_null(i) && dims.value(i) == 1 && n > 0;
                            valid.then_some(if upper { n } else { 1 })
                        })
                        .collect::<Int64Array>(),
                ) as ArrayRef)
            }),
        ));
    }
    // format(formatstr, args...): `%s`, `%I`, `%L` (Metabase's sync, dbt macros).
    ctx.register_udf(ScalarUDF::from(KernelUdf {
        name: "format".into(),
        signature: Signature::variadic_any(Volatility::Immutable),
        output: text.clone(),
        kernel: Arc::new(|a, rows| {
            let texts = a.iter().map(as_text).collect::<Result<Vec<_>>>()?;
            let mut out = Vec::with_capacity(rows);
            let mut args = Vec::with_capacity(texts.len().saturating_sub(1));
            for i in 0..rows {
                let Some(fmt) = texts.first().and_then(|f| f[i].as_deref()) else {
                    out.push(None);
                    continue;
                };
                args.clear();
                args.extend(texts[1..].iter().map(|t| t[i].clone()));
                let s = crate::pg::format::format(fmt, &args).map_err(|e| DataFusionError::External(Box::new(e)))?;
                out.push(Some(s));
            }
            Ok(Arc::new(StringArray::from(out)) as ArrayRef)
        }),
    }));
    // like_escape(pattern, escape): the pattern rewritten for LIKE's default escape, the
    // backslash. `x LIKE p ESCAPE '/'` (SQLAlchemy's schema listing) is planned as
    // `x LIKE like_escape(p, '/')`, as PostgreSQL defines it.
    ctx.register_udf(udf(
        "like_escape",
        vec![text.clone(), text.clone()],
        text.clone(),
        Arc::new(|a, _| {
            let (patterns, escapes) = (a[0].as_string::<i32>(), a[1].as_string::<i32>());
            let out = patterns
                .iter()
                .zip(escapes.iter())
                .map(|(p, e)| match (p, e) {
                    (Some(p), Some(e)) => like_escape(p, e).map(Some),
                    _ => Ok(None),
                })
                .collect::<std::result::Result<StringArray, crate::error::Error>>()
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
            Ok(Arc::new(out) as ArrayRef)
        }),
    ));
    // quote_literal(text): the value as a SQL string literal.
    ctx.register_udf(udf(
        "quote_literal",
        vec![text.clone()],
        text.clone(),
        Arc::new(|a, _| {
            let values = a[0].as_string::<i32>();
            Ok(Arc::new(values.iter().map(|v| v.map(crate::pg::format::quote_literal)).collect::<StringArray>())
                as ArrayRef)
        }),
    ));
    // quote_ident(text): the identifier as SQL must write it (Grafana's query builder).
    ctx.register_udf(udf(
        "quote_ident",
        vec![text.clone()],
        text.clone(),
        Arc::new(|a, _| {
            let names = a[0].as_string::<i32>();
            Ok(Arc::new(names.iter().map(|n| n.map(quote_ident)).collect::<StringArray>()) as ArrayRef)
        }),
    ));
    // parse_ident(text): a qualified name's parts, unquoted (`"A".b` -> {A,b}).
    ctx.register_udf(udf(
        "parse_ident",
        vec![text.clone()],
        DataType::List(Arc::new(datafusion::arrow::datatypes::Field::new("item", DataType::Utf8, true))),
        Arc::new(|a, _| {
            let names = a[0].as_string::<i32>();
            let mut builder =
                datafusion::arrow::array::ListBuilder::new(datafusion::arrow::array::StringBuilder::new());
            for n in names.iter() {
                match n {
                    None => builder.append_null(),
                    Some(n) => {
                        for p in parse_ident(n) {
                            builder.values().append_value(p);
                        }
                        builder.append(true);
                    }
                }
            }
            Ok(Arc::new(builder.finish()) as ArrayRef)
        }),
    ));
}

/// `pattern`, whose escape character is `escape`, written with the backslash as its escape
/// character (PostgreSQL's `like_escape`): an escaped character becomes `\c`, a backslash that
/// escapes nothing `\\`. An empty `escape` means none.
fn like_escape(pattern: &str, escape: &str) -> std::result::Result<String, crate::error::Error> {
    use crate::error::{Error, SqlState};
    let mut chars = escape.chars();
    let escape = match (chars.next(), chars.next()) {
        (None, _) => None,
        (Some(c), None) => Some(c),
        _ => {
            return Err(Error::sql(
                SqlState::InvalidEscapeCharacter,
                "invalid escape string: escape string must be empty or one character",
            ));
        }
    };
    if escape == Some('\\') {
        return Ok(pattern.to_string());
    }
    let mut out = String::with_capacity(pattern.len() + 4);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if Some(c) == escape {
            let Some(next) = chars.next() else {
                return Err(Error::sql(
                    SqlState::InvalidEscapeSequence,
                    "LIKE pattern must not end with escape character",
                ));
            };
            out.push('\\');
            out.push(next);
        } else if c == '\\' {
            out.push_str("\\\\");
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::like_escape;

    #[test]
    fn like_escape_rewrites_for_the_backslash() {
        assert_eq!(like_escape("pg/_%", "/").expect("ok"), "pg\\_%");
        assert_eq!(like_escape("a//b", "/").expect("ok"), "a\\/b");
        assert_eq!(like_escape("a\\b", "/").expect("ok"), "a\\\\b");
        assert_eq!(like_escape("a\\_b", "\\").expect("ok"), "a\\_b");
        assert_eq!(like_escape("a\\_b%", "").expect("ok"), "a\\\\_b%");
        assert!(like_escape("abc/", "/").expect_err("trailing").to_string().contains("escape character"));
        assert!(like_escape("x", "ab").is_err());
    }
}
