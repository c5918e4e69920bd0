//! A metric's samples over time: per time bucket (hour, day, ISO week, month: the engine's
//! [`TimeBucket`]), count, mean, sample standard deviation, min, max and percentiles.
//!
//! Percentiles follow the engine's definition, PostgreSQL's `percentile_cont` (see
//! [`crate::engine::Measure::Quantile`]). The engine's implementation works on its own
//! order-keyed columns and is private to it, so [`percentile_cont`] here is the one for
//! plain sorted values; both are tested against the same worked examples.

use serde::{Deserialize, Serialize};

use crate::engine::TimeBucket;

/// The percentiles every bucket carries, in [`BucketStats::percentiles`] order.
pub const PERCENTILES: [f64; 4] = [0.5, 0.9, 0.95, 0.99];

/// The statistics of one bucket. Every statistic is `None` for an empty bucket, and the
/// standard deviation also for a bucket of one sample.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BucketStats {
    /// First instant of the bucket, epoch ms.
    pub start_ms: i64,
    pub count: u64,
    pub mean: Option<f64>,
    /// Sample standard deviation, sqrt(Σ(x − mean)² / (n − 1)), as InfluxQL's `STDDEV()`.
    pub stddev: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// p50, p90, p95, p99 ([`PERCENTILES`]).
    pub percentiles: [Option<f64>; 4],
}

impl BucketStats {
    pub fn p50(&self) -> Option<f64> {
        self.percentiles[0]
    }

    pub fn p90(&self) -> Option<f64> {
        self.percentiles[1]
    }

    pub fn p95(&self) -> Option<f64> {
        self.percentiles[2]
    }

    pub fn p99(&self) -> Option<f64> {
        self.percentiles[3]
    }
}

/// The samples (`times[i]`, `values[i]`, in any order) per bucket, one entry per bucket from
/// the first sample's to the last one's, empty buckets included. Values that are not finite
/// are left out (they have no place in a mean). No samples, no buckets.
///
/// # Panics
/// If `times` and `values` differ in length.
pub fn bucketed(times: &[i64], values: &[f64], bucket: TimeBucket) -> Vec<BucketStats> {
    assert_eq!(times.len(), values.len(), "one time per value");
    let present = || times.iter().zip(values).filter(|(_, v)| v.is_finite());
    let Some((first, last)) = present().fold(None, |acc: Option<(i64, i64)>, (&t, _)| {
        let i = bucket.index(t);
        Some(acc.map_or((i, i), |(a, b)| (a.min(i), b.max(i))))
    }) else {
        return Vec::new();
    };
    let mut per: Vec<Vec<f64>> = vec![Vec::new(); (last - first + 1) as usize];
    for (&t, &v) in present() {
        per[(bucket.index(t) - first) as usize].push(v);
    }
    per.into_iter().enumerate().map(|(i, mut xs)| stats(bucket.start_ms(first + i as i64), &mut xs)).collect()
}

/// The statistics of the values `xs` (reordered) of a bucket starting at `start_ms`.
pub fn stats(start_ms: i64, xs: &mut [f64]) -> BucketStats {
    let n = xs.len();
    if n == 0 {
        return BucketStats {
            start_ms,
            count: 0,
            mean: None,
            stddev: None,
            min: None,
            max: None,
            percentiles: [None; 4],
        };
    }
    xs.sort_unstable_by(f64::total_cmp);
    let mean = xs.iter().sum::<f64>() / n as f64;
    let stddev =
        (n > 1).then(|| (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt());
    BucketStats {
        start_ms,
        count: n as u64,
        mean: finite(mean),
        stddev: stddev.and_then(finite),
        min: Some(xs[0]),
        max: Some(xs[n - 1]),
        percentiles: PERCENTILES.map(|p| percentile_cont(xs, p)),
    }
}

/// The p-quantile of ascending `sorted` values by PostgreSQL's `percentile_cont`: with n
/// values, the value at rank h = p·(n − 1), interpolated linearly between x[⌊h⌋] and
/// x[⌊h⌋ + 1]. `None` for no values or p outside [0, 1].
pub fn percentile_cont(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() || !(0.0..=1.0).contains(&p) {
        return None;
    }
    let h = p * (sorted.len() - 1) as f64;
    let lo = h.floor() as usize;
    let frac = h - lo as f64;
    let a = sorted[lo];
    Some(if frac > 0.0 { a + frac * (sorted[lo + 1] - a) } else { a })
}

/// A sensible bucket for a range of `span_ms`: hours up to two days, days up to ~four
/// months, weeks beyond, so a chart has between a few and a few hundred points.
pub fn auto_bucket(span_ms: i64) -> TimeBucket {
    const DAY: i64 = 86_400_000;
    if span_ms <= 2 * DAY {
        TimeBucket::Hour
    } else if span_ms <= 120 * DAY {
        TimeBucket::Day
    } else {
        TimeBucket::Week
    }
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;
    const DAY: i64 = 24 * HOUR;
    /// 2024-03-04T00:00:00Z, a Monday.
    const MONDAY: i64 = 1_709_510_400_000;

    fn close(a: Option<f64>, b: Option<f64>) -> bool {
        match (a, b) {
            (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0),
            (a, b) => a == b,
        }
    }

    /// Sorting and indexing, written out independently of `percentile_cont`.
    fn reference_quantile(xs: &[f64], p: f64) -> Option<f64> {
        let mut s = xs.to_vec();
        s.sort_by(|a, b| a.partial_cmp(b).unwrap());
        if s.is_empty() {
            return None;
        }
        let rank = p * (s.len() as f64 - 1.0);
        let below = rank.floor() as usize;
        let above = rank.ceil() as usize;
        Some(s[below] + (rank - below as f64) * (s[above] - s[below]))
    }

    fn check(xs: &[f64]) {
        let got = stats(0, &mut xs.to_vec());
        let n = xs.len() as f64;
        let mean = (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / n);
        let var = (xs.len() > 1).then(|| {
            let m = mean.unwrap();
            xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0)
        });
        assert_eq!(got.count, xs.len() as u64);
        assert!(close(got.mean, mean), "{got:?}");
        assert!(close(got.stddev, var.map(f64::sqrt)), "{got:?}");
        assert_eq!(got.min, xs.iter().copied().reduce(f64::min));
        assert_eq!(got.max, xs.iter().copied().reduce(f64::max));
        for (i, p) in PERCENTILES.into_iter().enumerate() {
            assert!(close(got.percentiles[i], reference_quantile(xs, p)), "p{p}: {got:?}");
        }
    }

    #[test]
    fn statistics_match_the_reference() {
        check(&[]);
        check(&[42.0]);
        check(&[1.0, 2.0]);
        check(&[3.0, 1.0, 2.0, 10.0, -4.5]);
        check(&(0..1000).map(|i| ((i * 7919) % 1000) as f64 / 3.0).collect::<Vec<_>>());
    }

    #[test]
    fn empty_and_single_sample_buckets() {
        let one = stats(5, &mut [7.0]);
        assert_eq!(
            (one.count, one.mean, one.stddev, one.min, one.max),
            (1, Some(7.0), None, Some(7.0), Some(7.0))
        );
        assert_eq!(one.percentiles, [Some(7.0); 4]);
        let none = stats(5, &mut []);
        assert_eq!((none.count, none.mean, none.min, none.percentiles), (0, None, None, [None; 4]));
    }

    #[test]
    fn percentile_cont_worked_examples() {
        // SELECT percentile_cont(p) WITHIN GROUP (ORDER BY x) FROM (VALUES (1),(2),(3),(4)):
        let xs = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile_cont(&xs, 0.5), Some(2.5));
        assert_eq!(percentile_cont(&xs, 0.9), Some(3.7));
        assert_eq!(percentile_cont(&xs, 0.0), Some(1.0));
        assert_eq!(percentile_cont(&xs, 1.0), Some(4.0));
        assert_eq!(percentile_cont(&xs, 1.5), None);
        assert_eq!(percentile_cont(&[], 0.5), None);
    }

    #[test]
    fn buckets_span_first_to_last_with_gaps() {
        let times = [MONDAY + 2 * DAY + 5, MONDAY + 30 * 60_000, MONDAY + HOUR, MONDAY + 2 * DAY];
        let values = [4.0, 1.0, 2.0, f64::NAN];
        let days = bucketed(&times, &values, TimeBucket::Day);
        assert_eq!(
            days.iter().map(|b| (b.start_ms, b.count)).collect::<Vec<_>>(),
            [(MONDAY, 2), (MONDAY + DAY, 0), (MONDAY + 2 * DAY, 1)]
        );
        assert_eq!(days[0].mean, Some(1.5));
        assert_eq!(days[1].mean, None);
        let weeks = bucketed(&times, &values, TimeBucket::Week);
        assert_eq!(weeks.len(), 1);
        assert_eq!((weeks[0].start_ms, weeks[0].count, weeks[0].p50()), (MONDAY, 3, Some(2.0)));
        let hours = bucketed(&times, &values, TimeBucket::Hour);
        assert_eq!(hours.len(), 49);
        assert!(bucketed(&[], &[], TimeBucket::Day).is_empty());
        assert!(bucketed(&[1], &[f64::INFINITY], TimeBucket::Day).is_empty());
    }

    #[test]
    fn auto_bucket_by_span() {
        assert_eq!(auto_bucket(DAY), TimeBucket::Hour);
        assert_eq!(auto_bucket(30 * DAY), TimeBucket::Day);
        assert_eq!(auto_bucket(365 * DAY), TimeBucket::Week);
    }
}
