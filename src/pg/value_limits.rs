//! PostgreSQL's limits on the size of one value, on the functions whose arguments say how large
//! a value to build: `lpad`/`rpad` (a length in characters), `repeat` (a count) and
//! `array_repeat` (an element count). Without them `lpad('x', 2147483647)` or
//! `array_repeat(1, 1000000000)` allocated gigabytes at once, outside the memory pool and past
//! any cancel (issue 25).
//!
//! The limits are PostgreSQL's: a value holds at most 1 GB ([`MAX_VALUE_BYTES`]), a padded
//! length counts 4 bytes a character (UTF-8's longest, as PostgreSQL counts the server
//! encoding's), an array at most [`MAX_ARRAY_ELEMENTS`] elements; beyond them the statement
//! fails with 54000 (`program_limit_exceeded`) before anything is allocated. journeydb adds one
//! bound of its own: the values of one batch together stay within [`MAX_VALUE_BYTES`] too, as
//! a batch's values are built in one array.
//!
//! Each function keeps the built-in's signature, types and kernel: [`SizeChecked`] wraps it
//! and checks its arguments first.

use crate::error::{Error, SqlState};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};
use datafusion::prelude::SessionContext;
use std::sync::Arc;

/// The largest value PostgreSQL allocates (`MaxAllocSize`, 1 GB less one byte).
pub const MAX_VALUE_BYTES: u64 = (1 << 30) - 1;
/// The most elements an array may hold (PostgreSQL's `MaxArraySize`).
pub const MAX_ARRAY_ELEMENTS: u64 = (1 << 27) - 1;
/// Bytes a padded character may take (UTF-8's longest).
const MAX_CHAR_BYTES: u64 = 4;

/// How a function's arguments ask for a value's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Request {
    /// `lpad`/`rpad(text, length [, fill])`: `length` characters.
    Padded,
    /// `repeat(text, count)`: the text's bytes times `count`.
    Repeated,
    /// `array_repeat(element, count)`: `count` elements.
    Elements,
}

/// A built-in function whose arguments are checked against the value limits first.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SizeChecked {
    inner: Arc<ScalarUDF>,
    request: Request,
}

/// Registers the size-checked functions over the built-ins of the same names in `ctx`.
pub fn register(ctx: &SessionContext) {
    for (name, request) in [
        ("lpad", Request::Padded),
        ("rpad", Request::Padded),
        ("repeat", Request::Repeated),
        ("array_repeat", Request::Elements),
    ] {
        if let Some(inner) = ctx.state().scalar_functions().get(name).cloned() {
            ctx.register_udf(ScalarUDF::new_from_impl(SizeChecked { inner, request }));
        }
    }
}

fn too_large(what: String) -> DataFusionError {
    DataFusionError::External(Box::new(Error::sql(SqlState::ProgramLimitExceeded, what)))
}

/// Argument `k` as integers, one a row (a scalar stands for every row); None for NULL.
fn integers(args: &[ColumnarValue], k: usize, rows: usize) -> Result<Vec<Option<i64>>> {
    match args.get(k) {
        None => Ok(vec![None; rows]),
        Some(ColumnarValue::Scalar(s)) => {
            let v = match s.cast_to(&DataType::Int64)? {
                ScalarValue::Int64(v) => v,
                _ => None,
            };
            Ok(vec![v; rows])
        }
        Some(ColumnarValue::Array(a)) => {
            let a = cast(a, &DataType::Int64)?;
            let a = a.as_primitive::<Int64Type>();
            Ok((0..a.len()).map(|i| (!a.is_null(i)).then(|| a.value(i))).collect())
        }
    }
}

/// Argument `k`'s text length in bytes, one a row.
fn text_bytes(args: &[ColumnarValue], k: usize, rows: usize) -> Result<Vec<u64>> {
    let text = |s: &ScalarValue| s.to_string().len() as u64;
    match args.get(k) {
        None => Ok(vec![0; rows]),
        Some(ColumnarValue::Scalar(s)) => Ok(vec![if s.is_null() { 0 } else { text(s) }; rows]),
        Some(ColumnarValue::Array(a)) => {
            let a = cast(a, &DataType::Utf8)?;
            let a = a.as_string::<i32>();
            Ok((0..a.len()).map(|i| if a.is_null(i) { 0 } else { a.value(i).len() as u64 }).collect())
        }
    }
}

impl SizeChecked {
    /// Fails with 54000 when a row, or the rows together, ask for more than the limits.
    fn check(&self, args: &[ColumnarValue], rows: usize) -> Result<()> {
        let name = self.inner.name();
        let counts = integers(args, 1, rows)?;
        let mut total: u64 = 0;
        let texts = if self.request == Request::Repeated { text_bytes(args, 0, rows)? } else { vec![] };
        for (i, n) in counts.iter().enumerate() {
            let n = n.unwrap_or(0).max(0) as u64;
            let bytes = match self.request {
                Request::Padded => {
                    if n.saturating_mul(MAX_CHAR_BYTES) > MAX_VALUE_BYTES {
                        return Err(too_large(format!("{name}: requested length too large")));
                    }
                    n.saturating_mul(MAX_CHAR_BYTES)
                }
                Request::Repeated => {
                    let bytes = n.saturating_mul(texts[i]);
                    if bytes > MAX_VALUE_BYTES {
                        return Err(too_large(format!("{name}: requested length too large")));
                    }
                    bytes
                }
                Request::Elements => {
                    if n > MAX_ARRAY_ELEMENTS {
                        return Err(too_large(format!(
                            "{name}: array size exceeds the maximum allowed ({MAX_ARRAY_ELEMENTS})"
                        )));
                    }
                    n.saturating_mul(8)
                }
            };
            total = total.saturating_add(bytes);
        }
        if total > MAX_VALUE_BYTES {
            return Err(too_large(format!("{name}: the values of one batch would take more than 1 GB")));
        }
        Ok(())
    }
}

impl ScalarUDFImpl for SizeChecked {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }
    fn signature(&self) -> &Signature {
        self.inner.signature()
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<datafusion::arrow::datatypes::FieldRef> {
        self.inner.return_field_from_args(args)
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        self.check(&args.args, args.number_rows)?;
        self.inner.invoke_with_args(args)
    }
    fn documentation(&self) -> Option<&datafusion::logical_expr::Documentation> {
        self.inner.documentation()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    async fn run(ctx: &SessionContext, sql: &str) -> std::result::Result<usize, String> {
        let batches = ctx.sql(sql).await.map_err(|e| e.to_string())?.collect().await;
        match batches {
            Ok(b) => Ok(b.iter().map(|b| b.num_rows()).sum()),
            Err(e) => Err(crate::error::datafusion_to_pg(&e).code.to_string()),
        }
    }

    #[tokio::test]
    async fn sizes_beyond_postgresql_limits_fail_with_54000_before_allocating() {
        let ctx = SessionContext::new();
        register(&ctx);
        for sql in [
            "SELECT lpad('x', 2147483647)",
            "SELECT rpad('x', 300000000, 'ab')",
            "SELECT repeat('abc', 1000000000)",
            "SELECT array_repeat(1, 1000000000)",
            // Within the limit for one value, beyond it for the batch.
            "SELECT lpad(a, 200000000) FROM (VALUES ('x'), ('y')) t(a)",
        ] {
            assert_eq!(run(&ctx, sql).await, Err("54000".to_string()), "{sql}");
        }
        for sql in
            ["SELECT lpad('x', 5)", "SELECT repeat('ab', 3)", "SELECT array_repeat(1, 3)", "SELECT lpad('x', NULL)"]
        {
            assert_eq!(run(&ctx, sql).await, Ok(1), "{sql}");
        }
    }
}
