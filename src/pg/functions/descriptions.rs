//! What the catalog says of an object: index and constraint definitions (none), comments
//! and function summaries, `format_type`, sizes, the journey functions' signatures (`\\df`);
//! and what a standby or advisory lock would answer.

use super::*;

pub(super) fn register(ctx: &SessionContext, store: &Arc<Store>, info: &SessionInfo, path: &SearchPathFn) {
    let (text, int8) = (DataType::Utf8, DataType::Int64);
    let _ = (&text, &int8, store, info, path);
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
                    store.table_size(s, n) as i64
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
}
