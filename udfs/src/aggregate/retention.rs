//! `retention`: which of the later conditions a group met, given it met the first.
//!
//! # Contract
//!
//! ```sql
//! retention(cond1, cond2, ..., condN)  -- aggregate, returns integer[]
//! ```
//!
//! ClickHouse's `retention`: an array of N flags (0 or 1), 1-based like every PostgreSQL array:
//! `r[1]` is 1 when some row of the group meets `cond1`; `r[k]` (k > 1) is 1 when some row meets
//! `cond1` and some row (the same or another) meets `condk`. Each later condition is paired
//! with the first, not chained: `r[3]` does not need `cond2`. Typical conditions name a period
//! each (`event_time::date = '2025-01-01'`, then the days after it), so `sum(r[k])` over people
//! counts those of the first day's cohort who came back on day k.
//!
//! 1 to [`MAX_CONDITIONS`](crate::aggregate::events::MAX_CONDITIONS) conditions, booleans; NULL is false. A group without rows (an
//! aggregate over no rows) gives N zeros. The state is one bit per condition, so the answer
//! cannot depend on row order, batch size or partitioning.

use crate::aggregate::events::{coerced_conditions, set_bits};
use crate::docs::{FunctionDoc, Kind};
use crate::error::ArgumentError;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int32Array, ListArray, UInt32Array};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, UInt32Type};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility};
use std::sync::Arc;

pub const NAME: &str = "retention";

/// This function's reference ([`crate::docs`]).
pub const DOC: FunctionDoc = FunctionDoc {
    name: NAME,
    kind: Kind::Aggregate,
    usage: "retention(cond1, ..., condN)",
    result: "integer[]",
    positional: r##"VARIADIC conditions "any""##,
    options: &[],
    summary: "Flags per condition: the first met, and each later one met given the first (ClickHouse's retention).",
    description: "an array of N flags (N up to 32), 1-based: `r[1]` = some row met cond1, `r[k]` = some row met cond1 and some row met condk (paired with the first, not chained); NULL is false; N zeros over no rows",
    contract: "`udfs/src/aggregate/retention.rs`",
};

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Retention {
    signature: Signature,
}

impl Default for Retention {
    fn default() -> Self {
        Self::new()
    }
}

impl Retention {
    pub fn new() -> Self {
        Retention { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

fn item() -> FieldRef {
    Arc::new(Field::new_list_field(DataType::Int32, false))
}

/// The conditions met as an array of flags.
fn flags(masks: &[u32], n: usize) -> Result<ArrayRef> {
    let mut values = Vec::with_capacity(masks.len() * n);
    for &m in masks {
        let first = m & 1;
        values.push(first as i32);
        values.extend((1..n).map(|k| (first & (m >> k)) as i32));
    }
    let offsets = OffsetBuffer::from_lengths(std::iter::repeat_n(n, masks.len()));
    Ok(Arc::new(ListArray::try_new(item(), offsets, Arc::new(Int32Array::from(values)), None)?))
}

/// The conditions each row meets (bit `k - 1` for condition `k`); filtered-out rows meet none.
fn row_masks(values: &[ArrayRef], filter: Option<&BooleanArray>) -> Vec<u32> {
    let rows = values.first().map_or(0, |v| v.len());
    let mut masks = vec![0u32; rows];
    for (k, c) in values.iter().enumerate() {
        set_bits(c.as_boolean(), 1 << k, &mut masks);
    }
    if let Some(f) = filter {
        for (row, m) in masks.iter_mut().enumerate() {
            if !f.is_valid(row) || !f.value(row) {
                *m = 0;
            }
        }
    }
    masks
}

impl AggregateUDFImpl for Retention {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if arg_types.is_empty() {
            return Err(
                ArgumentError::new(NAME, "cond1", "is required: retention(cond1, ..., condN)").into_datafusion()
            );
        }
        coerced_conditions(NAME, arg_types)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::List(item()))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(format!("{}[met]", args.name), DataType::UInt32, true))])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(RetentionAccumulator { n: args.exprs.len(), met: 0 }))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(RetentionGroups { n: args.exprs.len(), met: vec![] }))
    }
}

#[derive(Debug)]
struct RetentionAccumulator {
    n: usize,
    met: u32,
}

impl Accumulator for RetentionAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.met = row_masks(values, None).iter().fold(self.met, |a, m| a | m);
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        ScalarValue::try_from_array(&flags(&[self.met], self.n)?, 0)
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::UInt32(Some(self.met))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let met = states[0].as_primitive::<UInt32Type>();
        self.met = met.iter().flatten().fold(self.met, |a, m| a | m);
        Ok(())
    }
}

/// One `u32` of conditions met per group.
#[derive(Debug)]
struct RetentionGroups {
    n: usize,
    met: Vec<u32>,
}

impl RetentionGroups {
    fn take(&mut self, emit_to: EmitTo) -> Vec<u32> {
        emit_to.take_needed(&mut self.met)
    }
}

impl GroupsAccumulator for RetentionGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.met.resize(total_num_groups, 0);
        for (m, &g) in row_masks(values, opt_filter).iter().zip(group_indices) {
            self.met[g] |= m;
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let met = self.take(emit_to);
        flags(&met, self.n)
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        Ok(vec![Arc::new(UInt32Array::from(self.take(emit_to)))])
    }

    fn merge_batch(&mut self, values: &[ArrayRef], group_indices: &[usize], total_num_groups: usize) -> Result<()> {
        self.met.resize(total_num_groups, 0);
        let met = values[0].as_primitive::<UInt32Type>();
        for (row, &g) in group_indices.iter().enumerate() {
            if met.is_valid(row) {
                self.met[g] |= met.value(row);
            }
        }
        Ok(())
    }

    fn convert_to_state(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>) -> Result<Vec<ArrayRef>> {
        Ok(vec![Arc::new(UInt32Array::from(row_masks(values, opt_filter)))])
    }

    fn size(&self) -> usize {
        self.met.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_pair_each_condition_with_the_first() {
        let a = flags(&[0b101, 0b110, 0, 0b111], 3).expect("flags");
        let list = a.as_list::<i32>();
        let row = |i: usize| list.value(i).as_primitive::<datafusion::arrow::datatypes::Int32Type>().values().to_vec();
        assert_eq!(row(0), vec![1, 0, 1]);
        // Without cond1 nothing counts.
        assert_eq!(row(1), vec![0, 0, 0]);
        assert_eq!(row(2), vec![0, 0, 0]);
        assert_eq!(row(3), vec![1, 1, 1]);
    }
}
