//! `::regtype` and `::regclass`: OIDs shown as names, names looked up as OIDs.

use super::*;

pub(super) fn register(ctx: &SessionContext, store: &Arc<Store>, info: &SessionInfo, path: &SearchPathFn) {
    let (text, int8) = (DataType::Utf8, DataType::Int64);
    let _ = (&text, &int8, store, info, path);
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
                                .and_then(|o| crate::pg::catalog::regclass_name(&names_store, o))
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
            let oid_of = crate::pg::types::named;
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
                    let found = crate::pg::catalog::regclass_oid(&store, &search_path, n);
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
