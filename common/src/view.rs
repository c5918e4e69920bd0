//! The explorer's whole view state, and its round trip through the query string.
//!
//! The URL is the report: a [`ViewState`] holds everything the explorer shows (time range,
//! filters, measure, grouping, view, sort, hidden series, page) and nothing else, so a
//! copied link reproduces the view. [`ViewState::to_query_string`] writes only what differs
//! from [`ViewState::default`], keys in a fixed order; [`ViewState::from_query_string`]
//! reads it back, ignores keys it does not know (the data API receives the same string and
//! reads `from`, `to`, `source` and `format` from it; a view never writes the last two) and
//! refuses malformed values with a [`ViewError`] that names the key, the value and what is
//! allowed.
//!
//! The grammar (every key optional):
//!
//! | key | value | default | example |
//! |---|---|---|---|
//! | `from`, `to` | Grafana time: `now-7d`, `now/d`, epoch ms, RFC 3339, a date | `now-30d`, `now` | `from=now-7d&to=now` |
//! | `var-DIM` | a value to include; repeat for more | all | `var-worker=w1&var-worker=w2` |
//! | `not-DIM` | a value to exclude; repeat for more | none | `not-result=cancelled` |
//! | `range-VALUE` | `MIN..MAX`, either bound optional | none | `range-duration=600..`, `range-metric.size=..1e9` |
//! | `measure` | see [`ViewMeasure`] | `count` | `measure=p95(duration)`, `measure=success_rate` |
//! | `group` | up to two DIMs, comma-separated | none | `group=worker,tag.MACHINE` |
//! | `bucket` | `hour` `day` `week` `month` `none` | `day` | `bucket=week` |
//! | `view` | see [`ViewKind`] | `line` | `view=pivot` |
//! | `sort` | see [`SortKey`]; `-` first for descending | the view's order | `sort=-measure`, `sort=worker` |
//! | `hide` | a series label to hide; repeat for more | none | `hide=linux-worker-017` |
//! | `page` | job-list page, from 1 | `1` | `page=3` |
//!
//! DIM is `source`, `project`, `branch`, `builder`, `worker`, `revision`, `result` or
//! `tag.KEY`; VALUE is `duration`, `queue_wait`, `cpu_seconds` (seconds) or `metric.NAME`.
//! An empty `var-DIM=` selects jobs without a value for DIM (the engine's "not set"); the
//! values of `result` must be result names (`success`, `failure`, ...).
//! Keys and values are percent-encoded (UTF-8; space as `+`); in `group` a literal comma
//! separates dimensions and a comma inside a tag key is written `%2C`. Pass the raw
//! `location.search` to [`ViewState::from_query_string`], not a decoded map, or such a
//! comma cannot be told from the separator. A key given twice: the last one wins, except
//! the repeatable `var-`, `not-` and `hide` (and `range-` wins per VALUE).
//!
//! [`ViewState::to_engine_query`] turns a view into the engine query that computes it, and
//! [`ViewState::drill_down`] turns a clicked group back into a narrower view (a job list).

mod engine;
pub mod facets;
pub mod histogram;
pub mod pivot;
#[cfg(test)]
mod round_trip;
pub mod rows;
#[cfg(test)]
mod tests;
mod url;

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

pub use crate::engine::{TimeBucket, Value};
use crate::table::{FIXED_DIMS, TAG_PREFIX};

/// `from` of the default view: the last 30 days.
pub const DEFAULT_FROM: &str = "now-30d";
/// `to` of the default view.
pub const DEFAULT_TO: &str = "now";
/// Prefix of metric names in VALUE positions (`metric.build_size_bytes`).
pub const METRIC_PREFIX: &str = "metric.";

/// Everything the explorer shows, as the URL holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ViewState {
    /// Start of the time range, a Grafana expression kept as text (`now-7d`, epoch ms,
    /// RFC 3339); resolved with [`ViewState::time_range`].
    pub from: String,
    /// End of the time range, as `from`; rounding goes to the end of the unit.
    pub to: String,
    /// Value filters, at most one per dimension, ordered by dimension; none has both lists
    /// empty. [`ViewState::filter_mut`] keeps that so.
    pub filters: Vec<DimFilter>,
    /// Numeric ranges, at most one per value, ordered by value.
    pub ranges: Vec<RangeFilter>,
    pub measure: ViewMeasure,
    /// Up to two dimensions to group by, distinct.
    pub group: Vec<Dim>,
    /// Time bucket of the views with a time axis ([`ViewKind::has_time_axis`]).
    pub bucket: Option<TimeBucket>,
    pub view: ViewKind,
    /// `None`: the view's natural order (time, or key).
    pub sort: Option<ViewSort>,
    /// Series labels (legend entries) not drawn.
    pub hidden: Vec<String>,
    /// Page of the job list, from 1.
    pub page: u32,
}

impl Default for ViewState {
    /// The view of the bare URL `/`: jobs per day over the last 30 days, as a line.
    fn default() -> Self {
        ViewState {
            from: DEFAULT_FROM.to_owned(),
            to: DEFAULT_TO.to_owned(),
            filters: Vec::new(),
            ranges: Vec::new(),
            measure: ViewMeasure::Count,
            group: Vec::new(),
            bucket: Some(TimeBucket::Day),
            view: ViewKind::Line,
            sort: None,
            hidden: Vec::new(),
            page: 1,
        }
    }
}

/// A dimension jobs can be filtered and grouped by.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dim {
    /// The CI instance.
    #[default]
    Source,
    /// The project.
    Project,
    /// The branch.
    Branch,
    /// The builder (job definition).
    Builder,
    /// The machine or agent that ran the job.
    Worker,
    /// The revision built.
    Revision,
    /// How the job ended (`success`, `failure`, ...: [`crate::JobResult`]).
    Result,
    /// A free tag by key, `tag.KEY` in URLs and in the engine.
    Tag(String),
}

impl Dim {
    /// The fixed dimensions, in [`FIXED_DIMS`] order.
    pub const FIXED: [Dim; 7] =
        [Dim::Source, Dim::Project, Dim::Branch, Dim::Builder, Dim::Worker, Dim::Revision, Dim::Result];

    /// The name in URLs and in the engine: `worker`, `tag.MACHINE`.
    pub fn name(&self) -> Cow<'_, str> {
        match self {
            Dim::Tag(key) => Cow::Owned(format!("{TAG_PREFIX}{key}")),
            fixed => {
                let i = Dim::FIXED.iter().position(|d| d == fixed).expect("every other variant is fixed");
                Cow::Borrowed(FIXED_DIMS[i])
            }
        }
    }

    /// The dimension of a name; `None` for unknown names and for `tag.` without a key.
    pub fn parse(name: &str) -> Option<Dim> {
        if let Some(key) = name.strip_prefix(TAG_PREFIX) {
            return (!key.is_empty()).then(|| Dim::Tag(key.to_owned()));
        }
        FIXED_DIMS.iter().position(|d| *d == name).map(|i| Dim::FIXED[i].clone())
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// The name of a measured value in URLs: `duration`, `queue_wait`, `cpu_seconds`,
/// `metric.NAME`.
pub fn value_name(value: &Value) -> Cow<'_, str> {
    match value {
        Value::Duration => Cow::Borrowed("duration"),
        Value::QueueWait => Cow::Borrowed("queue_wait"),
        Value::CpuSeconds => Cow::Borrowed("cpu_seconds"),
        Value::Metric(name) => Cow::Owned(format!("{METRIC_PREFIX}{name}")),
    }
}

/// The value of a name written by [`value_name`].
pub fn parse_value(name: &str) -> Option<Value> {
    match name {
        "duration" => Some(Value::Duration),
        "queue_wait" => Some(Value::QueueWait),
        "cpu_seconds" => Some(Value::CpuSeconds),
        _ => name.strip_prefix(METRIC_PREFIX).filter(|m| !m.is_empty()).map(|m| Value::Metric(m.to_owned())),
    }
}

/// Which values of one dimension pass. Both lists apply (AND); an empty list does not
/// filter. `""` stands for "not set".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DimFilter {
    pub dim: Dim,
    /// Keep only jobs with one of these values (`var-DIM`).
    pub include: Vec<String>,
    /// Drop jobs with one of these values (`not-DIM`).
    pub exclude: Vec<String>,
}

/// Jobs whose value lies in `[min, max]`, either bound optional (not both); jobs without
/// the value never pass.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RangeFilter {
    pub value: Value,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// A statistic of a measured value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stat {
    /// Arithmetic mean.
    Mean,
    /// Median (exact, interpolated as PostgreSQL's `percentile_cont`).
    P50,
    /// 90th percentile.
    P90,
    /// 95th percentile.
    P95,
    /// 99th percentile.
    P99,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// Sample standard deviation, as PostgreSQL's `stddev`.
    Stddev,
    /// Sum.
    Sum,
}

impl Stat {
    pub const ALL: [Stat; 9] = [
        Stat::Mean,
        Stat::P50,
        Stat::P90,
        Stat::P95,
        Stat::P99,
        Stat::Min,
        Stat::Max,
        Stat::Stddev,
        Stat::Sum,
    ];

    /// The name in URLs, as serde writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Stat::Mean => "mean",
            Stat::P50 => "p50",
            Stat::P90 => "p90",
            Stat::P95 => "p95",
            Stat::P99 => "p99",
            Stat::Min => "min",
            Stat::Max => "max",
            Stat::Stddev => "stddev",
            Stat::Sum => "sum",
        }
    }
}

/// The one number the view shows per group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViewMeasure {
    /// Jobs (`count`).
    Count,
    /// Share of decided jobs that passed, cancelled excluded (`success_rate`).
    SuccessRate,
    /// Share of decided jobs that failed (`failure_rate`).
    FailureRate,
    /// Jobs that failed: result `failure` or `exception` (`failures`).
    Failures,
    /// CPU hours: the sum of CPU seconds / 3600 (`cpu_hours`).
    CpuHours,
    /// A statistic of a value: `p95(duration)`, `mean(metric.build_size_bytes)`.
    Stat { stat: Stat, value: Value },
}

impl ViewMeasure {
    /// The measures without an argument, with their URL names.
    pub const PLAIN: [(&'static str, ViewMeasure); 5] = [
        ("count", ViewMeasure::Count),
        ("success_rate", ViewMeasure::SuccessRate),
        ("failure_rate", ViewMeasure::FailureRate),
        ("failures", ViewMeasure::Failures),
        ("cpu_hours", ViewMeasure::CpuHours),
    ];

    /// The value the measure reads, if any: what a histogram of this measure bins.
    pub fn value(&self) -> Option<&Value> {
        match self {
            ViewMeasure::Stat { value, .. } => Some(value),
            ViewMeasure::CpuHours => Some(&Value::CpuSeconds),
            _ => None,
        }
    }

    /// Factor from the engine's number to the one shown (1/3600 for CPU hours, else 1).
    pub fn scale(&self) -> f64 {
        if *self == ViewMeasure::CpuHours { 1.0 / 3600.0 } else { 1.0 }
    }
}

impl fmt::Display for ViewMeasure {
    /// The URL form: `count`, `p95(duration)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ViewMeasure::Stat { stat, value } => write!(f, "{}({})", stat.as_str(), value_name(value)),
            plain => {
                let (name, _) =
                    ViewMeasure::PLAIN.iter().find(|(_, m)| m == plain).expect("all plain measures listed");
                f.write_str(name)
            }
        }
    }
}

/// How the result is drawn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViewKind {
    /// Time series as lines, one per group.
    #[default]
    Line,
    /// Time series as stacked bars, one stack per bucket.
    StackedBar,
    /// One bar per group, no time axis.
    Bar,
    /// First group dimension × second one, or × time bucket when there is one dimension;
    /// colour = measure.
    Heatmap,
    /// Distribution of the measure's value over the selected jobs.
    Histogram,
    /// Table: rows = first group dimension, columns = second, with totals.
    Pivot,
    /// The selected jobs themselves, paged.
    Jobs,
}

impl ViewKind {
    pub const ALL: [ViewKind; 7] = [
        ViewKind::Line,
        ViewKind::StackedBar,
        ViewKind::Bar,
        ViewKind::Heatmap,
        ViewKind::Histogram,
        ViewKind::Pivot,
        ViewKind::Jobs,
    ];

    /// The name in URLs, as serde writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ViewKind::Line => "line",
            ViewKind::StackedBar => "stacked_bar",
            ViewKind::Bar => "bar",
            ViewKind::Heatmap => "heatmap",
            ViewKind::Histogram => "histogram",
            ViewKind::Pivot => "pivot",
            ViewKind::Jobs => "jobs",
        }
    }

    /// Whether the view groups by the time bucket too.
    pub fn has_time_axis(self) -> bool {
        matches!(self, ViewKind::Line | ViewKind::StackedBar | ViewKind::Heatmap)
    }
}

/// What rows, groups or series are ordered by.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    /// The group key (`key`).
    Key,
    /// The view's measure (`measure`).
    Measure,
    /// Job time, in the job list (`time`).
    Time,
    /// A job's value, in the job list (`duration`, `metric.NAME`, ...).
    Value(Value),
    /// A job's dimension, in the job list (`worker`, `tag.KEY`, ...).
    Dim(Dim),
}

impl fmt::Display for SortKey {
    /// The URL form, without the direction.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SortKey::Key => f.write_str("key"),
            SortKey::Measure => f.write_str("measure"),
            SortKey::Time => f.write_str("time"),
            SortKey::Value(v) => f.write_str(&value_name(v)),
            SortKey::Dim(d) => f.write_str(&d.name()),
        }
    }
}

/// A sort key and direction: `sort=-measure` is the measure, largest first.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ViewSort {
    pub key: SortKey,
    pub descending: bool,
}

/// A query-string value (or a view that does not fit the loaded data): which key, what it
/// said, and what is allowed there. Shown on the page in place of the view.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{key}={value}`: {expected}")]
pub struct ViewError {
    /// The key as written (`var-worker`, `measure`).
    pub key: String,
    /// The offending value, decoded.
    pub value: String,
    /// What the key accepts, in a sentence.
    pub expected: String,
}

impl ViewError {
    pub fn new(key: impl Into<String>, value: impl Into<String>, expected: impl Into<String>) -> Self {
        ViewError { key: key.into(), value: value.into(), expected: expected.into() }
    }
}

impl ViewState {
    /// The filter of `dim`, if any.
    pub fn filter(&self, dim: &Dim) -> Option<&DimFilter> {
        self.filters.iter().find(|f| f.dim == *dim)
    }

    /// The filter of `dim`, inserted empty in dimension order when missing. Leave it with a
    /// value in one of its lists, or call [`ViewState::prune`].
    pub fn filter_mut(&mut self, dim: &Dim) -> &mut DimFilter {
        let i = match self.filters.binary_search_by(|f| f.dim.cmp(dim)) {
            Ok(i) => i,
            Err(i) => {
                self.filters.insert(i, DimFilter { dim: dim.clone(), ..Default::default() });
                i
            }
        };
        &mut self.filters[i]
    }

    /// Drops filters with both lists empty.
    pub fn prune(&mut self) {
        self.filters.retain(|f| !f.include.is_empty() || !f.exclude.is_empty());
    }

    /// Keeps only jobs whose `dim` is `value` (`""`: not set), replacing what was there.
    pub fn narrow(&mut self, dim: &Dim, value: &str) {
        let f = self.filter_mut(dim);
        f.include = vec![value.to_owned()];
        f.exclude.clear();
    }
}
