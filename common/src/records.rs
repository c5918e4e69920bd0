//! Records that hang off jobs or stand beside them: test results and metric samples.
//! (Steps live on [`crate::job::Job`].)

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// Identifies a job: `(source, id)`, the same key the ingest API uses.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct JobKey {
    pub source: String,
    pub id: String,
}

/// How one test case ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestOutcome {
    /// Ran and passed.
    Passed,
    /// An assertion failed (JUnit `<failure>`).
    Failed,
    /// The test could not run to completion (JUnit `<error>`).
    Error,
    /// Not run (JUnit `<skipped>`).
    Skipped,
}

/// One test case's result within one job. `(job, suite, name)` is the idempotency key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestResult {
    pub job: JobKey,
    /// Suite or class name; "" when the report has none.
    pub suite: String,
    pub name: String,
    pub outcome: TestOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    /// Failure or error message, truncated to a few KiB by importers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// One measured value at one instant (InfluxDB line protocol point, Buildbot statistics
/// capture, a benchmark's runtime ...). `(name, tags, time)` is the idempotency key: a
/// re-sent point replaces the stored one, as InfluxDB does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricSample {
    /// `measurement.field` for line protocol, or a plain name.
    pub name: String,
    pub value: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    pub time: Timestamp,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// The job the value was measured in, when known (e.g. from `builder_name` and
    /// `build_number` tags).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<JobKey>,
}
