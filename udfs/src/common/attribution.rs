//! The rule-based attribution models: each touch's share of one conversion.
//!
//! Plain Rust, no Arrow: the kernel the `attribute()` window function and report will share
//! (issue 3; not yet exposed in SQL). Touches are given in journey order (time, then a total
//! tie-break chosen by the caller), all at or before the conversion.
//!
//! Weights (research/journey-functions.md section 2.7), for `n` touches:
//!
//! | model | shares |
//! |---|---|
//! | `first_touch` | 1 to the first |
//! | `last_touch` | 1 to the last |
//! | `last_non_direct` | 1 to the last touch that is not Direct; all Direct: 1 to the last |
//! | `linear` | `1/n` to each touch (per occurrence: a repeated channel gets each of its shares) |
//! | `position_based` (`u_shaped`) | 0.4 first, 0.4 last, 0.2 split evenly over the middle |
//! | `j_shaped` | 0.2 first, 0.6 last, 0.2 over the middle |
//! | `inverse_j` | 0.6 first, 0.2 last, 0.2 over the middle |
//! | `custom(first, middle, last)` | the given non-negative weights, normalised |
//! | `time_decay(half_life)` | proportional to `2^(-(conversion - t) / half_life)`, continuous time |
//! | `w_shaped` | 0.3 first, 0.3 lead touch, 0.3 opportunity touch, 0.1 over the other touches |
//! | `full_path` (`z_shaped`) | 0.225 each to first, lead, opportunity and closed-won touches, 0.1 over the others |
//!
//! Small-n and coinciding rules, the same for every model:
//! - one touch gets 1;
//! - the first/last models with no middle touch (n = 2) normalise the end weights: U 0.5/0.5,
//!   J 0.25/0.75, inverse J 0.75/0.25, custom `first/(first+last)`;
//! - milestone models: a touch holding several roles (first and lead, lead and opportunity)
//!   gets the sum of their weights; with no other touches the remaining 0.1 is shared in
//!   proportion to the milestone weights (normalised); the closed-won touch is the last touch
//!   when no touch is marked closed-won (the conversion being attributed is the closed deal);
//!   when the lead or the opportunity touch is missing, the model falls back to
//!   `position_based` and [`Shares::fallback`] says so;
//! - zero touches: no shares (the report credits the conversion to `(direct)`).
//!
//! Exactness: shares are computed in `f64`, then the last touch with a positive share takes `1`
//! minus the sum of the shares before it (in touch order), so that the shares add up to exactly
//! `1.0` when summed in touch order (`1 - s` is within half an ulp of the true value for
//! `s < 1`, and `s + (1 - s)` rounds to 1).

/// A touch of one journey.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Touch {
    /// Microseconds.
    pub t: i64,
    /// The touch's channel is Direct (for `last_non_direct`).
    pub direct: bool,
    /// [`LEAD`], [`OPPORTUNITY`], [`CLOSED_WON`]: the milestones this touch is the touch of
    /// (for HubSpot, the last interaction before the milestone).
    pub milestones: u8,
}

pub const LEAD: u8 = 1;
pub const OPPORTUNITY: u8 = 2;
pub const CLOSED_WON: u8 = 4;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Model {
    FirstTouch,
    LastTouch,
    LastNonDirect,
    Linear,
    /// `(first, middle, last)` weights: position_based, j_shaped, inverse_j and custom.
    Ends(f64, f64, f64),
    /// Half-life in microseconds.
    TimeDecay(i64),
    WShaped,
    FullPath,
}

/// The default half-life of `time_decay`: 7 days.
pub const DEFAULT_HALF_LIFE_MICROS: i64 = 7 * 86_400_000_000;
const POSITION_WEIGHTS: (f64, f64, f64) = (0.4, 0.2, 0.4);
pub const POSITION_BASED: Model = Model::Ends(POSITION_WEIGHTS.0, POSITION_WEIGHTS.1, POSITION_WEIGHTS.2);
pub const J_SHAPED: Model = Model::Ends(0.2, 0.2, 0.6);
pub const INVERSE_J: Model = Model::Ends(0.6, 0.2, 0.2);

impl Model {
    /// The model named `name` (`time_decay` with its default half-life), or `None`.
    pub fn parse(name: &str) -> Option<Model> {
        Some(match name.to_ascii_lowercase().as_str() {
            "first_touch" => Model::FirstTouch,
            "last_touch" => Model::LastTouch,
            "last_non_direct" => Model::LastNonDirect,
            "linear" => Model::Linear,
            "position_based" | "u_shaped" => POSITION_BASED,
            "j_shaped" => J_SHAPED,
            "inverse_j" => INVERSE_J,
            "time_decay" => Model::TimeDecay(DEFAULT_HALF_LIFE_MICROS),
            "w_shaped" => Model::WShaped,
            "full_path" | "z_shaped" => Model::FullPath,
            _ => return None,
        })
    }
}

/// The shares of one conversion.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Shares {
    /// One per touch, in touch order; they add up to exactly 1 in that order (empty for none).
    pub shares: Vec<f64>,
    /// A milestone model fell back to `position_based` (a milestone touch was missing).
    pub fallback: bool,
}

/// Each touch's share of a conversion at `conversion_t` (microseconds).
pub fn shares(model: Model, touches: &[Touch], conversion_t: i64) -> Shares {
    let n = touches.len();
    let mut out = Shares { shares: vec![0.0; n], fallback: false };
    if n == 0 {
        return out;
    }
    let w = &mut out.shares;
    match model {
        Model::FirstTouch => w[0] = 1.0,
        Model::LastTouch => w[n - 1] = 1.0,
        Model::LastNonDirect => {
            let k = touches.iter().rposition(|t| !t.direct).unwrap_or(n - 1);
            w[k] = 1.0;
        }
        Model::Linear => w.iter_mut().for_each(|x| *x = 1.0),
        Model::Ends(first, middle, last) => ends(w, first, middle, last),
        Model::TimeDecay(half_life) => {
            let h = half_life.max(1) as f64;
            for (x, t) in w.iter_mut().zip(touches) {
                let age = conversion_t.saturating_sub(t.t).max(0) as f64;
                *x = (-age / h).exp2();
            }
            // Very old touches underflow to 0: the newest touch always counts.
            if w.iter().all(|&x| x == 0.0) {
                w[n - 1] = 1.0;
            }
        }
        Model::WShaped | Model::FullPath => {
            let find = |m: u8| touches.iter().rposition(|t| t.milestones & m != 0);
            match (find(LEAD), find(OPPORTUNITY)) {
                (Some(lead), Some(opportunity)) => {
                    let (anchor, rest) = if model == Model::WShaped { (0.3, 0.1) } else { (0.225, 0.1) };
                    let mut roles = vec![0, lead, opportunity];
                    if model == Model::FullPath {
                        roles.push(find(CLOSED_WON).unwrap_or(n - 1));
                    }
                    for &r in &roles {
                        w[r] += anchor;
                    }
                    let others: Vec<usize> = (0..n).filter(|k| !roles.contains(k)).collect();
                    for &k in &others {
                        w[k] = rest / others.len() as f64;
                    }
                }
                _ => {
                    out.fallback = true;
                    let (f, m, l) = POSITION_WEIGHTS;
                    ends(w, f, m, l);
                }
            }
        }
    }
    normalise(w);
    out
}

/// First/middle/last weights; with no middle touch the ends are normalised (n = 2), one
/// touch takes all.
fn ends(w: &mut [f64], first: f64, middle: f64, last: f64) {
    let n = w.len();
    if n == 1 {
        w[0] = 1.0;
        return;
    }
    w[0] = first;
    w[n - 1] = last;
    if n > 2 {
        for x in &mut w[1..n - 1] {
            *x = middle / (n - 2) as f64;
        }
    }
    if w.iter().all(|&x| x == 0.0) {
        // custom(0, m, 0) with two touches: nothing to normalise against; split evenly.
        w.iter_mut().for_each(|x| *x = 1.0);
    }
}

/// Scales `w` to add up to 1; the last positive share takes the rounding residue.
pub(crate) fn normalise(w: &mut [f64]) {
    let total: f64 = w.iter().sum();
    if total <= 0.0 || !total.is_finite() {
        return;
    }
    for x in w.iter_mut() {
        *x /= total;
    }
    if let Some(k) = w.iter().rposition(|&x| x > 0.0) {
        let before: f64 = w[..k].iter().sum();
        w[k] = 1.0 - before;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000_000;

    fn touches(n: usize) -> Vec<Touch> {
        (0..n).map(|k| Touch { t: k as i64 * DAY, direct: false, milestones: 0 }).collect()
    }

    fn approx(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12)
    }

    #[test]
    fn position_models_and_small_n() {
        let cases: [(Model, usize, &[f64]); 12] = [
            (POSITION_BASED, 1, &[1.0]),
            (POSITION_BASED, 2, &[0.5, 0.5]),
            (POSITION_BASED, 3, &[0.4, 0.2, 0.4]),
            (POSITION_BASED, 4, &[0.4, 0.1, 0.1, 0.4]),
            (J_SHAPED, 2, &[0.25, 0.75]),
            (J_SHAPED, 3, &[0.2, 0.2, 0.6]),
            (INVERSE_J, 2, &[0.75, 0.25]),
            (INVERSE_J, 4, &[0.6, 0.1, 0.1, 0.2]),
            (Model::Linear, 4, &[0.25, 0.25, 0.25, 0.25]),
            (Model::FirstTouch, 3, &[1.0, 0.0, 0.0]),
            (Model::LastTouch, 3, &[0.0, 0.0, 1.0]),
            (Model::Ends(1.0, 0.0, 3.0), 3, &[0.25, 0.0, 0.75]),
        ];
        for (model, n, want) in cases {
            let got = shares(model, &touches(n), (n as i64) * DAY).shares;
            assert!(approx(&got, want), "{model:?} n={n}: {got:?}");
        }
        assert!(shares(POSITION_BASED, &[], 0).shares.is_empty());
    }

    #[test]
    fn last_non_direct_skips_the_direct_call() {
        // Organic search, paid ad, live chat (direct), phone call (direct) that closes.
        let mut t = touches(4);
        t[2].direct = true;
        t[3].direct = true;
        assert_eq!(shares(Model::LastNonDirect, &t, 4 * DAY).shares, vec![0.0, 1.0, 0.0, 0.0]);
        t.iter_mut().for_each(|x| x.direct = true);
        assert_eq!(shares(Model::LastNonDirect, &t, 4 * DAY).shares, vec![0.0, 0.0, 0.0, 1.0]);
    }

    #[test]
    fn time_decay_halves_every_half_life_back_from_the_conversion() {
        // Touches 14, 7 and 0 days before the conversion: weights 1/4, 1/2, 1 -> 1/7, 2/7, 4/7.
        let conv = 14 * DAY;
        let t: Vec<Touch> = [0, 7, 14].iter().map(|d| Touch { t: d * DAY, direct: false, milestones: 0 }).collect();
        let got = shares(Model::TimeDecay(7 * DAY), &t, conv).shares;
        assert!(approx(&got, &[1.0 / 7.0, 2.0 / 7.0, 4.0 / 7.0]), "{got:?}");
        // Touches long before the conversion underflow; the newest still takes everything.
        let got = shares(Model::TimeDecay(1), &t, conv + 10_000_000 * DAY).shares;
        assert_eq!(got, vec![0.0, 0.0, 1.0]);
    }

    #[test]
    fn milestone_models() {
        // first, lead, middle, opportunity, last (closed won).
        let mut t = touches(5);
        t[1].milestones = LEAD;
        t[3].milestones = OPPORTUNITY;
        let w = shares(Model::WShaped, &t, 5 * DAY);
        assert!(!w.fallback);
        assert!(approx(&w.shares, &[0.3, 0.3, 0.05, 0.3, 0.05]), "{:?}", w.shares);
        let f = shares(Model::FullPath, &t, 5 * DAY);
        assert!(approx(&f.shares, &[0.225, 0.225, 0.1, 0.225, 0.225]), "{:?}", f.shares);
        // Coinciding milestones sum on one touch; no other touches: the rest is shared in
        // proportion (0.6 / 0.3 -> 2/3, 1/3).
        let mut t = touches(2);
        t[0].milestones = LEAD;
        t[1].milestones = OPPORTUNITY;
        let w = shares(Model::WShaped, &t, 2 * DAY);
        assert!(approx(&w.shares, &[2.0 / 3.0, 1.0 / 3.0]), "{:?}", w.shares);
        let one = [Touch { t: 0, direct: false, milestones: LEAD | OPPORTUNITY }];
        assert_eq!(shares(Model::FullPath, &one, DAY).shares, vec![1.0]);
        // A missing opportunity: position-based, reported.
        let mut t = touches(3);
        t[1].milestones = LEAD;
        let w = shares(Model::WShaped, &t, 3 * DAY);
        assert!(w.fallback);
        assert!(approx(&w.shares, &[0.4, 0.2, 0.4]));
    }

    #[test]
    fn shares_add_up_to_exactly_one_in_touch_order() {
        let mut rng = crate::common::test_rng::TestRng(0x2545_f491_4f6c_dd1d);
        let mut next = |n: u64| rng.next(n);
        let models = [
            Model::FirstTouch,
            Model::LastTouch,
            Model::LastNonDirect,
            Model::Linear,
            POSITION_BASED,
            J_SHAPED,
            INVERSE_J,
            Model::Ends(0.7, 0.13, 0.01),
            Model::TimeDecay(DEFAULT_HALF_LIFE_MICROS),
            Model::TimeDecay(3_600_000_000),
            Model::WShaped,
            Model::FullPath,
        ];
        for _ in 0..5000 {
            let n = 1 + next(40) as usize;
            let mut t: Vec<Touch> = (0..n)
                .map(|_| Touch {
                    t: next(90) as i64 * DAY + next(86_400) as i64 * 1_000_000,
                    direct: next(3) == 0,
                    milestones: 0,
                })
                .collect();
            t.sort_by_key(|x| x.t);
            if next(2) == 0 {
                let i = next(n as u64) as usize;
                t[i].milestones |= LEAD;
                let j = i + next((n - i) as u64) as usize;
                t[j].milestones |= OPPORTUNITY;
            }
            let conv = t[n - 1].t + next(5 * 86_400) as i64 * 1_000_000;
            for m in models {
                let s = shares(m, &t, conv).shares;
                let total = s.iter().fold(0.0, |acc, x| acc + x);
                assert_eq!(total, 1.0, "{m:?} {s:?}");
                assert!(s.iter().all(|&x| (0.0..=1.0).contains(&x)), "{m:?} {s:?}");
            }
        }
    }
}
