//! `sequence_next_node`: the event that follows (or precedes) a chain of events.
//!
//! # Contract
//!
//! ```sql
//! sequence_next_node(direction, base, ts, event, base_condition, event1, ..., eventN)
//!   -- aggregate, returns text
//! ```
//!
//! ClickHouse's `sequenceNextNode(direction, base)(ts, event, base_condition, event1, ...)` as
//! one call, with a total order on ties (ClickHouse keeps events of one timestamp in arrival
//! order) and without its experimental flag.
//!
//! - Every row with a non-null `ts` is an event (`event` may be NULL); events are ordered by
//!   `ts`, then `event` (NULL first), then the conditions they meet. The conditions are
//!   booleans, NULL is false; `event1 .. eventN` are 1 to 32.
//! - `base` picks the base point: `'head'` the first event, `'tail'` the last, `'first_match'`
//!   the first event meeting `event1`, `'last_match'` the last one. The base point must meet
//!   `base_condition` (for `head` and `tail`: else there is no answer; for the matches: the
//!   first or last event meeting both).
//! - `direction` `'forward'`: the base point and the N-1 events after it must meet `event1 ..
//!   eventN` in turn, and the answer is the `event` of the event after them. `'backward'`: the
//!   base point and the events before it, going back, meet `event1 .. eventN`, and the answer
//!   is the event before them. The chain is tried at the base point only, as in ClickHouse.
//!   `'forward'` with `'tail'` and `'backward'` with `'head'` are errors (nothing can follow the
//!   last event).
//! - NULL when there is no base point, the chain does not hold, or no event is left.

use crate::aggregate::events::{MAX_CONDITIONS, coerced_ts, constant_text, is_text, set_bits, take_groups};
use crate::docs::{FunctionDoc, Kind};
use crate::error::ArgumentError;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, ListArray, PrimitiveArray, StringArray};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type, UInt64Type};
use datafusion::common::HashMap;
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility};
use std::sync::Arc;

pub const NAME: &str = "sequence_next_node";

/// This function's reference ([`crate::docs`]).
pub const DOC: FunctionDoc = FunctionDoc {
    name: NAME,
    kind: Kind::Aggregate,
    usage: "sequence_next_node(direction, base, ts, event, base_condition, event1, ..., eventN)",
    result: "text",
    positional: r##"direction text, base text, ts timestamp with time zone, event text, VARIADIC conditions "any""##,
    options: &[],
    summary: "The event after (or before) a chain of events from a base point (ClickHouse's sequenceNextNode).",
    description: "the `event` of the row after (`'forward'`) or before (`'backward'`) the chain of consecutive events meeting event1..eventN that starts at the base point (`'head'`, `'tail'`, `'first_match'`, `'last_match'` of event1; it must meet base_condition); rows ordered by (ts, event, conditions met); NULL when there is none",
    contract: "`udfs/src/aggregate/next_node.rs`",
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Base {
    Head,
    Tail,
    FirstMatch,
    LastMatch,
}

/// The constant arguments of one call.
#[derive(Debug, Clone, Copy)]
struct Spec {
    forward: bool,
    base: Base,
    /// N: event1 .. eventN.
    events: usize,
}

impl Spec {
    fn parse(direction: &str, base: &str, events: usize) -> Result<Spec> {
        let bad = |arg: &str, msg: String| Err(ArgumentError::new(NAME, arg, msg).into_datafusion());
        let forward = match direction.to_ascii_lowercase().as_str() {
            "forward" => true,
            "backward" => false,
            other => return bad("direction", format!("must be 'forward' or 'backward', not '{other}'")),
        };
        let base = match base.to_ascii_lowercase().as_str() {
            "head" if forward => Base::Head,
            "tail" if !forward => Base::Tail,
            "head" | "tail" => {
                return bad("base", format!("'{base}' cannot go with '{direction}': nothing lies beyond that end"));
            }
            "first_match" => Base::FirstMatch,
            "last_match" => Base::LastMatch,
            other => {
                return bad("base", format!("must be 'head', 'tail', 'first_match' or 'last_match', not '{other}'"));
            }
        };
        Ok(Spec { forward, base, events })
    }

    /// The answer over `rows`: `(ts, event, conditions)` with bit 0 for `base_condition` and
    /// bit k for `eventk`; sorts them.
    fn next(&self, rows: &mut [Row]) -> Option<String> {
        rows.sort_unstable_by(|a, b| (a.0, &a.1, a.2).cmp(&(b.0, &b.1, b.2)));
        self.answer(rows.len(), |i| rows[i].2).and_then(|i| rows[i].1.clone())
    }

    /// The index of the answer among `n` sorted events, event `i` meeting conditions `mask(i)`.
    fn answer(&self, n: usize, mask: impl Fn(usize) -> u64) -> Option<usize> {
        let m = self.events;
        let is_base = |i: usize| mask(i) & 1 != 0;
        let starts = |i: usize| mask(i) & 0b11 == 0b11;
        let base = match self.base {
            Base::Head => (n > 0 && is_base(0)).then_some(0),
            Base::Tail => (n > 0 && is_base(n - 1)).then(|| n - 1),
            Base::FirstMatch => (0..n).find(|&i| starts(i)),
            Base::LastMatch => (0..n).rev().find(|&i| starts(i)),
        }?;
        let at = |i: usize| {
            let j = if self.forward { base.checked_add(i) } else { base.checked_sub(i) };
            j.filter(|&j| j < n)
        };
        let holds = |i: usize| at(i).is_some_and(|j| mask(j) & (1 << (i + 1)) != 0);
        if !(0..m).all(holds) {
            return None;
        }
        at(m)
    }
}

/// One event: time, value, conditions met.
type Row = (i64, Option<String>, u64);

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct NextNode {
    signature: Signature,
}

impl Default for NextNode {
    fn default() -> Self {
        Self::new()
    }
}

impl NextNode {
    pub fn new() -> Self {
        NextNode { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

impl AggregateUDFImpl for NextNode {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let bad = |arg: &str, msg: String| Err(ArgumentError::new(NAME, arg, msg).into_datafusion());
        if arg_types.len() < 6 {
            return bad("event1", format!("is required: {}", DOC.usage));
        }
        for (i, arg) in ["direction", "base"].iter().enumerate() {
            if !is_text(&arg_types[i]) {
                return bad(arg, format!("must be a text constant, not {}", arg_types[i]));
            }
        }
        let Some(ts) = coerced_ts(&arg_types[2]) else {
            return bad("ts", format!("must be a timestamp, a date or an integer, not {}", arg_types[2]));
        };
        if !is_text(&arg_types[3]) && arg_types[3] != DataType::Null {
            return bad("event", format!("must be text, not {}", arg_types[3]));
        }
        if arg_types.len() - 5 > MAX_CONDITIONS {
            return bad("event1", format!("there must be 1 to {MAX_CONDITIONS} events, got {}", arg_types.len() - 5));
        }
        let mut out = vec![DataType::Utf8, DataType::Utf8, ts, DataType::Utf8];
        for (i, t) in arg_types[4..].iter().enumerate() {
            if !matches!(t, DataType::Boolean | DataType::Null) {
                let arg = if i == 0 { "base_condition".to_string() } else { format!("event{i}") };
                return bad(&arg, format!("must be a boolean, not {t}"));
            }
            out.push(DataType::Boolean);
        }
        Ok(out)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let list = |name: &str, t: DataType, nullable: bool| {
            Arc::new(Field::new(
                format!("{}[{name}]", args.name),
                DataType::List(Arc::new(Field::new_list_field(t, nullable))),
                true,
            ))
        };
        Ok(vec![
            list("ts", DataType::Int64, false),
            list("event", DataType::Utf8, true),
            list("conditions", DataType::UInt64, false),
        ])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let direction = constant_text(NAME, &args, 0, "direction")?;
        let base = constant_text(NAME, &args, 1, "base")?;
        let spec = Spec::parse(&direction, &base, args.exprs.len() - 5)?;
        Ok(Box::new(NextNodeAccumulator { spec, rows: vec![], bytes: 0 }))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        let direction = constant_text(NAME, &args, 0, "direction")?;
        let base = constant_text(NAME, &args, 1, "base")?;
        let spec = Spec::parse(&direction, &base, args.exprs.len() - 5)?;
        Ok(Box::new(NextNodeGroups {
            spec,
            values: vec![],
            ids: HashMap::new(),
            bytes: 0,
            events: vec![],
            group: vec![],
            num_groups: 0,
        }))
    }
}

/// The conditions each row of a batch meets: bit 0 `base_condition`, bit k `eventk` (NULL is
/// false).
fn row_masks(values: &[ArrayRef]) -> Vec<u64> {
    let rows = values[2].len();
    let mut masks = vec![0u64; rows];
    for (k, c) in values[4..].iter().enumerate() {
        set_bits(c.as_boolean(), 1u64 << k, &mut masks);
    }
    masks
}

/// Value id of a NULL event.
const NULL_VALUE: u32 = u32::MAX;

/// Many groups at once: every group's events in one flat buffer, event values interned
/// (`(ts, value id, conditions)`); evaluating sorts the events by group with a counting sort,
/// then each group's by (ts, value, conditions).
struct NextNodeGroups {
    spec: Spec,
    values: Vec<String>,
    ids: HashMap<String, u32>,
    /// The bytes the interned values hold.
    bytes: usize,
    events: Vec<(i64, u32, u64)>,
    group: Vec<u32>,
    num_groups: usize,
}

impl NextNodeGroups {
    fn intern(&mut self, v: &str) -> u32 {
        if let Some(&id) = self.ids.get(v) {
            return id;
        }
        let id = self.values.len() as u32;
        self.values.push(v.to_string());
        self.ids.insert(v.to_string(), id);
        self.bytes += 2 * v.len() + 48;
        id
    }

    fn push(&mut self, group: usize, t: i64, value: Option<&str>, mask: u64) {
        let id = value.map_or(NULL_VALUE, |v| self.intern(v));
        self.events.push((t, id, mask));
        self.group.push(group as u32);
    }

    fn take(&mut self, emit_to: EmitTo) -> (Vec<(i64, u32, u64)>, Vec<usize>) {
        take_groups(&mut self.events, &mut self.group, &mut self.num_groups, emit_to)
    }

    /// Each value id's place in text order, NULL first.
    fn ranks(&self) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.values.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| self.values[a as usize].cmp(&self.values[b as usize]));
        let mut rank = vec![0u32; self.values.len()];
        for (r, &id) in order.iter().enumerate() {
            rank[id as usize] = r as u32 + 1;
        }
        rank
    }

    /// Lists of `(ts, event, conditions)` over `events`, `lengths` per row.
    fn lists(&self, events: &[(i64, u32, u64)], lengths: impl IntoIterator<Item = usize>) -> Result<Vec<ArrayRef>> {
        let offsets = OffsetBuffer::from_lengths(lengths);
        let ts: PrimitiveArray<Int64Type> = events.iter().map(|e| e.0).collect();
        let event: StringArray =
            events.iter().map(|e| (e.1 != NULL_VALUE).then(|| self.values[e.1 as usize].as_str())).collect();
        let masks: PrimitiveArray<UInt64Type> = events.iter().map(|e| e.2).collect();
        let list = |values: ArrayRef, nullable: bool| -> Result<ArrayRef> {
            let field = Arc::new(Field::new_list_field(values.data_type().clone(), nullable));
            Ok(Arc::new(ListArray::try_new(field, offsets.clone(), values, None)?))
        };
        Ok(vec![list(Arc::new(ts), false)?, list(Arc::new(event), true)?, list(Arc::new(masks), false)?])
    }
}

impl GroupsAccumulator for NextNodeGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.num_groups = self.num_groups.max(total_num_groups);
        let ts = cast(&values[2], &DataType::Int64)?;
        let ts = ts.as_primitive::<Int64Type>();
        let event = cast(&values[3], &DataType::Utf8View)?;
        let event = event.as_string_view();
        let masks = row_masks(values);
        for (row, &g) in group_indices.iter().enumerate() {
            if ts.is_null(row) || opt_filter.is_some_and(|f| !f.is_valid(row) || !f.value(row)) {
                continue;
            }
            let value = event.is_valid(row).then(|| event.value(row));
            self.push(g, ts.value(row), value, masks[row]);
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let (mut events, ends) = self.take(emit_to);
        let rank = self.ranks();
        let key = |e: &(i64, u32, u64)| (e.0, if e.1 == NULL_VALUE { 0 } else { rank[e.1 as usize] }, e.2);
        let mut out: Vec<Option<&str>> = Vec::with_capacity(ends.len());
        let mut begin = 0;
        for &end in &ends {
            let group = &mut events[begin..end];
            if !group.is_sorted_by_key(key) {
                group.sort_unstable_by_key(key);
            }
            let answer = self.spec.answer(group.len(), |i| group[i].2).map(|i| group[i].1);
            out.push(answer.filter(|&id| id != NULL_VALUE).map(|id| self.values[id as usize].as_str()));
            begin = end;
        }
        Ok(Arc::new(StringArray::from(out)))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let (events, ends) = self.take(emit_to);
        let mut begin = 0;
        let lengths: Vec<usize> = ends
            .iter()
            .map(|&end| {
                let len = end - begin;
                begin = end;
                len
            })
            .collect();
        self.lists(&events, lengths)
    }

    fn merge_batch(&mut self, values: &[ArrayRef], group_indices: &[usize], total_num_groups: usize) -> Result<()> {
        self.num_groups = self.num_groups.max(total_num_groups);
        let (ts, event, masks) = (values[0].as_list::<i32>(), values[1].as_list::<i32>(), values[2].as_list::<i32>());
        let (t, e, m) = (
            ts.values().as_primitive::<Int64Type>(),
            event.values().as_string::<i32>(),
            masks.values().as_primitive::<UInt64Type>(),
        );
        for (row, &g) in group_indices.iter().enumerate() {
            if ts.is_null(row) {
                continue;
            }
            let (a, b) = (ts.value_offsets()[row] as usize, ts.value_offsets()[row + 1] as usize);
            let (c, d) = (event.value_offsets()[row] as usize, masks.value_offsets()[row] as usize);
            for i in 0..b - a {
                let value = e.is_valid(c + i).then(|| e.value(c + i));
                self.push(g, t.value(a + i), value, m.value(d + i));
            }
        }
        Ok(())
    }

    /// Each row as its own group: a list of its one event, or an empty list.
    fn convert_to_state(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>) -> Result<Vec<ArrayRef>> {
        let ts = cast(&values[2], &DataType::Int64)?;
        let ts = ts.as_primitive::<Int64Type>();
        let event = cast(&values[3], &DataType::Utf8)?;
        let event = event.as_string::<i32>();
        let masks = row_masks(values);
        let offsets =
            |keep: &dyn Fn(usize) -> bool| OffsetBuffer::from_lengths((0..ts.len()).map(|r| usize::from(keep(r))));
        let keep = |row: usize| ts.is_valid(row) && opt_filter.is_none_or(|f| f.is_valid(row) && f.value(row));
        let kept: Vec<usize> = (0..ts.len()).filter(|&r| keep(r)).collect();
        let offsets = offsets(&keep);
        let t: PrimitiveArray<Int64Type> = kept.iter().map(|&r| ts.value(r)).collect();
        let e: StringArray = kept.iter().map(|&r| event.is_valid(r).then(|| event.value(r))).collect();
        let m: PrimitiveArray<UInt64Type> = kept.iter().map(|&r| masks[r]).collect();
        let list = |values: ArrayRef, nullable: bool| -> Result<ArrayRef> {
            let field = Arc::new(Field::new_list_field(values.data_type().clone(), nullable));
            Ok(Arc::new(ListArray::try_new(field, offsets.clone(), values, None)?))
        };
        Ok(vec![list(Arc::new(t), false)?, list(Arc::new(e), true)?, list(Arc::new(m), false)?])
    }

    fn size(&self) -> usize {
        self.events.capacity() * std::mem::size_of::<(i64, u32, u64)>() + self.group.capacity() * 4 + self.bytes
    }
}

#[derive(Debug)]
struct NextNodeAccumulator {
    spec: Spec,
    rows: Vec<Row>,
    /// The bytes the rows' strings hold.
    bytes: usize,
}

impl NextNodeAccumulator {
    fn push(&mut self, row: Row) {
        self.bytes += row.1.as_ref().map_or(0, |s| s.capacity());
        self.rows.push(row);
    }
}

impl Accumulator for NextNodeAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let ts = cast(&values[2], &DataType::Int64)?;
        let ts = ts.as_primitive::<Int64Type>();
        let event = cast(&values[3], &DataType::Utf8)?;
        let event = event.as_string::<i32>();
        for (row, &mask) in row_masks(values).iter().enumerate() {
            if ts.is_valid(row) {
                let value = event.is_valid(row).then(|| event.value(row).to_string());
                self.push((ts.value(row), value, mask));
            }
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Utf8(self.spec.next(&mut self.rows)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.rows.capacity() * std::mem::size_of::<Row>() + self.bytes
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let offsets = OffsetBuffer::from_lengths([self.rows.len()]);
        let ts: PrimitiveArray<Int64Type> = self.rows.iter().map(|r| r.0).collect();
        let event: StringArray = self.rows.iter().map(|r| r.1.as_deref()).collect();
        let masks: PrimitiveArray<UInt64Type> = self.rows.iter().map(|r| r.2).collect();
        let list = |values: ArrayRef, nullable: bool| -> Result<ScalarValue> {
            let field = Arc::new(Field::new_list_field(values.data_type().clone(), nullable));
            let list = ListArray::try_new(field, offsets.clone(), values, None)?;
            ScalarValue::try_from_array(&list, 0)
        };
        Ok(vec![list(Arc::new(ts), false)?, list(Arc::new(event), true)?, list(Arc::new(masks), false)?])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (ts, event, masks) = (states[0].as_list::<i32>(), states[1].as_list::<i32>(), states[2].as_list::<i32>());
        for row in 0..ts.len() {
            if ts.is_null(row) {
                continue;
            }
            let (t, e, m) = (ts.value(row), event.value(row), masks.value(row));
            let (t, e, m) = (t.as_primitive::<Int64Type>(), e.as_string::<i32>(), m.as_primitive::<UInt64Type>());
            for i in 0..t.len() {
                self.push((t.value(i), e.is_valid(i).then(|| e.value(i).to_string()), m.value(i)));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ClickHouse's documented flow: Home, Gift, Exit, Gift, Home at t = 1..5.
    fn flow() -> Vec<Row> {
        ["Home", "Gift", "Exit", "Gift", "Home"]
            .iter()
            .enumerate()
            .map(|(i, e)| (i as i64 + 1, Some(e.to_string()), 0))
            .collect()
    }

    /// `flow()` with conditions: `base` and then `events`, each a predicate on the value.
    fn next(direction: &str, base: &str, base_condition: &dyn Fn(&str) -> bool, events: &[&str]) -> Option<String> {
        let spec = Spec::parse(direction, base, events.len()).expect("spec");
        let mut rows = flow();
        for r in &mut rows {
            let v = r.1.clone().unwrap_or_default();
            r.2 = u64::from(base_condition(&v));
            for (k, e) in events.iter().enumerate() {
                if v == *e {
                    r.2 |= 1 << (k + 1);
                }
            }
        }
        // Any arrival order gives the same answer.
        rows.reverse();
        spec.next(&mut rows)
    }

    #[test]
    fn clickhouse_cases() {
        let any = |_: &str| true;
        let s = |v: &str| Some(v.to_string());
        assert_eq!(next("forward", "head", &|v| v == "Home", &["Home", "Gift"]), s("Exit"));
        assert_eq!(next("forward", "head", &|v| v == "Gift", &["Home", "Gift"]), None);
        assert_eq!(next("forward", "head", &any, &["Home"]), s("Gift"));
        assert_eq!(next("forward", "head", &any, &["Gift"]), None);
        // The chain is tried at the first match only.
        assert_eq!(next("forward", "first_match", &any, &["Gift", "Home"]), None);
        assert_eq!(next("forward", "first_match", &|v| v == "Exit", &["Gift"]), None);
        assert_eq!(next("forward", "first_match", &|v| v != "Home", &["Gift"]), s("Exit"));
        assert_eq!(next("forward", "last_match", &any, &["Gift"]), s("Home"));
        assert_eq!(next("backward", "tail", &any, &["Home", "Gift"]), s("Exit"));
        assert_eq!(next("backward", "tail", &|v| v == "Gift", &["Home"]), None);
        assert_eq!(next("backward", "last_match", &any, &["Gift"]), s("Exit"));
        assert_eq!(next("backward", "first_match", &any, &["Gift"]), s("Home"));
        // Nothing left beyond the chain.
        assert_eq!(next("forward", "last_match", &any, &["Home"]), None);
        assert_eq!(next("backward", "first_match", &any, &["Home"]), None);
    }

    #[test]
    fn ties_are_ordered_by_value() {
        let spec = Spec::parse("forward", "head", 1).expect("spec");
        let mut a = vec![(1, Some("b".to_string()), 0), (1, Some("a".to_string()), 0b11), (0, None, 0b11)];
        assert_eq!(spec.next(&mut a.clone()), Some("a".into()));
        a.reverse();
        assert_eq!(spec.next(&mut a), Some("a".into()));
    }

    #[test]
    fn any_row_order_gives_the_same_answer() {
        let mut rng = crate::common::test_rng::TestRng(0x5851_f42d_4c95_7f2d);
        let kinds = [("forward", "head"), ("forward", "first_match"), ("backward", "tail"), ("backward", "last_match")];
        for case in 0..2000 {
            let (direction, base) = kinds[case % kinds.len()];
            let spec = Spec::parse(direction, base, 1 + rng.next(3) as usize).expect("spec");
            // Few timestamps and values: many ties.
            let rows: Vec<Row> = (0..rng.next(8))
                .map(|_| {
                    let value = ["a", "b", "c"].get(rng.next(4) as usize).map(|v| v.to_string());
                    (rng.next(3) as i64, value, rng.next(16))
                })
                .collect();
            let want = spec.next(&mut rows.clone());
            let mut reversed = rows.clone();
            reversed.reverse();
            assert_eq!(spec.next(&mut reversed), want, "case {case}: {rows:?}");
            let mut rotated = rows.clone();
            rotated.rotate_left(rows.len() / 2);
            assert_eq!(spec.next(&mut rotated), want, "case {case}: {rows:?}");
        }
    }

    #[test]
    fn bad_arguments() {
        let err = |d: &str, b: &str| Spec::parse(d, b, 1).expect_err("bad").to_string();
        assert!(err("forward", "tail").contains("'tail' cannot go with 'forward'"));
        assert!(err("backward", "head").contains("'head' cannot go with 'backward'"));
        assert!(err("sideways", "head").contains("argument \"direction\" must be 'forward' or 'backward'"));
        assert!(err("forward", "middle").contains("argument \"base\" must be"));
    }
}
