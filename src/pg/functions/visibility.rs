//! The search path as functions: `current_schemas`, and whether a relation, type or
//! function is visible by its unqualified name.

use super::*;

pub(super) fn register(ctx: &SessionContext, store: &Arc<Store>, info: &SessionInfo, path: &SearchPathFn) {
    let (text, int8) = (DataType::Utf8, DataType::Int64);
    let _ = (&text, &int8, store, info, path);
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
                if implicit.value(i) && !path.iter().any(|s| s == crate::pg::catalog::PG_CATALOG) {
                    builder.values().append_value(crate::pg::catalog::PG_CATALOG);
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
            let mut relations: std::collections::HashMap<u32, (String, String)> = crate::pg::catalog::TABLES
                .iter()
                .map(|t| {
                    (
                        crate::pg::catalog::catalog_table_oid(t),
                        (crate::pg::catalog::PG_CATALOG.to_string(), t.to_string()),
                    )
                })
                .collect();
            for v in crate::journey::VIEWS {
                let schema = crate::journey::JOURNEY_SCHEMA.to_string();
                relations.insert(crate::pg::catalog::journey_view_oid(v), (schema, v.to_string()));
            }
            for (s, n, _) in store_relations(&visible_store) {
                relations.insert(relation_oid(&s, &n), (s, n));
            }
            // An OID that names no relation is NULL, as in PostgreSQL.
            Ok(Arc::new(
                oids(&a[0])
                    .map(|o| {
                        let (schema, name) = relations.get(&u32::try_from(o?).ok()?)?;
                        Some(crate::pg::search_path::find(&visible_store, &path, name).as_ref() == Some(schema))
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
            let known = |o: i64| crate::pg::types::BUILTIN.iter().any(|t| i64::from(t.oid) == o);
            Ok(Arc::new(oids(&a[0]).map(|o| o.filter(|o| known(*o)).map(|_| true)).collect::<BooleanArray>())
                as ArrayRef)
        }),
    ));
}
