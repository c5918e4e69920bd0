//! The engine's specification in its most obvious form: straight iteration over `Job`
//! records, strings compared as strings, sorting for quantiles, jiff for calendars. The
//! property tests check [`super::run`] against it; it is never fast and never shipped.

use std::collections::{BTreeMap, BTreeSet};

use jiff::tz::TimeZone;
use jiff::{Timestamp as Jiff, ToSpan};

use super::query::{Filter, Measure, Query, TimeBucket, TimeField, Value};
use crate::job::{Job, JobResult};
use crate::time::Timestamp;

/// Group label tuple → (jobs, measure values), labelled as [`super::Answer::label`] does.
pub type Groups = BTreeMap<Vec<String>, (u64, Vec<Option<f64>>)>;

pub fn answer(jobs: &[Job], q: &Query) -> Groups {
    let selected: Vec<&Job> = jobs.iter().filter(|j| q.filters.iter().all(|f| passes(j, f))).collect();
    let n_parts = q.dims.len() + usize::from(q.bucket.is_some());
    let mut labels: Vec<(&Job, Vec<String>)> = selected.iter().map(|j| (*j, key(j, q))).collect();
    if let Some(top) = &q.top {
        let mut by_value: BTreeMap<String, Vec<&Job>> = BTreeMap::new();
        for (j, k) in &labels {
            by_value.entry(k[top.part].clone()).or_default().push(j);
        }
        let mut ranked: Vec<(Option<f64>, String)> =
            by_value.iter().map(|(label, js)| (measure(js, &q.measures[top.by]), label.clone())).collect();
        ranked.sort_by(|(a, la), (b, lb)| {
            let by = match (a, b) {
                (Some(x), Some(y)) if top.ascending => x.partial_cmp(y).unwrap(),
                (Some(x), Some(y)) => y.partial_cmp(x).unwrap(),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            };
            by.then_with(|| (la == NOT_SET, la).cmp(&(lb == NOT_SET, lb)))
        });
        let kept: BTreeSet<String> = ranked.into_iter().take(top.k).map(|(_, l)| l).collect();
        labels.retain_mut(|(_, k)| {
            let keep = kept.contains(&k[top.part]);
            if !keep && top.other {
                k[top.part] = "(other)".into();
            }
            keep || top.other
        });
    }
    let mut groups: BTreeMap<Vec<String>, Vec<&Job>> = BTreeMap::new();
    if n_parts == 0 {
        groups.insert(Vec::new(), Vec::new());
    }
    let subsets: Vec<u32> =
        if q.totals && n_parts > 0 { (0..1 << n_parts).collect() } else { vec![(1 << n_parts) - 1] };
    for (j, k) in &labels {
        for &keep in &subsets {
            let rolled = k
                .iter()
                .enumerate()
                .map(|(i, l)| if keep & (1 << i) != 0 { l.clone() } else { "(all)".into() })
                .collect();
            groups.entry(rolled).or_default().push(j);
        }
    }
    groups
        .into_iter()
        .map(|(k, js)| {
            let values = q.measures.iter().map(|m| measure(&js, m)).collect();
            (k, (js.len() as u64, values))
        })
        .collect()
}

const NOT_SET: &str = "(not set)";

fn dim<'a>(j: &'a Job, name: &str) -> &'a str {
    match name {
        "source" => &j.source,
        "project" => j.project.as_deref().unwrap_or(""),
        "branch" => j.branch.as_deref().unwrap_or(""),
        "builder" => &j.builder,
        "worker" => j.worker.as_deref().unwrap_or(""),
        "revision" => j.revision.as_deref().unwrap_or(""),
        "result" => j.result.as_str(),
        tag => j.tags.get(tag.strip_prefix("tag.").expect("a tag dimension")).map_or("", String::as_str),
    }
}

fn value(j: &Job, v: &Value) -> Option<f64> {
    match v {
        Value::Duration => j.duration_ms().map(|d| d as f64 / 1000.0),
        Value::QueueWait => j.queue_ms().map(|d| d as f64 / 1000.0),
        Value::CpuSeconds => j.cpu_seconds(),
        Value::Metric(name) => j.metrics.get(name).copied(),
    }
}

fn passes(j: &Job, f: &Filter) -> bool {
    match f {
        Filter::Eq { dim: d, value } => dim(j, d) == value,
        Filter::In { dim: d, values } => values.iter().any(|v| v == dim(j, d)),
        Filter::NotIn { dim: d, values } => !values.iter().any(|v| v == dim(j, d)),
        Filter::Contains { dim: d, text } => {
            let v = dim(j, d);
            !v.is_empty() && v.to_lowercase().contains(&text.to_lowercase())
        }
        Filter::Range { value: v, min, max } => {
            value(j, v).is_some_and(|x| min.is_none_or(|m| x >= m) && max.is_none_or(|m| x <= m))
        }
        Filter::Time { field, from_ms, to_ms } => {
            let t = match field {
                TimeField::Time => j.time(),
                TimeField::Requested => j.requested_at,
                TimeField::Started => j.started_at,
                TimeField::Finished => j.finished_at,
            };
            t.map(Timestamp::as_millis)
                .is_some_and(|t| from_ms.is_none_or(|f| t >= f) && to_ms.is_none_or(|to| t <= to))
        }
    }
}

fn key(j: &Job, q: &Query) -> Vec<String> {
    let mut k: Vec<String> = q
        .dims
        .iter()
        .map(|d| match dim(j, d) {
            "" => NOT_SET.to_owned(),
            v => v.to_owned(),
        })
        .collect();
    if let Some(b) = q.bucket {
        let t = j.time().expect("generated jobs have a time").as_millis();
        k.push(Timestamp::from_millis(bucket_start(t, b)).to_rfc3339());
    }
    k
}

/// Start of the UTC calendar bucket containing `ms`, by jiff.
fn bucket_start(ms: i64, b: TimeBucket) -> i64 {
    let z = Jiff::from_millisecond(ms).unwrap().to_zoned(TimeZone::UTC);
    let day = z.start_of_day().unwrap();
    let start = match b {
        TimeBucket::Hour => day.checked_add(i64::from(z.hour()).hours()).unwrap(),
        TimeBucket::Day => day,
        TimeBucket::Week => day.checked_sub(i64::from(z.weekday().to_monday_zero_offset()).days()).unwrap(),
        TimeBucket::Month => z.first_of_month().unwrap().start_of_day().unwrap(),
    };
    start.timestamp().as_millisecond()
}

fn measure(js: &[&Job], m: &Measure) -> Option<f64> {
    let values = |v: &Value| -> Vec<f64> { js.iter().filter_map(|j| value(j, v)).collect() };
    let finite = |x: f64| x.is_finite().then_some(x);
    let rate = |pick: fn(JobResult) -> bool| {
        let decided: Vec<JobResult> = js
            .iter()
            .map(|j| j.result)
            .filter(|r| {
                matches!(
                    r,
                    JobResult::Success | JobResult::Warnings | JobResult::Failure | JobResult::Exception
                )
            })
            .collect();
        (!decided.is_empty())
            .then(|| decided.iter().filter(|r| pick(**r)).count() as f64 / decided.len() as f64)
    };
    let spread = |v: &Value, ddof: usize| {
        let xs = values(v);
        if xs.len() <= ddof {
            return None;
        }
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        finite((xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (xs.len() - ddof) as f64).sqrt())
    };
    match m {
        Measure::Count => Some(js.len() as f64),
        Measure::SuccessRate => rate(|r| matches!(r, JobResult::Success | JobResult::Warnings)),
        Measure::FailureRate => rate(|r| matches!(r, JobResult::Failure | JobResult::Exception)),
        Measure::Failures => {
            Some(js.iter().filter(|j| matches!(j.result, JobResult::Failure | JobResult::Exception)).count()
                as f64)
        }
        Measure::Distinct(d) => {
            Some(js.iter().map(|j| dim(j, d)).filter(|v| !v.is_empty()).collect::<BTreeSet<_>>().len() as f64)
        }
        Measure::Present(v) => Some(values(v).len() as f64),
        Measure::Sum(v) => values(v).into_iter().reduce(|a, b| a + b).and_then(finite),
        Measure::Mean(v) => {
            let xs = values(v);
            (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64).and_then(finite)
        }
        Measure::Min(v) => values(v).into_iter().reduce(f64::min),
        Measure::Max(v) => values(v).into_iter().reduce(f64::max),
        Measure::StddevPop(v) => spread(v, 0),
        Measure::StddevSamp(v) => spread(v, 1),
        Measure::Quantile { value: v, p } => {
            let mut xs = values(v);
            if xs.is_empty() {
                return None;
            }
            xs.sort_by(f64::total_cmp);
            let h = p * (xs.len() - 1) as f64;
            let lo = h.floor() as usize;
            let hi = (lo + 1).min(xs.len() - 1);
            finite(xs[lo] + (h - lo as f64) * (xs[hi] - xs[lo]))
        }
    }
}
