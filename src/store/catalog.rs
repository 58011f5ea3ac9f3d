//! The database as DataFusion sees it: fixed schemas (`pg_catalog`, `journey`) and the store's
//! schemas, which CREATE SCHEMA and DROP SCHEMA change while sessions run.

use super::{STORE_SCHEMA, Store, StoreSchema, TempTables, ViewPlanner};
use datafusion::catalog::{CatalogProvider, SchemaProvider};
use datafusion::error::{DataFusionError, Result};
use std::sync::Arc;

/// The schema DataFusion resolves unqualified names in when a session has a search path: not a
/// schema of its own, but the session's temporary tables, then each schema of its search path
/// in order ([`SearchPathSchema`]).
pub const SEARCH_PATH_SCHEMA: &str = "pg_search_path";

/// The schemas of a session's search path, in order, as they are when asked.
pub type SearchPathFn = Arc<dyn Fn() -> Vec<String> + Send + Sync>;

#[derive(Clone)]
pub struct StoreCatalog {
    store: Arc<Store>,
    fixed: Vec<(String, Arc<dyn SchemaProvider>)>,
    views: Option<Arc<dyn ViewPlanner>>,
    temporary: Option<TempTables>,
    search_path: Option<SearchPathFn>,
}

impl std::fmt::Debug for StoreCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreCatalog").field("fixed", &self.fixed.iter().map(|(n, _)| n).collect::<Vec<_>>()).finish()
    }
}

impl StoreCatalog {
    /// The store's schemas plus `fixed` ones; `views` plans stored views (none: views are not
    /// visible); `temporary` are the session's temporary tables, seen in `public`.
    pub fn new(
        store: Arc<Store>,
        fixed: Vec<(String, Arc<dyn SchemaProvider>)>,
        views: Option<Arc<dyn ViewPlanner>>,
        temporary: Option<TempTables>,
    ) -> StoreCatalog {
        StoreCatalog { store, fixed, views, temporary, search_path: None }
    }

    /// Unqualified names looked up along `search_path` ([`SEARCH_PATH_SCHEMA`]).
    pub fn with_search_path(mut self, search_path: SearchPathFn) -> StoreCatalog {
        self.search_path = Some(search_path);
        self
    }
}

impl CatalogProvider for StoreCatalog {
    fn schema_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.fixed.iter().map(|(n, _)| n.clone()).collect();
        names.extend(self.store.schema_names());
        names
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        if name == SEARCH_PATH_SCHEMA
            && let Some(path) = &self.search_path
        {
            let mut catalog = self.clone();
            catalog.search_path = None;
            return Some(Arc::new(SearchPathSchema { catalog, path: path.clone() }));
        }
        if let Some((_, s)) = self.fixed.iter().find(|(n, _)| n == name) {
            return Some(s.clone());
        }
        self.store.schema_dir(name)?;
        Some(Arc::new(StoreSchema {
            store: self.store.clone(),
            name: name.to_string(),
            views: self.views.clone(),
            temporary: if name == STORE_SCHEMA { self.temporary.clone() } else { None },
        }))
    }

    fn register_schema(&self, name: &str, _schema: Arc<dyn SchemaProvider>) -> Result<Option<Arc<dyn SchemaProvider>>> {
        Err(DataFusionError::NotImplemented(format!("registering schema \"{name}\" outside CREATE SCHEMA")))
    }
}

/// Unqualified names as PostgreSQL resolves them: a temporary table of the session first, then
/// the first schema of the search path that has the name.
struct SearchPathSchema {
    catalog: StoreCatalog,
    path: SearchPathFn,
}

impl std::fmt::Debug for SearchPathSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SearchPathSchema({:?})", (self.path)())
    }
}

impl SearchPathSchema {
    fn temporary(&self, name: &str) -> Option<Arc<dyn datafusion::catalog::TableProvider>> {
        let t = self.catalog.temporary.as_ref()?;
        t.lock().unwrap_or_else(|p| p.into_inner()).get(name).cloned()
    }

    fn schemas(&self) -> impl Iterator<Item = Arc<dyn SchemaProvider>> + '_ {
        (self.path)().into_iter().filter_map(|s| self.catalog.schema(&s))
    }
}

#[async_trait::async_trait]
impl SchemaProvider for SearchPathSchema {
    fn table_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .catalog
            .temporary
            .iter()
            .flat_map(|t| t.lock().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect::<Vec<_>>())
            .collect();
        names.extend(self.schemas().flat_map(|s| s.table_names()));
        names.sort();
        names.dedup();
        names
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn datafusion::catalog::TableProvider>>> {
        if let Some(t) = self.temporary(name) {
            return Ok(Some(t));
        }
        for schema in self.schemas() {
            if let Some(t) = schema.table(name).await? {
                return Ok(Some(t));
            }
        }
        Ok(None)
    }

    fn table_exist(&self, name: &str) -> bool {
        self.temporary(name).is_some() || self.schemas().any(|s| s.table_exist(name))
    }
}
