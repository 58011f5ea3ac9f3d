//! Catalog queries: scalar subqueries DataFusion can decorrelate, and SELECTs over catalog
//! tables that are always empty pruned to empty SELECTs of the same arity.

use super::*;

pub(super) fn references_catalog(stmt: &mut Statement) -> bool {
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
pub(super) struct AggregateScalarSubqueries;

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

/// Prunes empty SELECTs in a set expression; true when the whole expression is empty.
pub(super) fn prune_set_expr(body: &mut SetExpr) -> bool {
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

pub(super) fn is_empty_query(q: &Query) -> bool {
    match q.body.as_ref() {
        SetExpr::Select(s) => is_pruned(s),
        _ => false,
    }
}

pub(super) fn is_always_empty_table(factor: &TableFactor) -> bool {
    match factor {
        TableFactor::Table { name, .. } => {
            let parts: Vec<&str> = name.0.iter().filter_map(part).collect();
            match parts.as_slice() {
                [schema, table] => schema.eq_ignore_ascii_case(PG_CATALOG) && is_always_empty(table),
                _ => false,
            }
        }
        // A subquery already emptied (queries are rewritten inside out): pgjdbc's
        // getPrimaryKeys selects `(result.KEYS).x` from one over pg_index.
        TableFactor::Derived { subquery, .. } => is_empty_query(subquery),
        _ => false,
    }
}

pub(super) fn select_is_empty(select: &Select) -> bool {
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

pub(super) const AGGREGATES: [&str; 12] = [
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

pub(super) fn item_aggregates(item: &SelectItem) -> bool {
    let expr = match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
        _ => return false,
    };
    expr_aggregates(expr)
}

pub(super) fn expr_aggregates(expr: &Expr) -> bool {
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
pub(super) fn is_pruned(select: &Select) -> bool {
    select.from.is_empty() && matches!(&select.selection, Some(Expr::Value(v)) if v.value == Value::Boolean(false))
}

pub(super) fn empty_select(select: &mut Select) {
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
