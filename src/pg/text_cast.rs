//! `CAST(x AS text)` as PostgreSQL writes the value, where Arrow's cast writes another form:
//! timestamps (`2025-04-13 02:09:22+02`, not `2025-04-13T00:09:22Z`), intervals (`1 day
//! 02:00:00`) and arrays (`{1,2}`). The plan's casts of such values to text become
//! `pg_text(x)`, which writes each value as the wire's text format does; so do the implicit
//! casts of `text || value` and of the arguments of `concat` and `concat_ws`.

use crate::pg::encode::write_text;
use datafusion::arrow::array::{Array, ArrayRef, StringBuilder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::Transformed;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan, Operator, ScalarUDF};
use datafusion::prelude::SessionContext;
use std::sync::Arc;

pub const NAME: &str = "pg_text";

pub fn register(ctx: &SessionContext) {
    ctx.register_udf(super::functions::any_udf(
        NAME,
        DataType::Utf8,
        Arc::new(|a, rows| {
            let values = a.first().ok_or_else(|| DataFusionError::Plan(format!("{NAME} takes one value")))?;
            let mut out = StringBuilder::with_capacity(rows, rows * 24);
            let mut text = String::new();
            for i in 0..values.len() {
                if values.is_null(i) {
                    out.append_null();
                    continue;
                }
                text.clear();
                write_text(values, i, &mut text).map_err(|e| DataFusionError::Execution(e.0))?;
                out.append_value(&text);
            }
            Ok(Arc::new(out.finish()) as ArrayRef)
        }),
    ));
}

/// Whether Arrow's text for values of `dt` differs from PostgreSQL's.
fn written_otherwise(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Timestamp(..)
            | DataType::Interval(_)
            | DataType::Duration(_)
            | DataType::List(_)
            | DataType::LargeList(_)
            | DataType::FixedSizeList(..)
    )
}

fn is_text(dt: &DataType) -> bool {
    matches!(dt, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// `plan` with its casts of timestamps, intervals and arrays to text written PostgreSQL's way.
pub fn postgres_text_casts(plan: LogicalPlan, udf: &Arc<ScalarUDF>) -> Result<LogicalPlan> {
    // Once a node changed, the nodes visited after it (its ancestors among them) recompute
    // their schemas: a rewritten expression may differ in nullability.
    let mut changed = false;
    Ok(plan
        .transform_up_with_subqueries(|node| {
            let node = if changed { node.recompute_schema()? } else { node };
            let pg_text = |e: Expr| Expr::ScalarFunction(ScalarFunction::new_udf(udf.clone(), vec![e]));
            let node = super::plan_exprs::map_typed_expressions(node, |e, schema| match e {
                Expr::Cast(c)
                    if is_text(c.field.data_type()) && c.expr.get_type(schema).is_ok_and(|t| written_otherwise(&t)) =>
                {
                    Ok(Transformed::yes(datafusion::logical_expr::cast(pg_text(*c.expr), c.field.data_type().clone())))
                }
                // `'at ' || ts` and `concat('at ', ts)`: the value is cast to text implicitly,
                // later, by DataFusion's type coercion; written as PostgreSQL writes it here.
                Expr::BinaryExpr(mut b) if b.op == Operator::StringConcat => {
                    let left = b.left.get_type(schema)?;
                    let right = b.right.get_type(schema)?;
                    let changed = if is_text(&left) && written_otherwise(&right) {
                        b.right = Box::new(pg_text(*b.right));
                        true
                    } else if is_text(&right) && written_otherwise(&left) {
                        b.left = Box::new(pg_text(*b.left));
                        true
                    } else {
                        false
                    };
                    Ok(Transformed::new_transformed(Expr::BinaryExpr(b), changed))
                }
                Expr::ScalarFunction(mut f) if matches!(f.func.name(), "concat" | "concat_ws") => {
                    let mut changed = false;
                    for arg in f.args.iter_mut() {
                        if arg.get_type(schema).is_ok_and(|t| written_otherwise(&t)) {
                            *arg = pg_text(std::mem::replace(arg, Expr::Literal(ScalarValue::Null, None)));
                            changed = true;
                        }
                    }
                    Ok(Transformed::new_transformed(Expr::ScalarFunction(f), changed))
                }
                other => Ok(Transformed::no(other)),
            })?;
            changed |= node.transformed;
            Ok(node)
        })?
        .data)
}
