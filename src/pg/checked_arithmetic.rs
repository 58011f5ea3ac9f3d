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
//!
//! Numerics are 128-bit decimals of at most 38 digits, where PostgreSQL's have no such bound:
//! `+`, `-` and `*` of decimals are checked against the precision of their result, so a sum
//! past 38 digits is 22003 (numeric field overflow) where PostgreSQL would show the number,
//! and never a wrong number. `sum` of bigints is a numeric, as PostgreSQL's is, so it cannot
//! wrap around (DataFusion's is a bigint that does).

use datafusion::arrow::array::{ArrayRef, AsArray, Datum, Scalar};
use datafusion::arrow::compute::kernels::numeric;
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::arrow::error::ArrowError;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::config::ConfigOptions;
use datafusion::error::{DataFusionError, Result};
use datafusion::functions_aggregate::sum::Sum;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::type_coercion::binary::BinaryTypeCoercer;
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, BinaryExpr, ColumnarValue, Expr, ExprSchemable, GroupsAccumulator,
    LogicalPlan, Operator, ReversedUDAF, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, SetMonotonicity, Signature,
    TypeSignature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;
use datafusion::prelude::SessionContext;
use std::sync::Arc;

/// Installs the rule and PostgreSQL's `sum` in `ctx`.
pub fn register(ctx: &SessionContext) {
    ctx.add_analyzer_rule(Arc::new(CheckedArithmetic::default()));
    ctx.register_udaf(AggregateUDF::new_from_impl(NumericSum::default()));
}

/// The analyzer rule: `a + b`, `a - b`, `a * b` of signed integers become checked calls.
/// Decimal `+`, `-` and `*` are wrapped in a check of their result's precision.
#[derive(Debug)]
pub struct CheckedArithmetic {
    plus: Arc<ScalarUDF>,
    minus: Arc<ScalarUDF>,
    times: Arc<ScalarUDF>,
    precision: Arc<ScalarUDF>,
}

impl Default for CheckedArithmetic {
    fn default() -> Self {
        let udf = |op| Arc::new(ScalarUDF::new_from_impl(Checked::new(op)));
        CheckedArithmetic {
            plus: udf(Op::Plus),
            minus: udf(Op::Minus),
            times: udf(Op::Times),
            precision: Arc::new(ScalarUDF::new_from_impl(WithinPrecision::default())),
        }
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
                    (Some(l @ DataType::Decimal128(..)), Some(r @ DataType::Decimal128(..))) => {
                        let t = BinaryTypeCoercer::new(&l, &op, &r).get_result_type()?;
                        let expr = Expr::BinaryExpr(BinaryExpr::new(Box::new(left), op, Box::new(right)));
                        Ok((self.precision.call(vec![expr]), Some(t)))
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

/// Its argument, a decimal, if every value fits the precision of its type; else 22003, as
/// PostgreSQL's `numeric field overflow`. Arrow's decimal kernels check 128 bits, not digits.
#[derive(Debug, PartialEq, Eq, Hash)]
struct WithinPrecision {
    signature: Signature,
}

impl Default for WithinPrecision {
    fn default() -> Self {
        WithinPrecision { signature: Signature::any(1, Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for WithinPrecision {
    fn name(&self) -> &str {
        "journeydb_numeric_within_precision"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(args[0].clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let value = args.args.into_iter().next().expect("one argument");
        let DataType::Decimal128(precision, _) = value.data_type() else {
            return Ok(value);
        };
        let array = value.to_array(1)?;
        array
            .as_primitive::<datafusion::arrow::datatypes::Decimal128Type>()
            .validate_decimal_precision(precision)
            .map_err(|_| {
                DataFusionError::ArrowError(
                    Box::new(ArrowError::ArithmeticOverflow(format!(
                        "numeric field overflow: the result has more than {precision} digits"
                    ))),
                    None,
                )
            })?;
        Ok(value)
    }
}

/// PostgreSQL's `sum`: of bigints a numeric (a bigint in DataFusion, which wraps around past
/// 2^63), of smaller integers a bigint; everything else as DataFusion's `sum`, which computes
/// it (the arguments arrive converted).
#[derive(Debug, PartialEq, Eq, Hash)]
struct NumericSum {
    sum: Sum,
    signature: Signature,
}

impl Default for NumericSum {
    fn default() -> Self {
        NumericSum { sum: Sum::new(), signature: Signature::user_defined(Volatility::Immutable) }
    }
}

/// The type `sum` computes in for an argument of type `t`.
fn sum_input(t: &DataType) -> Result<DataType> {
    Ok(match t {
        DataType::Dictionary(_, value) => return sum_input(value),
        DataType::Int64 | DataType::UInt64 => DataType::Decimal128(20, 0),
        DataType::Null => DataType::Int64,
        t if t.is_signed_integer() => DataType::Int64,
        t if t.is_unsigned_integer() => DataType::Int64,
        t if t.is_floating() => DataType::Float64,
        t @ (DataType::Decimal128(..) | DataType::Duration(_) | DataType::Interval(_)) => t.clone(),
        other => {
            return Err(DataFusionError::Plan(format!(
                "function sum({}) does not exist",
                crate::pg::types::pg_type_of(other).name
            )));
        }
    })
}

impl AggregateUDFImpl for NumericSum {
    fn name(&self) -> &str {
        "sum"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        match args {
            [t] => Ok(vec![sum_input(t)?]),
            _ => Err(DataFusionError::Plan("function sum takes one argument".into())),
        }
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        self.sum.return_type(args)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        self.sum.accumulator(args)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        self.sum.state_fields(args)
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        self.sum.groups_accumulator_supported(args)
    }

    fn create_groups_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        self.sum.create_groups_accumulator(args)
    }

    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        self.sum.create_sliding_accumulator(args)
    }

    fn reverse_expr(&self) -> ReversedUDAF {
        ReversedUDAF::Identical
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        AggregateOrderSensitivity::Insensitive
    }

    fn set_monotonicity(&self, t: &DataType) -> SetMonotonicity {
        self.sum.set_monotonicity(t)
    }
}
