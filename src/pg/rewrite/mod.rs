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
//!   ([`is_always_empty`]) and does not aggregate returns no rows: it is replaced by an empty
//!   SELECT of the same arity, and a scalar subquery over one by NULL. This is exact, and it
//!   spares DataFusion constructs it cannot plan inside such queries (psql's `\d` footers);
//! - named arguments of a FROM-clause function (`journey_paths(max_steps => 3)`) become a
//!   marker and a value, which the journey reports read back as options.
//!
//! Each rewrite has its file: [`casts`] (operators, casts to PostgreSQL's own types),
//! [`column_names`] (result columns named as PostgreSQL names them), [`in_subqueries`],
//! [`from_functions`] (functions in FROM), [`catalog_queries`] (scalar subqueries of catalog
//! queries, SELECTs over always-empty catalog tables pruned) and [`text`] (what the parser does
//! not know, said another way before parsing). This file holds the entry point and the visitor
//! that applies them.

use super::catalog::{PG_CATALOG, is_always_empty};
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, CastKind, CopySource, DataType, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr,
    Ident, ObjectName, ObjectNamePart, OrderBy, OrderByKind, Query, Select, SelectItem, SetExpr, Statement,
    TableFactor, TimezoneInfo, UnaryOperator, Value, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::parser::Parser;
use journeydb_udfs::common::options::NAMED_PREFIX;
use std::ops::ControlFlow;

mod casts;
mod catalog_queries;
mod column_names;
mod from_functions;
mod in_subqueries;
mod text;

pub use casts::interval_units;
pub(crate) use casts::with_seconds;
use casts::*;
use catalog_queries::*;
pub use column_names::NAME_SUFFIX;
pub(crate) use column_names::shown_name;
use column_names::*;
use from_functions::*;
use in_subqueries::*;
pub use text::{alter_view_rename, dollar_quotes_to_literals};

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

/// A function in FROM is looked up by its name as written, but PostgreSQL folds an unquoted
/// name to lower case: `FUNNEL(...)` (as SQL formatters such as Superset's write it) is
/// `funnel(...)`. Quoted parts keep their case.
fn fold_table_function_name(factor: &mut TableFactor) {
    let TableFactor::Table { name, args: Some(_), .. } = factor else { return };
    for part in &mut name.0 {
        if let ObjectNamePart::Identifier(id) = part
            && id.quote_style.is_none()
        {
            id.value = id.value.to_lowercase();
        }
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
        fold_table_function_name(factor);
        scalar_functions_in_from(factor);
        if let TableFactor::Table { args: Some(args), .. } = factor {
            let mut positional = Vec::with_capacity(args.args.len());
            for arg in std::mem::take(&mut args.args) {
                // An unquoted argument name folds to lower case, as every PostgreSQL name does.
                let folded =
                    |id: &Ident| if id.quote_style.is_none() { id.value.to_lowercase() } else { id.value.clone() };
                let name = match &arg {
                    FunctionArg::Named { name, .. } => Some(folded(name)),
                    FunctionArg::ExprNamed { name: Expr::Identifier(id), .. } => Some(folded(id)),
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
            // `x LIKE p ESCAPE '/'`: DataFusion escapes with the backslash only, so the pattern
            // is rewritten for it (PostgreSQL's `like_escape`; SQLAlchemy lists schemas so).
            Expr::Like { pattern, escape_char, .. } | Expr::ILike { pattern, escape_char, .. }
                if escape_char.as_ref().is_some_and(|e| e.value != Value::SingleQuotedString("\\".into())) =>
            {
                if let Some(escape) = escape_char.take() {
                    **pattern = call("like_escape", vec![(**pattern).clone(), Expr::Value(escape)]);
                }
            }
            // `- -2` and `- (-x)`: sqlparser writes them back as `--2`, a comment; parentheses
            // keep the text of a rewritten statement (a view's, a rewritten subquery's) the
            // same expression.
            Expr::UnaryOp { op: UnaryOperator::Minus | UnaryOperator::Plus, expr: inner }
                if written_with_sign(inner) =>
            {
                **inner = Expr::Nested(inner.clone());
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

/// Whether `e` is written starting with a sign (`-x`, `+x`, `-2`, `-x::int`), found along its
/// leftmost operands without writing it out (a chain of unary minuses stays linear).
fn written_with_sign(e: &Expr) -> bool {
    match e {
        Expr::UnaryOp { op: UnaryOperator::Minus | UnaryOperator::Plus, .. } => true,
        Expr::Value(v) => matches!(&v.value, Value::Number(n, _) if n.starts_with(['-', '+'])),
        Expr::Cast { kind: CastKind::DoubleColon, expr, .. } => written_with_sign(expr),
        Expr::BinaryOp { left, .. } => written_with_sign(left),
        Expr::CompoundFieldAccess { root, .. } => written_with_sign(root),
        Expr::IsNull(x) | Expr::IsNotNull(x) | Expr::IsTrue(x) | Expr::IsFalse(x) => written_with_sign(x),
        _ => false,
    }
}

pub(super) fn part(p: &ObjectNamePart) -> Option<&str> {
    match p {
        ObjectNamePart::Identifier(id) => Some(id.value.as_str()),
        _ => None,
    }
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
        // Issue 24: written back, a double minus stays an expression, not a comment.
        assert_eq!(rw("SELECT 1 WHERE - -2 < - - - 3"), "SELECT 1 AS \"?column?\" WHERE -(-2) < -(-(-3))");
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
