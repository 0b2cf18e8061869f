//! Pure statistics over samples of `f64`: mean, standard deviation, coefficient of
//! variation, percentiles, empirical CDF, Jain's fairness index and the two-sample
//! Kolmogorov–Smirnov distance. Each returns `None` where the value is undefined (no
//! samples, a zero mean) instead of a NaN.
//!
//! Mean, standard deviation and percentiles come from `statrs`. The rest is written here
//! because `statrs` has no Jain's index, no two-sample KS statistic, and its empirical
//! distribution answers `cdf(x)` point by point while the charts need the steps; each is a
//! few lines over a sorted slice.
//!
//! Conventions:
//! - The standard deviation is the *population* one (divide by n): the processes of a run
//!   are the whole population, not a sample of it. With it Jain's index and the
//!   coefficient of variation are tied by `J = 1 / (1 + CV²)`.
//! - Percentiles use Hyndman and Fan's rule 8 (median-unbiased, what `statrs` implements,
//!   R's `quantile(type = 8)`): for `n` sorted values and `p` in `[0, 1]`, the position is
//!   `h = (n + 1/3) p + 1/3`; the result interpolates linearly between the `⌊h⌋`-th and
//!   `⌊h⌋+1`-th values (1-based) and is clamped to the minimum and maximum.

use serde::Serialize;
use statrs::statistics::{Data, Max, Min, OrderStatistics, Statistics};

/// Arithmetic mean.
pub fn mean(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.mean())
}

/// Population standard deviation (divides by n).
pub fn std_dev(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.population_std_dev())
}

/// Coefficient of variation: population standard deviation over the mean.
pub fn coefficient_of_variation(xs: &[f64]) -> Option<f64> {
    let mean = mean(xs)?;
    (mean != 0.0).then(|| std_dev(xs).unwrap_or(0.0) / mean)
}

/// The `p`-th percentile (`p` in 0..=100) by rule 8 (see the module comment).
pub fn percentile(xs: &[f64], p: f64) -> Option<f64> {
    if xs.is_empty() || !(0.0..=100.0).contains(&p) {
        return None;
    }
    Some(Data::new(xs.to_vec()).quantile(p / 100.0))
}

/// Jain's fairness index `(Σx)² / (n Σx²)`: 1 when all values are equal, `1/n` when one
/// value holds everything.
pub fn jain_index(xs: &[f64]) -> Option<f64> {
    let sum: f64 = xs.iter().sum();
    let sum_sq: f64 = xs.iter().map(|x| x * x).sum();
    (sum_sq > 0.0).then(|| sum * sum / (xs.len() as f64 * sum_sq))
}

/// Empirical CDF as its steps: each distinct value, ascending, with the fraction of
/// samples at or below it.
pub fn ecdf(xs: &[f64]) -> Vec<(f64, f64)> {
    let sorted = sorted(xs);
    let n = sorted.len() as f64;
    let mut steps: Vec<(f64, f64)> = Vec::new();
    for (i, &x) in sorted.iter().enumerate() {
        let fraction = (i + 1) as f64 / n;
        match steps.last_mut() {
            Some(last) if last.0 == x => last.1 = fraction,
            _ => steps.push((x, fraction)),
        }
    }
    steps
}

/// `times` completed out of `processes`, with one infinite time per process that did not
/// complete: the sample a distance between runs is measured on, so that processes that
/// fail or never finish count as drift instead of making a run look faster.
pub fn censored(times: &[f64], processes: usize) -> Vec<f64> {
    let mut xs = times.to_vec();
    xs.resize(processes.max(times.len()), f64::INFINITY);
    xs
}

/// Two-sample Kolmogorov–Smirnov distance: the largest vertical gap between the two
/// empirical CDFs, in `[0, 1]`.
pub fn ks_distance(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let (a, b) = (sorted(a), sorted(b));
    let (n, m) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j, mut distance) = (0, 0, 0.0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        distance = distance.max((i as f64 / n - j as f64 / m).abs());
    }
    Some(distance)
}

/// The usual figures of one sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Distribution {
    pub n: usize,
    pub mean: f64,
    pub stddev: f64,
    /// Coefficient of variation; `None` when the mean is 0.
    pub cv: Option<f64>,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// Describes `xs`; `None` when it is empty.
pub fn describe(xs: &[f64]) -> Option<Distribution> {
    let mut data = Data::new(xs.to_vec());
    Some(Distribution {
        n: xs.len(),
        mean: mean(xs)?,
        stddev: std_dev(xs)?,
        cv: coefficient_of_variation(xs),
        min: data.min(),
        p50: data.quantile(0.5),
        p90: data.quantile(0.9),
        p99: data.quantile(0.99),
        max: data.max(),
    })
}

fn sorted(xs: &[f64]) -> Vec<f64> {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    const XS: [f64; 8] = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
    const ONE_TO_TEN: [f64; 10] = [3.0, 1.0, 2.0, 10.0, 4.0, 5.0, 6.0, 9.0, 7.0, 8.0];

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    #[test]
    fn mean_stddev_and_cv_by_hand() {
        // Σ = 40, n = 8; squared deviations 9+1+1+1+0+0+4+16 = 32, /8 = 4.
        close(mean(&XS).unwrap(), 5.0);
        close(std_dev(&XS).unwrap(), 2.0);
        close(coefficient_of_variation(&XS).unwrap(), 0.4);
        close(std_dev(&[3.0]).unwrap(), 0.0);
        assert_eq!(mean(&[]), None);
        assert_eq!(std_dev(&[]), None);
        assert_eq!(coefficient_of_variation(&[0.0, 0.0]), None);
    }

    #[test]
    fn percentiles_follow_rule_8() {
        // n = 10: p50 at h = 5.5, p90 at h = 9.6333.., p10 at h = 1.3666.., p99 beyond n.
        close(percentile(&ONE_TO_TEN, 50.0).unwrap(), 5.5);
        close(percentile(&ONE_TO_TEN, 90.0).unwrap(), 9.0 + 19.0 / 30.0);
        close(percentile(&ONE_TO_TEN, 10.0).unwrap(), 1.0 + 11.0 / 30.0);
        close(percentile(&ONE_TO_TEN, 99.0).unwrap(), 10.0);
        close(percentile(&ONE_TO_TEN, 0.0).unwrap(), 1.0);
        close(percentile(&[1.0, 2.0, 3.0], 50.0).unwrap(), 2.0);
        close(percentile(&[7.0], 90.0).unwrap(), 7.0);
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&ONE_TO_TEN, 101.0), None);
        assert_eq!(percentile(&ONE_TO_TEN, -1.0), None);
        close(percentile(&ONE_TO_TEN, 100.0).unwrap(), 10.0);
    }

    #[test]
    fn high_percentiles_differ_on_a_hundred_values() {
        // n = 100: h = (100 + 1/3) p + 1/3, so p95 sits at 95.65 and p99 at 99.6633..
        let xs = one_to_hundred();
        close(percentile(&xs, 95.0).unwrap(), 95.65);
        close(percentile(&xs, 99.0).unwrap(), 99.0 + 199.0 / 300.0);
        close(percentile(&xs, 90.0).unwrap(), 90.0 + 19.0 / 30.0);
    }

    #[test]
    fn jain_index_by_hand() {
        // (Σx)² = 1600, Σx² = 232: 1600 / (8 · 232), the same division the index makes.
        assert_eq!(jain_index(&XS), Some(1600.0 / 1856.0));
        // Tied to the population CV: 1 / (1 + 0.4²).
        close(jain_index(&XS).unwrap(), 1.0 / 1.16);
        assert_eq!(jain_index(&[3.0, 3.0, 3.0]), Some(1.0));
        assert_eq!(jain_index(&[1.0, 0.0, 0.0, 0.0]), Some(0.25));
        // 3² / (4 · 3) and 4² / (2 · 10): both exact in binary.
        assert_eq!(jain_index(&[1.0, 1.0, 1.0, 0.0]), Some(0.75));
        assert_eq!(jain_index(&[1.0, 3.0]), Some(0.8));
        assert_eq!(jain_index(&[]), None);
        assert_eq!(jain_index(&[0.0]), None);
    }

    #[test]
    fn ecdf_steps_merge_ties() {
        assert_eq!(
            ecdf(&[3.0, 1.0, 3.0, 2.0]),
            [(1.0, 0.25), (2.0, 0.5), (3.0, 1.0)]
        );
        assert!(ecdf(&[]).is_empty());
    }

    #[test]
    fn ks_distance_by_hand() {
        // F_a - F_b at 1, 2, 3, 4: 1/3, 1/3, 1/3, 0.
        close(
            ks_distance(&[1.0, 2.0, 3.0], &[2.0, 3.0, 4.0]).unwrap(),
            1.0 / 3.0,
        );
        close(ks_distance(&[2.0, 1.0], &[3.0, 4.0]).unwrap(), 1.0);
        // The same with the second sample used up first.
        close(ks_distance(&[3.0, 4.0], &[2.0, 1.0]).unwrap(), 1.0);
        close(
            ks_distance(&[2.0, 3.0, 4.0], &[1.0, 2.0, 3.0]).unwrap(),
            1.0 / 3.0,
        );
        close(ks_distance(&ONE_TO_TEN, &ONE_TO_TEN).unwrap(), 0.0);
        // Ties: at 1, 2/3 vs 1/3; at 2, 1 vs 1.
        close(
            ks_distance(&[1.0, 1.0, 2.0], &[1.0, 2.0, 2.0]).unwrap(),
            1.0 / 3.0,
        );
        // Different sizes: a = {1}, b = {1, 2, 3, 4}: at 1, 1 vs 1/4.
        close(ks_distance(&[1.0], &[1.0, 2.0, 3.0, 4.0]).unwrap(), 0.75);
        assert_eq!(ks_distance(&[], &[1.0]), None);
    }

    #[test]
    fn describe_gathers_the_figures() {
        let d = describe(&ONE_TO_TEN).unwrap();
        assert_eq!((d.n, d.min, d.max), (10, 1.0, 10.0));
        close(d.mean, 5.5);
        close(d.p50, 5.5);
        close(d.p90, 9.0 + 19.0 / 30.0);
        close(d.p99, 10.0);
        close(d.stddev, 8.25f64.sqrt());
        close(d.cv.unwrap(), 8.25f64.sqrt() / 5.5);
        assert_eq!(describe(&[]), None);
    }

    #[test]
    fn describe_reads_p99_where_it_differs_from_p95() {
        let d = describe(&one_to_hundred()).unwrap();
        assert_eq!((d.n, d.min, d.max), (100, 1.0, 100.0));
        close(d.mean, 50.5);
        // Rule 8: p50 at h = 50.5, p90 at 90.6333.., p99 at 99.6633.. (p95 would be 95.65).
        close(d.p50, 50.5);
        close(d.p90, 90.0 + 19.0 / 30.0);
        close(d.p99, 99.0 + 199.0 / 300.0);
    }

    /// 1, 2, .., 100, shuffled so that sorting is part of what is checked.
    fn one_to_hundred() -> Vec<f64> {
        (0..100).map(|i| ((i * 37) % 100 + 1) as f64).collect()
    }
}
