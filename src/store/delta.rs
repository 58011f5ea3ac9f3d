//! Delta Lake tables: every table journeydb writes is one, and those Spark or delta-rs wrote
//! are read through their log.
//!
//! - A folder holding `_delta_log/` with a commit is a Delta table. A `_delta_log/` holding
//!   only [`PENDING`] is a table being created, renamed or dropped: it is not listed, and its
//!   files are not read as a plain Parquet folder either.
//! - Each statement is one commit, written only if that version does not exist yet (object
//!   storage's conditional put, a no-clobber link on a local disk). Appends that lose the race
//!   try the next version; a statement that rewrote files from one version fails with 40001 when
//!   another commit came first, and nothing of it is visible.

use super::objects::{Objects, block};
use crate::error::{Error, Result, SqlState};
use bytes::Bytes;
use datafusion::arrow::array::Array;
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::common::ScalarValue;
use datafusion::parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use datafusion::parquet::file::metadata::ParquetMetaData;
use deltalake_core::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake_core::kernel::transaction::{CommitBuilder, CommitProperties, TransactionError};
use deltalake_core::kernel::{Action, Add, Remove, StructType};
use deltalake_core::logstore::{LogStore, LogStoreFactory, LogStoreRef, StorageConfig, default_logstore};
use deltalake_core::operations::create::CreateBuilder;
use deltalake_core::protocol::{DeltaOperation, SaveMode};
use deltalake_core::{DeltaTable, DeltaTableBuilder, DeltaTableError, ObjectStore};
use std::collections::HashMap;
use std::sync::{Arc, Once};

/// The log folder of a Delta table.
pub const LOG_DIR: &str = "_delta_log";
/// Marks a table's folder as not (yet, or no longer) a table while journeydb creates, renames
/// or drops it.
pub const PENDING: &str = "_delta_log/_journeydb_pending";

/// What a folder's `_delta_log/` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogState {
    /// No log: a plain Parquet folder (or nothing).
    Absent,
    /// A log without a commit: a table being created, renamed or dropped.
    Pending,
    /// A Delta table at this version (the newest commit or checkpoint seen).
    Version(i64),
}

/// What `_delta_log/` of folder `rel` holds now.
pub fn log_state(objects: &Objects, rel: &str) -> Result<LogState> {
    let listing = objects.list(&format!("{rel}/{LOG_DIR}"))?;
    if listing.files.is_empty() && listing.dirs.is_empty() {
        return Ok(LogState::Absent);
    }
    let newest = listing
        .files
        .iter()
        .filter_map(|m| m.location.filename())
        .filter_map(|name| {
            let (digits, rest) = name.split_at_checked(20)?;
            (rest == ".json" || rest.starts_with(".checkpoint")).then(|| digits.parse::<i64>().ok()).flatten()
        })
        .max();
    Ok(newest.map_or(LogState::Pending, LogState::Version))
}

/// Lets deltalake open `s3://` tables with the object store we give it (commits by
/// conditional put, which S3 and S3-compatible servers have).
fn register_schemes() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        #[derive(Debug)]
        struct ConditionalPut;
        impl LogStoreFactory for ConditionalPut {
            fn with_options(
                &self,
                prefixed_store: Arc<dyn ObjectStore>,
                root_store: Arc<dyn ObjectStore>,
                location: &url::Url,
                options: &StorageConfig,
            ) -> deltalake_core::DeltaResult<Arc<dyn LogStore>> {
                Ok(default_logstore(prefixed_store, root_store, location, options))
            }
        }
        if let Ok(s3) = url::Url::parse("s3://") {
            deltalake_core::logstore::logstore_factories().insert(s3, Arc::new(ConditionalPut));
        }
    });
}

/// The Delta table in folder `rel`, not loaded.
fn handle(objects: &Objects, rel: &str) -> Result<DeltaTable> {
    register_schemes();
    let url = objects.url(rel, true);
    DeltaTableBuilder::from_url(url.clone())
        .map_err(delta_error)?
        .with_storage_backend(objects.store().clone(), url)
        .build()
        .map_err(delta_error)
}

/// The Delta table in folder `rel` at its newest version.
pub fn load(objects: &Objects, rel: &str) -> Result<DeltaTable> {
    let mut table = handle(objects, rel)?;
    block(async move {
        table.load().await?;
        Ok::<_, DeltaTableError>(table)
    })
    .map_err(delta_error)
}

/// One data file of a loaded Delta table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeltaFile {
    /// As the log has it: relative to the table's folder, decoded.
    pub path: String,
    pub size: i64,
    pub modified: i64,
    /// Rows, when the log has statistics.
    pub rows: Option<u64>,
}

/// The data files of `table`'s loaded version, sorted by path.
pub fn files(table: &DeltaTable) -> Result<Vec<DeltaFile>> {
    let state = table.snapshot().map_err(delta_error)?;
    let mut files: Vec<DeltaFile> = state
        .log_data()
        .iter()
        .map(|f| DeltaFile {
            path: f.path().to_string(),
            size: f.size(),
            modified: f.modification_time(),
            rows: f
                .stats()
                .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok()?.get("numRecords")?.as_u64()),
        })
        .collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// Whether journeydb may rewrite `table`'s files one by one (DELETE, UPDATE, MERGE read each
/// file as Parquet): not when rows are hidden by deletion vectors or columns renamed by
/// column mapping, which only a Delta reader applies.
pub fn check_rewritable(table: &DeltaTable, name: &str) -> Result<()> {
    let state = table.snapshot().map_err(delta_error)?;
    let protocol = state.protocol();
    let features: Vec<String> =
        protocol.reader_features().map(|f| f.iter().map(|x| x.to_string()).collect()).unwrap_or_default();
    if let Some(f) = features.iter().find(|f| f.contains("deletionVectors") || f.contains("columnMapping")) {
        return Err(Error::sql(
            SqlState::FeatureNotSupported,
            format!("table \"{name}\" uses the Delta feature {f}: journeydb reads it but does not rewrite it"),
        ));
    }
    if !state.metadata().partition_columns().is_empty() {
        return Err(Error::sql(
            SqlState::FeatureNotSupported,
            format!("table \"{name}\" is a partitioned Delta table: journeydb reads it but does not write it"),
        ));
    }
    Ok(())
}

/// A DataFusion table over `table`'s loaded version (string columns read as views, like the
/// plain Parquet tables).
pub fn provider(table: &DeltaTable) -> Result<Arc<dyn TableProvider>> {
    let builder = table.table_provider();
    let scan = block(async move { builder.build().await }).map_err(|e| Error::Store(e.to_string()))?;
    Ok(Arc::new(scan))
}

/// Whether a Delta table can have `columns` (0A000 naming the first it cannot).
pub fn check_columns(columns: &Schema) -> Result<()> {
    delta_schema(columns).map(|_| ())
}

/// The Delta schema of `columns` (as [`super::write::file_schema`] makes them).
fn delta_schema(columns: &Schema) -> Result<StructType> {
    let s: std::result::Result<StructType, _> = columns.try_into_kernel();
    s.map_err(|_| {
        // Name the column the kernel refused (its own message carries a backtrace).
        let bad = columns.fields().iter().find(|f| {
            let one = Schema::new(vec![f.as_ref().clone()]);
            let r: std::result::Result<StructType, _> = (&one).try_into_kernel();
            r.is_err()
        });
        let what = match bad {
            Some(f) => format!(
                "column \"{}\" has type {}",
                f.name(),
                crate::pg::types::format_type(crate::pg::types::type_oid(f.data_type()), -1)
                    .unwrap_or_else(|| f.data_type().to_string())
            ),
            None => "a column has a type".to_string(),
        };
        Error::sql(
            SqlState::FeatureNotSupported,
            format!("{what}, which a table cannot hold: tables are Delta Lake tables (no time or interval columns)"),
        )
    })
}

/// Commits version 0 of a new table in folder `rel`: its columns and `adds`. False when the
/// folder is already a Delta table (someone else created it first).
pub fn create(objects: &Objects, rel: &str, name: &str, columns: &Schema, adds: Vec<Add>) -> Result<bool> {
    let schema = delta_schema(columns)?;
    let table = handle(objects, rel)?;
    let builder = CreateBuilder::new()
        .with_log_store(table.log_store())
        .with_table_name(name)
        .with_columns(schema.fields().cloned())
        .with_save_mode(SaveMode::ErrorIfExists)
        .with_actions(adds.into_iter().map(Action::Add));
    match block(async move { builder.await }) {
        Ok(_) => Ok(true),
        Err(DeltaTableError::Transaction { source: TransactionError::VersionAlreadyExists(_) }) => Ok(false),
        Err(e) if e.to_string().contains("already exists") => Ok(false),
        Err(e) => Err(delta_error(e)),
    }
}

/// Commits `adds` to the table in folder `rel` (INSERT, COPY): a later version if others
/// committed meanwhile, as appends do not conflict.
pub fn append(objects: &Objects, rel: &str, adds: Vec<Add>) -> Result<i64> {
    let table = load(objects, rel)?;
    let actions = adds.into_iter().map(Action::Add).collect();
    commit(table, actions, DeltaOperation::Write { mode: SaveMode::Append, partition_by: None, predicate: None }, 30)
}

/// Commits the removal of `removes` and the addition of `adds` as the version after `read`
/// (DELETE, UPDATE, MERGE, TRUNCATE): 40001 if that version exists (the table changed since).
pub fn replace(objects: &Objects, rel: &str, read: i64, removes: &[DeltaFile], adds: Vec<Add>) -> Result<i64> {
    let mut table = handle(objects, rel)?;
    let table = block(async move {
        table.load_version(read.max(0) as u64).await?;
        Ok::<_, DeltaTableError>(table)
    })
    .map_err(delta_error)?;
    let now = chrono::Utc::now().timestamp_millis();
    let mut actions: Vec<Action> = removes
        .iter()
        .map(|f| {
            Action::Remove(Remove {
                path: f.path.clone(),
                data_change: true,
                deletion_timestamp: Some(now),
                extended_file_metadata: Some(true),
                partition_values: Some(HashMap::new()),
                size: Some(f.size),
                tags: None,
                deletion_vector: None,
                base_row_id: None,
                default_row_commit_version: None,
            })
        })
        .collect();
    actions.extend(adds.into_iter().map(Action::Add));
    let op = DeltaOperation::Write { mode: SaveMode::Overwrite, partition_by: None, predicate: None };
    commit(table, actions, op, 0)
}

fn commit(table: DeltaTable, actions: Vec<Action>, op: DeltaOperation, retries: usize) -> Result<i64> {
    let done = block(async move {
        let log_store: LogStoreRef = table.log_store();
        let state = table.snapshot()?;
        let props = CommitProperties::default().with_max_retries(retries);
        let c = CommitBuilder::from(props).with_actions(actions).build(Some(state), log_store, op).await?;
        Ok::<_, DeltaTableError>(c.version())
    });
    match done {
        Ok(v) => Ok(v as i64),
        Err(DeltaTableError::Transaction {
            source: TransactionError::MaxCommitAttempts(_) | TransactionError::CommitConflict(_),
        }) => Err(Error::sql(
            SqlState::SerializationFailure,
            "could not serialize access: the table changed while the statement ran".to_string(),
        )),
        Err(e) => Err(delta_error(e)),
    }
}

/// Delta's VACUUM of the table in folder `rel`: files no version within the retention needs
/// are deleted. `retention` overrides the table's own (`delta.deletedFileRetentionDuration`,
/// 7 days by default); returns how many files went.
pub fn vacuum(objects: &Objects, rel: &str, retention: Option<std::time::Duration>) -> Result<usize> {
    let table = load(objects, rel)?;
    let done = block(async move {
        let mut builder = table.vacuum();
        if let Some(r) = retention {
            let r = chrono::Duration::from_std(r).unwrap_or(chrono::Duration::MAX);
            builder = builder.with_retention_period(r).with_enforce_retention_duration(false);
        }
        let (_, metrics) = builder.await?;
        Ok::<_, DeltaTableError>(metrics.files_deleted.len())
    });
    done.map_err(delta_error)
}

/// Delta's OPTIMIZE (compaction) of the table in folder `rel`: small files rewritten as few
/// large ones in one commit, which readers see as the same rows.
pub fn optimize(objects: &Objects, rel: &str) -> Result<()> {
    let table = load(objects, rel)?;
    block(async move {
        let (_, _metrics) = table.optimize().await?;
        Ok::<_, DeltaTableError>(())
    })
    .map_err(delta_error)
}

/// Writes the pending marker of folder `rel`.
pub fn mark_pending(objects: &Objects, rel: &str) -> Result<()> {
    objects.put(&format!("{rel}/{PENDING}"), Bytes::from_static(b"journeydb"))
}

/// The add action for a data file written at `path` (relative to its table's folder).
pub fn add_action(path: &str, size: u64, metadata: &ParquetMetaData, schema: &SchemaRef) -> Add {
    let stats = stats(metadata, schema);
    add(path, size, chrono::Utc::now().timestamp_millis(), stats)
}

/// The add action for a file already in a plain folder (converted to a Delta table).
pub fn existing_add(path: &str, size: u64, modified_ms: i64, rows: u64) -> Add {
    add(path, size, modified_ms, serde_json::json!({ "numRecords": rows }))
}

fn add(path: &str, size: u64, modified_ms: i64, stats: serde_json::Value) -> Add {
    Add {
        path: path.to_string(),
        partition_values: HashMap::new(),
        size: size as i64,
        modification_time: modified_ms,
        data_change: true,
        stats: Some(stats.to_string()),
        tags: None,
        deletion_vector: None,
        base_row_id: None,
        default_row_commit_version: None,
        clustering_provider: None,
    }
}

/// Delta file statistics from a Parquet footer: rows, and per column the nulls and the
/// smallest and largest values where Delta readers use them for pruning.
fn stats(metadata: &ParquetMetaData, schema: &SchemaRef) -> serde_json::Value {
    let rows: i64 = metadata.row_groups().iter().map(|g| g.num_rows()).sum();
    let (mut mins, mut maxes, mut nulls) = (serde_json::Map::new(), serde_json::Map::new(), serde_json::Map::new());
    let parquet = metadata.file_metadata().schema_descr();
    for field in schema.fields() {
        let Ok(conv) = StatisticsConverter::try_new(field.name(), schema, parquet) else { continue };
        if let Ok(n) = conv.row_group_null_counts(metadata.row_groups().iter())
            && n.null_count() == 0
        {
            nulls.insert(field.name().clone(), n.values().iter().sum::<u64>().into());
        }
        if !matches!(
            field.data_type(),
            DataType::Int8
                | DataType::Int16
                | DataType::Int32
                | DataType::Int64
                | DataType::Float32
                | DataType::Float64
                | DataType::Utf8
                | DataType::Date32
                | DataType::Timestamp(_, _)
        ) {
            continue;
        }
        let fold = |a: datafusion::arrow::array::ArrayRef, keep: std::cmp::Ordering| -> Option<ScalarValue> {
            if a.null_count() > 0 {
                return None;
            }
            let mut best: Option<ScalarValue> = None;
            for i in 0..a.len() {
                let v = ScalarValue::try_from_array(&a, i).ok()?;
                best = match best {
                    Some(b) if b.partial_cmp(&v)? != keep.reverse() => Some(b),
                    _ => Some(v),
                };
            }
            best
        };
        let min =
            conv.row_group_mins(metadata.row_groups().iter()).ok().and_then(|a| fold(a, std::cmp::Ordering::Less));
        let max =
            conv.row_group_maxes(metadata.row_groups().iter()).ok().and_then(|a| fold(a, std::cmp::Ordering::Greater));
        if let (Some(lo), Some(hi)) = (min.and_then(|v| stat_json(&v, false)), max.and_then(|v| stat_json(&v, true))) {
            mins.insert(field.name().clone(), lo);
            maxes.insert(field.name().clone(), hi);
        }
    }
    serde_json::json!({ "numRecords": rows, "minValues": mins, "maxValues": maxes, "nullCount": nulls })
}

/// A statistic as Delta writes it. Timestamps are kept to milliseconds, rounded outwards so
/// the range still holds every value; long strings are left out (a prefix could not bound a
/// maximum).
fn stat_json(v: &ScalarValue, upper: bool) -> Option<serde_json::Value> {
    use serde_json::Value;
    let micros_text = |micros: i64| {
        let ms = if upper {
            micros.div_euclid(1000) + i64::from(micros.rem_euclid(1000) != 0)
        } else {
            micros.div_euclid(1000)
        };
        chrono::DateTime::from_timestamp_millis(ms).map(|t| Value::from(t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()))
    };
    match v {
        ScalarValue::Int8(Some(x)) => Some((*x).into()),
        ScalarValue::Int16(Some(x)) => Some((*x).into()),
        ScalarValue::Int32(Some(x)) => Some((*x).into()),
        ScalarValue::Int64(Some(x)) => Some((*x).into()),
        ScalarValue::Float32(Some(x)) if x.is_finite() => {
            serde_json::Number::from_f64(f64::from(*x)).map(Value::Number)
        }
        ScalarValue::Float64(Some(x)) if x.is_finite() => serde_json::Number::from_f64(*x).map(Value::Number),
        ScalarValue::Utf8(Some(s)) if s.chars().count() <= 32 => Some(s.clone().into()),
        ScalarValue::Date32(Some(d)) => {
            chrono::NaiveDate::from_num_days_from_ce_opt(d + 719_163).map(|d| d.format("%Y-%m-%d").to_string().into())
        }
        ScalarValue::TimestampSecond(Some(s), _) => micros_text(s.checked_mul(1_000_000)?),
        ScalarValue::TimestampMillisecond(Some(m), _) => micros_text(m.checked_mul(1000)?),
        ScalarValue::TimestampMicrosecond(Some(u), _) => micros_text(*u),
        ScalarValue::TimestampNanosecond(Some(n), _) => micros_text(if upper {
            n.div_euclid(1000) + i64::from(n.rem_euclid(1000) != 0)
        } else {
            n.div_euclid(1000)
        }),
        _ => None,
    }
}

/// A deltalake error as ours: a missing or unreachable object is an I/O error (58030).
pub fn delta_error(e: DeltaTableError) -> Error {
    match e {
        DeltaTableError::ObjectStore { source } => source.into(),
        // The kernel reports the object store's failures as text.
        other if other.to_string().contains("object store") => {
            Error::Io(std::io::Error::other(format!("delta table: {other}")))
        }
        other => Error::Store(format!("delta table: {other}")),
    }
}
