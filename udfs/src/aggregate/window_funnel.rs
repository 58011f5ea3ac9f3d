//! `window_funnel`: the furthest step of a funnel a group (a person) reached within a window.
//!
//! # Contract
//!
//! ```sql
//! window_funnel(window, ts, cond1, ..., condN [, 'mode', ...])  -- aggregate, returns integer
//! ```
//!
//! ClickHouse's `windowFunnel(window, mode...)(ts, cond1, ..., condN)` as one call: the same
//! mode names, but ties broken deterministically and without ClickHouse's known defects.
//!
//! - `window` is a constant: an `INTERVAL` without months for a timestamp or date `ts`, an integer
//!   in `ts`'s units for an integer `ts`. It is **inclusive** and measured from the event of step
//!   1: a chain may end at `ts1 + window` exactly. `window = 0` allows only chains within one
//!   timestamp.
//! - `cond1 .. condN` are booleans, 1 to [`MAX_STEPS`] of them. A NULL condition is false (the
//!   row still counts for the others; ClickHouse skips the whole row). A NULL `ts` skips the
//!   row.
//! - The result is the largest `k` (0 to N) such that distinct events `e1 .. ek` exist with
//!   `condi(ei)`, `ts(e1) <= ts(e2) <= ... <= ts(ek)` and `ts(ek) - ts(e1) <= window`. So equal
//!   timestamps may chain (as in ClickHouse), but **one event never fills two steps** (ClickHouse
//!   lets one row matching `cond1` and `cond2` fill both, #34986). Re-entry is free: any step-1
//!   event may start the chain, the best one counts. The definition uses only the events'
//!   timestamps and conditions, so the answer does not depend on row order, batch size or
//!   partitioning.
//!
//! Modes (constant text arguments after the conditions, any order; unknown ones are errors):
//! - `'strict_increase'`: timestamps must increase strictly along the chain. Unlike
//!   ClickHouse (#93789), a valid chain is never lost: `c1@0, c1@1, c2@1` gives 2.
//! - `'strict_once'`: an event counts once in a chain. Always true here; accepted for
//!   compatibility.
//! - `'strict_order'`: ClickHouse's scan: events are read in the order (ts, first condition they
//!   meet, the set of conditions they meet) -- a total order on everything that matters, so
//!   ties cannot depend on arrival order. Once a step-1 event has been seen, an event that meets
//!   no condition, or a step whose previous step has not been reached, stops the scan.
//! - `'allow_reentry'` (with `'strict_order'` only): a step whose previous step has not been
//!   reached is skipped instead of stopping the scan; an event meeting no condition still stops
//!   it. So `begin_checkout -> view -> begin_checkout -> pay` reaches 4 as ClickHouse's
//!   documentation says (ClickHouse itself returns 1 there).
//! - `'strict_deduplication'`: the same scan; a step `k > 1` met again while step `k` is
//!   already reached stops it.
//!
//! In the scan modes each event is judged against the state before it, so one event never
//! extends a chain it has just extended (the same rule as above); step 1 re-anchors the chain at
//! the latest step-1 event, as in ClickHouse.
//!
//! Memory: the state is the events' `(ts, conditions)` pairs, 12 bytes per event of a group;
//! no per-chain lists (ClickHouse's `strict_once` keeps every candidate chain).

use crate::common::duration::within;
use crate::docs::{FunctionDoc, Kind};
use crate::error::ArgumentError;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int32Array, ListArray, PrimitiveArray};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type, IntervalUnit, TimeUnit, UInt32Type};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility};
use datafusion::physical_expr::expressions::Literal;
use std::sync::Arc;

pub const NAME: &str = "window_funnel";

/// This function's reference ([`crate::docs`]).
pub const DOC: FunctionDoc = FunctionDoc {
    name: NAME,
    kind: Kind::Aggregate,
    usage: "window_funnel(window, ts, cond1, ..., condN [, 'mode', ...])",
    result: "integer",
    positional: r##""window" interval, ts timestamp with time zone, VARIADIC conditions_and_modes "any""##,
    options: &[],
    summary: "The furthest funnel step a group reached within the window (ClickHouse's windowFunnel).",
    description: "the furthest funnel step (0 to N, N up to 32) a group reached: distinct events meeting cond1..condk with non-decreasing times, the last within `window` (inclusive) of the first; one event never fills two steps; ClickHouse's modes `strict_increase`, `strict_order`, `allow_reentry`, `strict_deduplication`, `strict_once` with ties ordered by (ts, conditions), never by arrival; NULL ts skips the row, a NULL condition is false",
    contract: "`udfs/src/aggregate/window_funnel.rs`",
};
/// The most conditions (steps) a funnel may have: one bit each in a `u32`.
pub const MAX_STEPS: usize = 32;

/// The modes, as ClickHouse names them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Modes {
    pub strict_order: bool,
    pub strict_deduplication: bool,
    pub strict_increase: bool,
    pub allow_reentry: bool,
}

impl Modes {
    /// Parses mode names; `strict_once` is accepted and always on.
    pub fn parse(names: &[String]) -> Result<Modes> {
        let mut m = Modes::default();
        for n in names {
            match n.to_ascii_lowercase().as_str() {
                "strict_order" => m.strict_order = true,
                "strict_deduplication" => m.strict_deduplication = true,
                "strict_increase" => m.strict_increase = true,
                "strict_once" => {}
                "allow_reentry" => m.allow_reentry = true,
                "strict" => {
                    return Err(ArgumentError::new(NAME, "mode", "'strict' was replaced by 'strict_deduplication'")
                        .into_datafusion());
                }
                other => {
                    return Err(ArgumentError::new(
                        NAME,
                        "mode",
                        format!(
                            "'{other}' is not a mode (modes: strict_order, strict_deduplication, strict_increase, \
                             strict_once, allow_reentry)"
                        ),
                    )
                    .into_datafusion());
                }
            }
        }
        if m.allow_reentry && !m.strict_order {
            return Err(ArgumentError::new(NAME, "mode", "'allow_reentry' needs 'strict_order'").into_datafusion());
        }
        Ok(m)
    }

    fn scans(&self) -> bool {
        self.strict_order || self.strict_deduplication
    }
}

/// The furthest step reached by `events` (`(ts, conditions met)`, bit `k - 1` for step `k`),
/// in any order; sorted in place.
pub fn funnel_level(events: &mut [(i64, u32)], steps: usize, window: i64, modes: Modes) -> usize {
    // Ascending ts, then the first condition met (an event meeting none first), then the set.
    let key = |&(t, m): &(i64, u32)| (t, if m == 0 { 0 } else { m.trailing_zeros() + 1 }, m);
    // Events usually arrive in time order already.
    if !events.is_sorted_by_key(key) {
        events.sort_unstable_by_key(key);
    }
    if modes.scans() { scan(events, steps, window, modes) } else { chains(events, steps, window, modes) }
}

/// The definition: the longest chain of distinct events, by dynamic programming over groups
/// of equal timestamps. `best[k]` is the latest start of a chain reaching step `k`; a later
/// start is never worse (the window only gets easier), so it is all that needs keeping.
fn chains(events: &[(i64, u32)], steps: usize, window: i64, modes: Modes) -> usize {
    let mut best: [Option<i64>; MAX_STEPS + 1] = [None; MAX_STEPS + 1];
    let mut i = 0;
    while i < events.len() {
        let t = events[i].0;
        let mut j = i + 1;
        while j < events.len() && events[j].0 == t {
            j += 1;
        }
        if j == i + 1 || modes.strict_increase {
            // One step per timestamp: one event can fill one step, and strict_increase allows
            // one step per timestamp. Descending, so each step reads the state before this
            // timestamp.
            let met = events[i..j].iter().fold(0u32, |acc, e| acc | e.1);
            for from in (0..steps).rev() {
                if met & (1 << from) == 0 {
                    continue;
                }
                let start = if from == 0 { Some(t) } else { best[from].filter(|&s| within(t, s, window)) };
                if start.is_some() {
                    best[from + 1] = best[from + 1].max(start);
                }
            }
        } else {
            // Several events at one timestamp may fill consecutive steps: steps from+1,
            // from+2, ... matched to distinct events. More copies of one (ts, conditions) than
            // steps can never help.
            let mut group: Vec<u32> = Vec::with_capacity(j - i);
            for (k, &(_, m)) in events[i..j].iter().enumerate() {
                if m != 0 && (k < steps || events[i + k - steps].1 != m) {
                    group.push(m);
                }
            }
            let before = best;
            for (from, reached) in before.iter().enumerate().take(steps) {
                let start = if from == 0 { Some(t) } else { reached.filter(|&s| within(t, s, window)) };
                let Some(start) = start else { continue };
                let mut matching = Matching::new(&group);
                for step in from..steps {
                    if !matching.add(step) {
                        break;
                    }
                    best[step + 1] = best[step + 1].max(Some(start));
                }
            }
        }
        if best[steps].is_some() {
            return steps;
        }
        i = j;
    }
    (1..=steps).rev().find(|&k| best[k].is_some()).unwrap_or(0)
}

/// Bipartite matching of steps to the events of one timestamp (augmenting paths).
pub(crate) struct Matching<'a> {
    events: &'a [u32],
    /// The step each event fills.
    pub(crate) owner: Vec<Option<usize>>,
}

impl<'a> Matching<'a> {
    pub(crate) fn new(events: &'a [u32]) -> Self {
        Matching { events, owner: vec![None; events.len()] }
    }

    /// Adds `step` (0-based); false when no assignment of distinct events covers it too.
    pub(crate) fn add(&mut self, step: usize) -> bool {
        let mut seen = vec![false; self.events.len()];
        self.augment(step, &mut seen)
    }

    fn augment(&mut self, step: usize, seen: &mut [bool]) -> bool {
        for e in 0..self.events.len() {
            if self.events[e] & (1 << step) == 0 || seen[e] {
                continue;
            }
            seen[e] = true;
            let free = match self.owner[e] {
                None => true,
                Some(other) => self.augment(other, seen),
            };
            if free {
                self.owner[e] = Some(step);
                return true;
            }
        }
        false
    }
}

/// ClickHouse's scan for the order-dependent modes, over the total order of `funnel_level`.
fn scan(events: &[(i64, u32)], steps: usize, window: i64, modes: Modes) -> usize {
    // Per step: (start of the chain, ts of its last event).
    let mut level: [Option<(i64, i64)>; MAX_STEPS + 1] = [None; MAX_STEPS + 1];
    let reached = |level: &[Option<(i64, i64)>]| (1..=steps).rev().find(|&k| level[k].is_some()).unwrap_or(0);
    let mut started = false;
    for &(t, mask) in events {
        if mask == 0 {
            if modes.strict_order && started {
                break;
            }
            continue;
        }
        // Every step of this event reads the state before it: decide first, then write.
        let mut writes: [(usize, (i64, i64)); MAX_STEPS] = [(0, (0, 0)); MAX_STEPS];
        let mut n = 0;
        let mut stop = false;
        let mut now_started = started;
        for step in 1..=steps {
            if mask & (1 << (step - 1)) == 0 {
                continue;
            }
            if step == 1 {
                writes[n] = (1, (t, t));
                n += 1;
                now_started = true;
                continue;
            }
            if modes.strict_deduplication && level[step].is_some() {
                stop = true;
                break;
            }
            match level[step - 1] {
                Some((first, last)) if within(t, first, window) && (!modes.strict_increase || last < t) => {
                    writes[n] = (step, (first, t));
                    n += 1;
                }
                Some(_) => {}
                None if modes.strict_order && now_started && !modes.allow_reentry => {
                    stop = true;
                    break;
                }
                None => {}
            }
        }
        for &(step, v) in &writes[..n] {
            level[step] = Some(v);
        }
        started = now_started;
        if stop {
            return reached(&level);
        }
        if level[steps].is_some() {
            return steps;
        }
    }
    reached(&level)
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct WindowFunnel {
    signature: Signature,
}

impl Default for WindowFunnel {
    fn default() -> Self {
        Self::new()
    }
}

impl WindowFunnel {
    pub fn new() -> Self {
        WindowFunnel { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8)
}

impl AggregateUDFImpl for WindowFunnel {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let bad = |arg: &str, msg: String| Err(ArgumentError::new(NAME, arg, msg).into_datafusion());
        if arg_types.len() < 3 {
            return bad("cond1", "is required: window_funnel(window, ts, cond1, ..., condN [, mode ...])".into());
        }
        let ts = match &arg_types[1] {
            DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 | DataType::Null => {
                DataType::Timestamp(TimeUnit::Microsecond, None)
            }
            t if t.is_integer() => DataType::Int64,
            other => return bad("ts", format!("must be a timestamp, a date or an integer, not {other}")),
        };
        let window = match (&ts, &arg_types[0]) {
            (DataType::Int64, w) if w.is_integer() => DataType::Int64,
            (DataType::Timestamp(_, _), DataType::Interval(_) | DataType::Duration(_)) => {
                DataType::Interval(IntervalUnit::MonthDayNano)
            }
            (DataType::Int64, w) => return bad("window", format!("must be an integer for an integer ts, not {w}")),
            (_, w) => return bad("window", format!("must be an interval for a timestamp ts, not {w}")),
        };
        let modes = arg_types.iter().rev().take_while(|t| is_text(t)).count();
        let conditions = arg_types.len() - 2 - modes;
        if conditions == 0 || conditions > MAX_STEPS {
            return bad("cond1", format!("there must be 1 to {MAX_STEPS} conditions, got {conditions}"));
        }
        let mut out = vec![window, ts];
        for (i, t) in arg_types[2..2 + conditions].iter().enumerate() {
            match t {
                DataType::Boolean | DataType::Null => out.push(DataType::Boolean),
                other => return bad(&format!("cond{}", i + 1), format!("must be a boolean, not {other}")),
            }
        }
        out.extend(arg_types[2 + conditions..].iter().cloned());
        Ok(out)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int32)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let list = |name: &str, t: DataType| {
            Arc::new(Field::new(
                format!("{}[{name}]", args.name),
                DataType::List(Arc::new(Field::new_list_field(t, false))),
                true,
            ))
        };
        Ok(vec![list("ts", DataType::Int64), list("conditions", DataType::UInt32)])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let spec = Spec::from_args(&args)?;
        Ok(Box::new(FunnelAccumulator { spec, events: vec![] }))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        let spec = Spec::from_args(&args)?;
        Ok(Box::new(FunnelGroups { spec, events: vec![], group: vec![], num_groups: 0 }))
    }
}

/// The constant arguments of one call.
#[derive(Debug, Clone, Copy)]
struct Spec {
    steps: usize,
    window: i64,
    modes: Modes,
}

impl Spec {
    fn from_args(args: &AccumulatorArgs) -> Result<Spec> {
        let constant = |i: usize, arg: &str| -> Result<ScalarValue> {
            match args.exprs.get(i).and_then(|e| e.downcast_ref::<Literal>()) {
                Some(l) => Ok(l.value().clone()),
                None => Err(ArgumentError::new(NAME, arg, "must be a constant").into_datafusion()),
            }
        };
        let window = window_value(&constant(0, "window")?)?;
        let modes = args.expr_fields.iter().rev().take_while(|f| is_text(f.data_type())).count();
        let steps = args.exprs.len() - 2 - modes;
        let mut names = vec![];
        for i in 2 + steps..args.exprs.len() {
            match constant(i, "mode")? {
                ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)) | ScalarValue::LargeUtf8(Some(s)) => {
                    names.push(s)
                }
                other => {
                    return Err(ArgumentError::new(NAME, "mode", format!("must be a text constant, got {other}"))
                        .into_datafusion());
                }
            }
        }
        Ok(Spec { steps, window, modes: Modes::parse(&names)? })
    }

    /// Calls `push(row, (ts, conditions))` for every row that matters.
    fn rows(
        &self,
        values: &[ArrayRef],
        filter: Option<&BooleanArray>,
        mut push: impl FnMut(usize, (i64, u32)),
    ) -> Result<()> {
        let ts = cast(&values[1], &DataType::Int64)?;
        let ts = ts.as_primitive::<Int64Type>();
        let mut masks = vec![0u32; ts.len()];
        for (k, c) in values[2..2 + self.steps].iter().enumerate() {
            set_bits(c.as_boolean(), 1 << k, &mut masks);
        }
        let times = ts.values();
        let all = ts.null_count() == 0 && filter.is_none();
        for (row, &mask) in masks.iter().enumerate() {
            // Events meeting no condition matter only to strict_order.
            if mask == 0 && !self.modes.strict_order {
                continue;
            }
            if !all && (ts.is_null(row) || filter.is_some_and(|f| !f.is_valid(row) || !f.value(row))) {
                continue;
            }
            push(row, (times[row], mask));
        }
        Ok(())
    }

    fn level(&self, events: &mut [(i64, u32)]) -> i32 {
        funnel_level(events, self.steps, self.window, self.modes) as i32
    }
}

/// The state as lists: `events` holds the groups' events one group after the other, `lengths`
/// how many each group has; one `(ts list, conditions list)` row per group.
fn state_lists(events: &[(i64, u32)], lengths: impl IntoIterator<Item = usize>) -> Result<Vec<ArrayRef>> {
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
fn state_rows(states: &[ArrayRef], mut push: impl FnMut(usize, (i64, u32))) {
    let (ts, masks) = (states[0].as_list::<i32>(), states[1].as_list::<i32>());
    let (t, m) = (ts.values().as_primitive::<Int64Type>(), masks.values().as_primitive::<UInt32Type>());
    for row in 0..ts.len() {
        if ts.is_null(row) {
            continue;
        }
        let (a, b) = (ts.value_offsets()[row] as usize, ts.value_offsets()[row + 1] as usize);
        let (c, _) = (masks.value_offsets()[row] as usize, masks.value_offsets()[row + 1] as usize);
        for i in 0..b - a {
            push(row, (t.value(a + i), m.value(c + i)));
        }
    }
}

/// The window in `ts` units (microseconds for timestamps).
fn window_value(v: &ScalarValue) -> Result<i64> {
    crate::common::duration::constant_micros(NAME, "window", v)
}

#[derive(Debug)]
struct FunnelAccumulator {
    spec: Spec,
    events: Vec<(i64, u32)>,
}

impl Accumulator for FunnelAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let events = &mut self.events;
        self.spec.rows(values, None, |_, e| events.push(e))
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Int32(Some(self.spec.level(&mut self.events))))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.events.capacity() * std::mem::size_of::<(i64, u32)>()
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
struct FunnelGroups {
    spec: Spec,
    events: Vec<(i64, u32)>,
    group: Vec<u32>,
    num_groups: usize,
}

impl FunnelGroups {
    /// Removes the groups `emit_to` asks for and returns their events ordered by group, with
    /// each group's end offset. Groups that stay are renumbered from 0.
    fn take(&mut self, emit_to: EmitTo) -> (Vec<(i64, u32)>, Vec<usize>) {
        let n = match emit_to {
            EmitTo::All => self.num_groups,
            EmitTo::First(n) => n.min(self.num_groups),
        };
        let mut ends = vec![0usize; n];
        for &g in &self.group {
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
        let mut sorted = vec![(0i64, 0u32); next];
        let (mut kept_events, mut kept_group) = (vec![], vec![]);
        for (&e, &g) in self.events.iter().zip(&self.group) {
            let g = g as usize;
            if g < n {
                sorted[fill[g]] = e;
                fill[g] += 1;
            } else {
                kept_events.push(e);
                kept_group.push((g - n) as u32);
            }
        }
        self.events = kept_events;
        self.group = kept_group;
        self.num_groups -= n;
        (sorted, ends)
    }

    fn push(&mut self, group: usize, e: (i64, u32)) {
        self.events.push(e);
        self.group.push(group as u32);
    }
}

impl GroupsAccumulator for FunnelGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.num_groups = self.num_groups.max(total_num_groups);
        let spec = self.spec;
        spec.rows(values, opt_filter, |row, e| self.push(group_indices[row], e))
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let (mut events, ends) = self.take(emit_to);
        let mut begin = 0;
        let mut levels = Vec::with_capacity(ends.len());
        for &end in &ends {
            levels.push(self.spec.level(&mut events[begin..end]));
            begin = end;
        }
        Ok(Arc::new(Int32Array::from(levels)))
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
        state_rows(values, |row, e| self.push(group_indices[row], e));
        Ok(())
    }

    /// Each row as its own group: a list of its one event, or an empty list.
    fn convert_to_state(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>) -> Result<Vec<ArrayRef>> {
        let mut events = vec![];
        let mut lengths = vec![0; values[1].len()];
        self.spec.rows(values, opt_filter, |row, e| {
            events.push(e);
            lengths[row] = 1;
        })?;
        state_lists(&events, lengths)
    }

    fn size(&self) -> usize {
        self.events.capacity() * std::mem::size_of::<(i64, u32)>() + self.group.capacity() * 4
    }
}

/// ORs `bit` into `out[i]` wherever `c` is true (NULL is false).
pub fn set_bits(c: &BooleanArray, bit: u32, out: &mut [u32]) {
    let values = match c.nulls() {
        Some(nulls) => &(c.values() & nulls.inner()),
        None => c.values(),
    };
    for i in values.set_indices() {
        out[i] |= bit;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C1: u32 = 1;
    const C2: u32 = 2;
    const C3: u32 = 4;
    const NONE: Modes =
        Modes { strict_order: false, strict_deduplication: false, strict_increase: false, allow_reentry: false };

    fn level(events: &[(i64, u32)], steps: usize, window: i64, modes: Modes) -> usize {
        funnel_level(&mut events.to_vec(), steps, window, modes)
    }

    /// The definition, by brute force over every ordered choice of distinct events.
    fn brute(events: &[(i64, u32)], steps: usize, window: i64, strict_increase: bool) -> usize {
        fn extend(
            events: &[(i64, u32)],
            used: &mut Vec<usize>,
            step: usize,
            steps: usize,
            window: i64,
            si: bool,
        ) -> usize {
            if step == steps {
                return steps;
            }
            let mut best = step;
            for i in 0..events.len() {
                if used.contains(&i) || events[i].1 & (1 << step) == 0 {
                    continue;
                }
                if let Some(&last) = used.last() {
                    let (t0, tl) = (events[used[0]].0, events[last].0);
                    if events[i].0 < tl || (si && events[i].0 == tl) || events[i].0 - t0 > window {
                        continue;
                    }
                }
                used.push(i);
                best = best.max(extend(events, used, step + 1, steps, window, si));
                used.pop();
            }
            best
        }
        extend(events, &mut vec![], 0, steps, window, strict_increase)
    }

    /// The first implementation of the scan (a copy of the state per event), kept as the
    /// reference the allocation-free one must agree with.
    fn scan_reference(events: &[(i64, u32)], steps: usize, window: i64, modes: Modes) -> usize {
        // Per step: (start of the chain, ts of its last event).
        let mut level: Vec<Option<(i64, i64)>> = vec![None; steps + 1];
        let reached = |level: &[Option<(i64, i64)>]| (1..=steps).rev().find(|&k| level[k].is_some()).unwrap_or(0);
        let mut started = false;
        for &(t, mask) in events {
            if mask == 0 {
                if modes.strict_order && started {
                    break;
                }
                continue;
            }
            let before = level.clone();
            for step in 1..=steps {
                if mask & (1 << (step - 1)) == 0 {
                    continue;
                }
                if step == 1 {
                    level[1] = Some((t, t));
                    started = true;
                    continue;
                }
                if modes.strict_deduplication && before[step].is_some() {
                    return reached(&level);
                }
                match before[step - 1] {
                    Some((first, last)) if within(t, first, window) && (!modes.strict_increase || last < t) => {
                        level[step] = Some((first, t));
                    }
                    Some(_) => {}
                    None if modes.strict_order && started && !modes.allow_reentry => return reached(&level),
                    None => {}
                }
            }
            if level[steps].is_some() {
                return steps;
            }
        }
        reached(&level)
    }

    #[test]
    fn documented_cases() {
        // A chain within the window; the window is inclusive.
        assert_eq!(level(&[(0, C1), (5, C2), (10, C3)], 3, 10, NONE), 3);
        assert_eq!(level(&[(0, C1), (5, C2), (11, C3)], 3, 10, NONE), 2);
        // Re-entry: a later step-1 event starts a chain that fits.
        assert_eq!(level(&[(0, C1), (20, C1), (25, C2), (29, C3)], 3, 10, NONE), 3);
        // Window 0: same-timestamp chains only.
        assert_eq!(level(&[(1, C1), (1, C2), (2, C3)], 3, 0, NONE), 2);
        // One event never fills two steps (ClickHouse #34986)...
        assert_eq!(level(&[(0, C1 | C2)], 2, 10, NONE), 1);
        // ... but two events at one timestamp may chain (ClickHouse #21835).
        assert_eq!(level(&[(0, C2), (0, C1)], 2, 10, NONE), 2);
        // strict_increase keeps valid chains (ClickHouse #93789: c1@0, c1@1, c2@1 gives 1 there).
        let si = Modes { strict_increase: true, ..NONE };
        assert_eq!(level(&[(0, C1), (1, C1), (1, C2)], 2, 10, si), 2);
        assert_eq!(level(&[(1, C1), (1, C2)], 2, 10, si), 1);
        // Needs a matching: X(1)@0, A(2)@5, B(1,3)@5 reaches 3 whatever the order.
        assert_eq!(level(&[(5, C1 | C3), (5, C2), (0, C1)], 3, 10, NONE), 3);
        assert_eq!(level(&[], 3, 10, NONE), 0);
    }

    #[test]
    fn strict_order_and_reentry() {
        let so = Modes { strict_order: true, ..NONE };
        // A -> B -> D -> C stops at D: level 2.
        assert_eq!(level(&[(0, C1), (1, C2), (2, 0), (3, C3)], 3, 10, so), 2);
        // An event meeting no condition before the first step-1 event does not stop it.
        assert_eq!(level(&[(0, 0), (1, C1), (2, C2)], 2, 10, so), 2);
        // A step whose previous step is unreached stops; allow_reentry skips it.
        assert_eq!(level(&[(0, C1), (1, C3), (2, C2), (3, C3)], 3, 10, so), 1);
        let re = Modes { allow_reentry: true, ..so };
        assert_eq!(level(&[(0, C1), (1, C3), (2, C2), (3, C3)], 3, 10, re), 3);
        // The documented checkout case (begin_checkout -> view -> begin_checkout -> pay, where
        // begin_checkout meets cond1 and cond3): strict_order stops at 1, as ClickHouse's 00632
        // reference does; allow_reentry reaches 4, as ClickHouse's documentation says it should
        // (its implementation gives 1 there too).
        let c4 = 8;
        let checkout = [(0, C1 | C3), (1, C2), (2, C1 | C3), (3, c4)];
        assert_eq!(level(&checkout, 4, 10, so), 1);
        assert_eq!(level(&checkout, 4, 10, re), 4);
    }

    #[test]
    fn strict_deduplication_stops_at_a_repeated_step() {
        let sd = Modes { strict_deduplication: true, ..NONE };
        assert_eq!(level(&[(0, C1), (1, C2), (2, C2), (3, C3)], 3, 10, sd), 2);
        // Repeats of step 1 re-anchor and do not stop.
        assert_eq!(level(&[(0, C1), (1, C1), (2, C2), (3, C3)], 3, 10, sd), 3);
    }

    #[test]
    fn modes_are_checked() {
        assert!(Modes::parse(&["allow_reentry".into()]).is_err());
        assert!(Modes::parse(&["strict".into()]).expect_err("renamed").to_string().contains("strict_deduplication"));
        assert!(Modes::parse(&["fast".into()]).expect_err("unknown").to_string().contains("'fast' is not a mode"));
        assert!(Modes::parse(&["STRICT_ORDER".into(), "strict_once".into()]).expect("ok").strict_order);
    }

    #[test]
    fn matches_the_definition_on_random_event_sets() {
        let mut rng = crate::common::test_rng::TestRng(0x2545_f491_4f6c_dd1d);
        let mut next = |n: u64| rng.next(n);
        for case in 0..3000 {
            let steps = 1 + next(4) as usize;
            let n = next(7) as usize;
            let events: Vec<(i64, u32)> =
                (0..n).map(|_| (next(6) as i64, next(1 << steps) as u32)).filter(|e| e.1 != 0).collect();
            let window = next(5) as i64;
            for si in [false, true] {
                let modes = Modes { strict_increase: si, ..NONE };
                let got = level(&events, steps, window, modes);
                let want = brute(&events, steps, window, si);
                assert_eq!(got, want, "case {case}: {events:?} steps {steps} window {window} strict_increase {si}");
                // Any row order gives the same answer.
                let mut reversed = events.clone();
                reversed.reverse();
                assert_eq!(funnel_level(&mut reversed, steps, window, modes), want);
            }
            for modes in [
                Modes { strict_order: true, ..NONE },
                Modes { strict_order: true, allow_reentry: true, ..NONE },
                Modes { strict_deduplication: true, ..NONE },
            ] {
                let mut sorted = events.clone();
                funnel_level(&mut sorted, steps, window, modes);
                assert_eq!(scan(&sorted, steps, window, modes), scan_reference(&sorted, steps, window, modes));
                let mut a = events.clone();
                let mut b = events.clone();
                b.reverse();
                let half = b.len() / 2;
                b.rotate_left(half);
                assert_eq!(funnel_level(&mut a, steps, window, modes), funnel_level(&mut b, steps, window, modes));
            }
        }
    }
}
