//! `url_host`: the host of an absolute URL, as the journey model compares referrers and pages.
//!
//! # Contract
//!
//! ```sql
//! url_host(url) -> text
//! ```
//!
//! For a URL that starts with a scheme and `://` (`scheme` a letter, then letters, digits, `+`,
//! `.` or `-`): the host after any `user:password@`, up to the first `/`, `?`, `#` or `:`,
//! lower-cased, without a leading `www.`. NULL for anything else (a path, an empty host) and for
//! NULL. The same as the regular expressions
//! `regexp_replace(lower(regexp_match(url, '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#@]*@)?([^/?#:]+)')[1]), '^www\.', '')`,
//! which the touch rule used before, in one pass without building a match list per row.

use crate::docs::{FunctionDoc, Kind};
use crate::error::ArgumentError;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};
use std::sync::Arc;

pub const NAME: &str = "url_host";

/// This function's reference ([`crate::docs`]).
pub const DOC: FunctionDoc = FunctionDoc {
    name: NAME,
    kind: Kind::Scalar,
    usage: "url_host(url)",
    result: "text",
    positional: "url text",
    options: &[],
    summary: "The host of an absolute URL, lower-cased, without a leading www.",
    description: "the host of a URL that starts with a scheme and `://`, after any `user@`, up to the first `/`, `?`, `#` or `:`, lower-cased and without a leading `www.` (`url_host('https://WWW.Example.com:8080/a?b')` is `example.com`); NULL for a path or anything else without a scheme",
    contract: "`udfs/src/scalar/url_host.rs`",
};

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct UrlHost {
    signature: Signature,
}

impl Default for UrlHost {
    fn default() -> Self {
        Self::new()
    }
}

impl UrlHost {
    pub fn new() -> Self {
        UrlHost { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for UrlHost {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null] => Ok(arg_types.to_vec()),
            [DataType::Dictionary(_, v)] if v.is_string() => Ok(vec![DataType::Utf8]),
            [other] => Err(ArgumentError::new(NAME, "url", format!("must be text, not {other}")).into_datafusion()),
            _ => {
                Err(ArgumentError::new(NAME, "url", format!("takes 1 argument, got {}", arg_types.len()))
                    .into_datafusion())
            }
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let urls = args.args[0].to_array(args.number_rows)?;
        let mut out = StringBuilder::with_capacity(urls.len(), urls.len() * 8);
        let mut lower = String::new();
        let mut push = |url: Option<&str>| match url.and_then(host) {
            Some(h) => {
                lower.clear();
                // Most hosts are ASCII: lower-case them without allocating.
                if h.is_ascii() {
                    lower.extend(h.chars().map(|c| c.to_ascii_lowercase()));
                } else {
                    lower.push_str(&h.to_lowercase());
                }
                out.append_value(lower.strip_prefix("www.").unwrap_or(&lower));
            }
            None => out.append_null(),
        };
        match urls.data_type() {
            DataType::Utf8View => urls.as_string_view().iter().for_each(&mut push),
            DataType::LargeUtf8 => urls.as_string::<i64>().iter().for_each(&mut push),
            DataType::Utf8 => urls.as_string::<i32>().iter().for_each(&mut push),
            _ => {
                let urls = cast(&urls, &DataType::Utf8)?;
                urls.as_string::<i32>().iter().for_each(&mut push)
            }
        }
        let out: ArrayRef = Arc::new(out.finish());
        Ok(match &args.args[0] {
            ColumnarValue::Scalar(_) => {
                ColumnarValue::Scalar(datafusion::common::ScalarValue::try_from_array(&out, 0)?)
            }
            ColumnarValue::Array(_) => ColumnarValue::Array(out),
        })
    }
}

/// The host of `url` as written (not lower-cased), or none.
pub fn host(url: &str) -> Option<&str> {
    let b = url.as_bytes();
    if !b.first().is_some_and(u8::is_ascii_alphabetic) {
        return None;
    }
    let scheme = 1 + b[1..].iter().take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'.' | b'-')).count();
    let rest = url[scheme..].strip_prefix("://")?;
    let until_stop = |s: &'_ str| -> Option<usize> {
        let end = s.find(['/', '?', '#', ':']).unwrap_or(s.len());
        (end > 0).then_some(end)
    };
    // `user:password@` before the host, when an `@` comes before any `/`, `?` or `#`; if no host
    // follows it, the `@` is part of the host (as the regular expression backtracks).
    if let Some(at) = rest.find(['/', '?', '#', '@']).filter(|&i| rest.as_bytes()[i] == b'@') {
        let after = &rest[at + 1..];
        if let Some(end) = until_stop(after) {
            return Some(&after[..end]);
        }
    }
    until_stop(rest).map(|end| &rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    fn lowered(url: &str) -> Option<String> {
        host(url).map(|h| {
            let h = h.to_lowercase();
            h.strip_prefix("www.").map(str::to_string).unwrap_or(h)
        })
    }

    #[test]
    fn hosts_by_hand() {
        let cases: &[(&str, Option<&str>)] = &[
            ("https://WWW.Example.com:8080/a?b", Some("example.com")),
            ("http://user:pw@shop.example/x", Some("shop.example")),
            ("http://u@/x", Some("u@")),
            ("android-app://com.google.android.gm/", Some("com.google.android.gm")),
            ("https://news.example?x=1", Some("news.example")),
            ("https://news.example#top", Some("news.example")),
            ("https://www.", Some("")),
            ("https:///path", None),
            ("/pricing", None),
            ("1http://x.example", None),
            ("", None),
            ("mailto:a@b.example", None),
            ("HTTPS://ÉCOLE.example/", Some("école.example")),
        ];
        for (url, want) in cases {
            assert_eq!(lowered(url).as_deref(), *want, "{url}");
        }
    }

    /// The function agrees with the regular expressions it replaces on hand-picked and random
    /// URLs made of the characters that matter.
    #[tokio::test]
    async fn the_same_as_the_regular_expressions() {
        let mut urls: Vec<Option<String>> = vec![None];
        let parts = ["http", "H", "://", "www.", "WWW.", "u", "@", ":", "/", "?", "#", "a.b", "-", "é", "9", "."];
        let mut rng = crate::common::test_rng::TestRng(7);
        for _ in 0..3000 {
            let n = 1 + rng.next(8) as usize;
            let mut s = String::new();
            if rng.next(3) > 0 {
                s.push_str(["http://", "https://", "a+b.c-d://", "x://"][rng.next(4) as usize]);
            }
            for _ in 0..n {
                s.push_str(parts[rng.next(parts.len() as u64) as usize]);
            }
            urls.push(Some(s));
        }
        let ctx = SessionContext::new();
        ctx.register_udf(datafusion::logical_expr::ScalarUDF::from(UrlHost::new()));
        let column = datafusion::arrow::array::StringArray::from(urls.clone());
        let batch =
            datafusion::arrow::record_batch::RecordBatch::try_from_iter([("url", Arc::new(column) as ArrayRef)])
                .expect("batch");
        ctx.register_batch("u", batch).expect("register");
        let sql = "SELECT url_host(url) AS a, regexp_replace(lower(regexp_match(url, \
                   '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#@]*@)?([^/?#:]+)')[1]), '^www\\.', '') AS b FROM u";
        let batches = ctx.sql(sql).await.expect("plan").collect().await.expect("run");
        let mut n = 0;
        for b in batches {
            let (x, y) =
                (cast(b.column(0), &DataType::Utf8).expect("a"), cast(b.column(1), &DataType::Utf8).expect("b"));
            for (i, (x, y)) in x.as_string::<i32>().iter().zip(y.as_string::<i32>().iter()).enumerate() {
                assert_eq!(x, y, "row {i}");
                n += 1;
            }
        }
        assert_eq!(n, urls.len());
    }
}
