//! Correlated scalar subqueries that DataFusion 55 cannot decorrelate (issue 24): an aggregate
//! over rows chosen by a condition on the outer row that is not an equality
//! (`(SELECT count(*) FROM r2 WHERE r2.a < r1.b)`), or that reads the outer row in what it
//! aggregates. DataFusion leaves those in the plan and fails with 0A000; PostgreSQL runs them.
//!
//! Such a subquery is answered once per distinct value of the outer columns it reads (its
//! "domain"), then joined back to the outer rows:
//!
//! ```text
//! outer LEFT JOIN (
//!     SELECT k..., agg(...) FROM (SELECT DISTINCT <outer columns> AS k... FROM outer) AS d
//!     JOIN <subquery's FROM> ON <its condition, outer columns read from d>
//!     GROUP BY k...
//! ) AS s ON outer columns IS NOT DISTINCT FROM s.k...
//! ```
//!
//! An outer value that no row matches has no group: the subquery's answer is then what its
//! aggregate gives over no rows (0 for `count`, NULL for the others handled). A subquery that
//! selects a value without aggregating (`(SELECT r2.b FROM r2 WHERE r2.a = r1.a)`) is answered
//! the same way with the row's value and the number of rows, more than one being 21000. Subqueries
//! DataFusion decorrelates itself (equalities only) are left to it, and so is any shape not
//! described here (found by the generated corpus of `tests/it/differential.rs`).

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, NullEquality, Result};
use datafusion::logical_expr::ExprSchemable;
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{
    Aggregate, BinaryExpr, Expr, Filter, JoinType, LogicalPlan, LogicalPlanBuilder, Operator, Projection, Subquery, lit,
};
use datafusion::prelude::coalesce;
use std::sync::Arc;

/// Aggregates whose answer over no rows is NULL.
const NULL_WHEN_EMPTY: [&str; 9] =
    ["sum", "min", "max", "avg", "array_agg", "string_agg", "bool_and", "bool_or", "median"];

/// `plan` with the correlated scalar subqueries described above joined in.
pub(super) fn decorrelate(plan: LogicalPlan) -> Result<LogicalPlan> {
    let mut made = 0usize;
    plan.transform_up_with_subqueries(|node| {
        let mut node = node;
        let mut changed = false;
        // One subquery at a time: each rewrite makes a new node over a new input.
        for _ in 0..32 {
            match rewrite_one(&node, &mut made)? {
                Some(next) => {
                    node = next;
                    changed = true;
                }
                None => break,
            }
        }
        Ok(if changed { Transformed::yes(node) } else { Transformed::no(node) })
    })
    .map(|t| t.data)
}

/// The parts of a subquery this module answers: `[Projection] Aggregate [Filter] input`, or
/// `Projection [Filter] input` (one value per row, at most one row).
struct Shape {
    value: Value,
    condition: Option<Expr>,
    input: Arc<LogicalPlan>,
}

enum Value {
    /// One aggregate; over no rows it is 0 (`count`) or NULL.
    Aggregate { aggregate: Expr, zero_when_empty: bool },
    /// An expression of the one row the subquery may yield (NULL without one; more than one is
    /// PostgreSQL's 21000).
    Single(Expr),
}

fn shape(sub: &Subquery) -> Option<Shape> {
    let mut plan = sub.subquery.as_ref();
    if let LogicalPlan::Projection(p) = plan {
        let [e] = p.expr.as_slice() else { return None };
        let inner = match e {
            Expr::Alias(a) => a.expr.as_ref(),
            e => e,
        };
        if !matches!(p.input.as_ref(), LogicalPlan::Aggregate(_)) {
            let (condition, input) = match p.input.as_ref() {
                LogicalPlan::Filter(f) => (Some(f.predicate.clone()), f.input.clone()),
                other => (None, Arc::new(other.clone())),
            };
            let plain_input = matches!(
                input.as_ref(),
                LogicalPlan::TableScan(_)
                    | LogicalPlan::SubqueryAlias(_)
                    | LogicalPlan::Values(_)
                    | LogicalPlan::Join(_)
            );
            if !plain_input || reads_outer(&input) {
                return None;
            }
            return Some(Shape { value: Value::Single(inner.clone()), condition, input });
        }
        if !matches!(inner, Expr::Column(_)) {
            return None;
        }
        plan = p.input.as_ref();
    }
    let LogicalPlan::Aggregate(agg) = plan else { return None };
    let ([aggregate], true) = (agg.aggr_expr.as_slice(), agg.group_expr.is_empty()) else { return None };
    let Expr::AggregateFunction(AggregateFunction { func, params }) = aggregate else { return None };
    if params.filter.is_some() {
        return None;
    }
    let name = func.name().to_ascii_lowercase();
    let zero_when_empty = name == "count";
    if !zero_when_empty && !NULL_WHEN_EMPTY.contains(&name.as_str()) {
        return None;
    }
    let (condition, input) = match agg.input.as_ref() {
        LogicalPlan::Filter(f) => (Some(f.predicate.clone()), f.input.clone()),
        _ => (None, agg.input.clone()),
    };
    // The rows it aggregates must not depend on the outer row but through `condition`.
    if reads_outer(&input) {
        return None;
    }
    Some(Shape { value: Value::Aggregate { aggregate: aggregate.clone(), zero_when_empty }, condition, input })
}

/// Whether `plan` or a plan inside it reads a column of an enclosing query.
fn reads_outer(plan: &LogicalPlan) -> bool {
    let mut found = false;
    let _ = plan.apply_with_subqueries(|node| {
        let _ = node.apply_expressions(|e| {
            if has_outer(e) {
                found = true;
                return Ok(TreeNodeRecursion::Stop);
            }
            Ok(TreeNodeRecursion::Continue)
        });
        Ok(if found { TreeNodeRecursion::Stop } else { TreeNodeRecursion::Continue })
    });
    found
}

fn has_outer(e: &Expr) -> bool {
    e.exists(|e| Ok(matches!(e, Expr::OuterReferenceColumn(..)))).unwrap_or(false)
}

/// Whether DataFusion decorrelates the subquery itself: the outer row is read only in
/// equalities between an outer column and an expression of the subquery's own rows.
fn datafusion_decorrelates(shape: &Shape) -> bool {
    match &shape.value {
        Value::Single(_) => return false,
        Value::Aggregate { aggregate, .. } if has_outer(aggregate) => return false,
        Value::Aggregate { .. } => {}
    }
    let Some(condition) = &shape.condition else { return true };
    datafusion::logical_expr::utils::split_conjunction(condition).into_iter().all(|c| {
        if !has_outer(c) {
            return true;
        }
        match c {
            Expr::BinaryExpr(BinaryExpr { left, op: Operator::Eq, right }) => {
                let outer_column = |e: &Expr| matches!(e, Expr::OuterReferenceColumn(..));
                (outer_column(left) && !has_outer(right)) || (outer_column(right) && !has_outer(left))
            }
            _ => false,
        }
    })
}

/// The first scalar subquery of `node`'s expressions that this module answers, joined in.
fn rewrite_one(node: &LogicalPlan, made: &mut usize) -> Result<Option<LogicalPlan>> {
    let (exprs, input) = match node {
        LogicalPlan::Projection(p) => (p.expr.as_slice(), &p.input),
        LogicalPlan::Filter(f) => (std::slice::from_ref(&f.predicate), &f.input),
        _ => return Ok(None),
    };
    let mut found = None;
    for e in exprs {
        let _ = e.apply(|e| {
            if let Expr::ScalarSubquery(sub) = e
                && !sub.outer_ref_columns.is_empty()
                && let Some(s) = shape(sub)
                && !datafusion_decorrelates(&s)
            {
                found = Some((sub.clone(), s));
                return Ok(TreeNodeRecursion::Stop);
            }
            Ok(TreeNodeRecursion::Continue)
        });
        if found.is_some() {
            break;
        }
    }
    let Some((sub, shape)) = found else { return Ok(None) };
    // Outer columns of a query further out than `node`'s input are not there to join on.
    let reads_further_out = sub.outer_ref_columns.iter().any(|e| match e {
        Expr::OuterReferenceColumn(_, c) => !input.schema().has_column(c),
        _ => true,
    });
    if reads_further_out {
        return Ok(None);
    }
    // Whatever cannot be joined in is left as it was, for DataFusion to refuse.
    Ok(join_in(node, input, sub, shape, made).ok())
}

/// `node` with the scalar subquery `sub` of shape `shape` answered by a join over `input`.
fn join_in(
    node: &LogicalPlan,
    input: &Arc<LogicalPlan>,
    sub: Subquery,
    shape: Shape,
    made: &mut usize,
) -> Result<LogicalPlan> {
    *made += 1;
    let domain_alias = format!("__correlated_domain_{made}");
    let answer_alias = format!("__correlated_{made}");
    // The outer columns the subquery reads, in order.
    let mut keys: Vec<Column> = vec![];
    for e in &sub.outer_ref_columns {
        if let Expr::OuterReferenceColumn(_, c) = e
            && !keys.contains(c)
        {
            keys.push(c.clone());
        }
    }
    let key_name = |i: usize| format!("__k{i}");
    let in_domain = |i: usize| Expr::Column(Column::new(Some(domain_alias.clone()), key_name(i)));
    let from_domain = |e: Expr| -> Result<Expr> {
        e.transform_up(|e| match &e {
            Expr::OuterReferenceColumn(_, c) => match keys.iter().position(|k| k == c) {
                Some(i) => Ok(Transformed::yes(in_domain(i))),
                None => Ok(Transformed::no(e)),
            },
            _ => Ok(Transformed::no(e)),
        })
        .map(|t| t.data)
    };
    let domain = LogicalPlanBuilder::from(input.as_ref().clone())
        .project(keys.iter().enumerate().map(|(i, c)| Expr::Column(c.clone()).alias(key_name(i))))?
        .distinct()?
        .alias(domain_alias.clone())?;
    let joined = match shape.condition {
        Some(c) => domain.join_on(shape.input.as_ref().clone(), JoinType::Inner, [from_domain(c)?])?,
        None => domain.cross_join(shape.input.as_ref().clone())?,
    };
    let joined = joined.build()?;
    let groups: Vec<Expr> = (0..keys.len()).map(in_domain).collect();
    let (aggregates, zero_when_empty, single_type) = match &shape.value {
        Value::Aggregate { aggregate, zero_when_empty } => {
            (vec![from_domain(aggregate.clone())?.alias("__value")], *zero_when_empty, None)
        }
        Value::Single(e) => {
            let e = from_domain(e.clone())?;
            let data_type = e.get_type(joined.schema())?;
            // Pinned to that type: the analyzer's coercions must not change what `pg_one_row`
            // is given.
            let e = Expr::Cast(datafusion::logical_expr::Cast::new(Box::new(e), data_type.clone()));
            let rows = datafusion::functions_aggregate::expr_fn::count(lit(1i64)).alias("__rows");
            let first = datafusion::functions_aggregate::expr_fn::first_value(e, vec![]).alias("__value");
            (vec![first, rows], false, Some(data_type))
        }
    };
    let aggregated = LogicalPlan::Aggregate(Aggregate::try_new(Arc::new(joined), groups, aggregates)?);
    let answers = LogicalPlanBuilder::from(aggregated).alias(answer_alias.clone())?.build()?;
    let answer_keys: Vec<Column> =
        (0..keys.len()).map(|i| Column::new(Some(answer_alias.clone()), key_name(i))).collect();
    let with_answers = LogicalPlanBuilder::from(input.as_ref().clone())
        .join_detailed(answers, JoinType::Left, (keys.clone(), answer_keys), None, NullEquality::NullEqualsNull)?
        .build()?;
    let answer = Expr::Column(Column::new(Some(answer_alias.clone()), "__value"));
    let answer = match single_type {
        Some(data_type) => {
            let rows = Expr::Column(Column::new(Some(answer_alias), "__rows"));
            one_row(data_type).call(vec![rows, answer])
        }
        None if zero_when_empty => coalesce(vec![answer, lit(0i64)]),
        None => answer,
    };
    let target = Expr::ScalarSubquery(sub);
    let replace = |e: Expr| -> Result<Expr> {
        e.transform_up(|e| if e == target { Ok(Transformed::yes(answer.clone())) } else { Ok(Transformed::no(e)) })
            .map(|t| t.data)
    };
    Ok(match node {
        LogicalPlan::Projection(p) => {
            let exprs = p
                .expr
                .iter()
                .map(|e| {
                    let (qualifier, name) = e.qualified_name();
                    let replaced = replace(e.clone())?;
                    // The column keeps the name it had.
                    Ok(if replaced.qualified_name() == (qualifier.clone(), name.clone()) {
                        replaced
                    } else {
                        replaced.alias_qualified(qualifier, name)
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            LogicalPlan::Projection(Projection::try_new(exprs, Arc::new(with_answers))?)
        }
        LogicalPlan::Filter(f) => {
            let filtered = LogicalPlan::Filter(Filter::try_new(replace(f.predicate.clone())?, Arc::new(with_answers))?);
            // The rows as they were, without the answers' columns.
            let columns: Vec<Expr> = input.schema().columns().into_iter().map(Expr::Column).collect();
            LogicalPlanBuilder::from(filtered).project(columns)?.build()?
        }
        _ => return datafusion::common::plan_err!("only projections and filters read scalar subqueries here"),
    })
}

/// `pg_one_row(rows, value)`: `value`, or PostgreSQL's 21000 when the subquery that gave it
/// yielded more than one row for this outer row.
fn one_row(data_type: datafusion::arrow::datatypes::DataType) -> datafusion::logical_expr::ScalarUDF {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::{DataType, Int64Type};
    use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
    create_udf(
        "pg_one_row",
        vec![DataType::Int64, data_type.clone()],
        data_type,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let rows = args[0].to_array(1)?;
            let rows = rows.as_primitive::<Int64Type>();
            if (0..rows.len()).any(|i| rows.is_valid(i) && rows.value(i) > 1) {
                let e = crate::error::Error::sql(
                    crate::error::SqlState::CardinalityViolation,
                    "more than one row returned by a subquery used as an expression",
                );
                return Err(datafusion::error::DataFusionError::External(Box::new(e)));
            }
            Ok(args[1].clone())
        }),
    )
}
