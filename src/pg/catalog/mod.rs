//! `pg_catalog`, generated from the store on every lookup, so it always describes the tables
//! that exist now. This file holds the OIDs (fixed for built-in objects, stable hashes for the
//! store's), the list of catalog tables and the schema provider; each family of tables is
//! built in a file of its own:
//!
//! - `columns`: how a table is made (column types, values, one in-memory table).
//! - `relations`: namespaces, `pg_class`, `pg_attribute`, `pg_am`, `pg_tables`, `pg_views`,
//!   `pg_stat_user_tables`, `pg_description`.
//! - `types`: `pg_type`.
//! - `roles`: `pg_database`, `pg_roles`, `pg_user`, `pg_authid`.
//! - `functions`: `pg_proc`, `pg_language`.
//! - `settings`: `pg_settings`.
//! - `empty`: the tables journeydb has no objects for (policies, publications, inheritance,
//!   triggers, ...), with their PostgreSQL columns and no rows; the rewriter prunes client
//!   queries that join them ([`is_always_empty`]).

use crate::journey::JOURNEY_SCHEMA;
use crate::pg::information_schema::INFORMATION_SCHEMA;
use crate::store::{RelationKind, STORE_SCHEMA, Store, ViewPlanner};
use datafusion::arrow::datatypes::Schema;
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::error::Result;
use std::sync::Arc;

mod columns;
mod empty;
mod functions;
mod relations;
mod roles;
mod settings;
mod types;

pub use empty::is_always_empty;

pub const PG_CATALOG: &str = "pg_catalog";
pub const PG_CATALOG_OID: u32 = 11;
pub const PUBLIC_OID: u32 = 2200;
pub const INFORMATION_SCHEMA_OID: u32 = 13_000;
/// The journey model's schema (user namespaces start at 16384 in PostgreSQL).
pub const JOURNEY_OID: u32 = 16_383;
pub const OWNER_OID: u32 = 10;
pub const DATABASE_OID: u32 = 16_384;
pub const HEAP_AM_OID: u32 = 2;
pub const DEFAULT_COLLATION_OID: u32 = 100;

/// Who is asking: the catalog answers per session.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub user: String,
    pub database: String,
}

#[derive(Debug)]
pub struct PgCatalog {
    store: Arc<Store>,
    info: SessionInfo,
    /// The journey model's schema, whose views the catalog lists.
    journey: Arc<dyn SchemaProvider>,
    /// Plans the views users created, to list their columns.
    planner: Option<Arc<dyn ViewPlanner>>,
    /// The session's settings, which `pg_settings` shows.
    settings: crate::pg::settings::SharedSettings,
    /// Those views and the journey model's, looked up (planned) before a catalog table that
    /// lists them is built.
    views: Vec<View>,
}

/// A view as the catalog shows it.
#[derive(Debug, Clone)]
struct View {
    namespace: String,
    name: String,
    schema: Arc<Schema>,
    definition: String,
}

impl PgCatalog {
    pub fn new(
        store: Arc<Store>,
        info: SessionInfo,
        journey: Arc<dyn SchemaProvider>,
        planner: Option<Arc<dyn ViewPlanner>>,
        settings: crate::pg::settings::SharedSettings,
    ) -> PgCatalog {
        PgCatalog { store, info, journey, planner, settings, views: vec![] }
    }
}

/// OID of a namespace: fixed for the built-in ones, stable hashes for the store's schemas.
pub fn schema_oid(schema: &str) -> u32 {
    match schema {
        PG_CATALOG => PG_CATALOG_OID,
        STORE_SCHEMA => PUBLIC_OID,
        "information_schema" => INFORMATION_SCHEMA_OID,
        JOURNEY_SCHEMA => JOURNEY_OID,
        other => table_oid(&format!("schema {other}")),
    }
}

/// Stable OID of a relation of the store (tables and views of every schema).
pub fn relation_oid(schema: &str, name: &str) -> u32 {
    if schema == STORE_SCHEMA { table_oid(name) } else { table_oid(&format!("{schema}.{name}")) }
}

/// Every table and view of the store: (schema, name, kind), by schema then name.
pub fn store_relations(store: &Store) -> Vec<(String, String, RelationKind)> {
    let mut out = vec![];
    for s in store.schema_names() {
        for t in store.table_names_in(&s) {
            out.push((s.clone(), t, RelationKind::Table));
        }
        for v in store.view_names(&s) {
            out.push((s.clone(), v, RelationKind::View));
        }
    }
    out
}

/// Stable OID of a view of the journey model.
pub fn journey_view_oid(name: &str) -> u32 {
    table_oid(&format!("{JOURNEY_SCHEMA}.{name}"))
}

/// Stable OID of a store table (user objects start at 16384 in PostgreSQL).
pub fn table_oid(name: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h = (h ^ b as u32).wrapping_mul(0x0100_0193);
    }
    16_385 + h % 1_000_000_000
}

/// Stable OID of a journey function.
pub fn function_oid(name: &str, kind: &str) -> u32 {
    table_oid(&format!("function {name} {kind}"))
}

/// The OID of the relation a `regclass` input names (`name`, `schema.name`, quoted or not, or
/// an OID), looked up as PostgreSQL does: a schema-qualified name in that schema; an
/// unqualified one in `pg_catalog`, then along the search path (`path`, its schemas in order).
pub fn regclass_oid(store: &Store, path: &[String], input: &str) -> Option<u32> {
    if let Ok(o) = input.trim().parse::<u32>() {
        return Some(o);
    }
    let parts = crate::pg::functions::parse_ident(input);
    let oid = |schema: &str, name: &str| -> Option<u32> {
        if !crate::pg::search_path::has_relation(store, schema, name) {
            return None;
        }
        match schema {
            PG_CATALOG => Some(catalog_table_oid(name)),
            JOURNEY_SCHEMA => Some(journey_view_oid(name)),
            INFORMATION_SCHEMA => None,
            s => Some(relation_oid(s, name)),
        }
    };
    match parts.as_slice() {
        [schema, name] => oid(schema, name),
        [name] => crate::pg::search_path::find(store, path, name).and_then(|s| oid(&s, name)),
        _ => None,
    }
}

/// How a `regclass` shows a relation's OID: its name, qualified when its schema is not `public`
/// or `pg_catalog`, each part quoted where SQL needs it.
pub fn regclass_name(store: &Store, oid: u32) -> Option<String> {
    use crate::pg::functions::quote_ident;
    if let Some(t) = TABLES.iter().find(|t| catalog_table_oid(t) == oid) {
        return Some(t.to_string());
    }
    if let Some(v) = crate::journey::VIEWS.iter().find(|v| journey_view_oid(v) == oid) {
        return Some(format!("{JOURNEY_SCHEMA}.{}", quote_ident(v)));
    }
    store_relations(store).into_iter().find(|(s, n, _)| relation_oid(s, n) == oid).map(|(s, n, _)| {
        if s == STORE_SCHEMA { quote_ident(&n) } else { format!("{}.{}", quote_ident(&s), quote_ident(&n)) }
    })
}

pub(crate) fn catalog_table_oid(name: &str) -> u32 {
    1_000 + TABLES.iter().position(|t| *t == name).unwrap_or(0) as u32
}

pub(crate) const TABLES: [&str; 39] = [
    "pg_am",
    "pg_attrdef",
    "pg_auth_members",
    "pg_attribute",
    "pg_class",
    "pg_collation",
    "pg_constraint",
    "pg_database",
    "pg_depend",
    "pg_description",
    "pg_event_trigger",
    "pg_extension",
    "pg_index",
    "pg_inherits",
    "pg_matviews",
    "pg_namespace",
    "pg_partitioned_table",
    "pg_policy",
    "pg_proc",
    "pg_publication",
    "pg_publication_namespace",
    "pg_publication_rel",
    "pg_rewrite",
    "pg_roles",
    "pg_statistic_ext",
    "pg_tables",
    "pg_trigger",
    "pg_type",
    "pg_user",
    "pg_views",
    // Appended, so that the other catalog tables keep their OIDs.
    "pg_settings",
    "pg_enum",
    "pg_stat_user_tables",
    "pg_authid",
    "pg_range",
    "pg_language",
    "pg_sequence",
    "pg_opclass",
    "pg_tablespace",
];

impl PgCatalog {
    /// Catalog table `name`, built now.
    fn build(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let table = empty::table(name)
            .or_else(|| self.relation_table(name))
            .or_else(|| self.type_table(name))
            .or_else(|| self.role_table(name))
            .or_else(|| self.function_table(name))
            .or_else(|| self.setting_table(name));
        table.transpose()
    }
}

#[async_trait::async_trait]
impl SchemaProvider for PgCatalog {
    fn table_names(&self) -> Vec<String> {
        TABLES.iter().map(|s| s.to_string()).collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let mut views = vec![];
        if matches!(name, "pg_class" | "pg_attribute" | "pg_views" | "pg_description") {
            for view in self.journey.table_names() {
                if let Some(t) = self.journey.table(&view).await? {
                    let definition = t.get_table_definition().unwrap_or_default().to_string();
                    views.push(View { namespace: JOURNEY_SCHEMA.into(), name: view, schema: t.schema(), definition });
                }
            }
            let store = self.store.clone();
            let user_views = tokio::task::spawn_blocking(move || {
                store_relations(&store)
                    .into_iter()
                    .filter(|(_, _, k)| *k == RelationKind::View)
                    .filter_map(|(s, v, _)| store.view_sql(&s, &v).map(|sql| (s, v, sql)))
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(|e| datafusion::error::DataFusionError::Execution(format!("catalog lookup failed: {e}")))?;
            for (s, v, sql) in user_views {
                // A view that no longer plans (a table it reads was dropped) is listed without columns.
                let schema = match &self.planner {
                    Some(p) => p
                        .plan_view(&s, &v, &sql)
                        .await
                        .map(|t| t.schema())
                        .unwrap_or_else(|_| Arc::new(Schema::empty())),
                    None => Arc::new(Schema::empty()),
                };
                views.push(View { namespace: s, name: v, schema, definition: sql });
            }
        }
        let catalog = PgCatalog {
            store: self.store.clone(),
            info: self.info.clone(),
            journey: self.journey.clone(),
            planner: self.planner.clone(),
            settings: self.settings.clone(),
            views,
        };
        let name = name.to_string();
        // Listing the store is blocking I/O.
        tokio::task::spawn_blocking(move || catalog.build(&name))
            .await
            .map_err(|e| datafusion::error::DataFusionError::Execution(format!("catalog lookup failed: {e}")))?
    }

    fn table_exist(&self, name: &str) -> bool {
        TABLES.contains(&name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_always_empty_table_is_a_catalog_table() {
        for t in empty::names() {
            assert!(TABLES.contains(&t), "{t}");
        }
    }

    #[test]
    fn table_oids_are_stable_user_oids() {
        assert_eq!(table_oid("events"), table_oid("events"));
        assert_ne!(table_oid("events"), table_oid("crm_deals"));
        assert!(table_oid("events") >= 16_385);
    }
}
