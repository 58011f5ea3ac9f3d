//! `pg_get_viewdef(view [, pretty])`: the SQL of a view, named by OID or by name (found along
//! the search path): a view of the store as it was created, a journey model view as the model
//! generates it from the configuration. NULL for anything else. psql's `\d+ view` shows it.

use super::catalog::{journey_view_oid, regclass_oid, relation_oid, store_relations};
use super::functions::any_udf;
use crate::journey::ModelHost;
use crate::store::RelationKind;
use crate::store::catalog::SearchPathFn;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::prelude::SessionContext;
use std::sync::Arc;

pub fn register(ctx: &SessionContext, host: Arc<dyn ModelHost>, path: SearchPathFn) {
    ctx.register_udf(any_udf(
        "pg_get_viewdef",
        DataType::Utf8,
        Arc::new(move |a, rows| {
            let Some(first) = a.first() else {
                return Err(datafusion::error::DataFusionError::Plan("pg_get_viewdef needs a view".into()));
            };
            let oids: Vec<Option<u32>> = match first.data_type() {
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                    let names = datafusion::arrow::compute::cast(first, &DataType::Utf8)?;
                    let path = path();
                    names
                        .as_string::<i32>()
                        .iter()
                        .map(|n| n.and_then(|n| regclass_oid(host.store(), &path, n)))
                        .collect()
                }
                _ => {
                    let values = datafusion::arrow::compute::cast(first, &DataType::Int64)?;
                    let values = values.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
                    (0..rows)
                        .map(|i| (!values.is_null(i)).then(|| values.value(i)).and_then(|o| u32::try_from(o).ok()))
                        .collect()
                }
            };
            let out: StringArray = oids.into_iter().map(|o| o.and_then(|o| definition(host.as_ref(), o))).collect();
            Ok(Arc::new(out) as ArrayRef)
        }),
    ));
}

/// The SQL of the view with OID `oid`, if it is one.
fn definition(host: &dyn ModelHost, oid: u32) -> Option<String> {
    let store = host.store();
    if let Some(view) = crate::journey::VIEWS.iter().find(|v| journey_view_oid(v) == oid) {
        let (cfg, present, base) = crate::journey::preset::base(host.journey(), store.as_ref()).ok()??;
        return crate::journey::view_sql_over(&cfg, view, &present, &base).ok()?;
    }
    store_relations(store)
        .into_iter()
        .find(|(s, n, k)| *k == RelationKind::View && relation_oid(s, n) == oid)
        .and_then(|(s, n, _)| store.view_sql(&s, &n))
}
