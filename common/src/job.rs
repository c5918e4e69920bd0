//! The job record: what every importer produces, the ingest API accepts and the data API
//! returns as rows.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// How a job ended, or that it has not yet.
///
/// The vocabulary is the superset of the CI systems Buildscope reads (Buildbot's 0–6 codes,
/// Jenkins, GitHub, GitLab); importers map their own names onto it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobResult {
    /// Finished and passed.
    Success,
    /// Finished, passed with warnings (Buildbot 1, Jenkins UNSTABLE).
    Warnings,
    /// Finished and failed.
    Failure,
    /// Not run because something decided it was not needed.
    Skipped,
    /// Infrastructure or harness error rather than a failure of the code under test.
    Exception,
    /// Interrupted and re-queued (Buildbot 5).
    Retry,
    /// Stopped by a person or a newer push.
    Cancelled,
    /// Started, not finished.
    Running,
    /// Requested, not started.
    Pending,
}

impl JobResult {
    /// Every variant, in code order: the position is the code stored in the database and on
    /// the wire, so append only.
    pub const ALL: [JobResult; 9] = [
        JobResult::Success,
        JobResult::Warnings,
        JobResult::Failure,
        JobResult::Skipped,
        JobResult::Exception,
        JobResult::Retry,
        JobResult::Cancelled,
        JobResult::Running,
        JobResult::Pending,
    ];

    /// The stable numeric code (index in [`JobResult::ALL`]).
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The variant for a stable numeric code.
    pub fn from_code(code: u8) -> Option<JobResult> {
        Self::ALL.get(usize::from(code)).copied()
    }

    /// The snake_case name used in JSON, CSV and URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            JobResult::Success => "success",
            JobResult::Warnings => "warnings",
            JobResult::Failure => "failure",
            JobResult::Skipped => "skipped",
            JobResult::Exception => "exception",
            JobResult::Retry => "retry",
            JobResult::Cancelled => "cancelled",
            JobResult::Running => "running",
            JobResult::Pending => "pending",
        }
    }

    /// Whether the job has reached a final state.
    pub fn is_finished(self) -> bool {
        !matches!(self, JobResult::Running | JobResult::Pending)
    }

    /// Whether the job counts as failed for failure rates: failure and exception.
    pub fn is_failed(self) -> bool {
        matches!(self, JobResult::Failure | JobResult::Exception)
    }
}

impl fmt::Display for JobResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for JobResult {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown result `{s}`, expected one of {}", Self::names()))
    }
}

impl JobResult {
    fn names() -> String {
        Self::ALL.map(JobResult::as_str).join(", ")
    }
}

/// One step of a job (Buildbot step, GitHub step, Yocto task).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Step name, unique within its job in most CI systems (not enforced).
    pub name: String,
    /// When the step started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// When the step finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    /// How the step ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<JobResult>,
}

/// One execution of one builder (job definition) on one worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    /// Which CI instance the job comes from, e.g. `buildbot-main`.
    pub source: String,
    /// Identifier unique within `source`; `(source, id)` is the idempotency key.
    #[serde(deserialize_with = "string_or_integer")]
    pub id: String,
    /// The builder or job definition that ran.
    pub builder: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// The machine or agent that ran the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// When the job was requested (queued).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    pub result: JobResult,
    /// Link to the job's page in its CI system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Free dimensions: platform, MACHINE, DISTRO, build type ...
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Numbers measured in this job, e.g. `build_size_bytes`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
}

/// The name of the metric that, when a job reports it, is its CPU time in seconds.
pub const CPU_SECONDS_METRIC: &str = "cpu_seconds";

impl Job {
    /// The instant a job is filed under for time-range narrowing: when it started, or when
    /// it was requested if it has not started.
    pub fn time(&self) -> Option<Timestamp> {
        self.started_at.or(self.requested_at)
    }

    /// Wall-clock run time in milliseconds; `None` until the job has started and finished.
    pub fn duration_ms(&self) -> Option<i64> {
        derived::duration_ms(self.started_at, self.finished_at)
    }

    /// Queue wait in milliseconds (started − requested).
    pub fn queue_ms(&self) -> Option<i64> {
        derived::queue_ms(self.requested_at, self.started_at)
    }

    /// CPU time in seconds (see [`derived::cpu_seconds`]).
    pub fn cpu_seconds(&self) -> Option<f64> {
        derived::cpu_seconds(self.metrics.get(CPU_SECONDS_METRIC).copied(), self.duration_ms())
    }

    /// Checks what serde cannot: required text present, times in order, numbers finite.
    /// Returns the offending field and why.
    pub fn validate(&self) -> Result<(), FieldError> {
        for (field, value) in [("source", &self.source), ("id", &self.id), ("builder", &self.builder)] {
            if value.trim().is_empty() {
                return Err(FieldError::new(field, "must not be empty"));
            }
        }
        for (field, value) in [
            ("source", Some(&self.source)),
            ("id", Some(&self.id)),
            ("builder", Some(&self.builder)),
            ("project", self.project.as_ref()),
            ("branch", self.branch.as_ref()),
            ("revision", self.revision.as_ref()),
            ("worker", self.worker.as_ref()),
        ] {
            if value.is_some_and(|v| v.len() > MAX_NAME_LEN) {
                return Err(FieldError::new(field, format!("longer than {MAX_NAME_LEN} bytes")));
            }
        }
        if self.time().is_none() {
            return Err(FieldError::new(
                "started_at",
                "a job needs started_at or requested_at to place it in time",
            ));
        }
        if let (Some(s), Some(f)) = (self.started_at, self.finished_at)
            && f < s
        {
            return Err(FieldError::new("finished_at", format!("{f} is before started_at {s}")));
        }
        if let (Some(r), Some(s)) = (self.requested_at, self.started_at)
            && s < r
        {
            return Err(FieldError::new("started_at", format!("{s} is before requested_at {r}")));
        }
        if self.finished_at.is_some() && self.started_at.is_none() {
            return Err(FieldError::new("started_at", "missing while finished_at is set"));
        }
        match self.result {
            JobResult::Pending if self.started_at.is_some() => {
                return Err(FieldError::new("result", "`pending` but started_at is set"));
            }
            JobResult::Running if self.finished_at.is_some() => {
                return Err(FieldError::new("result", "`running` but finished_at is set"));
            }
            _ => {}
        }
        for (key, value) in &self.tags {
            if key.is_empty() {
                return Err(FieldError::new("tags", "a tag key is empty"));
            }
            if key.len() > MAX_NAME_LEN || value.len() > MAX_NAME_LEN {
                return Err(FieldError::new(
                    format!("tags.{key}"),
                    format!("longer than {MAX_NAME_LEN} bytes"),
                ));
            }
        }
        for (name, value) in &self.metrics {
            if name.is_empty() {
                return Err(FieldError::new("metrics", "a metric name is empty"));
            }
            if !value.is_finite() {
                return Err(FieldError::new(format!("metrics.{name}"), "must be a finite number"));
            }
        }
        for (i, step) in self.steps.iter().enumerate() {
            if step.name.is_empty() {
                return Err(FieldError::new(format!("steps[{i}].name"), "must not be empty"));
            }
            if let (Some(s), Some(f)) = (step.started_at, step.finished_at)
                && f < s
            {
                return Err(FieldError::new(
                    format!("steps[{i}].finished_at"),
                    format!("{f} is before started_at {s}"),
                ));
            }
        }
        Ok(())
    }
}

/// Longest accepted name, tag or id, in bytes: long enough for any real branch name,
/// short enough that a runaway field is caught at the edge.
pub const MAX_NAME_LEN: usize = 1024;

/// A field of a record that is wrong, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError { field: field.into(), message: message.into() }
    }
}

/// Derived values every report needs, shared by rows and columns so both agree.
pub mod derived {
    use crate::time::Timestamp;

    /// Run time in ms: finished − started, when both are known.
    pub fn duration_ms(started: Option<Timestamp>, finished: Option<Timestamp>) -> Option<i64> {
        Some(finished?.as_millis() - started?.as_millis())
    }

    /// Queue wait in ms: started − requested, when both are known.
    pub fn queue_ms(requested: Option<Timestamp>, started: Option<Timestamp>) -> Option<i64> {
        Some(started?.as_millis() - requested?.as_millis())
    }

    /// CPU time in seconds: the job's own `cpu_seconds` metric when it reports one (a Yocto
    /// build's rusage, say); otherwise its wall-clock duration, i.e. one worker slot busy for
    /// the whole run. Infrastructure load in CPU hours is the sum of this over jobs.
    pub fn cpu_seconds(reported: Option<f64>, duration_ms: Option<i64>) -> Option<f64> {
        reported.or_else(|| duration_ms.map(|d| d as f64 / 1000.0))
    }
}

fn string_or_integer<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or an integer")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }
        fn visit_string<E: serde::de::Error>(self, v: String) -> Result<String, E> {
            Ok(v)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<String, E> {
            Ok(v.to_string())
        }
    }
    d.deserialize_any(V)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(json: &str) -> Result<Job, String> {
        serde_json::from_str::<Job>(json).map_err(|e| e.to_string())
    }

    const BASE: &str = r#""source":"bb","id":7,"builder":"linux","result":"success""#;

    #[test]
    fn accepts_rfc3339_and_epoch_seconds() {
        let j = job(&format!(
            r#"{{{BASE},"requested_at":1700000000,"started_at":"2023-11-14T22:13:30Z","finished_at":1700000090.5}}"#
        ))
        .unwrap();
        assert_eq!(j.id, "7");
        assert_eq!(j.queue_ms(), Some(10_000));
        assert_eq!(j.duration_ms(), Some(80_500));
        assert_eq!(j.cpu_seconds(), Some(80.5));
        j.validate().unwrap();
    }

    #[test]
    fn reported_cpu_seconds_win_over_duration() {
        let mut j = job(&format!(r#"{{{BASE},"started_at":1700000000,"finished_at":1700000010}}"#)).unwrap();
        j.metrics.insert(CPU_SECONDS_METRIC.into(), 35.0);
        assert_eq!(j.cpu_seconds(), Some(35.0));
    }

    #[test]
    fn names_unknown_result() {
        let e = job(r#"{"source":"bb","id":"1","builder":"b","result":"green","started_at":1700000000}"#)
            .unwrap_err();
        assert!(e.contains("unknown variant `green`"), "{e}");
    }

    #[test]
    fn validation_names_the_field() {
        let check = |extra: &str, field: &str| {
            let j = job(&format!("{{{BASE}{extra}}}")).unwrap();
            assert_eq!(j.validate().unwrap_err().field, field, "{extra}");
        };
        check(r#","started_at":1700000100,"finished_at":1700000050"#, "finished_at");
        check(r#","requested_at":1700000100,"started_at":1700000050"#, "started_at");
        check("", "started_at");
        check(r#","started_at":1700000000,"metrics":{"x":1},"tags":{"":"v"}"#, "tags");
        let mut j = job(&format!(r#"{{{BASE},"started_at":1700000000}}"#)).unwrap();
        j.builder = " ".into();
        assert_eq!(j.validate().unwrap_err().field, "builder");
    }

    #[test]
    fn result_codes_round_trip() {
        for r in JobResult::ALL {
            assert_eq!(JobResult::from_code(r.code()), Some(r));
            assert_eq!(r.as_str().parse::<JobResult>(), Ok(r));
        }
        assert_eq!(JobResult::from_code(9), None);
    }
}
