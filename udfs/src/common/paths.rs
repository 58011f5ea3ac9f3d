//! Path building: one person's ordered events become the paths that `journey_paths` counts.
//!
//! Plain Rust over `(time in microseconds, node id)` pairs; node ids are interned labels and the
//! caller has already dropped excluded events and applied the cleaning rules. The steps, in
//! order:
//!
//! 1. **Sessions**: with a gap, a new path starts after a pause strictly longer than the gap.
//! 2. **Repeats**: consecutive equal nodes collapse into one, which keeps the *last* event of the
//!    run and its time (as PostHog does), so the time to the next node is measured from the last
//!    repeat.
//! 3. **Anchors**: with `start`, a path begins at its first `start` node (paths without one are
//!    dropped); with `end`, it stops at the first `end` node after the start (paths without one
//!    are dropped).
//! 4. **Length**: at most `max_steps` nodes. Without an end anchor the first `max_steps` are
//!    kept; with only an end anchor the last `max_steps` (so the path still ends at `end`); with
//!    both, the first `max_steps - 2`, then [`ELLIPSIS`], then the end node.

/// The label standing for the skipped middle of a path between a start and an end anchor.
pub const ELLIPSIS: &str = "...";

/// How a path ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Terminal {
    /// No more events (within the session).
    DropOff,
    /// At the end anchor.
    End,
    /// Cut at `max_steps` while the person went on.
    Cut,
}

/// The rules of step 1 to 4, with anchors and the ellipsis as node ids.
#[derive(Debug, Clone)]
pub struct PathRules {
    pub session_gap_micros: Option<i64>,
    pub collapse_repeats: bool,
    pub start: Option<u32>,
    pub end: Option<u32>,
    pub max_steps: usize,
    pub ellipsis: u32,
}

/// One path: its nodes, the time of each node, and how it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    pub nodes: Vec<u32>,
    pub times: Vec<i64>,
    pub terminal: Terminal,
}

/// Appends the paths of one person, whose events are sorted by time, to `out`.
pub fn person_paths(events: &[(i64, u32)], rules: &PathRules, out: &mut Vec<Path>) {
    let mut begin = 0;
    for i in 1..=events.len() {
        let split = i == events.len()
            || rules.session_gap_micros.is_some_and(|gap| events[i].0.saturating_sub(events[i - 1].0) > gap);
        if split {
            if let Some(p) = session_path(&events[begin..i], rules) {
                out.push(p);
            }
            begin = i;
        }
    }
}

fn session_path(events: &[(i64, u32)], rules: &PathRules) -> Option<Path> {
    let mut steps: Vec<(i64, u32)> = Vec::with_capacity(events.len());
    for &(t, node) in events {
        match steps.last_mut() {
            Some(last) if rules.collapse_repeats && last.1 == node => *last = (t, node),
            _ => steps.push((t, node)),
        }
    }
    let mut from = 0;
    if let Some(start) = rules.start {
        from = steps.iter().position(|s| s.1 == start)?;
    }
    let mut to = steps.len();
    let mut terminal = Terminal::DropOff;
    if let Some(end) = rules.end {
        // With a start anchor, the end is searched after it (the start itself may be an `end`
        // node only when start and end differ).
        let search_from = if rules.start.is_some() { from + 1 } else { from };
        let offset = steps.get(search_from..)?.iter().position(|s| s.1 == end)?;
        to = search_from + offset + 1;
        terminal = Terminal::End;
    }
    let mut kept = &steps[from..to];
    let max = rules.max_steps.max(1);
    let mut ellipsis = None;
    if kept.len() > max {
        match (rules.start.is_some(), rules.end.is_some()) {
            (true, true) if max >= 3 => {
                ellipsis = Some((kept[kept.len() - 2].0, kept[kept.len() - 1]));
                kept = &kept[..max - 2];
            }
            (_, true) => kept = &kept[kept.len() - max..],
            _ => {
                kept = &kept[..max];
                terminal = Terminal::Cut;
            }
        }
    }
    let mut nodes: Vec<u32> = kept.iter().map(|s| s.1).collect();
    let mut times: Vec<i64> = kept.iter().map(|s| s.0).collect();
    if let Some((t, last)) = ellipsis {
        nodes.extend([rules.ellipsis, last.1]);
        times.extend([t, last.0]);
    }
    Some(Path { nodes, times, terminal })
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: u32 = 1;
    const B: u32 = 2;
    const C: u32 = 3;
    const D: u32 = 4;
    const DOTS: u32 = 0;

    fn rules() -> PathRules {
        PathRules {
            session_gap_micros: None,
            collapse_repeats: true,
            start: None,
            end: None,
            max_steps: 5,
            ellipsis: DOTS,
        }
    }

    fn paths(events: &[(i64, u32)], rules: &PathRules) -> Vec<(Vec<u32>, Vec<i64>, Terminal)> {
        let mut out = vec![];
        person_paths(events, rules, &mut out);
        out.into_iter().map(|p| (p.nodes, p.times, p.terminal)).collect()
    }

    #[test]
    fn repeats_collapse_to_the_last_of_the_run() {
        let ev = [(1, A), (2, A), (3, B), (4, A)];
        assert_eq!(paths(&ev, &rules()), [(vec![A, B, A], vec![2, 3, 4], Terminal::DropOff)]);
        let keep = PathRules { collapse_repeats: false, ..rules() };
        assert_eq!(paths(&ev, &keep)[0].0, [A, A, B, A]);
    }

    #[test]
    fn sessions_split_on_a_strictly_longer_gap() {
        let r = PathRules { session_gap_micros: Some(10), ..rules() };
        let ev = [(0, A), (10, B), (21, C), (31, D)];
        let got: Vec<Vec<u32>> = paths(&ev, &r).into_iter().map(|p| p.0).collect();
        assert_eq!(got, [vec![A, B], vec![C, D]]);
    }

    #[test]
    fn start_anchor_uses_the_first_occurrence_and_drops_paths_without_it() {
        let r = PathRules { start: Some(B), ..rules() };
        assert_eq!(paths(&[(1, A), (2, B), (3, C), (4, B)], &r)[0].0, [B, C, B]);
        assert!(paths(&[(1, A), (2, C)], &r).is_empty());
    }

    #[test]
    fn end_anchor_keeps_the_last_steps_up_to_the_first_end() {
        let r = PathRules { end: Some(D), max_steps: 2, ..rules() };
        assert_eq!(
            paths(&[(1, A), (2, B), (3, C), (4, D), (5, A), (6, D)], &r),
            [(vec![C, D], vec![3, 4], Terminal::End)]
        );
        assert!(paths(&[(1, A)], &r).is_empty(), "no end, no path");
    }

    #[test]
    fn both_anchors_put_an_ellipsis_in_the_middle() {
        let r = PathRules { start: Some(A), end: Some(D), max_steps: 3, ..rules() };
        let ev = [(0, C), (1, A), (2, B), (3, C), (4, B), (5, D)];
        assert_eq!(paths(&ev, &r), [(vec![A, DOTS, D], vec![1, 4, 5], Terminal::End)]);
        // Short enough: no ellipsis. The end is searched after the start.
        let r = PathRules { start: Some(A), end: Some(A), max_steps: 5, ..rules() };
        assert_eq!(paths(&[(1, A), (2, B), (3, A)], &r)[0].0, [A, B, A]);
        assert!(paths(&[(1, A), (2, B)], &r).is_empty());
    }

    #[test]
    fn max_steps_cuts_open_paths() {
        let r = PathRules { max_steps: 2, ..rules() };
        assert_eq!(paths(&[(1, A), (2, B), (3, C)], &r), [(vec![A, B], vec![1, 2], Terminal::Cut)]);
        assert_eq!(paths(&[(1, A), (2, B)], &r)[0].2, Terminal::DropOff, "exactly max_steps: not cut");
    }

    #[test]
    fn empty_input_has_no_path() {
        assert!(paths(&[], &rules()).is_empty());
    }
}
