//! The data directory: each folder of Parquet files is a table.
//!
//! - A table is a direct sub-folder of the data directory whose name is a plain identifier
//!   and that holds at least one `.parquet` file (directly or in hive partition folders such as
//!   `date=2025-01-01/`). Names starting with `.` or `_` are ignored, and so are files ending in
//!   `.tmp`: that is where writes are staged before their atomic rename.
//! - Tables are found on every lookup (a `readdir`), so a folder added while the server runs is
//!   visible to the next query. A table's file list is fingerprinted (path, size, modification
//!   time); when it changes, the table is rebuilt, so added files are picked up too.
//! - A file whose Parquet footer cannot be read does not hide the table or stop the server: the
//!   table is listed, and every query that scans it fails with an error naming the file
//!   (SQLSTATE XX001). Other tables are unaffected.

mod table;

pub use table::StoreTable;

use crate::error::{Error, Result};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::error::DataFusionError;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// The schema name under which the store's tables appear.
pub const STORE_SCHEMA: &str = "public";

#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    cache: Mutex<HashMap<String, Cached>>,
}

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

impl Store {
    /// Opens (creating if needed) a data directory.
    pub fn open(root: impl Into<PathBuf>) -> Result<Arc<Store>> {
        let root = root.into();
        std::fs::create_dir_all(&root)
            .map_err(|e| Error::Config(format!("cannot create data directory {}: {e}", root.display())))?;
        let root = root.canonicalize()?;
        Ok(Arc::new(Store { root, cache: Mutex::new(HashMap::new()) }))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The tables present now, sorted by name.
    pub fn table_names(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return vec![];
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| is_table_name(n))
            .filter(|n| has_parquet(&self.root.join(n)))
            .collect();
        names.sort();
        names
    }

    /// Whether `name` is a table now, looking at that folder only.
    pub fn has_table(&self, name: &str) -> bool {
        is_table_name(name) && has_parquet(&self.root.join(name))
    }

    /// The table `name`, rebuilt if its files changed since the last lookup.
    pub fn table(&self, name: &str) -> Result<Option<Arc<StoreTable>>> {
        if !is_table_name(name) {
            return Ok(None);
        }
        let dir = self.root.join(name);
        if !dir.is_dir() {
            self.lock_cache().remove(name);
            return Ok(None);
        }
        let files = list_data_files(&dir)?;
        if files.is_empty() {
            return Ok(None);
        }
        if let Some(c) = self.lock_cache().get(name)
            && c.fingerprint == files
        {
            return Ok(Some(c.table.clone()));
        }
        let table = Arc::new(StoreTable::build(name, &dir, &files)?);
        self.lock_cache().insert(name.to_string(), Cached { fingerprint: files, table: table.clone() });
        Ok(Some(table))
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        // A panic while holding the lock leaves only a cache behind: keep using it.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The store seen as DataFusion's schema `public`.
#[derive(Debug)]
pub struct StoreSchema(pub Arc<Store>);

#[async_trait::async_trait]
impl SchemaProvider for StoreSchema {
    fn table_names(&self) -> Vec<String> {
        self.0.table_names()
    }

    async fn table(&self, name: &str) -> datafusion::error::Result<Option<Arc<dyn TableProvider>>> {
        let store = self.0.clone();
        let name = name.to_string();
        // Listing a directory and reading footers is blocking I/O.
        let table = tokio::task::spawn_blocking(move || store.table(&name))
            .await
            .map_err(|e| DataFusionError::Execution(format!("table lookup failed: {e}")))?
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        Ok(table.map(|t| t as Arc<dyn TableProvider>))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.0.has_table(name)
    }
}

/// A plain SQL identifier: lower-case letters, digits and `_`, not starting with a digit or `_`.
pub fn is_table_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
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
