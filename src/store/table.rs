//! One table of the store: a DataFusion `ListingTable` over a plain folder (plus the files
//! whose footers could not be read, which make every scan fail with a clear error), or a
//! Delta table read through its log.

use super::objects::{Objects, block};
use super::{FileStamp, PARTITION_TYPE, delta, merge_schemas, partition_columns};
use crate::error::{Error, Result};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::datasource::file_format::parquet::{ParquetFormat, transform_schema_to_view};
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::TableProviderFilterPushDown;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::Expr;
use std::sync::Arc;

#[derive(Debug)]
pub struct StoreTable {
    /// The schema it was found in, and its name there.
    schema: String,
    name: String,
    provider: Arc<dyn TableProvider>,
    /// The Delta version read, for a Delta table.
    version: Option<i64>,
    /// Files whose footer could not be read, with the reason.
    unreadable: Vec<(String, String)>,
    /// Rows in the readable files, from their footers or the Delta log.
    rows: u64,
    /// A Delta table whose rows are its files' rows (no deletion vectors, column mapping or
    /// partition values): its version's files, read as a plain Parquet scan, which a cluster can
    /// run (a Delta scan cannot travel); made the first time a cluster session scans it.
    as_files: Option<FilesScan>,
}

/// A Delta version's files, and the plain Parquet table over them once it is made.
#[derive(Debug)]
struct FilesScan {
    objects: Objects,
    rel: String,
    files: Vec<delta::DeltaFile>,
    table: std::sync::OnceLock<Arc<dyn TableProvider>>,
}

impl StoreTable {
    /// Builds plain table `name` of `schema` over folder `rel` from its current `files` (non-empty).
    pub fn plain(schema: &str, name: &str, objects: &Objects, rel: &str, files: &[FileStamp]) -> Result<StoreTable> {
        let mut schemas = vec![];
        let mut unreadable = vec![];
        let mut rows = 0u64;
        for (f, footer) in files.iter().zip(read_footers(objects, rel, files)) {
            match footer {
                Ok((s, n)) => {
                    schemas.push(s);
                    rows += n;
                }
                Err(reason) => {
                    let shown = format!("{name}/{}", f.path);
                    tracing::warn!(table = name, file = %shown, %reason, "unreadable parquet file");
                    unreadable.push((shown, reason));
                }
            }
        }
        if schemas.is_empty() {
            let (file, reason) = unreadable.first().cloned().unwrap_or_default();
            return Err(Error::Store(format!("table \"{name}\" has no readable parquet file: \"{file}\": {reason}")));
        }
        let file_schema = transform_schema_to_view(&merge_schemas(&schemas)?);
        let partition_cols: Vec<(String, datafusion::arrow::datatypes::DataType)> =
            partition_columns(&files[0].path).into_iter().map(|c| (c, PARTITION_TYPE)).collect();
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(".parquet")
            .with_table_partition_cols(partition_cols);
        let url = ListingTableUrl::parse(objects.url(rel, true).as_str())?;
        let config = ListingTableConfig::new(url).with_listing_options(options).with_schema(Arc::new(file_schema));
        let listing = ListingTable::try_new(config)?;
        Ok(StoreTable {
            schema: schema.to_string(),
            name: name.to_string(),
            provider: Arc::new(listing),
            version: None,
            unreadable,
            rows,
            as_files: None,
        })
    }

    /// Builds Delta table `name` of `schema` in folder `rel`, at its newest version.
    pub fn delta(schema: &str, name: &str, objects: &Objects, rel: &str) -> Result<StoreTable> {
        let table = delta::load(objects, rel)?;
        let files = delta::files(&table)?;
        let rows = files.iter().map(|f| f.rows.unwrap_or(0)).sum();
        let provider = delta::provider(&table)?;
        let as_files = delta::check_rewritable(&table, name).is_ok().then(|| FilesScan {
            objects: objects.clone(),
            rel: rel.to_string(),
            files,
            table: Default::default(),
        });
        Ok(StoreTable {
            schema: schema.to_string(),
            name: name.to_string(),
            provider,
            version: table.version().map(|v| v as i64),
            unreadable: vec![],
            rows,
            as_files,
        })
    }

    /// One file of a table, read with the table's columns (those the file lacks are NULL).
    pub fn single_file(url: &url::Url, schema: SchemaRef) -> Result<ListingTable> {
        let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
        let url = ListingTableUrl::parse(url.as_str())?;
        let config = ListingTableConfig::new(url).with_listing_options(options).with_schema(schema);
        Ok(ListingTable::try_new(config)?)
    }

    /// The Delta version this table reads (None for a plain folder).
    pub fn version(&self) -> Option<i64> {
        self.version
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn schema_name(&self) -> &str {
        &self.schema
    }

    /// The rows of the table's readable files, as their footers count them (what `pg_class.reltuples`
    /// and `pg_stat_user_tables.n_live_tup` show).
    pub fn row_count(&self) -> u64 {
        self.rows
    }

    /// What a scan in `state` reads: a Delta table's files as plain Parquet when the session's
    /// plans go to a cluster and the table allows it, else the table's own provider.
    fn reader(&self, state: &dyn Session) -> datafusion::error::Result<&Arc<dyn TableProvider>> {
        let cluster = state
            .config_options()
            .extensions
            .get::<crate::cluster::distribute::ClusterOptions>()
            .is_some_and(|o| o.active());
        match &self.as_files {
            Some(f) if cluster => {
                if let Some(t) = f.table.get() {
                    return Ok(t);
                }
                let made = files_table(&f.objects, &f.rel, &f.files, self.provider.schema())?;
                Ok(f.table.get_or_init(|| made))
            }
            _ => Ok(&self.provider),
        }
    }

    fn check_readable(&self) -> datafusion::error::Result<()> {
        match self.unreadable.first() {
            None => Ok(()),
            Some((file, reason)) => Err(DataFusionError::External(Box::new(Error::Store(format!(
                "could not read table \"{}\": file \"{}\" is not valid parquet: {}{}",
                self.name,
                file,
                reason,
                if self.unreadable.len() > 1 {
                    format!(" (and {} more)", self.unreadable.len() - 1)
                } else {
                    String::new()
                }
            ))))),
        }
    }
}

/// `files` of folder `rel` read as one plain Parquet table of `schema` (no table when there are
/// none).
fn files_table(
    objects: &Objects,
    rel: &str,
    files: &[delta::DeltaFile],
    schema: SchemaRef,
) -> datafusion::error::Result<Arc<dyn TableProvider>> {
    if files.is_empty() {
        return Ok(Arc::new(datafusion::datasource::empty::EmptyTable::new(schema)));
    }
    let urls = files
        .iter()
        .map(|f| ListingTableUrl::parse(objects.url(&format!("{rel}/{}", f.path), false).as_str()))
        .collect::<datafusion::error::Result<Vec<_>>>()?;
    let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls).with_listing_options(options).with_schema(schema);
    Ok(Arc::new(ListingTable::try_new(config)?))
}

/// Each file's rows, from its footer (0 when it cannot be read).
pub(super) fn footer_rows(objects: &Objects, rel: &str, files: &[FileStamp]) -> Vec<u64> {
    read_footers(objects, rel, files).into_iter().map(|r| r.map(|(_, n)| n).unwrap_or(0)).collect()
}

/// Each file's schema and row count, from its footer (a few read at a time).
fn read_footers(
    objects: &Objects,
    rel: &str,
    files: &[FileStamp],
) -> Vec<std::result::Result<(SchemaRef, u64), String>> {
    use futures::StreamExt;
    let store = objects.store().clone();
    let paths: Vec<_> = files.iter().map(|f| (objects.path(&format!("{rel}/{}", f.path)), f.size)).collect();
    block(async move {
        futures::stream::iter(paths)
            .map(|(path, size)| {
                let store = store.clone();
                async move { read_footer(store.as_ref(), &path, size).await }
            })
            .buffered(8)
            .collect::<Vec<_>>()
            .await
    })
}

/// A file's schema and row count: its tail is read, then more if the footer is longer.
async fn read_footer(
    store: &dyn object_store::ObjectStore,
    path: &object_store::path::Path,
    size: u64,
) -> std::result::Result<(SchemaRef, u64), String> {
    use datafusion::parquet::errors::ParquetError;
    use datafusion::parquet::file::metadata::ParquetMetaDataReader;
    use object_store::ObjectStoreExt;
    let mut want = size.min(64 * 1024);
    loop {
        let tail = store.get_range(path, size - want..size).await.map_err(|e| e.to_string())?;
        let mut reader = ParquetMetaDataReader::new();
        match reader.try_parse_sized(&tail, size).and_then(|_| reader.finish()) {
            Ok(metadata) => {
                let file = metadata.file_metadata();
                let schema =
                    datafusion::parquet::arrow::parquet_to_arrow_schema(file.schema_descr(), file.key_value_metadata())
                        .map_err(|e| e.to_string())?;
                return Ok((Arc::new(schema), file.num_rows().max(0) as u64));
            }
            Err(ParquetError::NeedMoreData(n)) if (n as u64) > want && (n as u64) <= size => want = n as u64,
            Err(e) => return Err(e.to_string()),
        }
    }
}

#[async_trait::async_trait]
impl TableProvider for StoreTable {
    fn schema(&self) -> SchemaRef {
        self.provider.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> datafusion::error::Result<Vec<TableProviderFilterPushDown>> {
        let pushed = self.provider.supports_filters_pushdown(filters)?;
        if self.version.is_none() {
            return Ok(pushed);
        }
        // The Delta scan skips files and row groups by a filter, but its rows are checked again
        // above it: PostgreSQL's NULL semantics are the plan's, not the scan's.
        Ok(pushed
            .into_iter()
            .map(|p| match p {
                TableProviderFilterPushDown::Exact => TableProviderFilterPushDown::Inexact,
                other => other,
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        self.check_readable()?;
        self.reader(state)?.scan(state, projection, filters, limit).await
    }

    async fn scan_with_args<'a>(
        &self,
        state: &dyn Session,
        args: datafusion::catalog::ScanArgs<'a>,
    ) -> datafusion::error::Result<datafusion::catalog::ScanResult> {
        self.check_readable()?;
        self.reader(state)?.scan_with_args(state, args).await
    }
}

/// One Parquet scan over the folders `rels` (tables of one shape, such as GA4's daily tables),
/// with `schema` (their merged schema): a single scan node however many tables, so that a
/// relation over hundreds of them plans as one table.
pub(super) fn union_scan(objects: &Objects, rels: &[String], schema: SchemaRef) -> Result<Arc<dyn TableProvider>> {
    let urls = rels
        .iter()
        .map(|rel| ListingTableUrl::parse(objects.url(rel, true).as_str()))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls).with_listing_options(options).with_schema(schema);
    Ok(Arc::new(ListingTable::try_new(config)?))
}
