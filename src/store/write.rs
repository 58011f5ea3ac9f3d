//! Changes to the store, each atomic: new files are written under hidden or `.tmp` names and
//! become visible by one rename; a table version is replaced by replacing the link to it.
//! Every change of the layout runs under the store's write lock; writing data does not.

use super::{
    COMMENTS_DIR, RelationKind, SCHEMAS_DIR, STORE_SCHEMA, Store, TRASH_DIR, VERSIONS_DIR, VIEWS_DIR, check_new_name,
    is_table_name,
};
use crate::error::{Error, Result, SqlState};
use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Rows per Parquet row group: a large write reaches the disk as it goes, holding one row
/// group in memory at a time.
const ROW_GROUP_ROWS: usize = 128 * 1024;

static UNIQUE: AtomicU64 = AtomicU64::new(0);

/// A name no other write uses: time, process and a counter.
fn unique() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{nanos:020}-{}-{}", std::process::id(), UNIQUE.fetch_add(1, Ordering::Relaxed))
}

/// The schema files are written with: string and binary views as plain strings and binaries
/// (readable by every Parquet reader), instants labelled UTC whatever zone the session showed
/// them in (the same values; every file of a table then has the same type), every column
/// nullable (PostgreSQL columns without NOT NULL).
pub fn file_schema(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| {
                let dt = match f.data_type() {
                    DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
                    DataType::BinaryView | DataType::LargeBinary => DataType::Binary,
                    DataType::Timestamp(unit, Some(_)) => DataType::Timestamp(*unit, Some("UTC".into())),
                    other => other.clone(),
                };
                Field::new(f.name(), dt, true)
            })
            .collect::<Vec<_>>(),
    ))
}

/// One Parquet file being written under a `.tmp` name. Dropped before [`FileWriter::finish`]
/// (an error, a killed client), it removes what it wrote.
pub struct FileWriter {
    tmp: PathBuf,
    schema: SchemaRef,
    writer: Option<ArrowWriter<std::fs::File>>,
    rows: u64,
}

impl std::fmt::Debug for FileWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileWriter({}, {} rows)", self.tmp.display(), self.rows)
    }
}

impl FileWriter {
    /// A new file in `dir` for rows of `schema` (converted by [`file_schema`]).
    pub fn create(dir: &Path, schema: &Schema) -> Result<FileWriter> {
        let schema = file_schema(schema);
        let tmp = dir.join(format!("part-{}.parquet.tmp", unique()));
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .build();
        let writer = ArrowWriter::try_new(std::fs::File::create(&tmp)?, schema.clone(), Some(props))?;
        Ok(FileWriter { tmp, schema, writer: Some(writer), rows: 0 })
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Writes a batch whose columns are those of the file, in order (cast as needed).
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let columns = batch
            .columns()
            .iter()
            .zip(self.schema.fields())
            .map(|(c, f)| if c.data_type() == f.data_type() { Ok(c.clone()) } else { cast(c, f.data_type()) })
            .collect::<Result<Vec<ArrayRef>, _>>()?;
        let batch = RecordBatch::try_new(self.schema.clone(), columns)?;
        let Some(w) = self.writer.as_mut() else { return Err(Error::Store("file already finished".into())) };
        w.write(&batch)?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Closes the file and makes it durable; it is still hidden (`.tmp`).
    fn finish(mut self) -> Result<(PathBuf, u64)> {
        let Some(w) = self.writer.take() else { return Err(Error::Store("file already finished".into())) };
        let file = w.into_inner()?;
        file.sync_all()?;
        let tmp = std::mem::take(&mut self.tmp);
        Ok((tmp, self.rows))
    }
}

impl Drop for FileWriter {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// A new table version being written: a hidden folder that becomes a table when published.
#[derive(Debug)]
pub struct Staged {
    dir: PathBuf,
    schema: SchemaRef,
    files: Vec<PathBuf>,
    published: bool,
}

impl Staged {
    /// A file of this version.
    pub fn writer(&self) -> Result<FileWriter> {
        FileWriter::create(&self.dir, &self.schema)
    }

    /// Adds a finished file to the version.
    pub fn add(&mut self, writer: FileWriter) -> Result<()> {
        let (tmp, _rows) = writer.finish()?;
        let path = tmp.with_extension("");
        std::fs::rename(&tmp, &path)?;
        self.files.push(path);
        Ok(())
    }

    /// Adds an existing file of the table unchanged (a hard link: no copy).
    pub fn keep(&mut self, file: &Path) -> Result<()> {
        let name = file.file_name().ok_or_else(|| Error::Store(format!("bad file path {}", file.display())))?;
        let target = self.dir.join(name);
        std::fs::hard_link(file, &target).or_else(|_| std::fs::copy(file, &target).map(|_| ()))?;
        self.files.push(target);
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.published {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Held while the layout changes; the file lock goes with the file.
struct WriteLock<'a> {
    _guard: std::sync::MutexGuard<'a, ()>,
    _file: Option<std::fs::File>,
    generation: &'a std::sync::atomic::AtomicU64,
}

/// Whatever the write did, the layout may have changed: plans kept from before are remade.
impl Drop for WriteLock<'_> {
    fn drop(&mut self) {
        self.generation.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// Comments on a relation and its columns (COMMENT ON).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Comments {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relation: Option<String>,
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// Writes `contents` to `path` atomically (temporary file, fsync, rename).
fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let dir = path.parent().ok_or_else(|| Error::Store(format!("bad path {}", path.display())))?;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{}.tmp", unique()));
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    sync_dir(dir)
}

fn undefined_table(schema: &str, name: &str) -> Error {
    Error::sql(SqlState::UndefinedTable, format!("relation \"{schema}.{name}\" does not exist"))
}

/// A schema that does not exist, or (42501) one journeydb keeps for itself: its relations are
/// the catalog's and the journey model's, read-only.
fn undefined_schema(schema: &str) -> Error {
    if super::RESERVED_SCHEMAS.contains(&schema) {
        return Error::sql(
            SqlState::InsufficientPrivilege,
            format!("permission denied for schema {schema}: its relations are journeydb's own, read-only"),
        );
    }
    Error::sql(SqlState::InvalidSchemaName, format!("schema \"{schema}\" does not exist"))
}

impl Store {
    /// The write lock: this process's, and the data directory's (an advisory lock on
    /// `.lock`, so that `journeydb import` and the server do not change the layout at once).
    fn lock_writes(&self) -> WriteLock<'_> {
        let guard = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.root.join(".lock"))
            .ok()
            .filter(|f| rustix::fs::flock(f, rustix::fs::FlockOperation::LockExclusive).is_ok());
        WriteLock { _guard: guard, _file: file, generation: &self.generation }
    }

    fn existing_schema_dir(&self, schema: &str) -> Result<PathBuf> {
        self.schema_dir(schema).ok_or_else(|| undefined_schema(schema))
    }

    /// CREATE SCHEMA. Returns false when it existed and `if_not_exists` is set.
    pub fn create_schema(&self, name: &str, if_not_exists: bool) -> Result<bool> {
        let _w = self.lock_writes();
        if self.schema_dir(name).is_some() || super::RESERVED_SCHEMAS.contains(&name) {
            return if if_not_exists {
                Ok(false)
            } else {
                Err(Error::sql(SqlState::DuplicateSchema, format!("schema \"{name}\" already exists")))
            };
        }
        check_new_name("schema", name)?;
        let parent = self.root.join(SCHEMAS_DIR);
        std::fs::create_dir_all(&parent)?;
        let tmp = parent.join(format!(".{}.tmp", unique()));
        std::fs::create_dir(&tmp)?;
        std::fs::rename(&tmp, parent.join(name))?;
        sync_dir(&parent)?;
        Ok(true)
    }

    /// DROP SCHEMA: refused while it holds tables or views, unless `cascade`.
    pub fn drop_schema(&self, name: &str, if_exists: bool, cascade: bool) -> Result<bool> {
        let _w = self.lock_writes();
        if name == STORE_SCHEMA || super::RESERVED_SCHEMAS.contains(&name) {
            return Err(Error::sql(
                SqlState::DependentObjectsStillExist,
                format!("cannot drop schema \"{name}\": journeydb needs it"),
            ));
        }
        let Some(dir) = self.schema_dir(name) else {
            return if if_exists { Ok(false) } else { Err(undefined_schema(name)) };
        };
        let empty = self.table_names_in(name).is_empty() && self.view_names(name).is_empty();
        if !cascade && !empty {
            return Err(Error::sql(
                SqlState::DependentObjectsStillExist,
                format!(
                    "cannot drop schema \"{name}\" because other objects depend on it (use DROP SCHEMA ... CASCADE)"
                ),
            ));
        }
        self.to_trash(&self.root.join(SCHEMAS_DIR), &dir)?;
        Ok(true)
    }

    /// A new, empty version for a table of `schema` with columns `columns`.
    pub fn stage(&self, schema: &str, columns: &Schema) -> Result<Staged> {
        let dir = self.existing_schema_dir(schema)?.join(VERSIONS_DIR).join(unique());
        std::fs::create_dir_all(&dir)?;
        Ok(Staged { dir, schema: file_schema(columns), files: vec![], published: false })
    }

    /// Publishes `staged` as new table `name` (CREATE TABLE). Returns false when a table of
    /// that name exists and `if_not_exists` is set (the staged version is discarded).
    pub fn create_table(&self, schema: &str, name: &str, mut staged: Staged, if_not_exists: bool) -> Result<bool> {
        check_new_name("table", name)?;
        let _w = self.lock_writes();
        let sdir = self.existing_schema_dir(schema)?;
        if let Some(kind) =
            self.relation_kind(schema, name).or_else(|| sdir.join(name).exists().then_some(RelationKind::Table))
        {
            if if_not_exists && kind == RelationKind::Table {
                return Ok(false);
            }
            return Err(Error::sql(SqlState::DuplicateTable, format!("relation \"{name}\" already exists")));
        }
        self.finish_version(&mut staged)?;
        let link = self.link_to(&sdir, &staged.dir)?;
        std::fs::rename(&link, sdir.join(name))?;
        sync_dir(&sdir)?;
        staged.published = true;
        Ok(true)
    }

    /// Replaces table `name` by `staged` in one rename (DELETE, TRUNCATE). `based_on` is the
    /// table's files the new version was computed from (see [`Store::table_files`]): if the
    /// table changed since, nothing is replaced (40001).
    pub fn replace_table(
        &self,
        schema: &str,
        name: &str,
        mut staged: Staged,
        based_on: &[super::FileStamp],
    ) -> Result<()> {
        let _w = self.lock_writes();
        let sdir = self.existing_schema_dir(schema)?;
        let current = self.table_dir(schema, name).ok_or_else(|| undefined_table(schema, name))?;
        if super::list_data_files(&current)? != based_on {
            return Err(Error::sql(
                SqlState::SerializationFailure,
                format!("could not serialize access: table \"{name}\" changed while the statement ran"),
            ));
        }
        self.finish_version(&mut staged)?;
        let link = self.link_to(&sdir, &staged.dir)?;
        let entry = sdir.join(name);
        if entry.is_symlink() {
            std::fs::rename(&link, &entry)?;
        } else {
            // A folder the user made: swap it with the link atomically, then trash it.
            rustix::fs::renameat_with(
                rustix::fs::CWD,
                &link,
                rustix::fs::CWD,
                &entry,
                rustix::fs::RenameFlags::EXCHANGE,
            )
            .map_err(std::io::Error::from)?;
            self.to_trash(&sdir, &link)?;
        }
        sync_dir(&sdir)?;
        staged.published = true;
        if current.starts_with(sdir.join(VERSIONS_DIR)) {
            // Left in place: queries that resolved the table before the swap list its files
            // when they scan. Deleted after the grace period (or when the store next opens).
            delete_later(current, self.version_grace());
        }
        Ok(())
    }

    /// Makes a finished file (from [`FileWriter`]) part of table `name` (INSERT, COPY): moved
    /// into the table's current version, then renamed to its visible name.
    pub fn append_file(&self, schema: &str, name: &str, writer: FileWriter) -> Result<u64> {
        let (tmp, rows) = writer.finish()?;
        let result = (|| {
            let _w = self.lock_writes();
            let dir = self.table_dir(schema, name).ok_or_else(|| undefined_table(schema, name))?;
            let file = tmp.file_name().ok_or_else(|| Error::Store("bad staged file".into()))?;
            let staged = dir.join(file);
            if staged != tmp {
                std::fs::rename(&tmp, &staged)?;
            }
            std::fs::rename(&staged, staged.with_extension(""))?;
            sync_dir(&dir)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map(|_| rows)
    }

    /// DROP TABLE / DROP VIEW. `kind` is what the statement named.
    pub fn drop_relation(&self, schema: &str, name: &str, kind: RelationKind, if_exists: bool) -> Result<bool> {
        let _w = self.lock_writes();
        let Some(sdir) = self.schema_dir(schema) else {
            return if if_exists { Ok(false) } else { Err(undefined_schema(schema)) };
        };
        match self.relation_kind(schema, name) {
            None if if_exists => return Ok(false),
            None => return Err(undefined_table(schema, name)),
            Some(k) if k != kind => {
                let what = if kind == RelationKind::View { "a view" } else { "a table" };
                return Err(Error::sql(SqlState::WrongObjectType, format!("\"{name}\" is not {what}")));
            }
            Some(RelationKind::Table) => {
                let entry = sdir.join(name);
                let version = entry.is_symlink().then(|| entry.canonicalize().ok()).flatten();
                self.to_trash(&sdir, &entry)?;
                if let Some(v) = version {
                    delete_later(v, self.version_grace());
                }
            }
            Some(RelationKind::View) => {
                std::fs::remove_file(sdir.join(VIEWS_DIR).join(format!("{name}.sql")))?;
                sync_dir(&sdir.join(VIEWS_DIR))?;
            }
        }
        let _ = std::fs::remove_file(sdir.join(COMMENTS_DIR).join(format!("{name}.toml")));
        Ok(true)
    }

    /// ALTER TABLE|VIEW ... RENAME TO.
    pub fn rename_relation(&self, schema: &str, name: &str, new_name: &str) -> Result<()> {
        check_new_name("relation", new_name)?;
        let _w = self.lock_writes();
        let sdir = self.existing_schema_dir(schema)?;
        let kind = self.relation_kind(schema, name).ok_or_else(|| undefined_table(schema, name))?;
        if self.relation_kind(schema, new_name).is_some() || sdir.join(new_name).exists() {
            return Err(Error::sql(SqlState::DuplicateTable, format!("relation \"{new_name}\" already exists")));
        }
        match kind {
            RelationKind::Table => std::fs::rename(sdir.join(name), sdir.join(new_name))?,
            RelationKind::View => {
                let views = sdir.join(VIEWS_DIR);
                std::fs::rename(views.join(format!("{name}.sql")), views.join(format!("{new_name}.sql")))?;
                sync_dir(&views)?;
            }
        }
        let comments = sdir.join(COMMENTS_DIR);
        let _ = std::fs::rename(comments.join(format!("{name}.toml")), comments.join(format!("{new_name}.toml")));
        sync_dir(&sdir)
    }

    /// CREATE [OR REPLACE] VIEW: keeps `sql` (the SELECT) as the view's definition.
    pub fn create_view(&self, schema: &str, name: &str, sql: &str, or_replace: bool) -> Result<()> {
        check_new_name("view", name)?;
        let _w = self.lock_writes();
        let sdir = self.existing_schema_dir(schema)?;
        match self.relation_kind(schema, name) {
            Some(RelationKind::View) if or_replace => {}
            Some(_) => {
                return Err(Error::sql(SqlState::DuplicateTable, format!("relation \"{name}\" already exists")));
            }
            None if sdir.join(name).exists() => {
                return Err(Error::sql(SqlState::DuplicateTable, format!("relation \"{name}\" already exists")));
            }
            None => {}
        }
        write_atomic(&sdir.join(VIEWS_DIR).join(format!("{name}.sql")), sql.as_bytes())
    }

    /// The comments on relation `name` of `schema`.
    pub fn comments(&self, schema: &str, name: &str) -> Comments {
        self.schema_dir(schema)
            .and_then(|d| std::fs::read_to_string(d.join(COMMENTS_DIR).join(format!("{name}.toml"))).ok())
            .and_then(|s| toml::from_str(&s).ok())
            .unwrap_or_default()
    }

    /// COMMENT ON TABLE|VIEW|COLUMN: `column` None for the relation; `text` None removes it.
    pub fn set_comment(&self, schema: &str, name: &str, column: Option<&str>, text: Option<&str>) -> Result<()> {
        let _w = self.lock_writes();
        let sdir = self.existing_schema_dir(schema)?;
        if self.relation_kind(schema, name).is_none() {
            return Err(undefined_table(schema, name));
        }
        let mut c = self.comments(schema, name);
        match (column, text) {
            (None, t) => c.relation = t.map(str::to_string),
            (Some(col), Some(t)) => {
                c.columns.insert(col.to_string(), t.to_string());
            }
            (Some(col), None) => {
                c.columns.remove(col);
            }
        }
        let body = toml::to_string(&c).map_err(|e| Error::Store(format!("cannot write comments: {e}")))?;
        write_atomic(&sdir.join(COMMENTS_DIR).join(format!("{name}.toml")), body.as_bytes())
    }

    /// The current files of table `name` (what a replacement is computed from).
    pub fn table_files(&self, schema: &str, name: &str) -> Result<Vec<super::FileStamp>> {
        let dir = self.table_dir(schema, name).ok_or_else(|| undefined_table(schema, name))?;
        super::list_data_files(&dir)
    }

    /// Makes the staged version's files durable.
    fn finish_version(&self, staged: &mut Staged) -> Result<()> {
        if staged.files.is_empty() {
            // An empty table still has its columns: one file without rows.
            let w = staged.writer()?;
            staged.add(w)?;
        }
        sync_dir(&staged.dir)?;
        if let Some(parent) = staged.dir.parent() {
            sync_dir(parent)?;
        }
        Ok(())
    }

    /// A hidden link in `sdir` to version folder `version`, ready to be renamed into place.
    fn link_to(&self, sdir: &Path, version: &Path) -> Result<PathBuf> {
        let rel = version.strip_prefix(sdir).map_err(|_| Error::Store("version outside its schema".into()))?;
        let link = sdir.join(format!(".{}.link.tmp", unique()));
        std::os::unix::fs::symlink(rel, &link)?;
        Ok(link)
    }

    /// Moves `path` (in `sdir`'s folder tree) to the trash, deleted after the version grace.
    fn to_trash(&self, sdir: &Path, path: &Path) -> Result<()> {
        let trash = sdir.join(TRASH_DIR);
        std::fs::create_dir_all(&trash)?;
        let target = trash.join(unique());
        std::fs::rename(path, &target)?;
        sync_dir(&trash)?;
        if let Some(parent) = path.parent() {
            sync_dir(parent)?;
        }
        delete_later(target, self.version_grace());
        Ok(())
    }

    /// Removes what interrupted writes left behind: staged files (`*.tmp`), versions no table
    /// links to, the trash. Run when the store opens, before anything reads it.
    pub fn collect_garbage(&self) {
        let mut dirs = vec![self.root.clone()];
        if let Ok(entries) = std::fs::read_dir(self.root.join(SCHEMAS_DIR)) {
            dirs.extend(entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()));
        }
        for sdir in dirs {
            remove_any(&sdir.join(TRASH_DIR));
            let Ok(entries) = std::fs::read_dir(&sdir) else { continue };
            let mut linked = vec![];
            for e in entries.filter_map(|e| e.ok()) {
                let path = e.path();
                let name = e.file_name().to_string_lossy().to_string();
                if name.ends_with(".tmp") {
                    remove_any(&path);
                } else if path.is_symlink() {
                    match path.canonicalize() {
                        Ok(target) => linked.push(target),
                        // A link to nothing is not a table.
                        Err(_) => remove_any(&path),
                    }
                } else if is_table_name(&name) && path.is_dir() {
                    remove_tmp_files(&path);
                }
            }
            for l in &linked {
                remove_tmp_files(l);
            }
            if let Ok(versions) = std::fs::read_dir(sdir.join(VERSIONS_DIR)) {
                for v in versions.filter_map(|e| e.ok()) {
                    let p = v.path().canonicalize().unwrap_or_else(|_| v.path());
                    if !linked.contains(&p) {
                        remove_any(&v.path());
                    }
                }
            }
        }
    }
}

/// Deletes `path` after `grace`, so queries that listed its files before a change can still
/// read them. One thread deletes what is due, every second.
fn delete_later(path: PathBuf, grace: std::time::Duration) {
    static DUE: Mutex<Vec<(std::time::Instant, PathBuf)>> = Mutex::new(Vec::new());
    static REAPER: std::sync::Once = std::sync::Once::new();
    DUE.lock().unwrap_or_else(|p| p.into_inner()).push((std::time::Instant::now() + grace, path));
    REAPER.call_once(|| {
        let _ = std::thread::Builder::new().name("journeydb-trash".into()).spawn(|| {
            loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
                let now = std::time::Instant::now();
                let due: Vec<PathBuf> = {
                    let mut all = DUE.lock().unwrap_or_else(|p| p.into_inner());
                    let (due, later): (Vec<_>, Vec<_>) = all.drain(..).partition(|(at, _)| *at <= now);
                    *all = later;
                    due.into_iter().map(|(_, p)| p).collect()
                };
                due.iter().for_each(|p| remove_any(p));
            }
        });
    });
}

fn remove_any(path: &Path) {
    if path.is_symlink() || path.is_file() {
        let _ = std::fs::remove_file(path);
    } else if path.is_dir() {
        let _ = std::fs::remove_dir_all(path);
    }
}

fn remove_tmp_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.filter_map(|e| e.ok()) {
        let p = e.path();
        if p.is_dir() {
            remove_tmp_files(&p);
        } else if e.file_name().to_string_lossy().ends_with(".tmp") {
            let _ = std::fs::remove_file(&p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int64Array;

    fn batch(values: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(values.to_vec()))]).expect("batch")
    }

    fn create(store: &Store, name: &str, values: &[i64]) -> bool {
        let b = batch(values);
        let mut staged = store.stage(STORE_SCHEMA, &b.schema()).expect("stage");
        let mut w = staged.writer().expect("writer");
        w.write(&b).expect("write");
        staged.add(w).expect("add");
        store.create_table(STORE_SCHEMA, name, staged, true).expect("create")
    }

    fn code(e: Error) -> SqlState {
        crate::error::to_pg_error(&e).code
    }

    #[test]
    fn a_replacement_computed_from_an_older_version_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path()).expect("store");
        assert!(create(&store, "t", &[1, 2]));
        let based_on = store.table_files(STORE_SCHEMA, "t").expect("files");
        // Another writer appends meanwhile.
        let table_dir = store.table_dir(STORE_SCHEMA, "t").expect("dir");
        let mut w = FileWriter::create(&table_dir, &batch(&[3]).schema()).expect("writer");
        w.write(&batch(&[3])).expect("write");
        assert_eq!(store.append_file(STORE_SCHEMA, "t", w).expect("append"), 1);
        let staged = store.stage(STORE_SCHEMA, &batch(&[]).schema()).expect("stage");
        let err = store.replace_table(STORE_SCHEMA, "t", staged, &based_on).expect_err("stale");
        assert_eq!(code(err), SqlState::SerializationFailure);
        assert_eq!(store.table_files(STORE_SCHEMA, "t").expect("files").len(), 2, "nothing replaced, nothing lost");
        // Computed from the current files, it goes through.
        let current = store.table_files(STORE_SCHEMA, "t").expect("files");
        let staged = store.stage(STORE_SCHEMA, &batch(&[]).schema()).expect("stage");
        store.replace_table(STORE_SCHEMA, "t", staged, &current).expect("replace");
        assert_eq!(store.table_files(STORE_SCHEMA, "t").expect("files").len(), 1, "one empty file keeps the columns");
    }

    #[test]
    fn names_are_taken_once_and_leftovers_are_collected() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path()).expect("store");
        assert!(create(&store, "t", &[1]));
        assert!(!create(&store, "t", &[2]), "IF NOT EXISTS: the existing table stays");
        let b = batch(&[2]);
        let staged = store.stage(STORE_SCHEMA, &b.schema()).expect("stage");
        assert_eq!(
            code(store.create_table(STORE_SCHEMA, "t", staged, false).expect_err("taken")),
            SqlState::DuplicateTable
        );
        let versions = || std::fs::read_dir(dir.path().join(VERSIONS_DIR)).expect("versions").count();
        assert_eq!(versions(), 1, "discarded versions are removed at once");
        // What a killed writer leaves: a staged file in the table, an unpublished version.
        let table_dir = store.table_dir(STORE_SCHEMA, "t").expect("dir");
        std::fs::write(table_dir.join("part-x.parquet.tmp"), b"partial").expect("tmp");
        let orphan = store.stage(STORE_SCHEMA, &b.schema()).expect("stage");
        std::mem::forget(orphan);
        assert_eq!(versions(), 2);
        store.collect_garbage();
        assert_eq!(versions(), 1, "the unpublished version is gone, the table's stays");
        assert!(!table_dir.join("part-x.parquet.tmp").exists());
        assert_eq!(store.table_files(STORE_SCHEMA, "t").expect("files").len(), 1);
    }

    #[test]
    fn schemas_views_renames_and_drops() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path()).expect("store");
        assert!(store.create_schema("s", false).expect("create"));
        assert!(!store.create_schema("s", true).expect("exists"));
        assert_eq!(code(store.create_schema("journey", false).expect_err("reserved")), SqlState::DuplicateSchema);
        assert_eq!(code(store.create_schema("Bad", false).expect_err("name")), SqlState::InvalidName);
        store.create_view("s", "v", "SELECT 1 AS one", false).expect("view");
        assert_eq!(code(store.create_view("s", "v", "SELECT 2", false).expect_err("exists")), SqlState::DuplicateTable);
        store.create_view("s", "v", "SELECT 2 AS two", true).expect("or replace");
        assert_eq!(store.view_sql("s", "v").as_deref(), Some("SELECT 2 AS two"));
        store.rename_relation("s", "v", "w").expect("rename");
        assert_eq!(store.view_names("s"), ["w"]);
        assert_eq!(
            code(store.drop_schema("s", false, false).expect_err("not empty")),
            SqlState::DependentObjectsStillExist
        );
        assert!(store.drop_schema("s", false, true).expect("cascade"));
        assert!(store.schema_dir("s").is_none());
        assert!(!store.drop_schema("s", true, false).expect("if exists"));
    }
}
