//! The per-unit kernel of the `funnel` report: how far a person (or a session) went through
//! the steps, and the chain of events that took them there.
//!
//! Plain Rust, no Arrow: [`Chains::run`] takes one unit's events, sorted by [`order_key`] (time,
//! then the first step an event meets, then its steps, then its exclusions: a total order on
//! everything the kernel looks at), and returns the [`Chain`].
//!
//! - **ordered** (default): the deepest level `L` such that distinct events fill steps `1..L` in
//!   that order with non-decreasing times, the last within `window` (inclusive) of the first;
//!   optional steps may be skipped (the level is the last step performed). Equal timestamps may
//!   chain, but one event never fills two steps (as `window_funnel`). The chain reported is the
//!   one that first reaches `L` (earliest completion); among those, the latest entry, then the
//!   one performing more optional steps.
//! - **strict**: the same, but the chain's events must be consecutive in the unit's events (any
//!   other event in between breaks it).
//! - **any**: steps in any order: `L` is the most steps filled by distinct events inside one
//!   window starting at any step event; the chain reported is the earliest such window's, its
//!   times sorted, so step `k` of the chain is "the `k`-th step done".
//! - **exclusions**: an event meeting exclusion `(i, j)` at time `x` cancels every chain that has
//!   passed step `i` (performed or skipped) but not step `j`, when the chain's step `i` is
//!   strictly before `x`: so the unit stays at the level it had reached and must redo step `i`
//!   after `x` to go on. An exclusion at the time of step `j` cancels it; at the time of step
//!   `i` it does not.
//!
//! Memory: `O(steps^2)` per partition plus the unit's events; no per-chain lists.

use crate::aggregate::window_funnel::Matching;
use crate::common::duration::within;

/// The most steps a funnel may have: one bit each in a `u32`.
pub const MAX_STEPS: usize = 32;
/// The time of an optional step the chain skipped.
pub const SKIPPED: i64 = i64::MIN;
/// The event of a skipped step.
pub const NO_EVENT: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Ordered,
    Strict,
    Any,
}

/// The constant shape of a funnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainSpec {
    /// 1 to [`MAX_STEPS`].
    pub steps: usize,
    /// Inclusive, in the events' time unit, measured from the step-1 event.
    pub window: i64,
    pub order: Order,
    /// Bit `k - 1` set: step `k` may be skipped (never step 1 or the last step).
    pub optional: u32,
    /// Exclusion `b` (bit `b` of [`Event::excl`]) falls between steps `(i, j)`, `1 <= i < j`.
    pub exclusions: Vec<(usize, usize)>,
}

/// One event of a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub t: i64,
    /// Bit `k - 1`: the event meets step `k`.
    pub steps: u32,
    /// Bit `b`: the event meets exclusion `b`.
    pub excl: u32,
}

/// The order [`Chains::run`] needs its events in.
pub fn order_key(e: &Event) -> (i64, u32, u32, u32) {
    let first = if e.steps == 0 { 0 } else { e.steps.trailing_zeros() + 1 };
    (e.t, first, e.steps, e.excl)
}

/// The chain a unit followed: `times[k - 1]` and `events[k - 1]` (an index into the events
/// given) for step `k <= level`, [`SKIPPED`] / [`NO_EVENT`] for a skipped optional step.
#[derive(Debug, PartialEq, Eq)]
pub struct Chain<'a> {
    pub level: usize,
    pub times: &'a [i64],
    pub events: &'a [u32],
}

#[derive(Debug, Clone, Copy)]
struct Candidate {
    level: usize,
    start: i64,
    performed: u32,
}

/// The kernel's buffers, reused from one unit to the next.
#[derive(Debug, Default)]
pub struct Chains {
    steps: usize,
    /// Per level `1..=steps`: the entry time of the chain kept at that level.
    start: Vec<Option<i64>>,
    performed: Vec<u32>,
    /// Per level, `steps` times and events (row `level`).
    times: Vec<i64>,
    events: Vec<u32>,
    /// The deepest level reached so far, and its chain when first reached.
    level: usize,
    best_times: Vec<i64>,
    best_events: Vec<u32>,
    candidates: Vec<Candidate>,
    candidate_times: Vec<i64>,
    candidate_events: Vec<u32>,
    group: Vec<u32>,
    group_index: Vec<u32>,
}

impl Chains {
    /// The chain of one unit; `events` sorted by [`order_key`].
    pub fn run(&mut self, spec: &ChainSpec, events: &[Event]) -> Chain<'_> {
        debug_assert!(events.is_sorted_by_key(order_key));
        let s = spec.steps;
        self.steps = s;
        self.start.clear();
        self.start.resize(s + 1, None);
        self.performed.resize(s + 1, 0);
        self.times.resize((s + 1) * s, SKIPPED);
        self.events.resize((s + 1) * s, NO_EVENT);
        self.best_times.clear();
        self.best_times.resize(s, SKIPPED);
        self.best_events.clear();
        self.best_events.resize(s, NO_EVENT);
        self.level = 0;
        match spec.order {
            Order::Ordered => self.ordered(spec, events),
            Order::Strict => self.strict(spec, events),
            Order::Any => self.any(spec, events),
        }
        Chain { level: self.level, times: &self.best_times[..self.level], events: &self.best_events[..self.level] }
    }

    fn ordered(&mut self, spec: &ChainSpec, events: &[Event]) {
        let mut i = 0;
        while i < events.len() {
            let t = events[i].t;
            let mut j = i + 1;
            while j < events.len() && events[j].t == t {
                j += 1;
            }
            let excl = events[i..j].iter().fold(0, |acc, e| acc | e.excl);
            self.exclude(spec, excl);
            self.candidates.clear();
            self.candidate_times.clear();
            self.candidate_events.clear();
            let stepping = events[i..j].iter().filter(|e| e.steps != 0).count();
            if stepping == 1 {
                let k = (i..j).find(|&k| events[k].steps != 0).unwrap_or(i);
                if spec.optional == 0 {
                    self.extend_in_place(spec, k, &events[k]);
                } else {
                    self.single(spec, k, &events[k]);
                    self.apply(false);
                }
            } else if stepping > 1 {
                self.group(spec, i, &events[i..j]);
                self.apply(false);
            }
            if self.level == spec.steps {
                return;
            }
            i = j;
        }
    }

    fn strict(&mut self, spec: &ChainSpec, events: &[Event]) {
        for (k, e) in events.iter().enumerate() {
            self.exclude(spec, e.excl);
            self.candidates.clear();
            self.candidate_times.clear();
            self.candidate_events.clear();
            if e.steps != 0 {
                self.single(spec, k, e);
            }
            self.apply(true);
            if self.level == spec.steps {
                return;
            }
        }
    }

    /// Cancels the chains between the steps of the exclusions in `excl`.
    fn exclude(&mut self, spec: &ChainSpec, mut excl: u32) {
        while excl != 0 {
            let b = excl.trailing_zeros() as usize;
            excl &= excl - 1;
            if let Some(&(from, to)) = spec.exclusions.get(b) {
                for level in from..to.min(self.steps + 1) {
                    self.start[level] = None;
                }
            }
        }
    }

    /// The common case, one event at its timestamp and no optional steps: each step it meets
    /// extends the chain one level below, highest step first so that each reads the state
    /// before this event (the same rule as [`Chains::apply`], without candidates).
    fn extend_in_place(&mut self, spec: &ChainSpec, index: usize, e: &Event) {
        let s = self.steps;
        let mut bits = e.steps & mask(s);
        while bits != 0 {
            let from = 31 - bits.leading_zeros() as usize;
            bits &= !(1 << from);
            let Some(start) = self.source(spec, from, e.t) else { continue };
            let level = from + 1;
            if self.start[level].is_some_and(|old| old >= start) {
                continue;
            }
            self.start[level] = Some(start);
            self.performed[level] = level as u32;
            if from > 0 {
                self.times.copy_within(from * s..from * s + from, level * s);
                self.events.copy_within(from * s..from * s + from, level * s);
            }
            self.times[level * s + from] = e.t;
            self.events[level * s + from] = index as u32;
        }
        self.snapshot();
    }

    /// Records the deepest level's chain when a level is reached for the first time.
    fn snapshot(&mut self) {
        let s = self.steps;
        if let Some(deepest) = (self.level + 1..=s).rev().find(|&l| self.start[l].is_some()) {
            self.level = deepest;
            self.best_times.copy_from_slice(&self.times[deepest * s..(deepest + 1) * s]);
            self.best_events.copy_from_slice(&self.events[deepest * s..(deepest + 1) * s]);
        }
    }

    /// The entry time of a chain that may take its next step at `t`.
    fn source(&self, spec: &ChainSpec, from: usize, t: i64) -> Option<i64> {
        if from == 0 {
            return Some(t);
        }
        self.start[from].filter(|&start| t - start <= spec.window)
    }

    /// Starts a candidate continuing the chain at level `from`; returns its index.
    fn begin(&mut self, from: usize, start: i64) -> usize {
        let s = self.steps;
        let c = self.candidates.len();
        if from == 0 {
            self.candidate_times.extend(std::iter::repeat_n(SKIPPED, s));
            self.candidate_events.extend(std::iter::repeat_n(NO_EVENT, s));
            self.candidates.push(Candidate { level: 0, start, performed: 0 });
        } else {
            self.candidate_times.extend_from_slice(&self.times[from * s..(from + 1) * s]);
            self.candidate_events.extend_from_slice(&self.events[from * s..(from + 1) * s]);
            self.candidates.push(Candidate { level: from, start, performed: self.performed[from] });
        }
        c
    }

    /// Sets step `step` (1-based) of candidate `c`; `t == SKIPPED` skips it.
    fn set(&mut self, c: usize, step: usize, t: i64, event: u32) {
        let at = c * self.steps + step - 1;
        self.candidate_times[at] = t;
        self.candidate_events[at] = event;
        if t != SKIPPED {
            self.candidates[c].performed += 1;
        }
        self.candidates[c].level = step;
    }

    /// One event at its timestamp (or in strict order): it fills one step of each chain.
    fn single(&mut self, spec: &ChainSpec, index: usize, e: &Event) {
        for from in 0..spec.steps {
            let Some(start) = self.source(spec, from, e.t) else { continue };
            for step in from + 1..=spec.steps {
                if e.steps & (1 << (step - 1)) != 0 {
                    let c = self.begin(from, start);
                    for skipped in from + 1..step {
                        self.set(c, skipped, SKIPPED, NO_EVENT);
                    }
                    self.set(c, step, e.t, index as u32);
                }
                if from == 0 || spec.optional & (1 << (step - 1)) == 0 {
                    break;
                }
            }
        }
    }

    /// Several step events at one timestamp: each chain takes as many steps as distinct events
    /// can fill (bipartite matching), performing optional steps when it can.
    fn group(&mut self, spec: &ChainSpec, first: usize, events: &[Event]) {
        self.collect_step_events(spec, events, first);
        let group = std::mem::take(&mut self.group);
        let t = events[0].t;
        for from in 0..spec.steps {
            let Some(start) = self.source(spec, from, t) else { continue };
            let mut matching = Matching::new(&group);
            // The steps this chain performs at `t`, in order.
            let mut done: Vec<usize> = vec![];
            for step in from + 1..=spec.steps {
                let optional = spec.optional & (1 << (step - 1)) != 0;
                let mut ok = matching.add(step - 1);
                if !ok && !optional && done.iter().any(|&d| spec.optional & (1 << (d - 1)) != 0) {
                    // An optional step took the event this one needs: skip the optional ones.
                    let mut retry = Matching::new(&group);
                    let kept: Vec<usize> =
                        done.iter().copied().filter(|&d| spec.optional & (1 << (d - 1)) == 0).collect();
                    if kept.iter().all(|&d| retry.add(d - 1)) && retry.add(step - 1) {
                        matching = retry;
                        done = kept;
                        ok = true;
                    }
                }
                if ok {
                    done.push(step);
                    let c = self.begin(from, start);
                    for between in from + 1..step {
                        self.set(c, between, SKIPPED, NO_EVENT);
                    }
                    for (e, owner) in matching.owner.iter().enumerate() {
                        if let Some(o) = owner {
                            self.set(c, o + 1, t, self.group_index[e]);
                        }
                    }
                    self.candidates[c].level = step;
                } else if !optional {
                    break;
                }
            }
        }
        self.group = group;
    }

    /// Keeps each candidate that beats the chain at its level: a later entry, then more steps
    /// performed. In strict order every chain not continued by this event ends.
    fn apply(&mut self, strict: bool) {
        let s = self.steps;
        if strict {
            self.start.fill(None);
        }
        for (c, cand) in self.candidates.iter().enumerate() {
            let l = cand.level;
            let better = match self.start[l] {
                None => true,
                Some(start) => cand.start > start || (cand.start == start && cand.performed > self.performed[l]),
            };
            if better {
                self.start[l] = Some(cand.start);
                self.performed[l] = cand.performed;
                self.times[l * s..(l + 1) * s].copy_from_slice(&self.candidate_times[c * s..(c + 1) * s]);
                self.events[l * s..(l + 1) * s].copy_from_slice(&self.candidate_events[c * s..(c + 1) * s]);
            }
        }
        self.snapshot();
    }

    /// Any order: a window from each step event; the most steps distinct events in it fill.
    fn any(&mut self, spec: &ChainSpec, events: &[Event]) {
        let s = spec.steps;
        let mut count = [0u32; MAX_STEPS];
        let mut multi = 0usize;
        let mut end = 0;
        let add = |count: &mut [u32; MAX_STEPS], multi: &mut usize, m: u32, sign: i32| {
            if m.count_ones() > 1 {
                *multi = (*multi as i64 + sign as i64) as usize;
            }
            let mut bits = m;
            while bits != 0 {
                let b = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                count[b] = (count[b] as i64 + sign as i64) as u32;
            }
        };
        for i in 0..events.len() {
            end = end.max(i);
            if events[i].steps != 0 {
                let t = events[i].t;
                while end < events.len() && within(events[end].t, t, spec.window) {
                    add(&mut count, &mut multi, events[end].steps, 1);
                    end += 1;
                }
                let level = if multi == 0 {
                    count[..s].iter().filter(|&&c| c > 0).count()
                } else {
                    self.any_matching(spec, &events[i..end], i, false)
                };
                if level > self.level {
                    if multi == 0 {
                        self.any_first_times(spec, &events[i..end], i, level);
                    } else {
                        self.any_matching(spec, &events[i..end], i, true);
                    }
                    if level == s {
                        return;
                    }
                }
            }
            if end > i {
                add(&mut count, &mut multi, events[i].steps, -1);
            }
        }
    }

    /// Fills `group` / `group_index` with the step events of `events` (`first` is the index of
    /// `events[0]`) for a bipartite matching: more copies of one set of steps than there are
    /// steps can never help, so at most `steps` of each are kept.
    fn collect_step_events(&mut self, spec: &ChainSpec, events: &[Event], first: usize) {
        self.group.clear();
        self.group_index.clear();
        let mut copies: Vec<(u32, usize)> = vec![];
        for (k, e) in events.iter().enumerate() {
            let m = e.steps & mask(spec.steps);
            if m == 0 {
                continue;
            }
            let n = match copies.iter_mut().find(|c| c.0 == m) {
                Some(c) => {
                    c.1 += 1;
                    c.1
                }
                None => {
                    copies.push((m, 1));
                    1
                }
            };
            if n <= spec.steps {
                self.group.push(m);
                self.group_index.push((first + k) as u32);
            }
        }
    }

    /// Records the chain of a window whose events each meet one step: each step's first event.
    fn any_first_times(&mut self, spec: &ChainSpec, window: &[Event], first: usize, level: usize) {
        let mut seen = 0u32;
        let mut chain: Vec<(i64, u32)> = Vec::with_capacity(level);
        for (k, e) in window.iter().enumerate() {
            let new = e.steps & !seen & mask(spec.steps);
            if new != 0 {
                seen |= new;
                chain.push((e.t, (first + k) as u32));
            }
        }
        self.record(&chain);
    }

    /// The maximum matching of steps to a window's events; records its chain when `record`.
    fn any_matching(&mut self, spec: &ChainSpec, window: &[Event], first: usize, record: bool) -> usize {
        self.collect_step_events(spec, window, first);
        let group = std::mem::take(&mut self.group);
        let mut matching = Matching::new(&group);
        let level = (0..spec.steps).filter(|&step| matching.add(step)).count();
        if record {
            let mut chain: Vec<(i64, u32)> = matching
                .owner
                .iter()
                .enumerate()
                .filter(|(_, o)| o.is_some())
                .map(|(e, _)| (window[self.group_index[e] as usize - first].t, self.group_index[e]))
                .collect();
            chain.sort_unstable();
            self.record(&chain);
        }
        self.group = group;
        level
    }

    fn record(&mut self, chain: &[(i64, u32)]) {
        self.level = chain.len();
        for (k, &(t, e)) in chain.iter().enumerate() {
            self.best_times[k] = t;
            self.best_events[k] = e;
        }
    }
}

fn mask(steps: usize) -> u32 {
    if steps >= 32 { u32::MAX } else { (1u32 << steps) - 1 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::window_funnel::{Modes, funnel_level};
    use crate::common::test_rng::TestRng;

    fn spec(steps: usize, window: i64) -> ChainSpec {
        ChainSpec { steps, window, order: Order::Ordered, optional: 0, exclusions: vec![] }
    }

    fn ev(t: i64, steps: u32) -> Event {
        Event { t, steps, excl: 0 }
    }

    fn run(spec: &ChainSpec, events: &[Event]) -> (usize, Vec<i64>) {
        let mut events = events.to_vec();
        events.sort_by_key(order_key);
        let mut chains = Chains::default();
        let c = chains.run(spec, &events);
        (c.level, c.times.to_vec())
    }

    #[test]
    fn ordered_basics() {
        let s = spec(3, 10);
        assert_eq!(run(&s, &[ev(0, 1), ev(5, 2), ev(9, 4)]), (3, vec![0, 5, 9]));
        // Window inclusive from the entry.
        assert_eq!(run(&s, &[ev(0, 1), ev(5, 2), ev(10, 4)]), (3, vec![0, 5, 10]));
        assert_eq!(run(&s, &[ev(0, 1), ev(5, 2), ev(11, 4)]), (2, vec![0, 5]));
        // Re-entry: the later step 1 completes the funnel.
        assert_eq!(run(&s, &[ev(0, 1), ev(5, 2), ev(8, 1), ev(12, 2), ev(15, 4)]), (3, vec![8, 12, 15]));
        // One event never fills two steps; two events at one time may chain.
        assert_eq!(run(&s, &[ev(0, 1 | 2)]), (1, vec![0]));
        assert_eq!(run(&s, &[ev(0, 1 | 2), ev(0, 1)]), (2, vec![0, 0]));
        assert_eq!(run(&s, &[]), (0, vec![]));
        assert_eq!(run(&s, &[ev(3, 2), ev(4, 4)]), (0, vec![]));
    }

    #[test]
    fn earliest_completion_then_latest_entry() {
        let s = spec(2, 100);
        // Both entries reach step 2 at 10: the later entry is reported (shortest time).
        assert_eq!(run(&s, &[ev(0, 1), ev(4, 1), ev(10, 2), ev(20, 2)]), (2, vec![4, 10]));
    }

    #[test]
    fn optional_steps() {
        let s = ChainSpec { optional: 0b010, ..spec(3, 100) };
        assert_eq!(run(&s, &[ev(0, 1), ev(5, 4)]), (3, vec![0, SKIPPED, 5]));
        assert_eq!(run(&s, &[ev(0, 1), ev(3, 2), ev(5, 4)]), (3, vec![0, 3, 5]));
        assert_eq!(run(&s, &[ev(0, 1), ev(3, 2)]), (2, vec![0, 3]));
        // One event meeting the optional step and the next fills the next one.
        assert_eq!(run(&s, &[ev(0, 1), ev(5, 2 | 4)]), (3, vec![0, SKIPPED, 5]));
        assert_eq!(run(&s, &[ev(0, 1), ev(5, 2 | 4), ev(5, 2)]), (3, vec![0, 5, 5]));
    }

    #[test]
    fn exclusions_stop_the_chain_until_the_step_is_redone() {
        // view, cart, (remove between 2 and 3), pay.
        let s = ChainSpec { exclusions: vec![(2, 3)], ..spec(3, 100) };
        let x = |t| Event { t, steps: 0, excl: 1 };
        assert_eq!(run(&s, &[ev(0, 1), ev(1, 2), x(2), ev(3, 4)]), (2, vec![0, 1]));
        assert_eq!(run(&s, &[ev(0, 1), ev(1, 2), x(2), ev(3, 2), ev(4, 4)]), (3, vec![0, 3, 4]));
        // Before step 2, or at step 2's time: no effect; at step 3's time: it cancels.
        assert_eq!(run(&s, &[ev(0, 1), x(1), ev(1, 2), ev(3, 4)]), (3, vec![0, 1, 3]));
        assert_eq!(run(&s, &[ev(0, 1), ev(1, 2), x(3), ev(3, 4)]), (2, vec![0, 1]));
    }

    #[test]
    fn strict_needs_consecutive_events() {
        let s = ChainSpec { order: Order::Strict, ..spec(3, 100) };
        assert_eq!(run(&s, &[ev(0, 1), ev(1, 2), ev(2, 0), ev(3, 4)]), (2, vec![0, 1]));
        assert_eq!(run(&s, &[ev(0, 1), ev(1, 2), ev(2, 0), ev(3, 1), ev(4, 2), ev(5, 4)]), (3, vec![3, 4, 5]));
        let o = ChainSpec { optional: 0b010, ..s.clone() };
        assert_eq!(run(&o, &[ev(0, 1), ev(3, 4)]), (3, vec![0, SKIPPED, 3]));
    }

    #[test]
    fn any_order() {
        let s = ChainSpec { order: Order::Any, ..spec(3, 10) };
        assert_eq!(run(&s, &[ev(0, 4), ev(2, 1), ev(5, 2)]), (3, vec![0, 2, 5]));
        assert_eq!(run(&s, &[ev(0, 4), ev(2, 1), ev(11, 2)]), (2, vec![0, 2]));
        assert_eq!(run(&s, &[ev(0, 4), ev(2, 4), ev(3, 4)]), (1, vec![0]));
        // One event meeting two steps fills one.
        assert_eq!(run(&s, &[ev(0, 1 | 2), ev(1, 4)]), (2, vec![0, 1]));
        assert_eq!(run(&s, &[ev(0, 1 | 2), ev(1, 1), ev(2, 4)]), (3, vec![0, 1, 2]));
    }

    /// Brute force over every chain: returns (deepest level, earliest completion time there).
    fn brute(spec: &ChainSpec, events: &[Event]) -> (usize, Option<i64>) {
        let mut best = (0usize, None::<i64>);
        let mut used = vec![false; events.len()];
        // chain: (step, event index) performed so far; skipped steps are absent.
        fn go(
            spec: &ChainSpec,
            events: &[Event],
            used: &mut Vec<bool>,
            chain: &mut Vec<(usize, usize)>,
            next: usize,
            best: &mut (usize, Option<i64>),
        ) {
            if let Some(&(step, e)) = chain.last() {
                let t = events[e].t;
                if step > best.0 || (step == best.0 && best.1.is_none_or(|b| t < b)) {
                    *best = (step, Some(t));
                }
            }
            if next > spec.steps {
                return;
            }
            for e in 0..events.len() {
                if used[e] || events[e].steps & (1 << (next - 1)) == 0 {
                    continue;
                }
                if let Some(&(_, last)) = chain.last() {
                    let first = events[chain[0].1].t;
                    let ok_time = match spec.order {
                        Order::Strict => e == last + 1,
                        _ => events[e].t >= events[last].t,
                    };
                    if !ok_time || !within(events[e].t, first, spec.window) {
                        continue;
                    }
                }
                // An exclusion cancels the chain when it falls while the chain is between
                // steps i and j (its last step before the exclusion is in i..j).
                let excluded = spec.exclusions.iter().enumerate().any(|(b, &(i, j))| {
                    events.iter().any(|x| {
                        let at = chain.iter().filter(|c| events[c.1].t < x.t).map(|c| c.0).max().unwrap_or(0);
                        x.excl & (1 << b) != 0 && x.t <= events[e].t && (i..j).contains(&at)
                    })
                });
                if excluded {
                    continue;
                }
                used[e] = true;
                chain.push((next, e));
                go(spec, events, used, chain, next + 1, best);
                chain.pop();
                used[e] = false;
            }
            if !chain.is_empty() && next < spec.steps && spec.optional & (1 << (next - 1)) != 0 {
                go(spec, events, used, chain, next + 1, best);
            }
        }
        go(spec, events, &mut used, &mut vec![], 1, &mut best);
        best
    }

    fn random_case(rng: &mut TestRng, steps: usize, with_excl: bool) -> Vec<Event> {
        let n = rng.next(8) as usize;
        let mut events: Vec<Event> = (0..n)
            .map(|_| {
                let mut m = 1u32 << rng.next(steps as u64);
                if rng.next(5) == 0 {
                    m |= 1 << rng.next(steps as u64);
                }
                if rng.next(6) == 0 {
                    m = 0;
                }
                let excl = if with_excl && rng.next(4) == 0 { 1 } else { 0 };
                Event { t: rng.next(6) as i64, steps: m, excl }
            })
            .collect();
        events.sort_by_key(order_key);
        events
    }

    /// The chain reported is a real chain of the definition, reaching the deepest level at
    /// the earliest possible time, for every order, with optional steps and exclusions.
    #[test]
    fn differential_against_brute_force() {
        let mut rng = TestRng(0x9e37_79b9_7f4a_7c15);
        let mut chains = Chains::default();
        for case in 0..4000 {
            let steps = 2 + rng.next(3) as usize;
            let order = if case % 3 == 0 { Order::Strict } else { Order::Ordered };
            let optional = if case % 4 == 1 && steps > 2 { 1 << (1 + rng.next(steps as u64 - 2)) } else { 0 };
            let exclusions = if case % 5 == 2 && order == Order::Ordered {
                let i = 1 + rng.next(steps as u64 - 1) as usize;
                vec![(i, i + 1)]
            } else {
                vec![]
            };
            let s = ChainSpec { steps, window: rng.next(5) as i64, order, optional, exclusions };
            let events = random_case(&mut rng, steps, !s.exclusions.is_empty());
            let (level, completion) = brute(&s, &events);
            let c = chains.run(&s, &events);
            assert_eq!(c.level, level, "case {case}: {s:?} {events:?}");
            if level > 0 {
                assert_eq!(c.times.last().copied(), completion, "case {case}: {s:?} {events:?}");
                // The chain is real: distinct events meeting their steps at their times.
                let mut seen = vec![];
                for (k, (&t, &e)) in c.times.iter().zip(c.events).enumerate() {
                    if t == SKIPPED {
                        assert!(s.optional & (1 << k) != 0);
                        continue;
                    }
                    let ev = events[e as usize];
                    assert_eq!(ev.t, t);
                    assert!(ev.steps & (1 << k) != 0);
                    assert!(!seen.contains(&e));
                    seen.push(e);
                }
            }
            // Without options the level is window_funnel's.
            if s.order == Order::Ordered && s.optional == 0 && s.exclusions.is_empty() {
                let mut pairs: Vec<(i64, u32)> = events.iter().map(|e| (e.t, e.steps)).collect();
                assert_eq!(c.level, funnel_level(&mut pairs, steps, s.window, Modes::default()));
            }
        }
    }

    #[test]
    fn any_order_against_brute_force() {
        let mut rng = TestRng(0x1234_5678_9abc_def1);
        let mut chains = Chains::default();
        for case in 0..3000 {
            let steps = 2 + rng.next(3) as usize;
            let s = ChainSpec { steps, window: rng.next(5) as i64, order: Order::Any, optional: 0, exclusions: vec![] };
            let events = random_case(&mut rng, steps, false);
            // Brute force: every window from a step event, every assignment of steps to events.
            let mut want = 0;
            for (i, e) in events.iter().enumerate() {
                if e.steps == 0 {
                    continue;
                }
                let inside: Vec<u32> = events[i..].iter().filter(|x| x.t - e.t <= s.window).map(|x| x.steps).collect();
                for subset in 0u32..(1 << steps) {
                    // Can the steps in `subset` be filled by distinct events? (Hall, by brute force.)
                    let fits = (1..=subset)
                        .filter(|&sub| sub & subset == sub)
                        .all(|sub| inside.iter().filter(|&&m| m & sub != 0).count() >= sub.count_ones() as usize);
                    if fits {
                        want = want.max(subset.count_ones() as usize);
                    }
                }
            }
            let c = chains.run(&s, &events);
            assert_eq!(c.level, want, "case {case}: {s:?} {events:?}");
            assert!(c.times.is_sorted());
            if let (Some(first), Some(last)) = (c.times.first(), c.times.last()) {
                assert!(last - first <= s.window);
            }
        }
    }

    #[test]
    fn order_does_not_depend_on_arrival() {
        let s = ChainSpec { optional: 0b0100, exclusions: vec![(1, 2)], ..spec(4, 3) };
        let mut rng = TestRng(77);
        let mut chains = Chains::default();
        for _ in 0..500 {
            let mut events = random_case(&mut rng, 4, true);
            let (level, times) = {
                let c = chains.run(&s, &events);
                (c.level, c.times.to_vec())
            };
            events.reverse();
            events.sort_by_key(order_key);
            let c = chains.run(&s, &events);
            assert_eq!((c.level, c.times.to_vec()), (level, times));
        }
    }
}
