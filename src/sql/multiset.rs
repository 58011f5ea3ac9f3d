//! `INTERSECT ALL` and `EXCEPT ALL` as PostgreSQL answers them (issue 24, found by the
//! generated corpus of `tests/it/differential.rs`).
//!
//! A row that stands `m` times on the left and `n` times on the right stands `min(m, n)` times
//! in `INTERSECT ALL` and `max(m - n, 0)` times in `EXCEPT ALL`, NULLs equal to NULLs.
//! DataFusion plans them as a semi and an anti join, which keep all `m` copies or none. So each
//! copy is numbered within its equal rows, and the numbered rows meet in the DISTINCT operation,
//! which pairs the k-th copy on the left with the k-th on the right:
//!
//! ```sql
//! SELECT "__m1" AS "a", ... FROM (
//!   SELECT __m.*, row_number() OVER (PARTITION BY "__m1", ...) FROM (<left>) AS __m("__m1", ...)
//!   INTERSECT
//!   SELECT __m.*, row_number() OVER (PARTITION BY "__m1", ...) FROM (<right>) AS __m("__m1", ...)
//! ) AS __multiset
//! ```
//!
//! The columns keep the left operand's names, read from its plan; an operand that does not plan
//! on its own is left as it was.

use datafusion::execution::context::SessionState;
use datafusion::sql::sqlparser::ast::{
    Query, SetExpr, SetOperator, SetQuantifier, Statement, Visit, VisitMut, Visitor, VisitorMut, With,
};
use std::collections::HashMap;
use std::ops::ControlFlow;

/// Rewrites every `INTERSECT ALL` and `EXCEPT ALL` of `stmt`, planning their left operands in
/// `state` for their column names.
pub(super) async fn rewrite(state: &SessionState, stmt: &mut Statement) {
    let operands = left_operands(stmt);
    if operands.is_empty() {
        return;
    }
    let mut names = HashMap::new();
    for (key, with, left) in operands {
        if names.contains_key(&key) {
            continue;
        }
        let query = Query {
            with,
            body: Box::new(left),
            order_by: None,
            limit_clause: None,
            fetch: None,
            locks: vec![],
            for_clause: None,
            settings: None,
            format_clause: None,
            pipe_operators: vec![],
        };
        if let Ok(plan) = super::plan_on_its_own(state, query).await {
            names.insert(key, plan.schema().fields().iter().map(|f| f.name().clone()).collect::<Vec<_>>());
        }
    }
    let _ = VisitMut::visit(stmt, &mut Rewrite { names: &names });
}

fn is_multiset(op: &SetOperator, quantifier: &SetQuantifier) -> bool {
    matches!(op, SetOperator::Intersect | SetOperator::Except) && matches!(quantifier, SetQuantifier::All)
}

/// The left operands of the multiset operations, each with the text it is known by and the
/// WITH clause of its query.
fn left_operands(stmt: &Statement) -> Vec<(String, Option<With>, SetExpr)> {
    struct Collect(Vec<(String, Option<With>, SetExpr)>);
    fn walk(body: &SetExpr, with: &Option<With>, out: &mut Vec<(String, Option<With>, SetExpr)>) {
        if let SetExpr::SetOperation { left, right, op, set_quantifier } = body {
            if is_multiset(op, set_quantifier) {
                out.push((left.to_string(), with.clone(), (**left).clone()));
            }
            walk(left, with, out);
            walk(right, with, out);
        }
    }
    impl Visitor for Collect {
        type Break = ();
        fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
            walk(&query.body, &query.with, &mut self.0);
            ControlFlow::Continue(())
        }
    }
    let mut collect = Collect(vec![]);
    let _ = Visit::visit(stmt, &mut collect);
    collect.0
}

struct Rewrite<'a> {
    names: &'a HashMap<String, Vec<String>>,
}

impl Rewrite<'_> {
    fn walk(&self, body: &mut SetExpr) {
        let SetExpr::SetOperation { left, right, op, set_quantifier } = body else { return };
        let key = is_multiset(op, set_quantifier).then(|| left.to_string());
        self.walk(left);
        self.walk(right);
        let Some(names) = key.and_then(|k| self.names.get(&k)) else { return };
        let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        let inner: Vec<String> = (1..=names.len()).map(|i| format!("\"__m{i}\"")).collect();
        let inner = inner.join(", ");
        let shown: Vec<String> =
            names.iter().enumerate().map(|(i, n)| format!("\"__m{}\" AS {}", i + 1, quote(n))).collect();
        let numbered = |operand: &SetExpr| {
            format!(
                "SELECT __m.*, row_number() OVER (PARTITION BY {inner}) AS \"__m_copy\" FROM ({operand}) AS __m({inner})"
            )
        };
        let distinct = if matches!(op, SetOperator::Intersect) { "INTERSECT" } else { "EXCEPT" };
        let sql = format!(
            "SELECT {} FROM ({} {distinct} {}) AS __multiset",
            shown.join(", "),
            numbered(left),
            numbered(right)
        );
        if let Ok(mut statements) = journeydb_udfs::dialect::parse_sql(&sql)
            && let Some(Statement::Query(query)) = statements.pop()
        {
            *body = SetExpr::Query(query);
        }
    }
}

impl VisitorMut for Rewrite<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        self.walk(&mut query.body);
        ControlFlow::Continue(())
    }
}
