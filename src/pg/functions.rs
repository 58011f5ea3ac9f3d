//! The PostgreSQL functions clients call on connect and in catalog queries, registered per
//! session (some answer with the session's user and database).

use super::catalog::{SessionInfo, function_oid, relation_oid, store_relations};
use super::settings::{SharedSettings, lock};
use super::types::format_type;
use crate::store::Store;
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
    let text = DataType::Utf8;
    let int8 = DataType::Int64;
    register_settings(ctx, settings.clone());
    let path = super::search_path::of_session(store.clone(), settings.clone(), info);
    // Every object is readable by every user: journeydb has no grants yet.
    for name in PRIVILEGE_CHECKS {
        ctx.register_udf(ScalarUDF::from(KernelUdf {
            name: name.into(),
            signature: Signature::variadic_any(Volatility::Stable),
            output: DataType::Boolean,
            kernel: Arc::new(|_, rows| Ok(Arc::new(BooleanArray::from(vec![true; rows])) as ArrayRef)),
        }));
    }
    ctx.register_udf(udf("version", vec![], text.clone(), constant_text(super::version_string())));
    ctx.register_udf(udf("current_database", vec![], text.clone(), constant_text(info.database.clone())));
    // current_schema(): the first schema of the search path that exists (NULL when none does).
    let first = path.clone();
    ctx.register_udf(udf(
        "current_schema",
        vec![],
        text.clone(),
        Arc::new(move |_, rows| Ok(Arc::new(StringArray::from(vec![first().into_iter().next(); rows])) as ArrayRef)),
    ));
    // `user`, `current_user`, `session_user` (the rewriter calls the pg_ forms: the parser
    // reads the bare keywords as calls without an argument list).
    for name in ["current_user", "session_user", "pg_current_user", "pg_session_user"] {
        ctx.register_udf(udf(name, vec![], text.clone(), constant_text(info.user.clone())));
    }
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
                let s = super::format::format(fmt, &args).map_err(|e| DataFusionError::External(Box::new(e)))?;
                out.push(Some(s));
            }
            Ok(Arc::new(StringArray::from(out)) as ArrayRef)
        }),
    }));
    // quote_literal(text): the value as a SQL string literal.
    ctx.register_udf(udf(
        "quote_literal",
        vec![text.clone()],
        text.clone(),
        Arc::new(|a, _| {
            let values = a[0].as_string::<i32>();
            Ok(Arc::new(values.iter().map(|v| v.map(super::format::quote_literal)).collect::<StringArray>())
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
    // current_schemas(include_implicit): the search path that exists, pg_catalog first when
    // implicit schemas are asked for (pgjdbc's getSchemas reads element 1).
    let schemas = path.clone();
    ctx.register_udf(udf(
        "current_schemas",
        vec![DataType::Boolean],
        DataType::List(Arc::new(datafusion::arrow::datatypes::Field::new("item", DataType::Utf8, true))),
        Arc::new(move |a, rows| {
            let path = schemas();
            let implicit = a[0].as_boolean();
            let mut builder =
                datafusion::arrow::array::ListBuilder::new(datafusion::arrow::array::StringBuilder::new());
            for i in 0..rows {
                if implicit.is_null(i) {
                    builder.append_null();
                    continue;
                }
                if implicit.value(i) && !path.iter().any(|s| s == super::catalog::PG_CATALOG) {
                    builder.values().append_value(super::catalog::PG_CATALOG);
                }
                for s in &path {
                    builder.values().append_value(s);
                }
                builder.append(true);
            }
            Ok(Arc::new(builder.finish()) as ArrayRef)
        }),
    ));
    ctx.register_udf(udf("pg_encoding_to_char", vec![int8.clone()], text.clone(), constant_text("UTF8".into())));
    let user = info.user.clone();
    ctx.register_udf(udf(
        "pg_get_userbyid",
        vec![int8.clone()],
        text.clone(),
        Arc::new(move |a, _| {
            Ok(Arc::new(
                oids(&a[0])
                    .map(|o| o.map(|o| if o == 10 { user.clone() } else { format!("unknown (OID={o})") }))
                    .collect::<StringArray>(),
            ) as ArrayRef)
        }),
    ));
    // A relation is visible when its unqualified name finds it: pg_catalog's tables always,
    // others when theirs is the first schema of the search path with that name.
    let visible_store = store.clone();
    let visible_path = path.clone();
    ctx.register_udf(udf(
        "pg_table_is_visible",
        vec![int8.clone()],
        DataType::Boolean,
        Arc::new(move |a, _| {
            let path = visible_path();
            let mut relations: std::collections::HashMap<u32, (String, String)> = super::catalog::TABLES
                .iter()
                .map(|t| {
                    (super::catalog::catalog_table_oid(t), (super::catalog::PG_CATALOG.to_string(), t.to_string()))
                })
                .collect();
            for v in crate::journey::VIEWS {
                let schema = crate::journey::JOURNEY_SCHEMA.to_string();
                relations.insert(super::catalog::journey_view_oid(v), (schema, v.to_string()));
            }
            for (s, n, _) in store_relations(&visible_store) {
                relations.insert(relation_oid(&s, &n), (s, n));
            }
            // An OID that names no relation is NULL, as in PostgreSQL.
            Ok(Arc::new(
                oids(&a[0])
                    .map(|o| {
                        let (schema, name) = relations.get(&u32::try_from(o?).ok()?)?;
                        Some(super::search_path::find(&visible_store, &path, name).as_ref() == Some(schema))
                    })
                    .collect::<BooleanArray>(),
            ) as ArrayRef)
        }),
    ));
    // Temporary tables live in the session, not in a schema: no schema is another session's.
    ctx.register_udf(udf(
        "pg_is_other_temp_schema",
        vec![int8.clone()],
        DataType::Boolean,
        Arc::new(|a, _| Ok(Arc::new(oids(&a[0]).map(|o| o.map(|_| false)).collect::<BooleanArray>()) as ArrayRef)),
    ));
    // Every type is a built-in one, in pg_catalog: visible; an OID that names no type is NULL.
    ctx.register_udf(udf(
        "pg_type_is_visible",
        vec![int8.clone()],
        DataType::Boolean,
        Arc::new(|a, _| {
            let known = |o: i64| super::types::BUILTIN.iter().any(|t| i64::from(t.oid) == o);
            Ok(Arc::new(oids(&a[0]).map(|o| o.filter(|o| known(*o)).map(|_| true)).collect::<BooleanArray>())
                as ArrayRef)
        }),
    ));
    // journeydb tables have no indexes and no constraints: no OID names one (NULL, as
    // PostgreSQL answers for an OID that is not an index or a constraint).
    for name in ["pg_get_indexdef", "pg_get_constraintdef"] {
        ctx.register_udf(any_udf(
            name,
            text.clone(),
            Arc::new(|_, rows| Ok(Arc::new(StringArray::from(vec![None::<&str>; rows])) as ArrayRef)),
        ));
    }
    // Advisory locks are never taken, so releasing them all does nothing (asyncpg's pool sends
    // it when a connection goes back); the answer is void, shown as an empty value.
    ctx.register_udf(udf("pg_advisory_unlock_all", vec![], text.clone(), constant_text(String::new())));
    // A journeydb server is never a standby.
    ctx.register_udf(udf(
        "pg_is_in_recovery",
        vec![],
        DataType::Boolean,
        Arc::new(|_, rows| Ok(Arc::new(BooleanArray::from(vec![false; rows])) as ArrayRef)),
    ));
    ctx.register_udf(udf(
        "pg_function_is_visible",
        vec![int8.clone()],
        DataType::Boolean,
        Arc::new(|a, _| Ok(Arc::new(oids(&a[0]).map(|o| o.map(|_| true)).collect::<BooleanArray>()) as ArrayRef)),
    ));
    ctx.register_udf(udf(
        "format_type",
        vec![int8.clone(), int8.clone()],
        text.clone(),
        Arc::new(|a, _| {
            let m = a[1].as_primitive::<Int64Type>();
            Ok(Arc::new(
                oids(&a[0])
                    .enumerate()
                    .map(|(i, o)| {
                        o.and_then(|o| format_type(o as u32, if m.is_null(i) { -1 } else { m.value(i) as i32 }))
                    })
                    .collect::<StringArray>(),
            ) as ArrayRef)
        }),
    ));
    // Expressions are stored as SQL text, so the text is the answer.
    ctx.register_udf(udf(
        "pg_get_expr",
        vec![text.clone(), int8.clone()],
        text.clone(),
        Arc::new(|a, _| Ok(a[0].clone())),
    ));
    // COMMENT ON: relations' and columns' comments; a journey function's summary (`\df+`).
    let comments_store = store.clone();
    ctx.register_udf(udf(
        "obj_description",
        vec![int8.clone(), text.clone()],
        text.clone(),
        Arc::new(move |a, _| {
            let relations = store_relations(&comments_store);
            let functions = journeydb_udfs::catalog();
            let catalogs = a[1].as_string::<i32>();
            let find = |(i, o): (usize, i64)| {
                if catalogs.is_valid(i) && catalogs.value(i) == "pg_proc" {
                    let f = functions.iter().find(|f| i64::from(function_oid(f.name, f.kind.prokind())) == o)?;
                    return Some(f.summary.to_string());
                }
                let (s, n, _) = relations.iter().find(|(s, n, _)| i64::from(relation_oid(s, n)) == o)?;
                comments_store.comments(s, n).relation
            };
            let found = oids(&a[0]).enumerate().map(|(i, o)| o.and_then(|o| find((i, o))));
            Ok(Arc::new(found.collect::<StringArray>()) as ArrayRef)
        }),
    ));
    let comments_store = store.clone();
    ctx.register_udf(udf(
        "col_description",
        vec![int8.clone(), int8.clone()],
        text.clone(),
        Arc::new(move |a, _| {
            let relations = store_relations(&comments_store);
            let nums = a[1].as_primitive::<Int64Type>();
            let find = |o: i64, num: i64| {
                let (s, n, _) = relations.iter().find(|(s, n, _)| i64::from(relation_oid(s, n)) == o)?;
                let table = comments_store.table_in(s, n).ok()??;
                let schema = datafusion::catalog::TableProvider::schema(table.as_ref());
                let column = schema.fields().get(usize::try_from(num).ok()?.checked_sub(1)?)?.name().clone();
                comments_store.comments(s, n).columns.get(&column).cloned()
            };
            Ok(Arc::new(
                oids(&a[0])
                    .enumerate()
                    .map(|(i, o)| o.and_then(|o| if nums.is_null(i) { None } else { find(o, nums.value(i)) }))
                    .collect::<StringArray>(),
            ) as ArrayRef)
        }),
    ));
    ctx.register_udf(udf(
        "pg_size_pretty",
        vec![int8.clone()],
        text.clone(),
        Arc::new(|a, _| Ok(Arc::new(oids(&a[0]).map(|v| v.map(size_pretty)).collect::<StringArray>()) as ArrayRef)),
    ));
    // The size of a store table is the size of its Parquet files; catalog tables take none.
    for name in ["pg_table_size", "pg_relation_size", "pg_total_relation_size"] {
        let store = store.clone();
        ctx.register_udf(udf(
            name,
            vec![int8.clone()],
            int8.clone(),
            Arc::new(move |a, _| {
                let tables = store_relations(&store);
                let size_of = |oid: i64| -> i64 {
                    let Some((s, n, _)) = tables.iter().find(|(s, n, _)| i64::from(relation_oid(s, n)) == oid) else {
                        return 0;
                    };
                    store
                        .table_dir(s, n)
                        .and_then(|d| crate::store::list_data_files(&d).ok())
                        .map(|files| files.iter().map(|f| f.size as i64).sum())
                        .unwrap_or(0)
                };
                Ok(Arc::new(oids(&a[0]).map(|o| o.map(size_of)).collect::<Int64Array>()) as ArrayRef)
            }),
        ));
    }
    // psql's \\df+: a function's SQL-standard body; the journey functions are built in.
    ctx.register_udf(udf(
        "pg_get_function_sqlbody",
        vec![int8.clone()],
        text.clone(),
        Arc::new(|a, _| Ok(Arc::new(StringArray::new_null(a[0].len())) as ArrayRef)),
    ));
    // psql's \\df: the journey functions' signatures, from their catalog entries.
    for (name, pick) in [
        ("pg_get_function_result", (|e: &FunctionDoc| e.result.to_string()) as fn(&FunctionDoc) -> String),
        ("pg_get_function_arguments", |e: &FunctionDoc| e.arguments()),
    ] {
        ctx.register_udf(udf(
            name,
            vec![int8.clone()],
            text.clone(),
            Arc::new(move |a, _| {
                let entries = journeydb_udfs::catalog();
                let find =
                    |o: i64| entries.iter().find(|e| i64::from(function_oid(e.name, e.kind.prokind())) == o).map(pick);
                Ok(Arc::new(oids(&a[0]).map(|o| o.and_then(find)).collect::<StringArray>()) as ArrayRef)
            }),
        ));
    }
    // `x::regtype` and `x::regclass` of an OID show a name.
    ctx.register_udf(udf(
        "pg_regtype_name",
        vec![int8.clone()],
        text.clone(),
        Arc::new(|a, _| {
            Ok(Arc::new(
                oids(&a[0])
                    // OID 0 (no type: a base type's element) shows as `-`, as in PostgreSQL.
                    .map(|o| {
                        o.map(|o| {
                            if o == 0 { "-".into() } else { format_type(o as u32, -1).unwrap_or_else(|| o.to_string()) }
                        })
                    })
                    .collect::<StringArray>(),
            ) as ArrayRef)
        }),
    ));
    let names_store = store.clone();
    ctx.register_udf(udf(
        "pg_regclass_name",
        vec![int8.clone()],
        text.clone(),
        Arc::new(move |a, _| {
            Ok(Arc::new(
                oids(&a[0])
                    .map(|o| {
                        o.map(|o| {
                            u32::try_from(o)
                                .ok()
                                .and_then(|o| super::catalog::regclass_name(&names_store, o))
                                .unwrap_or_else(|| o.to_string())
                        })
                    })
                    .collect::<StringArray>(),
            ) as ArrayRef)
        }),
    ));
    // to_regtype('name'): a type's OID by its name (`int4`, `integer`, `text[]`, `_text`), or
    // NULL for a type journeydb does not have (psycopg asks for hstore).
    ctx.register_udf(udf(
        "to_regtype",
        vec![text.clone()],
        DataType::UInt32,
        Arc::new(|a, _| {
            let names = a[0].as_string::<i32>();
            let oid_of = |n: &str| -> Option<u32> {
                let n = n.trim().trim_matches('"').trim_start_matches("pg_catalog.").to_ascii_lowercase();
                super::types::BUILTIN.iter().find_map(|t| {
                    let sql = format_type(t.oid, -1).unwrap_or_default();
                    if n == t.name || n == sql {
                        Some(t.oid)
                    } else if n == format!("_{}", t.name) || n == format!("{}[]", t.name) || n == format!("{sql}[]") {
                        Some(t.array_oid)
                    } else {
                        None
                    }
                })
            };
            Ok(Arc::new(names.iter().map(|n| n.and_then(oid_of)).collect::<UInt32Array>()) as ArrayRef)
        }),
    ));
    // `'name'::regclass` gives the OID of a relation; a name that names none is an error, as
    // in PostgreSQL (`to_regclass` gives NULL instead).
    for (name, strict) in [("pg_regclass_oid", true), ("to_regclass", false)] {
        let store = store.clone();
        let path = path.clone();
        ctx.register_udf(udf(
            name,
            vec![text.clone()],
            DataType::UInt32,
            Arc::new(move |a, _| {
                let names = a[0].as_string::<i32>();
                let search_path = path();
                let mut out = Vec::with_capacity(names.len());
                for n in names.iter() {
                    let Some(n) = n else {
                        out.push(None);
                        continue;
                    };
                    let found = super::catalog::regclass_oid(&store, &search_path, n);
                    if found.is_none() && strict {
                        return Err(DataFusionError::External(Box::new(crate::error::Error::Sql(
                            crate::error::SqlState::UndefinedTable,
                            format!("relation \"{n}\" does not exist"),
                        ))));
                    }
                    out.push(found);
                }
                Ok(Arc::new(UInt32Array::from(out)) as ArrayRef)
            }),
        ));
    }
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
