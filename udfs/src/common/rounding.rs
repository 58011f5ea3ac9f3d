//! Exact splits of integer totals: credits in integer units that add up to exactly what is
//! split (the attribution report's conversions and cents).

/// Splits `total` over `shares` (adding up to 1 in order): the last positive share takes the
/// remainder, so the parts add up to exactly `total`.
pub fn split(shares: &[f64], total: i128, mut out: impl FnMut(usize, i128)) {
    let Some(last) = shares.iter().rposition(|&s| s > 0.0) else { return };
    let mut given = 0i128;
    for (i, &s) in shares.iter().enumerate().take(last) {
        let part = (s * total as f64).floor() as i128;
        if part != 0 {
            out(i, part);
            given += part;
        }
    }
    out(last, total - given);
}

/// Rounds `units` (whose sum is a multiple of `factor`) to multiples of `factor`, keeping the
/// sum exact: each value rounded down, the remainder handed out one by one by largest
/// fractional part (ties by index).
pub fn round_units(units: &[i128], factor: i128) -> Vec<i128> {
    let mut out: Vec<i128> = units.iter().map(|u| u.div_euclid(factor)).collect();
    let total = units.iter().sum::<i128>().div_euclid(factor);
    let given: i128 = out.iter().sum();
    let mut rest: Vec<(i128, usize)> = units.iter().enumerate().map(|(i, u)| (u.rem_euclid(factor), i)).collect();
    rest.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, i) in rest.iter().take((total - given).max(0) as usize) {
        out[i] += 1;
    }
    out
}

/// Splits `total` in proportion to non-negative `weights`: each part rounded toward zero, the
/// remainder handed out one unit at a time by largest fractional part (ties by index).
pub fn largest_remainder(weights: &[i128], total: i128) -> Vec<i128> {
    if total < 0 {
        return largest_remainder(weights, -total).into_iter().map(|x| -x).collect();
    }
    let sum: i128 = weights.iter().map(|&w| w.max(0)).sum();
    let mut out = vec![0i128; weights.len()];
    if sum <= 0 || total == 0 {
        return out;
    }
    let mut rest: Vec<(i128, usize)> = vec![];
    let mut given = 0i128;
    for (i, &w) in weights.iter().enumerate() {
        let w = w.max(0);
        // w * total may not fit for huge totals: split total into quotient and remainder.
        let (q, r) = (total / sum, total % sum);
        let part = w * q + (w * r) / sum;
        let frac = (w * r) % sum;
        out[i] = part;
        given += part;
        rest.push((frac, i));
    }
    rest.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, i) in rest.iter().take((total - given) as usize) {
        out[i] += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largest_remainder_adds_up_exactly() {
        assert_eq!(largest_remainder(&[1, 1, 1], 100), vec![34, 33, 33]);
        assert_eq!(largest_remainder(&[2, 1], 10), vec![7, 3]);
        assert_eq!(largest_remainder(&[0, 0], 10), vec![0, 0]);
        assert_eq!(largest_remainder(&[5, 0, 5], 3), vec![2, 0, 1]);
        let mut rng = crate::common::test_rng::TestRng(0x1234_5678_9abc_def1);
        for _ in 0..1000 {
            let w: Vec<i128> = (0..1 + rng.next(8)).map(|_| rng.next(1 << 40) as i128 * 1_000_000_000).collect();
            let total = rng.next(1 << 50) as i128;
            let parts = largest_remainder(&w, total);
            if w.iter().any(|&x| x > 0) {
                assert_eq!(parts.iter().sum::<i128>(), total);
            }
        }
    }

    #[test]
    fn rounding_keeps_the_sum() {
        assert_eq!(round_units(&[150, 150, 700], 100), vec![2, 1, 7]);
        assert_eq!(round_units(&[-150, 350], 100), vec![-1, 3]);
    }

    #[test]
    fn split_gives_the_remainder_to_the_last_positive_share() {
        let mut got = vec![];
        split(&[1.0 / 3.0, 1.0 / 3.0, 1.0 - 2.0 / 3.0, 0.0], 100, |i, c| got.push((i, c)));
        assert_eq!(got, vec![(0, 33), (1, 33), (2, 34)]);
    }
}
