//! `attribute`: each touch's share of its journey's conversion, as a window function.
//!
//! # Contract
//!
//! ```sql
//! attribute(model [, argument ...]) OVER (PARTITION BY journey ORDER BY touch_time, tie_break)
//! ```
//!
//! Every row of the window partition is one touch of one converting journey, in the window's
//! `ORDER BY` order (give it a total order: time, then a tie-break such as the channel; the
//! function cannot see ties). Returns the touch's share (`double precision`, 0 to 1); the
//! shares of a partition add up to **exactly 1** when summed in touch order. The weights, the
//! small-n rules (one touch: 1; two touches: U 0.5/0.5, J 0.25/0.75, inverse J 0.75/0.25) and
//! the coinciding-milestone rules are those of `common::attribution`.
//!
//! | call | model |
//! |---|---|
//! | `attribute('first_touch')`, `'last_touch'`, `'linear'` | |
//! | `attribute('position_based')` or `'u_shaped'`, `'j_shaped'`, `'inverse_j'` | 40/20/40, 20/20/60, 60/20/20 |
//! | `attribute('last_non_direct', channel)` | the last touch whose channel is not `Direct` (any case, also `(direct)`); all Direct: the last touch |
//! | `attribute('time_decay', ts [, half_life [, conversion_ts]])` | weight `2^(-(conversion_ts - ts) / half_life)`, continuous; `half_life` a constant interval (default 7 days); `conversion_ts` defaults to the partition's latest `ts`; a NULL `ts` counts as infinitely old |
//! | `attribute('w_shaped', milestone)`, `attribute('full_path', milestone)` (`'z_shaped'`) | `milestone` is `'lead'`, `'opportunity'` or `'closed_won'` on the touch of that milestone (the last such touch counts), NULL elsewhere; W: 30% first, lead and opportunity touches, 10% over the others; full path: 22.5% first, lead, opportunity and closed-won (default: the last touch), 10% over the others; a touch with several roles sums them; with a lead or opportunity touch missing, position-based |
//! | `attribute('custom', first, middle, last)` | constant non-negative weights, normalised |
//!
//! `model` and the weights are constants, checked at plan time (22023 naming the argument).
//! The data-driven models (`markov`, `shapley`) need every journey at once and belong to the
//! report form.

use crate::common::attribution::{CLOSED_WON, DEFAULT_HALF_LIFE_MICROS, LEAD, Model, OPPORTUNITY, Touch, shares};
use crate::docs::{FunctionDoc, Kind};
use crate::error::ArgumentError;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type, IntervalUnit, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::function::{PartitionEvaluatorArgs, WindowUDFFieldArgs};
use datafusion::logical_expr::{PartitionEvaluator, Signature, Volatility, WindowUDFImpl};
use datafusion::physical_expr::expressions::Literal;
use std::sync::Arc;

pub const NAME: &str = "attribute";

/// This function's reference ([`crate::docs`]).
pub const DOC: FunctionDoc = FunctionDoc {
    name: NAME,
    kind: Kind::Window,
    usage: "attribute(model [, argument ...]) OVER (PARTITION BY journey ORDER BY time, tie_break)",
    result: "double precision",
    positional: r##"model text, VARIADIC arguments "any""##,
    options: &[],
    summary: "Each touch's share of its journey's conversion under a rule-based model; the shares of a journey add up to exactly 1.",
    description: "each touch's share of its journey's conversion, adding up to exactly 1 per journey (in touch order): `'first_touch'`, `'last_touch'`, `'linear'`, `'position_based'`/`'u_shaped'` (40/20/40), `'j_shaped'` (20/20/60), `'inverse_j'` (60/20/20), `('last_non_direct', channel)`, `('time_decay', ts [, half_life [, conversion_ts]])` (half-life default 7 days, continuous time back from the conversion, default the last touch), `('w_shaped', milestone)` and `('full_path', milestone)` with `milestone` = `'lead'`/`'opportunity'`/`'closed_won'` on the milestone's touch, `('custom', first, middle, last)`; one touch takes 1, two touches share U 50/50, J 25/75, inverse J 75/25; coinciding milestones add up on their touch; a missing lead or opportunity touch falls back to position-based (contract in `udfs/src/window/attribute.rs` and `udfs/src/common/attribution.rs`)",
    contract: "`udfs/src/window/attribute.rs`",
};
const MODELS: &str = "first_touch, last_touch, last_non_direct, linear, position_based, u_shaped, j_shaped, \
                      inverse_j, time_decay, w_shaped, full_path, z_shaped, custom";

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Attribute {
    signature: Signature,
}

impl Default for Attribute {
    fn default() -> Self {
        Self::new()
    }
}

impl Attribute {
    pub fn new() -> Self {
        Attribute { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

/// What a partition evaluator needs to know about the call.
#[derive(Debug, Clone, Copy)]
enum Call {
    /// A model that needs only the order of the touches.
    Order(Model),
    LastNonDirect,
    TimeDecay {
        half_life: i64,
        conversion: bool,
    },
    Milestones(Model),
}

fn bad(arg: &str, msg: impl Into<String>) -> datafusion::error::DataFusionError {
    ArgumentError::new(NAME, arg, msg).into_datafusion()
}

fn constant(args: &PartitionEvaluatorArgs, i: usize, arg: &str) -> Result<ScalarValue> {
    match args.input_exprs().get(i).and_then(|e| e.downcast_ref::<Literal>()) {
        Some(l) => Ok(l.value().clone()),
        None => Err(bad(arg, "must be a constant")),
    }
}

impl WindowUDFImpl for Attribute {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let Some(first) = arg_types.first() else {
            return Err(bad("model", format!("is required: attribute(model [, ...]); models: {MODELS}")));
        };
        if !matches!(first, DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8) {
            return Err(bad("model", format!("must be a text constant, not {first}")));
        }
        Ok(arg_types
            .iter()
            .enumerate()
            .map(|(i, t)| match t {
                _ if i == 0 => DataType::Utf8,
                DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => {
                    DataType::Timestamp(TimeUnit::Microsecond, None)
                }
                DataType::Interval(_) | DataType::Duration(_) => DataType::Interval(IntervalUnit::MonthDayNano),
                DataType::Utf8View | DataType::LargeUtf8 | DataType::Dictionary(_, _) => DataType::Utf8,
                other => other.clone(),
            })
            .collect())
    }

    fn partition_evaluator(&self, args: PartitionEvaluatorArgs) -> Result<Box<dyn PartitionEvaluator>> {
        let model = match constant(&args, 0, "model")? {
            ScalarValue::Utf8(Some(m)) => m.to_ascii_lowercase(),
            other => return Err(bad("model", format!("must be a text constant, got {other}"))),
        };
        let n = args.input_exprs().len();
        let arity = |min: usize, max: usize, usage: &str| {
            if (min..=max).contains(&n) { Ok(()) } else { Err(bad("model", format!("'{model}' is called as {usage}"))) }
        };
        let call = match model.as_str() {
            "last_non_direct" => {
                arity(2, 2, "attribute('last_non_direct', channel)")?;
                Call::LastNonDirect
            }
            "time_decay" => {
                arity(2, 4, "attribute('time_decay', ts [, half_life [, conversion_ts]])")?;
                let half_life = match n {
                    2 => DEFAULT_HALF_LIFE_MICROS,
                    _ => {
                        crate::common::duration::constant_micros(NAME, "half_life", &constant(&args, 2, "half_life")?)?
                    }
                };
                if half_life == 0 {
                    return Err(bad("half_life", "must be positive"));
                }
                Call::TimeDecay { half_life, conversion: n == 4 }
            }
            "w_shaped" | "full_path" | "z_shaped" => {
                arity(2, 2, &format!("attribute('{model}', milestone)"))?;
                Call::Milestones(if model == "w_shaped" { Model::WShaped } else { Model::FullPath })
            }
            "custom" => {
                arity(4, 4, "attribute('custom', first, middle, last)")?;
                let mut w = [0.0; 3];
                for (k, arg) in ["first", "middle", "last"].iter().enumerate() {
                    w[k] = match constant(&args, k + 1, arg)?.cast_to(&DataType::Float64) {
                        Ok(ScalarValue::Float64(Some(x))) if x.is_finite() && x >= 0.0 => x,
                        _ => return Err(bad(arg, "must be a non-negative number")),
                    };
                }
                if w == [0.0; 3] {
                    return Err(bad("first", "the weights must not all be 0"));
                }
                Call::Order(Model::Ends(w[0], w[1], w[2]))
            }
            "markov" | "shapley" => {
                return Err(bad(
                    "model",
                    format!(
                        "'{model}' needs every journey at once: use the report, SELECT * FROM attribute('{model}')"
                    ),
                ));
            }
            other => match Model::parse(other) {
                Some(m) => {
                    arity(1, 1, &format!("attribute('{model}') with no other argument"))?;
                    Call::Order(m)
                }
                None => return Err(bad("model", format!("'{other}' is not a model (models: {MODELS})"))),
            },
        };
        Ok(Box::new(AttributeEvaluator { call }))
    }

    fn field(&self, field_args: WindowUDFFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(Field::new(field_args.name(), DataType::Float64, true)))
    }
}

#[derive(Debug)]
struct AttributeEvaluator {
    call: Call,
}

impl PartitionEvaluator for AttributeEvaluator {
    fn evaluate_all(&mut self, values: &[ArrayRef], num_rows: usize) -> Result<ArrayRef> {
        let mut touches: Vec<Touch> =
            (0..num_rows).map(|i| Touch { t: i as i64, direct: false, milestones: 0 }).collect();
        let mut conversion_t = num_rows as i64;
        let (model, text) = match self.call {
            Call::Order(m) => (m, None),
            Call::LastNonDirect => (Model::LastNonDirect, Some(cast(&values[1], &DataType::Utf8)?)),
            Call::Milestones(m) => (m, Some(cast(&values[1], &DataType::Utf8)?)),
            Call::TimeDecay { half_life, conversion } => {
                let ts = cast(&values[1], &DataType::Int64)?;
                let ts = ts.as_primitive::<Int64Type>();
                for (i, t) in touches.iter_mut().enumerate() {
                    t.t = if ts.is_valid(i) { ts.value(i) } else { i64::MIN };
                }
                let latest = |a: &ArrayRef| -> Result<Option<i64>> {
                    let a = cast(a, &DataType::Int64)?;
                    Ok(a.as_primitive::<Int64Type>().iter().flatten().max())
                };
                let from = if conversion { latest(&values[3])? } else { None };
                conversion_t = match from {
                    Some(c) => c,
                    None => latest(&values[1])?.unwrap_or(0),
                };
                (Model::TimeDecay(half_life), None)
            }
        };
        if let Some(text) = text {
            let text = text.as_string::<i32>();
            for (i, t) in touches.iter_mut().enumerate() {
                if !text.is_valid(i) {
                    continue;
                }
                let v = text.value(i).trim().to_ascii_lowercase();
                match self.call {
                    Call::LastNonDirect => t.direct = v == "direct" || v == "(direct)",
                    _ => {
                        t.milestones = match v.as_str() {
                            "lead" => LEAD,
                            "opportunity" => OPPORTUNITY,
                            "closed_won" => CLOSED_WON,
                            _ => 0,
                        }
                    }
                }
            }
        }
        Ok(Arc::new(Float64Array::from(shares(model, &touches, conversion_t).shares)))
    }
}
