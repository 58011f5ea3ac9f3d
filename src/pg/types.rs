//! Arrow types as PostgreSQL types: the OID and name each result column gets on the wire and
//! in `pg_catalog`. Only built-in PostgreSQL type OIDs are ever used.

use datafusion::arrow::datatypes::{DataType, TimeUnit};

/// A built-in PostgreSQL type: OID, name, array type OID, length (`typlen`), category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgType {
    pub oid: u32,
    pub name: &'static str,
    pub array_oid: u32,
    pub len: i16,
    pub category: &'static str,
}

const fn t(oid: u32, name: &'static str, array_oid: u32, len: i16, category: &'static str) -> PgType {
    PgType { oid, name, array_oid, len, category }
}

pub const BOOL: PgType = t(16, "bool", 1000, 1, "B");
pub const BYTEA: PgType = t(17, "bytea", 1001, -1, "U");
pub const CHAR: PgType = t(18, "char", 1002, 1, "Z");
pub const NAME: PgType = t(19, "name", 1003, 64, "S");
pub const INT8: PgType = t(20, "int8", 1016, 8, "N");
pub const INT2: PgType = t(21, "int2", 1005, 2, "N");
pub const INT4: PgType = t(23, "int4", 1007, 4, "N");
pub const TEXT: PgType = t(25, "text", 1009, -1, "S");
pub const OID: PgType = t(26, "oid", 1028, 4, "N");
pub const JSON: PgType = t(114, "json", 199, -1, "U");
pub const FLOAT4: PgType = t(700, "float4", 1021, 4, "N");
pub const FLOAT8: PgType = t(701, "float8", 1022, 8, "N");
pub const VARCHAR: PgType = t(1043, "varchar", 1015, -1, "S");
pub const DATE: PgType = t(1082, "date", 1182, 4, "D");
pub const TIME: PgType = t(1083, "time", 1183, 8, "D");
pub const TIMESTAMP: PgType = t(1114, "timestamp", 1115, 8, "D");
pub const TIMESTAMPTZ: PgType = t(1184, "timestamptz", 1185, 8, "D");
pub const INTERVAL: PgType = t(1186, "interval", 1187, 16, "T");
pub const NUMERIC: PgType = t(1700, "numeric", 1231, -1, "N");
pub const UUID: PgType = t(2950, "uuid", 2951, 16, "U");

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
    let base = match oid {
        16 => "boolean",
        17 => "bytea",
        18 => "\"char\"",
        19 => "name",
        20 => "bigint",
        21 => "smallint",
        23 => "integer",
        25 => "text",
        26 => "oid",
        114 => "json",
        700 => "real",
        701 => "double precision",
        1043 => "character varying",
        1082 => "date",
        1083 => "time without time zone",
        1114 => "timestamp without time zone",
        1184 => "timestamp with time zone",
        1186 => "interval",
        1700 => "numeric",
        2950 => "uuid",
        _ => {
            let element = BUILTIN.iter().find(|t| t.array_oid == oid)?;
            return format_type(element.oid, typmod).map(|s| format!("{s}[]"));
        }
    };
    Some(match oid {
        1700 if typmod >= 4 => format!("numeric({},{})", (typmod - 4) >> 16, (typmod - 4) & 0xffff),
        1043 if typmod >= 4 => format!("{base}({})", typmod - 4),
        1114 | 1184 if typmod >= 0 => base.replacen("timestamp", &format!("timestamp({typmod})"), 1),
        _ => base.to_string(),
    })
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
    fn format_type_matches_postgres() {
        let m = type_modifier(&DataType::Decimal128(12, 2));
        assert_eq!(format_type(1700, m).as_deref(), Some("numeric(12,2)"));
        assert_eq!(format_type(1184, -1).as_deref(), Some("timestamp with time zone"));
        assert_eq!(format_type(1009, -1).as_deref(), Some("text[]"));
        assert_eq!(format_type(99999, -1), None);
    }
}
