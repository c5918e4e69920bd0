//! What a report asks the engine for: filters, grouping, measures, top-k and sort.
//!
//! Every type here is part of the URL (the explorer serialises a [`Query`] into the query
//! string), so each is a closed vocabulary with `snake_case` names and a doc line per
//! variant. Adding a variant is compatible; renaming one breaks saved links.

use serde::{Deserialize, Serialize};

/// A number measured per job. Times are in seconds so that duration, queue wait and CPU
/// seconds share one unit in charts and tables.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Value {
    /// Run time in seconds: finished − started; absent until both are known.
    Duration,
    /// Queue wait in seconds: started − requested; absent until both are known.
    QueueWait,
    /// CPU seconds: the job's `cpu_seconds` metric when reported, else its run time (see
    /// [`crate::job::derived::cpu_seconds`]).
    CpuSeconds,
    /// A job metric by name, in the unit it was reported in; absent where not reported.
    Metric(String),
}

/// Which instant of a job a time filter looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeField {
    /// The row time: started, else requested (the table is sorted by it, so this filter
    /// costs a binary search).
    Time,
    /// When the job was requested.
    Requested,
    /// When the job started.
    Started,
    /// When the job finished.
    Finished,
}

/// One condition on a row. A query's filters are combined with AND.
///
/// Dimension values are compared exactly (case-sensitive), except `contains`. The empty
/// string stands for "not set", so `in` with `[""]` selects rows without a value, and
/// `not_in` keeps rows without a value unless `""` is listed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Filter {
    /// The dimension equals `value`.
    Eq { dim: String, value: String },
    /// The dimension is one of `values`.
    In { dim: String, values: Vec<String> },
    /// The dimension is none of `values`.
    NotIn { dim: String, values: Vec<String> },
    /// The dimension's value contains `text`, ignoring case; rows without a value never match.
    Contains { dim: String, text: String },
    /// The value lies in `[min, max]` (either bound optional); rows without it never match.
    Range { value: Value, min: Option<f64>, max: Option<f64> },
    /// The instant lies in `[from_ms, to_ms]`, epoch ms, both inclusive as in
    /// [`crate::TimeRange`]; rows without that instant never match.
    Time { field: TimeField, from_ms: Option<i64>, to_ms: Option<i64> },
}

/// The calendar unit of a time grouping. All buckets are UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeBucket {
    /// Clock hours.
    Hour,
    /// Days from midnight UTC.
    Day,
    /// ISO weeks, starting Monday 00:00 UTC.
    Week,
    /// Calendar months, starting on the 1st at 00:00 UTC.
    Month,
}

/// A per-group number. Every measure is `None` where it is undefined (an empty group, a
/// rate with no decided jobs, a sample deviation of one value) and never NaN or infinite:
/// a result that would not be finite (a sum overflowing f64) is `None` too.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// Jobs in the group (0 for an empty group, never `None`).
    Count,
    /// Share of decided jobs that passed: (success + warnings) / (success + warnings +
    /// failure + exception). Cancelled, skipped, retried, running and pending jobs are left
    /// out of both counts, as CircleCI leaves out cancelled runs.
    SuccessRate,
    /// Share of decided jobs that failed: (failure + exception) / the same denominator as
    /// `success_rate`, so the two add up to 1.
    FailureRate,
    /// Jobs in the group that failed (result `failure` or `exception`); 0, never `None`,
    /// for a group without failures.
    Failures,
    /// Number of distinct set values of a dimension among the group's jobs.
    Distinct(String),
    /// Jobs in the group that have the value.
    Present(Value),
    /// Sum of the value over the jobs that have it; `None` when none has it.
    Sum(Value),
    /// Arithmetic mean.
    Mean(Value),
    /// Smallest value.
    Min(Value),
    /// Largest value.
    Max(Value),
    /// Population standard deviation: sqrt(Σ(x − mean)² / n); 0 for one value.
    StddevPop(Value),
    /// Sample standard deviation: sqrt(Σ(x − mean)² / (n − 1)); `None` below two values.
    StddevSamp(Value),
    /// The exact p-quantile, 0 ≤ p ≤ 1, interpolated linearly between the two nearest
    /// ranks as PostgreSQL's `percentile_cont`: with the n values sorted, x at
    /// h = p·(n − 1) is x[⌊h⌋] + (h − ⌊h⌋)·(x[⌊h⌋+1] − x[⌊h⌋]).
    Quantile { value: Value, p: f64 },
}

/// Keep the k groups of one key part that rank first by a measure; the rest go into one
/// "other" bucket (recomputed exactly, not summed) or are dropped.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopK {
    /// Which key part is ranked (its index among the query's dims, then the bucket).
    #[serde(default)]
    pub part: usize,
    pub k: usize,
    /// Index into [`Query::measures`] of the measure to rank by, computed per value of
    /// the part over all the selected jobs.
    pub by: usize,
    /// Rank smallest first instead of largest first.
    #[serde(default)]
    pub ascending: bool,
    /// Put the remaining values into an "other" bucket instead of dropping their jobs.
    #[serde(default = "yes")]
    pub other: bool,
}

fn yes() -> bool {
    true
}

/// What groups are ordered by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortBy {
    /// The keys: dimension values alphabetically with "not set" after them, buckets in
    /// time order, "other" and then subtotals last.
    Key,
    /// A measure, by its index in [`Query::measures`]; `None` values last either way, ties
    /// by key.
    Measure(usize),
}

/// Group order of an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sort {
    pub by: SortBy,
    #[serde(default)]
    pub descending: bool,
}

impl Default for Sort {
    fn default() -> Self {
        Sort { by: SortBy::Key, descending: false }
    }
}

/// One report's worth of work for [`crate::engine::run`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Query {
    #[serde(default)]
    pub filters: Vec<Filter>,
    /// Up to two dimensions to group by (`builder`, `tag.MACHINE`, ...).
    #[serde(default)]
    pub dims: Vec<String>,
    /// Also group by a time bucket of the row time; it comes after the dims in the key.
    #[serde(default)]
    pub bucket: Option<TimeBucket>,
    #[serde(default)]
    pub measures: Vec<Measure>,
    /// Add subtotals for every subset of the key parts (as SQL's `CUBE`): for a pivot of
    /// rows × columns, one group per row, one per column and the grand total.
    #[serde(default)]
    pub totals: bool,
    #[serde(default)]
    pub top: Option<TopK>,
    #[serde(default)]
    pub sort: Sort,
}

/// A query the table cannot answer, with what to fix.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum QueryError {
    #[error("unknown dimension `{0}`")]
    UnknownDim(String),
    #[error("unknown metric `{0}`")]
    UnknownMetric(String),
    #[error("at most {max} dimensions can be grouped by, got {got}")]
    TooManyDims { max: usize, got: usize },
    #[error("quantile p must be within 0 and 1, got {0}")]
    BadQuantile(f64),
    #[error("measure index {0} is out of range")]
    BadMeasureIndex(usize),
    #[error("key part {0} is out of range")]
    BadPart(usize),
    #[error("range bound of `{0}` must be a number")]
    BadBound(String),
}
