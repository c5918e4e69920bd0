//! Downsampling of chart series, so no series handed to ECharts grows past a few thousand
//! points however many buckets or jobs lie behind it.
//!
//! Two methods, for two kinds of series:
//! - [`lttb`] (Largest-Triangle-Three-Buckets, Steinarsson 2013) keeps the points that shape
//!   a line: the first and last, and from each bucket the point forming the largest
//!   triangle with the previous kept point and the next bucket's mean.
//! - [`min_max`] keeps each bin's lowest and highest point, so spikes (a queue-time
//!   outlier, a failing day) survive; it suits scatter-like or spiky series.
//!
//! Both return points in input order, always include the first and last point, and return
//! the input unchanged when it already fits.

/// A chart point: x (usually epoch ms) and y.
pub type Point = (f64, f64);

/// At most `threshold` points of `points` (sorted by x) chosen by LTTB. A threshold below 3
/// keeps only the end points.
pub fn lttb(points: &[Point], threshold: usize) -> Vec<Point> {
    let n = points.len();
    if n <= threshold || n <= 2 {
        return points.to_vec();
    }
    if threshold < 3 {
        return vec![points[0], points[n - 1]];
    }
    let mut kept = Vec::with_capacity(threshold);
    kept.push(points[0]);
    // The interior points, split into threshold − 2 buckets of (nearly) equal size.
    let every = (n - 2) as f64 / (threshold - 2) as f64;
    let bucket = |i: usize| {
        let start = 1 + (i as f64 * every) as usize;
        let end = (1 + ((i + 1) as f64 * every) as usize).min(n - 1);
        start..end
    };
    let mut previous = points[0];
    for i in 0..threshold - 2 {
        let next = if i + 1 < threshold - 2 { bucket(i + 1) } else { n - 1..n };
        let (mean_x, mean_y) = mean(&points[next]);
        let mut best = None;
        let mut best_area = -1.0;
        for &p in &points[bucket(i)] {
            let area = ((previous.0 - mean_x) * (p.1 - previous.1)
                - (previous.0 - p.0) * (mean_y - previous.1))
                .abs();
            if area > best_area {
                best_area = area;
                best = Some(p);
            }
        }
        if let Some(p) = best {
            kept.push(p);
            previous = p;
        }
    }
    kept.push(points[n - 1]);
    kept
}

/// At most `threshold` points of `points` (sorted by x): the lowest and highest y of each of
/// `threshold / 2` equal-count bins, in x order.
pub fn min_max(points: &[Point], threshold: usize) -> Vec<Point> {
    let n = points.len();
    if n <= threshold || n <= 2 {
        return points.to_vec();
    }
    let bins = (threshold / 2).max(1);
    let mut kept = Vec::with_capacity(bins * 2);
    for b in 0..bins {
        let bin = &points[b * n / bins..(b + 1) * n / bins];
        let low = bin.iter().enumerate().min_by(|a, b| a.1.1.total_cmp(&b.1.1)).map(|(i, _)| i);
        let high = bin.iter().enumerate().max_by(|a, b| a.1.1.total_cmp(&b.1.1)).map(|(i, _)| i);
        if let (Some(low), Some(high)) = (low, high) {
            let (first, second) = if low <= high { (low, high) } else { (high, low) };
            kept.push(bin[first]);
            if second != first {
                kept.push(bin[second]);
            }
        }
    }
    kept
}

fn mean(points: &[Point]) -> Point {
    let n = points.len().max(1) as f64;
    let (sx, sy) = points.iter().fold((0.0, 0.0), |(sx, sy), p| (sx + p.0, sy + p.1));
    (sx / n, sy / n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(n: usize) -> Vec<Point> {
        // A slow wave with one sharp spike at x = 700.
        (0..n).map(|i| (i as f64, if i == 700 { 100.0 } else { (i as f64 / 50.0).sin() })).collect()
    }

    #[test]
    fn small_series_pass_through() {
        let s = series(10);
        assert_eq!(lttb(&s, 10), s);
        assert_eq!(min_max(&s, 100), s);
        assert_eq!(lttb(&s, 2), vec![s[0], s[9]]);
    }

    #[test]
    fn lttb_keeps_ends_order_and_the_spike() {
        let s = series(10_000);
        let d = lttb(&s, 500);
        assert_eq!(d.len(), 500);
        assert_eq!((d[0], d[499]), (s[0], s[9_999]));
        assert!(d.windows(2).all(|w| w[0].0 < w[1].0), "x order kept");
        assert!(d.contains(&(700.0, 100.0)), "the spike is the largest triangle of its bucket");
    }

    #[test]
    fn min_max_keeps_extremes_of_each_bin() {
        let s = series(10_000);
        let d = min_max(&s, 200);
        assert!(d.len() <= 200, "{}", d.len());
        assert!(d.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(d.contains(&(700.0, 100.0)));
        let lowest = s.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        assert!(d.iter().any(|p| p.1 == lowest));
    }
}
