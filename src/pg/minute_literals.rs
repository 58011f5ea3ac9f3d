//! Text compared with or cast to a timestamp, written without seconds (`'2024-07-01 12:00'`):
//! PostgreSQL reads it, Arrow's parser does not. Typed literals and explicit casts of literals
//! are rewritten in the SQL ([`super::rewrite`]); this pass finds the rest in the plan, where
//! the types are known: a text literal compared with a timestamp (`=`, `<`, `BETWEEN`, `IN`),
//! or cast to one by an INSERT's `VALUES`, gets `:00` seconds. And text an INSERT casts to a
//! timestamptz column (whose values are labelled UTC) is read in the session's zone first, as
//! PostgreSQL reads text without an offset.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan, Operator, cast};

/// `plan` with its minute-only timestamp texts completed with seconds, and the texts cast to
/// timestamptz in a `VALUES` read in `zone` (the session's).
pub fn complete_timestamp_texts(plan: LogicalPlan, zone: &str) -> Result<LogicalPlan> {
    Ok(plan
        .transform_up_with_subqueries(|node| {
            if let LogicalPlan::Values(_) = &node {
                return node.map_expressions(|e| e.transform_up(|part| Ok(complete_cast(part, Some(zone)))));
            }
            super::plan_exprs::map_typed_expressions(node, |e, schema| Ok(complete(e, schema)))
        })?
        .data)
}

fn is_timestamp(e: &Expr, schema: &DFSchema) -> bool {
    e.get_type(schema).is_ok_and(|t| matches!(t, DataType::Timestamp(..)))
}

/// The literal with seconds added, when it is minute-only timestamp text.
fn completed(e: &Expr) -> Option<Expr> {
    let Expr::Literal(v, meta) = e else { return None };
    let text = match v {
        ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)) | ScalarValue::LargeUtf8(Some(s)) => s,
        _ => return None,
    };
    let full = super::rewrite::with_seconds(text)?;
    let value = match v {
        ScalarValue::Utf8View(_) => ScalarValue::Utf8View(Some(full)),
        ScalarValue::LargeUtf8(_) => ScalarValue::LargeUtf8(Some(full)),
        _ => ScalarValue::Utf8(Some(full)),
    };
    Some(Expr::Literal(value, meta.clone()))
}

fn replace(slot: &mut Expr) -> bool {
    match completed(slot) {
        Some(e) => {
            *slot = e;
            true
        }
        None => false,
    }
}

/// A text literal cast to a timestamp, completed; cast to an instant labelled with another
/// zone than `zone`, read in `zone` first.
fn complete_cast(e: Expr, zone: Option<&str>) -> Transformed<Expr> {
    match e {
        Expr::Cast(mut c) if matches!(c.field.data_type(), DataType::Timestamp(..)) => {
            let completed = replace(&mut c.expr);
            let is_text = matches!(
                c.expr.as_ref(),
                Expr::Literal(
                    ScalarValue::Utf8(Some(_)) | ScalarValue::Utf8View(Some(_)) | ScalarValue::LargeUtf8(Some(_)),
                    _
                )
            );
            match (c.field.data_type().clone(), zone) {
                (DataType::Timestamp(unit, Some(label)), Some(zone))
                    if is_text && !super::time_zone::same(&label, zone) =>
                {
                    let local = cast(*c.expr, DataType::Timestamp(unit, Some(zone.into())));
                    Transformed::yes(cast(local, DataType::Timestamp(unit, Some(label))))
                }
                _ => Transformed::new_transformed(Expr::Cast(c), completed),
            }
        }
        other => Transformed::no(other),
    }
}

fn complete(e: Expr, schema: &DFSchema) -> Transformed<Expr> {
    match e {
        Expr::BinaryExpr(mut b)
            if matches!(
                b.op,
                Operator::Eq
                    | Operator::NotEq
                    | Operator::Lt
                    | Operator::LtEq
                    | Operator::Gt
                    | Operator::GtEq
                    | Operator::IsDistinctFrom
                    | Operator::IsNotDistinctFrom
            ) =>
        {
            let changed = (is_timestamp(&b.left, schema) && replace(&mut b.right))
                || (is_timestamp(&b.right, schema) && replace(&mut b.left));
            Transformed::new_transformed(Expr::BinaryExpr(b), changed)
        }
        Expr::Between(mut b) if is_timestamp(&b.expr, schema) => {
            let low = replace(&mut b.low);
            let high = replace(&mut b.high);
            Transformed::new_transformed(Expr::Between(b), low || high)
        }
        Expr::InList(mut l) if is_timestamp(&l.expr, schema) => {
            let mut changed = false;
            for item in l.list.iter_mut() {
                changed |= replace(item);
            }
            Transformed::new_transformed(Expr::InList(l), changed)
        }
        other => complete_cast(other, None),
    }
}
