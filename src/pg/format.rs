//! PostgreSQL's `format(formatstr, args...)`: `%s` (text, NULL as empty), `%I` (identifier,
//! quoted as `quote_ident` does; NULL is an error), `%L` (literal, quoted as `quote_literal`
//! does; NULL as `NULL`), `%%`, argument positions (`%2$s`), the `-` flag and widths (`%10s`,
//! `%-*s`, `%*3$s`). Metabase's sync casts `format('%I.%I', schema, table)` to regclass.

use super::functions::quote_ident;
use crate::error::{Error, SqlState};

/// Formats `fmt` with `args` (already as text; None is NULL).
pub fn format(fmt: &str, args: &[Option<String>]) -> Result<String, Error> {
    let invalid = |m: String| Error::Sql(SqlState::InvalidParameterValue, m);
    let mut out = String::new();
    let mut chars = fmt.chars().peekable();
    // The next argument a specifier without a position takes (0-based).
    let mut next = 0usize;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'%') {
            chars.next();
            out.push('%');
            continue;
        }
        let unterminated = || invalid("unterminated format() type specifier".into());
        // An argument position or a width: digits, then `$` for a position.
        let mut position = None;
        let mut left = false;
        let mut width: Option<i64> = None;
        let digits = take_digits(&mut chars);
        if let Some(n) = digits {
            if chars.peek() == Some(&'$') {
                chars.next();
                position = Some(argument_index(n)?);
            } else {
                width = Some(n);
            }
        }
        if width.is_none() {
            while chars.peek() == Some(&'-') {
                chars.next();
                left = true;
            }
            if chars.peek() == Some(&'*') {
                chars.next();
                // The width from an argument: the next one, or `*n$`.
                let index = match take_digits(&mut chars) {
                    Some(n) => {
                        if chars.next() != Some('$') {
                            return Err(unterminated());
                        }
                        argument_index(n)?
                    }
                    None => next,
                };
                let value = args.get(index).ok_or_else(|| invalid("too few arguments for format()".into()))?;
                next = index + 1;
                let w = match value {
                    None => 0,
                    Some(v) => v.trim().parse::<i64>().map_err(|_| {
                        Error::Sql(
                            SqlState::InvalidTextRepresentation,
                            format!("invalid input syntax for type integer: \"{v}\""),
                        )
                    })?,
                };
                if w < 0 {
                    left = true;
                }
                width = Some(w.abs());
            } else {
                width = take_digits(&mut chars);
            }
        }
        let kind = chars.next().ok_or_else(unterminated)?;
        let index = position.unwrap_or(next);
        let value = match kind {
            's' | 'I' | 'L' => args.get(index).ok_or_else(|| invalid("too few arguments for format()".into()))?,
            other => return Err(invalid(format!("unrecognized format() type specifier \"{other}\""))),
        };
        next = index + 1;
        let text = match (kind, value) {
            ('s', v) => v.clone().unwrap_or_default(),
            ('I', Some(v)) => quote_ident(v),
            ('I', None) => {
                return Err(Error::Sql(
                    SqlState::NullValueNotAllowed,
                    "null values cannot be formatted as an SQL identifier".into(),
                ));
            }
            (_, Some(v)) => quote_literal(v),
            (_, None) => "NULL".into(),
        };
        // PostgreSQL reads a width as an int: larger is out of range; and no value may pass
        // 1 GB (issue 25: `%9999999999s` allocated gigabytes).
        let width = width.unwrap_or(0);
        if width > i64::from(i32::MAX) {
            return Err(Error::Sql(SqlState::NumericValueOutOfRange, "number is out of range".into()));
        }
        let pad = (width as usize).saturating_sub(text.chars().count());
        if (out.len() + pad + text.len()) as u64 > super::value_limits::MAX_VALUE_BYTES {
            return Err(Error::Sql(SqlState::ProgramLimitExceeded, "format: requested length too large".into()));
        }
        if left {
            out.push_str(&text);
            out.extend(std::iter::repeat_n(' ', pad));
        } else {
            out.extend(std::iter::repeat_n(' ', pad));
            out.push_str(&text);
        }
    }
    Ok(out)
}

fn take_digits(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<i64> {
    let mut n: Option<i64> = None;
    while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
        chars.next();
        n = Some(n.unwrap_or(0).saturating_mul(10).saturating_add(i64::from(d)));
    }
    n
}

fn argument_index(n: i64) -> Result<usize, Error> {
    if n < 1 {
        return Err(Error::Sql(
            SqlState::InvalidParameterValue,
            "format specifies argument 0, but arguments are numbered from 1".into(),
        ));
    }
    Ok((n - 1) as usize)
}

/// PostgreSQL's quote_literal: single quotes doubled; a value with a backslash is written as an
/// escape string (`E'...'`) with the backslashes doubled.
pub fn quote_literal(value: &str) -> String {
    let body = value.replace('\'', "''");
    if value.contains('\\') { format!("E'{}'", body.replace('\\', "\\\\")) } else { format!("'{body}'") }
}

#[cfg(test)]
mod tests {
    use super::format;

    fn f(fmt: &str, args: &[Option<&str>]) -> String {
        let args: Vec<Option<String>> = args.iter().map(|a| a.map(str::to_string)).collect();
        format(fmt, &args).unwrap_or_else(|e| format!("error: {}", crate::error::to_pg_error(&e).code))
    }

    /// Issue 25: widths no value can hold are refused before anything is allocated.
    #[test]
    fn huge_widths_are_errors() {
        assert_eq!(f("%9999999999s", &[Some("1")]), "error: 22003");
        assert_eq!(f("%2000000000s", &[Some("1")]), "error: 54000");
        assert_eq!(f("%*s", &[Some("2000000000"), Some("1")]), "error: 54000");
        assert_eq!(f("%3s", &[Some("1")]), "  1");
    }

    #[test]
    fn specifiers_as_postgresql_formats_them() {
        assert_eq!(f("%I.%I", &[Some("public"), Some("events")]), "public.events");
        assert_eq!(f("%I.%I", &[Some("My Schema"), Some("a\"b")]), "\"My Schema\".\"a\"\"b\"");
        assert_eq!(f("%s|%s", &[None, Some("x")]), "|x");
        assert_eq!(f("%L, %L", &[Some("O'Reilly"), None]), "'O''Reilly', NULL");
        assert_eq!(f("%L", &[Some("a\\b")]), "E'a\\\\b'");
        assert_eq!(f("100%%", &[]), "100%");
        assert_eq!(f("\"%s\".\"%s\"", &[Some("s"), Some("t")]), "\"s\".\"t\"");
    }

    #[test]
    fn positions_and_widths() {
        assert_eq!(f("%2$s %1$s %s", &[Some("a"), Some("b"), Some("c")]), "b a b");
        assert_eq!(f("[%5s][%-5s]", &[Some("ab"), Some("cd")]), "[   ab][cd   ]");
        assert_eq!(f("[%*s]", &[Some("4"), Some("x")]), "[   x]");
        assert_eq!(f("[%*s]", &[Some("-4"), Some("x")]), "[x   ]");
        assert_eq!(f("[%1$-*3$s]", &[Some("x"), None, Some("3")]), "[x  ]");
        // After a width taken from `*3$`, the value is the fourth argument.
        assert_eq!(f("[%-*3$s]", &[Some("x"), None, Some("3")]), "error: 22023");
    }

    #[test]
    fn errors_with_their_sqlstates() {
        assert_eq!(f("%s %s", &[Some("a")]), "error: 22023");
        assert_eq!(f("%x", &[Some("a")]), "error: 22023");
        assert_eq!(f("abc %", &[]), "error: 22023");
        assert_eq!(f("%0$s", &[Some("a")]), "error: 22023");
        assert_eq!(f("%I", &[None]), "error: 22004");
    }
}
