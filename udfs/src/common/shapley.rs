//! Conversion-probability Shapley values over channel sets.
//!
//! research/journey-functions.md section 2.10. The players are the channels; a coalition `S`
//! is worth the conversion rate of the journeys that used only channels of `S`:
//!
//! `v(S) = conversions(T ⊆ S) / journeys(T ⊆ S)` (0 when no journey used only `S`; `v(∅) = 0`),
//!
//! counting converting and non-converting journeys by their set of distinct channels. A
//! channel's value is its Shapley value
//! `φ_j = Σ_{S ⊆ N∖{j}} |S|! (n − |S| − 1)! / n! · (v(S ∪ {j}) − v(S))`,
//! and the values add up to `v(N)`. Exact (subset sums and one pass over the `2^n` coalitions)
//! up to [`EXACT_CHANNELS`] channels; beyond, the average marginal contribution over
//! [`SAMPLES`] random channel orders drawn from a fixed seed, so the answer is still the same on
//! every run. (The set-based *simplified* Shapley of Zhao et al., which splits each conversion
//! equally over the journey's distinct channels, needs no game: the report computes it per
//! journey.)

/// The most channels solved exactly.
pub const EXACT_CHANNELS: usize = 20;
/// Channel orders sampled beyond [`EXACT_CHANNELS`].
pub const SAMPLES: usize = 2000;
/// The sampler's fixed seed.
const SEED: u64 = 0x6a09_e667_f3bc_c909;

/// A set of distinct channels (indexes below `n`, sorted) and its journeys.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelSet {
    pub channels: Vec<usize>,
    pub conversions: u64,
    pub journeys: u64,
}

/// The Shapley value of each of `n` channels; exact when `n <= exact_limit`.
pub fn shapley_values(n: usize, sets: &[ChannelSet], exact_limit: usize) -> Vec<f64> {
    if n == 0 {
        return vec![];
    }
    if n <= exact_limit.min(EXACT_CHANNELS) { exact(n, sets) } else { sampled(n, sets) }
}

fn exact(n: usize, sets: &[ChannelSet]) -> Vec<f64> {
    let size = 1usize << n;
    let mut conv = vec![0u64; size];
    let mut total = vec![0u64; size];
    for s in sets {
        let mask = s.channels.iter().fold(0usize, |m, &c| m | (1 << c));
        conv[mask] += s.conversions;
        total[mask] += s.journeys;
    }
    // Sums over subsets.
    for bit in 0..n {
        for mask in 0..size {
            if mask & (1 << bit) != 0 {
                conv[mask] += conv[mask ^ (1 << bit)];
                total[mask] += total[mask ^ (1 << bit)];
            }
        }
    }
    let v = |mask: usize| if mask == 0 || total[mask] == 0 { 0.0 } else { conv[mask] as f64 / total[mask] as f64 };
    // weight[s] = s! (n - s - 1)! / n!
    let mut weight = vec![0.0; n];
    for (s, w) in weight.iter_mut().enumerate() {
        let mut x = 1.0 / n as f64;
        // 1 / (n * C(n-1, s))
        let mut c = 1.0;
        for k in 0..s {
            c = c * (n - 1 - k) as f64 / (k + 1) as f64;
        }
        x /= c;
        *w = x;
    }
    let mut phi = vec![0.0; n];
    for mask in 0..size {
        let vm = v(mask);
        let s = mask.count_ones() as usize;
        for (j, p) in phi.iter_mut().enumerate() {
            if mask & (1 << j) == 0 {
                *p += weight[s] * (v(mask | (1 << j)) - vm);
            }
        }
    }
    phi
}

fn sampled(n: usize, sets: &[ChannelSet]) -> Vec<f64> {
    let words = n.div_ceil(64);
    let masks: Vec<(Vec<u64>, u64, u64)> = sets
        .iter()
        .map(|s| {
            let mut m = vec![0u64; words];
            for &c in &s.channels {
                m[c / 64] |= 1 << (c % 64);
            }
            (m, s.conversions, s.journeys)
        })
        .collect();
    let v = |coalition: &[u64]| {
        let (mut c, mut t) = (0u64, 0u64);
        for (m, conv, total) in &masks {
            if m.iter().zip(coalition).all(|(a, b)| a & !b == 0) {
                c += conv;
                t += total;
            }
        }
        if t == 0 { 0.0 } else { c as f64 / t as f64 }
    };
    let mut state = SEED;
    let mut next = |bound: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % bound as u64) as usize
    };
    let mut phi = vec![0.0; n];
    let mut order: Vec<usize> = (0..n).collect();
    let mut coalition = vec![0u64; words];
    for _ in 0..SAMPLES {
        for i in (1..n).rev() {
            order.swap(i, next(i + 1));
        }
        coalition.iter_mut().for_each(|w| *w = 0);
        let mut before = 0.0;
        for &j in &order {
            coalition[j / 64] |= 1 << (j % 64);
            let after = v(&coalition);
            phi[j] += after - before;
            before = after;
        }
    }
    phi.iter_mut().for_each(|p| *p /= SAMPLES as f64);
    phi
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(channels: &[usize], conversions: u64, journeys: u64) -> ChannelSet {
        ChannelSet { channels: channels.to_vec(), conversions, journeys }
    }

    /// The definition: average marginal contribution over every order of the players.
    fn by_permutations(n: usize, sets: &[ChannelSet]) -> Vec<f64> {
        let v = |mask: usize| {
            let (mut c, mut t) = (0, 0);
            for s in sets {
                let m = s.channels.iter().fold(0usize, |m, &c| m | (1 << c));
                if m & !mask == 0 {
                    c += s.conversions;
                    t += s.journeys;
                }
            }
            if mask == 0 || t == 0 { 0.0 } else { c as f64 / t as f64 }
        };
        fn permutations(items: Vec<usize>) -> Vec<Vec<usize>> {
            if items.len() <= 1 {
                return vec![items];
            }
            let mut out = vec![];
            for i in 0..items.len() {
                let mut rest = items.clone();
                let x = rest.remove(i);
                for mut p in permutations(rest) {
                    p.insert(0, x);
                    out.push(p);
                }
            }
            out
        }
        let perms = permutations((0..n).collect());
        let mut phi = vec![0.0; n];
        for p in &perms {
            let mut mask = 0;
            for &j in p {
                phi[j] += v(mask | (1 << j)) - v(mask);
                mask |= 1 << j;
            }
        }
        phi.iter().map(|x| x / perms.len() as f64).collect()
    }

    #[test]
    fn two_channels_by_hand() {
        // {A}: 1 of 4 convert, {B}: 1 of 2, {A, B}: 3 of 4.
        // v(A) = 1/4, v(B) = 1/2, v(AB) = 5/10 = 1/2.
        // φ_A = 1/2 (1/4 - 0) + 1/2 (1/2 - 1/2) = 1/8; φ_B = 1/2 (1/2) + 1/2 (1/2 - 1/4) = 3/8.
        let sets = [set(&[0], 1, 4), set(&[1], 1, 2), set(&[0, 1], 3, 4)];
        let phi = shapley_values(2, &sets, EXACT_CHANNELS);
        assert!((phi[0] - 0.125).abs() < 1e-15 && (phi[1] - 0.375).abs() < 1e-15, "{phi:?}");
    }

    #[test]
    fn exact_matches_the_definition_and_sampling_comes_close() {
        let mut rng = crate::common::test_rng::TestRng(0xdead_beef_cafe_f00d);
        for _ in 0..40 {
            let n = 1 + rng.next(6) as usize;
            let sets: Vec<ChannelSet> = (0..1 + rng.next(10))
                .map(|_| {
                    let mut c: Vec<usize> = (0..n).filter(|_| rng.next(2) == 0).collect();
                    if c.is_empty() {
                        c.push(rng.next(n as u64) as usize);
                    }
                    let journeys = 1 + rng.next(20);
                    set(&c, rng.next(journeys + 1), journeys)
                })
                .collect();
            let exact = shapley_values(n, &sets, EXACT_CHANNELS);
            let reference = by_permutations(n, &sets);
            for (a, b) in exact.iter().zip(&reference) {
                assert!((a - b).abs() < 1e-12, "{exact:?} vs {reference:?}");
            }
            let sampled = shapley_values(n, &sets, 0);
            for (a, b) in sampled.iter().zip(&reference) {
                assert!((a - b).abs() < 0.05, "{sampled:?} vs {reference:?}");
            }
            // Efficiency: the values add up to v(N).
            let (c, t) = sets.iter().fold((0, 0), |(c, t), s| (c + s.conversions, t + s.journeys));
            let total: f64 = exact.iter().sum();
            assert!((total - c as f64 / t as f64).abs() < 1e-12);
        }
    }
}
