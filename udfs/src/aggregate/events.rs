//! What the event-sequence aggregates share (`window_funnel`, `sequence_match`,
//! `sequence_count`): each keeps a group's events as `(ts, conditions met)` pairs, bit `k - 1`
//! for condition `k`, and computes its answer from all of them at the end. The accumulators
//! here do the keeping (one group, and many groups in one flat buffer); a [`Kernel`] says which
//! rows matter and what the answer is.
//!
//! The arguments are laid out alike: a constant first (the window, the pattern), `ts` second,
//! then the conditions. `ts` is coerced to a timestamp in microseconds or to a 64-bit integer.

use crate::error::ArgumentError;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, ListArray, PrimitiveArray};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type, TimeUnit, UInt32Type};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, EmitTo, GroupsAccumulator};
use datafusion::physical_expr::expressions::Literal;
use std::sync::Arc;

/// The most conditions an event-sequence aggregate takes: one bit each in a `u32`.
pub const MAX_CONDITIONS: usize = 32;

/// The aggregates that keep every event of a group: their partial state saves nothing, so
/// [`crate::physical::single_phase`] aggregates them in one phase.
pub const EVENT_LISTS: [&str; 4] = [
    crate::aggregate::window_funnel::NAME,
    crate::aggregate::sequence::MATCH,
    crate::aggregate::sequence::COUNT,
    crate::aggregate::next_node::NAME,
];

/// One event of a group: its time and the conditions it meets.
pub type Event = (i64, u32);

/// What one call computes from a group's events.
pub trait Kernel: Clone + Send + Sync + std::fmt::Debug + 'static {
    /// How many conditions follow `ts`.
    fn conditions(&self) -> usize;
    /// Whether events meeting no condition are kept (they matter to `strict_order` only).
    fn keeps_unmatched(&self) -> bool {
        false
    }
    /// The answer for a group's events, in any order (sorting them is the kernel's business),
    /// as a number of the output type: 0 or 1 for a boolean.
    fn finish(&self, events: &mut [Event]) -> i64;
    /// The output type: an integer type or boolean.
    fn output(&self) -> DataType;
}

/// `ts`'s coerced type: a timestamp in microseconds, or a 64-bit integer; `None` for others.
pub fn coerced_ts(t: &DataType) -> Option<DataType> {
    match t {
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 | DataType::Null => {
            Some(DataType::Timestamp(TimeUnit::Microsecond, None))
        }
        t if t.is_integer() => Some(DataType::Int64),
        _ => None,
    }
}

/// The coerced types of `conditions` (booleans), or the argument error naming the first that
/// is not one (`cond1` is the first).
pub fn coerced_conditions(function: &str, conditions: &[DataType]) -> Result<Vec<DataType>> {
    if conditions.is_empty() || conditions.len() > MAX_CONDITIONS {
        return Err(ArgumentError::new(
            function,
            "cond1",
            format!("there must be 1 to {MAX_CONDITIONS} conditions, got {}", conditions.len()),
        )
        .into_datafusion());
    }
    conditions
        .iter()
        .enumerate()
        .map(|(i, t)| match t {
            DataType::Boolean | DataType::Null => Ok(DataType::Boolean),
            other => {
                Err(ArgumentError::new(function, format!("cond{}", i + 1), format!("must be a boolean, not {other}"))
                    .into_datafusion())
            }
        })
        .collect()
}

/// Argument `i` of a call as a constant, or the argument error "must be a constant".
pub fn constant(function: &str, args: &AccumulatorArgs, i: usize, argument: &str) -> Result<ScalarValue> {
    match args.exprs.get(i).and_then(|e| e.downcast_ref::<Literal>()) {
        Some(l) => Ok(l.value().clone()),
        None => Err(ArgumentError::new(function, argument, "must be a constant").into_datafusion()),
    }
}

/// A constant text argument.
pub fn constant_text(function: &str, args: &AccumulatorArgs, i: usize, argument: &str) -> Result<String> {
    match constant(function, args, i, argument)? {
        ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)) | ScalarValue::LargeUtf8(Some(s)) => Ok(s),
        other => {
            Err(ArgumentError::new(function, argument, format!("must be a text constant, got {other}"))
                .into_datafusion())
        }
    }
}

pub fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8)
}

/// The state fields: the group's times and conditions as two lists.
pub fn state_fields(args: &StateFieldsArgs) -> Vec<FieldRef> {
    let list = |name: &str, t: DataType| {
        Arc::new(Field::new(
            format!("{}[{name}]", args.name),
            DataType::List(Arc::new(Field::new_list_field(t, false))),
            true,
        ))
    };
    vec![list("ts", DataType::Int64), list("conditions", DataType::UInt32)]
}

/// Calls `push(row, (ts, conditions))` for every row of `values` (`ts` at 1, the conditions
/// from 2) that matters: a non-null `ts`, the filter true, a condition met unless `kernel`
/// keeps unmatched rows. A NULL condition is false.
fn rows<K: Kernel>(
    kernel: &K,
    values: &[ArrayRef],
    filter: Option<&BooleanArray>,
    mut push: impl FnMut(usize, Event),
) -> Result<()> {
    let ts = cast(&values[1], &DataType::Int64)?;
    let ts = ts.as_primitive::<Int64Type>();
    let mut masks = vec![0u32; ts.len()];
    for (k, c) in values[2..2 + kernel.conditions()].iter().enumerate() {
        set_bits(c.as_boolean(), 1 << k, &mut masks);
    }
    let times = ts.values();
    let all = ts.null_count() == 0 && filter.is_none();
    let unmatched = kernel.keeps_unmatched();
    for (row, &mask) in masks.iter().enumerate() {
        if mask == 0 && !unmatched {
            continue;
        }
        if !all && (ts.is_null(row) || filter.is_some_and(|f| !f.is_valid(row) || !f.value(row))) {
            continue;
        }
        push(row, (times[row], mask));
    }
    Ok(())
}

/// ORs `bit` into `out[i]` wherever `c` is true (NULL is false).
pub fn set_bits<T: Copy + std::ops::BitOrAssign>(c: &BooleanArray, bit: T, out: &mut [T]) {
    let values = match c.nulls() {
        Some(nulls) => &(c.values() & nulls.inner()),
        None => c.values(),
    };
    for i in values.set_indices() {
        out[i] |= bit;
    }
}

/// The state as lists: `events` holds the groups' events one group after the other, `lengths`
/// how many each group has; one `(ts list, conditions list)` row per group.
fn state_lists(events: &[Event], lengths: impl IntoIterator<Item = usize>) -> Result<Vec<ArrayRef>> {
    let ts: PrimitiveArray<Int64Type> = events.iter().map(|e| e.0).collect();
    let masks: PrimitiveArray<UInt32Type> = events.iter().map(|e| e.1).collect();
    let offsets = OffsetBuffer::from_lengths(lengths);
    let list = |values: ArrayRef, t: DataType| -> Result<ArrayRef> {
        let field = Arc::new(Field::new_list_field(t, false));
        Ok(Arc::new(ListArray::try_new(field, offsets.clone(), values, None)?))
    };
    Ok(vec![list(Arc::new(ts), DataType::Int64)?, list(Arc::new(masks), DataType::UInt32)?])
}

/// Calls `push(row, event)` for every event of every row of state lists.
fn state_rows(states: &[ArrayRef], mut push: impl FnMut(usize, Event)) {
    let (ts, masks) = (states[0].as_list::<i32>(), states[1].as_list::<i32>());
    let (t, m) = (ts.values().as_primitive::<Int64Type>(), masks.values().as_primitive::<UInt32Type>());
    for row in 0..ts.len() {
        if ts.is_null(row) {
            continue;
        }
        let (a, b) = (ts.value_offsets()[row] as usize, ts.value_offsets()[row + 1] as usize);
        let c = masks.value_offsets()[row] as usize;
        for i in 0..b - a {
            push(row, (t.value(a + i), m.value(c + i)));
        }
    }
}

/// The answers as an array of the kernel's output type.
fn answers<K: Kernel>(kernel: &K, values: Vec<i64>) -> Result<ArrayRef> {
    let values: ArrayRef = Arc::new(Int64Array::from(values));
    Ok(cast(&values, &kernel.output())?)
}

/// One group's events.
#[derive(Debug)]
pub struct EventsAccumulator<K> {
    kernel: K,
    events: Vec<Event>,
}

impl<K: Kernel> EventsAccumulator<K> {
    pub fn new(kernel: K) -> Self {
        EventsAccumulator { kernel, events: vec![] }
    }
}

impl<K: Kernel> Accumulator for EventsAccumulator<K> {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let events = &mut self.events;
        rows(&self.kernel, values, None, |_, e| events.push(e))
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let answer = answers(&self.kernel, vec![self.kernel.finish(&mut self.events)])?;
        ScalarValue::try_from_array(&answer, 0)
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.events.capacity() * std::mem::size_of::<Event>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let lists = state_lists(&self.events, [self.events.len()])?;
        lists.iter().map(|l| ScalarValue::try_from_array(l, 0)).collect()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let events = &mut self.events;
        state_rows(states, |_, e| events.push(e));
        Ok(())
    }
}

/// The same for many groups at once (what DataFusion's hash aggregation uses). Events of all
/// groups go into one flat buffer, tagged with their group; evaluating (or emitting the state)
/// sorts them by group with a counting sort. No allocation per group.
pub struct EventGroups<K> {
    kernel: K,
    events: Vec<Event>,
    group: Vec<u32>,
    num_groups: usize,
}

impl<K: Kernel> EventGroups<K> {
    pub fn new(kernel: K) -> Self {
        EventGroups { kernel, events: vec![], group: vec![], num_groups: 0 }
    }

    fn take(&mut self, emit_to: EmitTo) -> (Vec<Event>, Vec<usize>) {
        take_groups(&mut self.events, &mut self.group, &mut self.num_groups, emit_to)
    }
}

/// Removes the groups `emit_to` asks for from a flat buffer of `events` tagged with their
/// `group`, and returns their events ordered by group (a counting sort), with each group's end
/// offset. Groups that stay are renumbered from 0.
pub fn take_groups<T: Copy + Default>(
    events: &mut Vec<T>,
    group: &mut Vec<u32>,
    num_groups: &mut usize,
    emit_to: EmitTo,
) -> (Vec<T>, Vec<usize>) {
    let n = match emit_to {
        EmitTo::All => *num_groups,
        EmitTo::First(n) => n.min(*num_groups),
    };
    let mut ends = vec![0usize; n];
    for &g in group.iter() {
        if (g as usize) < n {
            ends[g as usize] += 1;
        }
    }
    let mut next = 0;
    for e in ends.iter_mut() {
        next += *e;
        *e = next;
    }
    let mut fill: Vec<usize> = std::iter::once(0).chain(ends.iter().copied()).take(n).collect();
    let mut sorted = vec![T::default(); next];
    let (mut kept_events, mut kept_group) = (vec![], vec![]);
    for (&e, &g) in events.iter().zip(group.iter()) {
        let g = g as usize;
        if g < n {
            sorted[fill[g]] = e;
            fill[g] += 1;
        } else {
            kept_events.push(e);
            kept_group.push((g - n) as u32);
        }
    }
    *events = kept_events;
    *group = kept_group;
    *num_groups -= n;
    (sorted, ends)
}

impl<K: Kernel> GroupsAccumulator for EventGroups<K> {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.num_groups = self.num_groups.max(total_num_groups);
        let (events, group) = (&mut self.events, &mut self.group);
        rows(&self.kernel, values, opt_filter, |row, e| {
            events.push(e);
            group.push(group_indices[row] as u32);
        })
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let (mut events, ends) = self.take(emit_to);
        let mut begin = 0;
        let mut values = Vec::with_capacity(ends.len());
        for &end in &ends {
            values.push(self.kernel.finish(&mut events[begin..end]));
            begin = end;
        }
        answers(&self.kernel, values)
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let (events, ends) = self.take(emit_to);
        let mut begin = 0;
        let lengths = ends.iter().map(|&end| {
            let len = end - begin;
            begin = end;
            len
        });
        state_lists(&events, lengths)
    }

    fn merge_batch(&mut self, values: &[ArrayRef], group_indices: &[usize], total_num_groups: usize) -> Result<()> {
        self.num_groups = self.num_groups.max(total_num_groups);
        let (events, group) = (&mut self.events, &mut self.group);
        state_rows(values, |row, e| {
            events.push(e);
            group.push(group_indices[row] as u32);
        });
        Ok(())
    }

    /// Each row as its own group: a list of its one event, or an empty list.
    fn convert_to_state(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>) -> Result<Vec<ArrayRef>> {
        let mut events = vec![];
        let mut lengths = vec![0; values[1].len()];
        rows(&self.kernel, values, opt_filter, |row, e| {
            events.push(e);
            lengths[row] = 1;
        })?;
        state_lists(&events, lengths)
    }

    fn size(&self) -> usize {
        self.events.capacity() * std::mem::size_of::<Event>() + self.group.capacity() * 4
    }
}
