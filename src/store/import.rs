//! `journeydb import TABLE FILE...`: CSV (with a header), JSON lines and Parquet files into a
//! table of the store, all files in one atomic write.
//!
//! - A new table takes its columns from the files: CSV and JSON types are inferred from every
//!   row (integers, floats, booleans, dates, timestamps, else text); Parquet keeps its schema.
//!   Files with different columns give the union (a column missing from a file is NULL there);
//!   a column whose types disagree across files is an error.
//! - An existing table keeps its columns: the files' columns are matched by name and cast to
//!   the table's types; a column the table lacks is an error, a column the file lacks is NULL.
//! - A malformed row stops the import with the file, line and column, and nothing is written:
//!   the rows go to one new file under a `.tmp` name, renamed into the table at the end.

use super::{STORE_SCHEMA, Store, merge_schemas};
use crate::error::{Error, Result, SqlState};
use datafusion::arrow::array::{ArrayRef, RecordBatch, new_null_array};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::util::display::FormatOptions;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Rows per batch read from a file.
const BATCH_ROWS: usize = 8192;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Json,
    Parquet,
}

fn format_of(path: &Path) -> Result<Format> {
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).unwrap_or_default();
    match ext.as_str() {
        "csv" => Ok(Format::Csv),
        "json" | "jsonl" | "ndjson" => Ok(Format::Json),
        "parquet" => Ok(Format::Parquet),
        _ => Err(Error::sql(
            SqlState::FeatureNotSupported,
            format!(
                "cannot import \"{}\": the name must end in .csv, .jsonl, .ndjson, .json or .parquet",
                path.display()
            ),
        )),
    }
}

fn bad_file(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::sql(SqlState::BadCopyFileFormat, format!("{}: {what}", path.display()))
}

/// The columns a file has (inferred for CSV and JSON).
fn file_schema(path: &Path, format: Format) -> Result<SchemaRef> {
    let file = File::open(path).map_err(|e| bad_file(path, e))?;
    Ok(match format {
        Format::Csv => {
            let (schema, _) = datafusion::arrow::csv::reader::Format::default()
                .with_header(true)
                .infer_schema(file, None)
                .map_err(|e| bad_file(path, e))?;
            if schema.fields().is_empty() {
                return Err(bad_file(path, "no header line"));
            }
            Arc::new(schema)
        }
        Format::Json => {
            let (schema, _) =
                datafusion::arrow::json::reader::infer_json_schema_from_seekable(BufReader::new(file), None)
                    .map_err(|e| bad_file(path, e))?;
            Arc::new(schema)
        }
        Format::Parquet => {
            ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| bad_file(path, e))?.schema().clone()
        }
    })
}

/// Reads `path` as batches of `schema` (the file's own columns with the types to read them as),
/// handing each to `sink`.
fn read_file(
    path: &Path,
    format: Format,
    schema: SchemaRef,
    sink: &mut dyn FnMut(RecordBatch) -> Result<()>,
) -> Result<()> {
    let file = File::open(path).map_err(|e| bad_file(path, e))?;
    match format {
        Format::Csv => {
            let reader = datafusion::arrow::csv::ReaderBuilder::new(schema.clone())
                .with_header(true)
                .with_batch_size(BATCH_ROWS)
                .build(file)
                .map_err(|e| bad_file(path, e))?;
            for batch in reader {
                sink(batch.map_err(|e| bad_file(path, csv_message(&e.to_string(), &schema)))?)?;
            }
        }
        Format::Json => {
            let mut reader = BufReader::new(file);
            let decoder = datafusion::arrow::json::ReaderBuilder::new(schema.clone())
                .with_batch_size(BATCH_ROWS)
                .build(&mut reader)
                .map_err(|e| bad_file(path, e))?;
            for batch in decoder {
                match batch {
                    Ok(b) => sink(b)?,
                    Err(e) => return Err(json_error(path, &schema, &e.to_string())),
                }
            }
        }
        Format::Parquet => {
            let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                .map_err(|e| bad_file(path, e))?
                .with_batch_size(BATCH_ROWS)
                .build()
                .map_err(|e| bad_file(path, e))?;
            for batch in reader {
                sink(batch.map_err(|e| bad_file(path, e))?)?;
            }
        }
    }
    Ok(())
}

/// arrow-csv names columns by position and counts lines from 0 after the header: name the
/// column, count lines as a text editor does.
fn csv_message(message: &str, schema: &Schema) -> String {
    let mut out = message.to_string();
    if let Some(i) = message.find("for column ")
        && let Some(n) = message[i + 11..].split_whitespace().next().and_then(|n| n.parse::<usize>().ok())
        && let Some(f) = schema.fields().get(n)
    {
        out = out.replacen(&format!("for column {n}"), &format!("for column \"{}\"", f.name()), 1);
    }
    if let Some(i) = out.find("at line ")
        && let Some(n) = out[i + 8..].split(|c: char| !c.is_ascii_digit()).next().and_then(|n| n.parse::<u64>().ok())
    {
        // arrow-csv counts the file's lines from 0 (the header is line 0).
        out = format!("{}at line {}", &out[..i], n + 1);
    }
    out
}

/// The line of a JSON file the decoder failed on, found by reading the lines one by one.
fn json_error(path: &Path, schema: &SchemaRef, message: &str) -> Error {
    let Ok(file) = File::open(path) else { return bad_file(path, message) };
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let one = datafusion::arrow::json::ReaderBuilder::new(schema.clone())
            .build(std::io::Cursor::new(line.into_bytes()))
            .and_then(|r| r.collect::<Result<Vec<_>, _>>());
        if let Err(e) = one {
            return bad_file(path, format!("line {}: {e}", i + 1));
        }
    }
    bad_file(path, message)
}

/// Casts a file's batch to the table's columns (by name), failing with the row and column of
/// the first value that does not fit.
fn to_table(path: &Path, batch: &RecordBatch, table: &SchemaRef, first_row: u64) -> Result<RecordBatch> {
    let strict = CastOptions { safe: false, format_options: FormatOptions::default() };
    let columns = table
        .fields()
        .iter()
        .map(|f| match batch.schema().index_of(f.name()) {
            Err(_) => Ok(new_null_array(f.data_type(), batch.num_rows())),
            Ok(i) => {
                let c = batch.column(i);
                if c.data_type() == f.data_type() {
                    return Ok(c.clone());
                }
                cast_with_options(c, f.data_type(), &strict).map_err(|_| {
                    // Find the row: cast one value at a time.
                    let row = (0..c.len())
                        .find(|r| cast_with_options(&c.slice(*r, 1), f.data_type(), &strict).is_err())
                        .unwrap_or(0);
                    let shown = datafusion::arrow::util::display::array_value_to_string(c, row).unwrap_or_default();
                    Error::sql(
                        SqlState::InvalidTextRepresentation,
                        format!(
                            "{}: row {}, column \"{}\": \"{shown}\" is not a valid {}",
                            path.display(),
                            first_row + row as u64 + 1,
                            f.name(),
                            f.data_type()
                        ),
                    )
                })
            }
        })
        .collect::<Result<Vec<ArrayRef>>>()?;
    Ok(RecordBatch::try_new(table.clone(), columns)?)
}

/// Imports `files` into table `table` of schema `schema`; returns the rows added.
pub fn import(store: &Store, schema: &str, table: &str, files: &[PathBuf]) -> Result<u64> {
    if files.is_empty() {
        return Err(Error::InvalidParameter("import needs at least one file".into()));
    }
    let formats = files.iter().map(|f| format_of(f)).collect::<Result<Vec<_>>>()?;
    let file_schemas = files.iter().zip(&formats).map(|(f, fmt)| file_schema(f, *fmt)).collect::<Result<Vec<_>>>()?;
    let existing = store.table_in(schema, table)?;
    let table_schema: SchemaRef = match &existing {
        Some(t) => datafusion::catalog::TableProvider::schema(t.as_ref()),
        None => {
            super::check_new_name("table", table)?;
            let widened = widen(&file_schemas, &formats);
            Arc::new(merge_schemas(&widened).map_err(|e| Error::sql(SqlState::DatatypeMismatch, e.to_string()))?)
        }
    };
    for (f, s) in files.iter().zip(&file_schemas) {
        if let Some(extra) = s.fields().iter().find(|c| table_schema.index_of(c.name()).is_err()) {
            return Err(Error::sql(
                SqlState::UndefinedColumn,
                format!("{}: column \"{}\" of relation \"{table}\" does not exist", f.display(), extra.name()),
            ));
        }
    }
    let mut staged = None;
    let mut writer = match existing {
        // Issue 25: a plain file at a partitioned table's top broke every later query (the
        // writer refuses partitioned folders).
        Some(_) => store.writer(schema, table, &table_schema)?,
        None => {
            let s = store.stage_new(schema, table, &table_schema)?;
            let w = s.writer()?;
            staged = Some(s);
            w
        }
    };
    let target = writer.schema().clone();
    for ((f, fmt), s) in files.iter().zip(&formats).zip(&file_schemas) {
        // A file is read with its own columns, typed as the table has them when they are text
        // formats (so "007" stays text in a text column); Parquet as written, then cast.
        let read_as: SchemaRef = match fmt {
            Format::Parquet => s.clone(),
            _ => Arc::new(Schema::new(
                s.fields()
                    .iter()
                    .map(|c| {
                        let dt = table_schema
                            .field_with_name(c.name())
                            .map(|t| t.data_type().clone())
                            .unwrap_or(DataType::Utf8);
                        Field::new(c.name(), read_type(&dt), true)
                    })
                    .collect::<Vec<_>>(),
            )),
        };
        let mut rows = 0u64;
        read_file(f, *fmt, read_as, &mut |batch| {
            let b = to_table(f, &batch, &target, rows)?;
            rows += b.num_rows() as u64;
            writer.write(&b)
        })?;
    }
    match staged {
        Some(mut s) => {
            let n = writer.rows();
            s.add(writer)?;
            store.create_table(schema, table, s, false)?;
            Ok(n)
        }
        None => store.append_file(schema, table, writer),
    }
}

/// Inferred (CSV, JSON) columns whose types differ across files are widened: integers and
/// floats to floats, anything else to text. Parquet types are kept (a clash is an error).
fn widen(schemas: &[SchemaRef], formats: &[Format]) -> Vec<SchemaRef> {
    let mut types: Vec<(String, DataType)> = vec![];
    for (s, f) in schemas.iter().zip(formats) {
        if *f == Format::Parquet {
            continue;
        }
        for c in s.fields() {
            match types.iter_mut().find(|(n, _)| n == c.name()) {
                None => types.push((c.name().clone(), c.data_type().clone())),
                Some((_, t)) if t == c.data_type() || c.data_type() == &DataType::Null => {}
                Some((_, t)) if *t == DataType::Null => *t = c.data_type().clone(),
                Some((_, t)) if t.is_numeric() && c.data_type().is_numeric() => *t = DataType::Float64,
                Some((_, t)) => *t = DataType::Utf8,
            }
        }
    }
    schemas
        .iter()
        .zip(formats)
        .map(|(s, f)| {
            if *f == Format::Parquet {
                return s.clone();
            }
            Arc::new(Schema::new(
                s.fields()
                    .iter()
                    .map(|c| {
                        let dt =
                            types.iter().find(|(n, _)| n == c.name()).map(|(_, t)| t.clone()).unwrap_or(DataType::Utf8);
                        // A column with no values anywhere is text.
                        let dt = if dt == DataType::Null { DataType::Utf8 } else { dt };
                        Field::new(c.name(), dt, true)
                    })
                    .collect::<Vec<_>>(),
            )) as SchemaRef
        })
        .collect()
}

/// The type a text format's column is parsed as, for a table column of type `dt`.
fn read_type(dt: &DataType) -> DataType {
    match dt {
        DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
        other => other.clone(),
    }
}

/// Imports into `public` unless `table` is `schema.table`.
pub fn import_named(store: &Store, table: &str, files: &[PathBuf]) -> Result<u64> {
    let (schema, name) = table.split_once('.').unwrap_or((STORE_SCHEMA, table));
    import(store, schema, name, files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, body).expect("write");
        p
    }

    /// Where file `path` of table `table` is on disk.
    fn local(store: &Store, table: &str, path: &str) -> PathBuf {
        store.objects().local_path(&format!("{table}/{path}")).expect("local")
    }

    fn count(store: &Store, table: &str) -> usize {
        store
            .table_files(STORE_SCHEMA, table)
            .expect("files")
            .files
            .iter()
            .map(|f| {
                ParquetRecordBatchReaderBuilder::try_new(File::open(local(store, table, &f.path)).expect("open"))
                    .expect("parquet")
                    .metadata()
                    .file_metadata()
                    .num_rows() as usize
            })
            .sum()
    }

    /// Issue 25: importing into a hive-partitioned table wrote a plain file at its top, after
    /// which every query failed; it is refused as INSERT is, and nothing is written.
    #[test]
    fn import_into_a_partitioned_table_is_refused() {
        let data = tempfile::tempdir().expect("tmp");
        let files = tempfile::tempdir().expect("tmp");
        let part = data.path().join("visits").join("day=2025-01-01");
        std::fs::create_dir_all(&part).expect("mkdir");
        let store = Store::open(data.path()).expect("store");
        let csv = write(files.path(), "a.csv", "id\n1\n");
        import_named(&store, "seed", std::slice::from_ref(&csv)).expect("a plain table");
        let file = store.table_files(STORE_SCHEMA, "seed").expect("files").files.remove(0).path;
        std::fs::copy(local(&store, "seed", &file), part.join("part-0.parquet")).expect("copy");
        let store = Store::open(data.path()).expect("store");
        let files = || super::super::list_data_files(store.objects(), "visits").expect("files").len();
        let before = files();
        let err = import_named(&store, "visits", &[csv]).expect_err("partitioned");
        assert_eq!(crate::error::to_pg_error(&err).code, crate::error::SqlState::FeatureNotSupported, "{err}");
        assert_eq!(files(), before);
        assert!(!data.path().join("visits").join("_delta_log").exists(), "not made a Delta table either");
    }

    #[test]
    fn csv_and_json_create_then_append_with_inferred_types() {
        let data = tempfile::tempdir().expect("tmp");
        let files = tempfile::tempdir().expect("tmp");
        let store = Store::open(data.path()).expect("store");
        let csv = write(files.path(), "a.csv", "id,name,at,score\n1,ada,2025-01-01T10:00:00,1.5\n2,\"b,ob\",,\n");
        let json = write(files.path(), "b.jsonl", "{\"id\": 3, \"name\": \"cy\"}\n\n{\"id\": 4, \"score\": 2}\n");
        assert_eq!(import_named(&store, "people", &[csv, json.clone()]).expect("import"), 4);
        let t = store.table("people").expect("ok").expect("table");
        let schema = datafusion::catalog::TableProvider::schema(t.as_ref());
        let types: Vec<String> = schema.fields().iter().map(|f| format!("{}:{}", f.name(), f.data_type())).collect();
        assert_eq!(types, ["id:Int64", "name:Utf8View", "at:Timestamp(µs)", "score:Float64"]);
        // Appending: by name, the table's types, missing columns NULL.
        assert_eq!(import_named(&store, "people", &[json]).expect("append"), 2);
        assert_eq!(count(&store, "people"), 6);
    }

    #[test]
    fn parquet_files_keep_their_types_and_append_by_name() {
        use datafusion::arrow::array::{Int32Array, StringArray};
        let data = tempfile::tempdir().expect("tmp");
        let files = tempfile::tempdir().expect("tmp");
        let store = Store::open(data.path()).expect("store");
        let schema = Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, true),
            Field::new("n", DataType::Int32, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(StringArray::from(vec!["a", "b"])), Arc::new(Int32Array::from(vec![1, 2]))],
        )
        .expect("batch");
        let path = files.path().join("p.parquet");
        let mut w = datafusion::parquet::arrow::ArrowWriter::try_new(File::create(&path).expect("file"), schema, None)
            .expect("writer");
        w.write(&batch).expect("write");
        w.close().expect("close");
        assert_eq!(import_named(&store, "p", std::slice::from_ref(&path)).expect("import"), 2);
        let t = store.table("p").expect("ok").expect("table");
        let types: Vec<String> = datafusion::catalog::TableProvider::schema(t.as_ref())
            .fields()
            .iter()
            .map(|f| format!("{}:{}", f.name(), f.data_type()))
            .collect();
        assert_eq!(types, ["name:Utf8View", "n:Int32"]);
        // A CSV whose columns come in another order appends by name.
        let csv = write(files.path(), "more.csv", "n,name\n3,c\n");
        assert_eq!(import_named(&store, "p", &[csv]).expect("append"), 1);
        assert_eq!(count(&store, "p"), 3);
    }

    #[test]
    fn malformed_rows_name_file_line_and_column_and_write_nothing() {
        let data = tempfile::tempdir().expect("tmp");
        let files = tempfile::tempdir().expect("tmp");
        let store = Store::open(data.path()).expect("store");
        let good = write(files.path(), "good.csv", "id,name\n1,a\n2,b\n");
        assert_eq!(import_named(&store, "t", std::slice::from_ref(&good)).expect("import"), 2);
        let bad = write(files.path(), "bad.csv", "id,name\n3,c\nfour,d\n");
        let err = import_named(&store, "t", &[good.clone(), bad]).expect_err("bad id");
        let msg = err.to_string();
        assert!(msg.contains("bad.csv") && msg.contains("\"id\"") && msg.contains("line 3"), "{msg}");
        let bad_json = write(files.path(), "bad.jsonl", "{\"id\": 5}\n{\"id\": \"x\"}\n");
        let msg = import_named(&store, "t", &[bad_json]).expect_err("bad json").to_string();
        assert!(msg.contains("bad.jsonl") && msg.contains("line 2"), "{msg}");
        let extra = write(files.path(), "extra.csv", "id,color\n5,red\n");
        let msg = import_named(&store, "t", &[extra]).expect_err("extra column").to_string();
        assert!(msg.contains("column \"color\""), "{msg}");
        assert_eq!(count(&store, "t"), 2, "nothing written by the failed imports");
        assert_eq!(store.table_files(STORE_SCHEMA, "t").expect("files").files.len(), 1);
        let on_disk: Vec<String> = std::fs::read_dir(data.path().join("t"))
            .expect("dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n != "_delta_log")
            .collect();
        assert_eq!(on_disk.len(), 1, "no staged or orphaned file left: {on_disk:?}");
        let msg = import_named(&store, "u", &[write(files.path(), "x.txt", "a")]).expect_err("format").to_string();
        assert!(msg.contains("must end in .csv"), "{msg}");
    }
}
