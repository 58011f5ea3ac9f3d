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
