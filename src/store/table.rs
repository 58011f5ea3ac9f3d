//! One table of the store: a DataFusion `ListingTable` over the table's folder, plus the files
//! whose footers could not be read, which make every scan fail with a clear error.

use super::{FileStamp, PARTITION_TYPE, merge_schemas, partition_columns};
use crate::error::{Error, Result};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::datasource::file_format::parquet::{ParquetFormat, transform_schema_to_view};
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::TableProviderFilterPushDown;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::Expr;
use std::path::Path;
use std::sync::Arc;

#[derive(Debug)]
pub struct StoreTable {
    /// The schema it was found in, and its name there.
    schema: String,
    name: String,
    listing: ListingTable,
    /// Files whose footer could not be read, with the reason.
    unreadable: Vec<(String, String)>,
    /// Rows in the readable files, from their footers.
    rows: u64,
}

impl StoreTable {
    /// Builds table `name` of `schema` over `dir` from its current `files` (non-empty).
    pub fn build(schema: &str, name: &str, dir: &Path, files: &[FileStamp]) -> Result<StoreTable> {
        let mut schemas = vec![];
        let mut unreadable = vec![];
        let mut rows = 0u64;
        for f in files {
            match read_footer(&f.path) {
                Ok((s, n)) => {
                    schemas.push(s);
                    rows += n;
                }
                Err(reason) => {
                    let shown = f.path.strip_prefix(dir.parent().unwrap_or(dir)).unwrap_or(&f.path);
                    tracing::warn!(table = name, file = %shown.display(), %reason, "unreadable parquet file");
                    unreadable.push((shown.display().to_string(), reason));
                }
            }
        }
        if schemas.is_empty() {
            let (file, reason) = unreadable.first().cloned().unwrap_or_default();
            return Err(Error::Store(format!("table \"{name}\" has no readable parquet file: \"{file}\": {reason}")));
        }
        let file_schema = transform_schema_to_view(&merge_schemas(&schemas)?);
        let partition_cols: Vec<(String, datafusion::arrow::datatypes::DataType)> =
            partition_columns(dir, &files[0].path).into_iter().map(|c| (c, PARTITION_TYPE)).collect();
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(".parquet")
            .with_table_partition_cols(partition_cols);
        let url = ListingTableUrl::parse(format!("{}/", dir.display()))?;
        let config = ListingTableConfig::new(url).with_listing_options(options).with_schema(Arc::new(file_schema));
        let listing = ListingTable::try_new(config)?;
        Ok(StoreTable { schema: schema.to_string(), name: name.to_string(), listing, unreadable, rows })
    }

    /// One file of a table, read with the table's columns (those the file lacks are NULL).
    pub fn single_file(path: &Path, schema: SchemaRef) -> Result<ListingTable> {
        let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
        let url = ListingTableUrl::parse(path.display().to_string())?;
        let config = ListingTableConfig::new(url).with_listing_options(options).with_schema(schema);
        Ok(ListingTable::try_new(config)?)
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

/// A file's schema and row count, from its footer.
fn read_footer(path: &Path) -> std::result::Result<(SchemaRef, u64), String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| e.to_string())?;
    let rows = builder.metadata().file_metadata().num_rows().max(0) as u64;
    Ok((builder.schema().clone(), rows))
}

#[async_trait::async_trait]
impl TableProvider for StoreTable {
    fn schema(&self) -> SchemaRef {
        self.listing.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> datafusion::error::Result<Vec<TableProviderFilterPushDown>> {
        self.listing.supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        self.check_readable()?;
        self.listing.scan(state, projection, filters, limit).await
    }

    async fn scan_with_args<'a>(
        &self,
        state: &dyn Session,
        args: datafusion::catalog::ScanArgs<'a>,
    ) -> datafusion::error::Result<datafusion::catalog::ScanResult> {
        self.check_readable()?;
        self.listing.scan_with_args(state, args).await
    }
}
