//! Integer arithmetic that fails on overflow, as PostgreSQL's does (22003), instead of
//! wrapping: `9223372036854775807 + 1` was a negative number and `10::int2 * 10000::int2`
//! -31072 (issue 25).
//!
//! DataFusion's `+`, `-` and `*` wrap around; its physical expression has a flag to check, but
//! no setting reaches it. So an analyzer rule, run after type coercion (both sides then have
//! one type), replaces each `+`, `-` and `*` of two signed integers of the same type by a
//! function that computes it with Arrow's checked kernels, keeping the column's name. The rule
//! runs on every plan the context analyzes: statements, views and report sources alike.
//! Results keep DataFusion's types (an integer literal is a bigint), so `int4 + 1` overflows
//! where a bigint does, not where PostgreSQL's int4 would.

use datafusion::arrow::array::{ArrayRef, Datum, Scalar};
use datafusion::arrow::compute::kernels::numeric;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::error::ArrowError;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::config::ConfigOptions;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    BinaryExpr, ColumnarValue, Expr, ExprSchemable, LogicalPlan, Operator, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, TypeSignature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;
use datafusion::prelude::SessionContext;
use std::sync::Arc;

/// Installs the rule in `ctx`.
pub fn register(ctx: &SessionContext) {
    ctx.add_analyzer_rule(Arc::new(CheckedArithmetic::default()));
}

/// The analyzer rule: `a + b`, `a - b`, `a * b` of signed integers become checked calls.
#[derive(Debug)]
pub struct CheckedArithmetic {
    plus: Arc<ScalarUDF>,
    minus: Arc<ScalarUDF>,
    times: Arc<ScalarUDF>,
}

impl Default for CheckedArithmetic {
    fn default() -> Self {
        let udf = |op| Arc::new(ScalarUDF::new_from_impl(Checked::new(op)));
        CheckedArithmetic { plus: udf(Op::Plus), minus: udf(Op::Minus), times: udf(Op::Times) }
    }
}

fn is_signed_integer(t: &DataType) -> bool {
    matches!(t, DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64)
}

impl CheckedArithmetic {
    /// `expr` with its arithmetic checked, and its type when that is known on the way (the
    /// type of a checked call is its operands'). Types are found once per node, bottom-up:
    /// asking DataFusion for the type of each operand of a chain of n checked calls walks the
    /// chain below it, n^2 in all, and `1 + 1 + ... + 1` of 1,000 terms took minutes.
    fn checked(&self, expr: Expr, schema: &DFSchema) -> Result<(Expr, Option<DataType>)> {
        match expr {
            Expr::BinaryExpr(BinaryExpr { left, op, right })
                if matches!(op, Operator::Plus | Operator::Minus | Operator::Multiply) =>
            {
                let (left, l) = self.checked(*left, schema)?;
                let (right, r) = self.checked(*right, schema)?;
                // A type that cannot be computed here (an outer reference, say) keeps
                // DataFusion's operator.
                let l = l.or_else(|| left.get_type(schema).ok());
                let r = r.or_else(|| right.get_type(schema).ok());
                match (l, r) {
                    (Some(l), Some(r)) if l == r && is_signed_integer(&l) => {
                        let (op, udf) = match op {
                            Operator::Plus => (Op::Plus, &self.plus),
                            Operator::Minus => (Op::Minus, &self.minus),
                            _ => (Op::Times, &self.times),
                        };
                        // Two constants: computed here, so that a long constant chain is one
                        // literal, not a nest of calls for the optimizer to walk.
                        if let (Expr::Literal(a, _), Expr::Literal(b, _)) = (&left, &right)
                            && let Some(value) = fold(op, a, b)
                        {
                            return Ok((Expr::Literal(value?, None), Some(l)));
                        }
                        Ok((udf.call(vec![left, right]), Some(l)))
                    }
                    _ => Ok((Expr::BinaryExpr(BinaryExpr::new(Box::new(left), op, Box::new(right))), None)),
                }
            }
            other => {
                let expr = other.map_children(|child| Ok(Transformed::yes(self.checked(child, schema)?.0)))?.data;
                Ok((expr, None))
            }
        }
    }
}

impl AnalyzerRule for CheckedArithmetic {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| {
            let mut schema = DFSchema::empty();
            for input in node.inputs() {
                schema.merge(input.schema());
            }
            if node.inputs().is_empty() {
                schema.merge(node.schema());
            }
            let names = NamePreserver::new(&node);
            node.map_expressions(|e| {
                let name = names.save(&e);
                let (rewritten, _) = self.checked(e, &schema)?;
                Ok(Transformed::yes(name.restore(rewritten)))
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "journeydb_checked_arithmetic"
    }
}

/// `a op b` for two non-null constants (of one signed integer type, as the caller checked),
/// with the kernels the function runs; None when either is NULL.
fn fold(op: Op, a: &ScalarValue, b: &ScalarValue) -> Option<Result<ScalarValue>> {
    if a.is_null() || b.is_null() {
        return None;
    }
    let value = || ScalarValue::try_from_array(&compute(op, &a.to_scalar()?, &b.to_scalar()?, &a.data_type())?, 0);
    Some(value())
}

/// `l op b` with Arrow's checked kernels; an overflow is PostgreSQL's `<type> out of range`.
fn compute(op: Op, l: &dyn Datum, r: &dyn Datum, t: &DataType) -> Result<ArrayRef> {
    match op {
        Op::Plus => numeric::add(l, r),
        Op::Minus => numeric::sub(l, r),
        Op::Times => numeric::mul(l, r),
    }
    .map_err(|e| match e {
        ArrowError::ArithmeticOverflow(_) => out_of_range(t),
        other => DataFusionError::ArrowError(Box::new(other), None),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Op {
    Plus,
    Minus,
    Times,
}

/// `a op b` for two signed integers of one type, 22003 on overflow.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Checked {
    op: Op,
    signature: Signature,
}

impl Checked {
    fn new(op: Op) -> Checked {
        let same = [DataType::Int8, DataType::Int16, DataType::Int32, DataType::Int64]
            .into_iter()
            .map(|t| TypeSignature::Exact(vec![t.clone(), t]))
            .collect();
        Checked { op, signature: Signature::one_of(same, Volatility::Immutable) }
    }
}

/// PostgreSQL's message for a type's overflow.
fn out_of_range(t: &DataType) -> DataFusionError {
    let name = match t {
        DataType::Int16 | DataType::Int8 => "smallint",
        DataType::Int32 => "integer",
        _ => "bigint",
    };
    DataFusionError::ArrowError(Box::new(ArrowError::ArithmeticOverflow(format!("{name} out of range"))), None)
}

impl ScalarUDFImpl for Checked {
    fn name(&self) -> &str {
        match self.op {
            Op::Plus => "journeydb_checked_plus",
            Op::Minus => "journeydb_checked_minus",
            Op::Times => "journeydb_checked_times",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(args[0].clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let t = args.return_field.data_type().clone();
        let scalars = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays: Vec<ArrayRef> = args
            .args
            .iter()
            .map(|a| match a {
                ColumnarValue::Array(a) => Ok(a.clone()),
                ColumnarValue::Scalar(s) => s.to_array_of_size(1),
            })
            .collect::<Result<_>>()?;
        let datum = |i: usize| -> Box<dyn Datum> {
            match &args.args[i] {
                ColumnarValue::Scalar(_) => Box::new(Scalar::new(arrays[i].clone())),
                ColumnarValue::Array(_) => Box::new(arrays[i].clone()),
            }
        };
        let result = compute(self.op, datum(0).as_ref(), datum(1).as_ref(), &t)?;
        Ok(if scalars {
            ColumnarValue::Scalar(ScalarValue::try_from_array(&result, 0)?)
        } else {
            ColumnarValue::Array(result)
        })
    }
}
