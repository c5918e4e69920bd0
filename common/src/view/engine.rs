//! From a view to the engine's [`Query`], and from a clicked group back to a view.

use jiff::ToSpan;
use jiff::tz::TimeZone;

use super::{Dim, SortKey, Stat, TimeBucket, ViewError, ViewMeasure, ViewState, value_name};
use crate::engine::{Answer, Filter, Key, Measure, Part, Query, Sort, SortBy, TimeField, Value};
use crate::job::JobResult;
use crate::table::JobTable;
use crate::time::{TimeRange, Timestamp};

/// The results [`ViewMeasure::Failures`] counts.
const FAILED: [JobResult; 2] = [JobResult::Failure, JobResult::Exception];

impl ViewState {
    /// `from`/`to` resolved at `now_ms`; an error names the end that is wrong.
    pub fn time_range(&self, now_ms: i64) -> Result<TimeRange, ViewError> {
        TimeRange::parse(&self.from, &self.to, now_ms).map_err(|e| {
            let (key, value) = if e.starts_with("from") { ("from", &self.from) } else { ("to", &self.to) };
            ViewError::new(key, value, e)
        })
    }

    /// The filters of this view as engine filters: the time range, then each dimension's
    /// include and exclude lists (except `except`'s: what a facet's own counts leave out),
    /// then the value ranges. The measure adds none here (see [`ViewState::to_engine_query`]).
    pub fn engine_filters(
        &self,
        table: &JobTable,
        now_ms: i64,
        except: Option<&Dim>,
    ) -> Result<Vec<Filter>, ViewError> {
        let range = self.time_range(now_ms)?;
        let mut filters = vec![Filter::Time {
            field: TimeField::Time,
            from_ms: Some(range.from_ms),
            to_ms: Some(range.to_ms),
        }];
        for f in self.filters.iter().filter(|f| Some(&f.dim) != except) {
            let name = f.dim.name();
            for (prefix, values) in [("var", &f.include), ("not", &f.exclude)] {
                if values.is_empty() {
                    continue;
                }
                let key = format!("{prefix}-{name}");
                check_dim(table, &f.dim, &key, &values[0])?;
                let (dim, values) = (name.clone().into_owned(), values.clone());
                filters.push(if prefix == "var" {
                    Filter::In { dim, values }
                } else {
                    Filter::NotIn { dim, values }
                });
            }
        }
        for r in &self.ranges {
            check_value(
                table,
                &r.value,
                &format!("range-{}", value_name(&r.value)),
                &super::url::range_text(r),
            )?;
            filters.push(Filter::Range { value: r.value.clone(), min: r.min, max: r.max });
        }
        Ok(filters)
    }

    /// The engine query that computes what this view shows, over `table` at `now_ms`:
    /// the time range, filters and ranges; the measure; the group dimensions, plus the time
    /// bucket in views with a time axis; totals in the pivot; the group sort.
    ///
    /// For `histogram` and `jobs` the query has no grouping: the explorer takes its
    /// selection ([`crate::engine::select`] over `filters`) and bins the measure's value
    /// ([`ViewMeasure::value`]) or lists the rows. `cpu_hours`
    /// is the sum of CPU seconds, to be multiplied by [`ViewMeasure::scale`]. Sorts other
    /// than `key` and `measure` order job-list rows and leave the groups in key order.
    ///
    /// Names the table does not have (a tag or metric absent from the loaded jobs) are an
    /// error naming the key and what the table has.
    pub fn to_engine_query(&self, table: &JobTable, now_ms: i64) -> Result<Query, ViewError> {
        let filters = self.engine_filters(table, now_ms, None)?;
        if let Some(value) = self.measure.value() {
            check_value(table, value, "measure", &self.measure.to_string())?;
        }
        let grouped = !matches!(self.view, super::ViewKind::Histogram | super::ViewKind::Jobs);
        let mut dims = Vec::new();
        if grouped {
            for dim in &self.group {
                check_dim(table, dim, "group", &dim.name())?;
                dims.push(dim.name().into_owned());
            }
        }
        // A heatmap is two-dimensional: its columns are the second dimension if there is
        // one, else the time bucket.
        let heatmap_of_two = self.view == super::ViewKind::Heatmap && dims.len() == 2;
        let sort = match self.sort.as_ref().map(|s| (&s.key, s.descending)) {
            Some((SortKey::Key, descending)) => Sort { by: SortBy::Key, descending },
            Some((SortKey::Measure, descending)) => Sort { by: SortBy::Measure(0), descending },
            _ => Sort::default(),
        };
        Ok(Query {
            filters,
            dims,
            bucket: self.bucket.filter(|_| self.view.has_time_axis() && !heatmap_of_two),
            measures: vec![self.measure.engine_measure()],
            totals: self.view == super::ViewKind::Pivot,
            top: None,
            sort,
        })
    }

    /// The view of the jobs behind group `group` of `answer` (the answer of this view's
    /// query at `now_ms`): each dimension narrowed to the group's value, the time range to
    /// its bucket (cut to the view's range: the first and last buckets can stick out), only
    /// failed results when the measure counts failures; shown as the job list from page 1.
    /// Parts that are a subtotal (`All`) or top-k's "other" do not narrow. Push the result
    /// as a new history entry, so Back returns to this view.
    pub fn drill_down(&self, answer: &Answer, group: usize, now_ms: i64) -> ViewState {
        let mut view = self.clone();
        for (part, keys) in answer.parts.iter().zip(&answer.keys) {
            match (part, keys[group]) {
                (Part::Dim { name, labels }, Key::Value(i)) => {
                    if let Some(dim) = Dim::parse(name) {
                        view.narrow(&dim, &labels[i as usize]);
                    }
                }
                (Part::Dim { name, .. }, Key::NotSet) => {
                    if let Some(dim) = Dim::parse(name) {
                        view.narrow(&dim, "");
                    }
                }
                (Part::Bucket(bucket), Key::Bucket(start_ms)) => {
                    let (mut from, mut to) = (start_ms, bucket_end_ms(*bucket, start_ms) - 1);
                    if let Ok(range) = self.time_range(now_ms) {
                        (from, to) = (from.max(range.from_ms), to.min(range.to_ms));
                    }
                    view.from = Timestamp::from_millis(from).to_rfc3339();
                    view.to = Timestamp::from_millis(to).to_rfc3339();
                }
                _ => {}
            }
        }
        if self.measure == ViewMeasure::Failures {
            let failed = failed_names();
            let result = view.filter_mut(&Dim::Result);
            let kept: Vec<String> = if result.include.is_empty() {
                failed
            } else {
                result.include.iter().filter(|r| failed.contains(r)).cloned().collect()
            };
            // An empty list would not filter at all; a group with no failures keeps its jobs.
            if !kept.is_empty() {
                result.include = kept;
            }
            view.prune();
        }
        view.view = super::ViewKind::Jobs;
        view.page = 1;
        view.sort = None;
        view.hidden.clear();
        view
    }
}

fn failed_names() -> Vec<String> {
    FAILED.map(|r| r.as_str().to_owned()).to_vec()
}

impl ViewMeasure {
    /// The engine measure computing this one (before [`ViewMeasure::scale`]).
    pub fn engine_measure(&self) -> Measure {
        match self {
            ViewMeasure::Count => Measure::Count,
            ViewMeasure::Failures => Measure::Failures,
            ViewMeasure::SuccessRate => Measure::SuccessRate,
            ViewMeasure::FailureRate => Measure::FailureRate,
            ViewMeasure::CpuHours => Measure::Sum(Value::CpuSeconds),
            ViewMeasure::Stat { stat, value } => {
                let value = value.clone();
                match stat {
                    Stat::Mean => Measure::Mean(value),
                    Stat::P50 => Measure::Quantile { value, p: 0.5 },
                    Stat::P90 => Measure::Quantile { value, p: 0.9 },
                    Stat::P95 => Measure::Quantile { value, p: 0.95 },
                    Stat::P99 => Measure::Quantile { value, p: 0.99 },
                    Stat::Min => Measure::Min(value),
                    Stat::Max => Measure::Max(value),
                    Stat::Stddev => Measure::StddevSamp(value),
                    Stat::Sum => Measure::Sum(value),
                }
            }
        }
    }
}

fn check_dim(table: &JobTable, dim: &Dim, key: &str, value: &str) -> Result<(), ViewError> {
    if table.dim(&dim.name()).is_some() {
        return Ok(());
    }
    let names: Vec<&str> = table.dims.iter().map(|d| d.name.as_str()).collect();
    Err(ViewError::new(
        key,
        value,
        format!("no loaded job has `{dim}`; the dimensions are {}", names.join(", ")),
    ))
}

fn check_value(table: &JobTable, value: &Value, key: &str, text: &str) -> Result<(), ViewError> {
    let Value::Metric(name) = value else { return Ok(()) };
    if table.metric(name).is_some() {
        return Ok(());
    }
    let names: Vec<&str> = table.metrics.iter().map(|m| m.name.as_str()).collect();
    let have = if names.is_empty() { "none".to_owned() } else { names.join(", ") };
    Err(ViewError::new(key, text, format!("no loaded job has metric `{name}`; the metrics are {have}")))
}

/// First instant after the bucket starting at `start_ms` (UTC calendar for months).
fn bucket_end_ms(bucket: TimeBucket, start_ms: i64) -> i64 {
    const HOUR_MS: i64 = 3_600_000;
    match bucket {
        TimeBucket::Hour => start_ms + HOUR_MS,
        TimeBucket::Day => start_ms + 24 * HOUR_MS,
        TimeBucket::Week => start_ms + 7 * 24 * HOUR_MS,
        TimeBucket::Month => jiff::Timestamp::from_millisecond(start_ms)
            .ok()
            .and_then(|t| t.to_zoned(TimeZone::UTC).checked_add(1.month()).ok())
            .map_or(start_ms + 31 * 24 * HOUR_MS, |z| z.timestamp().as_millisecond()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use crate::demo::{DemoConfig, generate};
    use crate::engine::{self, Filter, Measure, Query, Sort, SortBy, TimeField};
    use crate::table::JobTable;

    fn demo() -> (JobTable, i64) {
        let config = DemoConfig { jobs: 3000, days: 10, ..Default::default() };
        let jobs = generate(config);
        (JobTable::from_jobs(&jobs), config.end_ms)
    }

    #[test]
    fn engine_query_is_what_the_url_says() {
        let (table, now) = demo();
        let v = ViewState::from_query_string(
            "from=now-7d&var-worker=a&var-worker=b&not-result=cancelled&range-duration=60..&measure=p95(duration)\
             &group=builder&view=pivot&sort=-measure",
        )
        .unwrap();
        let q = v.to_engine_query(&table, now).unwrap();
        let want = Query {
            filters: vec![
                Filter::Time {
                    field: TimeField::Time,
                    from_ms: Some(now - 7 * 86_400_000),
                    to_ms: Some(now),
                },
                Filter::In { dim: "worker".into(), values: vec!["a".into(), "b".into()] },
                Filter::NotIn { dim: "result".into(), values: vec!["cancelled".into()] },
                Filter::Range { value: Value::Duration, min: Some(60.0), max: None },
            ],
            dims: vec!["builder".into()],
            bucket: None,
            measures: vec![Measure::Quantile { value: Value::Duration, p: 0.95 }],
            totals: true,
            top: None,
            sort: Sort { by: SortBy::Measure(0), descending: true },
        };
        assert_eq!(q, want);

        // Time-axis views add the bucket; failures are counted per group; CPU hours scale.
        let v = ViewState::from_query_string("group=tag.MACHINE&measure=failures").unwrap();
        let q = v.to_engine_query(&table, now).unwrap();
        assert_eq!(
            (q.dims.as_slice(), q.bucket, q.totals),
            (&["tag.MACHINE".to_owned()][..], Some(TimeBucket::Day), false)
        );
        assert_eq!(q.measures, [Measure::Failures]);
        assert_eq!(q.filters.len(), 1, "failures count within the groups, they do not filter");
        let answer = engine::run(&table, &q).unwrap();
        let failed: f64 = answer.values[0].iter().map(|v| v.unwrap()).sum();
        let by_hand = (0..table.len)
            .filter(|&r| {
                table.result(r).is_failed() && table.time[r] >= now - 30 * 86_400_000 && table.time[r] <= now
            })
            .count();
        assert!(by_hand > 0);
        assert_eq!(failed, by_hand as f64);
        assert_eq!(ViewMeasure::CpuHours.scale() * 7200.0, 2.0);
        // A heatmap of two dimensions has no room for the bucket; of one, it takes it.
        let q = |url| ViewState::from_query_string(url).unwrap().to_engine_query(&table, now).unwrap();
        assert_eq!(q("view=heatmap&group=worker,builder").bucket, None);
        assert_eq!(q("view=heatmap&group=worker").bucket, Some(TimeBucket::Day));
        assert_eq!(q("view=bar&group=worker").bucket, None);
        assert_eq!(q("view=jobs&group=worker").dims, Vec::<String>::new());

        // Names the loaded jobs lack say so, under their key.
        for (url, key, needle) in [
            ("group=tag.nope", "group", "no loaded job has `tag.nope`"),
            ("not-tag.nope=x", "not-tag.nope", "the dimensions are source"),
            ("measure=mean(metric.nope)", "measure", "build_size_bytes"),
            ("range-metric.nope=1..", "range-metric.nope", "metric `nope`"),
            ("to=now-60d", "to", "before from"),
        ] {
            let e = ViewState::from_query_string(url).unwrap().to_engine_query(&table, now).unwrap_err();
            assert_eq!(e.key, key, "{url}: {e}");
            assert!(e.expected.contains(needle), "{url}: {e}");
        }
    }

    #[test]
    fn drill_down_selects_exactly_the_jobs_of_the_group() {
        let (table, now) = demo();
        for url in [
            "group=worker&view=bar",
            "group=builder,result&view=pivot",
            "group=tag.MACHINE&measure=failures&view=heatmap",
            "group=branch&bucket=week&view=stacked_bar&var-project=core",
            "measure=failures&var-result=failure&var-result=success&group=worker&view=bar",
            "bucket=hour&from=now-2d",
            // Day buckets cut by the range at both ends (the demo ends at midnight).
            "group=worker&from=now-36h&to=now-6h",
            "group=builder,worker&view=heatmap&from=now-3d",
        ] {
            let v = ViewState::from_query_string(url).unwrap();
            let answer = engine::run(&table, &v.to_engine_query(&table, now).unwrap()).unwrap();
            assert!(answer.len() > 1, "{url}: {} groups", answer.len());
            for g in 0..answer.len() {
                let drilled = v.drill_down(&answer, g, now);
                assert_eq!(drilled.view, ViewKind::Jobs);
                let back = ViewState::from_query_string(&drilled.to_query_string()).unwrap();
                assert_eq!(back, drilled, "{url} group {g}");
                let q = drilled.to_engine_query(&table, now).unwrap();
                let jobs = engine::select(&table, &q.filters).unwrap().len() as u64;
                // Drilling into failures lists the failed jobs of the group.
                let want = match v.measure {
                    ViewMeasure::Failures => answer.values[0][g].unwrap() as u64,
                    _ => answer.rows[g],
                };
                assert_eq!(jobs, want, "{url} group {g}: {}", drilled.to_query_string());
            }
        }
        // What a drill-down URL looks like.
        let v = ViewState::from_query_string("group=worker&bucket=day&measure=failures").unwrap();
        let answer = engine::run(&table, &v.to_engine_query(&table, now).unwrap()).unwrap();
        let g = (0..answer.len()).find(|&g| matches!(answer.keys[0][g], engine::Key::Value(_))).unwrap();
        let url = v.drill_down(&answer, g, now).to_query_string();
        let worker = answer.label(0, g);
        let day = answer.label(1, g);
        assert_eq!(
            url,
            format!(
                "from={day}&to={}T23:59:59.999Z&var-worker={worker}&var-result=failure&var-result=exception\
                 &measure=failures&group=worker&view=jobs",
                &day[..10],
            )
        );
    }
}
