//! PostgreSQL's operators and casts to its own types (`::regclass`, `::oid`, `::int8`,
//! `::text[]`) in forms DataFusion plans, from the one table of types ([`crate::pg::types`]).

use super::*;

pub(super) fn builtin_operator(symbol: &str) -> Option<BinaryOperator> {
    Some(match symbol {
        "~" => BinaryOperator::PGRegexMatch,
        "~*" => BinaryOperator::PGRegexIMatch,
        "!~" => BinaryOperator::PGRegexNotMatch,
        "!~*" => BinaryOperator::PGRegexNotIMatch,
        "=" => BinaryOperator::Eq,
        "<>" | "!=" => BinaryOperator::NotEq,
        "<" => BinaryOperator::Lt,
        ">" => BinaryOperator::Gt,
        "<=" => BinaryOperator::LtEq,
        ">=" => BinaryOperator::GtEq,
        "||" => BinaryOperator::StringConcat,
        _ => return None,
    })
}

/// The last part of a custom type name, lower-cased: `pg_catalog.text` -> `text`.
pub(super) fn custom_type_name(dt: &DataType) -> Option<String> {
    match dt {
        DataType::Regclass => Some("regclass".into()),
        DataType::Custom(name, _) => name.0.last().and_then(part).map(|s| s.to_ascii_lowercase()),
        _ => None,
    }
}

/// The type an array of a PostgreSQL-only element type is planned as: `oid[]` (asyncpg's
/// type introspection binds `$1::oid[]`) is an array of unsigned integers (the catalog's OID
/// columns, described as `oid[]`), `int4[]` of integers, ...
pub(super) fn array_of_known_type(dt: &DataType) -> Option<DataType> {
    use datafusion::sql::sqlparser::ast::ArrayElemTypeDef;
    let DataType::Array(ArrayElemTypeDef::SquareBracket(element, size)) = dt else { return None };
    let element = match custom_type_name(element)?.as_str() {
        "oid" => DataType::IntUnsigned(None),
        name => plain_type(name)?,
    };
    Some(DataType::Array(ArrayElemTypeDef::SquareBracket(Box::new(element), *size)))
}

/// The SQL type a PostgreSQL type name that DataFusion does not know stands for, when it is a
/// plain one (`int8`, `float4`, `bool`, `text`, ...), from the one table of types.
pub(super) fn plain_type(name: &str) -> Option<DataType> {
    use crate::pg::types::{BUILTIN, Value as V, named};
    let oid = named(name)?;
    Some(match BUILTIN.iter().find(|t| t.oid == oid)?.value? {
        V::Int64 => DataType::BigInt(None),
        V::Int32 => DataType::Int(None),
        V::Int16 => DataType::SmallInt(None),
        V::Float64 => DataType::DoublePrecision,
        V::Float32 => DataType::Real,
        V::Bool => DataType::Boolean,
        V::Text => DataType::Text,
        _ => return None,
    })
}

pub(super) fn rewrite_cast(inner: &Expr, dt: &DataType, kind: &CastKind) -> Option<Expr> {
    if let Some(array) = array_of_known_type(dt) {
        return Some(Expr::Cast {
            kind: kind.clone(),
            expr: Box::new(inner.clone()),
            data_type: array,
            array: false,
            format: None,
        });
    }
    let is_text = matches!(dt, DataType::Text | DataType::Varchar(_) | DataType::CharacterVarying(_));
    let name = match custom_type_name(dt) {
        Some(n) => n,
        None if is_text && (calls(inner, "to_regtype") || calls(inner, "pg_regclass_oid")) => "text".into(),
        None => return None,
    };
    let cast = |data_type: DataType| Expr::Cast {
        kind: kind.clone(),
        expr: Box::new(inner.clone()),
        data_type,
        array: false,
        format: None,
    };
    Some(match name.as_str() {
        // `'int4'::regtype::text` and `'t'::regclass::text`: the name the OID shows as.
        "text" | "name" | "varchar" if calls(inner, "to_regtype") => {
            call("pg_regtype_name", vec![cast_bigint(inner, kind)])
        }
        "text" | "name" | "varchar" if calls(inner, "pg_regclass_oid") => {
            call("pg_regclass_name", vec![cast_bigint(inner, kind)])
        }
        "text" | "name" | "bpchar" | "char" | "varchar" | "regnamespace" => cast(DataType::Text),
        // `x::regclass::oid`: the OID of the relation x names (a name or an OID).
        "oid" | "int8" if calls(inner, "pg_regclass_name") => {
            let Expr::Function(f) = inner else { return None };
            let FunctionArguments::List(list) = &f.args else { return None };
            let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Cast { expr: x, .. }))) = list.args.first()
            else {
                return None;
            };
            call("pg_regclass_oid", vec![cast_text(x, kind)])
        }
        "oid" => cast(DataType::BigInt(None)),
        "regclass" => match inner {
            Expr::Value(v) if matches!(v.value, Value::SingleQuotedString(_)) => {
                call("pg_regclass_oid", vec![inner.clone()])
            }
            // A parameter is bound as the relation's name (or its OID as text), as PostgreSQL
            // reads a parameter it types `regclass` (SQLAlchemy's `CAST($1 AS REGCLASS)`).
            Expr::Value(v) if matches!(v.value, Value::Placeholder(_)) => {
                call("pg_regclass_oid", vec![cast_text(inner, kind)])
            }
            // A name computed in the query (`format('%I.%I', schema, table)::regclass`).
            e if is_text_expr(e) => call("pg_regclass_oid", vec![e.clone()]),
            _ => call("pg_regclass_name", vec![cast_bigint(inner, kind)]),
        },
        // `'int4'::regtype` is the type's OID (psql, pgjdbc and DBeaver compare with it).
        "regtype" => match inner {
            Expr::Value(v) if matches!(v.value, Value::SingleQuotedString(_)) => {
                call("to_regtype", vec![inner.clone()])
            }
            _ => call("pg_regtype_name", vec![cast_bigint(inner, kind)]),
        },
        other => cast(plain_type(other)?),
    })
}

/// `x.typtype = 'd'` (or `'c'`, `'e'`, `'r'`, `'m'`): true of no type in journeydb's catalog,
/// whose types are all base types (`b`) or pseudo-types (`p`).
pub(super) fn is_absent_type_kind(e: &Expr) -> bool {
    let Expr::BinaryOp { left, op: BinaryOperator::Eq, right } = e else { return false };
    let is_typtype = |e: &Expr| match e {
        Expr::Identifier(i) => i.value.eq_ignore_ascii_case("typtype"),
        Expr::CompoundIdentifier(parts) => parts.last().is_some_and(|i| i.value.eq_ignore_ascii_case("typtype")),
        _ => false,
    };
    let is_absent_kind = |e: &Expr| matches!(e, Expr::Value(v) if matches!(&v.value, Value::SingleQuotedString(k) if ["d", "c", "e", "r", "m"].contains(&k.as_str())));
    (is_typtype(left) && is_absent_kind(right)) || (is_typtype(right) && is_absent_kind(left))
}

/// Whether an expression is text by its shape: a string function's call, a concatenation or a
/// cast to text.
pub(super) fn is_text_expr(e: &Expr) -> bool {
    match e {
        Expr::Function(f) => ["format", "concat", "concat_ws", "quote_ident", "lower", "upper", "replace", "trim"]
            .iter()
            .any(|n| named(f, n)),
        Expr::BinaryOp { op: BinaryOperator::StringConcat, .. } => true,
        Expr::Cast { data_type: DataType::Text, .. } => true,
        Expr::Nested(inner) => is_text_expr(inner),
        _ => false,
    }
}

pub(super) fn calls(e: &Expr, name: &str) -> bool {
    matches!(e, Expr::Function(f) if named(f, name))
}

pub(super) fn named(f: &datafusion::sql::sqlparser::ast::Function, name: &str) -> bool {
    f.name.0.last().and_then(part).is_some_and(|n| n.eq_ignore_ascii_case(name))
}

pub(super) fn cast_text(inner: &Expr, kind: &CastKind) -> Expr {
    Expr::Cast {
        kind: kind.clone(),
        expr: Box::new(inner.clone()),
        data_type: DataType::Text,
        array: false,
        format: None,
    }
}

/// An interval's text with each `[-]h:mm[:ss[.f]]` written as hours, minutes and seconds
/// (`1 day 02:03:04` -> `1 day 2 hours 3 minutes 4 seconds`), the sign applying to each.
/// A timestamp literal whose time has hours and minutes only (`2024-07-01 12:00`, with or
/// without a zone after it) with `:00` seconds added; None for any other text.
pub(crate) fn with_seconds(text: &str) -> Option<String> {
    let b = text.trim().as_bytes();
    let digits = |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    let shaped = digits(0..4)
        && b.get(4) == Some(&b'-')
        && digits(5..7)
        && b.get(7) == Some(&b'-')
        && digits(8..10)
        && matches!(b.get(10), Some(b' ' | b'T'))
        && digits(11..13)
        && b.get(13) == Some(&b':')
        && digits(14..16)
        && !matches!(b.get(16), Some(b':') | Some(b'0'..=b'9'));
    let t = text.trim();
    shaped.then(|| format!("{}:00{}", &t[..16], &t[16..]))
}

pub fn interval_units(text: &str) -> String {
    text.split_whitespace()
        .map(|token| {
            let (sign, body) = match token.strip_prefix('-') {
                Some(rest) => ("-", rest),
                None => ("", token.strip_prefix('+').unwrap_or(token)),
            };
            let parts: Vec<&str> = body.split(':').collect();
            let numeric = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit() || c == '.');
            if !(2..=3).contains(&parts.len()) || !parts.iter().all(|p| numeric(p)) {
                return token.to_string();
            }
            let units = ["hours", "minutes", "seconds"];
            parts.iter().zip(units).map(|(p, u)| format!("{sign}{p} {u}")).collect::<Vec<_>>().join(" ")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub(super) fn cast_bigint(inner: &Expr, kind: &CastKind) -> Expr {
    Expr::Cast {
        kind: kind.clone(),
        expr: Box::new(inner.clone()),
        data_type: DataType::BigInt(None),
        array: false,
        format: None,
    }
}

/// `name(args...)` as an expression.
pub(super) fn call(name: &str, args: Vec<Expr>) -> Expr {
    let mut e =
        journeydb_udfs::dialect::parse_expr(&format!("{name}(NULL)")).unwrap_or(Expr::Value(Value::Null.into()));
    if let Expr::Function(f) = &mut e
        && let FunctionArguments::List(list) = &mut f.args
    {
        list.args = args.into_iter().map(|a| FunctionArg::Unnamed(FunctionArgExpr::Expr(a))).collect();
    }
    e
}
