//! The analytics engine: filter → group → measure over a [`JobTable`], exact, in one
//! place so the browser (WASM) and the server compute the same numbers.
//!
//! A [`Query`] runs in stages, each over the previous one's output only:
//! 1. [`select`]: filters become a [`Selection`], the ascending rows that pass them. A
//!    row-time range is a binary search (rows are time-sorted); dimension filters are
//!    lookup tables over the dictionary, so strings are compared once per distinct value.
//! 2. Grouping: each selected row gets a dense group id from its key parts (up to two
//!    dimension codes and a time-bucket number).
//! 3. Measures: the values a query measures are gathered once per value, then one pass per
//!    kind of state (moments, per-group sorted values, result classes, distinct codes).
//! 4. Arrangement: top-k with an "other" bucket, subtotals, sort; keys become [`Key`]s
//!    with labels, so an [`Answer`] stands on its own (it can cross a Web Worker boundary).
//!
//! No measure is ever NaN or infinite: undefined values are `None` (see [`Measure`]).
//! [`Session`] keeps the last selection, so regrouping or adding a filter does not refilter
//! the whole table.

mod column;
pub mod downsample;
mod filter;
mod group;
mod measure;
mod plan;
mod query;
#[cfg(test)]
mod reference;
mod session;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

pub use filter::{Selection, refine, select};
pub use query::{Filter, Measure, Query, QueryError, Sort, SortBy, TimeBucket, TimeField, TopK, Value};
pub use session::Session;

use crate::table::{JobTable, NO_TIME};
use crate::time::Timestamp;
use group::{Groups, MAX_PARTS, OTHER};
use measure::Inputs;
use plan::Plan;

/// Most dimensions a query groups by.
pub const MAX_DIMS: usize = 2;

/// What one key part of an answer is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    /// A dimension; [`Key::Value`]s index `labels`, which are sorted.
    Dim { name: String, labels: Vec<String> },
    /// A time bucket of the row time.
    Bucket(TimeBucket),
}

/// One part of a group's key. The derived order is the answer's key order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Key {
    /// A dimension value: index into the part's `labels`.
    Value(u32),
    /// A time bucket, by its first instant (epoch ms).
    Bucket(i64),
    /// Jobs without a value for the dimension.
    NotSet,
    /// Everything outside the top k.
    Other,
    /// Any value: this part is rolled up (a subtotal or the grand total).
    All,
}

/// A query's result, column-wise: group `g` has key `keys[part][g]`, `rows[g]` jobs and
/// measure `m` equal to `values[m][g]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub parts: Vec<Part>,
    pub keys: Vec<Vec<Key>>,
    pub rows: Vec<u64>,
    pub values: Vec<Vec<Option<f64>>>,
    /// Jobs that passed the filters.
    pub selected: u64,
}

impl Answer {
    /// Number of groups (subtotals included).
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Display text of a group's key part.
    pub fn label(&self, part: usize, group: usize) -> Cow<'_, str> {
        match (self.keys[part][group], &self.parts[part]) {
            (Key::Value(i), Part::Dim { labels, .. }) => Cow::Borrowed(&labels[i as usize]),
            (Key::Bucket(ms), _) => Cow::Owned(Timestamp::from_millis(ms).to_rfc3339()),
            (Key::NotSet, _) => Cow::Borrowed("(not set)"),
            (Key::Other, _) => Cow::Borrowed("(other)"),
            (Key::All, _) => Cow::Borrowed("(all)"),
            (Key::Value(_), Part::Bucket(_)) => unreachable!("bucket parts hold buckets"),
        }
    }

    /// The key of group `g`, part by part.
    pub fn key(&self, group: usize) -> Vec<Key> {
        self.keys.iter().map(|k| k[group]).collect()
    }
}

/// The values of `value` for `rows`, in order, in seconds or the metric's unit; NaN where a
/// job does not have the value.
pub fn values(table: &JobTable, value: &Value, rows: &[u32]) -> Result<Vec<f64>, QueryError> {
    Ok(column::Source::resolve(table, value)?.gather(rows))
}

/// Filters, groups and measures in one go.
pub fn run(table: &JobTable, query: &Query) -> Result<Answer, QueryError> {
    let selection = select(table, &query.filters)?;
    run_on(table, &selection, query)
}

/// Groups and measures an existing selection; `query.filters` are not looked at. Use it to
/// rerun other groupings or measures when the filters have not changed.
pub fn run_on(table: &JobTable, selection: &Selection, query: &Query) -> Result<Answer, QueryError> {
    let plan = Plan::new(table, query)?;
    let mut rows: Cow<[u32]> = Cow::Borrowed(selection.rows());
    if query.bucket.is_some() {
        // Rows without a time sort first and fall in no bucket.
        let timed = rows.partition_point(|&r| table.time[r as usize] == NO_TIME);
        rows = Cow::Borrowed(&selection.rows()[timed..]);
    }
    let values: Vec<Vec<f64>> = plan.sources.iter().map(|s| s.gather(&rows)).collect();
    let (mut parts, bucket_base) = plan.part_codes(&rows);
    let mut inputs = Inputs { table, rows: &rows, values };
    // With measures that add up, top-k ranks and merges group states; otherwise it
    // recodes (or drops) rows before grouping.
    let merged_top = query.top.as_ref().filter(|t| t.other && measure::mergeable(&plan.kernels));
    let mut other_code = [None; MAX_PARTS];
    let kept_rows;
    if let Some(top) = query.top.as_ref().filter(|_| merged_top.is_none()) {
        let keep = plan.top_codes(&inputs, &parts[top.part], top);
        if top.other {
            other_code[top.part] = Some(recode_other(&mut parts[top.part], &keep));
        } else {
            let mask: Vec<bool> = parts[top.part].0.iter().map(|&c| keep[c as usize]).collect();
            kept_rows = retain(inputs.rows, &mask);
            for (codes, _) in parts.iter_mut() {
                *codes = retain(codes, &mask);
            }
            let values = inputs.values.iter().map(|v| retain(v, &mask)).collect();
            inputs = Inputs { table, rows: &kept_rows, values };
        }
    }
    let slices: Vec<&[u32]> = parts.iter().map(|(c, _)| &c[..]).collect();
    let cards: Vec<u32> = parts.iter().map(|(_, c)| *c).collect();
    let mut finest = group::group(&slices, &cards, inputs.rows.len());
    for key in finest.keys.iter_mut() {
        for (c, other) in key.iter_mut().zip(other_code) {
            if Some(*c) == other {
                *c = OTHER;
            }
        }
    }
    let mut fine = measure::State::new(&inputs, &finest, &plan.kernels);
    if let Some(top) = merged_top {
        let (part_keys, to_part) = group::roll_up(&finest, 1 << top.part);
        let (_, ranked) = fine.roll_up(&to_part, part_keys.len()).finish(&plan.kernels[top.by..=top.by]);
        let codes: Vec<u32> = part_keys.iter().map(|k| k[top.part]).collect();
        let keep = plan.rank(&codes, &ranked[0], parts[top.part].1, top);
        let (keys, map) = group::other(&finest, top.part, &keep);
        fine = fine.roll_up(&map, keys.len());
        finest = Groups { of_row: finest.of_row.iter().map(|&g| map[g as usize]).collect(), keys };
    }
    let mut keys = finest.keys.clone();
    let (mut counts, mut measured) = fine.finish(&plan.kernels);
    if query.totals && !parts.is_empty() {
        let full = (1u32 << parts.len()) - 1;
        for keep in (0..full).rev() {
            let (level_keys, map) = group::roll_up(&finest, keep);
            // Counts, sums and rates add up from the finest groups; quantiles and the
            // like go back to the rows.
            let state = if measure::mergeable(&plan.kernels) {
                fine.roll_up(&map, level_keys.len())
            } else {
                let of_row = finest.of_row.iter().map(|&g| map[g as usize]).collect();
                measure::State::new(&inputs, &Groups { of_row, keys: level_keys.clone() }, &plan.kernels)
            };
            let (level_counts, level_values) = state.finish(&plan.kernels);
            counts.extend(level_counts);
            for (all, v) in measured.iter_mut().zip(level_values) {
                all.extend(v);
            }
            keys.extend_from_slice(&level_keys);
        }
    }
    let mut answer = plan.answer(&keys, bucket_base, counts, measured, selection.len());
    sort(&mut answer, query.sort);
    Ok(answer)
}

/// Gives the codes of a part that are not kept one extra code, returned, which becomes
/// `Key::Other` once grouped.
fn recode_other((codes, card): &mut (Vec<u32>, u32), keep: &[bool]) -> u32 {
    let other = *card;
    for c in codes.iter_mut() {
        if !keep[*c as usize] {
            *c = other;
        }
    }
    *card += 1;
    other
}

/// The items of `v` whose `mask` entry is set.
fn retain<T: Copy>(v: &[T], mask: &[bool]) -> Vec<T> {
    v.iter().zip(mask).filter(|(_, keep)| **keep).map(|(x, _)| *x).collect()
}

/// Orders the groups of an answer in place. Keys are unique per group, so the order is
/// total and an unstable sort is deterministic.
fn sort(answer: &mut Answer, sort: Sort) {
    let keys = &answer.keys;
    let by_key = |a: usize, b: usize| {
        keys.iter().map(|k| k[a].cmp(&k[b])).find(|o| o.is_ne()).unwrap_or(Ordering::Equal)
    };
    let mut order: Vec<usize> = (0..answer.len()).collect();
    match sort.by {
        SortBy::Key if sort.descending => order.sort_unstable_by(|&a, &b| by_key(b, a)),
        SortBy::Key => order.sort_unstable_by(|&a, &b| by_key(a, b)),
        SortBy::Measure(m) => {
            let v = &answer.values[m];
            order.sort_unstable_by(|&a, &b| {
                let by_value = match (v[a], v[b]) {
                    (Some(x), Some(y)) if sort.descending => y.partial_cmp(&x).expect("measures are finite"),
                    (Some(x), Some(y)) => x.partial_cmp(&y).expect("measures are finite"),
                    (Some(_), None) => Ordering::Less,
                    (None, Some(_)) => Ordering::Greater,
                    (None, None) => Ordering::Equal,
                };
                by_value.then_with(|| by_key(a, b))
            });
        }
    }
    if order.iter().enumerate().all(|(i, &g)| i == g) {
        return;
    }
    permute(&mut answer.rows, &order);
    answer.keys.iter_mut().for_each(|k| permute(k, &order));
    answer.values.iter_mut().for_each(|v| permute(v, &order));
}

fn permute<T: Copy>(column: &mut Vec<T>, order: &[usize]) {
    *column = order.iter().map(|&i| column[i]).collect();
}
