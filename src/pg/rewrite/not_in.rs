//! `x NOT IN (subquery)` in WHERE and HAVING, with PostgreSQL's NULLs.
//!
//! DataFusion plans it as an anti join, which keeps a row whenever no value of the subquery
//! equals `x`: also when `x` is NULL, or when the subquery yields a NULL, where PostgreSQL's
//! `NOT IN` is NULL and the row is left out (a subquery with no rows keeps every row, NULL `x`
//! too). Where a NULL and false both leave the row out, a top-level conjunct of WHERE or
//! HAVING, the test becomes the anti join and two more conditions, exact in that place:
//!
//! ```sql
//! x NOT IN (SELECT e FROM f WHERE w)
//!   AND NOT EXISTS (SELECT 1 FROM f WHERE (w) AND (e) IS NULL)
//!   AND (x IS NOT NULL OR NOT EXISTS (SELECT 1 FROM f WHERE w))
//! ```
//!
//! A subquery that is not one plain SELECT (grouped, distinct, limited, a set operation) is read
//! as a derived table in the two EXISTS instead (found by the generated corpus of
//! `tests/it/differential.rs`, issue 24).

use super::*;

pub(super) struct NotInWithNulls;

impl VisitorMut for NotInWithNulls {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        with_selects(&mut query.body, &mut |select| {
            if let Some(w) = select.selection.take() {
                select.selection = Some(rewrite_conjuncts(w));
            }
            if let Some(h) = select.having.take() {
                select.having = Some(rewrite_conjuncts(h));
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

/// `condition` with each top-level `NOT IN (subquery)` conjunct given PostgreSQL's NULLs.
fn rewrite_conjuncts(condition: Expr) -> Expr {
    match condition {
        Expr::BinaryOp { left, op: BinaryOperator::And, right } => Expr::BinaryOp {
            left: Box::new(rewrite_conjuncts(*left)),
            op: BinaryOperator::And,
            right: Box::new(rewrite_conjuncts(*right)),
        },
        Expr::Nested(inner) if matches!(inner.as_ref(), Expr::BinaryOp { op: BinaryOperator::And, .. }) => {
            Expr::Nested(Box::new(rewrite_conjuncts(*inner)))
        }
        Expr::InSubquery { expr, subquery, negated: true } => {
            let (has_null, any) = exists_tests(&subquery);
            let sql = format!(
                "({expr} NOT IN ({subquery}) AND NOT EXISTS ({has_null}) AND ({expr} IS NOT NULL OR NOT EXISTS ({any})))"
            );
            journeydb_udfs::dialect::parse_expr(&sql).unwrap_or(Expr::InSubquery { expr, subquery, negated: true })
        }
        other => other,
    }
}

/// Two queries over the subquery's rows: one with a row where its value is NULL, one with any
/// row at all.
fn exists_tests(subquery: &Query) -> (String, String) {
    if let SetExpr::Select(select) = subquery.body.as_ref()
        && is_plain(subquery, select)
        && let [SelectItem::UnnamedExpr(value) | SelectItem::ExprWithAlias { expr: value, .. }] =
            select.projection.as_slice()
    {
        let mut any = subquery.clone();
        let mut has_null = subquery.clone();
        let one = vec![SelectItem::UnnamedExpr(Expr::value(Value::Number("1".into(), false)))];
        if let SetExpr::Select(s) = any.body.as_mut() {
            s.projection = one.clone();
        }
        if let SetExpr::Select(s) = has_null.body.as_mut() {
            s.projection = one;
            let is_null = Expr::IsNull(Box::new(Expr::Nested(Box::new(value.clone()))));
            s.selection = Some(match s.selection.take() {
                Some(w) => Expr::BinaryOp {
                    left: Box::new(Expr::Nested(Box::new(w))),
                    op: BinaryOperator::And,
                    right: Box::new(is_null),
                },
                None => is_null,
            });
        }
        return (has_null.to_string(), any.to_string());
    }
    (
        format!("SELECT 1 FROM ({subquery}) AS __not_in(__value) WHERE __value IS NULL"),
        format!("SELECT 1 FROM ({subquery}) AS __not_in(__value)"),
    )
}

/// One SELECT whose rows are its FROM's rows that pass its WHERE, one value each.
fn is_plain(query: &Query, select: &Select) -> bool {
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
        && !has_call(&select.projection)
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
