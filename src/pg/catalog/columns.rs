//! How a catalog table is made: its columns ([`C`], the PostgreSQL types catalog columns have,
//! as Arrow types) and its rows as values, into one in-memory table.

use datafusion::arrow::array::{ArrayRef, new_empty_array};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{MemTable, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use std::sync::Arc;

/// Column types used by the catalog.
#[derive(Clone, Copy)]
pub(super) enum C {
    Oid,
    Text,
    Bool,
    I16,
    I32,
    I64,
    F32,
    Timestamptz,
    TextArr,
}

impl C {
    pub(super) fn data_type(self) -> DataType {
        match self {
            C::Oid => DataType::UInt32,
            C::Text => DataType::Utf8,
            C::Bool => DataType::Boolean,
            C::I16 => DataType::Int16,
            C::I32 => DataType::Int32,
            C::I64 => DataType::Int64,
            C::F32 => DataType::Float32,
            C::Timestamptz => {
                DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Microsecond, Some("UTC".into()))
            }
            C::TextArr => DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
        }
    }
}

pub(super) fn oid(v: u32) -> ScalarValue {
    ScalarValue::UInt32(Some(v))
}
pub(super) fn text(v: &str) -> ScalarValue {
    ScalarValue::Utf8(Some(v.to_string()))
}
pub(super) fn boolean(v: bool) -> ScalarValue {
    ScalarValue::Boolean(Some(v))
}
pub(super) fn i16v(v: i16) -> ScalarValue {
    ScalarValue::Int16(Some(v))
}
pub(super) fn i32v(v: i32) -> ScalarValue {
    ScalarValue::Int32(Some(v))
}
pub(super) fn null(c: C) -> ScalarValue {
    ScalarValue::try_from(&c.data_type()).unwrap_or(ScalarValue::Null)
}

pub(super) fn mem_table(columns: &[(&str, C)], rows: Vec<Vec<ScalarValue>>) -> Result<Arc<dyn TableProvider>> {
    let schema =
        Arc::new(Schema::new(columns.iter().map(|(n, c)| Field::new(*n, c.data_type(), true)).collect::<Vec<_>>()));
    let arrays: Vec<ArrayRef> = columns
        .iter()
        .enumerate()
        .map(|(i, (_, c))| {
            if rows.is_empty() {
                Ok(new_empty_array(&c.data_type()))
            } else {
                ScalarValue::iter_to_array(rows.iter().map(|r| r[i].clone()))
            }
        })
        .collect::<Result<_>>()?;
    let batch = RecordBatch::try_new(schema.clone(), arrays)?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}
