//! The database as DataFusion sees it: fixed schemas (`pg_catalog`, `journey`) and the store's
//! schemas, which CREATE SCHEMA and DROP SCHEMA change while sessions run.

use super::{STORE_SCHEMA, Store, StoreSchema, TempTables, ViewPlanner};
use datafusion::catalog::{CatalogProvider, SchemaProvider};
use datafusion::error::{DataFusionError, Result};
use std::sync::Arc;

#[derive(Debug)]
pub struct StoreCatalog {
    store: Arc<Store>,
    fixed: Vec<(String, Arc<dyn SchemaProvider>)>,
    views: Option<Arc<dyn ViewPlanner>>,
    temporary: Option<TempTables>,
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
        StoreCatalog { store, fixed, views, temporary }
    }
}

impl CatalogProvider for StoreCatalog {
    fn schema_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.fixed.iter().map(|(n, _)| n.clone()).collect();
        names.extend(self.store.schema_names());
        names
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
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
