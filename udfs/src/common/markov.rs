//! Markov-chain attribution: each channel's removal effect, solved exactly.
//!
//! The model of ChannelAttribution's `markov_model` (research/journey-functions.md section
//! 2.9), without its random walks:
//!
//! - A path is a journey's touches (after lookback and transforms); each touch is a `u64` state
//!   key whose channel is given by the caller. With order `k`, the states are the sliding
//!   `k`-grams of the path (a path shorter than `k` is one state); consecutive identical states
//!   collapse (no self-loops).
//! - `(start)` leads to the first state, each state to the next, and the last state to
//!   `(conversion)` (weighted by the path's conversions) or `(null)` (its non-conversions);
//!   transitions are weighted by conversions plus non-conversions and normalised per state.
//! - `P` is the probability of reaching `(conversion)` from `(start)`. Removing a channel sends
//!   every state that contains it to `(null)`; its **removal effect** is `1 - P_removed / P`.
//!
//! `P` solves `(I - Q) p = r` (`Q` the transient part of the chain, `r` the one-step
//! conversion probabilities) by sparse Gaussian elimination in a fixed order: a direct method,
//! no simulation and no dense inverse, the same floating-point operations in the same order on
//! every run (the caller gives the paths in a deterministic order). `I - Q` is a non-singular
//! M-matrix (every state reaches an absorbing state), so elimination without pivoting is
//! stable. Without non-converting paths every walk converts, every `P` is 1 or 0 and removal
//! effects only measure reachability, as in ChannelAttribution.

use std::collections::{BTreeMap, BTreeSet};

/// One distinct path and how often it ended in each way.
#[derive(Debug, Clone, PartialEq)]
pub struct MarkovPath {
    pub states: Vec<u64>,
    pub conversions: u64,
    pub nulls: u64,
}

/// The chain built from the paths.
#[derive(Debug, Clone)]
pub struct Chain {
    /// Node 0 is `(start)`, node `i > 0` is state `states[i - 1]` (a k-gram of touch keys).
    states: Vec<Vec<u64>>,
    /// Per node: transient successors with their weights.
    next: Vec<BTreeMap<usize, u64>>,
    /// Per node: weight into `(conversion)` and into `(null)`.
    conversion: Vec<u64>,
    null: Vec<u64>,
}

impl Chain {
    /// The chain of `paths` with states of order `order` (>= 1).
    pub fn build(paths: &[MarkovPath], order: usize) -> Chain {
        let order = order.max(1);
        let mut ids: std::collections::HashMap<Vec<u64>, usize> = std::collections::HashMap::new();
        let mut chain = Chain { states: vec![], next: vec![BTreeMap::new()], conversion: vec![0], null: vec![0] };
        for p in paths {
            let weight = p.conversions + p.nulls;
            if p.states.is_empty() || weight == 0 {
                continue;
            }
            let grams: Vec<&[u64]> =
                if p.states.len() <= order { vec![&p.states[..]] } else { p.states.windows(order).collect() };
            let mut previous = 0usize;
            for g in grams {
                let id = match ids.get(g) {
                    Some(&id) => id,
                    None => {
                        chain.states.push(g.to_vec());
                        chain.next.push(BTreeMap::new());
                        chain.conversion.push(0);
                        chain.null.push(0);
                        let id = chain.states.len();
                        ids.insert(g.to_vec(), id);
                        id
                    }
                };
                if id == previous {
                    continue;
                }
                *chain.next[previous].entry(id).or_insert(0) += weight;
                previous = id;
            }
            chain.conversion[previous] += p.conversions;
            chain.null[previous] += p.nulls;
        }
        chain
    }

    /// The probability of conversion from `(start)` when the states for which `removed` holds
    /// lead to `(null)`.
    pub fn conversion_probability(&self, removed: impl Fn(&[u64]) -> bool) -> f64 {
        let n = self.next.len();
        let gone: Vec<bool> = (0..n).map(|i| i > 0 && removed(&self.states[i - 1])).collect();
        // Rows of I - Q over the remaining nodes; removed nodes have p = 0.
        let mut rows: Vec<BTreeMap<usize, f64>> = vec![BTreeMap::new(); n];
        let mut b = vec![0.0; n];
        for i in 0..n {
            if gone[i] {
                rows[i].insert(i, 1.0);
                continue;
            }
            let total: u64 = self.next[i].values().sum::<u64>() + self.conversion[i] + self.null[i];
            if total == 0 {
                rows[i].insert(i, 1.0);
                continue;
            }
            let total = total as f64;
            rows[i].insert(i, 1.0);
            for (&j, &w) in &self.next[i] {
                if !gone[j] {
                    *rows[i].entry(j).or_insert(0.0) -= w as f64 / total;
                }
            }
            b[i] = self.conversion[i] as f64 / total;
        }
        solve(rows, b)[0]
    }

    /// The distinct states (k-grams), in first-seen order.
    pub fn states(&self) -> &[Vec<u64>] {
        &self.states
    }
}

/// Solves `A x = b` for a sparse, non-singular `A` given by rows, by Gaussian elimination in
/// index order without pivoting (fine for M-matrices), then back substitution.
pub fn solve(mut rows: Vec<BTreeMap<usize, f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let n = rows.len();
    // Rows below the diagonal holding a non-zero in each column.
    let mut below: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); n];
    for (i, r) in rows.iter().enumerate() {
        for &j in r.keys() {
            if i > j {
                below[j].insert(i);
            }
        }
    }
    for i in 0..n {
        let pivot = rows[i].get(&i).copied().unwrap_or(0.0);
        if pivot == 0.0 {
            continue;
        }
        let pivot_row: Vec<(usize, f64)> = rows[i].range(i + 1..).map(|(&k, &v)| (k, v)).collect();
        let targets: Vec<usize> = std::mem::take(&mut below[i]).into_iter().collect();
        for j in targets {
            let Some(a) = rows[j].remove(&i) else { continue };
            let factor = a / pivot;
            for &(k, v) in &pivot_row {
                let e = rows[j].entry(k).or_insert(0.0);
                *e -= factor * v;
                if j > k {
                    below[k].insert(j);
                }
            }
            b[j] -= factor * b[i];
        }
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let pivot = rows[i].get(&i).copied().unwrap_or(0.0);
        if pivot == 0.0 {
            continue;
        }
        let s: f64 = rows[i].range(i + 1..).map(|(&k, &v)| v * x[k]).sum();
        x[i] = (b[i] - s) / pivot;
    }
    x
}

/// Removal effects of `channels` (each a predicate on touch keys: does this touch belong to
/// the channel), and the conversion probability of the whole chain.
pub fn removal_effects(chain: &Chain, channels: &[impl Fn(u64) -> bool]) -> (f64, Vec<f64>) {
    let p = chain.conversion_probability(|_| false);
    let effects = channels
        .iter()
        .map(|has| {
            if p <= 0.0 {
                return 0.0;
            }
            let removed = chain.conversion_probability(|state| state.iter().any(|&s| has(s)));
            (1.0 - removed / p).clamp(0.0, 1.0)
        })
        .collect();
    (p, effects)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(states: &[u64], conversions: u64, nulls: u64) -> MarkovPath {
        MarkovPath { states: states.to_vec(), conversions, nulls }
    }

    fn channel(c: u64) -> impl Fn(u64) -> bool {
        move |s| s == c
    }

    const A: u64 = 1;
    const B: u64 = 2;
    const C: u64 = 3;

    #[test]
    fn hand_computed_chain() {
        // A converts once, B fails once, A > B converts once:
        // p(B) = 1/2, p(A) = 1/2 + 1/2 * 1/2 = 3/4, P = 2/3 * 3/4 + 1/3 * 1/2 = 2/3.
        // Without A: P = 1/3 * 1/2 = 1/6, RE = 3/4. Without B: p(A) = 1/2, P = 1/3, RE = 1/2.
        let chain = Chain::build(&[path(&[A], 1, 0), path(&[B], 0, 1), path(&[A, B], 1, 0)], 1);
        let (p, re) = removal_effects(&chain, &[channel(A), channel(B)]);
        assert!((p - 2.0 / 3.0).abs() < 1e-15, "{p}");
        assert!((re[0] - 0.75).abs() < 1e-15 && (re[1] - 0.5).abs() < 1e-15, "{re:?}");
    }

    #[test]
    fn repeats_collapse_and_higher_orders_use_k_grams() {
        let chain = Chain::build(&[path(&[A, A, B, B, A], 2, 1)], 1);
        assert_eq!(chain.states(), &[vec![A], vec![B]]);
        let chain = Chain::build(&[path(&[A, B, A, C], 1, 0), path(&[C], 1, 0)], 2);
        assert_eq!(chain.states(), &[vec![A, B], vec![B, A], vec![A, C], vec![C]]);
        // Without non-conversions every walk converts: removal effects are reachability.
        let (p, re) = removal_effects(&chain, &[channel(A), channel(B), channel(C)]);
        assert_eq!(p, 1.0);
        assert_eq!(re, vec![0.5, 0.5, 1.0]);
    }

    /// The conversion probability by iterating `p <- Q p + r` to its fixed point.
    fn iterate(chain: &Chain, removed: &dyn Fn(&[u64]) -> bool) -> f64 {
        let n = chain.next.len();
        let mut p = vec![0.0; n];
        for _ in 0..3_000 {
            let mut q = vec![0.0; n];
            for (i, qi) in q.iter_mut().enumerate() {
                if i > 0 && removed(&chain.states[i - 1]) {
                    continue;
                }
                let total = (chain.next[i].values().sum::<u64>() + chain.conversion[i] + chain.null[i]) as f64;
                if total == 0.0 {
                    continue;
                }
                let mut s = chain.conversion[i] as f64;
                for (&j, &w) in &chain.next[i] {
                    s += w as f64 * p[j];
                }
                *qi = s / total;
            }
            p = q;
        }
        p[0]
    }

    #[test]
    fn the_solver_agrees_with_the_fixed_point_on_random_chains() {
        let mut rng = crate::common::test_rng::TestRng(0x9e37_79b9_7f4a_7c15);
        for round in 0..300 {
            let channels = 1 + rng.next(5);
            let paths: Vec<MarkovPath> = (0..1 + rng.next(12))
                .map(|_| {
                    let len = 1 + rng.next(6) as usize;
                    let states: Vec<u64> = (0..len).map(|_| 1 + rng.next(channels)).collect();
                    path(&states, rng.next(4), rng.next(4))
                })
                .collect();
            let order = 1 + (round % 3);
            let chain = Chain::build(&paths, order);
            for c in 0..=channels {
                let removed = |s: &[u64]| c > 0 && s.contains(&c);
                let exact = chain.conversion_probability(removed);
                let iterated = iterate(&chain, &removed);
                assert!((exact - iterated).abs() < 1e-9, "round {round} channel {c}: {exact} vs {iterated}");
            }
        }
    }

    #[test]
    fn sparse_solve_of_a_small_system() {
        // 2x + y = 3, x + 3y = 5 -> x = 0.8, y = 1.4
        let rows = vec![BTreeMap::from([(0, 2.0), (1, 1.0)]), BTreeMap::from([(0, 1.0), (1, 3.0)])];
        let x = solve(rows, vec![3.0, 5.0]);
        assert!((x[0] - 0.8).abs() < 1e-12 && (x[1] - 1.4).abs() < 1e-12, "{x:?}");
    }
}
