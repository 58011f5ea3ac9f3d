//! `x [NOT] IN (subquery)` as top-level conditions of WHERE and HAVING, where a NULL and false
//! both leave the row out (issue 24, found by the generated corpus of `tests/it/differential.rs`).
//!
//! DataFusion plans `x NOT IN (subquery)` as an anti join, which keeps a row whenever no value
//! of the subquery equals `x`: also when `x` is NULL, or when the subquery yields a NULL, where
//! PostgreSQL's `NOT IN` is NULL and the row is left out (a subquery with no rows keeps every
//! row, NULL `x` too). So the test becomes, for an uncorrelated subquery, the anti join and two
//! more conditions, exact in that place:
//!
//! ```sql
//! x NOT IN (SELECT e FROM f WHERE w)
//!   AND NOT EXISTS (SELECT 1 FROM f WHERE (w) AND (e) IS NULL)
//!   AND (x IS NOT NULL OR NOT EXISTS (SELECT 1 FROM f WHERE w))
//! ```
//!
//! (a subquery that is not one plain SELECT, grouped, distinct, limited or a set operation, is
//! read as a derived table in the two EXISTS), and for a correlated one, whose EXISTS
//! DataFusion cannot decorrelate under OR, one `NOT EXISTS` (see `correlated_not_in`).
//!
//! `x IN (SELECT e FROM f WHERE w)` correlated through `e` (`x.c IN (SELECT x.a + y.b FROM r2
//! AS y ...)`) is a join DataFusion cannot make; it becomes `EXISTS (SELECT 1 FROM f WHERE (w)
//! AND (e) = x)`, a semi join.
//!
//! A subquery is correlated when it does not plan on its own (it names the outer query's
//! columns, qualified or not), with every WITH clause around it (a CTE of the statement is
//! seen from a derived table's WHERE too). In the correlated rewrites an unqualified outer
//! column `x` is qualified with the outer SELECT's one relation, so that the subquery's own
//! column of that name cannot capture it.

use datafusion::execution::context::SessionState;
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, GroupByExpr, Ident, ObjectNamePart, Query, Select, SelectItem, SetExpr, Statement,
    TableFactor, Value, Visit, VisitMut, Visitor, VisitorMut, With,
};
use std::collections::HashMap;
use std::ops::ControlFlow;

/// Rewrites the top-level `[NOT] IN (subquery)` conditions of `stmt`'s WHERE and HAVING clauses,
/// planning each subquery on its own in `state` to tell whether it is correlated.
pub(super) async fn rewrite(state: &SessionState, stmt: &mut Statement) {
    let candidates = subqueries(stmt);
    if candidates.is_empty() {
        return;
    }
    let mut correlated = HashMap::new();
    for (key, with, subquery) in candidates {
        if correlated.contains_key(&key) {
            continue;
        }
        let mut query = subquery;
        query.with = enclosing(&[with, query.with.take()]);
        correlated.insert(key, super::plan_on_its_own(state, query).await.is_err());
    }
    let _ = VisitMut::visit(stmt, &mut Rewrite { correlated: &correlated });
}

/// The subqueries of the top-level `[NOT] IN` conditions, each with its text and the WITH
/// clause of the query it is in.
fn subqueries(stmt: &Statement) -> Vec<(String, Option<With>, Query)> {
    fn conjuncts(e: &Expr, with: &Option<With>, out: &mut Vec<(String, Option<With>, Query)>) {
        match e {
            Expr::BinaryOp { left, op: BinaryOperator::And, right } => {
                conjuncts(left, with, out);
                conjuncts(right, with, out);
            }
            Expr::Nested(inner) => conjuncts(inner, with, out),
            Expr::InSubquery { subquery, .. } => out.push((subquery.to_string(), with.clone(), (**subquery).clone())),
            _ => {}
        }
    }
    fn selects<'a>(body: &'a SetExpr, out: &mut Vec<&'a Select>) {
        match body {
            SetExpr::Select(s) => out.push(s),
            SetExpr::SetOperation { left, right, .. } => {
                selects(left, out);
                selects(right, out);
            }
            _ => {}
        }
    }
    impl Visitor for Collect {
        type Break = ();
        fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
            self.withs.push(query.with.clone());
            let with = enclosing(&self.withs);
            let mut found = vec![];
            selects(&query.body, &mut found);
            for s in found {
                for e in s.selection.iter().chain(s.having.iter()) {
                    conjuncts(e, &with, &mut self.found);
                }
            }
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.withs.pop();
            ControlFlow::Continue(())
        }
    }
    struct Collect {
        found: Vec<(String, Option<With>, Query)>,
        /// The WITH clauses of the queries around the one visited, outermost first.
        withs: Vec<Option<With>>,
    }
    let mut collect = Collect { found: vec![], withs: vec![] };
    let _ = Visit::visit(stmt, &mut collect);
    collect.found
}

/// The CTEs every query in `withs` (outermost first) defines, as one WITH clause: an inner
/// CTE hides an outer one of its name, and each keeps its place after those it may read.
fn enclosing(withs: &[Option<With>]) -> Option<With> {
    let mut merged: Option<With> = None;
    for with in withs.iter().flatten() {
        match &mut merged {
            None => merged = Some(with.clone()),
            Some(m) => {
                let names: Vec<String> = with.cte_tables.iter().map(|c| c.alias.name.value.clone()).collect();
                m.cte_tables.retain(|c| !names.contains(&c.alias.name.value));
                m.cte_tables.extend(with.cte_tables.iter().cloned());
                m.recursive |= with.recursive;
            }
        }
    }
    merged
}

struct Rewrite<'a> {
    /// Subquery text -> whether it is correlated.
    correlated: &'a HashMap<String, bool>,
}

impl VisitorMut for Rewrite<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        let correlated = self.correlated;
        with_selects(&mut query.body, &mut |select| {
            let outer = single_relation(select);
            if let Some(w) = select.selection.take() {
                select.selection = Some(rewrite_conjuncts(w, correlated, outer.as_deref()));
            }
            if let Some(h) = select.having.take() {
                select.having = Some(rewrite_conjuncts(h, correlated, outer.as_deref()));
            }
        });
        ControlFlow::Continue(())
    }
}

fn with_selects(body: &mut SetExpr, f: &mut dyn FnMut(&mut Select)) {
    match body {
        SetExpr::Select(select) => f(select),
        SetExpr::SetOperation { left, right, .. } => {
            with_selects(left, f);
            with_selects(right, f);
        }
        _ => {}
    }
}

/// The name the one relation of `select`'s FROM (no joins) is known by: its alias, else its
/// name; `None` for anything else.
fn single_relation(select: &Select) -> Option<Vec<Ident>> {
    let [from] = select.from.as_slice() else { return None };
    if !from.joins.is_empty() {
        return None;
    }
    match &from.relation {
        TableFactor::Table { alias: Some(a), .. } | TableFactor::Derived { alias: Some(a), .. } => {
            Some(vec![a.name.clone()])
        }
        TableFactor::Table { name, alias: None, .. } => {
            name.0.iter().map(|p| if let ObjectNamePart::Identifier(i) = p { Some(i.clone()) } else { None }).collect()
        }
        _ => None,
    }
}

/// `x` with its unqualified columns (outside its own subqueries) qualified by `outer`.
fn qualified(x: &Expr, outer: Option<&[Ident]>) -> Expr {
    struct Qualify<'a> {
        outer: &'a [Ident],
        depth: usize,
    }
    impl VisitorMut for Qualify<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
            self.depth += 1;
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
            self.depth -= 1;
            ControlFlow::Continue(())
        }
        fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
            if self.depth == 0
                && let Expr::Identifier(column) = e
            {
                let mut parts = self.outer.to_vec();
                parts.push(column.clone());
                *e = Expr::CompoundIdentifier(parts);
            }
            ControlFlow::Continue(())
        }
    }
    let mut x = x.clone();
    if let Some(outer) = outer {
        let _ = VisitMut::visit(&mut x, &mut Qualify { outer, depth: 0 });
    }
    x
}

/// `condition` with each top-level `[NOT] IN (subquery)` conjunct rewritten (see the module);
/// `outer` names the SELECT's one relation, if it has one.
fn rewrite_conjuncts(condition: Expr, correlated: &HashMap<String, bool>, outer: Option<&[Ident]>) -> Expr {
    match condition {
        Expr::BinaryOp { left, op: BinaryOperator::And, right } => Expr::BinaryOp {
            left: Box::new(rewrite_conjuncts(*left, correlated, outer)),
            op: BinaryOperator::And,
            right: Box::new(rewrite_conjuncts(*right, correlated, outer)),
        },
        Expr::Nested(inner) if matches!(inner.as_ref(), Expr::BinaryOp { op: BinaryOperator::And, .. }) => {
            Expr::Nested(Box::new(rewrite_conjuncts(*inner, correlated, outer)))
        }
        Expr::InSubquery { expr, subquery, negated } => {
            let rewritten = match (negated, correlated.get(&subquery.to_string())) {
                (_, None) | (false, Some(false)) => None,
                (false, Some(true)) => correlated_as_exists(&qualified(&expr, outer), &subquery),
                (true, Some(true)) => correlated_not_in(&qualified(&expr, outer), &subquery),
                (true, Some(false)) => {
                    let (has_null, any) = exists_tests(&subquery);
                    let sql = format!(
                        "({expr} NOT IN ({subquery}) AND NOT EXISTS ({has_null}) \
                         AND ({expr} IS NOT NULL OR NOT EXISTS ({any})))"
                    );
                    journeydb_udfs::dialect::parse_expr(&sql).ok()
                }
            };
            rewritten.unwrap_or(Expr::InSubquery { expr, subquery, negated })
        }
        other => other,
    }
}

/// The one value a subquery selects (`SELECT e FROM ...`).
fn single_value(subquery: &Query) -> Option<(&Select, &Expr)> {
    let SetExpr::Select(select) = subquery.body.as_ref() else { return None };
    match select.projection.as_slice() {
        [SelectItem::UnnamedExpr(value) | SelectItem::ExprWithAlias { expr: value, .. }] => Some((select, value)),
        _ => None,
    }
}

/// `SELECT 1 FROM f WHERE (w) AND extra` for the subquery `SELECT e FROM f WHERE w`.
fn rows_where(subquery: &Query, extra: Option<Expr>) -> Query {
    let mut rows = subquery.clone();
    if let SetExpr::Select(s) = rows.body.as_mut() {
        s.projection = vec![SelectItem::UnnamedExpr(Expr::value(Value::Number("1".into(), false)))];
        s.selection = match (s.selection.take(), extra) {
            (Some(w), Some(e)) => Some(Expr::BinaryOp {
                left: Box::new(Expr::Nested(Box::new(w))),
                op: BinaryOperator::And,
                right: Box::new(e),
            }),
            (w, e) => e.or(w),
        };
    }
    rows
}

/// The value of a correlated subquery that `x [NOT] IN` can be rewritten over: a plain SELECT
/// of one expression that aggregates nothing.
fn rewritable_value(subquery: &Query) -> Option<&Expr> {
    let (select, value) = single_value(subquery)?;
    (is_plain_but_for_calls(subquery, select) && !calls_aggregate_or_window(value)).then_some(value)
}

/// `EXISTS (SELECT 1 FROM f WHERE (w) AND (e) = x)` for a correlated `x IN (SELECT e FROM f
/// WHERE w)`.
fn correlated_as_exists(x: &Expr, subquery: &Query) -> Option<Expr> {
    let value = rewritable_value(subquery)?;
    let equal = Expr::BinaryOp {
        left: Box::new(Expr::Nested(Box::new(value.clone()))),
        op: BinaryOperator::Eq,
        right: Box::new(Expr::Nested(Box::new(x.clone()))),
    };
    Some(Expr::Exists { subquery: Box::new(rows_where(subquery, Some(equal))), negated: false })
}

/// `NOT EXISTS (SELECT 1 FROM f WHERE (w) AND ((e) = (x) OR (e) IS NULL OR (x) IS NULL))` for a
/// correlated `x NOT IN (SELECT e FROM f WHERE w)`: no row of the subquery for this outer row
/// (true whatever `x`), or none equal to `x`, NULL or met by a NULL `x`. One anti join, whose
/// equalities with the outer row DataFusion still uses as join keys (the module's first form
/// puts EXISTS under OR, which DataFusion cannot decorrelate).
fn correlated_not_in(x: &Expr, subquery: &Query) -> Option<Expr> {
    let value = rewritable_value(subquery)?;
    let sql = format!("(({value}) = ({x}) OR ({value}) IS NULL OR ({x}) IS NULL)");
    let matches = journeydb_udfs::dialect::parse_expr(&sql).ok()?;
    Some(Expr::Exists { subquery: Box::new(rows_where(subquery, Some(matches))), negated: true })
}

/// Two queries over the subquery's rows: one with a row where its value is NULL, one with any
/// row at all.
fn exists_tests(subquery: &Query) -> (String, String) {
    if let Some((select, value)) = single_value(subquery)
        && is_plain(subquery, select)
    {
        let is_null = Expr::IsNull(Box::new(Expr::Nested(Box::new(value.clone()))));
        return (rows_where(subquery, Some(is_null)).to_string(), rows_where(subquery, None).to_string());
    }
    (
        format!("SELECT 1 FROM ({subquery}) AS __not_in(__value) WHERE __value IS NULL"),
        format!("SELECT 1 FROM ({subquery}) AS __not_in(__value)"),
    )
}

/// One SELECT whose rows are its FROM's rows that pass its WHERE, one value each, and whose
/// select list calls no function (which could be an aggregate).
fn is_plain(query: &Query, select: &Select) -> bool {
    is_plain_but_for_calls(query, select) && !has_call(&select.projection)
}

/// [`is_plain`], whatever its select list calls.
fn is_plain_but_for_calls(query: &Query, select: &Select) -> bool {
    query.with.is_none()
        && query.order_by.is_none()
        && query.limit_clause.is_none()
        && query.fetch.is_none()
        && select.distinct.is_none()
        && select.top.is_none()
        && select.having.is_none()
        && select.qualify.is_none()
        && select.named_window.is_empty()
        && matches!(&select.group_by, GroupByExpr::Expressions(e, m) if e.is_empty() && m.is_empty())
        && !select.from.is_empty()
}

/// Aggregates and window functions by name: PostgreSQL's and DataFusion's common ones, and the
/// journey functions of those kinds.
const AGGREGATES: [&str; 40] = [
    "count",
    "sum",
    "min",
    "max",
    "avg",
    "mean",
    "array_agg",
    "string_agg",
    "bool_and",
    "bool_or",
    "every",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "variance",
    "var_pop",
    "var_samp",
    "var",
    "median",
    "mode",
    "first_value",
    "last_value",
    "nth_value",
    "percentile_cont",
    "percentile_disc",
    "approx_distinct",
    "approx_median",
    "approx_percentile_cont",
    "corr",
    "covar_pop",
    "covar_samp",
    "bit_and",
    "bit_or",
    "bit_xor",
    "json_agg",
    "jsonb_agg",
    "row_number",
    "rank",
    "dense_rank",
    "grouping",
];

/// Whether `e` calls (outside its own subqueries) an aggregate or a window function, as far as
/// names tell: a call with OVER or FILTER, a name of [`AGGREGATES`] or `regr_*`, or a journey
/// aggregate or window function.
fn calls_aggregate_or_window(e: &Expr) -> bool {
    struct Finder {
        depth: usize,
    }
    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.depth += 1;
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.depth -= 1;
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            if self.depth == 0
                && let Expr::Function(f) = e
            {
                let name =
                    f.name.0.last().map(|p| p.to_string().trim_matches('"').to_ascii_lowercase()).unwrap_or_default();
                let journey = journeydb_udfs::catalog().iter().any(|d| {
                    d.name == name
                        && matches!(d.kind, journeydb_udfs::docs::Kind::Aggregate | journeydb_udfs::docs::Kind::Window)
                });
                if f.over.is_some()
                    || f.filter.is_some()
                    || AGGREGATES.contains(&name.as_str())
                    || name.starts_with("regr_")
                    || journey
                {
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        }
    }
    e.visit(&mut Finder { depth: 0 }).is_break()
}

/// Whether the select list calls a function: an aggregate or a window function yields rows
/// other than its FROM's (`SELECT max(x)` one row whatever its WHERE passes), and which calls
/// aggregate is not known here, so any call reads the subquery as a derived table.
fn has_call(items: &[SelectItem]) -> bool {
    struct Finder;
    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            if matches!(e, Expr::Function(_)) { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        }
    }
    items.iter().any(|item| item.visit(&mut Finder).is_break())
}
