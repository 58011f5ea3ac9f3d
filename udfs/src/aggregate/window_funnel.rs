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

use crate::aggregate::events::{
    self, Event, EventGroups, EventsAccumulator, Kernel, MAX_CONDITIONS, coerced_conditions, coerced_ts, constant,
    constant_text, is_text,
};
use crate::common::duration::within;
use crate::docs::{FunctionDoc, Kind};
use crate::error::ArgumentError;
use datafusion::arrow::datatypes::{DataType, FieldRef, IntervalUnit};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, GroupsAccumulator, Signature, Volatility};

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
pub const MAX_STEPS: usize = MAX_CONDITIONS;

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
        let Some(ts) = coerced_ts(&arg_types[1]) else {
            return bad("ts", format!("must be a timestamp, a date or an integer, not {}", arg_types[1]));
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
        let mut out = vec![window, ts];
        out.extend(coerced_conditions(NAME, &arg_types[2..2 + conditions])?);
        out.extend(arg_types[2 + conditions..].iter().cloned());
        Ok(out)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int32)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(events::state_fields(&args))
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(EventsAccumulator::new(Spec::from_args(&args)?)))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(EventGroups::new(Spec::from_args(&args)?)))
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
        let window = window_value(&constant(NAME, args, 0, "window")?)?;
        let modes = args.expr_fields.iter().rev().take_while(|f| is_text(f.data_type())).count();
        let steps = args.exprs.len() - 2 - modes;
        let names: Vec<String> =
            (2 + steps..args.exprs.len()).map(|i| constant_text(NAME, args, i, "mode")).collect::<Result<_>>()?;
        Ok(Spec { steps, window, modes: Modes::parse(&names)? })
    }
}

impl Kernel for Spec {
    fn conditions(&self) -> usize {
        self.steps
    }

    fn keeps_unmatched(&self) -> bool {
        self.modes.strict_order
    }

    fn finish(&self, events: &mut [Event]) -> i64 {
        funnel_level(events, self.steps, self.window, self.modes) as i64
    }

    fn output(&self) -> DataType {
        DataType::Int32
    }
}

/// The window in `ts` units (microseconds for timestamps).
fn window_value(v: &ScalarValue) -> Result<i64> {
    crate::common::duration::constant_micros(NAME, "window", v)
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
