//! `ga4_param`: one value of a GA4 BigQuery export's nested `event_params`.
//!
//! # Contract
//!
//! ```sql
//! ga4_param(event_params, key) -> text
//! ```
//!
//! `event_params` is GA4's list of structs `key`, `value` with `value` a struct of
//! `string_value`, `int_value`, `float_value` and `double_value` (any of them may be missing
//! from the Parquet schema). The answer is the first entry whose `key` equals `key`: its
//! `string_value`, else its `int_value`, else its `double_value`, else its `float_value`, as
//! text (numbers in their shortest exact decimal form: `1718000000`, `12.5`). NULL when the
//! list is NULL, has no such key, or the entry's values are all NULL; NULL `key` gives NULL.

use crate::docs::{FunctionDoc, Kind};
use crate::error::ArgumentError;
use datafusion::arrow::array::{
    Array, ArrayBuilder, ArrayRef, AsArray, Float64Builder, GenericListArray, Int64Builder, ListArray, OffsetSizeTrait,
    StringArray, StringBuilder, StructArray,
};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer, ScalarBuffer};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Fields, Float32Type, Float64Type, Int64Type};
use datafusion::common::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};
use std::sync::Arc;

pub const NAME: &str = "ga4_param";

/// This function's reference ([`crate::docs`]).
pub const DOC: FunctionDoc = FunctionDoc {
    name: NAME,
    kind: Kind::Scalar,
    usage: "ga4_param(event_params, key)",
    result: "text",
    positional: "event_params anyelement, key text",
    options: &[],
    summary: "One value of a GA4 export's nested event_params, by key, as text.",
    description: "the first `event_params` entry whose `key` is `key`: its `string_value`, else `int_value`, else `double_value`, else `float_value`, as text (numbers in their shortest exact form); NULL without one (`ga4_param(event_params, 'page_location')`, `ga4_param(event_params, 'ga_session_id')`)",
    contract: "`udfs/src/scalar/ga4_param.rs`",
};

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Ga4Param {
    signature: Signature,
}

impl Default for Ga4Param {
    fn default() -> Self {
        Self::new()
    }
}

impl Ga4Param {
    pub fn new() -> Self {
        Ga4Param { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

fn bad(arg: &str, msg: String) -> datafusion::error::DataFusionError {
    ArgumentError::new(NAME, arg, msg).into_datafusion()
}

/// Whether `t` is a list of structs with a text `key` and a struct `value`.
fn is_params(t: &DataType) -> bool {
    let item = match t {
        DataType::List(f) | DataType::LargeList(f) => f,
        _ => return false,
    };
    let DataType::Struct(fields) = item.data_type() else { return false };
    let key = fields.iter().any(|f| {
        f.name() == "key" && matches!(f.data_type(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
    });
    let value = fields.iter().any(|f| f.name() == "value" && matches!(f.data_type(), DataType::Struct(_)));
    key && value
}

impl ScalarUDFImpl for Ga4Param {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if arg_types.len() != 2 {
            return Err(bad("key", format!("takes 2 arguments (event_params, key), got {}", arg_types.len())));
        }
        if !is_params(&arg_types[0]) && arg_types[0] != DataType::Null {
            return Err(bad(
                "event_params",
                format!(
                    "must be GA4's list of struct(key, value struct(string_value, int_value, ...)), not {}",
                    arg_types[0]
                ),
            ));
        }
        let key = match &arg_types[1] {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => DataType::Utf8,
            DataType::Dictionary(_, v) if v.is_string() => DataType::Utf8,
            other => return Err(bad("key", format!("must be text, not {other}"))),
        };
        Ok(vec![arg_types[0].clone(), key])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let params = args.args[0].to_array(rows)?;
        let keys = cast(&args.args[1].to_array(rows)?, &DataType::Utf8)?;
        let keys = keys.as_string::<i32>();
        let out = match params.data_type() {
            DataType::List(_) => lookup(params.as_list::<i32>(), keys)?,
            DataType::LargeList(_) => lookup(params.as_list::<i64>(), keys)?,
            _ => StringArray::new_null(rows),
        };
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// A text column read as it is stored (a Parquet scan gives views): no copy to another
/// encoding for every call.
enum Texts<'a> {
    Utf8(&'a StringArray),
    Large(&'a datafusion::arrow::array::LargeStringArray),
    View(&'a datafusion::arrow::array::StringViewArray),
}

impl<'a> Texts<'a> {
    /// `array` as text, or none for another type.
    fn of(array: &'a ArrayRef) -> Option<Texts<'a>> {
        match array.data_type() {
            DataType::Utf8 => Some(Texts::Utf8(array.as_string::<i32>())),
            DataType::LargeUtf8 => Some(Texts::Large(array.as_string::<i64>())),
            DataType::Utf8View => Some(Texts::View(array.as_string_view())),
            _ => None,
        }
    }

    /// Row `i`, or none when NULL.
    fn get(&self, i: usize) -> Option<&'a str> {
        match self {
            Texts::Utf8(a) => a.is_valid(i).then(|| a.value(i)),
            Texts::Large(a) => a.is_valid(i).then(|| a.value(i)),
            Texts::View(a) => a.is_valid(i).then(|| a.value(i)),
        }
    }
}

/// The value columns of GA4's `value` struct that the entries have, over all entries: text as
/// stored, numbers cast only when not already of the export's types.
struct Values {
    string: Option<ArrayRef>,
    int: Option<ArrayRef>,
    double: Option<ArrayRef>,
    float: Option<ArrayRef>,
}

impl Values {
    fn of(value: &StructArray) -> Result<Values> {
        let column = |name: &str, to: &DataType| -> Result<Option<ArrayRef>> {
            match value.column_by_name(name) {
                None => Ok(None),
                Some(c) if c.data_type() == to => Ok(Some(c.clone())),
                Some(c) if matches!(to, DataType::Utf8) && Texts::of(c).is_some() => Ok(Some(c.clone())),
                Some(c) => Ok(Some(cast(c, to)?)),
            }
        };
        Ok(Values {
            string: column("string_value", &DataType::Utf8)?,
            int: column("int_value", &DataType::Int64)?,
            double: column("double_value", &DataType::Float64)?,
            float: column("float_value", &DataType::Float32)?,
        })
    }
}

fn lookup<O: OffsetSizeTrait>(params: &GenericListArray<O>, keys: &StringArray) -> Result<StringArray> {
    use std::fmt::Write as _;
    let entries = params.values().as_struct();
    let names = entries.column_by_name("key").ok_or_else(|| bad("event_params", "has no key".into()))?;
    let names = match Texts::of(names) {
        Some(_) => names.clone(),
        None => cast(names, &DataType::Utf8)?,
    };
    let Some(names) = Texts::of(&names) else { return Err(bad("event_params", "has a key that is not text".into())) };
    let value = entries.column_by_name("value").ok_or_else(|| bad("event_params", "has no value".into()))?;
    let values = Values::of(value.as_struct())?;
    let strings = values.string.as_ref().and_then(Texts::of);
    fn valid(a: &Option<ArrayRef>, i: usize) -> Option<&ArrayRef> {
        a.as_ref().filter(|a| a.is_valid(i))
    }
    let mut out = StringBuilder::with_capacity(params.len(), params.len() * 16);
    let mut text = String::new();
    let offsets = params.value_offsets();
    for row in 0..params.len() {
        if params.is_null(row) || keys.is_null(row) {
            out.append_null();
            continue;
        }
        let key = keys.value(row);
        let (from, to) = (offsets[row].as_usize(), offsets[row + 1].as_usize());
        let found = (from..to).find(|&i| entries.is_valid(i) && names.get(i) == Some(key));
        let Some(i) = found.filter(|&i| value.is_valid(i)) else {
            out.append_null();
            continue;
        };
        // Its string_value, else int_value, double_value, float_value, as text.
        if let Some(s) = strings.as_ref().and_then(|s| s.get(i)) {
            out.append_value(s);
            continue;
        }
        text.clear();
        if let Some(a) = valid(&values.int, i) {
            let _ = write!(text, "{}", a.as_primitive::<Int64Type>().value(i));
        } else if let Some(a) = valid(&values.double, i) {
            let _ = write!(text, "{}", a.as_primitive::<Float64Type>().value(i));
        } else if let Some(a) = valid(&values.float, i) {
            let _ = write!(text, "{}", a.as_primitive::<Float32Type>().value(i));
        } else {
            out.append_null();
            continue;
        }
        out.append_value(&text);
    }
    Ok(out.finish())
}

/// GA4's `event_params` type, as the export writes it (float_value a double).
pub fn params_type() -> DataType {
    DataType::List(Arc::new(Field::new("element", DataType::Struct(entry_fields()), true)))
}

/// The fields of a GA4 parameter's `value`.
fn value_fields() -> Fields {
    vec![
        Field::new("string_value", DataType::Utf8, true),
        Field::new("int_value", DataType::Int64, true),
        Field::new("float_value", DataType::Float64, true),
        Field::new("double_value", DataType::Float64, true),
    ]
    .into()
}

/// The fields of one `event_params` entry: `key`, `value`.
fn entry_fields() -> Fields {
    vec![Field::new("key", DataType::Utf8, true), Field::new("value", DataType::Struct(value_fields()), true)].into()
}

/// Builds an `event_params` column ([`params_type`]) row by row, as GA4's export writes it:
/// for the demo's GA4 tables and for tests.
#[derive(Default)]
pub struct ParamsBuilder {
    key: StringBuilder,
    string: StringBuilder,
    int: Int64Builder,
    float: Float64Builder,
    double: Float64Builder,
    offsets: Vec<i32>,
    valid: Vec<bool>,
}

impl ParamsBuilder {
    pub fn new() -> Self {
        ParamsBuilder { offsets: vec![0], ..Default::default() }
    }

    /// One entry of the row being built: its key and value (`float_value` is left NULL, as the
    /// export leaves it).
    pub fn param(&mut self, key: &str, string: Option<&str>, int: Option<i64>, double: Option<f64>) {
        self.key.append_value(key);
        self.string.append_option(string);
        self.int.append_option(int);
        self.float.append_null();
        self.double.append_option(double);
    }

    /// Ends the row: its entries are those given since the last row; `valid` false makes it a
    /// NULL list (give no entries then).
    pub fn row(&mut self, valid: bool) {
        self.offsets.push(self.key.len() as i32);
        self.valid.push(valid);
    }

    /// The column of the rows built.
    pub fn finish(mut self) -> Result<ArrayRef> {
        let values: Vec<ArrayRef> = vec![
            Arc::new(self.string.finish()),
            Arc::new(self.int.finish()),
            Arc::new(self.float.finish()),
            Arc::new(self.double.finish()),
        ];
        let value = StructArray::try_new(value_fields(), values, None)?;
        let entries = StructArray::try_new(entry_fields(), vec![Arc::new(self.key.finish()), Arc::new(value)], None)?;
        let DataType::List(item) = params_type() else {
            return Err(datafusion::error::DataFusionError::Internal("event_params is a list".into()));
        };
        let offsets = OffsetBuffer::new(ScalarBuffer::from(self.offsets));
        let list = ListArray::try_new(item, offsets, Arc::new(entries), Some(NullBuffer::from(self.valid)))?;
        Ok(Arc::new(list))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One parameter: (key, string, int, double).
    type Param<'a> = (&'a str, Option<&'a str>, Option<i64>, Option<f64>);

    /// A list of params per row.
    fn params(rows: &[Option<Vec<Param>>]) -> ArrayRef {
        let mut b = ParamsBuilder::new();
        for row in rows {
            for (key, s, n, d) in row.iter().flatten() {
                b.param(key, *s, *n, *d);
            }
            b.row(row.is_some());
        }
        b.finish().expect("params")
    }

    fn call(params: ArrayRef, key: &str) -> Vec<Option<String>> {
        let keys: ArrayRef = Arc::new(StringArray::from(vec![Some(key); params.len()]));
        let out = match params.data_type() {
            DataType::List(_) => lookup(params.as_list::<i32>(), keys.as_string::<i32>()),
            _ => unreachable!(),
        }
        .expect("lookup");
        (0..out.len()).map(|i| out.is_valid(i).then(|| out.value(i).to_string())).collect()
    }

    #[test]
    fn each_value_kind_first_match_and_nulls() {
        let p = params(&[
            Some(vec![
                ("page_location", Some("https://x.example/a"), None, None),
                ("ga_session_id", None, Some(1718000000), None),
            ]),
            Some(vec![("value", None, None, Some(12.5)), ("value", Some("second"), None, None)]),
            Some(vec![("page_location", None, None, None)]),
            Some(vec![]),
            None,
        ]);
        assert_eq!(call(p.clone(), "page_location"), [Some("https://x.example/a".into()), None, None, None, None]);
        assert_eq!(call(p.clone(), "ga_session_id"), [Some("1718000000".into()), None, None, None, None]);
        assert_eq!(call(p.clone(), "value"), [None, Some("12.5".into()), None, None, None]);
        // Read from Parquet, keys and string values are views: the same answers.
        let view = |t: &DataType| match t {
            DataType::Utf8 => DataType::Utf8View,
            other => other.clone(),
        };
        let value_fields: Fields =
            value_fields().iter().map(|f| f.as_ref().clone().with_data_type(view(f.data_type()))).collect();
        let entry: Fields = vec![
            Field::new("key", DataType::Utf8View, true),
            Field::new("value", DataType::Struct(value_fields), true),
        ]
        .into();
        let viewed = cast(&p, &DataType::List(Arc::new(Field::new("element", DataType::Struct(entry), true))))
            .expect("cast to views");
        for key in ["page_location", "ga_session_id", "value"] {
            assert_eq!(call(viewed.clone(), key), call(p.clone(), key), "{key}");
        }
    }

    #[test]
    fn types_are_checked() {
        let f = Ga4Param::new();
        assert!(f.coerce_types(&[params_type(), DataType::Utf8]).is_ok());
        let err = f.coerce_types(&[DataType::Utf8, DataType::Utf8]).expect_err("not params").to_string();
        assert!(err.contains("must be GA4's list of struct"), "{err}");
        let err = f.coerce_types(&[params_type(), DataType::Int64]).expect_err("not text").to_string();
        assert!(err.contains("must be text"), "{err}");
    }
}
