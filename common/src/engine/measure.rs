//! Per-group measures over a selection: one pass per kind of state (moments, sorted
//! values, result classes, distinct codes), shared by every measure that needs it.
//!
//! Min and max use plain comparisons, never `f64::min`/`f64::max`: their NaN handling
//! compiles to slow code in WASM, and absent values (NaN) are skipped before comparing.

use std::collections::HashMap;

use super::group::Groups;
use crate::job::JobResult;
use crate::table::{JobTable, dim};

/// A measure with its names resolved: values are indices into [`Inputs::values`].
#[derive(Clone, Debug)]
pub(crate) enum Kernel {
    Count,
    SuccessRate,
    FailureRate,
    Failures,
    Distinct(usize),
    Present(usize),
    Sum(usize),
    Mean(usize),
    Min(usize),
    Max(usize),
    StddevPop(usize),
    StddevSamp(usize),
    Quantile(usize, f64),
}

/// Per measure (or per p), the value of each group.
pub(crate) type PerGroup = Vec<Vec<Option<f64>>>;

/// What the kernels read, aligned with the selected rows.
pub(crate) struct Inputs<'a> {
    pub table: &'a JobTable,
    pub rows: &'a [u32],
    /// One gathered column per distinct value the query measures (NaN = absent).
    pub values: Vec<Vec<f64>>,
}

/// Rows per group and each kernel's value per group.
pub(crate) fn compute(inputs: &Inputs, groups: &Groups, kernels: &[Kernel]) -> (Vec<u64>, PerGroup) {
    State::new(inputs, groups, kernels).finish(kernels)
}

/// Whether every kernel's per-group state can be merged from finer groups' states, so
/// subtotals need no second pass over the rows: counts, sums, extremes and rates can;
/// quantiles, distinct counts and deviations cannot.
pub(crate) fn mergeable(kernels: &[Kernel]) -> bool {
    kernels.iter().all(|k| {
        matches!(
            k,
            Kernel::Count
                | Kernel::SuccessRate
                | Kernel::FailureRate
                | Kernel::Failures
                | Kernel::Present(_)
                | Kernel::Sum(_)
                | Kernel::Mean(_)
                | Kernel::Min(_)
                | Kernel::Max(_)
        )
    })
}

/// Everything the kernels need, per group, built in one pass per kind of state.
pub(crate) struct State {
    rows: Vec<u64>,
    moments: HashMap<usize, Moments>,
    /// Per value: the ps asked for, and `[p][group]` results.
    quantiles: HashMap<usize, (Vec<f64>, PerGroup)>,
    classes: Option<Vec<[u64; 3]>>,
    distinct: HashMap<usize, Vec<u64>>,
}

impl State {
    pub fn new(inputs: &Inputs, groups: &Groups, kernels: &[Kernel]) -> Self {
        let n = groups.len();
        let mut rows = vec![0u64; n];
        for &g in &groups.of_row {
            rows[g as usize] += 1;
        }
        let mut state = State {
            rows,
            moments: HashMap::new(),
            quantiles: HashMap::new(),
            classes: None,
            distinct: HashMap::new(),
        };
        let mut quantile_ps: HashMap<usize, Vec<f64>> = HashMap::new();
        for k in kernels {
            match *k {
                Kernel::Present(v) | Kernel::Sum(v) | Kernel::Mean(v) | Kernel::Min(v) | Kernel::Max(v) => {
                    state
                        .moments
                        .entry(v)
                        .or_insert_with(|| Moments::new(&inputs.values[v], &groups.of_row, n));
                }
                Kernel::StddevPop(v) | Kernel::StddevSamp(v) => {
                    let m = state
                        .moments
                        .entry(v)
                        .or_insert_with(|| Moments::new(&inputs.values[v], &groups.of_row, n));
                    if m.m2.is_none() {
                        m.add_spread(&inputs.values[v], &groups.of_row);
                    }
                }
                Kernel::Quantile(v, p) => quantile_ps.entry(v).or_default().push(p),
                Kernel::SuccessRate | Kernel::FailureRate | Kernel::Failures if state.classes.is_none() => {
                    state.classes = Some(result_classes(inputs, groups));
                }
                Kernel::Distinct(d) => {
                    state.distinct.entry(d).or_insert_with(|| distinct(inputs, groups, d));
                }
                _ => {}
            }
        }
        for (v, ps) in quantile_ps {
            let q = grouped_quantiles(&inputs.values[v], &groups.of_row, n, &ps);
            state.quantiles.insert(v, (ps, q));
        }
        state
    }

    /// The state of coarser groups: fine group `g` goes into `map[g]`. Only for
    /// [`mergeable`] kernels.
    pub fn roll_up(&self, map: &[u32], n: usize) -> State {
        let mut rows = vec![0u64; n];
        for (&r, &to) in self.rows.iter().zip(map) {
            rows[to as usize] += r;
        }
        let classes = self.classes.as_ref().map(|fine| {
            let mut c = vec![[0u64; 3]; n];
            for (f, &to) in fine.iter().zip(map) {
                (0..3).for_each(|i| c[to as usize][i] += f[i]);
            }
            c
        });
        let moments = self.moments.iter().map(|(&v, m)| (v, m.roll_up(map, n))).collect();
        State { rows, moments, quantiles: HashMap::new(), classes, distinct: HashMap::new() }
    }

    /// Rows per group and each kernel's value per group.
    pub fn finish(&self, kernels: &[Kernel]) -> (Vec<u64>, PerGroup) {
        let n = self.rows.len();
        let per_group = |f: &dyn Fn(usize) -> Option<f64>| -> Vec<Option<f64>> {
            (0..n).map(|g| f(g).filter(|x| x.is_finite())).collect()
        };
        let out = kernels
            .iter()
            .map(|k| match *k {
                Kernel::Count => self.rows.iter().map(|&c| Some(c as f64)).collect(),
                Kernel::SuccessRate | Kernel::FailureRate => {
                    let c = self.classes.as_ref().expect("classes were counted");
                    let pick = if matches!(k, Kernel::FailureRate) { 2 } else { 1 };
                    per_group(&|g| {
                        let decided = c[g][1] + c[g][2];
                        (decided > 0).then(|| c[g][pick] as f64 / decided as f64)
                    })
                }
                Kernel::Failures => {
                    let c = self.classes.as_ref().expect("classes were counted");
                    c.iter().map(|c| Some(c[2] as f64)).collect()
                }
                Kernel::Distinct(d) => self.distinct[&d].iter().map(|&c| Some(c as f64)).collect(),
                Kernel::Present(v) => self.moments[&v].n.iter().map(|&c| Some(c as f64)).collect(),
                Kernel::Sum(v) => {
                    let m = &self.moments[&v];
                    per_group(&|g| (m.n[g] > 0).then_some(m.sum[g]))
                }
                Kernel::Mean(v) => {
                    let m = &self.moments[&v];
                    per_group(&|g| (m.n[g] > 0).then(|| m.sum[g] / m.n[g] as f64))
                }
                Kernel::Min(v) => {
                    let m = &self.moments[&v];
                    per_group(&|g| (m.n[g] > 0).then_some(m.min[g]))
                }
                Kernel::Max(v) => {
                    let m = &self.moments[&v];
                    per_group(&|g| (m.n[g] > 0).then_some(m.max[g]))
                }
                Kernel::StddevPop(v) | Kernel::StddevSamp(v) => {
                    let m = &self.moments[&v];
                    let m2 = m.m2.as_ref().expect("spread was added");
                    let ddof = u64::from(matches!(k, Kernel::StddevSamp(_)));
                    per_group(&|g| (m.n[g] > ddof).then(|| (m2[g] / (m.n[g] - ddof) as f64).sqrt()))
                }
                Kernel::Quantile(v, p) => {
                    let (ps, q) = &self.quantiles[&v];
                    let i = ps.iter().position(|&x| x.to_bits() == p.to_bits()).expect("p was listed");
                    q[i].iter().map(|x| x.filter(|x| x.is_finite())).collect()
                }
            })
            .collect();
        (self.rows.clone(), out)
    }
}

/// Count, sum, min, max and (on demand) the sum of squared deviations from the mean, per
/// group. The deviations take a second pass rather than a running formula: the two-pass
/// form is the numerically stable one, and the mean it needs is known by then.
struct Moments {
    n: Vec<u64>,
    sum: Vec<f64>,
    min: Vec<f64>,
    max: Vec<f64>,
    m2: Option<Vec<f64>>,
}

impl Moments {
    fn new(values: &[f64], of_row: &[u32], groups: usize) -> Self {
        let mut m = Moments {
            n: vec![0; groups],
            sum: vec![0.0; groups],
            min: vec![f64::INFINITY; groups],
            max: vec![f64::NEG_INFINITY; groups],
            m2: None,
        };
        for (&v, &g) in values.iter().zip(of_row) {
            if v.is_nan() {
                continue;
            }
            let g = g as usize;
            m.n[g] += 1;
            m.sum[g] += v;
            if v < m.min[g] {
                m.min[g] = v;
            }
            if v > m.max[g] {
                m.max[g] = v;
            }
        }
        m
    }

    fn roll_up(&self, map: &[u32], n: usize) -> Moments {
        let mut m = Moments {
            n: vec![0; n],
            sum: vec![0.0; n],
            min: vec![f64::INFINITY; n],
            max: vec![f64::NEG_INFINITY; n],
            m2: None,
        };
        for (g, &to) in map.iter().enumerate() {
            let to = to as usize;
            m.n[to] += self.n[g];
            m.sum[to] += self.sum[g];
            if self.min[g] < m.min[to] {
                m.min[to] = self.min[g];
            }
            if self.max[g] > m.max[to] {
                m.max[to] = self.max[g];
            }
        }
        m
    }

    fn add_spread(&mut self, values: &[f64], of_row: &[u32]) {
        let mean: Vec<f64> = self.sum.iter().zip(&self.n).map(|(&s, &n)| s / n.max(1) as f64).collect();
        let mut m2 = vec![0.0; self.n.len()];
        for (&v, &g) in values.iter().zip(of_row) {
            if !v.is_nan() {
                let d = v - mean[g as usize];
                m2[g as usize] += d * d;
            }
        }
        self.m2 = Some(m2);
    }
}

/// The quantiles `ps` of each group's present values: `[p][group]`. The values are
/// bucketed by group with a counting sort into one buffer of order-preserving integer
/// keys, and each group is partitioned once for all the ps.
fn grouped_quantiles(values: &[f64], of_row: &[u32], groups: usize, ps: &[f64]) -> PerGroup {
    let mut start = vec![0usize; groups + 1];
    for (&v, &g) in values.iter().zip(of_row) {
        start[g as usize + 1] += usize::from(!v.is_nan());
    }
    for g in 0..groups {
        start[g + 1] += start[g];
    }
    let mut next = start.clone();
    let mut keys = vec![0u64; start[groups]];
    for (&v, &g) in values.iter().zip(of_row) {
        if !v.is_nan() {
            let slot = &mut next[g as usize];
            keys[*slot] = order_key(v);
            *slot += 1;
        }
    }
    let mut per_p = vec![Vec::with_capacity(groups); ps.len()];
    let mut out = vec![0.0; ps.len()];
    for g in 0..groups {
        let slice = &mut keys[start[g]..start[g + 1]];
        let present = !slice.is_empty();
        if present {
            quantiles(slice, ps, &mut out);
        }
        for (col, &x) in per_p.iter_mut().zip(&out) {
            col.push(present.then_some(x));
        }
    }
    per_p
}

/// The quantiles `ps` of the non-empty `keys` (order keys of values), by the
/// `percentile_cont` definition (see [`crate::engine::Measure::Quantile`]). Reorders `keys`.
///
/// Small inputs are sorted. Larger ones are partitioned with `select_nth_unstable` from
/// the highest rank down: each selection only needs the part below the previous one, and
/// the next-higher order statistic for interpolation is the minimum of the part between.
pub(crate) fn quantiles(keys: &mut [u64], ps: &[f64], out: &mut [f64]) {
    let n = keys.len();
    let rank = |p: f64| {
        let h = p * (n - 1) as f64;
        let lo = (h.floor() as usize).min(n - 1);
        (lo, h - lo as f64)
    };
    let lerp = |lo: u64, hi: u64, frac: f64| {
        let (a, b) = (from_order_key(lo), from_order_key(hi));
        if frac > 0.0 { a + frac * (b - a) } else { a }
    };
    if n <= 32 {
        keys.sort_unstable();
        for (o, &p) in out.iter_mut().zip(ps) {
            let (lo, frac) = rank(p);
            *o = lerp(keys[lo], keys[(lo + 1).min(n - 1)], frac);
        }
        return;
    }
    let mut order: Vec<usize> = (0..ps.len()).collect();
    order.sort_by(|&a, &b| ps[b].total_cmp(&ps[a]));
    // keys[known] holds its order statistic and nothing before it is larger; `above` is
    // the next such position (or n).
    let (mut known, mut above) = (n, n);
    for i in order {
        let (lo, frac) = rank(ps[i]);
        if lo < known {
            keys[..known].select_nth_unstable(lo);
            above = known;
            known = lo;
        }
        let next = if lo + 1 >= n {
            keys[lo]
        } else if lo + 1 < above {
            keys[lo + 1..above].iter().copied().min().expect("non-empty range")
        } else {
            keys[above]
        };
        out[i] = lerp(keys[lo], next, frac);
    }
}

/// Maps f64 to u64 so that integer order is numeric order (-0.0 is taken as 0.0).
pub(crate) fn order_key(v: f64) -> u64 {
    let b = (v + 0.0).to_bits();
    if b >> 63 == 1 { !b } else { b | (1 << 63) }
}

fn from_order_key(k: u64) -> f64 {
    f64::from_bits(if k >> 63 == 1 { k & !(1 << 63) } else { !k })
}

/// Per group: [left out, passed, failed] job counts (see `Measure::SuccessRate`).
fn result_classes(inputs: &Inputs, groups: &Groups) -> Vec<[u64; 3]> {
    let results = &inputs.table.dims[dim::RESULT];
    let class: Vec<usize> = results
        .values
        .iter()
        .map(|v| match v.parse::<JobResult>() {
            Ok(JobResult::Success | JobResult::Warnings) => 1,
            Ok(JobResult::Failure | JobResult::Exception) => 2,
            _ => 0,
        })
        .collect();
    let mut counts = vec![[0u64; 3]; groups.len()];
    for (&r, &g) in inputs.rows.iter().zip(&groups.of_row) {
        counts[g as usize][class[results.codes.get(r as usize) as usize]] += 1;
    }
    counts
}

/// Per group, the number of distinct set codes of dimension `d`. A bitmap over
/// group × code when that is small, else sorted (group, code) pairs.
fn distinct(inputs: &Inputs, groups: &Groups, d: usize) -> Vec<u64> {
    let column = &inputs.table.dims[d];
    let card = column.values.len();
    let mut counts = vec![0u64; groups.len()];
    let pairs =
        inputs.rows.iter().zip(&groups.of_row).filter_map(|(&r, &g)| match column.codes.get(r as usize) {
            0 => None,
            c => Some((g as usize, c as usize)),
        });
    if groups.len().saturating_mul(card) <= 1 << 24 {
        let mut seen = vec![0u64; (groups.len() * card).div_ceil(64)];
        for (g, c) in pairs {
            let bit = g * card + c;
            let word = &mut seen[bit / 64];
            counts[g] += u64::from(*word & (1 << (bit % 64)) == 0);
            *word |= 1 << (bit % 64);
        }
    } else {
        let mut all: Vec<(usize, usize)> = pairs.collect();
        all.sort_unstable();
        all.dedup();
        for (g, _) in all {
            counts[g] += 1;
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(values: &[f64], p: f64, expected: f64) {
        let mut keys: Vec<u64> = values.iter().map(|&v| order_key(v)).collect();
        let mut out = [0.0];
        quantiles(&mut keys, &[p], &mut out);
        assert!((out[0] - expected).abs() <= 1e-12 * expected.abs(), "p{p} of {values:?}: {}", out[0]);
    }

    #[test]
    fn quantiles_interpolate_like_percentile_cont() {
        // SELECT percentile_cont(p) WITHIN GROUP (ORDER BY x) FROM (VALUES ...) gives these.
        check(&[1.0, 2.0, 3.0, 4.0], 0.5, 2.5);
        check(&[1.0, 2.0, 3.0, 4.0], 0.25, 1.75);
        check(&[1.0, 2.0, 3.0, 4.0], 0.0, 1.0);
        check(&[1.0, 2.0, 3.0, 4.0], 1.0, 4.0);
        check(&[4.0, 1.0, 3.0, 2.0, 5.0], 0.5, 3.0);
        check(&[10.0, 20.0], 0.95, 19.5);
        check(&[7.0], 0.99, 7.0);
        check(&[-3.0, -1.0, 2.0], 0.5, -1.0);
        check(&[-0.0, 0.0, 5.0], 0.25, 0.0);
        let hundred: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        check(&hundred, 0.95, 95.05);
        check(&hundred, 0.5, 50.5);
        check(&hundred, 0.99, 99.01);
    }

    #[test]
    fn order_keys_sort_numerically() {
        let vs = [f64::NEG_INFINITY, -1e300, -2.5, -0.0, 1e-300, 3.0, 1e300, f64::INFINITY];
        let keys: Vec<u64> = vs.iter().map(|&v| order_key(v)).collect();
        assert!(keys.windows(2).all(|w| w[0] <= w[1]));
        for (&v, &k) in vs.iter().zip(&keys) {
            assert_eq!(from_order_key(k), v + 0.0);
        }
    }
}
