//! `sequence_match` and `sequence_count`: whether, and how often, a group's events follow a
//! pattern.
//!
//! # Contract
//!
//! ```sql
//! sequence_match(pattern, ts, cond1, ..., condN)  -- aggregate, returns boolean
//! sequence_count(pattern, ts, cond1, ..., condN)  -- aggregate, returns bigint
//! ```
//!
//! ClickHouse's `sequenceMatch(pattern)(ts, cond1, ...)` and `sequenceCount` as one call, with
//! ClickHouse's pattern syntax; the events' order is total and the matching exact, so the answer
//! never depends on row order, batch size or partitioning.
//!
//! - `ts` is a timestamp, a date or an integer; `cond1 .. condN` are booleans, 1 to
//!   [`MAX_CONDITIONS`](crate::aggregate::events::MAX_CONDITIONS) of them (NULL is false). The **events** of a group are its rows with a
//!   non-null `ts` that meet at least one condition; the other rows are not part of the
//!   sequence (as in ClickHouse: to forbid "anything else" between two steps, give it a
//!   condition). The events are ordered by `ts`, then by the first condition they meet, then by
//!   the set of conditions they meet (ClickHouse leaves events of one timestamp in arrival
//!   order).
//! - `pattern` is a constant text of tokens (spaces between them are ignored):
//!   - `(?N)`: one event that meets condition `N` (1-based);
//!   - `.`: any one event;
//!   - `.*`: any number of events, none included;
//!   - `(?t op S)` with `op` one of `<`, `<=`, `>`, `>=`, `==` (also `=`): a time condition
//!     between the event steps around it: `ts(next) - ts(previous) op S`, where `previous` is
//!     the event the last `(?N)` or `.` before it matched, and `S` is in seconds for a timestamp
//!     or date `ts` and in `ts`'s own units for an integer `ts`. Any number of events may lie
//!     between the two. Several time conditions in a row must all hold (ClickHouse rejects
//!     that); one must stand between two event steps (`(?1)(?t>5)` is an error).
//! - Event steps (`(?N)`, `.`) follow each other immediately (consecutive events) unless a
//!   `.*` or a time condition stands between them. A match may start at any event.
//! - `sequence_match`: whether the events hold a match. `sequence_count`: how many matches
//!   that do not overlap the events hold: the most matches such that each begins after the
//!   previous one ended (found by taking, again and again, the match that ends first).
//!
//! Known ClickHouse differences: events of one timestamp in arrival order; `.*` before a time
//! condition moves the anchor of the time condition to the event `.*` stands at, so
//! `(?1).*(?t>1)(?2)` does not match `1@0, x@1, 2@2` there (it does here: the anchor is the
//! `(?1)` event).
//!
//! Cost: one pass over the sorted events per match, `O(events x steps x log events)`; no
//! backtracking, so no iteration limit (ClickHouse stops at a million steps with TOO_SLOW).

use crate::aggregate::events::{
    self, Event, EventGroups, EventsAccumulator, Kernel, coerced_conditions, coerced_ts, constant_text, is_text,
};
use crate::docs::{FunctionDoc, Kind};
use crate::error::ArgumentError;
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, GroupsAccumulator, Signature, Volatility};
use std::sync::Arc;

pub const MATCH: &str = "sequence_match";
pub const COUNT: &str = "sequence_count";

const DESCRIPTION: &str = "events are the rows meeting at least one condition, ordered by (ts, first condition met, conditions met); the pattern's `(?N)` is one event meeting condN, `.` any one event, `.*` any number, `(?t op S)` (`<`, `<=`, `>`, `>=`, `==`) a time condition in seconds (integer ts: its units) from the previous event step to the next, with any events between; steps are consecutive events otherwise; ClickHouse's syntax";

/// `sequence_match`'s reference ([`crate::docs`]).
pub const MATCH_DOC: FunctionDoc = FunctionDoc {
    name: MATCH,
    kind: Kind::Aggregate,
    usage: "sequence_match(pattern, ts, cond1, ..., condN)",
    result: "boolean",
    positional: r##"pattern text, ts timestamp with time zone, VARIADIC conditions "any""##,
    options: &[],
    summary: "Whether a group's events hold a match of the pattern (ClickHouse's sequenceMatch).",
    description: DESCRIPTION,
    contract: "`udfs/src/aggregate/sequence.rs`",
};

/// `sequence_count`'s reference.
pub const COUNT_DOC: FunctionDoc = FunctionDoc {
    name: COUNT,
    kind: Kind::Aggregate,
    usage: "sequence_count(pattern, ts, cond1, ..., condN)",
    result: "bigint",
    positional: r##"pattern text, ts timestamp with time zone, VARIADIC conditions "any""##,
    options: &[],
    summary: "How many non-overlapping matches of the pattern a group's events hold (ClickHouse's sequenceCount).",
    description: "the most matches of the pattern that do not overlap (each begins after the previous one ended); the pattern as for `sequence_match`",
    contract: "`udfs/src/aggregate/sequence.rs`",
};

/// One event step of a pattern and how it follows the previous one.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Step {
    /// The condition bit the event must have; 0 for `.` (any event).
    condition: u32,
    /// Whether other events may lie between the previous step's event and this one.
    gap: bool,
    /// `ts(this) - ts(previous step's event)` must lie in `lo ..= hi` (`ts` units).
    lo: i64,
    hi: i64,
}

impl Step {
    fn matches(&self, mask: u32) -> bool {
        self.condition == 0 || mask & self.condition != 0
    }

    fn timed(&self) -> bool {
        self.lo != i64::MIN || self.hi != i64::MAX
    }
}

/// A parsed pattern: its event steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    steps: Vec<Step>,
}

impl Pattern {
    /// Parses `text` for `conditions` conditions; a time condition's seconds are multiplied by
    /// `per_second` (1 000 000 for a timestamp `ts`, 1 for an integer one).
    pub fn parse(function: &str, text: &str, conditions: usize, per_second: i64) -> Result<Pattern> {
        let bad = |at: usize, msg: String| {
            Err(ArgumentError::new(function, "pattern", format!("{msg} (at character {})", at + 1)).into_datafusion())
        };
        let bytes = text.as_bytes();
        let mut steps: Vec<Step> = vec![];
        // What stands between the last event step and the next one.
        let (mut gap, mut lo, mut hi, mut timed_at) = (false, i64::MIN, i64::MAX, None);
        let mut i = 0;
        while i < bytes.len() {
            let at = i;
            match bytes[i] {
                b' ' | b'\t' | b'\n' | b'\r' => i += 1,
                b'.' if bytes.get(i + 1) == Some(&b'*') => {
                    gap = true;
                    i += 2;
                }
                b'.' => {
                    steps.push(Step { condition: 0, gap, lo, hi });
                    (gap, lo, hi, timed_at) = (false, i64::MIN, i64::MAX, None);
                    i += 1;
                }
                b'(' if bytes.get(i + 1) == Some(&b'?') => {
                    let Some(close) = text[i..].find(')').map(|c| i + c) else {
                        return bad(at, "has an unclosed '(?'".into());
                    };
                    let inner = text[i + 2..close].trim();
                    if let Some(condition) = inner.strip_prefix('t') {
                        if steps.is_empty() {
                            return bad(at, format!("has the time condition (?{inner}) before any event step"));
                        }
                        let condition = condition.trim();
                        let (op, number) = ["<=", ">=", "==", "<", ">", "="]
                            .iter()
                            .find_map(|op| condition.strip_prefix(op).map(|rest| (*op, rest.trim())))
                            .map_or((None, condition), |(op, n)| (Some(op), n));
                        let Some(op) = op else {
                            return bad(at, format!("has (?{inner}) without one of <, <=, >, >=, == after t"));
                        };
                        let Some(v) = number.parse::<i64>().ok().and_then(|s| s.checked_mul(per_second)) else {
                            return bad(
                                at,
                                format!("has (?{inner}): a time condition needs a whole number of seconds"),
                            );
                        };
                        match op {
                            ">" => lo = lo.max(v.saturating_add(1)),
                            ">=" => lo = lo.max(v),
                            "<" => hi = hi.min(v.saturating_sub(1)),
                            "<=" => hi = hi.min(v),
                            _ => {
                                lo = lo.max(v);
                                hi = hi.min(v);
                            }
                        }
                        gap = true;
                        timed_at = Some(at);
                    } else {
                        let n = match inner.parse::<usize>() {
                            Ok(n) if (1..=conditions).contains(&n) => n,
                            Ok(n) => {
                                return bad(at, format!("has (?{n}), but there are {conditions} conditions"));
                            }
                            Err(_) => {
                                return bad(at, format!("has (?{inner}), which is neither (?N) nor (?t op seconds)"));
                            }
                        };
                        steps.push(Step { condition: 1 << (n - 1), gap, lo, hi });
                        (gap, lo, hi, timed_at) = (false, i64::MIN, i64::MAX, None);
                    }
                    i = close + 1;
                }
                _ => {
                    let c = text[i..].chars().next().unwrap_or(' ');
                    return bad(at, format!("has '{c}', which is not (?N), ., .* or (?t op seconds)"));
                }
            }
        }
        if let Some(at) = timed_at {
            return bad(
                at,
                "has a time condition with no event step after it: one must stand between two event steps".into(),
            );
        }
        if steps.is_empty() {
            return bad(0, "matches no event: a pattern needs (?N) or .".into());
        }
        Ok(Pattern { steps })
    }

    /// The end of the match that ends first among those starting at or after event `from` of
    /// `events` (sorted), if any.
    fn first_end(&self, events: &[Event], from: usize) -> Option<usize> {
        // One scratch per thread: a group's answer allocates nothing once the buffers have grown.
        thread_local! {
            static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
        }
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let end = self.first_end_in(events, from, &mut scratch);
            // A huge group's buffers are not kept for the thread's life.
            for t in scratch.times.iter_mut().filter(|t| t.capacity() > 1 << 16) {
                *t = Vec::new();
            }
            end
        })
    }

    fn first_end_in(&self, events: &[Event], from: usize, scratch: &mut Scratch) -> Option<usize> {
        let m = self.steps.len();
        let Scratch { before, now, times } = scratch;
        // before[k]: step k was matched by the previous event, ending a partial match there.
        before.clear();
        before.resize(m, false);
        now.clear();
        now.resize(m, false);
        // times[k]: the times of the events (so far) at which step k was matched, ascending.
        if times.len() < m {
            times.resize_with(m, Vec::new);
        }
        for t in times.iter_mut() {
            t.clear();
        }
        for (j, &(t, mask)) in events.iter().enumerate().skip(from) {
            for (k, step) in self.steps.iter().enumerate() {
                now[k] = step.matches(mask)
                    && (k == 0
                        || if step.gap {
                            let seen = &times[k - 1];
                            if step.timed() {
                                // Some earlier time in [t - hi, t - lo].
                                let first = seen.partition_point(|&s| s < t.saturating_sub(step.hi));
                                first < seen.len() && seen[first] <= t.saturating_sub(step.lo)
                            } else {
                                !seen.is_empty()
                            }
                        } else {
                            before[k - 1]
                        });
            }
            if now[m - 1] {
                return Some(j);
            }
            for k in 0..m {
                if now[k] && self.steps.get(k + 1).is_some_and(|s| s.gap) {
                    times[k].push(t);
                }
            }
            std::mem::swap(before, now);
        }
        None
    }

    /// Whether `events` hold a match; sorts them.
    pub fn matches(&self, events: &mut [Event]) -> bool {
        sort(events);
        self.first_end(events, 0).is_some()
    }

    /// How many non-overlapping matches `events` hold; sorts them.
    pub fn count(&self, events: &mut [Event]) -> u64 {
        sort(events);
        let (mut n, mut from) = (0, 0);
        while let Some(end) = self.first_end(events, from) {
            n += 1;
            from = end + 1;
        }
        n
    }
}

/// The matcher's buffers, kept between groups.
#[derive(Debug, Default)]
struct Scratch {
    before: Vec<bool>,
    now: Vec<bool>,
    times: Vec<Vec<i64>>,
}

/// The events' total order: ts, then the first condition met, then the conditions met.
fn sort(events: &mut [Event]) {
    let key = |&(t, m): &Event| (t, m.trailing_zeros(), m);
    if !events.is_sorted_by_key(key) {
        events.sort_unstable_by_key(key);
    }
}

/// The constant arguments of one call.
#[derive(Debug, Clone)]
struct Spec {
    pattern: Arc<Pattern>,
    conditions: usize,
    count: bool,
}

impl Kernel for Spec {
    fn conditions(&self) -> usize {
        self.conditions
    }

    fn finish(&self, events: &mut [Event]) -> i64 {
        if self.count { self.pattern.count(events) as i64 } else { i64::from(self.pattern.matches(events)) }
    }

    fn output(&self) -> DataType {
        if self.count { DataType::Int64 } else { DataType::Boolean }
    }
}

/// `sequence_match` (`count` false) or `sequence_count`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Sequence {
    count: bool,
    signature: Signature,
}

impl Sequence {
    pub fn matching() -> Self {
        Sequence { count: false, signature: Signature::user_defined(Volatility::Immutable) }
    }

    pub fn counting() -> Self {
        Sequence { count: true, signature: Signature::user_defined(Volatility::Immutable) }
    }

    fn spec(&self, args: &AccumulatorArgs) -> Result<Spec> {
        let name = self.name();
        let text = constant_text(name, args, 0, "pattern")?;
        let conditions = args.exprs.len() - 2;
        let per_second =
            if matches!(args.expr_fields[1].data_type(), DataType::Timestamp(_, _)) { 1_000_000 } else { 1 };
        Ok(Spec {
            pattern: Arc::new(Pattern::parse(name, &text, conditions, per_second)?),
            conditions,
            count: self.count,
        })
    }
}

impl AggregateUDFImpl for Sequence {
    fn name(&self) -> &str {
        if self.count { COUNT } else { MATCH }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let name = self.name();
        let bad = |arg: &str, msg: String| Err(ArgumentError::new(name, arg, msg).into_datafusion());
        if arg_types.len() < 3 {
            return bad("cond1", format!("is required: {name}(pattern, ts, cond1, ..., condN)"));
        }
        if !is_text(&arg_types[0]) {
            return bad("pattern", format!("must be a text constant, not {}", arg_types[0]));
        }
        let Some(ts) = coerced_ts(&arg_types[1]) else {
            return bad("ts", format!("must be a timestamp, a date or an integer, not {}", arg_types[1]));
        };
        let mut out = vec![arg_types[0].clone(), ts];
        out.extend(coerced_conditions(name, &arg_types[2..])?);
        Ok(out)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(if self.count { DataType::Int64 } else { DataType::Boolean })
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(events::state_fields(&args))
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(EventsAccumulator::new(self.spec(&args)?)))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(EventGroups::new(self.spec(&args)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: u32 = 1;
    const B: u32 = 2;
    const C: u32 = 4;

    fn pattern(text: &str) -> Pattern {
        Pattern::parse(MATCH, text, 3, 1).expect("pattern")
    }

    fn matches(text: &str, events: &[Event]) -> bool {
        pattern(text).matches(&mut events.to_vec())
    }

    fn count(text: &str, events: &[Event]) -> u64 {
        pattern(text).count(&mut events.to_vec())
    }

    /// The definition by brute force: every way to give each event step its own event, in
    /// order; returns the (first, last) event indices of every match.
    fn all_matches(p: &Pattern, events: &[Event]) -> Vec<(usize, usize)> {
        fn extend(p: &Pattern, events: &[Event], chosen: &mut Vec<usize>, out: &mut Vec<(usize, usize)>) {
            let k = chosen.len();
            if k == p.steps.len() {
                out.push((chosen[0], chosen[k - 1]));
                return;
            }
            let step = &p.steps[k];
            let from = chosen.last().map_or(0, |&i| i + 1);
            for j in from..events.len() {
                if let Some(&i) = chosen.last() {
                    if !step.gap && j != i + 1 {
                        break;
                    }
                    let d = events[j].0 - events[i].0;
                    if d < step.lo || d > step.hi {
                        continue;
                    }
                }
                if step.condition == 0 || events[j].1 & step.condition != 0 {
                    chosen.push(j);
                    extend(p, events, chosen, out);
                    chosen.pop();
                }
            }
        }
        let mut out = vec![];
        extend(p, events, &mut vec![], &mut out);
        out
    }

    /// The most matches with disjoint spans, by dynamic programming over the spans.
    fn most_disjoint(spans: &[(usize, usize)], n: usize) -> u64 {
        // best[i]: the most matches within events i.. .
        let mut best = vec![0u64; n + 1];
        for i in (0..n).rev() {
            best[i] = best[i + 1];
            for &(s, e) in spans {
                if s == i {
                    best[i] = best[i].max(1 + best[e + 1]);
                }
            }
        }
        best[0]
    }

    #[test]
    fn documented_cases() {
        // Consecutive steps; events meeting no condition are not events.
        assert!(matches("(?1)(?2)", &[(1, B), (2, A), (4, B)]));
        assert!(!matches("(?1)(?2)", &[(1, A), (2, C), (3, B)]));
        // `.` is one event, `.*` any number.
        assert!(matches("(?1).(?2)", &[(1, A), (2, C), (3, B)]));
        assert!(matches("(?1).*(?2)", &[(1, A), (2, C), (3, C), (4, B)]));
        assert!(!matches("(?1).(?2)", &[(1, A), (2, C), (3, C), (4, B)]));
        // A time condition allows events between and measures from the previous event step.
        assert!(matches("(?1)(?t<=5)(?2)", &[(1, A), (2, C), (3, B)]));
        assert!(!matches("(?1)(?t<=1)(?2)", &[(1, A), (2, C), (3, B)]));
        assert!(matches("(?1)(?t==2)(?2)", &[(1, A), (2, C), (3, B)]));
        assert!(!matches("(?1).(?t>1)(?2)", &[(0, A), (1, C), (2, B)]));
        // `.*` does not move the anchor (ClickHouse: no match here).
        assert!(matches("(?1).*(?t>1)(?2)", &[(0, A), (1, C), (2, B)]));
        // Several time conditions: all of them.
        assert!(matches("(?1)(?t>2)(?t<5)(?2)", &[(0, A), (1, B), (4, B)]));
        assert!(!matches("(?1)(?t>2)(?t<5)(?2)", &[(0, A), (1, B), (6, B)]));
        // Ties: the first condition met first, whatever the arrival order.
        assert!(matches("(?1)(?2)", &[(0, B), (0, A)]));
        // Counting: non-overlapping.
        assert_eq!(count("(?1)(?1)", &[(0, A), (1, A), (2, A), (3, A), (4, A)]), 2);
        assert_eq!(count("(?1)(?t>1)(?2)", &[(0, A), (1, A), (5, B), (6, A), (7, B), (8, B)]), 2);
        assert_eq!(count("(?1)(?t<2)(?2)", &[(0, A), (1, A), (5, B), (6, A), (7, B), (8, B)]), 1);
        assert_eq!(count("(?1)", &[]), 0);
        // Timestamps: seconds.
        let p = Pattern::parse(MATCH, "(?1)(?t>1)(?2)", 2, 1_000_000).expect("pattern");
        assert!(!p.matches(&mut [(0, A), (1_000_000, B)]));
        assert!(p.matches(&mut [(0, A), (1_000_001, B)]));
    }

    #[test]
    fn bad_patterns_say_why() {
        let err = |text: &str| Pattern::parse(MATCH, text, 2, 1).expect_err(text).to_string();
        assert!(err("(?3)").contains("argument \"pattern\" has (?3), but there are 2 conditions (at character 1)"));
        assert!(err("(?t>1)(?1)").contains("before any event step"));
        assert!(err("(?1)(?t>1)").contains("has a time condition with no event step after it"));
        assert!(err(".*").contains("matches no event"));
        assert!(err("").contains("matches no event"));
        assert!(err("(?1)(?t!1)(?2)").contains("without one of"));
        assert!(err("(?1)(?t>x)(?2)").contains("whole number of seconds"));
        assert!(err("(?1)x").contains("has 'x', which is not (?N), ., .* or (?t op seconds) (at character 5)"));
        assert!(err("(?1").contains("unclosed"));
        assert!(err("(?0)").contains("has (?0), but"));
        assert!(err("(?x)").contains("neither (?N) nor"));
        assert!(Pattern::parse(MATCH, " (?1) .* (?t >= 3) (?2) ", 2, 1).is_ok());
    }

    #[test]
    fn matches_the_definition_on_random_event_sets() {
        let mut rng = crate::common::test_rng::TestRng(0x9e37_79b9_7f4a_7c15);
        let mut next = |n: u64| rng.next(n);
        let tokens = ["(?1)", "(?2)", "(?3)", ".", ".*", "(?t>1)", "(?t<=2)", "(?t==1)", "(?t>=3)", "(?t<4)"];
        let mut seen = [0usize; 2];
        for case in 0..4000 {
            let text: String = (0..1 + next(5)).map(|_| tokens[next(tokens.len() as u64) as usize]).collect();
            let Ok(p) = Pattern::parse(MATCH, &text, 3, 1) else { continue };
            let n = next(9) as usize;
            let mut events: Vec<Event> =
                (0..n).map(|_| (next(6) as i64, next(8) as u32)).filter(|e| e.1 != 0).collect();
            sort(&mut events);
            let spans = all_matches(&p, &events);
            let want_count = most_disjoint(&spans, events.len());
            let mut shuffled = events.clone();
            shuffled.reverse();
            let got = p.matches(&mut shuffled);
            assert_eq!(got, !spans.is_empty(), "case {case}: {text} over {events:?}");
            let mut rotated = events.clone();
            rotated.rotate_left(events.len() / 2);
            assert_eq!(p.count(&mut rotated), want_count, "case {case}: {text} over {events:?}");
            seen[usize::from(got)] += 1;
        }
        // Both answers were exercised.
        assert!(seen[0] > 300 && seen[1] > 300, "{seen:?}");
    }
}
