//! The PostgreSQL functions clients call on connect and in catalog queries, registered per
//! session (some answer with the session's user and database). One file per family:
//! [`session`] (user, database, schema, version, privileges), [`arrays_and_text`],
//! [`visibility`] (the search path), [`descriptions`] (what the catalog says of an object) and
//! [`reg_types`] (`::regtype`, `::regclass`); the settings functions and the shared helpers
//! (`udf`, `any_udf`, `over_arrays`) are here.

use crate::pg::catalog::{SessionInfo, function_oid, relation_oid, store_relations};
use crate::pg::settings::{SharedSettings, lock};
use crate::pg::types::format_type;
use crate::store::Store;
use crate::store::catalog::SearchPathFn;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, StringArray, UInt32Array};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::ScalarValue;
use datafusion::error::DataFusionError;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Volatility, create_udf,
};
use datafusion::prelude::SessionContext;
use journeydb_udfs::docs::FunctionDoc;
use std::sync::Arc;

mod arrays_and_text;
mod descriptions;
mod reg_types;
mod session;
mod visibility;

pub(crate) type Kernel = Arc<dyn Fn(&[ArrayRef], usize) -> Result<ArrayRef> + Send + Sync>;

/// Runs `kernel` on the arguments as arrays of `rows` values (scalars expanded); the answer is
/// a scalar when every argument was one.
pub(crate) fn over_arrays(
    args: &[ColumnarValue],
    rows: usize,
    kernel: impl FnOnce(&[ArrayRef], usize) -> Result<ArrayRef>,
) -> Result<ColumnarValue> {
    let arrays = args.iter().map(|a| a.to_array(rows)).collect::<Result<Vec<_>>>()?;
    let out = kernel(&arrays, rows)?;
    if args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) {
        Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
    } else {
        Ok(ColumnarValue::Array(out))
    }
}

/// A scalar function over whole arrays (scalars expanded), its answer a scalar when every
/// argument was one.
pub(crate) fn udf(name: &str, inputs: Vec<DataType>, output: DataType, kernel: Kernel) -> ScalarUDF {
    create_udf(
        name,
        inputs,
        output,
        Volatility::Stable,
        Arc::new(move |args: &[ColumnarValue]| {
            let rows = args
                .iter()
                .find_map(|a| match a {
                    ColumnarValue::Array(a) => Some(a.len()),
                    ColumnarValue::Scalar(_) => None,
                })
                .unwrap_or(1);
            over_arrays(args, rows, |a, n| kernel(a, n))
        }),
    )
}

/// A function taking any arguments (several forms under one name), its answer of type `output`.
pub(crate) fn any_udf(name: &str, output: DataType, kernel: Kernel) -> ScalarUDF {
    ScalarUDF::from(KernelUdf {
        name: name.into(),
        signature: Signature::variadic_any(Volatility::Stable),
        output,
        kernel,
    })
}

/// The `has_*_privilege` functions, in any of their forms.
const PRIVILEGE_CHECKS: [&str; 8] = [
    "has_table_privilege",
    "has_schema_privilege",
    "has_database_privilege",
    "has_column_privilege",
    "has_any_column_privilege",
    "has_function_privilege",
    "has_sequence_privilege",
    "has_type_privilege",
];

/// A function with its own signature (several argument forms under one name, or any arguments).
struct KernelUdf {
    name: String,
    signature: Signature,
    output: DataType,
    kernel: Kernel,
}

impl std::fmt::Debug for KernelUdf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KernelUdf({})", self.name)
    }
}

impl PartialEq for KernelUdf {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.signature == other.signature && self.output == other.output
    }
}

impl Eq for KernelUdf {}

impl std::hash::Hash for KernelUdf {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for KernelUdf {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(self.output.clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = args.args.iter().map(|a| a.to_array(rows)).collect::<Result<Vec<_>>>()?;
        Ok(ColumnarValue::Array((self.kernel)(&arrays, rows)?))
    }
}

/// `current_setting(name [, missing_ok])` and `set_config(name, value, is_local)` over the
/// session's settings, as `SHOW` and `SET` see them. `is_local` is accepted and ignored:
/// there are no transactions to scope a setting to.
fn register_settings(ctx: &SessionContext, settings: SharedSettings) {
    let text = DataType::Utf8;
    let read = settings.clone();
    let current = move |a: &[ArrayRef], rows: usize| -> Result<ArrayRef> {
        let names = a[0].as_string::<i32>();
        let missing_ok = a.get(1).map(|m| m.as_boolean().clone());
        let mut out = Vec::with_capacity(rows);
        for i in 0..rows {
            if names.is_null(i) {
                out.push(None);
                continue;
            }
            match lock(&read).get(names.value(i)) {
                Ok(v) => out.push(Some(v)),
                Err(_) if missing_ok.as_ref().is_some_and(|m| m.is_valid(i) && m.value(i)) => out.push(None),
                Err(e) => {
                    return Err(DataFusionError::External(Box::new(crate::error::Error::Sql(
                        e.sqlstate(),
                        e.to_string(),
                    ))));
                }
            }
        }
        Ok(Arc::new(StringArray::from(out)) as ArrayRef)
    };
    ctx.register_udf(ScalarUDF::from(KernelUdf {
        name: "current_setting".into(),
        signature: Signature::one_of(
            vec![TypeSignature::Exact(vec![text.clone()]), TypeSignature::Exact(vec![text.clone(), DataType::Boolean])],
            Volatility::Stable,
        ),
        output: text.clone(),
        kernel: Arc::new(current),
    }));
    // Volatile: it changes the session, so planning (or Describe) must never evaluate it early.
    ctx.register_udf(ScalarUDF::from(KernelUdf {
        name: "set_config".into(),
        signature: Signature::exact(vec![text.clone(), text.clone(), DataType::Boolean], Volatility::Volatile),
        output: text,
        kernel: Arc::new(move |a, rows| {
            let (names, values) = (a[0].as_string::<i32>(), a[1].as_string::<i32>());
            let mut out = Vec::with_capacity(rows);
            for i in 0..rows {
                if names.is_null(i) {
                    return Err(DataFusionError::Execution("set_config: the parameter name must not be NULL".into()));
                }
                let value = if values.is_null(i) { "" } else { values.value(i) };
                lock(&settings).set(names.value(i), value).map_err(|e| DataFusionError::Execution(e.to_string()))?;
                out.push(Some(value.to_string()));
            }
            Ok(Arc::new(StringArray::from(out)) as ArrayRef)
        }),
    }));
}

fn constant_text(value: String) -> Kernel {
    Arc::new(move |_, rows| Ok(Arc::new(StringArray::from(vec![Some(value.as_str()); rows])) as ArrayRef))
}

fn oids(a: &ArrayRef) -> impl Iterator<Item = Option<i64>> + '_ {
    a.as_primitive::<Int64Type>().iter()
}

/// PostgreSQL's `pg_size_pretty`: bytes below 10 kB, then kB, MB, GB, TB, PB, each used below
/// 20480 of it, rounded half away from zero.
pub fn size_pretty(bytes: i64) -> String {
    // (unit, limit, rounds, bits): PostgreSQL's size_pretty_units table.
    const UNITS: [(&str, i64, bool, u32); 6] = [
        ("bytes", 10 * 1024, false, 0),
        ("kB", 20 * 1024 - 1, true, 10),
        ("MB", 20 * 1024 - 1, true, 20),
        ("GB", 20 * 1024 - 1, true, 30),
        ("TB", 20 * 1024 - 1, true, 40),
        ("PB", 20 * 1024 - 1, true, 50),
    ];
    let mut size = bytes;
    for (i, (name, limit, round, bits)) in UNITS.iter().enumerate() {
        let last = i + 1 == UNITS.len();
        if last || size.abs() < *limit {
            if *round {
                size = (size + if size < 0 { -1 } else { 1 }) / 2;
            }
            return format!("{size} {name}");
        }
        let (_, _, next_round, next_bits) = UNITS[i + 1];
        let shift = next_bits - bits - u32::from(next_round) + u32::from(*round);
        size /= 1i64 << shift;
    }
    unreachable!("the last unit always answers")
}

/// Registers the compatibility functions on a session.
pub fn register(ctx: &SessionContext, store: Arc<Store>, info: &SessionInfo, settings: SharedSettings) {
    register_settings(ctx, settings.clone());
    let path = crate::pg::search_path::of_session(store.clone(), settings.clone(), info);
    session::register(ctx, &store, info, &path);
    arrays_and_text::register(ctx, &store, info, &path);
    visibility::register(ctx, &store, info, &path);
    descriptions::register(ctx, &store, info, &path);
    reg_types::register(ctx, &store, info, &path);
}

/// Values as text for functions that take any type (`format`): booleans as PostgreSQL writes
/// them (`t`, `f`), everything else as Arrow casts it to text.
fn as_text(a: &ArrayRef) -> Result<Vec<Option<String>>> {
    if let Some(b) = a.as_boolean_opt() {
        return Ok(b.iter().map(|v| v.map(|v| if v { "t" } else { "f" }.to_string())).collect());
    }
    let cast = datafusion::arrow::compute::cast(a, &DataType::Utf8)?;
    Ok(cast.as_string::<i32>().iter().map(|v| v.map(str::to_string)).collect())
}

/// PostgreSQL 15's keywords that are not unreserved (reserved, column-name and
/// type-or-function-name keywords): as identifiers they must be quoted.
const QUOTED_KEYWORDS: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "authorization",
    "between",
    "bigint",
    "binary",
    "bit",
    "boolean",
    "both",
    "case",
    "cast",
    "char",
    "character",
    "check",
    "coalesce",
    "collate",
    "collation",
    "column",
    "concurrently",
    "constraint",
    "create",
    "cross",
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "dec",
    "decimal",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "exists",
    "extract",
    "false",
    "fetch",
    "float",
    "for",
    "foreign",
    "freeze",
    "from",
    "full",
    "grant",
    "greatest",
    "group",
    "grouping",
    "having",
    "ilike",
    "in",
    "initially",
    "inner",
    "inout",
    "int",
    "integer",
    "intersect",
    "interval",
    "into",
    "is",
    "isnull",
    "join",
    "lateral",
    "leading",
    "least",
    "left",
    "like",
    "limit",
    "localtime",
    "localtimestamp",
    "national",
    "natural",
    "nchar",
    "none",
    "normalize",
    "not",
    "notnull",
    "null",
    "nullif",
    "numeric",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "out",
    "outer",
    "overlaps",
    "overlay",
    "placing",
    "position",
    "precision",
    "primary",
    "real",
    "references",
    "returning",
    "right",
    "row",
    "select",
    "session_user",
    "setof",
    "similar",
    "smallint",
    "some",
    "substring",
    "symmetric",
    "table",
    "tablesample",
    "then",
    "time",
    "timestamp",
    "to",
    "trailing",
    "treat",
    "trim",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "values",
    "varchar",
    "variadic",
    "verbose",
    "when",
    "where",
    "window",
    "with",
    "xmlattributes",
    "xmlconcat",
    "xmlelement",
    "xmlexists",
];

/// PostgreSQL's quote_ident: plain lower-case identifiers that are not keywords as they are,
/// others double-quoted.
pub fn quote_ident(name: &str) -> String {
    let plain = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !QUOTED_KEYWORDS.contains(&name);
    if plain { name.to_string() } else { format!("\"{}\"", name.replace('"', "\"\"")) }
}

/// PostgreSQL's parse_ident: the dot-separated parts, quoted parts as written (with `""` as a
/// quote), unquoted ones folded to lower case.
pub fn parse_ident(name: &str) -> Vec<String> {
    let mut parts = vec![];
    let mut chars = name.trim().chars().peekable();
    let mut current = String::new();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                while let Some(q) = chars.next() {
                    if q == '"' {
                        if chars.peek() == Some(&'"') {
                            chars.next();
                            current.push('"');
                        } else {
                            break;
                        }
                    } else {
                        current.push(q);
                    }
                }
            }
            '.' => parts.push(std::mem::take(&mut current)),
            c => current.extend(c.to_lowercase()),
        }
    }
    parts.push(current);
    parts
}

#[cfg(test)]
mod tests {
    use super::{parse_ident, quote_ident, size_pretty};

    #[test]
    fn identifiers_like_postgres() {
        assert_eq!(quote_ident("events"), "events");
        assert_eq!(quote_ident("Mixed Case"), "\"Mixed Case\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(parse_ident("journey.Events"), ["journey", "events"]);
        assert_eq!(parse_ident("\"My \"\"T\"\"\".x"), ["My \"T\"", "x"]);
    }

    #[test]
    fn size_pretty_matches_postgres() {
        // Answers of PostgreSQL 15's pg_size_pretty for the same values.
        let cases = [
            (0, "0 bytes"),
            (10_239, "10239 bytes"),
            (10_240, "10 kB"),
            (20_479 * 512, "10 MB"),
            (20_479 * 512 + 1_000, "10 MB"),
            (123_456_789, "118 MB"),
            (-123_456_789, "-118 MB"),
            (98_765_432_109_876, "90 TB"),
            (1_125_899_906_842_624 * 30, "30 PB"),
        ];
        for (bytes, want) in cases {
            assert_eq!(size_pretty(bytes), want, "{bytes}");
        }
    }
}
