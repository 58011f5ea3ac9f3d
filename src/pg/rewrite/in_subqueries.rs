//! `x [NOT] IN (subquery)` outside WHERE and HAVING, as an array test.

use super::*;

/// `x [NOT] IN (subquery)` in a select list, ORDER BY or GROUP BY, where DataFusion plans no IN
/// subquery, becomes `[NOT] pg_in_array(x, (SELECT array_agg(v) FROM (subquery) AS t(v)))`: the
/// same three-valued answer ([`crate::pg::in_array`]). In WHERE and HAVING, where DataFusion turns
/// it into a semi join, it stays.
pub(super) struct InSubqueriesAsArrays;

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

pub(super) fn in_subqueries_of_body(body: &mut SetExpr) {
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
pub(super) fn in_subqueries_as_arrays(expr: &mut Expr) {
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
                    crate::pg::in_array::NAME
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
