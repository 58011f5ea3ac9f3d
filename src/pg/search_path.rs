//! The search path: the schemas an unqualified relation name is looked up in, in order, as the
//! session's `search_path` setting lists them. Queries (through
//! [`crate::store::catalog::SEARCH_PATH_SCHEMA`]), writes, `current_schema()`,
//! `current_schemas()`, `pg_table_is_visible()` and regclass casts all read it from here.
//!
//! As in PostgreSQL, schemas that do not exist are skipped, `pg_catalog` is searched before the
//! path for its own tables, and `"$user"` names the schema called like the session's user. One
//! difference: `"$user"` never names a schema journeydb reserves (`journey`, `pg_catalog`,
//! `information_schema`), so a user called `journey` still reads `public.events` as `events`;
//! the journey model is reached by qualifying its names or by listing `journey` in the path.

use super::catalog::{PG_CATALOG, SessionInfo};
use super::information_schema::INFORMATION_SCHEMA;
use super::settings::{SharedSettings, lock};
use crate::journey::JOURNEY_SCHEMA;
use crate::store::catalog::SearchPathFn;
use crate::store::{RESERVED_SCHEMAS, Store};
use std::sync::Arc;

/// The schemas of `search_path` that exist, in order, without repeats.
pub fn schemas(store: &Store, search_path: &str, user: &str) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    for item in search_path.split(',').map(str::trim) {
        let name = if item == "\"$user\"" || item == "$user" {
            if RESERVED_SCHEMAS.contains(&user) || user == INFORMATION_SCHEMA {
                continue;
            }
            user.to_string()
        } else {
            super::functions::parse_ident(item).concat()
        };
        if !name.is_empty() && exists(store, &name) && !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// The session's search path as it is when called (it follows SET search_path).
pub fn of_session(store: Arc<Store>, settings: SharedSettings, info: &SessionInfo) -> SearchPathFn {
    let user = info.user.clone();
    Arc::new(move || schemas(&store, &lock(&settings).get("search_path").unwrap_or_default(), &user))
}

fn exists(store: &Store, schema: &str) -> bool {
    schema == PG_CATALOG
        || schema == JOURNEY_SCHEMA
        || schema == INFORMATION_SCHEMA
        || store.schema_dir(schema).is_some()
}

/// Whether `schema` holds a relation called `name` (a table or view of the store, a journey
/// model view, a catalog table).
pub fn has_relation(store: &Store, schema: &str, name: &str) -> bool {
    match schema {
        PG_CATALOG => super::catalog::TABLES.contains(&name),
        JOURNEY_SCHEMA => crate::journey::VIEWS.contains(&name),
        INFORMATION_SCHEMA => super::information_schema::TABLES.contains(&name),
        s => store.relation_kind(s, name).is_some(),
    }
}

/// The schema an unqualified relation name means: `pg_catalog` for its own tables, else the
/// first schema of `path` that has it.
pub fn find(store: &Store, path: &[String], name: &str) -> Option<String> {
    if has_relation(store, PG_CATALOG, name) {
        return Some(PG_CATALOG.to_string());
    }
    path.iter().find(|s| has_relation(store, s, name)).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn existing_schemas_in_order_user_schema_not_reserved() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(dir.path()).expect("store");
        store.create_schema("sales", false).expect("schema");
        assert_eq!(schemas(&store, "\"$user\", public", "sales"), ["sales", "public"]);
        assert_eq!(schemas(&store, "\"$user\", public", "journey"), ["public"]);
        assert_eq!(schemas(&store, "\"$user\", public", "nobody"), ["public"]);
        assert_eq!(schemas(&store, "missing, journey, public, journey", "x"), ["journey", "public"]);
        assert_eq!(schemas(&store, "\"Sales\", sales", "x"), ["sales"]);
        assert!(schemas(&store, "", "x").is_empty());
        let path = schemas(&store, "journey, public", "x");
        assert_eq!(find(&store, &path, "touchpoints").as_deref(), Some("journey"));
        assert_eq!(find(&store, &path, "pg_class").as_deref(), Some("pg_catalog"));
        assert_eq!(find(&store, &path, "nothing"), None);
    }
}
