//! Statement rewrites that let DataFusion plan the SQL PostgreSQL clients send.
//!
//! Every rewrite keeps the statement's meaning:
//! - `pg_catalog.f(...)` calls become `f(...)` (our functions are unqualified);
//!   `OPERATOR(pg_catalog.~)` becomes `~`; `COLLATE pg_catalog.default` is dropped (there is
//!   one collation);
//! - casts to PostgreSQL-only types: `::text`, `::name`, `::oid`, `::int2` ... become the Arrow
//!   equivalents; `'name'::regclass` becomes the relation's OID and `oid::regclass` /
//!   `oid::regtype` its name;
//! - an unqualified `pg_*` catalog table is looked up in `pg_catalog` (PostgreSQL searches
//!   `pg_catalog` first);
//! - a SELECT that inner-joins a catalog table that is always empty in journeydb
//!   ([`ALWAYS_EMPTY`]) and does not aggregate returns no rows: it is replaced by an empty
//!   SELECT of the same arity, and a scalar subquery over one by NULL. This is exact, and it
//!   spares DataFusion constructs it cannot plan inside such queries (psql's `\d` footers);
//! - named arguments of a FROM-clause function (`journey_paths(max_steps => 3)`) become a
//!   marker and a value, which the journey reports read back as options.

use super::catalog::{ALWAYS_EMPTY, PG_CATALOG};
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, CastKind, CopySource, DataType, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr,
    Ident, ObjectName, ObjectNamePart, OrderBy, OrderByKind, Query, Select, SelectItem, SetExpr, Statement,
    TableFactor, TimezoneInfo, Value, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::parser::Parser;
use journeydb_udfs::common::options::NAMED_PREFIX;
use std::ops::ControlFlow;

/// Prefix of catalog table names looked up in `pg_catalog` when unqualified.
const CATALOG_PREFIX: &str = "pg_";

/// Rewrites a statement in place. `is_store_table` tells user tables from catalog tables.
pub fn rewrite(stmt: &mut Statement, is_store_table: &dyn Fn(&str) -> bool) {
    // Names first: PostgreSQL names a column after what the client wrote.
    match stmt {
        Statement::Query(q) => name_output_columns(q, true),
        Statement::CreateTable(t) => {
            if let Some(q) = t.query.as_mut() {
                name_output_columns(q, false)
            }
        }
        Statement::CreateView(v) => name_output_columns(&mut v.query, false),
        Statement::Copy { source: CopySource::Query(q), .. } => name_output_columns(q, true),
        // INSERT reads its rows by position: repeated names are allowed, as in PostgreSQL.
        Statement::Insert(insert) => {
            if let Some(q) = insert.source.as_mut() {
                name_output_columns(q, true)
            }
        }
        _ => {}
    }
    let mut v = Rewriter { is_store_table };
    let _ = stmt.visit(&mut v);
    if references_catalog(stmt) {
        let _ = stmt.visit(&mut AggregateScalarSubqueries);
    }
    let _ = stmt.visit(&mut InSubqueriesAsArrays);
}

/// `x [NOT] IN (subquery)` in a select list, ORDER BY or GROUP BY, where DataFusion plans no IN
/// subquery, becomes `[NOT] pg_in_array(x, (SELECT array_agg(v) FROM (subquery) AS t(v)))`: the
/// same three-valued answer ([`super::in_array`]). In WHERE and HAVING, where DataFusion turns
/// it into a semi join, it stays.
struct InSubqueriesAsArrays;

impl VisitorMut for InSubqueriesAsArrays {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        in_subqueries_of_body(&mut query.body);
        if let Some(OrderBy { kind: OrderByKind::Expressions(items), .. }) = &mut query.order_by {
            for item in items {
                in_subqueries_as_arrays(&mut item.expr);
            }
        }
        ControlFlow::Continue(())
    }
}

fn in_subqueries_of_body(body: &mut SetExpr) {
    match body {
        SetExpr::Select(select) => {
            for item in &mut select.projection {
                if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item {
                    in_subqueries_as_arrays(e);
                }
            }
            if let GroupByExpr::Expressions(exprs, _) = &mut select.group_by {
                exprs.iter_mut().for_each(in_subqueries_as_arrays);
            }
        }
        SetExpr::SetOperation { left, right, .. } => {
            in_subqueries_of_body(left);
            in_subqueries_of_body(right);
        }
        _ => {}
    }
}

/// Rewrites the IN subqueries of `expr` itself; those of the queries inside it are rewritten
/// when the visit reaches those queries.
fn in_subqueries_as_arrays(expr: &mut Expr) {
    struct InToArray {
        depth: usize,
    }
    impl VisitorMut for InToArray {
        type Break = ();
        fn pre_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
            self.depth += 1;
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
            self.depth -= 1;
            ControlFlow::Continue(())
        }
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            if self.depth == 0
                && let Expr::InSubquery { expr: x, subquery, negated } = expr
            {
                let sql = format!(
                    "{}{}({x}, (SELECT array_agg(__in_value) FROM ({subquery}) AS __in_values(__in_value)))",
                    if *negated { "NOT " } else { "" },
                    super::in_array::NAME
                );
                if let Ok(replacement) = journeydb_udfs::dialect::parse_expr(&sql) {
                    *expr = replacement;
                }
            }
            ControlFlow::Continue(())
        }
    }
    let _ = expr.visit(&mut InToArray { depth: 0 });
}

/// Dollar-quoted strings (`$tag$ ... $tag$`, which dbt uses for COMMENT ON) as standard
/// single-quoted literals, for statements where the parser accepts only the latter. Quoted
/// strings, identifiers and comments are skipped; None when there is no dollar quote.
pub fn dollar_quotes_to_literals(sql: &str) -> Option<String> {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let (mut i, mut last, mut changed) = (0, 0, false);
    let skip_to = |from: usize, end: &str| sql[from..].find(end).map(|p| from + p + end.len()).unwrap_or(sql.len());
    while i < b.len() {
        match b[i] {
            b'\'' => {
                // A standard string: '' is a quote inside it.
                i += 1;
                while i < b.len() {
                    if b[i] == b'\'' {
                        if b.get(i + 1) == Some(&b'\'') {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'"' => i = skip_to(i + 1, "\""),
            b'-' if b.get(i + 1) == Some(&b'-') => i = skip_to(i, "\n"),
            b'/' if b.get(i + 1) == Some(&b'*') => i = skip_to(i + 2, "*/"),
            b'$' => {
                let tag_end = sql[i + 1..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .map(|p| i + 1 + p)
                    .unwrap_or(b.len());
                let tag = &sql[i + 1..tag_end];
                let is_tag = b.get(tag_end) == Some(&b'$') && !tag.starts_with(|c: char| c.is_ascii_digit());
                if !is_tag {
                    i += 1;
                    continue;
                }
                let delimiter = &sql[i..=tag_end];
                let body_start = tag_end + 1;
                let len = sql[body_start..].find(delimiter)?;
                out.push_str(&sql[last..i]);
                out.push('\'');
                out.push_str(&sql[body_start..body_start + len].replace('\'', "''"));
                out.push('\'');
                i = body_start + len + delimiter.len();
                last = i;
                changed = true;
            }
            _ => i += 1,
        }
    }
    out.push_str(&sql[last.min(sql.len())..]);
    changed.then_some(out)
}

/// `ALTER VIEW name RENAME TO new` as `ALTER TABLE name RENAME TO new` (the same in
/// PostgreSQL, and the form the parser knows), for each such statement of `sql`; None when
/// there is none.
pub fn alter_view_rename(sql: &str) -> Option<String> {
    let mut out = String::with_capacity(sql.len());
    let mut changed = false;
    for (i, part) in sql.split(';').enumerate() {
        if i > 0 {
            out.push(';');
        }
        let words: Vec<String> = part.split_whitespace().map(|w| w.to_ascii_lowercase()).collect();
        let is_rename = words.len() >= 6
            && words[0] == "alter"
            && words[1] == "view"
            && words.windows(2).any(|w| w[0] == "rename" && w[1] == "to");
        if is_rename && let Some(at) = part.to_ascii_lowercase().find("view") {
            out.push_str(&part[..at]);
            out.push_str("TABLE");
            out.push_str(&part[at + 4..]);
            changed = true;
        } else {
            out.push_str(part);
        }
    }
    changed.then_some(out)
}

fn references_catalog(stmt: &mut Statement) -> bool {
    let mut found = false;
    let _ = datafusion::sql::sqlparser::ast::visit_relations_mut(stmt, |name| {
        found |= name.0.len() == 2 && part(&name.0[0]).is_some_and(|p| p.eq_ignore_ascii_case(PG_CATALOG));
        ControlFlow::<()>::Continue(())
    });
    found
}

/// In catalog queries, a scalar subquery that returns one column without aggregating becomes
/// `max(column)`: the same answer when it has at most one row, which catalog subqueries have by
/// construction (PostgreSQL would raise an error for more), and a form DataFusion can
/// decorrelate.
struct AggregateScalarSubqueries;

impl VisitorMut for AggregateScalarSubqueries {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::Subquery(q) = expr
            && q.limit_clause.is_none()
            && let SetExpr::Select(select) = q.body.as_mut()
            && select.projection.len() == 1
            && matches!(&select.group_by, GroupByExpr::Expressions(e, _) if e.is_empty())
            && !select.projection.iter().any(item_aggregates)
            && !is_pruned(select)
        {
            let item = select.projection.remove(0);
            let wrapped = |e: Expr| call("max", vec![e]);
            select.projection.push(match item {
                SelectItem::UnnamedExpr(e) => SelectItem::UnnamedExpr(wrapped(e)),
                SelectItem::ExprWithAlias { expr, alias } => SelectItem::ExprWithAlias { expr: wrapped(expr), alias },
                other => other,
            });
        }
        ControlFlow::Continue(())
    }
}

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
fn name_output_columns(q: &mut Query, repeats: bool) {
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
fn figure_colname(expr: &Expr) -> (String, u8) {
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
fn postgres_type_name(dt: &DataType) -> String {
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

struct Rewriter<'a> {
    is_store_table: &'a dyn Fn(&str) -> bool,
}

impl VisitorMut for Rewriter<'_> {
    type Break = ();

    /// `f(a, name => value)` in FROM becomes `f(a, '=>name', value)`: DataFusion's planner has no
    /// named arguments for table functions; the journey reports read the marker back
    /// (`journeydb_udfs::common::options`).
    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        scalar_functions_in_from(factor);
        if let TableFactor::Table { args: Some(args), .. } = factor {
            let mut positional = Vec::with_capacity(args.args.len());
            for arg in std::mem::take(&mut args.args) {
                let name = match &arg {
                    FunctionArg::Named { name, .. } => Some(name.value.clone()),
                    FunctionArg::ExprNamed { name: Expr::Identifier(id), .. } => Some(id.value.clone()),
                    _ => None,
                };
                match (name, arg) {
                    (Some(name), FunctionArg::Named { arg, .. } | FunctionArg::ExprNamed { arg, .. }) => {
                        let marker = format!("{NAMED_PREFIX}{name}");
                        positional.push(FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::value(
                            Value::SingleQuotedString(marker),
                        ))));
                        positional.push(FunctionArg::Unnamed(arg));
                    }
                    (_, arg) => positional.push(arg),
                }
            }
            args.args = positional;
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, name: &mut ObjectName) -> ControlFlow<()> {
        if let [ObjectNamePart::Identifier(id)] = name.0.as_slice()
            && id.value.starts_with(CATALOG_PREFIX)
            && !(self.is_store_table)(&id.value)
        {
            let table = id.clone();
            name.0 = vec![ObjectNamePart::Identifier(Ident::new(PG_CATALOG)), ObjectNamePart::Identifier(table)];
        }
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        let pruned_whole = prune_set_expr(&mut query.body);
        if pruned_whole && matches!(query.body.as_ref(), SetExpr::Select(_)) {
            // ORDER BY may name columns the empty SELECT no longer has; there is nothing to order.
            query.order_by = None;
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        match expr {
            // `user`, `current_user`, `session_user`, `current_catalog` without parentheses (SQL's
            // spelling; Grafana's table list says `THEN user`) are calls of our functions.
            Expr::Function(f)
                if matches!(f.args, FunctionArguments::None)
                    && f.name.0.len() == 1
                    && part(&f.name.0[0]).is_some_and(|n| {
                        ["user", "current_user", "session_user", "current_catalog"]
                            .iter()
                            .any(|k| n.eq_ignore_ascii_case(k))
                    }) =>
            {
                let keyword = part(&f.name.0[0]).unwrap_or_default().to_ascii_lowercase();
                let name = match keyword.as_str() {
                    "session_user" => "pg_session_user",
                    // `current_catalog` is the database's name.
                    "current_catalog" => "current_database",
                    _ => "pg_current_user",
                };
                *expr = call(name, vec![]);
            }
            Expr::Function(f)
                if f.name.0.len() == 2 && part(&f.name.0[0]).is_some_and(|p| p.eq_ignore_ascii_case(PG_CATALOG)) =>
            {
                f.name.0.remove(0);
            }
            Expr::BinaryOp { op: BinaryOperator::PGCustomBinaryOperator(parts), .. } => {
                let symbol = parts.last().map(String::as_str).unwrap_or("");
                if let Some(op) = builtin_operator(symbol)
                    && let Expr::BinaryOp { op: o, .. } = expr
                {
                    *o = op;
                }
            }
            Expr::Collate { expr: inner, .. } => {
                *expr = (**inner).clone();
            }
            Expr::Cast { expr: inner, data_type: DataType::Interval { .. }, .. } => {
                if let Expr::Value(v) = inner.as_mut()
                    && let Value::SingleQuotedString(text) = &mut v.value
                {
                    *text = interval_units(text);
                }
            }
            // `ts AT TIME ZONE zone` is PostgreSQL's `timezone(zone, ts)`: an instant's wall clock
            // in the zone, or the instant at which the zone's clocks show a wall clock.
            Expr::AtTimeZone { timestamp, time_zone } => {
                *expr = call("timezone", vec![(**time_zone).clone(), (**timestamp).clone()]);
            }
            // `timestamp '2024-07-01 12:00'`: PostgreSQL reads a time without seconds.
            Expr::TypedString(t) if matches!(t.data_type, DataType::Timestamp(..)) => {
                if let Value::SingleQuotedString(text) = &mut t.value.value
                    && let Some(full) = with_seconds(text)
                {
                    *text = full;
                }
            }
            // (No other rewrite applies to a cast to timestamp.)
            Expr::Cast { expr: inner, data_type: DataType::Timestamp(..), .. } => {
                if let Expr::Value(v) = inner.as_mut()
                    && let Value::SingleQuotedString(text) = &mut v.value
                    && let Some(full) = with_seconds(text)
                {
                    *text = full;
                }
            }
            Expr::Cast { expr: inner, data_type, kind, .. } => {
                if let Some(replacement) = rewrite_cast(inner, data_type, kind) {
                    *expr = replacement;
                }
            }
            Expr::Subquery(q) if is_empty_query(q) => {
                *expr = Expr::Value(Value::Null.into());
            }
            // `CASE WHEN t.typtype = 'd' THEN (SELECT ...) ELSE NULL END`: journeydb has no
            // domain, composite, enum, range or multirange types, so the branch is never taken;
            // asyncpg's type introspection has two such branches, with correlated subqueries
            // DataFusion cannot run.
            Expr::Case { operand: None, conditions, else_result, .. }
                if !conditions.is_empty() && conditions.iter().all(|w| is_absent_type_kind(&w.condition)) =>
            {
                *expr = else_result.as_deref().cloned().unwrap_or_else(|| Expr::Value(Value::Null.into()));
            }
            // `INTERVAL '1 day 02:03:04'`: the time of day in units DataFusion reads.
            Expr::Interval(i) if i.leading_field.is_none() => {
                if let Expr::Value(v) = i.value.as_mut()
                    && let Value::SingleQuotedString(text) = &mut v.value
                {
                    *text = interval_units(text);
                }
            }
            // `substring(text FROM 'pattern')`: PostgreSQL's regular-expression form (a string
            // where the position would be).
            Expr::Substring { expr: text, substring_from: Some(from), substring_for: None, .. } if matches!(from.as_ref(), Expr::Value(v) if matches!(v.value, Value::SingleQuotedString(_))) =>
            {
                *expr = call("pg_substring_regex", vec![(**text).clone(), (**from).clone()]);
            }
            // ARRAY(SELECT f(x) FROM unnest(arr) x): an element-wise map of one array, which
            // DataFusion plans as array_transform with a lambda (NULL array: empty array).
            Expr::Function(f) if function_name_is(f, "array") => {
                if let FunctionArguments::Subquery(q) = &f.args
                    && let Some(mapped) = unnest_map(q)
                {
                    *expr = mapped;
                }
            }
            // `age(x)` is `age(current_date, x)`: from midnight today in the session's zone.
            Expr::Function(f) if named(f, "age") => {
                if let FunctionArguments::List(list) = &mut f.args
                    && list.args.len() == 1
                    && let Expr::Function(today) = call("current_date", vec![])
                {
                    let today = Expr::Function(datafusion::sql::sqlparser::ast::Function {
                        args: FunctionArguments::None,
                        ..today
                    });
                    list.args.insert(0, FunctionArg::Unnamed(FunctionArgExpr::Expr(today)));
                }
            }
            // ARRAY(SELECT ...) over nothing is the empty array.
            Expr::Function(f)
                if part(f.name.0.last().unwrap_or(&ObjectNamePart::Identifier(Ident::new(""))))
                    .is_some_and(|n| n.eq_ignore_ascii_case("array"))
                    && matches!(&f.args, FunctionArguments::Subquery(q) if is_empty_query(q)) =>
            {
                *expr = call("make_array", vec![]);
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// PostgreSQL reads a scalar function in FROM as a one-row table with one column named after
/// the alias: `string_to_array(...) s` (Grafana's table list) becomes `(SELECT
/// string_to_array(...) AS s) AS s`. A set-returning function of one column names its column
/// the same way: `generate_series(...) AS i` has a column `i`, and without an alias the column
/// is `generate_series` (DataFusion would say `value`).
fn scalar_functions_in_from(factor: &mut TableFactor) {
    use datafusion::sql::sqlparser::ast::{TableAlias, TableAliasColumnDef};
    let TableFactor::Table { name, args: Some(args), alias, .. } = factor else { return };
    let is_series = match name.0.as_slice() {
        [f] => part(f).is_some_and(|f| f.eq_ignore_ascii_case("generate_series")),
        [schema, f] => {
            part(schema).is_some_and(|s| s.eq_ignore_ascii_case(PG_CATALOG))
                && part(f).is_some_and(|f| f.eq_ignore_ascii_case("generate_series"))
        }
        _ => false,
    };
    if is_series {
        let function = "generate_series";
        let alias = alias.get_or_insert_with(|| TableAlias {
            explicit: true,
            name: Ident::new(function),
            columns: vec![],
            at: None,
        });
        if alias.columns.is_empty() {
            alias.columns = vec![TableAliasColumnDef { name: alias.name.clone(), data_type: None }];
        }
        return;
    }
    let Some(function) = (name.0.len() == 1).then(|| part(&name.0[0])).flatten().map(str::to_ascii_lowercase) else {
        return;
    };
    let Some(alias) = alias else { return };
    if !alias.columns.is_empty() {
        return;
    }
    match function.as_str() {
        "string_to_array" | "regexp_split_to_array" | "current_schemas" | "parse_ident" => {
            let call = Expr::Function(datafusion::sql::sqlparser::ast::Function {
                name: name.clone(),
                uses_odbc_syntax: false,
                parameters: FunctionArguments::None,
                args: FunctionArguments::List(datafusion::sql::sqlparser::ast::FunctionArgumentList {
                    duplicate_treatment: None,
                    args: args.args.clone(),
                    clauses: vec![],
                }),
                filter: None,
                null_treatment: None,
                over: None,
                within_group: vec![],
            });
            let Ok(mut statements) = journeydb_udfs::dialect::parse_sql("SELECT 1") else { return };
            let Some(Statement::Query(mut query)) = statements.pop() else { return };
            if let SetExpr::Select(select) = query.body.as_mut() {
                select.projection = vec![SelectItem::ExprWithAlias { expr: call, alias: alias.name.clone() }];
            }
            let alias = TableAlias { explicit: true, name: alias.name.clone(), columns: vec![], at: None };
            *factor = TableFactor::Derived { lateral: false, subquery: query, alias: Some(alias), sample: None };
        }
        _ => {}
    }
}

fn function_name_is(f: &datafusion::sql::sqlparser::ast::Function, name: &str) -> bool {
    f.name.0.last().and_then(part).is_some_and(|n| n.eq_ignore_ascii_case(name))
        && matches!(&f.args, FunctionArguments::Subquery(q) if !is_empty_query(q))
}

/// `ARRAY(SELECT <e> FROM [pg_catalog.]unnest(<arr>) [AS] x)` as
/// `coalesce(array_transform(<arr>, x -> <e>), make_array())`.
fn unnest_map(q: &Query) -> Option<Expr> {
    if q.with.is_some() || q.order_by.is_some() || q.limit_clause.is_some() {
        return None;
    }
    let SetExpr::Select(s) = q.body.as_ref() else { return None };
    let no_grouping = matches!(&s.group_by, GroupByExpr::Expressions(e, _) if e.is_empty());
    if s.projection.len() != 1 || s.selection.is_some() || !no_grouping || s.having.is_some() || s.distinct.is_some() {
        return None;
    }
    let (SelectItem::UnnamedExpr(body) | SelectItem::ExprWithAlias { expr: body, .. }) = &s.projection[0] else {
        return None;
    };
    let [from] = s.from.as_slice() else { return None };
    if !from.joins.is_empty() {
        return None;
    }
    let TableFactor::Table { name, alias: Some(alias), args: Some(args), .. } = &from.relation else { return None };
    if !name.0.last().and_then(part).is_some_and(|n| n.eq_ignore_ascii_case("unnest")) || !alias.columns.is_empty() {
        return None;
    }
    let [FunctionArg::Unnamed(FunctionArgExpr::Expr(array))] = args.args.as_slice() else { return None };
    let sql = format!("coalesce(array_transform({array}, {} -> {body}), make_array())", alias.name);
    Parser::new(&datafusion::sql::sqlparser::dialect::DuckDbDialect {})
        .try_with_sql(&sql)
        .and_then(|mut p| p.parse_expr())
        .ok()
}

fn part(p: &ObjectNamePart) -> Option<&str> {
    match p {
        ObjectNamePart::Identifier(id) => Some(id.value.as_str()),
        _ => None,
    }
}

fn builtin_operator(symbol: &str) -> Option<BinaryOperator> {
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
fn custom_type_name(dt: &DataType) -> Option<String> {
    match dt {
        DataType::Regclass => Some("regclass".into()),
        DataType::Custom(name, _) => name.0.last().and_then(part).map(|s| s.to_ascii_lowercase()),
        _ => None,
    }
}

/// The type an array of a PostgreSQL-only element type is planned as: `oid[]` (asyncpg's
/// type introspection binds `$1::oid[]`) is an array of unsigned integers (the catalog's OID
/// columns, described as `oid[]`), `int4[]` of integers, ...
fn array_of_known_type(dt: &DataType) -> Option<DataType> {
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
fn plain_type(name: &str) -> Option<DataType> {
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

fn rewrite_cast(inner: &Expr, dt: &DataType, kind: &CastKind) -> Option<Expr> {
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
fn is_absent_type_kind(e: &Expr) -> bool {
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
fn is_text_expr(e: &Expr) -> bool {
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

fn calls(e: &Expr, name: &str) -> bool {
    matches!(e, Expr::Function(f) if named(f, name))
}

fn named(f: &datafusion::sql::sqlparser::ast::Function, name: &str) -> bool {
    f.name.0.last().and_then(part).is_some_and(|n| n.eq_ignore_ascii_case(name))
}

fn cast_text(inner: &Expr, kind: &CastKind) -> Expr {
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

fn cast_bigint(inner: &Expr, kind: &CastKind) -> Expr {
    Expr::Cast {
        kind: kind.clone(),
        expr: Box::new(inner.clone()),
        data_type: DataType::BigInt(None),
        array: false,
        format: None,
    }
}

/// `name(args...)` as an expression.
fn call(name: &str, args: Vec<Expr>) -> Expr {
    let mut e =
        journeydb_udfs::dialect::parse_expr(&format!("{name}(NULL)")).unwrap_or(Expr::Value(Value::Null.into()));
    if let Expr::Function(f) = &mut e
        && let FunctionArguments::List(list) = &mut f.args
    {
        list.args = args.into_iter().map(|a| FunctionArg::Unnamed(FunctionArgExpr::Expr(a))).collect();
    }
    e
}

/// Prunes empty SELECTs in a set expression; true when the whole expression is empty.
fn prune_set_expr(body: &mut SetExpr) -> bool {
    match body {
        SetExpr::Select(select) => {
            if is_pruned(select) {
                return true;
            }
            if select_is_empty(select) {
                empty_select(select);
                return true;
            }
            false
        }
        SetExpr::SetOperation { left, right, .. } => {
            let l = prune_set_expr(left);
            let r = prune_set_expr(right);
            l && r
        }
        SetExpr::Query(q) => is_empty_query(q),
        _ => false,
    }
}

fn is_empty_query(q: &Query) -> bool {
    match q.body.as_ref() {
        SetExpr::Select(s) => is_pruned(s),
        _ => false,
    }
}

fn is_always_empty_table(factor: &TableFactor) -> bool {
    match factor {
        TableFactor::Table { name, .. } => {
            let parts: Vec<&str> = name.0.iter().filter_map(part).collect();
            match parts.as_slice() {
                [schema, table] => schema.eq_ignore_ascii_case(PG_CATALOG) && ALWAYS_EMPTY.contains(table),
                _ => false,
            }
        }
        // A subquery already emptied (queries are rewritten inside out): pgjdbc's
        // getPrimaryKeys selects `(result.KEYS).x` from one over pg_index.
        TableFactor::Derived { subquery, .. } => is_empty_query(subquery),
        _ => false,
    }
}

fn select_is_empty(select: &Select) -> bool {
    use datafusion::sql::sqlparser::ast::JoinOperator as J;
    let grouped =
        !matches!(&select.group_by, GroupByExpr::Expressions(e, _) if e.is_empty()) || select.having.is_some();
    if grouped || select.projection.iter().any(item_aggregates) {
        return false;
    }
    select.from.iter().any(|twj| {
        let inner_joins_empty = twj.joins.iter().any(|j| {
            matches!(j.join_operator, J::Join(_) | J::Inner(_) | J::CrossJoin(_)) && is_always_empty_table(&j.relation)
        });
        // The first table of a chain of LEFT joins empties the chain too.
        is_always_empty_table(&twj.relation)
            && twj.joins.iter().all(|j| {
                matches!(j.join_operator, J::Join(_) | J::Inner(_) | J::CrossJoin(_) | J::Left(_) | J::LeftOuter(_))
            })
            || inner_joins_empty
    })
}

const AGGREGATES: [&str; 12] = [
    "count",
    "sum",
    "min",
    "max",
    "avg",
    "string_agg",
    "array_agg",
    "bool_and",
    "bool_or",
    "every",
    "json_agg",
    "jsonb_agg",
];

fn item_aggregates(item: &SelectItem) -> bool {
    let expr = match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
        _ => return false,
    };
    expr_aggregates(expr)
}

fn expr_aggregates(expr: &Expr) -> bool {
    match expr {
        Expr::Function(f) if f.over.is_none() => {
            let name = f.name.0.last().and_then(part).unwrap_or("").to_ascii_lowercase();
            AGGREGATES.contains(&name.as_str())
                || matches!(&f.args, FunctionArguments::List(l) if l.args.iter().any(|a| matches!(a, FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) if expr_aggregates(e))))
        }
        Expr::BinaryOp { left, right, .. } => expr_aggregates(left) || expr_aggregates(right),
        Expr::Nested(e) | Expr::UnaryOp { expr: e, .. } | Expr::Cast { expr: e, .. } => expr_aggregates(e),
        Expr::Case { conditions, else_result, .. } => {
            conditions.iter().any(|c| expr_aggregates(&c.condition) || expr_aggregates(&c.result))
                || else_result.as_deref().is_some_and(expr_aggregates)
        }
        _ => false,
    }
}

/// Marker of a SELECT emptied by the rewriter: no FROM, `WHERE false`.
fn is_pruned(select: &Select) -> bool {
    select.from.is_empty() && matches!(&select.selection, Some(Expr::Value(v)) if v.value == Value::Boolean(false))
}

fn empty_select(select: &mut Select) {
    let projection = std::mem::take(&mut select.projection);
    select.projection = projection
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let alias = match &item {
                SelectItem::ExprWithAlias { alias, .. } => alias.clone(),
                SelectItem::UnnamedExpr(Expr::Identifier(id)) => id.clone(),
                SelectItem::UnnamedExpr(Expr::CompoundIdentifier(ids)) => {
                    ids.last().cloned().unwrap_or_else(|| Ident::new(format!("column{}", i + 1)))
                }
                _ => Ident::new(format!("column{}", i + 1)),
            };
            SelectItem::ExprWithAlias { expr: Expr::Value(Value::Null.into()), alias }
        })
        .collect();
    select.from.clear();
    select.selection = Some(Expr::Value(Value::Boolean(false).into()));
    select.distinct = None;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rw(sql: &str) -> String {
        let mut stmts = journeydb_udfs::dialect::parse_sql(sql).expect("parse");
        rewrite(&mut stmts[0], &|t| t == "pg_store_table");
        stmts[0].to_string()
    }

    #[test]
    fn user_is_current_user() {
        // Both columns are named `user`; the second `user` DataFusion sees carries a suffix.
        assert_eq!(rw("SELECT user, \"user\" FROM t"), "SELECT pg_current_user() AS \"user\u{1f}2\", \"user\" FROM t");
    }

    #[test]
    fn dollar_quotes_become_literals() {
        assert_eq!(
            dollar_quotes_to_literals("comment on table t is $x$it's$x$; select '$a$', \"$b$\", $1").as_deref(),
            Some("comment on table t is 'it''s'; select '$a$', \"$b$\", $1")
        );
        assert_eq!(
            dollar_quotes_to_literals("comment on column t.c is $dbt$$dbt$").as_deref(),
            Some("comment on column t.c is ''")
        );
        assert_eq!(dollar_quotes_to_literals("select $1, '$$'"), None);
        assert_eq!(dollar_quotes_to_literals("select $a$ unterminated"), None);
    }

    #[test]
    fn alter_view_rename_becomes_alter_table() {
        assert_eq!(
            alter_view_rename("alter view \"s\".\"v\" rename to \"w\"; select 1").as_deref(),
            Some("alter TABLE \"s\".\"v\" rename to \"w\"; select 1")
        );
        assert_eq!(alter_view_rename("ALTER VIEW v AS SELECT 1"), None);
        assert_eq!(alter_view_rename("SELECT 'alter view v rename to w'"), None);
    }

    #[test]
    fn qualifiers_operators_collations() {
        assert_eq!(
            rw(
                "SELECT pg_catalog.format_type(a, b) FROM pg_class WHERE c.relname OPERATOR(pg_catalog.~) '^(x)$' COLLATE pg_catalog.default"
            ),
            "SELECT format_type(a, b) AS \"format_type\" FROM pg_catalog.pg_class WHERE c.relname ~ '^(x)$'"
        );
        assert_eq!(rw("SELECT * FROM pg_store_table"), "SELECT * FROM pg_store_table");
    }

    #[test]
    fn output_columns_are_named_like_postgres() {
        assert_eq!(
            rw("SELECT channel, count(*), sum(revenue), 1, version(), x::text, 1::int, count(distinct x) FROM t"),
            "SELECT channel, count(*) AS \"count\", sum(revenue) AS \"sum\", 1 AS \"?column?\", version() AS \"version\", \
             x::TEXT AS \"x\", 1::INT AS \"int4\", count(DISTINCT x) AS \"count\u{1f}2\" FROM t"
        );
        assert_eq!(shown_name("count\u{1f}2"), "count");
        // A table's columns need distinct names: DataFusion's stay.
        assert_eq!(
            rw("CREATE TABLE n AS SELECT count(a), count(b) FROM t"),
            "CREATE TABLE n AS SELECT count(a) AS \"count\", count(b) FROM t"
        );
        assert_eq!(
            rw("SELECT extract(year FROM d), trim(s), s[1], interval '1 day', timestamptz '2024-01-01' FROM t"),
            "SELECT EXTRACT(YEAR FROM d) AS \"extract\", TRIM(s) AS \"btrim\", s[1] AS \"s\", INTERVAL '1 day' AS \"interval\", \
             TIMESTAMPTZ '2024-01-01' AS \"timestamptz\" FROM t"
        );
        assert_eq!(rw("SELECT 1 UNION SELECT 2"), "SELECT 1 AS \"?column?\" UNION SELECT 2");
    }

    #[test]
    fn catalog_scalar_subqueries_are_aggregated() {
        let s = rw(
            "SELECT (SELECT t.typname FROM pg_catalog.pg_type t WHERE t.oid = a.atttypid) AS ty FROM pg_catalog.pg_attribute a",
        );
        assert!(s.contains("SELECT max(t.typname) FROM"), "{s}");
        let user = rw("SELECT (SELECT x FROM t WHERE t.a = u.a) FROM u");
        assert!(!user.contains("max("), "user queries keep PostgreSQL's one-row rule: {user}");
    }

    #[test]
    fn casts_to_postgres_types() {
        assert_eq!(rw("SELECT x::pg_catalog.text, y::oid"), "SELECT x::TEXT AS \"x\", y::BIGINT AS \"y\"");
        assert_eq!(rw("SELECT 'events'::regclass"), "SELECT pg_regclass_oid('events') AS \"regclass\"");
        assert_eq!(rw("SELECT c.oid::pg_catalog.regclass"), "SELECT pg_regclass_name(c.oid::BIGINT) AS \"oid\"");
    }

    #[test]
    fn selects_joining_always_empty_tables_are_emptied() {
        assert_eq!(
            rw(
                "SELECT c.oid::pg_catalog.regclass AS r, c.relkind FROM pg_catalog.pg_class c, pg_catalog.pg_inherits i WHERE c.oid = i.inhrelid ORDER BY c.relkind"
            ),
            "SELECT NULL AS r, NULL AS relkind WHERE false"
        );
        // A LEFT JOIN of an empty table keeps the left rows.
        let kept = rw("SELECT c.relname FROM pg_class c LEFT JOIN pg_inherits i ON c.oid = i.inhrelid");
        assert!(kept.contains("FROM pg_catalog.pg_class"), "{kept}");
        // Aggregates over nothing still return a row.
        let agg = rw("SELECT count(*) FROM pg_catalog.pg_policy");
        assert!(agg.contains("FROM pg_catalog.pg_policy"), "{agg}");
        // A scalar subquery over an empty table is NULL.
        assert_eq!(
            rw(
                "SELECT a.attname, (SELECT d.adbin FROM pg_catalog.pg_attrdef d WHERE d.adrelid = a.attrelid) FROM pg_catalog.pg_attribute a"
            ),
            "SELECT a.attname, NULL AS \"adbin\" FROM pg_catalog.pg_attribute a"
        );
        // ARRAY(SELECT ...) over nothing is the empty array, not NULL.
        let arr = rw(
            "SELECT r.rolname, ARRAY(SELECT b.rolname FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles b ON (m.roleid = b.oid) WHERE m.member = r.oid) AS memberof FROM pg_catalog.pg_roles r",
        );
        assert_eq!(arr, "SELECT r.rolname, make_array() AS memberof FROM pg_catalog.pg_roles r");
        // ARRAY(SELECT f(x) FROM unnest(a) x) is an element-wise map.
        let m = rw(
            "SELECT ARRAY(SELECT 'toast.' || x FROM pg_catalog.unnest(tc.reloptions) x) FROM pg_catalog.pg_class tc",
        );
        assert!(m.contains("coalesce(array_transform(tc.reloptions, x -> 'toast.' || x), make_array())"), "{m}");
        // Unions: empty branches stay, ORDER BY is kept.
        let u = rw(
            "SELECT pubname FROM pg_catalog.pg_publication p UNION SELECT relname FROM pg_catalog.pg_class ORDER BY 1",
        );
        assert!(u.ends_with("ORDER BY 1") && u.contains("pg_class"), "{u}");
    }
}
