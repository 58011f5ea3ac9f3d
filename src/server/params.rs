//! Bound parameters of the extended protocol as DataFusion values.
//!
//! The wire type of a parameter is the one the client declared in Parse (clients that bind
//! binary values always know it: they declared it, or took it from our Describe); a parameter
//! of unknown type is text. Text values are parsed as PostgreSQL input, binary values in
//! PostgreSQL's send format. `Session::execute` then casts each value to the type the plan
//! expects, so a statement is planned once per execution.

use crate::error::{Error, Result};
use crate::pg::types;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::ScalarValue;
use pgwire::api::Type;
use pgwire::api::results::FieldFormat;

/// The Arrow type a PostgreSQL parameter type is read as.
pub fn arrow_type_of(t: &Type) -> DataType {
    match t.oid() {
        16 => DataType::Boolean,
        21 => DataType::Int16,
        23 => DataType::Int32,
        20 => DataType::Int64,
        26 => DataType::UInt32,
        700 => DataType::Float32,
        701 => DataType::Float64,
        1082 => DataType::Date32,
        1114 => DataType::Timestamp(TimeUnit::Microsecond, None),
        1184 => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        1700 => DataType::Decimal128(38, 10),
        17 => DataType::Binary,
        _ => DataType::Utf8,
    }
}

/// The PostgreSQL type a parameter the plan expects as `dt` is described as.
pub fn pg_type_for(dt: Option<&DataType>) -> Type {
    match dt {
        Some(dt) => Type::from_oid(types::type_oid(dt)).unwrap_or(Type::TEXT),
        None => Type::UNKNOWN,
    }
}

pub fn decode(index: usize, bytes: Option<&[u8]>, format: FieldFormat, wire: Option<&Type>) -> Result<ScalarValue> {
    let bad = |what: String| Error::InvalidParameter(format!("invalid value for parameter ${}: {what}", index + 1));
    let wire_type = wire.filter(|t| **t != Type::UNKNOWN).map(arrow_type_of).unwrap_or(DataType::Utf8);
    let Some(bytes) = bytes else {
        return ScalarValue::try_from(&wire_type).map_err(|e| bad(e.to_string()));
    };
    let value = match format {
        FieldFormat::Text => {
            let s = std::str::from_utf8(bytes).map_err(|_| bad("not valid UTF-8".into()))?;
            let s = match &wire_type {
                DataType::Boolean => match s.to_ascii_lowercase().as_str() {
                    "t" | "true" | "yes" | "on" | "1" => "true",
                    "f" | "false" | "no" | "off" | "0" => "false",
                    _ => return Err(bad(format!("\"{s}\" is not a boolean"))),
                }
                .to_string(),
                DataType::Timestamp(_, _) => s.trim_end_matches("+00").replacen(' ', "T", 1),
                _ => s.to_string(),
            };
            ScalarValue::try_from_string(s.clone(), &wire_type)
                .map_err(|_| bad(format!("\"{s}\" is not a valid {wire_type}")))?
        }
        FieldFormat::Binary => decode_binary(bytes, &wire_type)
            .ok_or_else(|| bad(format!("bad binary {wire_type} of {} bytes", bytes.len())))?,
    };
    Ok(value)
}

fn decode_binary(b: &[u8], dt: &DataType) -> Option<ScalarValue> {
    let arr = |n: usize| -> Option<&[u8]> { (b.len() == n).then_some(b) };
    Some(match dt {
        DataType::Boolean => ScalarValue::Boolean(Some(arr(1)?[0] != 0)),
        DataType::Int16 => ScalarValue::Int16(Some(i16::from_be_bytes(arr(2)?.try_into().ok()?))),
        DataType::Int32 => ScalarValue::Int32(Some(i32::from_be_bytes(arr(4)?.try_into().ok()?))),
        DataType::Int64 => ScalarValue::Int64(Some(i64::from_be_bytes(arr(8)?.try_into().ok()?))),
        DataType::UInt32 => ScalarValue::UInt32(Some(u32::from_be_bytes(arr(4)?.try_into().ok()?))),
        DataType::Float32 => ScalarValue::Float32(Some(f32::from_be_bytes(arr(4)?.try_into().ok()?))),
        DataType::Float64 => ScalarValue::Float64(Some(f64::from_be_bytes(arr(8)?.try_into().ok()?))),
        DataType::Date32 => ScalarValue::Date32(Some(i32::from_be_bytes(arr(4)?.try_into().ok()?) + 10_957)),
        DataType::Timestamp(_, tz) => ScalarValue::TimestampMicrosecond(
            Some(i64::from_be_bytes(arr(8)?.try_into().ok()?) + 946_684_800_000_000),
            tz.clone(),
        ),
        DataType::Binary => ScalarValue::Binary(Some(b.to_vec())),
        DataType::Decimal128(_, _) => {
            let text = numeric_from_binary(b)?;
            ScalarValue::try_from_string(text, &DataType::Decimal128(38, 10)).ok()?
        }
        _ => ScalarValue::Utf8(Some(String::from_utf8(b.to_vec()).ok()?)),
    })
}

/// PostgreSQL's binary numeric as decimal text.
pub fn numeric_from_binary(b: &[u8]) -> Option<String> {
    let word = |i: usize| -> Option<i16> { Some(i16::from_be_bytes([*b.get(2 * i)?, *b.get(2 * i + 1)?])) };
    let (n, weight, sign, dscale) = (word(0)? as usize, word(1)? as i32, word(2)? as u16, word(3)? as usize);
    let mut int_part = String::new();
    let mut frac_part = String::new();
    for i in 0..n {
        let d = word(4 + i)?;
        let pos = weight - i as i32;
        if pos >= 0 {
            int_part.push_str(&if int_part.is_empty() { d.to_string() } else { format!("{d:04}") });
            if i == n - 1 {
                for _ in 0..pos {
                    int_part.push_str("0000");
                }
            }
        } else {
            if frac_part.is_empty() {
                for _ in 0..(-pos - 1) {
                    frac_part.push_str("0000");
                }
            }
            frac_part.push_str(&format!("{d:04}"));
        }
    }
    if int_part.is_empty() {
        int_part.push('0');
    }
    frac_part.truncate(dscale.min(frac_part.len()));
    while frac_part.len() < dscale {
        frac_part.push('0');
    }
    let sign = if sign == 0x4000 { "-" } else { "" };
    Some(if frac_part.is_empty() { format!("{sign}{int_part}") } else { format!("{sign}{int_part}.{frac_part}") })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    #[test]
    fn text_parameters_take_their_declared_type() {
        let v = decode(0, Some(b"42"), FieldFormat::Text, Some(&Type::INT8)).expect("int");
        assert_eq!(v, ScalarValue::Int64(Some(42)));
        let v = decode(0, Some(b"t"), FieldFormat::Text, Some(&Type::BOOL)).expect("bool");
        assert_eq!(v, ScalarValue::Boolean(Some(true)));
        let v = decode(0, Some(b"Paid Search"), FieldFormat::Text, Some(&Type::UNKNOWN)).expect("text");
        assert_eq!(v, ScalarValue::Utf8(Some("Paid Search".into())));
        let e = decode(1, Some(b"x"), FieldFormat::Text, Some(&Type::INT4)).expect_err("bad int");
        assert!(e.to_string().contains("parameter $2"), "{e}");
        let v = decode(0, None, FieldFormat::Text, Some(&Type::INT4)).expect("null");
        assert_eq!(v, ScalarValue::Int32(None));
        let v = decode(0, Some(b"2025-03-01 00:00:00+00"), FieldFormat::Text, Some(&Type::TIMESTAMPTZ)).expect("ts");
        assert_eq!(v, ScalarValue::TimestampMicrosecond(Some(1_740_787_200_000_000), Some("UTC".into())));
    }

    #[test]
    fn binary_parameters_in_postgres_send_format() {
        let v = decode(0, Some(&7i32.to_be_bytes()), FieldFormat::Binary, Some(&Type::INT4)).expect("int4");
        assert_eq!(v, ScalarValue::Int32(Some(7)));
        assert!(decode(0, Some(&[0, 7]), FieldFormat::Binary, Some(&Type::INT4)).is_err(), "wrong length");
        let v = decode(0, Some(&0i64.to_be_bytes()), FieldFormat::Binary, Some(&Type::TIMESTAMPTZ)).expect("ts");
        assert_eq!(v, ScalarValue::TimestampMicrosecond(Some(946_684_800_000_000), Some("UTC".into())));
    }

    #[test]
    fn numeric_round_trip() {
        for s in ["1234.50", "12345678.9", "-0.05", "10000", "0.0001"] {
            let mut b = BytesMut::new();
            crate::server::encode::numeric_binary(s, &mut b).expect("encode");
            assert_eq!(numeric_from_binary(&b).as_deref(), Some(s), "{s}");
        }
    }
}
