//! The data location (a local folder or `s3://bucket/prefix`): each folder of Parquet files is
//! a table, and so is each Delta table.
//!
//! - A table is a direct sub-folder of the data location whose name is a plain identifier and
//!   that is either a Delta table (`_delta_log/` with a commit) or a plain folder holding at
//!   least one `.parquet` file (directly or in hive partition folders such as
//!   `date=2025-01-01/`). Names starting with `.` or `_` are ignored, and so are files ending
//!   in `.tmp`.
//! - Schemas other than `public` are folders under `_schemas/`, each laid out like the data
//!   location itself. Views are `_views/<name>.sql` (the SELECT), comments
//!   `_comments/<relation>.toml`.
//! - Every table journeydb writes is a Delta table at the folder its name says (see [`delta`]):
//!   a statement is one commit, readers see one version. Writing to a plain Parquet folder
//!   first makes it a Delta table of the files it has (files added to it later by hand are then
//!   not read: add them with INSERT, COPY, `journeydb import` or a Delta writer).
//! - Tables are looked up by listing; on object storage a lookup is trusted for
//!   `[store] refresh_seconds` (2 by default, 0 on a local disk), so a file or commit another
//!   program adds is visible within that time. Writes through this server are seen at once.
//! - A file whose Parquet footer cannot be read does not hide the table or stop the server: the
//!   table is listed, and every query that scans it fails with an error naming the file
//!   (SQLSTATE XX001). Other tables are unaffected.
//! - Data directories of earlier versions (tables as links to `.tables/` versions) are
//!   migrated when the server opens them: each such table becomes a Delta table in place.

pub mod catalog;
pub mod delta;
pub mod import;
mod migrate;
pub mod objects;
mod table;
mod write;

pub use catalog::StoreCatalog;
pub use objects::{Location, Objects, StoreOptions};
pub use table::StoreTable;
pub use write::{Comments, FileWriter, Staged, TableFiles};

use crate::error::{Error, Result, SqlState};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::error::DataFusionError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The schema name under which the data directory's own tables appear.
pub const STORE_SCHEMA: &str = "public";

/// Schema names that are never the store's: the catalog's own and the journey model's.
pub const RESERVED_SCHEMAS: [&str; 4] = ["pg_catalog", "information_schema", "journey", "pg_toast"];

/// Where user schemas live (hidden from the table listing of the data directory).
const SCHEMAS_DIR: &str = "_schemas";
/// Marks a schema's folder (object storage has no empty folders).
const SCHEMA_MARKER: &str = "_schema";
/// Where view definitions live in a schema's folder: `<name>.sql`.
const VIEWS_DIR: &str = "_views";
/// Where comments live in a schema's folder: `<relation>.toml`.
const COMMENTS_DIR: &str = "_comments";
/// Where dropped tables wait for deletion (on a local disk).
const TRASH_DIR: &str = ".trash";

#[derive(Debug)]
pub struct Store {
    objects: Objects,
    location: Location,
    /// How long a lookup is trusted ([`StoreOptions::refresh_seconds`]).
    refresh: Duration,
    /// VACUUM's retention, when the configuration overrides the tables' own.
    vacuum_retention: Option<Duration>,
    cache: Mutex<HashMap<(String, String), Cached>>,
    /// Serialises every change of the store's layout this process makes.
    writes: Mutex<()>,
    /// Seconds the files of a dropped table stay readable ([`Store::set_version_grace`]).
    grace_seconds: std::sync::atomic::AtomicU64,
    /// Counts the changes of the store's layout this process made ([`Store::generation`]).
    generation: std::sync::atomic::AtomicU64,
}

/// How long the files of a dropped or renamed table stay by default: queries that began
/// before the change read them to their end. `version_grace_seconds` sets it.
pub const DEFAULT_VERSION_GRACE_SECONDS: u64 = 900;

/// A table as last looked up.
#[derive(Debug, Clone)]
struct Cached {
    at: Instant,
    generation: u64,
    fingerprint: Fingerprint,
    table: Option<Arc<StoreTable>>,
}

/// What a table's content is identified by.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fingerprint {
    /// Not a table (yet, or any more).
    None,
    /// A Delta table at this version.
    Delta(i64),
    /// A plain folder of these files.
    Plain(Vec<FileStamp>),
}

/// One data file as seen when a table was built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStamp {
    /// Relative to the table's folder (`/`-separated).
    pub path: String,
    pub size: u64,
    /// Milliseconds since the epoch.
    pub modified: i64,
}

/// What a name in a schema is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelationKind {
    Table,
    View,
}

impl Store {
    /// Opens (creating if needed) a local data directory.
    pub fn open(root: impl Into<std::path::PathBuf>) -> Result<Arc<Store>> {
        Store::open_location(&Location::Local(root.into()), &StoreOptions::default())
    }

    /// Opens a data location. The server then migrates and tidies it ([`Store::collect_garbage`]);
    /// `journeydb import` does not, as a server may be writing.
    pub fn open_location(location: &Location, options: &StoreOptions) -> Result<Arc<Store>> {
        let objects = Objects::open(location, options)?;
        let location = match objects.local_dir() {
            Some(dir) => {
                crate::error::register_server_path(dir);
                Location::Local(dir.to_path_buf())
            }
            None => location.clone(),
        };
        let default_refresh = if location.is_local() { 0.0 } else { 2.0 };
        let refresh = Duration::from_secs_f64(options.refresh_seconds.unwrap_or(default_refresh).clamp(0.0, 3600.0));
        Ok(Arc::new(Store {
            objects,
            location,
            refresh,
            vacuum_retention: options
                .vacuum_retention_hours
                .map(|h| Duration::from_secs_f64(h.clamp(0.0, 1e6) * 3600.0)),
            cache: Mutex::new(HashMap::new()),
            writes: Mutex::new(()),
            grace_seconds: DEFAULT_VERSION_GRACE_SECONDS.into(),
            generation: 0.into(),
        }))
    }

    /// Sets how long the files of dropped tables stay readable.
    pub fn set_version_grace(&self, grace: Duration) {
        self.grace_seconds.store(grace.as_secs(), std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn version_grace(&self) -> Duration {
        Duration::from_secs(self.grace_seconds.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// How long a lookup is trusted, when it is (object storage with `refresh_seconds` > 0).
    pub fn refresh(&self) -> Option<Duration> {
        (!self.refresh.is_zero()).then_some(self.refresh)
    }

    /// Where the data is (a local folder or `s3://bucket/prefix`).
    pub fn location(&self) -> &Location {
        &self.location
    }

    pub fn objects(&self) -> &Objects {
        &self.objects
    }

    /// The folder (key under the data location) of schema `schema`, if it exists.
    pub fn schema_dir(&self, schema: &str) -> Option<String> {
        if schema == STORE_SCHEMA {
            return Some(String::new());
        }
        if !is_table_name(schema) || RESERVED_SCHEMAS.contains(&schema) {
            return None;
        }
        let listing = self.objects.list(SCHEMAS_DIR).ok()?;
        listing.dirs.iter().any(|d| d == schema).then(|| format!("{SCHEMAS_DIR}/{schema}"))
    }

    /// The store's schemas: `public` and those created with CREATE SCHEMA, sorted.
    pub fn schema_names(&self) -> Vec<String> {
        let mut names = vec![STORE_SCHEMA.to_string()];
        if let Ok(listing) = self.objects.list(SCHEMAS_DIR) {
            names.extend(
                listing.dirs.into_iter().filter(|n| is_table_name(n) && !RESERVED_SCHEMAS.contains(&n.as_str())),
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
        let Ok(listing) = self.objects.list(&dir) else { return vec![] };
        let mut names: Vec<String> = listing
            .dirs
            .into_iter()
            .filter(|n| is_table_name(n))
            .filter(|n| !matches!(self.fingerprint(schema, n), Ok(Fingerprint::None) | Err(_)))
            .collect();
        names.sort();
        names
    }

    /// Whether `name` is a table of `public` now, looking at that folder only.
    pub fn has_table(&self, name: &str) -> bool {
        self.has_table_in(STORE_SCHEMA, name)
    }

    pub fn has_table_in(&self, schema: &str, name: &str) -> bool {
        !matches!(self.fingerprint(schema, name), Ok(Fingerprint::None) | Err(_))
    }

    /// The views of `schema`, sorted by name.
    pub fn view_names(&self, schema: &str) -> Vec<String> {
        let Some(dir) = self.schema_dir(schema) else { return vec![] };
        let Ok(listing) = self.objects.list(&join(&dir, VIEWS_DIR)) else { return vec![] };
        let mut names: Vec<String> = listing
            .files
            .iter()
            .filter_map(|m| m.location.filename()?.strip_suffix(".sql").map(str::to_string))
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
        let dir = self.schema_dir(schema)?;
        let bytes = self.objects.get(&join(&dir, &format!("{VIEWS_DIR}/{name}.sql"))).ok()??;
        String::from_utf8(bytes.to_vec()).ok()
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

    /// Tables `names` of `public` (plain Parquet tables of one shape) read as one: a single scan
    /// over all their files, with their merged schema. None when one of them is missing or
    /// not plain Parquet.
    pub fn union_of(&self, names: &[String]) -> Result<Option<Arc<dyn TableProvider>>> {
        let mut rels = vec![];
        let mut schemas = vec![];
        for name in names {
            let Some(table) = self.table(name)? else { return Ok(None) };
            if table.version().is_some() {
                return Ok(None);
            }
            let Some(rel) = self.table_rel(STORE_SCHEMA, name) else { return Ok(None) };
            rels.push(rel);
            schemas.push(table.schema());
        }
        if rels.is_empty() {
            return Ok(None);
        }
        let schema = Arc::new(merge_schemas(&schemas)?);
        Ok(Some(table::union_scan(&self.objects, &rels, schema)?))
    }

    /// The table `name` of `public`, rebuilt if its files changed since the last lookup.
    pub fn table(&self, name: &str) -> Result<Option<Arc<StoreTable>>> {
        self.table_in(STORE_SCHEMA, name)
    }

    /// The table `name` of `schema`, rebuilt if its files (or its Delta version) changed since
    /// the last lookup.
    pub fn table_in(&self, schema: &str, name: &str) -> Result<Option<Arc<StoreTable>>> {
        let key = (schema.to_string(), name.to_string());
        let fingerprint = self.fingerprint(schema, name)?;
        if let Some(c) = self.lock_cache().get(&key)
            && c.fingerprint == fingerprint
            && let Some(t) = &c.table
        {
            return Ok(Some(t.clone()));
        }
        let Some(rel) = self.table_rel(schema, name) else { return Ok(None) };
        let table = match &fingerprint {
            Fingerprint::None => None,
            Fingerprint::Delta(_) => Some(Arc::new(StoreTable::delta(schema, name, &self.objects, &rel)?)),
            Fingerprint::Plain(files) => Some(Arc::new(StoreTable::plain(schema, name, &self.objects, &rel, files)?)),
        };
        // What was built is what the table is now: a Delta table is loaded at its newest version.
        let fingerprint = match &table {
            Some(t) => t.version().map_or(fingerprint, Fingerprint::Delta),
            None => fingerprint,
        };
        let mut cache = self.lock_cache();
        cache.insert(
            key,
            Cached { at: Instant::now(), generation: self.generation(), fingerprint, table: table.clone() },
        );
        Ok(table)
    }

    /// What table `name` of `schema` is now (or as recently looked up, on object storage).
    fn fingerprint(&self, schema: &str, name: &str) -> Result<Fingerprint> {
        let key = (schema.to_string(), name.to_string());
        if !self.refresh.is_zero()
            && let Some(c) = self.lock_cache().get(&key)
            && c.at.elapsed() < self.refresh
            && c.generation == self.generation()
        {
            return Ok(c.fingerprint.clone());
        }
        let found = match self.table_rel(schema, name) {
            None => Fingerprint::None,
            Some(rel) => match delta::log_state(&self.objects, &rel)? {
                delta::LogState::Version(v) => Fingerprint::Delta(v),
                delta::LogState::Pending => Fingerprint::None,
                delta::LogState::Absent => {
                    let files = list_data_files(&self.objects, &rel)?;
                    if files.is_empty() { Fingerprint::None } else { Fingerprint::Plain(files) }
                }
            },
        };
        let mut cache = self.lock_cache();
        let entry = cache.entry(key).or_insert_with(|| Cached {
            at: Instant::now(),
            generation: self.generation(),
            fingerprint: Fingerprint::None,
            table: None,
        });
        if entry.fingerprint != found {
            entry.table = None;
        }
        entry.fingerprint = found.clone();
        entry.at = Instant::now();
        entry.generation = self.generation();
        Ok(found)
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

    /// The folder (key) of table `name` of `schema`, whether or not there is such a table.
    pub fn table_rel(&self, schema: &str, name: &str) -> Option<String> {
        if !is_table_name(name) {
            return None;
        }
        Some(join(&self.schema_dir(schema)?, name))
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Cached>> {
        // A panic while holding the lock leaves only a cache behind: keep using it.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `dir/name`, where `dir` may be the root ("").
fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() { name.to_string() } else { format!("{dir}/{name}") }
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

/// Every visible `.parquet` file under folder `rel` (a plain table's files), sorted by path.
pub fn list_data_files(objects: &Objects, rel: &str) -> Result<Vec<FileStamp>> {
    let root = objects.path(rel);
    let mut out = vec![];
    for m in objects.list_all(rel)? {
        let Some(parts) = m.location.prefix_match(&root) else { continue };
        let parts: Vec<String> = parts.map(|p| p.as_ref().to_string()).collect();
        if parts.iter().any(|p| is_hidden(p)) || !parts.last().is_some_and(|n| n.ends_with(".parquet")) {
            continue;
        }
        out.push(FileStamp { path: parts.join("/"), size: m.size, modified: m.last_modified.timestamp_millis() });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Hive partition columns of a file, from the folders between the table folder and the file
/// (`path` relative to the table's folder).
pub fn partition_columns(path: &str) -> Vec<String> {
    let parts: Vec<&str> = path.split('/').collect();
    parts[..parts.len().saturating_sub(1)]
        .iter()
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

/// Writes (INSERT, COPY, `journeydb import`) to a hive-partitioned plain folder would add
/// files without their partition values, so they are refused (0A000).
pub fn check_unpartitioned(files: &[FileStamp], name: &str) -> Result<()> {
    if files.iter().any(|f| !partition_columns(&f.path).is_empty()) {
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
        assert_eq!(partition_columns("date=2025-01-01/h=3/p.parquet"), ["date", "h"]);
        assert!(partition_columns("p.parquet").is_empty());
    }
}
