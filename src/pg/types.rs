//! Arrow types as PostgreSQL types: the OID and name each result column gets on the wire and
//! in `pg_catalog`. Only built-in PostgreSQL type OIDs are ever used.

use datafusion::arrow::datatypes::{DataType, TimeUnit};

/// The Arrow type a value of a PostgreSQL type is bound and cast as (the other types are
/// bound as text, which the plan casts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    Bool,
    Int16,
    Int32,
    Int64,
    /// An OID.
    UInt32,
    Float32,
    Float64,
    Numeric,
    Date,
    Timestamp,
    TimestampTz,
    Binary,
    Text,
}

impl Value {
    pub fn data_type(self) -> DataType {
        match self {
            Value::Bool => DataType::Boolean,
            Value::Int16 => DataType::Int16,
            Value::Int32 => DataType::Int32,
            Value::Int64 => DataType::Int64,
            Value::UInt32 => DataType::UInt32,
            Value::Float32 => DataType::Float32,
            Value::Float64 => DataType::Float64,
            // The widest numeric a parameter may hold, with room for fractions.
            Value::Numeric => DataType::Decimal128(38, 10),
            Value::Date => DataType::Date32,
            Value::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            Value::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Value::Binary => DataType::Binary,
            Value::Text => DataType::Utf8,
        }
    }
}

/// A built-in PostgreSQL type: OID, `pg_type` name, SQL name (`format_type`), array type OID,
/// length (`typlen`), category, the Arrow type its values take, and the other names SQL
/// spells it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgType {
    pub oid: u32,
    pub name: &'static str,
    pub sql_name: &'static str,
    pub array_oid: u32,
    pub len: i16,
    pub category: &'static str,
    pub value: Option<Value>,
    pub aliases: &'static [&'static str],
}

#[allow(clippy::too_many_arguments)]
const fn t(
    oid: u32,
    name: &'static str,
    sql_name: &'static str,
    array_oid: u32,
    len: i16,
    category: &'static str,
    value: Option<Value>,
    aliases: &'static [&'static str],
) -> PgType {
    PgType { oid, name, sql_name, array_oid, len, category, value, aliases }
}

// The one table of PostgreSQL types: the wire (OIDs of columns and parameters), the catalog
// (`pg_type`, `format_type`, `information_schema`), parameter decoding and casts all read it.
pub const BOOL: PgType = t(16, "bool", "boolean", 1000, 1, "B", Some(Value::Bool), &["boolean"]);
pub const BYTEA: PgType = t(17, "bytea", "bytea", 1001, -1, "U", Some(Value::Binary), &[]);
pub const CHAR: PgType = t(18, "char", "\"char\"", 1002, 1, "Z", Some(Value::Text), &["bpchar", "character"]);
pub const NAME: PgType = t(19, "name", "name", 1003, 64, "S", Some(Value::Text), &[]);
pub const INT8: PgType = t(20, "int8", "bigint", 1016, 8, "N", Some(Value::Int64), &["bigint"]);
pub const INT2: PgType = t(21, "int2", "smallint", 1005, 2, "N", Some(Value::Int16), &["smallint"]);
pub const INT4: PgType = t(23, "int4", "integer", 1007, 4, "N", Some(Value::Int32), &["integer", "int"]);
pub const TEXT: PgType = t(25, "text", "text", 1009, -1, "S", Some(Value::Text), &[]);
pub const OID: PgType = t(26, "oid", "oid", 1028, 4, "N", Some(Value::UInt32), &["int unsigned"]);
pub const JSON: PgType = t(114, "json", "json", 199, -1, "U", None, &[]);
pub const FLOAT4: PgType = t(700, "float4", "real", 1021, 4, "N", Some(Value::Float32), &["real"]);
pub const FLOAT8: PgType =
    t(701, "float8", "double precision", 1022, 8, "N", Some(Value::Float64), &["double precision", "double"]);
pub const VARCHAR: PgType =
    t(1043, "varchar", "character varying", 1015, -1, "S", Some(Value::Text), &["character varying"]);
pub const DATE: PgType = t(1082, "date", "date", 1182, 4, "D", Some(Value::Date), &[]);
pub const TIME: PgType = t(1083, "time", "time without time zone", 1183, 8, "D", None, &[]);
pub const TIMESTAMP: PgType =
    t(1114, "timestamp", "timestamp without time zone", 1115, 8, "D", Some(Value::Timestamp), &[]);
pub const TIMESTAMPTZ: PgType =
    t(1184, "timestamptz", "timestamp with time zone", 1185, 8, "D", Some(Value::TimestampTz), &[]);
pub const INTERVAL: PgType = t(1186, "interval", "interval", 1187, 16, "T", None, &[]);
pub const NUMERIC: PgType = t(1700, "numeric", "numeric", 1231, -1, "N", Some(Value::Numeric), &["decimal"]);
pub const UUID: PgType = t(2950, "uuid", "uuid", 2951, 16, "U", None, &[]);

/// Every base type journeydb puts on the wire; `pg_type` lists these and their arrays.
pub const BUILTIN: [PgType; 20] = [
    BOOL,
    BYTEA,
    CHAR,
    NAME,
    INT8,
    INT2,
    INT4,
    TEXT,
    OID,
    JSON,
    FLOAT4,
    FLOAT8,
    VARCHAR,
    DATE,
    TIME,
    TIMESTAMP,
    TIMESTAMPTZ,
    INTERVAL,
    NUMERIC,
    UUID,
];

/// The element type of a list, or the type itself.
pub fn pg_type_of(dt: &DataType) -> PgType {
    match dt {
        DataType::Boolean => BOOL,
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => INT2,
        DataType::Int32 | DataType::UInt16 => INT4,
        DataType::Int64 => INT8,
        DataType::UInt32 => OID,
        DataType::UInt64
        | DataType::Decimal32(_, _)
        | DataType::Decimal64(_, _)
        | DataType::Decimal128(_, _)
        | DataType::Decimal256(_, _) => NUMERIC,
        DataType::Float16 | DataType::Float32 => FLOAT4,
        DataType::Float64 => FLOAT8,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => BYTEA,
        DataType::Date32 | DataType::Date64 => DATE,
        DataType::Time32(_) | DataType::Time64(_) => TIME,
        DataType::Timestamp(_, None) => TIMESTAMP,
        DataType::Timestamp(_, Some(_)) => TIMESTAMPTZ,
        DataType::Interval(_) | DataType::Duration(_) => INTERVAL,
        DataType::Dictionary(_, v) => pg_type_of(v),
        DataType::Struct(_) | DataType::Map(_, _) => JSON,
        _ => TEXT,
    }
}

/// The OID a column of this Arrow type has on the wire (arrays for lists).
pub fn type_oid(dt: &DataType) -> u32 {
    match dt {
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::FixedSizeList(f, _)
        | DataType::ListView(f)
        | DataType::LargeListView(f) => pg_type_of(f.data_type()).array_oid,
        other => pg_type_of(other).oid,
    }
}

/// `atttypmod`: precision and scale of numerics, as PostgreSQL packs them.
pub fn type_modifier(dt: &DataType) -> i32 {
    match dt {
        DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal32(p, s)
            if *s >= 0 =>
        {
            ((*p as i32) << 16 | (*s as i32)) + 4
        }
        DataType::Timestamp(TimeUnit::Second, _) => 0,
        DataType::Timestamp(TimeUnit::Millisecond, _) => 3,
        _ => -1,
    }
}

/// `format_type(oid, typmod)`: the SQL name of a type, as psql's `\d` shows it.
pub fn format_type(oid: u32, typmod: i32) -> Option<String> {
    let Some(base) = BUILTIN.iter().find(|t| t.oid == oid).map(|t| t.sql_name) else {
        let element = BUILTIN.iter().find(|t| t.array_oid == oid)?;
        return format_type(element.oid, typmod).map(|s| format!("{s}[]"));
    };
    Some(match oid {
        1700 if typmod >= 4 => format!("numeric({},{})", (typmod - 4) >> 16, (typmod - 4) & 0xffff),
        1043 if typmod >= 4 => format!("{base}({})", typmod - 4),
        1114 | 1184 if typmod >= 0 => base.replacen("timestamp", &format!("timestamp({typmod})"), 1),
        _ => base.to_string(),
    })
}

/// The Arrow type a value of type `oid` is bound as (a list for an array type; text for
/// what journeydb does not know).
pub fn value_type(oid: u32) -> DataType {
    bound_type(oid).unwrap_or(DataType::Utf8)
}

/// The Arrow type a value of type `oid` is bound as, for the types that are not bound as text.
pub fn bound_type(oid: u32) -> Option<DataType> {
    if let Some(t) = BUILTIN.iter().find(|t| t.oid == oid) {
        return t.value.map(Value::data_type);
    }
    let element = BUILTIN.iter().find(|t| t.array_oid == oid)?;
    Some(DataType::new_list(element.value.map(Value::data_type).unwrap_or(DataType::Utf8), true))
}

/// The type SQL names `name` (`int8`, `bigint`, `double precision`, `pg_catalog.timestamptz`,
/// `text[]`, `_text`), case-insensitive: its OID, or its array type's.
pub fn named(name: &str) -> Option<u32> {
    let name = name.trim().to_ascii_lowercase();
    let name = name.strip_prefix("pg_catalog.").unwrap_or(&name).trim_matches('"');
    // One array level at most (there are no arrays of arrays): no recursion on what a client sent.
    let base_of = |n: &str| {
        let base = n.split('(').next().unwrap_or(n).trim().to_string();
        BUILTIN.iter().find(|t| t.name == base || t.sql_name == base || t.aliases.contains(&base.as_str())).copied()
    };
    match name.strip_suffix("[]").or_else(|| name.strip_prefix('_')) {
        Some(element) => base_of(element).map(|t| t.array_oid),
        None => base_of(name).map(|t| t.oid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::Field;
    use std::sync::Arc;

    #[test]
    fn arrow_types_map_to_builtin_oids() {
        assert_eq!(type_oid(&DataType::Utf8View), 25);
        assert_eq!(type_oid(&DataType::Int64), 20);
        assert_eq!(type_oid(&DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))), 1184);
        assert_eq!(type_oid(&DataType::Decimal128(12, 2)), 1700);
        assert_eq!(type_oid(&DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))), 1009);
        for t in BUILTIN {
            assert!(format_type(t.oid, -1).is_some(), "{t:?}");
            assert!(format_type(t.array_oid, -1).is_some_and(|s| s.ends_with("[]")), "{t:?}");
        }
    }

    #[test]
    fn names_and_values_come_from_the_one_table() {
        assert_eq!(named("BIGINT"), Some(20));
        assert_eq!(named("int8"), Some(20));
        assert_eq!(named("double precision"), Some(701));
        assert_eq!(named("timestamp with time zone"), Some(1184));
        assert_eq!(named("text[]"), Some(1009));
        assert_eq!(named("_int4"), Some(1007));
        assert_eq!(named("pg_catalog.\"timestamptz\""), Some(1184));
        assert_eq!(named("varchar(20)"), Some(1043));
        assert_eq!(named("box"), None);
        assert_eq!(named(&"_".repeat(1_000_000)), None, "no recursion per underscore");
        assert_eq!(named("_text[]"), None);
        assert_eq!(value_type(1016), DataType::new_list(DataType::Int64, true));
        assert_eq!(value_type(1028), DataType::new_list(DataType::UInt32, true));
        for t in BUILTIN.iter().filter(|t| t.value.is_some()) {
            // What a value is bound as shows as the type again on the wire.
            let back = type_oid(&value_type(t.oid));
            let same_kind = back == t.oid || BUILTIN.iter().any(|b| b.oid == back && b.value == t.value);
            assert!(same_kind, "{t:?} comes back as {back}");
        }
    }

    #[test]
    fn format_type_matches_postgres() {
        let m = type_modifier(&DataType::Decimal128(12, 2));
        assert_eq!(format_type(1700, m).as_deref(), Some("numeric(12,2)"));
        assert_eq!(format_type(1184, -1).as_deref(), Some("timestamp with time zone"));
        assert_eq!(format_type(1009, -1).as_deref(), Some("text[]"));
        assert_eq!(format_type(99999, -1), None);
    }
}
