//! Result columns named as PostgreSQL names them (`count`, `?column?`, `int4`).

use super::*;

/// What follows this character in a result column's name is not shown to clients
/// ([`shown_name`]): it tells apart the columns of a result that PostgreSQL names alike
/// (`SELECT count(a), count(b)`) where DataFusion requires unique names.
pub const NAME_SUFFIX: char = '\u{1f}';

/// A result column's name as the client sees it.
pub(crate) fn shown_name(name: &str) -> &str {
    name.split(NAME_SUFFIX).next().unwrap_or(name)
}

/// Names result columns as PostgreSQL does (`count`, `sum`, `version`, `?column?`) where
/// DataFusion would name them after the whole expression. Plain column references keep their
/// names. A name that repeats another column's gets a [`NAME_SUFFIX`] when `repeats` is
/// allowed (a query's result); otherwise (a table or view being created, whose columns need
/// distinct names) it is left to DataFusion.
pub(super) fn name_output_columns(q: &mut Query, repeats: bool) {
    let mut body = q.body.as_mut();
    loop {
        match body {
            SetExpr::SetOperation { left, .. } => body = left.as_mut(),
            SetExpr::Query(inner) => body = inner.body.as_mut(),
            _ => break,
        }
    }
    let SetExpr::Select(select) = body else { return };
    let mut taken: Vec<String> = select
        .projection
        .iter()
        .filter_map(|item| match item {
            SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.clone()),
            SelectItem::UnnamedExpr(Expr::Identifier(id)) => Some(id.value.clone()),
            SelectItem::UnnamedExpr(Expr::CompoundIdentifier(ids)) => ids.last().map(|i| i.value.clone()),
            _ => None,
        })
        .collect();
    let mut seen: Vec<String> = vec![];
    for item in select.projection.iter_mut() {
        // A column or alias named like an earlier one: DataFusion requires distinct names.
        let given = match &*item {
            SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.clone()),
            SelectItem::UnnamedExpr(Expr::Identifier(id)) => Some(id.value.clone()),
            SelectItem::UnnamedExpr(Expr::CompoundIdentifier(ids)) => ids.last().map(|i| i.value.clone()),
            _ => None,
        };
        if let Some(name) = given {
            if repeats && seen.contains(&name) {
                let unique =
                    (2..).map(|n| format!("{name}{NAME_SUFFIX}{n}")).find(|n| !taken.contains(n)).unwrap_or(name);
                taken.push(unique.clone());
                let expr = match std::mem::replace(item, SelectItem::Wildcard(Default::default())) {
                    SelectItem::ExprWithAlias { expr, .. } | SelectItem::UnnamedExpr(expr) => expr,
                    other => {
                        *item = other;
                        continue;
                    }
                };
                *item = SelectItem::ExprWithAlias { expr, alias: Ident::with_quote('"', unique) };
            } else {
                seen.push(name);
            }
            continue;
        }
        let SelectItem::UnnamedExpr(expr) = item else { continue };
        let (mut name, _) = figure_colname(expr);
        if taken.contains(&name) {
            if !repeats {
                continue;
            }
            let base = name.clone();
            name = (2..).map(|n| format!("{base}{NAME_SUFFIX}{n}")).find(|n| !taken.contains(n)).unwrap_or(base);
        }
        taken.push(name.clone());
        *item = SelectItem::ExprWithAlias { expr: expr.clone(), alias: Ident::with_quote('"', name) };
    }
}

/// PostgreSQL's `FigureColname`: a name and its strength (2 = real name, 1 = type or keyword
/// name, 0 = none).
pub(super) fn figure_colname(expr: &Expr) -> (String, u8) {
    match expr {
        Expr::Identifier(id) => (id.value.clone(), 2),
        Expr::CompoundIdentifier(ids) => (ids.last().map(|i| i.value.clone()).unwrap_or_default(), 2),
        Expr::Function(f) => (f.name.0.last().and_then(part).unwrap_or("?column?").to_ascii_lowercase(), 2),
        Expr::Nested(e) => figure_colname(e),
        // `s[i]` is named after `s`, `(f(x))[1]` after `f`; `x.field` after the field.
        Expr::CompoundFieldAccess { root, access_chain } => match access_chain.last() {
            Some(datafusion::sql::sqlparser::ast::AccessExpr::Dot(Expr::Identifier(id))) => (id.value.clone(), 2),
            _ => figure_colname(root),
        },
        // SQL's special forms are function calls in PostgreSQL, named after the function.
        Expr::Extract { .. } => ("extract".into(), 2),
        Expr::AtTimeZone { .. } => ("timezone".into(), 2),
        Expr::Substring { .. } => ("substring".into(), 2),
        Expr::Position { .. } => ("position".into(), 2),
        Expr::Overlay { .. } => ("overlay".into(), 2),
        Expr::Ceil { .. } => ("ceil".into(), 2),
        Expr::Floor { .. } => ("floor".into(), 2),
        Expr::Trim { trim_where, .. } => {
            use datafusion::sql::sqlparser::ast::TrimWhereField;
            let name = match trim_where {
                Some(TrimWhereField::Leading) => "ltrim",
                Some(TrimWhereField::Trailing) => "rtrim",
                _ => "btrim",
            };
            (name.into(), 2)
        }
        // `interval '1 day'` and `date '2024-01-01'` are casts of a literal: the type's name.
        Expr::Interval(_) => ("interval".into(), 1),
        Expr::TypedString(t) => (postgres_type_name(&t.data_type), 1),
        Expr::Cast { expr, data_type, .. } => {
            let inner = figure_colname(expr);
            if inner.1 > 1 {
                inner
            } else {
                let ty = custom_type_name(data_type).unwrap_or_else(|| postgres_type_name(data_type));
                (ty, 1)
            }
        }
        Expr::Case { else_result, .. } => match else_result.as_deref().map(figure_colname) {
            Some(n) if n.1 > 1 => n,
            _ => ("case".into(), 1),
        },
        Expr::Exists { .. } => ("exists".into(), 2),
        Expr::Array(_) => ("array".into(), 2),
        Expr::Subquery(q) => match q.body.as_ref() {
            SetExpr::Select(s) => match s.projection.first() {
                Some(SelectItem::ExprWithAlias { alias, .. }) => (alias.value.clone(), 2),
                Some(SelectItem::UnnamedExpr(e)) => figure_colname(e),
                _ => ("?column?".into(), 0),
            },
            _ => ("?column?".into(), 0),
        },
        _ => ("?column?".into(), 0),
    }
}

/// The name PostgreSQL gives a cast's type in a column name (`1::int` is `int4`).
pub(super) fn postgres_type_name(dt: &DataType) -> String {
    match dt {
        DataType::Int(_) | DataType::Integer(_) => "int4".into(),
        DataType::BigInt(_) => "int8".into(),
        DataType::SmallInt(_) => "int2".into(),
        DataType::Text | DataType::String(_) => "text".into(),
        DataType::Varchar(_) | DataType::CharacterVarying(_) => "varchar".into(),
        DataType::Boolean | DataType::Bool => "bool".into(),
        DataType::Double(_) | DataType::DoublePrecision | DataType::Float8 => "float8".into(),
        DataType::Real | DataType::Float4 => "float4".into(),
        DataType::Numeric(_) | DataType::Decimal(_) => "numeric".into(),
        DataType::Date => "date".into(),
        DataType::Timestamp(_, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz) => "timestamptz".into(),
        DataType::Timestamp(_, _) => "timestamp".into(),
        DataType::Interval { .. } => "interval".into(),
        other => other.to_string().to_ascii_lowercase(),
    }
}
