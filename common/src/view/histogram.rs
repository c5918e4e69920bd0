//! The histogram view: the distribution of one value over the selected jobs, in bins with
//! round edges (1, 2 or 5 × a power of ten wide).

use super::{RangeFilter, ViewState};
use crate::engine::Value;

/// Bin `i` holds values in `[edges[i], edges[i + 1])`; the last bin includes its upper edge.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    pub edges: Vec<f64>,
    pub counts: Vec<u64>,
    /// Selected jobs without the value (not run, not reported).
    pub missing: u64,
}

impl Histogram {
    /// Bins `values` (NaN: missing) into about `bins` bins.
    pub fn new(values: &[f64], bins: usize) -> Histogram {
        let bins = bins.max(1);
        let (mut min, mut max, mut missing) = (f64::INFINITY, f64::NEG_INFINITY, 0u64);
        for &v in values {
            if v.is_nan() {
                missing += 1;
            } else {
                min = min.min(v);
                max = max.max(v);
            }
        }
        if min > max {
            return Histogram { edges: Vec::new(), counts: Vec::new(), missing };
        }
        let span = max - min;
        let step =
            if span > 0.0 { nice_step(span / bins as f64) } else { nice_step(min.abs().max(1.0) / 10.0) };
        let start = (min / step).floor() * step;
        let n = (((max - start) / step).floor() as usize + 1).max(1);
        let edges: Vec<f64> = (0..=n).map(|i| start + i as f64 * step).collect();
        let mut counts = vec![0u64; n];
        for &v in values.iter().filter(|v| !v.is_nan()) {
            // Float rounding can put a value a hair on the wrong side of an edge: settle it
            // against the edges themselves, so drilling into a bin finds exactly its jobs.
            let mut i = (((v - start) / step) as usize).min(n - 1);
            while i > 0 && v < edges[i] {
                i -= 1;
            }
            while i + 1 < n && v >= edges[i + 1] {
                i += 1;
            }
            counts[i] += 1;
        }
        // The top edge holds the maximum only when it falls in the last bin.
        Histogram { edges, counts, missing }
    }

    /// The range filter that selects exactly bin `i`'s jobs (bounds are inclusive, so the
    /// upper one is the float just below the next edge, except for the last bin).
    pub fn bin_range(&self, value: &Value, i: usize) -> RangeFilter {
        let last = i + 1 == self.counts.len();
        let max = if last { self.edges[i + 1] } else { next_down(self.edges[i + 1]) };
        RangeFilter { value: value.clone(), min: Some(self.edges[i]), max: Some(max) }
    }
}

impl ViewState {
    /// This view narrowed to histogram bin `i` of `value` and shown as the job list.
    pub fn drill_into_bin(&self, histogram: &Histogram, value: &Value, i: usize) -> ViewState {
        let mut view = self.clone();
        let range = histogram.bin_range(value, i);
        view.ranges.retain(|r| r.value != range.value);
        let at = view.ranges.partition_point(|r| r.value < range.value);
        view.ranges.insert(at, range);
        view.view = super::ViewKind::Jobs;
        view.page = 1;
        view.sort = None;
        view
    }
}

/// 1, 2 or 5 × 10^k, the smallest not below `raw`.
fn nice_step(raw: f64) -> f64 {
    let raw = if raw.is_finite() && raw > 0.0 { raw } else { 1.0 };
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|s| *s >= raw * (1.0 - 1e-12))
        .unwrap_or(10.0 * power)
}

/// The largest float below `x`.
fn next_down(x: f64) -> f64 {
    if x.is_nan() || x == f64::NEG_INFINITY {
        return x;
    }
    if x == 0.0 {
        return -f64::from_bits(1);
    }
    let bits = x.to_bits();
    f64::from_bits(if x > 0.0 { bits - 1 } else { bits + 1 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bins_have_round_edges_and_count_every_value_once() {
        let h = Histogram::new(&[0.0, 1.0, 9.9, 10.0, 55.0, f64::NAN], 10);
        assert_eq!(h.edges.first(), Some(&0.0));
        assert_eq!(h.edges[1] - h.edges[0], 10.0);
        assert_eq!(h.counts, [3, 1, 0, 0, 0, 1]);
        assert_eq!(h.missing, 1);
        let one = Histogram::new(&[42.0, 42.0], 20);
        assert_eq!(one.counts.iter().sum::<u64>(), 2);
        assert!(one.edges[0] <= 42.0 && 42.0 < one.edges[1]);
        let none = Histogram::new(&[f64::NAN], 5);
        assert!(none.counts.is_empty() && none.missing == 1);
        assert_eq!(nice_step(0.3), 0.5);
        assert_eq!(nice_step(7.0), 10.0);
        assert_eq!(nice_step(2.0), 2.0);
    }

    proptest! {
        /// Each bin's range filter holds exactly the bin's values.
        #[test]
        fn bin_ranges_select_exactly_the_bin(values in prop::collection::vec(
            prop_oneof![-1e6..1e6f64, 0.0..10.0f64, Just(3.0), Just(f64::NAN)], 0..200),
            bins in 1..40usize,
        ) {
            let h = Histogram::new(&values, bins);
            let present = values.iter().filter(|v| !v.is_nan()).count() as u64;
            prop_assert_eq!(h.counts.iter().sum::<u64>(), present);
            prop_assert_eq!(h.missing + present, values.len() as u64);
            prop_assert!(h.counts.len() <= bins + 2 || present == 0, "{} bins for {}", h.counts.len(), bins);
            for i in 0..h.counts.len() {
                let r = h.bin_range(&Value::Duration, i);
                let (lo, hi) = (r.min.unwrap(), r.max.unwrap());
                let n = values.iter().filter(|v| **v >= lo && **v <= hi).count() as u64;
                prop_assert_eq!(n, h.counts[i], "bin {} [{}, {}]", i, lo, hi);
            }
        }
    }
}
