//! Bound parameters of the extended protocol as DataFusion values.
//!
//! The wire type of a parameter is the one the client declared in Parse (clients that bind
//! binary values always know it: they declared it, or took it from our Describe); a parameter
//! of unknown type is text. Text values are parsed as PostgreSQL input, binary values in
//! PostgreSQL's send format. `Session::execute` then casts each value to the type the plan
//! expects, so a statement is planned once per execution.

use crate::error::{Error, Result};
use crate::pg::types;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use pgwire::api::Type;
use pgwire::api::results::FieldFormat;

/// The Arrow type a PostgreSQL parameter type is read as.
pub fn arrow_type_of(t: &Type) -> DataType {
    types::value_type(t.oid())
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
            match &wire_type {
                DataType::List(field) => {
                    let element = field.data_type();
                    let items = array_text_items(&s).ok_or_else(|| bad(format!("malformed array literal: \"{s}\"")))?;
                    let values = items
                        .into_iter()
                        .map(|item| match item {
                            None => ScalarValue::try_from(element),
                            Some(text) => ScalarValue::try_from_string(text, element),
                        })
                        .collect::<std::result::Result<Vec<_>, _>>()
                        .map_err(|_| bad(format!("\"{s}\" is not a valid array of {element}")))?;
                    ScalarValue::List(ScalarValue::new_list(&values, element, true))
                }
                _ => ScalarValue::try_from_string(s.clone(), &wire_type)
                    .map_err(|_| bad(format!("\"{s}\" is not a valid {wire_type}")))?,
            }
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
        DataType::List(field) => ScalarValue::List(ScalarValue::new_list(
            &array_binary_items(b, field.data_type())?,
            field.data_type(),
            true,
        )),
        DataType::Decimal128(_, _) => {
            let text = numeric_from_binary(b)?;
            ScalarValue::try_from_string(text, &DataType::Decimal128(38, 10)).ok()?
        }
        _ => ScalarValue::Utf8(Some(String::from_utf8(b.to_vec()).ok()?)),
    })
}

/// The items of a one-dimensional array in PostgreSQL's text form (`{1,2,NULL}`,
/// `{"a b","c\\"d"}`), NULL for an unquoted NULL; None when it is not one.
fn array_text_items(s: &str) -> Option<Vec<Option<String>>> {
    let inner = s.trim().strip_prefix('{')?.strip_suffix('}')?;
    let mut items = vec![];
    if inner.trim().is_empty() {
        return Some(items);
    }
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut item = String::new();
        let quoted = chars.peek() == Some(&'"');
        if quoted {
            chars.next();
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => item.push(chars.next()?),
                    c => item.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                if c == '{' || c == '"' {
                    return None;
                }
                item.push(c);
                chars.next();
            }
            item = item.trim_end().to_string();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        items.push((quoted || !item.eq_ignore_ascii_case("null")).then_some(item));
        match chars.next() {
            None => return Some(items),
            Some(',') => {}
            Some(_) => return None,
        }
    }
}

/// The items of a one-dimensional array in PostgreSQL's binary form: dimensions, a flag, the
/// element type, each dimension's length and lower bound, then each item's length (-1: NULL)
/// and bytes.
fn array_binary_items(b: &[u8], element: &DataType) -> Option<Vec<ScalarValue>> {
    let mut at = 0;
    let i32_at = |at: &mut usize| -> Option<i32> {
        let v = i32::from_be_bytes(b.get(*at..*at + 4)?.try_into().ok()?);
        *at += 4;
        Some(v)
    };
    let dimensions = i32_at(&mut at)?;
    let _has_nulls = i32_at(&mut at)?;
    let _element_oid = i32_at(&mut at)?;
    let count = match dimensions {
        0 => 0,
        1 => {
            let n = i32_at(&mut at)?;
            let _lower_bound = i32_at(&mut at)?;
            usize::try_from(n).ok()?
        }
        _ => return None,
    };
    let mut items = Vec::with_capacity(count.min(b.len() / 4));
    for _ in 0..count {
        let len = i32_at(&mut at)?;
        if len < 0 {
            items.push(ScalarValue::try_from(element).ok()?);
            continue;
        }
        let bytes = b.get(at..at + len as usize)?;
        at += len as usize;
        items.push(decode_binary(bytes, element)?);
    }
    (at == b.len()).then_some(items)
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
    fn array_parameters_in_text_and_binary() {
        let ints = |v: Vec<Option<i64>>| {
            let values: Vec<ScalarValue> = v.into_iter().map(ScalarValue::Int64).collect();
            ScalarValue::List(ScalarValue::new_list(&values, &DataType::Int64, true))
        };
        let v = decode(0, Some(b"{1, 2,NULL}"), FieldFormat::Text, Some(&Type::INT8_ARRAY)).expect("text");
        assert_eq!(v, ints(vec![Some(1), Some(2), None]));
        let v = decode(0, Some(b"{}"), FieldFormat::Text, Some(&Type::INT8_ARRAY)).expect("empty");
        assert_eq!(v, ints(vec![]));
        let v = decode(0, Some(br#"{"a b","c\"d",NULL,"NULL"}"#), FieldFormat::Text, Some(&Type::TEXT_ARRAY))
            .expect("texts");
        let texts = ["a b", "c\"d"].map(|t| ScalarValue::Utf8(Some(t.into())));
        let want =
            [texts[0].clone(), texts[1].clone(), ScalarValue::Utf8(None), ScalarValue::Utf8(Some("NULL".into()))];
        assert_eq!(v, ScalarValue::List(ScalarValue::new_list(&want, &DataType::Utf8, true)));
        assert!(decode(0, Some(b"{1,{2}}"), FieldFormat::Text, Some(&Type::INT8_ARRAY)).is_err(), "nested");
        assert!(decode(0, Some(b"1,2"), FieldFormat::Text, Some(&Type::INT8_ARRAY)).is_err(), "no braces");
        // Binary: one dimension of two, the second NULL.
        let mut b = vec![];
        for v in [1i32, 1, 20, 2, 1, 8] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        b.extend_from_slice(&7i64.to_be_bytes());
        b.extend_from_slice(&(-1i32).to_be_bytes());
        let v = decode(0, Some(&b), FieldFormat::Binary, Some(&Type::INT8_ARRAY)).expect("binary");
        assert_eq!(v, ints(vec![Some(7), None]));
        assert!(decode(0, Some(&b[..b.len() - 1]), FieldFormat::Binary, Some(&Type::INT8_ARRAY)).is_err(), "short");
    }

    #[test]
    fn numeric_round_trip() {
        for s in ["1234.50", "12345678.9", "-0.05", "10000", "0.0001"] {
            let mut b = BytesMut::new();
            crate::pg::encode::numeric_binary(s, &mut b).expect("encode");
            assert_eq!(numeric_from_binary(&b).as_deref(), Some(s), "{s}");
        }
    }
}
