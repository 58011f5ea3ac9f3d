//! Arrow values as PostgreSQL wire values, in text and binary format.
//!
//! The type of each column is [`crate::pg::types::pg_type_of`]; this module writes the bytes
//! PostgreSQL itself would send for that type: text output as `psql` shows it (`t`/`f`,
//! shortest round-trip floats with PostgreSQL's exponent style, ISO timestamps, an instant in
//! its zone's wall clock with the offset (`+00`, `+02`), `{...}` arrays), and the binary send
//! formats (big-endian integers, microseconds since 2000-01-01, base-10000 numerics,
//! one-dimensional arrays).

use crate::pg::types::{self, PgType};
use bytes::{BufMut, BytesMut};
use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::*;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use pgwire::api::results::FieldFormat;
use pgwire::messages::data::DataRow;
use std::fmt::Write as _;

/// Microseconds between 1970-01-01 and 2000-01-01 (PostgreSQL's epoch).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Days between 1970-01-01 and 2000-01-01.
const PG_EPOCH_DAYS: i32 = 10_957;

#[derive(Debug)]
pub struct EncodeError(pub String);

/// Encodes every row of a batch; `formats[i]` is the format of column `i`.
pub fn encode_batch(batch: &RecordBatch, formats: &[FieldFormat]) -> Result<Vec<DataRow>, EncodeError> {
    let columns: Vec<ArrayRef> = batch.columns().iter().map(normalize).collect::<Result<_, _>>()?;
    // Logical nulls: a NullArray has no validity buffer, yet every value is NULL.
    let nulls: Vec<_> = columns.iter().map(|c| c.logical_nulls()).collect();
    let mut rows = Vec::with_capacity(batch.num_rows());
    let mut buf = BytesMut::with_capacity(64 * batch.num_columns().max(1));
    let mut scratch = String::new();
    for row in 0..batch.num_rows() {
        for (i, col) in columns.iter().enumerate() {
            let format = formats.get(i).copied().unwrap_or(FieldFormat::Text);
            let is_null = nulls[i].as_ref().is_some_and(|n| n.is_null(row));
            encode_field(col, row, is_null, format, &mut buf, &mut scratch)?;
        }
        rows.push(DataRow::new(buf.split(), columns.len() as i16));
    }
    Ok(rows)
}

/// Dictionaries are sent as their values; run-end and view layouts as their plain forms.
fn normalize(a: &ArrayRef) -> Result<ArrayRef, EncodeError> {
    match a.data_type() {
        DataType::Dictionary(_, v) => datafusion::arrow::compute::cast(a, v).map_err(|e| EncodeError(e.to_string())),
        _ => Ok(a.clone()),
    }
}

fn encode_field(
    col: &ArrayRef,
    row: usize,
    is_null: bool,
    format: FieldFormat,
    buf: &mut BytesMut,
    scratch: &mut String,
) -> Result<(), EncodeError> {
    if is_null {
        buf.put_i32(-1);
        return Ok(());
    }
    let len_at = buf.len();
    buf.put_i32(0);
    match format {
        FieldFormat::Text => {
            scratch.clear();
            write_text(col, row, scratch)?;
            buf.put_slice(scratch.as_bytes());
        }
        FieldFormat::Binary => write_binary(col, row, buf)?,
    }
    let len = (buf.len() - len_at - 4) as i32;
    buf[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// The text form of one non-null value.
pub fn write_text(col: &ArrayRef, row: usize, out: &mut String) -> Result<(), EncodeError> {
    macro_rules! int {
        ($t:ty) => {{
            let _ = write!(out, "{}", col.as_primitive::<$t>().value(row));
        }};
    }
    match col.data_type() {
        DataType::Boolean => out.push_str(if col.as_boolean().value(row) { "t" } else { "f" }),
        DataType::Int8 => int!(Int8Type),
        DataType::Int16 => int!(Int16Type),
        DataType::Int32 => int!(Int32Type),
        DataType::Int64 => int!(Int64Type),
        DataType::UInt8 => int!(UInt8Type),
        DataType::UInt16 => int!(UInt16Type),
        DataType::UInt32 => int!(UInt32Type),
        DataType::UInt64 => int!(UInt64Type),
        DataType::Float16 => float_text(f64::from(col.as_primitive::<Float16Type>().value(row)), true, out),
        DataType::Float32 => float_text(f64::from(col.as_primitive::<Float32Type>().value(row)), true, out),
        DataType::Float64 => float_text(col.as_primitive::<Float64Type>().value(row), false, out),
        DataType::Utf8 => out.push_str(col.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => out.push_str(col.as_string::<i64>().value(row)),
        DataType::Utf8View => out.push_str(col.as_string_view().value(row)),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => {
            out.push_str("\\x");
            for b in binary_value(col, row) {
                let _ = write!(out, "{b:02x}");
            }
        }
        DataType::Date32 => date_text(col.as_primitive::<Date32Type>().value(row), out),
        DataType::Date64 => date_text((col.as_primitive::<Date64Type>().value(row) / 86_400_000) as i32, out),
        DataType::Timestamp(unit, None) => timestamp_text(timestamp_micros(col, row, unit), out),
        // An instant: the wall clock of its zone (the session's TimeZone), then the offset.
        DataType::Timestamp(unit, Some(tz)) => {
            let micros = timestamp_micros(col, row, unit);
            let utc = chrono::DateTime::from_timestamp_micros(micros).map(|d| d.naive_utc());
            let offset = utc.and_then(|t| crate::pg::time_zone::offset_at(tz, t)).unwrap_or(0);
            let bc = timestamp_text_ad(micros.saturating_add(i64::from(offset) * 1_000_000), out);
            crate::pg::time_zone::offset_text(offset, out);
            if bc {
                out.push_str(" BC");
            }
        }
        DataType::Time32(_) | DataType::Time64(_) => time_text(time_micros(col, row), out),
        DataType::Interval(_) | DataType::Duration(_) => {
            let (months, days, micros) = interval_parts(col, row);
            interval_text(months, days, micros, out);
        }
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(_, _) => {
            let values = list_values(col, row);
            let nulls = values.logical_nulls();
            out.push('{');
            for i in 0..values.len() {
                if i > 0 {
                    out.push(',');
                }
                if nulls.as_ref().is_some_and(|n| n.is_null(i)) {
                    out.push_str("NULL");
                    continue;
                }
                let mut item = String::new();
                write_text(&values, i, &mut item)?;
                array_element(&item, out);
            }
            out.push('}');
        }
        _ => {
            // Decimals, structs, maps: Arrow's own rendering is PostgreSQL's text form for
            // decimals and a readable one for the rest (sent as json).
            let options = FormatOptions::default();
            let f = ArrayFormatter::try_new(col.as_ref(), &options).map_err(|e| EncodeError(e.to_string()))?;
            let _ = write!(out, "{}", f.value(row));
        }
    }
    Ok(())
}

fn binary_value(col: &ArrayRef, row: usize) -> &[u8] {
    match col.data_type() {
        DataType::Binary => col.as_binary::<i32>().value(row),
        DataType::LargeBinary => col.as_binary::<i64>().value(row),
        DataType::BinaryView => col.as_binary_view().value(row),
        _ => col.as_fixed_size_binary().value(row),
    }
}

fn list_values(col: &ArrayRef, row: usize) -> ArrayRef {
    match col.data_type() {
        DataType::List(_) => col.as_list::<i32>().value(row),
        DataType::LargeList(_) => col.as_list::<i64>().value(row),
        _ => col.as_fixed_size_list().value(row),
    }
}

/// Quotes an array element as PostgreSQL's array output does.
pub fn array_element(item: &str, out: &mut String) {
    let needs_quotes = item.is_empty()
        || item.eq_ignore_ascii_case("null")
        || item.chars().any(|c| matches!(c, '{' | '}' | ',' | '"' | '\\') || c.is_whitespace());
    if !needs_quotes {
        out.push_str(item);
        return;
    }
    out.push('"');
    for c in item.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// PostgreSQL's `float8out`/`float4out` with `extra_float_digits >= 1`: the shortest text that
/// reads back to the same value; exponent form below 1e-4 and from 1e15 (1e6 for float4).
pub fn float_text(v: f64, single: bool, out: &mut String) {
    if v.is_nan() {
        out.push_str("NaN");
        return;
    }
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "Infinity" } else { "-Infinity" });
        return;
    }
    if v == 0.0 {
        out.push_str(if v.is_sign_negative() { "-0" } else { "0" });
        return;
    }
    let sci = if single { format!("{:e}", v as f32) } else { format!("{v:e}") };
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let limit = if single { 6 } else { 15 };
    if exp < -4 || exp >= limit {
        let _ = write!(out, "{mantissa}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    } else if single {
        let _ = write!(out, "{}", v as f32);
    } else {
        let _ = write!(out, "{v}");
    }
}

/// A date as PostgreSQL writes it: four-digit years, and years before 1 as `... BC` (year 0 of
/// the proleptic calendar is 1 BC); a plain `-0001-...`, as chrono writes it, was unreadable
/// to psycopg2 and to PostgreSQL itself.
fn ymd(date: chrono::NaiveDate, out: &mut String) -> bool {
    use chrono::Datelike;
    let year = date.year();
    let shown = if year <= 0 { 1 - year } else { year };
    let _ = write!(out, "{shown:04}-{:02}-{:02}", date.month(), date.day());
    year <= 0
}

pub fn date_text(days: i32, out: &mut String) {
    match chrono::NaiveDate::from_num_days_from_ce_opt(days.saturating_add(719_163)) {
        Some(d) => {
            if ymd(d, out) {
                out.push_str(" BC");
            }
        }
        None => {
            let _ = write!(out, "{days}");
        }
    }
}

fn timestamp_micros(col: &ArrayRef, row: usize, unit: &TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => col.as_primitive::<TimestampSecondType>().value(row).saturating_mul(1_000_000),
        TimeUnit::Millisecond => col.as_primitive::<TimestampMillisecondType>().value(row).saturating_mul(1_000),
        TimeUnit::Microsecond => col.as_primitive::<TimestampMicrosecondType>().value(row),
        TimeUnit::Nanosecond => col.as_primitive::<TimestampNanosecondType>().value(row).div_euclid(1_000),
    }
}

pub fn timestamp_text(micros: i64, out: &mut String) {
    if timestamp_text_ad(micros, out) {
        out.push_str(" BC");
    }
}

/// [`timestamp_text`] without the era; true when it is BC (after an offset, if any, PostgreSQL
/// writes ` BC` last).
fn timestamp_text_ad(micros: i64, out: &mut String) -> bool {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    match chrono::DateTime::from_timestamp(secs, 0) {
        Some(dt) => {
            let t = dt.naive_utc();
            let bc = ymd(t.date(), out);
            let _ = write!(out, " {}", t.format("%H:%M:%S"));
            fraction(frac, out);
            bc
        }
        None => {
            let _ = write!(out, "{micros}");
            false
        }
    }
}

fn fraction(micros: i64, out: &mut String) {
    if micros != 0 {
        let s = format!("{micros:06}");
        out.push('.');
        out.push_str(s.trim_end_matches('0'));
    }
}

fn time_micros(col: &ArrayRef, row: usize) -> i64 {
    match col.data_type() {
        DataType::Time32(TimeUnit::Second) => i64::from(col.as_primitive::<Time32SecondType>().value(row)) * 1_000_000,
        DataType::Time32(_) => i64::from(col.as_primitive::<Time32MillisecondType>().value(row)) * 1_000,
        DataType::Time64(TimeUnit::Microsecond) => col.as_primitive::<Time64MicrosecondType>().value(row),
        _ => col.as_primitive::<Time64NanosecondType>().value(row) / 1_000,
    }
}

fn time_text(micros: i64, out: &mut String) {
    let s = micros / 1_000_000;
    let _ = write!(out, "{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
    fraction(micros % 1_000_000, out);
}

fn interval_parts(col: &ArrayRef, row: usize) -> (i32, i32, i64) {
    match col.data_type() {
        DataType::Interval(IntervalUnit::YearMonth) => (col.as_primitive::<IntervalYearMonthType>().value(row), 0, 0),
        DataType::Interval(IntervalUnit::DayTime) => {
            let v = col.as_primitive::<IntervalDayTimeType>().value(row);
            (0, v.days, i64::from(v.milliseconds) * 1_000)
        }
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            let v = col.as_primitive::<IntervalMonthDayNanoType>().value(row);
            (v.months, v.days, v.nanoseconds / 1_000)
        }
        DataType::Duration(unit) => {
            let micros = match unit {
                TimeUnit::Second => col.as_primitive::<DurationSecondType>().value(row) * 1_000_000,
                TimeUnit::Millisecond => col.as_primitive::<DurationMillisecondType>().value(row) * 1_000,
                TimeUnit::Microsecond => col.as_primitive::<DurationMicrosecondType>().value(row),
                TimeUnit::Nanosecond => col.as_primitive::<DurationNanosecondType>().value(row) / 1_000,
            };
            // PostgreSQL keeps whole days of a difference of timestamps as days.
            ((0), (micros / 86_400_000_000) as i32, micros % 86_400_000_000)
        }
        _ => (0, 0, 0),
    }
}

/// PostgreSQL's `IntervalStyle = postgres` output, e.g. `1 year 2 mons 3 days 04:05:06.5`.
pub fn interval_text(months: i32, days: i32, micros: i64, out: &mut String) {
    let mut parts: Vec<String> = vec![];
    let (years, mons) = (months / 12, months % 12);
    let unit = |n: i64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    if years != 0 {
        parts.push(unit(i64::from(years), "year", "years"));
    }
    if mons != 0 {
        parts.push(unit(i64::from(mons), "mon", "mons"));
    }
    if days != 0 {
        parts.push(unit(i64::from(days), "day", "days"));
    }
    if micros != 0 || parts.is_empty() {
        let neg = micros < 0;
        let m = micros.unsigned_abs() as i64;
        let s = m / 1_000_000;
        let mut t = format!("{}{:02}:{:02}:{:02}", if neg { "-" } else { "" }, s / 3600, s / 60 % 60, s % 60);
        fraction(m % 1_000_000, &mut t);
        parts.push(t);
    }
    out.push_str(&parts.join(" "));
}

pub fn write_binary(col: &ArrayRef, row: usize, buf: &mut BytesMut) -> Result<(), EncodeError> {
    let pg: PgType = types::pg_type_of(col.data_type());
    match col.data_type() {
        DataType::Boolean => buf.put_u8(u8::from(col.as_boolean().value(row))),
        DataType::Int8 => buf.put_i16(i16::from(col.as_primitive::<Int8Type>().value(row))),
        DataType::UInt8 => buf.put_i16(i16::from(col.as_primitive::<UInt8Type>().value(row))),
        DataType::Int16 => buf.put_i16(col.as_primitive::<Int16Type>().value(row)),
        DataType::UInt16 => buf.put_i32(i32::from(col.as_primitive::<UInt16Type>().value(row))),
        DataType::Int32 => buf.put_i32(col.as_primitive::<Int32Type>().value(row)),
        DataType::UInt32 => buf.put_u32(col.as_primitive::<UInt32Type>().value(row)),
        DataType::Int64 => buf.put_i64(col.as_primitive::<Int64Type>().value(row)),
        DataType::Float16 => buf.put_f32(f32::from(col.as_primitive::<Float16Type>().value(row))),
        DataType::Float32 => buf.put_f32(col.as_primitive::<Float32Type>().value(row)),
        DataType::Float64 => buf.put_f64(col.as_primitive::<Float64Type>().value(row)),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let mut s = String::new();
            write_text(col, row, &mut s)?;
            buf.put_slice(s.as_bytes());
        }
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => {
            buf.put_slice(binary_value(col, row))
        }
        DataType::Date32 => buf.put_i32(col.as_primitive::<Date32Type>().value(row) - PG_EPOCH_DAYS),
        DataType::Date64 => {
            buf.put_i32((col.as_primitive::<Date64Type>().value(row) / 86_400_000) as i32 - PG_EPOCH_DAYS)
        }
        DataType::Timestamp(unit, _) => buf.put_i64(timestamp_micros(col, row, unit) - PG_EPOCH_MICROS),
        DataType::Time32(_) | DataType::Time64(_) => buf.put_i64(time_micros(col, row)),
        DataType::Interval(_) | DataType::Duration(_) => {
            let (months, days, micros) = interval_parts(col, row);
            buf.put_i64(micros);
            buf.put_i32(days);
            buf.put_i32(months);
        }
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            let values = list_values(col, row);
            let element = types::pg_type_of(f.data_type());
            buf.put_i32(1);
            buf.put_i32(i32::from(values.null_count() > 0));
            buf.put_u32(element.oid);
            buf.put_i32(values.len() as i32);
            buf.put_i32(1);
            let nulls = values.logical_nulls();
            for i in 0..values.len() {
                let is_null = nulls.as_ref().is_some_and(|n| n.is_null(i));
                encode_field(&values, i, is_null, FieldFormat::Binary, buf, &mut String::new())?;
            }
        }
        _ if pg == types::NUMERIC => {
            let mut s = String::new();
            write_text(col, row, &mut s)?;
            numeric_binary(&s, buf).map_err(|e| EncodeError(format!("cannot encode numeric {s}: {e}")))?;
        }
        _ => {
            // json and other text-like types: the binary form is the text.
            let mut s = String::new();
            write_text(col, row, &mut s)?;
            buf.put_slice(s.as_bytes());
        }
    }
    Ok(())
}

/// PostgreSQL's binary `numeric`: ndigits, weight, sign, dscale, then base-10000 digits.
pub fn numeric_binary(text: &str, buf: &mut BytesMut) -> Result<(), String> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    if !int_part.chars().chain(frac_part.chars()).all(|c| c.is_ascii_digit()) {
        return Err("not a decimal number".into());
    }
    let dscale = frac_part.len() as i16;
    let int_part = int_part.trim_start_matches('0');
    // Pad the integer part on the left and the fraction on the right to groups of 4.
    let int_pad = (4 - int_part.len() % 4) % 4;
    let frac_pad = (4 - frac_part.len() % 4) % 4;
    let all: String = "0".repeat(int_pad) + int_part + frac_part + &"0".repeat(frac_pad);
    let mut groups: Vec<i16> =
        all.as_bytes().chunks(4).map(|c| c.iter().fold(0i16, |acc, d| acc * 10 + i16::from(d - b'0'))).collect();
    let int_groups = (int_part.len() + int_pad) / 4;
    let mut weight = int_groups as i16 - 1;
    // Strip leading zero groups (adjusting the weight) and trailing zero groups.
    while groups.first() == Some(&0) {
        groups.remove(0);
        weight -= 1;
    }
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    buf.put_i16(groups.len() as i16);
    buf.put_i16(weight);
    buf.put_u16(if negative && !groups.is_empty() { 0x4000 } else { 0 });
    buf.put_i16(dscale);
    for g in groups {
        buf.put_i16(g);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn float(v: f64) -> String {
        let mut s = String::new();
        float_text(v, false, &mut s);
        s
    }

    #[test]
    fn floats_like_postgres() {
        assert_eq!(float(1.5), "1.5");
        assert_eq!(float(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(float(1e20), "1e+20");
        assert_eq!(float(123456789012345.0), "123456789012345");
        assert_eq!(float(1234567890123456.0), "1.234567890123456e+15");
        assert_eq!(float(0.0001), "0.0001");
        assert_eq!(float(0.00001234), "1.234e-05");
        assert_eq!(float(-0.0), "-0");
        assert_eq!(float(f64::NAN), "NaN");
        assert_eq!(float(f64::NEG_INFINITY), "-Infinity");
    }

    fn numeric(s: &str) -> Vec<i16> {
        let mut b = BytesMut::new();
        numeric_binary(s, &mut b).expect("numeric");
        b.chunks(2).map(|c| i16::from_be_bytes([c[0], c[1]])).collect()
    }

    #[test]
    fn numeric_binary_matches_postgres() {
        // ndigits, weight, sign, dscale, digits...
        assert_eq!(numeric("1234.50"), [2, 0, 0, 2, 1234, 5000]);
        assert_eq!(numeric("12345678.9"), [3, 1, 0, 1, 1234, 5678, 9000]);
        assert_eq!(numeric("-0.05"), [1, -1, 0x4000, 2, 500]);
        assert_eq!(numeric("0.00"), [0, 0, 0, 2]);
        assert_eq!(numeric("10000"), [1, 1, 0, 0, 1]);
    }

    #[test]
    fn intervals_and_timestamps() {
        let mut s = String::new();
        interval_text(14, 3, 4 * 3_600_000_000 + 5 * 60_000_000 + 6_500_000, &mut s);
        assert_eq!(s, "1 year 2 mons 3 days 04:05:06.5");
        s.clear();
        interval_text(0, 0, 0, &mut s);
        assert_eq!(s, "00:00:00");
        s.clear();
        timestamp_text(1_735_689_600_000_000 + 1_500_000, &mut s);
        assert_eq!(s, "2025-01-01 00:00:01.5");
        s.clear();
        date_text(20_089, &mut s);
        assert_eq!(s, "2025-01-01");
        // Before year 1: PostgreSQL's BC years (chrono's year 0 is 1 BC), and five-digit years.
        for (days, want) in [
            (-719_162, "0001-01-01"),
            (-719_163, "0001-12-31 BC"),
            (-719_528, "0001-01-01 BC"),
            (-719_529, "0002-12-31 BC"),
            (2_932_897, "10000-01-01"),
        ] {
            s.clear();
            date_text(days, &mut s);
            assert_eq!(s, want, "{days}");
        }
        s.clear();
        timestamp_text(-719_163 * 86_400_000_000 + 3_600_000_000, &mut s);
        assert_eq!(s, "0001-12-31 01:00:00 BC");
    }

    #[test]
    fn array_elements_are_quoted_when_needed() {
        let mut s = String::new();
        for item in ["a", "b c", "", "NULL", "x\"y"] {
            array_element(item, &mut s);
            s.push(',');
        }
        assert_eq!(s, "a,\"b c\",\"\",\"NULL\",\"x\\\"y\",");
    }
}
