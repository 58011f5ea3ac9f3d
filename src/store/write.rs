//! Changes to the store, each atomic. Table data goes into Delta commits (see [`super::delta`]);
//! views and comments are single files written whole. Every change of the layout runs under
//! the store's write lock; writing data does not.

use super::delta::{self, DeltaFile, LogState};
use super::objects::{Objects, block};
use super::{
    COMMENTS_DIR, FileStamp, RelationKind, SCHEMA_MARKER, SCHEMAS_DIR, STORE_SCHEMA, Store, TRASH_DIR, VIEWS_DIR,
    check_new_name, join,
};
use crate::error::{Error, Result, SqlState};
use bytes::Bytes;
use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
use deltalake_core::kernel::Add;
use std::collections::BTreeMap;
use std::path::PathBuf;
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

/// The schema files are written with, as Delta tables have them: string and binary views as
/// plain strings and binaries, instants in microseconds labelled UTC whatever zone the session
/// showed them in (the same values), unsigned integers widened to signed ones, every column
/// nullable (PostgreSQL columns without NOT NULL).
pub fn file_schema(schema: &Schema) -> SchemaRef {
    fn delta_type(dt: &DataType) -> DataType {
        match dt {
            DataType::Utf8View | DataType::LargeUtf8 | DataType::Null => DataType::Utf8,
            DataType::BinaryView | DataType::LargeBinary | DataType::FixedSizeBinary(_) => DataType::Binary,
            DataType::Timestamp(_, Some(_)) => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            DataType::Timestamp(_, None) => DataType::Timestamp(TimeUnit::Microsecond, None),
            DataType::Date64 => DataType::Date32,
            DataType::UInt8 => DataType::Int16,
            DataType::UInt16 => DataType::Int32,
            DataType::UInt32 => DataType::Int64,
            DataType::UInt64 => DataType::Decimal128(20, 0),
            DataType::Float16 => DataType::Float32,
            DataType::Dictionary(_, v) => delta_type(v),
            DataType::List(f) | DataType::LargeList(f) | DataType::ListView(f) | DataType::FixedSizeList(f, _) => {
                DataType::List(Arc::new(Field::new(f.name(), delta_type(f.data_type()), true)))
            }
            DataType::Struct(fields) => DataType::Struct(
                fields.iter().map(|f| Arc::new(Field::new(f.name(), delta_type(f.data_type()), true))).collect(),
            ),
            other => other.clone(),
        }
    }
    Arc::new(Schema::new(
        schema.fields().iter().map(|f| Field::new(f.name(), delta_type(f.data_type()), true)).collect::<Vec<_>>(),
    ))
}

/// One Parquet file of a table being written: on a local disk in the table's folder under a
/// `.tmp` name, else in a local temporary file uploaded when it is finished. Dropped before
/// [`FileWriter::finish`] (an error, a killed client), it removes what it wrote.
pub struct FileWriter {
    objects: Objects,
    /// The table's folder (key) and the file's name in it.
    table: String,
    name: String,
    /// Where it is written now.
    local: PathBuf,
    schema: SchemaRef,
    writer: Option<ArrowWriter<std::fs::File>>,
    rows: u64,
}

impl std::fmt::Debug for FileWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileWriter({}/{}, {} rows)", self.table, self.name, self.rows)
    }
}

/// A finished data file, not yet part of its table.
#[derive(Debug)]
pub struct Written {
    add: Add,
    rows: u64,
}

impl FileWriter {
    /// A new file in table folder `table` for rows of `schema` (converted by [`file_schema`]).
    fn create(objects: &Objects, table: &str, schema: &Schema) -> Result<FileWriter> {
        let schema = file_schema(schema);
        let name = format!("part-{}.parquet", unique());
        let local = match objects.local_path(table) {
            Some(dir) => {
                std::fs::create_dir_all(&dir)?;
                dir.join(format!("{name}.tmp"))
            }
            None => std::env::temp_dir().join(format!("journeydb-upload-{name}.tmp")),
        };
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .build();
        let writer = ArrowWriter::try_new(std::fs::File::create(&local)?, schema.clone(), Some(props))?;
        Ok(FileWriter {
            objects: objects.clone(),
            table: table.to_string(),
            name,
            local,
            schema,
            writer: Some(writer),
            rows: 0,
        })
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

    /// Closes the file and puts it in its table's folder, durable and not yet committed.
    fn finish(mut self) -> Result<Written> {
        let Some(w) = self.writer.take() else { return Err(Error::Store("file already finished".into())) };
        let metadata = w.close()?;
        std::fs::File::open(&self.local)?.sync_all()?;
        let size = std::fs::metadata(&self.local)?.len();
        let key = format!("{}/{}", self.table, self.name);
        match self.objects.local_path(&key) {
            Some(target) => {
                std::fs::rename(&self.local, &target)?;
                if let Some(dir) = target.parent() {
                    std::fs::File::open(dir)?.sync_all()?;
                }
            }
            None => {
                self.objects.upload(&self.local, &key)?;
                let _ = std::fs::remove_file(&self.local);
            }
        }
        self.local = PathBuf::new();
        let add = delta::add_action(&self.name, size, &metadata, &self.schema);
        Ok(Written { add, rows: self.rows })
    }
}

impl Drop for FileWriter {
    fn drop(&mut self) {
        if !self.local.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.local);
        }
    }
}

/// The files of a table a statement rewrites, as of the version it read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableFiles {
    /// The table's folder (key).
    pub table: String,
    /// The Delta version read (-1: a plain folder, listed only).
    pub version: i64,
    pub files: Vec<FileStamp>,
}

/// A table's new content being written: data files in its folder, not part of it until
/// published by [`Store::create_table`] or [`Store::replace_table`].
#[derive(Debug)]
pub struct Staged {
    objects: Objects,
    /// The table's folder (key).
    table: String,
    schema: SchemaRef,
    adds: Vec<Add>,
    /// Files of the current version kept as they are (paths relative to the folder).
    kept: Vec<FileStamp>,
    published: bool,
}

impl Staged {
    /// A file of this version.
    pub fn writer(&self) -> Result<FileWriter> {
        FileWriter::create(&self.objects, &self.table, &self.schema)
    }

    /// Adds a finished file to the version (a file without rows is dropped: a Delta table
    /// keeps its columns in its log).
    pub fn add(&mut self, writer: FileWriter) -> Result<()> {
        if writer.rows == 0 {
            return Ok(());
        }
        let written = writer.finish()?;
        self.adds.push(written.add);
        Ok(())
    }

    /// Keeps an existing file of the table unchanged.
    pub fn keep(&mut self, file: &FileStamp) -> Result<()> {
        self.kept.push(file.clone());
        Ok(())
    }

    /// Removes the files written for a version that is not published.
    fn discard(&mut self) {
        let paths = self.adds.drain(..).map(|a| self.objects.path(&format!("{}/{}", self.table, a.path))).collect();
        let _ = self.objects.delete_paths(paths);
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.published {
            self.discard();
        }
    }
}

/// Held while the layout changes.
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

fn undefined_table(schema: &str, name: &str) -> Error {
    Error::sql(SqlState::UndefinedTable, format!("relation \"{schema}.{name}\" does not exist"))
}

fn duplicate(name: &str) -> Error {
    Error::sql(SqlState::DuplicateTable, format!("relation \"{name}\" already exists"))
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
    /// The write lock: this process's, and on a local disk the data directory's (an advisory
    /// lock on `.lock`, so that `journeydb import` and the server do not change the layout at
    /// once). On object storage, Delta's conditional commits keep writers apart.
    fn lock_writes(&self) -> WriteLock<'_> {
        let guard = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        let file = self.objects.local_path(".lock").and_then(|lock| {
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(lock)
                .ok()
                .filter(|f| rustix::fs::flock(f, rustix::fs::FlockOperation::LockExclusive).is_ok())
        });
        WriteLock { _guard: guard, _file: file, generation: &self.generation }
    }

    fn existing_schema_dir(&self, schema: &str) -> Result<String> {
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
        self.objects.put(&format!("{SCHEMAS_DIR}/{name}/{SCHEMA_MARKER}"), Bytes::new())?;
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
        for table in self.table_names_in(name) {
            self.remove_table(&join(&dir, &table))?;
        }
        self.remove_folder(&dir)?;
        Ok(true)
    }

    /// A new, empty table `name` of `schema` with columns `columns`, to fill and then publish
    /// with [`Store::create_table`]. Until then its folder is marked pending, so neither the
    /// files written nor a crash meanwhile make a table.
    pub fn stage_new(&self, schema: &str, name: &str, columns: &Schema) -> Result<Staged> {
        check_new_name("table", name)?;
        let dir = self.existing_schema_dir(schema)?;
        if self.relation_kind(schema, name).is_some() {
            return Err(duplicate(name));
        }
        delta::check_columns(&file_schema(columns))?;
        let table = join(&dir, name);
        if delta::log_state(&self.objects, &table)? == LogState::Absent {
            delta::mark_pending(&self.objects, &table)?;
        }
        Ok(self.staged(table, columns))
    }

    /// New content for existing table `name` of `schema` (DELETE, UPDATE, MERGE, TRUNCATE),
    /// published with [`Store::replace_table`].
    pub fn stage(&self, schema: &str, name: &str, columns: &Schema) -> Result<Staged> {
        let table = self.table_rel(schema, name).ok_or_else(|| undefined_table(schema, name))?;
        Ok(self.staged(table, columns))
    }

    fn staged(&self, table: String, columns: &Schema) -> Staged {
        Staged {
            objects: self.objects.clone(),
            table,
            schema: file_schema(columns),
            adds: vec![],
            kept: vec![],
            published: false,
        }
    }

    /// Publishes `staged` (from [`Store::stage_new`]) as new table `name` (CREATE TABLE), in
    /// one commit. Returns false when a table of that name appeared meanwhile and
    /// `if_not_exists` is set (the staged files are discarded).
    pub fn create_table(&self, schema: &str, name: &str, mut staged: Staged, if_not_exists: bool) -> Result<bool> {
        let _w = self.lock_writes();
        if self.table_rel(schema, name).as_deref() != Some(staged.table.as_str()) {
            return Err(Error::Store(format!("table \"{name}\" was staged for another name")));
        }
        if delta::create(&self.objects, &staged.table, name, &staged.schema, staged.adds.clone())? {
            staged.published = true;
            let _ = self.objects.delete(&format!("{}/{}", staged.table, delta::PENDING));
            return Ok(true);
        }
        if if_not_exists { Ok(false) } else { Err(duplicate(name)) }
    }

    /// The current files of table `name` (what a rewrite is computed from).
    pub fn table_files(&self, schema: &str, name: &str) -> Result<TableFiles> {
        self.current_files(schema, name, true)
    }

    /// The bytes of table `name`'s current files.
    pub fn table_size(&self, schema: &str, name: &str) -> u64 {
        self.current_files(schema, name, false).map(|t| t.files.iter().map(|f| f.size).sum()).unwrap_or(0)
    }

    fn current_files(&self, schema: &str, name: &str, rewrite: bool) -> Result<TableFiles> {
        let table = self.table_rel(schema, name).ok_or_else(|| undefined_table(schema, name))?;
        if rewrite {
            self.ensure_delta(schema, name, &table)?;
        }
        match delta::log_state(&self.objects, &table)? {
            LogState::Version(_) => {
                let t = delta::load(&self.objects, &table)?;
                if rewrite {
                    delta::check_rewritable(&t, name)?;
                }
                let files = delta::files(&t)?
                    .into_iter()
                    .map(|f| FileStamp { path: f.path, size: f.size.max(0) as u64, modified: f.modified })
                    .collect();
                let version = t.version().map(|v| v as i64).ok_or_else(|| undefined_table(schema, name))?;
                Ok(TableFiles { table, version, files })
            }
            LogState::Pending => Err(undefined_table(schema, name)),
            LogState::Absent => {
                let files = super::list_data_files(&self.objects, &table)?;
                if files.is_empty() {
                    return Err(undefined_table(schema, name));
                }
                Ok(TableFiles { table, version: -1, files })
            }
        }
    }

    /// Makes plain folder `table` (table `name`) a Delta table of the files it has, in one
    /// commit, before journeydb writes to it: its rows stay what they were, and what is written
    /// next is not seen before its own commit. Hive-partitioned folders are refused (0A000).
    fn ensure_delta(&self, schema: &str, name: &str, table: &str) -> Result<()> {
        match delta::log_state(&self.objects, table)? {
            LogState::Version(_) => Ok(()),
            LogState::Pending => Err(undefined_table(schema, name)),
            LogState::Absent => {
                let _w = self.lock_writes();
                let files = super::list_data_files(&self.objects, table)?;
                if files.is_empty() {
                    return Err(undefined_table(schema, name));
                }
                super::check_unpartitioned(&files, name)?;
                let current = self.table_in(schema, name)?.ok_or_else(|| undefined_table(schema, name))?;
                let columns = datafusion::catalog::TableProvider::schema(current.as_ref());
                let adds = self.existing_adds(table, &files)?;
                // Someone else converting it at the same time is as good.
                delta::create(&self.objects, table, name, &file_schema(&columns), adds)?;
                Ok(())
            }
        }
    }

    /// Where `file` of `files` is, for reading it alone.
    pub fn file_url(&self, files: &TableFiles, file: &FileStamp) -> url::Url {
        self.objects.url(&format!("{}/{}", files.table, file.path), false)
    }

    /// Replaces the content of table `name` by `staged` in one commit (DELETE, TRUNCATE,
    /// UPDATE, MERGE). `based_on` is what the new content was computed from (see
    /// [`Store::table_files`]): if the table changed since, nothing is replaced (40001).
    pub fn replace_table(&self, schema: &str, name: &str, mut staged: Staged, based_on: &TableFiles) -> Result<()> {
        let _w = self.lock_writes();
        if self.table_rel(schema, name).as_deref() != Some(based_on.table.as_str()) || staged.table != based_on.table {
            return Err(undefined_table(schema, name));
        }
        let adds = std::mem::take(&mut staged.adds);
        let kept: std::collections::HashSet<&str> = staged.kept.iter().map(|f| f.path.as_str()).collect();
        let removes: Vec<DeltaFile> = based_on
            .files
            .iter()
            .filter(|f| !kept.contains(f.path.as_str()))
            .map(|f| DeltaFile { path: f.path.clone(), size: f.size as i64, modified: f.modified, rows: None })
            .collect();
        match delta::replace(&self.objects, &based_on.table, based_on.version, &removes, adds.clone()) {
            Ok(_) => {
                staged.published = true;
                Ok(())
            }
            Err(e) => {
                staged.adds = adds;
                Err(e)
            }
        }
    }

    /// Add actions for files already in plain folder `table` (their rows from their footers).
    fn existing_adds(&self, table: &str, files: &[FileStamp]) -> Result<Vec<Add>> {
        if files.is_empty() {
            return Ok(vec![]);
        }
        let rows = super::table::footer_rows(&self.objects, table, files);
        Ok(files.iter().zip(rows).map(|(f, n)| delta::existing_add(&f.path, f.size, f.modified, n)).collect())
    }

    /// A new file for table `name` (INSERT, COPY, `journeydb import`), to publish with
    /// [`Store::append_file`]. A plain folder is made a Delta table of its files first.
    pub fn writer(&self, schema: &str, name: &str, columns: &Schema) -> Result<FileWriter> {
        let table = self.table_rel(schema, name).ok_or_else(|| undefined_table(schema, name))?;
        self.ensure_delta(schema, name, &table)?;
        delta::check_rewritable(&delta::load(&self.objects, &table)?, name)?;
        FileWriter::create(&self.objects, &table, columns)
    }

    /// Makes a finished file (from [`Store::writer`]) part of table `name` (INSERT, COPY), in
    /// one commit.
    pub fn append_file(&self, schema: &str, name: &str, writer: FileWriter) -> Result<u64> {
        let table = writer.table.clone();
        let written = writer.finish()?;
        let path = self.objects.path(&format!("{table}/{}", written.add.path));
        let result = (|| {
            let _w = self.lock_writes();
            if self.table_rel(schema, name).as_deref() != Some(table.as_str()) {
                return Err(undefined_table(schema, name));
            }
            delta::append(&self.objects, &table, vec![written.add])
        })();
        match result {
            Ok(_) => Ok(written.rows),
            Err(e) => {
                let _ = self.objects.delete_paths(vec![path]);
                Err(e)
            }
        }
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
            Some(RelationKind::Table) => self.remove_table(&join(&sdir, name))?,
            Some(RelationKind::View) => self.objects.delete(&join(&sdir, &format!("{VIEWS_DIR}/{name}.sql")))?,
        }
        self.objects.delete(&join(&sdir, &format!("{COMMENTS_DIR}/{name}.toml")))?;
        Ok(true)
    }

    /// VACUUM of table `name`: Delta's, removing the files no version within the retention
    /// needs (and files of writes that were cut off). A plain folder has nothing to remove.
    pub fn vacuum(&self, schema: &str, name: &str) -> Result<usize> {
        let table = self.table_rel(schema, name).ok_or_else(|| undefined_table(schema, name))?;
        if !matches!(delta::log_state(&self.objects, &table)?, LogState::Version(_)) {
            return Ok(0);
        }
        delta::vacuum(&self.objects, &table, self.vacuum_retention)
    }

    /// OPTIMIZE of table `name`: its small files compacted in one commit (a plain folder is
    /// made a Delta table first).
    pub fn optimize(&self, schema: &str, name: &str) -> Result<()> {
        let table = self.table_rel(schema, name).ok_or_else(|| undefined_table(schema, name))?;
        self.ensure_delta(schema, name, &table)?;
        let _w = self.lock_writes();
        delta::optimize(&self.objects, &table)
    }

    /// Removes table folder `table` at once for readers that look it up; its files go after
    /// the grace period, so queries already reading them finish.
    fn remove_table(&self, table: &str) -> Result<()> {
        if let (Some(dir), Some(root)) = (self.objects.local_path(table), self.objects.local_dir()) {
            let trash = root.join(TRASH_DIR);
            std::fs::create_dir_all(&trash)?;
            let target = trash.join(unique());
            std::fs::rename(&dir, &target)?;
            std::fs::File::open(&trash)?.sync_all()?;
            delete_later(self.objects.clone(), DeleteLater::Local(target), self.version_grace());
            return Ok(());
        }
        // Object storage: the pending marker first, then the log, so that the folder is no
        // table (neither Delta nor plain) from the first step on.
        delta::mark_pending(&self.objects, table)?;
        let log: Vec<_> = self
            .objects
            .list_all(&format!("{table}/{}", delta::LOG_DIR))?
            .into_iter()
            .map(|m| m.location)
            .filter(|p| p.filename() != Some("_journeydb_pending"))
            .collect();
        self.objects.delete_paths(log)?;
        delete_later(self.objects.clone(), DeleteLater::Remote(table.to_string()), self.version_grace());
        Ok(())
    }

    /// Removes folder `dir` (a schema's) and what is left in it.
    fn remove_folder(&self, dir: &str) -> Result<()> {
        self.objects.delete_all(dir)
    }

    /// ALTER TABLE|VIEW ... RENAME TO.
    pub fn rename_relation(&self, schema: &str, name: &str, new_name: &str) -> Result<()> {
        check_new_name("relation", new_name)?;
        let _w = self.lock_writes();
        let sdir = self.existing_schema_dir(schema)?;
        let kind = self.relation_kind(schema, name).ok_or_else(|| undefined_table(schema, name))?;
        let (from, to) = (join(&sdir, name), join(&sdir, new_name));
        // A folder left by a dropped or cut-off table (pending) is no relation: it is reused.
        if self.relation_kind(schema, new_name).is_some() {
            return Err(duplicate(new_name));
        }
        match kind {
            RelationKind::Table => self.move_table(schema, name, new_name, &from, &to)?,
            RelationKind::View => {
                let sql = self.view_sql(schema, name).ok_or_else(|| undefined_table(schema, name))?;
                self.objects.put(&join(&sdir, &format!("{VIEWS_DIR}/{new_name}.sql")), Bytes::from(sql))?;
                self.objects.delete(&join(&sdir, &format!("{VIEWS_DIR}/{name}.sql")))?;
            }
        }
        let comments = |n: &str| join(&sdir, &format!("{COMMENTS_DIR}/{n}.toml"));
        if let Some(c) = self.objects.get(&comments(name))? {
            self.objects.put(&comments(new_name), c)?;
            self.objects.delete(&comments(name))?;
        }
        Ok(())
    }

    /// Moves table folder `from` to `to`: one rename on a local disk. On object storage the
    /// data files are copied, then the new folder gets one commit of the table's current
    /// files (it appears whole, without the old history), then the old folder is removed.
    fn move_table(&self, schema: &str, name: &str, new_name: &str, from: &str, to: &str) -> Result<()> {
        if let (Some(a), Some(b)) = (self.objects.local_path(from), self.objects.local_path(to)) {
            if b.exists() {
                // A folder without a table in it (a leftover): out of the way.
                if let Some(root) = self.objects.local_dir() {
                    let trash = root.join(TRASH_DIR);
                    std::fs::create_dir_all(&trash)?;
                    std::fs::rename(&b, trash.join(unique()))?;
                }
            }
            std::fs::rename(&a, &b)?;
            if let Some(dir) = b.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            return Ok(());
        }
        let current = self.table_files(schema, name)?;
        let columns = self.table_in(schema, name)?.ok_or_else(|| undefined_table(schema, name))?;
        let columns = datafusion::catalog::TableProvider::schema(columns.as_ref());
        delta::mark_pending(&self.objects, to)?;
        for f in &current.files {
            let (store, src, dst) = (
                self.objects.store().clone(),
                self.objects.path(&format!("{from}/{}", f.path)),
                self.objects.path(&format!("{to}/{}", f.path)),
            );
            block(async move {
                use object_store::ObjectStoreExt;
                store.copy(&src, &dst).await
            })?;
        }
        let adds = self.existing_adds(to, &current.files)?;
        if !delta::create(&self.objects, to, new_name, &file_schema(&columns), adds)? {
            return Err(duplicate(new_name));
        }
        let _ = self.objects.delete(&format!("{to}/{}", delta::PENDING));
        self.remove_table(from)
    }

    /// CREATE [OR REPLACE] VIEW: keeps `sql` (the SELECT) as the view's definition.
    pub fn create_view(&self, schema: &str, name: &str, sql: &str, or_replace: bool) -> Result<()> {
        check_new_name("view", name)?;
        let _w = self.lock_writes();
        let sdir = self.existing_schema_dir(schema)?;
        match self.relation_kind(schema, name) {
            Some(RelationKind::View) if or_replace => {}
            Some(_) => return Err(duplicate(name)),
            None => {}
        }
        self.objects.put(&join(&sdir, &format!("{VIEWS_DIR}/{name}.sql")), Bytes::from(sql.to_string()))
    }

    /// The comments on relation `name` of `schema`.
    pub fn comments(&self, schema: &str, name: &str) -> Comments {
        self.schema_dir(schema)
            .and_then(|d| self.objects.get(&join(&d, &format!("{COMMENTS_DIR}/{name}.toml"))).ok().flatten())
            .and_then(|b| String::from_utf8(b.to_vec()).ok())
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
        self.objects.put(&join(&sdir, &format!("{COMMENTS_DIR}/{name}.toml")), Bytes::from(body))
    }

    /// Tidies the store when the server opens it: migrates tables of earlier versions, removes
    /// staged files (`*.tmp`), tables whose creation was cut off, and the trash. On object storage there is nothing to do: files of
    /// interrupted writes are in no commit, and VACUUM removes them.
    pub fn collect_garbage(&self) {
        let Some(root) = self.objects.local_dir().map(|p| p.to_path_buf()) else { return };
        let _w = self.lock_writes();
        let mut dirs = vec![String::new()];
        if let Ok(listing) = self.objects.list(SCHEMAS_DIR) {
            dirs.extend(listing.dirs.into_iter().map(|d| format!("{SCHEMAS_DIR}/{d}")));
        }
        remove_any(&root.join(TRASH_DIR));
        for sdir in dirs {
            super::migrate::migrate_schema(self, &sdir);
            let Some(path) = self.objects.local_path(&sdir) else { continue };
            remove_any(&path.join(TRASH_DIR));
            let Ok(entries) = std::fs::read_dir(&path) else { continue };
            for e in entries.filter_map(|e| e.ok()) {
                let name = e.file_name().to_string_lossy().to_string();
                if name.ends_with(".tmp") {
                    remove_any(&e.path());
                } else if super::is_table_name(&name) && e.path().is_dir() {
                    // A table whose creation was cut off: its files are in no commit.
                    let table = join(&sdir, &name);
                    if delta::log_state(&self.objects, &table).ok() == Some(LogState::Pending) {
                        remove_any(&e.path());
                    } else {
                        remove_tmp_files(&e.path());
                    }
                }
            }
        }
    }
}

/// What to delete when the grace period is over.
enum DeleteLater {
    Local(PathBuf),
    /// A table folder on object storage.
    Remote(String),
}

/// Deletes `what` after `grace`, so queries that listed its files before a change can still
/// read them. One thread deletes what is due, every second.
fn delete_later(objects: Objects, what: DeleteLater, grace: std::time::Duration) {
    type Due = Vec<(std::time::Instant, Objects, DeleteLater)>;
    static DUE: Mutex<Due> = Mutex::new(Vec::new());
    static REAPER: std::sync::Once = std::sync::Once::new();
    DUE.lock().unwrap_or_else(|p| p.into_inner()).push((std::time::Instant::now() + grace, objects, what));
    REAPER.call_once(|| {
        let _ = std::thread::Builder::new().name("journeydb-trash".into()).spawn(|| {
            loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
                let now = std::time::Instant::now();
                let due: Due = {
                    let mut all = DUE.lock().unwrap_or_else(|p| p.into_inner());
                    let (due, later): (Due, Due) = all.drain(..).partition(|(at, _, _)| *at <= now);
                    *all = later;
                    due
                };
                for (_, objects, what) in due {
                    match what {
                        DeleteLater::Local(p) => remove_any(&p),
                        DeleteLater::Remote(table) => {
                            // Only if nothing was created there meanwhile.
                            if delta::log_state(&objects, &table).ok() == Some(LogState::Pending) {
                                let _ = objects.delete_all(&table);
                            }
                        }
                    }
                }
            }
        });
    });
}

fn remove_any(path: &std::path::Path) {
    if path.is_symlink() || path.is_file() {
        let _ = std::fs::remove_file(path);
    } else if path.is_dir() {
        let _ = std::fs::remove_dir_all(path);
    }
}

fn remove_tmp_files(dir: &std::path::Path) {
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
        let mut staged = match store.stage_new(STORE_SCHEMA, name, &b.schema()) {
            Ok(s) => s,
            Err(e) if code(&e) == SqlState::DuplicateTable => return false,
            Err(e) => panic!("stage: {e}"),
        };
        let mut w = staged.writer().expect("writer");
        w.write(&b).expect("write");
        staged.add(w).expect("add");
        store.create_table(STORE_SCHEMA, name, staged, true).expect("create")
    }

    fn append(store: &Store, name: &str, values: &[i64]) -> u64 {
        let b = batch(values);
        let mut w = store.writer(STORE_SCHEMA, name, &b.schema()).expect("writer");
        w.write(&b).expect("write");
        store.append_file(STORE_SCHEMA, name, w).expect("append")
    }

    fn code(e: impl std::borrow::Borrow<Error>) -> SqlState {
        crate::error::to_pg_error(e.borrow()).code
    }

    fn rows(store: &Store, name: &str) -> u64 {
        store.table(name).expect("lookup").expect("table").row_count()
    }

    #[test]
    fn a_replacement_computed_from_an_older_version_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path()).expect("store");
        assert!(create(&store, "t", &[1, 2]));
        let based_on = store.table_files(STORE_SCHEMA, "t").expect("files");
        // Another writer appends meanwhile.
        assert_eq!(append(&store, "t", &[3]), 1);
        let staged = store.stage(STORE_SCHEMA, "t", &batch(&[]).schema()).expect("stage");
        let err = store.replace_table(STORE_SCHEMA, "t", staged, &based_on).expect_err("stale");
        assert_eq!(code(err), SqlState::SerializationFailure);
        assert_eq!(
            store.table_files(STORE_SCHEMA, "t").expect("files").files.len(),
            2,
            "nothing replaced, nothing lost"
        );
        assert_eq!(rows(&store, "t"), 3);
        // Computed from the current files, it goes through, keeping what it kept.
        let current = store.table_files(STORE_SCHEMA, "t").expect("files");
        let mut staged = store.stage(STORE_SCHEMA, "t", &batch(&[]).schema()).expect("stage");
        staged.keep(&current.files[0]).expect("keep");
        store.replace_table(STORE_SCHEMA, "t", staged, &current).expect("replace");
        assert_eq!(store.table_files(STORE_SCHEMA, "t").expect("files").files, current.files[..1]);
        // Each statement was one Delta commit.
        let log = std::fs::read_dir(dir.path().join("t/_delta_log")).expect("log").count();
        assert_eq!(log, 3, "create, append, replace");
    }

    #[test]
    fn names_are_taken_once_and_leftovers_are_collected() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path()).expect("store");
        assert!(create(&store, "t", &[1]));
        assert!(!create(&store, "t", &[2]), "IF NOT EXISTS: the existing table stays");
        assert_eq!(rows(&store, "t"), 1);
        // What a killed writer leaves: a staged file in the table, a table never committed.
        std::fs::write(dir.path().join("t/part-x.parquet.tmp"), b"partial").expect("tmp");
        let b = batch(&[5, 6]);
        let mut orphan = store.stage_new(STORE_SCHEMA, "u", &b.schema()).expect("stage");
        let mut w = orphan.writer().expect("writer");
        w.write(&b).expect("write");
        orphan.add(w).expect("add");
        std::mem::forget(orphan);
        assert_eq!(store.table_names(), ["t"], "a table being created is no table, not even a plain folder");
        store.collect_garbage();
        assert!(!dir.path().join("t/part-x.parquet.tmp").exists());
        assert_eq!(store.table_files(STORE_SCHEMA, "t").expect("files").files.len(), 1);
        // The name is free: creating it again works, and only its own rows are in it.
        assert!(create(&store, "u", &[7]));
        assert_eq!(rows(&store, "u"), 1);
    }

    #[test]
    fn writing_to_a_plain_folder_makes_it_a_delta_table_of_its_files() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path()).expect("store");
        assert!(create(&store, "seed", &[1, 2]));
        let seed = store.table_files(STORE_SCHEMA, "seed").expect("files").files.remove(0);
        std::fs::create_dir(dir.path().join("p")).expect("mkdir");
        std::fs::copy(dir.path().join("seed").join(&seed.path), dir.path().join("p/hand.parquet")).expect("copy");
        assert_eq!(store.current_files(STORE_SCHEMA, "p", false).expect("plain").version, -1);
        assert_eq!(append(&store, "p", &[3]), 1);
        let files = store.table_files(STORE_SCHEMA, "p").expect("delta");
        assert_eq!(files.version, 1, "made a Delta table, then appended to");
        assert_eq!(files.files.len(), 2);
        assert_eq!(rows(&store, "p"), 3);
    }

    #[test]
    fn tables_of_earlier_versions_are_migrated() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path()).expect("store");
        assert!(create(&store, "seed", &[1, 2, 3]));
        let seed = store.table_files(STORE_SCHEMA, "seed").expect("files").files.remove(0);
        // The old layout: `t` links to `.tables/v1`; `.tables/v0` is a version nothing links to.
        for v in ["v0", "v1"] {
            let d = dir.path().join(".tables").join(v);
            std::fs::create_dir_all(&d).expect("mkdir");
            std::fs::copy(dir.path().join("seed").join(&seed.path), d.join("part-0.parquet")).expect("copy");
        }
        std::os::unix::fs::symlink(".tables/v1", dir.path().join("t")).expect("link");
        let store = Store::open(dir.path()).expect("store");
        store.collect_garbage();
        assert!(!dir.path().join("t").is_symlink());
        assert!(dir.path().join("t/_delta_log").is_dir());
        assert!(!dir.path().join(".tables").exists(), "old versions removed");
        assert_eq!(rows(&store, "t"), 3);
        assert_eq!(store.table_names(), ["seed", "t"]);
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
