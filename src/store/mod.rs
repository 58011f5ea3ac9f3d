//! The data directory: each folder of Parquet files is a table.
//!
//! - A table is a direct sub-folder of the data directory whose name is a plain identifier
//!   and that holds at least one `.parquet` file (directly or in hive partition folders such as
//!   `date=2025-01-01/`). Names starting with `.` or `_` are ignored, and so are files ending in
//!   `.tmp`: that is where writes are staged before their atomic rename.
//! - Schemas other than `public` are folders under `_schemas/`, each laid out like the data
//!   directory itself. Views are `_views/<name>.sql` (the SELECT), comments
//!   `_comments/<relation>.toml`.
//! - A table journeydb writes (CREATE TABLE, CREATE TABLE AS, DELETE, TRUNCATE) is a link to a
//!   version folder under `.tables/`; a new version is written in full, then the link is
//!   replaced in one rename, so readers see the old version or the new one, never a mix, and a
//!   crash leaves the old one. INSERT and COPY add one file, staged under a `.tmp` name and
//!   renamed into place. What an interrupted write leaves is removed when the store opens.
//! - Tables are found on every lookup (a `readdir`), so a folder added while the server runs is
//!   visible to the next query. A table's file list is fingerprinted (path, size, modification
//!   time); when it changes, the table is rebuilt, so added files are picked up too.
//! - A file whose Parquet footer cannot be read does not hide the table or stop the server: the
//!   table is listed, and every query that scans it fails with an error naming the file
//!   (SQLSTATE XX001). Other tables are unaffected.

pub mod catalog;
pub mod import;
mod table;
mod write;

pub use catalog::StoreCatalog;
pub use table::StoreTable;
pub use write::{Comments, FileWriter, Staged};

use crate::error::{Error, Result, SqlState};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::error::DataFusionError;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// The schema name under which the data directory's own tables appear.
pub const STORE_SCHEMA: &str = "public";

/// Schema names that are never the store's: the catalog's own and the journey model's.
pub const RESERVED_SCHEMAS: [&str; 4] = ["pg_catalog", "information_schema", "journey", "pg_toast"];

/// Where user schemas live (hidden from the table listing of the data directory).
const SCHEMAS_DIR: &str = "_schemas";
/// Where view definitions live in a schema's folder: `<name>.sql`.
const VIEWS_DIR: &str = "_views";
/// Where comments live in a schema's folder: `<relation>.toml`.
const COMMENTS_DIR: &str = "_comments";
/// Where the versions of the tables journeydb writes live in a schema's folder.
const VERSIONS_DIR: &str = ".tables";
/// Where dropped and replaced objects wait for deletion.
const TRASH_DIR: &str = ".trash";

#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    cache: Mutex<HashMap<(String, String), Cached>>,
    /// Serialises every change of the store's layout (publishing files, renames, drops).
    writes: Mutex<()>,
    /// Seconds a replaced or dropped version stays readable ([`Store::set_version_grace`]).
    grace_seconds: std::sync::atomic::AtomicU64,
    /// Counts the changes of the store's layout this process made ([`Store::generation`]).
    generation: std::sync::atomic::AtomicU64,
}

/// How long a replaced or dropped version of a table stays on disk by default: queries that
/// began before the change read it to their end. A query streaming longer than this from a
/// version replaced meanwhile fails (XX001); `version_grace_seconds` sets it.
pub const DEFAULT_VERSION_GRACE_SECONDS: u64 = 900;

#[derive(Debug, Clone)]
struct Cached {
    fingerprint: Vec<FileStamp>,
    table: Arc<StoreTable>,
}

/// One data file as seen when a table was built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStamp {
    pub path: PathBuf,
    pub size: u64,
    pub modified: Option<SystemTime>,
}

/// What a name in a schema is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelationKind {
    Table,
    View,
}

impl Store {
    /// Opens (creating if needed) a data directory. The server then removes what interrupted
    /// writes left behind ([`Store::collect_garbage`]); `journeydb import` does not, as a
    /// server may be writing.
    pub fn open(root: impl Into<PathBuf>) -> Result<Arc<Store>> {
        let root = root.into();
        std::fs::create_dir_all(&root)
            .map_err(|e| Error::Config(format!("cannot create data directory {}: {e}", root.display())))?;
        let root = root.canonicalize()?;
        crate::error::register_server_path(&root);
        Ok(Arc::new(Store {
            root,
            cache: Mutex::new(HashMap::new()),
            writes: Mutex::new(()),
            grace_seconds: DEFAULT_VERSION_GRACE_SECONDS.into(),
            generation: 0.into(),
        }))
    }

    /// Sets how long replaced and dropped versions stay readable.
    pub fn set_version_grace(&self, grace: std::time::Duration) {
        self.grace_seconds.store(grace.as_secs(), std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn version_grace(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.grace_seconds.load(std::sync::atomic::Ordering::Relaxed))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder of schema `schema`, if it exists.
    pub fn schema_dir(&self, schema: &str) -> Option<PathBuf> {
        if schema == STORE_SCHEMA {
            return Some(self.root.clone());
        }
        if !is_table_name(schema) || RESERVED_SCHEMAS.contains(&schema) {
            return None;
        }
        let dir = self.root.join(SCHEMAS_DIR).join(schema);
        dir.is_dir().then_some(dir)
    }

    /// The store's schemas: `public` and those created with CREATE SCHEMA, sorted.
    pub fn schema_names(&self) -> Vec<String> {
        let mut names = vec![STORE_SCHEMA.to_string()];
        if let Ok(entries) = std::fs::read_dir(self.root.join(SCHEMAS_DIR)) {
            names.extend(
                entries
                    .filter_map(|e| e.ok())
                    .filter(|e| e.path().is_dir())
                    .filter_map(|e| e.file_name().to_str().map(str::to_string))
                    .filter(|n| is_table_name(n) && !RESERVED_SCHEMAS.contains(&n.as_str())),
            );
        }
        names.sort();
        names.dedup();
        names
    }

    /// The tables of `public` now, sorted by name.
    pub fn table_names(&self) -> Vec<String> {
        self.table_names_in(STORE_SCHEMA)
    }

    /// The tables of `schema` now, sorted by name.
    pub fn table_names_in(&self, schema: &str) -> Vec<String> {
        let Some(dir) = self.schema_dir(schema) else { return vec![] };
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return vec![];
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            // A table journeydb wrote is a link to its current version: follow it.
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| is_table_name(n))
            .filter(|n| has_parquet(&dir.join(n)))
            .collect();
        names.sort();
        names
    }

    /// Whether `name` is a table of `public` now, looking at that folder only.
    pub fn has_table(&self, name: &str) -> bool {
        self.has_table_in(STORE_SCHEMA, name)
    }

    pub fn has_table_in(&self, schema: &str, name: &str) -> bool {
        is_table_name(name) && self.schema_dir(schema).is_some_and(|d| has_parquet(&d.join(name)))
    }

    /// The views of `schema`, sorted by name.
    pub fn view_names(&self, schema: &str) -> Vec<String> {
        let Some(dir) = self.schema_dir(schema) else { return vec![] };
        let Ok(entries) = std::fs::read_dir(dir.join(VIEWS_DIR)) else { return vec![] };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".sql")).map(str::to_string))
            .filter(|n| is_table_name(n))
            .collect();
        names.sort();
        names
    }

    /// The SQL of view `name` of `schema` (its SELECT), if there is such a view.
    pub fn view_sql(&self, schema: &str, name: &str) -> Option<String> {
        if !is_table_name(name) {
            return None;
        }
        std::fs::read_to_string(self.schema_dir(schema)?.join(VIEWS_DIR).join(format!("{name}.sql"))).ok()
    }

    /// What `name` is in `schema`, if anything.
    pub fn relation_kind(&self, schema: &str, name: &str) -> Option<RelationKind> {
        if self.has_table_in(schema, name) {
            Some(RelationKind::Table)
        } else if self.view_sql(schema, name).is_some() {
            Some(RelationKind::View)
        } else {
            None
        }
    }

    /// The table `name` of `public`, rebuilt if its files changed since the last lookup.
    pub fn table(&self, name: &str) -> Result<Option<Arc<StoreTable>>> {
        self.table_in(STORE_SCHEMA, name)
    }

    /// The table `name` of `schema`, rebuilt if its files changed since the last lookup.
    pub fn table_in(&self, schema: &str, name: &str) -> Result<Option<Arc<StoreTable>>> {
        let key = (schema.to_string(), name.to_string());
        let Some(dir) = self.table_dir(schema, name) else {
            self.lock_cache().remove(&key);
            return Ok(None);
        };
        let files = list_data_files(&dir)?;
        if files.is_empty() {
            return Ok(None);
        }
        if let Some(c) = self.lock_cache().get(&key)
            && c.fingerprint == files
        {
            return Ok(Some(c.table.clone()));
        }
        let table = Arc::new(StoreTable::build(schema, name, &dir, &files)?);
        self.lock_cache().insert(key, Cached { fingerprint: files, table: table.clone() });
        Ok(Some(table))
    }

    /// Changes with every change of the store's layout made through it (schemas, tables, views
    /// created, replaced, renamed or dropped; files appended): what a kept plan was made from.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Whether `table` is what its name stands for now, with the same files.
    pub fn is_current(&self, table: &StoreTable) -> bool {
        matches!(self.table_in(table.schema_name(), table.name()), Ok(Some(now)) if std::ptr::eq(now.as_ref(), table))
    }

    /// The folder holding the current version of table `name` (links followed, so a reader
    /// that lists it keeps reading that version even if the table is replaced meanwhile).
    pub fn table_dir(&self, schema: &str, name: &str) -> Option<PathBuf> {
        if !is_table_name(name) {
            return None;
        }
        let dir = self.schema_dir(schema)?.join(name);
        if !dir.is_dir() {
            return None;
        }
        dir.canonicalize().ok()
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Cached>> {
        // A panic while holding the lock leaves only a cache behind: keep using it.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A schema of the store seen as a DataFusion schema: its tables, its views (planned at each
/// lookup by `views`, which sees every schema), and the session's temporary tables when it is
/// `public`.
#[derive(Debug)]
pub struct StoreSchema {
    pub store: Arc<Store>,
    pub name: String,
    pub views: Option<Arc<dyn ViewPlanner>>,
    pub temporary: Option<TempTables>,
}

/// Temporary tables of one session (`CREATE TEMPORARY TABLE`): looked up before the store's.
pub type TempTables = Arc<Mutex<HashMap<String, Arc<dyn TableProvider>>>>;

/// Plans a stored view definition into a table provider.
#[async_trait::async_trait]
pub trait ViewPlanner: std::fmt::Debug + Send + Sync {
    async fn plan_view(&self, schema: &str, name: &str, sql: &str)
    -> datafusion::error::Result<Arc<dyn TableProvider>>;
}

impl StoreSchema {
    /// `public` with no views and no temporary tables (the journey model's view context).
    pub fn public(store: Arc<Store>) -> StoreSchema {
        StoreSchema { store, name: STORE_SCHEMA.to_string(), views: None, temporary: None }
    }

    fn temporary(&self, name: &str) -> Option<Arc<dyn TableProvider>> {
        let t = self.temporary.as_ref()?;
        t.lock().unwrap_or_else(|p| p.into_inner()).get(name).cloned()
    }
}

#[async_trait::async_trait]
impl SchemaProvider for StoreSchema {
    fn table_names(&self) -> Vec<String> {
        let mut names = self.store.table_names_in(&self.name);
        if self.views.is_some() {
            names.extend(self.store.view_names(&self.name));
        }
        if let Some(t) = &self.temporary {
            names.extend(t.lock().unwrap_or_else(|p| p.into_inner()).keys().cloned());
        }
        names.sort();
        names.dedup();
        names
    }

    async fn table(&self, name: &str) -> datafusion::error::Result<Option<Arc<dyn TableProvider>>> {
        if let Some(t) = self.temporary(name) {
            return Ok(Some(t));
        }
        let store = self.store.clone();
        let (schema, table) = (self.name.clone(), name.to_string());
        // Listing a directory and reading footers is blocking I/O.
        let found = tokio::task::spawn_blocking(move || {
            let t = store.table_in(&schema, &table)?;
            let view = if t.is_none() { store.view_sql(&schema, &table) } else { None };
            Ok::<_, Error>((t, view))
        })
        .await
        .map_err(|e| DataFusionError::Execution(format!("table lookup failed: {e}")))?
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
        match found {
            (Some(t), _) => Ok(Some(t as Arc<dyn TableProvider>)),
            (None, Some(sql)) => match &self.views {
                Some(planner) => Ok(Some(planner.plan_view(&self.name, name, &sql).await?)),
                None => Ok(None),
            },
            (None, None) => Ok(None),
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        self.temporary(name).is_some()
            || self.store.has_table_in(&self.name, name)
            || (self.views.is_some() && self.store.view_sql(&self.name, name).is_some())
    }
}

/// A plain SQL identifier: lower-case letters, digits and `_`, not starting with a digit or `_`.
pub fn is_table_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Checks a name journeydb is asked to create (42602 otherwise).
pub fn check_new_name(kind: &str, name: &str) -> Result<()> {
    if is_table_name(name) && name.len() <= 63 {
        Ok(())
    } else {
        Err(Error::sql(
            SqlState::InvalidName,
            format!(
                "invalid {kind} name \"{name}\": names are lower-case letters, digits and _, starting with a letter, at most 63 characters"
            ),
        ))
    }
}

fn is_hidden(name: &str) -> bool {
    name.starts_with('.') || name.starts_with('_') || name.ends_with(".tmp")
}

fn has_parquet(dir: &Path) -> bool {
    list_data_files(dir).map(|f| !f.is_empty()).unwrap_or(false)
}

/// Every visible `.parquet` file under `dir`, sorted by path.
pub fn list_data_files(dir: &Path) -> Result<Vec<FileStamp>> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if is_hidden(name) {
                continue;
            }
            let meta = match entry.metadata() {
                Ok(m) => m,
                // Renamed or removed while we looked: not part of this version.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if name.ends_with(".parquet") {
                out.push(FileStamp { path: entry.path(), size: meta.len(), modified: meta.modified().ok() });
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Hive partition columns of a file, from the folders between the table folder and the file.
pub fn partition_columns(table_dir: &Path, file: &Path) -> Vec<String> {
    let Ok(rel) = file.strip_prefix(table_dir) else { return vec![] };
    let parts: Vec<_> = rel.components().collect();
    parts[..parts.len().saturating_sub(1)]
        .iter()
        .filter_map(|c| c.as_os_str().to_str())
        .filter_map(|s| s.split_once('=').map(|(k, _)| k.to_string()))
        .collect()
}

/// Merges file schemas: columns in first-seen order; a column is nullable when any file
/// declares it nullable or lacks it. A column whose types differ across files is an error
/// naming both.
pub fn merge_schemas(schemas: &[SchemaRef]) -> Result<Schema> {
    let mut fields: Vec<datafusion::arrow::datatypes::Field> = vec![];
    let mut seen_in: Vec<usize> = vec![];
    for s in schemas {
        for f in s.fields() {
            match fields.iter().position(|g| g.name() == f.name()) {
                None => {
                    fields.push(f.as_ref().clone());
                    seen_in.push(1);
                }
                Some(i) if fields[i].data_type() == f.data_type() => {
                    seen_in[i] += 1;
                    if f.is_nullable() {
                        fields[i].set_nullable(true);
                    }
                }
                Some(i) => {
                    return Err(Error::Store(format!(
                        "column \"{}\" has type {} in one file and {} in another",
                        f.name(),
                        fields[i].data_type(),
                        f.data_type()
                    )));
                }
            }
        }
    }
    for (f, n) in fields.iter_mut().zip(seen_in) {
        if n < schemas.len() {
            f.set_nullable(true);
        }
    }
    Ok(Schema::new(fields))
}

/// The type partition values are read as.
pub const PARTITION_TYPE: DataType = DataType::Utf8;

/// Writes (INSERT, COPY, `journeydb import`) add files at the top of a table's folder: a
/// hive-partitioned table would read them without their partition values, so writes to one are
/// refused (0A000).
pub fn check_unpartitioned(dir: &Path, name: &str) -> Result<()> {
    let files = list_data_files(dir)?;
    if files.iter().any(|f| !partition_columns(dir, &f.path).is_empty()) {
        return Err(Error::sql(
            SqlState::FeatureNotSupported,
            format!(
                "table \"{name}\" is partitioned in folders: write Parquet files into its partition folders instead"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::Field;

    #[test]
    fn table_names_are_plain_identifiers() {
        for ok in ["events", "crm_deals", "t2"] {
            assert!(is_table_name(ok), "{ok}");
        }
        for bad in ["Events", "_tmp", ".hidden", "2t", "a-b", ""] {
            assert!(!is_table_name(bad), "{bad}");
        }
    }

    #[test]
    fn merged_schemas_keep_not_null_only_where_every_file_has_it() {
        let a = Arc::new(Schema::new(vec![
            Field::new("t", DataType::Int64, false),
            Field::new("x", DataType::Utf8, false),
        ]));
        let b = Arc::new(Schema::new(vec![Field::new("t", DataType::Int64, false)]));
        let m = merge_schemas(&[a.clone(), b]).expect("merge");
        assert!(!m.field(0).is_nullable());
        assert!(m.field(1).is_nullable(), "x is missing from one file");
        let c = Arc::new(Schema::new(vec![Field::new("t", DataType::Utf8, false)]));
        let err = merge_schemas(&[a, c]).expect_err("type clash");
        assert!(err.to_string().contains("column \"t\" has type Int64"), "{err}");
    }

    #[test]
    fn partition_columns_from_hive_folders() {
        let t = Path::new("/d/events");
        assert_eq!(partition_columns(t, Path::new("/d/events/date=2025-01-01/h=3/p.parquet")), ["date", "h"]);
        assert!(partition_columns(t, Path::new("/d/events/p.parquet")).is_empty());
    }
}
