//! The in-memory columnar job table the browser explores.
//!
//! One column per field, strings dictionary-coded. It is what the data API's default
//! encoding decodes into (see [`crate::wire`]) and what the analytics run over.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use crate::job::{Job, JobResult};
use crate::time::Timestamp;

mod columns;

pub use columns::{Codes, Offsets, Strings};

/// The fixed dimensions every job has, in column order. Tag dimensions follow them, named
/// `tag.KEY`.
pub const FIXED_DIMS: [&str; 7] = ["source", "project", "branch", "builder", "worker", "revision", "result"];

/// Index of each fixed dimension in [`JobTable::dims`].
pub mod dim {
    pub const SOURCE: usize = 0;
    pub const PROJECT: usize = 1;
    pub const BRANCH: usize = 2;
    pub const BUILDER: usize = 3;
    pub const WORKER: usize = 4;
    pub const REVISION: usize = 5;
    pub const RESULT: usize = 6;
}

/// Prefix of tag dimension names.
pub const TAG_PREFIX: &str = "tag.";

/// Marks a missing time in the time columns. Ingest bounds real times to 1990–2100, so the
/// sentinel can never collide with one.
pub const NO_TIME: i64 = i64::MIN;

/// A dictionary-coded string column. Code 0 always means "not set" and `values[0]` is `""`.
#[derive(Clone, Debug, PartialEq)]
pub struct DimColumn {
    pub name: String,
    pub values: Strings,
    pub codes: Codes,
}

impl DimColumn {
    pub fn new(name: impl Into<String>) -> Self {
        DimColumn { name: name.into(), values: [""].into_iter().collect(), codes: Codes::U8(Vec::new()) }
    }

    /// The value of row `row`, `None` when not set.
    pub fn get(&self, row: usize) -> Option<&str> {
        match self.codes.get(row) {
            0 => None,
            c => Some(&self.values[c as usize]),
        }
    }
}

/// A numeric per-job measurement. `f64::NAN` marks jobs that did not report it: ingest
/// rejects non-finite values, so NaN never stands for a real measurement.
#[derive(Clone, Debug)]
pub struct MetricColumn {
    pub name: String,
    pub values: Vec<f64>,
}

/// Equal when names match and values are bit-identical, so two absent values (NaN) compare
/// equal, which is what "same table" means.
impl PartialEq for MetricColumn {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.values.len() == other.values.len()
            && self.values.iter().zip(&other.values).all(|(a, b)| a.to_bits() == b.to_bits())
    }
}

/// Job ids, split so numeric ids (the common case) cost one small integer: an id is
/// `prefixes.values[prefix code]` followed by its number, if it has one.
#[derive(Clone, Debug, PartialEq)]
pub struct IdColumn {
    pub prefixes: DimColumn,
    /// The smallest number (0 when no id has one).
    pub base: i64,
    /// Per row, 0: no number; n − base + 1: number n. Ids of one farm are close together,
    /// so these fit in u32.
    pub numbers: Offsets,
}

impl IdColumn {
    pub fn get(&self, row: usize) -> String {
        let prefix = &self.prefixes.values[self.prefixes.codes.get(row) as usize];
        match self.number(row) {
            None => prefix.to_owned(),
            Some(n) => format!("{prefix}{n}"),
        }
    }

    /// The number of row `row`'s id, if it ends in one.
    pub fn number(&self, row: usize) -> Option<i64> {
        match self.numbers.get(row) {
            0 => None,
            v => Some(self.base + (v - 1) as i64),
        }
    }

    /// Codes numbers (`split`'s, -1 for none) relative to the smallest.
    fn from_numbers(prefixes: DimColumn, numbers: impl Iterator<Item = i64> + Clone) -> IdColumn {
        let base = numbers.clone().filter(|&n| n >= 0).min().unwrap_or(0);
        let mut coded = Offsets::default();
        for n in numbers {
            coded.push(if n < 0 { 0 } else { (n - base) as u64 + 1 });
        }
        IdColumn { prefixes, base, numbers: coded }
    }

    /// Splits an id into a text prefix and a trailing decimal number that prints back to
    /// the same digits (no leading zeros, at most 18 digits; -1 when there is none). Rows
    /// with equal time and source are ordered by this key.
    pub fn split(id: &str) -> (&str, i64) {
        let digits = id.bytes().rev().take_while(u8::is_ascii_digit).count();
        let (prefix, tail) = id.split_at(id.len() - digits);
        let canonical = !tail.is_empty() && tail.len() <= 18 && (tail == "0" || !tail.starts_with('0'));
        match tail.parse::<i64>() {
            Ok(n) if canonical => (prefix, n),
            _ => (id, -1),
        }
    }
}

/// The columnar job table. All columns have `len` entries; rows are ordered by job time
/// (started, or requested if not started), then by source and id.
#[derive(Clone, Debug, PartialEq)]
pub struct JobTable {
    pub len: usize,
    /// [`FIXED_DIMS`] in order, then one column per tag key (`tag.KEY`), sorted by name.
    pub dims: Vec<DimColumn>,
    pub ids: IdColumn,
    /// Row time, epoch ms: started, else requested; [`NO_TIME`] when neither is known.
    pub time: Vec<i64>,
    /// Per row, 0: no request time; 1: requested, not started (`time` is the request);
    /// q + 2: queued for q ms (requested at `time` − q, started at `time`).
    pub queue: Offsets,
    /// Per row, 0: not finished; d + 1: ran for d ms (finished at `time` + d).
    ///
    /// Times are stored as offsets from the row time because they are small: two u32
    /// columns instead of two i64 ones. Ingest validates that requested ≤ started ≤
    /// finished; times out of that order are stored as unknown.
    pub run: Offsets,
    /// Sorted by name.
    pub metrics: Vec<MetricColumn>,
}

impl JobTable {
    /// The instant a row is filed under: started, else requested.
    pub fn time_ms(&self, row: usize) -> i64 {
        self.time[row]
    }

    pub fn requested_ms(&self, row: usize) -> Option<i64> {
        match self.queue.get(row) {
            0 => None,
            1 => Some(self.time[row]),
            q => Some(self.time[row] - (q - 2) as i64),
        }
    }

    pub fn started_ms(&self, row: usize) -> Option<i64> {
        match (self.queue.get(row), self.time[row]) {
            (1, _) | (_, NO_TIME) => None,
            (_, t) => Some(t),
        }
    }

    pub fn finished_ms(&self, row: usize) -> Option<i64> {
        match self.run.get(row) {
            0 => None,
            d => Some(self.time[row] + (d - 1) as i64),
        }
    }

    pub fn result(&self, row: usize) -> JobResult {
        let code = self.dims[dim::RESULT].codes.get(row);
        self.dims[dim::RESULT].values[code as usize]
            .parse()
            .expect("the result dictionary holds only result names")
    }

    /// Run time in ms, when started and finished.
    pub fn duration_ms(&self, row: usize) -> Option<i64> {
        match self.run.get(row) {
            0 => None,
            d => Some((d - 1) as i64),
        }
    }

    /// Queue wait in ms, when requested and started.
    pub fn queue_ms(&self, row: usize) -> Option<i64> {
        match self.queue.get(row) {
            0 | 1 => None,
            q => Some((q - 2) as i64),
        }
    }

    /// The dimension column with this name (`builder`, `tag.MACHINE`, ...).
    pub fn dim(&self, name: &str) -> Option<&DimColumn> {
        self.dims.iter().find(|d| d.name == name)
    }

    pub fn metric(&self, name: &str) -> Option<&MetricColumn> {
        self.metrics.iter().find(|m| m.name == name)
    }

    /// Builds a table from job records (steps and urls are not part of the table).
    pub fn from_jobs<'a>(jobs: impl IntoIterator<Item = &'a Job>) -> JobTable {
        let mut b = TableBuilder::default();
        for job in jobs {
            b.push(job);
        }
        b.finish()
    }

    /// Row `row` as a job record (without steps and url).
    pub fn job(&self, row: usize) -> Job {
        let text = |d: usize| self.dims[d].get(row).map(str::to_owned);
        let time = |t: Option<i64>| t.map(Timestamp::from_millis);
        let tags = self.dims[FIXED_DIMS.len()..]
            .iter()
            .filter_map(|d| Some((d.name[TAG_PREFIX.len()..].to_owned(), d.get(row)?.to_owned())))
            .collect();
        let metrics = self
            .metrics
            .iter()
            .filter(|m| !m.values[row].is_nan())
            .map(|m| (m.name.clone(), m.values[row]))
            .collect();
        Job {
            source: text(dim::SOURCE).unwrap_or_default(),
            id: self.ids.get(row),
            builder: text(dim::BUILDER).unwrap_or_default(),
            project: text(dim::PROJECT),
            branch: text(dim::BRANCH),
            revision: text(dim::REVISION),
            worker: text(dim::WORKER),
            requested_at: time(self.requested_ms(row)),
            started_at: time(self.started_ms(row)),
            finished_at: time(self.finished_ms(row)),
            result: self.result(row),
            url: None,
            tags,
            metrics,
            steps: Vec::new(),
        }
    }
}

/// Collects rows in any order and produces a sorted [`JobTable`].
#[derive(Default)]
pub struct TableBuilder {
    fixed: Vec<Dictionary>,
    tags: BTreeMap<String, Dictionary>,
    id_prefix: Dictionary,
    id_numbers: Vec<i64>,
    requested: Vec<i64>,
    started: Vec<i64>,
    finished: Vec<i64>,
    metrics: BTreeMap<String, Vec<(u32, f64)>>,
    len: usize,
}

/// Codes strings in first-seen order; code 0 is the empty "not set" value. FxHash rather
/// than std's SipHash: the keys are our own data, not an attacker's, and hashing is most
/// of the cost of building a table from a million rows.
#[derive(Default)]
struct Dictionary {
    index: FxHashMap<String, u32>,
    values: Vec<String>,
    codes: Vec<u32>,
}

impl Dictionary {
    fn code(&mut self, value: Option<&str>) -> u32 {
        let Some(v) = value.filter(|v| !v.is_empty()) else { return 0 };
        if let Some(&c) = self.index.get(v) {
            return c;
        }
        let c = self.values.len() as u32 + 1;
        self.values.push(v.to_owned());
        self.index.insert(v.to_owned(), c);
        c
    }

    /// The value of row `row` ("" when not set).
    fn value_at(&self, row: usize) -> &str {
        match self.codes[row] {
            0 => "",
            c => &self.values[c as usize - 1],
        }
    }

    fn push(&mut self, value: Option<&str>) {
        let c = self.code(value);
        self.codes.push(c);
    }

    fn into_column(self, name: String, order: &[u32], len: usize) -> DimColumn {
        let mut codes = self.codes;
        codes.resize(len, 0);
        let mut values: Strings = std::iter::once("").chain(self.values.iter().map(String::as_str)).collect();
        values.shrink_to_fit();
        let codes = Codes::new(order.iter().map(|&r| codes[r as usize]), values.len());
        DimColumn { name, values, codes }
    }
}

impl TableBuilder {
    /// Adds one row. Field values are taken as they are (the store validated them).
    #[allow(clippy::too_many_arguments)]
    pub fn push_row(
        &mut self,
        fixed: [Option<&str>; 7],
        id: &str,
        requested_ms: Option<i64>,
        started_ms: Option<i64>,
        finished_ms: Option<i64>,
        tags: &[(&str, &str)],
        metrics: &[(&str, f64)],
    ) {
        if self.fixed.is_empty() {
            self.fixed.resize_with(FIXED_DIMS.len(), Dictionary::default);
        }
        let row = self.len;
        for (dict, value) in self.fixed.iter_mut().zip(fixed) {
            dict.push(value);
        }
        for &(key, value) in tags {
            // Keyed by the bare tag key (no allocation per row); prefixed in `finish`.
            let dict = match self.tags.get_mut(key) {
                Some(dict) => dict,
                None => self.tags.entry(key.to_owned()).or_default(),
            };
            dict.codes.resize(row, 0);
            dict.push(Some(value));
        }
        let (prefix, number) = IdColumn::split(id);
        self.id_prefix.push(Some(prefix));
        self.id_numbers.push(number);
        self.requested.push(requested_ms.unwrap_or(NO_TIME));
        self.started.push(started_ms.unwrap_or(NO_TIME));
        self.finished.push(finished_ms.unwrap_or(NO_TIME));
        for &(name, value) in metrics {
            if let Some(col) = self.metrics.get_mut(name) {
                col.push((row as u32, value));
            } else {
                self.metrics.insert(name.to_owned(), vec![(row as u32, value)]);
            }
        }
        self.len += 1;
    }

    /// Adds one job record.
    pub fn push(&mut self, job: &Job) {
        let tags: Vec<(&str, &str)> = job.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let metrics: Vec<(&str, f64)> = job.metrics.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        self.push_row(
            [
                Some(&job.source),
                job.project.as_deref(),
                job.branch.as_deref(),
                Some(&job.builder),
                job.worker.as_deref(),
                job.revision.as_deref(),
                Some(job.result.as_str()),
            ],
            &job.id,
            job.requested_at.map(Timestamp::as_millis),
            job.started_at.map(Timestamp::as_millis),
            job.finished_at.map(Timestamp::as_millis),
            &tags,
            &metrics,
        );
    }

    /// Sorts the rows by (time, source, id) and produces the table.
    pub fn finish(mut self) -> JobTable {
        let len = self.len;
        if self.fixed.is_empty() {
            self.fixed.resize_with(FIXED_DIMS.len(), Dictionary::default);
        }
        let time = |r: usize| match self.started[r] {
            NO_TIME => self.requested[r],
            t => t,
        };
        let mut order: Vec<u32> = (0..len as u32).collect();
        {
            let src = &self.fixed[dim::SOURCE];
            let pre = &self.id_prefix;
            order.sort_by(|&a, &b| {
                let (a, b) = (a as usize, b as usize);
                time(a)
                    .cmp(&time(b))
                    .then_with(|| src.value_at(a).cmp(src.value_at(b)))
                    .then_with(|| pre.value_at(a).cmp(pre.value_at(b)))
                    .then_with(|| self.id_numbers[a].cmp(&self.id_numbers[b]))
            });
        }
        let mut dims: Vec<DimColumn> = std::mem::take(&mut self.fixed)
            .into_iter()
            .zip(FIXED_DIMS)
            .map(|(d, name)| d.into_column(name.to_owned(), &order, len))
            .collect();
        dims.extend(
            std::mem::take(&mut self.tags)
                .into_iter()
                .map(|(key, d)| d.into_column(format!("{TAG_PREFIX}{key}"), &order, len)),
        );
        let (mut time, mut queue, mut run) =
            (Vec::with_capacity(len), Offsets::with_capacity(len), Offsets::with_capacity(len));
        for &r in &order {
            let (r, s, f) = (self.requested[r as usize], self.started[r as usize], self.finished[r as usize]);
            let (t, q) = match (r, s) {
                (_, NO_TIME) => (r, u64::from(r != NO_TIME)),
                (NO_TIME, s) => (s, 0),
                (r, s) if s >= r => (s, (s - r) as u64 + 2),
                (_, s) => (s, 0),
            };
            time.push(t);
            queue.push(q);
            run.push(if s != NO_TIME && f != NO_TIME && f >= s { (f - s) as u64 + 1 } else { 0 });
        }
        let mut inverse = vec![0u32; len];
        for (new, &old) in order.iter().enumerate() {
            inverse[old as usize] = new as u32;
        }
        let metrics = std::mem::take(&mut self.metrics)
            .into_iter()
            .map(|(name, samples)| {
                let mut values = vec![f64::NAN; len];
                for (row, v) in samples {
                    values[inverse[row as usize] as usize] = v;
                }
                MetricColumn { name, values }
            })
            .collect();
        JobTable {
            len,
            ids: IdColumn::from_numbers(
                std::mem::take(&mut self.id_prefix).into_column("id".into(), &order, len),
                order.iter().map(|&r| self.id_numbers[r as usize]),
            ),
            time,
            queue,
            run,
            dims,
            metrics,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_split_and_print_back() {
        for id in ["0", "7", "1234", "gh-99", "abc", "007", "x00", "", "99999999999999999999", "a1b2"] {
            let (prefix, n) = IdColumn::split(id);
            let back = if n < 0 { prefix.to_owned() } else { format!("{prefix}{n}") };
            assert_eq!(back, id);
        }
        assert_eq!(IdColumn::split("gh-99"), ("gh-", 99));
        assert_eq!(IdColumn::split("007"), ("007", -1));
    }
}
