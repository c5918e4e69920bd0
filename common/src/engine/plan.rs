//! A query with its names resolved to columns, and the steps of [`super::run_on`] that
//! need them: key codes per row, top-k ranking, and turning codes into an [`Answer`].

use std::cmp::Ordering;

use super::column::{self, Source};
use super::group::{self, ALL, KeyCodes, OTHER};
use super::measure::{self, Inputs, Kernel, PerGroup};
use super::query::{Measure, Query, QueryError, SortBy, TimeBucket, TopK, Value};
use super::{Answer, Key, MAX_DIMS, Part};
use crate::table::JobTable;

/// Per key part: the code of each selected row, and how many codes there can be.
pub(crate) type PartCodes = (Vec<u32>, u32);

pub(crate) struct Plan<'a> {
    table: &'a JobTable,
    dims: Vec<usize>,
    bucket: Option<TimeBucket>,
    /// The distinct values measured, each gathered once.
    pub sources: Vec<Source<'a>>,
    pub kernels: Vec<Kernel>,
}

impl<'a> Plan<'a> {
    pub fn new(table: &'a JobTable, query: &Query) -> Result<Self, QueryError> {
        if query.dims.len() > MAX_DIMS {
            return Err(QueryError::TooManyDims { max: MAX_DIMS, got: query.dims.len() });
        }
        let dims = query.dims.iter().map(|d| column::dim_index(table, d)).collect::<Result<Vec<_>, _>>()?;
        let mut measured: Vec<Value> = Vec::new();
        let mut sources = Vec::new();
        let mut slot = |v: &Value| -> Result<usize, QueryError> {
            if let Some(i) = measured.iter().position(|w| w == v) {
                return Ok(i);
            }
            sources.push(Source::resolve(table, v)?);
            measured.push(v.clone());
            Ok(measured.len() - 1)
        };
        let mut kernels = Vec::new();
        for m in &query.measures {
            kernels.push(match m {
                Measure::Count => Kernel::Count,
                Measure::SuccessRate => Kernel::SuccessRate,
                Measure::FailureRate => Kernel::FailureRate,
                Measure::Failures => Kernel::Failures,
                Measure::Distinct(d) => Kernel::Distinct(column::dim_index(table, d)?),
                Measure::Present(v) => Kernel::Present(slot(v)?),
                Measure::Sum(v) => Kernel::Sum(slot(v)?),
                Measure::Mean(v) => Kernel::Mean(slot(v)?),
                Measure::Min(v) => Kernel::Min(slot(v)?),
                Measure::Max(v) => Kernel::Max(slot(v)?),
                Measure::StddevPop(v) => Kernel::StddevPop(slot(v)?),
                Measure::StddevSamp(v) => Kernel::StddevSamp(slot(v)?),
                Measure::Quantile { value, p } => {
                    if !(0.0..=1.0).contains(p) {
                        return Err(QueryError::BadQuantile(*p));
                    }
                    Kernel::Quantile(slot(value)?, *p)
                }
            });
        }
        let parts = dims.len() + usize::from(query.bucket.is_some());
        if let Some(top) = &query.top {
            if top.part >= parts {
                return Err(QueryError::BadPart(top.part));
            }
            if top.by >= kernels.len() {
                return Err(QueryError::BadMeasureIndex(top.by));
            }
        }
        if let SortBy::Measure(i) = query.sort.by
            && i >= kernels.len()
        {
            return Err(QueryError::BadMeasureIndex(i));
        }
        Ok(Plan { table, dims, bucket: query.bucket, sources, kernels })
    }

    /// Key codes of `rows`, dims then bucket, and the bucket number of bucket code 0.
    pub fn part_codes(&self, rows: &[u32]) -> (Vec<PartCodes>, i64) {
        let mut parts: Vec<PartCodes> = self
            .dims
            .iter()
            .map(|&d| {
                let column = &self.table.dims[d];
                (column.codes.gather(rows), column.values.len() as u32)
            })
            .collect();
        let mut base = 0;
        if let Some(bucket) = self.bucket {
            let (codes, card, first) = group::bucket_codes(self.table, rows, bucket);
            parts.push((codes, card));
            base = first;
        }
        (parts, base)
    }

    /// Which codes of the ranked part make the top k (indexed by code).
    pub fn top_codes(&self, inputs: &Inputs, (codes, card): &PartCodes, top: &TopK) -> Vec<bool> {
        let groups = group::group(&[codes], &[*card], codes.len());
        let (_, values) = measure::compute(inputs, &groups, &self.kernels[top.by..=top.by]);
        let codes: Vec<u32> = groups.keys.iter().map(|k| k[0]).collect();
        self.rank(&codes, &values[0], *card, top)
    }

    /// Which codes make the top k (indexed by code), given each candidate code's value of
    /// the ranking measure: by value, `None` last, ties by label.
    pub fn rank(&self, codes: &[u32], values: &[Option<f64>], card: u32, top: &TopK) -> Vec<bool> {
        let is_dim = top.part < self.dims.len();
        let label = |code: u32| is_dim.then(|| &self.table.dims[self.dims[top.part]].values[code as usize]);
        let mut order: Vec<usize> = (0..codes.len()).collect();
        order.sort_by(|&a, &b| {
            let by_value = match (values[a], values[b]) {
                (Some(x), Some(y)) if top.ascending => x.partial_cmp(&y).expect("measures are finite"),
                (Some(x), Some(y)) => y.partial_cmp(&x).expect("measures are finite"),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            };
            let (ca, cb) = (codes[a], codes[b]);
            by_value.then_with(|| label_order(label(ca), ca).cmp(&label_order(label(cb), cb)))
        });
        let mut keep = vec![false; card as usize];
        for &g in order.iter().take(top.k) {
            keep[codes[g] as usize] = true;
        }
        keep
    }

    /// Turns group codes into keys with labels.
    pub fn answer(
        &self,
        keys: &[KeyCodes],
        bucket_base: i64,
        rows: Vec<u64>,
        values: PerGroup,
        selected: usize,
    ) -> Answer {
        let mut parts = Vec::new();
        let mut columns = Vec::new();
        for (i, &d) in self.dims.iter().enumerate() {
            let column = &self.table.dims[d];
            let mut used: Vec<u32> = keys.iter().map(|k| k[i]).filter(|&c| c != 0 && c < OTHER).collect();
            used.sort_unstable();
            used.dedup();
            used.sort_by(|&a, &b| column.values[a as usize].cmp(&column.values[b as usize]));
            let mut index = vec![0u32; column.values.len()];
            for (at, &c) in used.iter().enumerate() {
                index[c as usize] = at as u32;
            }
            columns.push(
                keys.iter()
                    .map(|k| special(k[i]).unwrap_or_else(|| Key::Value(index[k[i] as usize])))
                    .collect(),
            );
            let labels = used.iter().map(|&c| column.values[c as usize].to_owned()).collect();
            parts.push(Part::Dim { name: column.name.clone(), labels });
        }
        if let Some(bucket) = self.bucket {
            let i = self.dims.len();
            columns.push(
                keys.iter()
                    .map(|k| match k[i] {
                        OTHER => Key::Other,
                        ALL => Key::All,
                        c => Key::Bucket(bucket.start_ms(bucket_base + i64::from(c))),
                    })
                    .collect(),
            );
            parts.push(Part::Bucket(bucket));
        }
        Answer { parts, keys: columns, rows, values, selected: selected as u64 }
    }
}

/// The key of a dimension code that is not a dictionary value.
fn special(code: u32) -> Option<Key> {
    match code {
        0 => Some(Key::NotSet),
        OTHER => Some(Key::Other),
        ALL => Some(Key::All),
        _ => None,
    }
}

/// Sort position of a code by its label: set values alphabetically, then "not set"; a
/// bucket part has no labels and sorts by code (time order).
fn label_order(label: Option<&str>, code: u32) -> (bool, Option<&str>, u32) {
    match label {
        Some(l) => (code == 0, Some(l), code),
        None => (false, None, code),
    }
}
