//! Bodies of the report endpoints (see docs/API.md): `GET /api/v1/tests` (a
//! [`TestTable`]), `GET /api/v1/metrics` ([`MetricInfo`]s) and `GET /api/v1/samples` (a
//! [`SampleTable`]).
//!
//! Both tables are columnar JSON with repeated strings dictionary coded: a string table per
//! kind of name and, per row, an index into it. A week of a busy farm's test results is a
//! million rows; spelled out as objects they would be ~150 bytes each, coded ~12.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::records::{JobKey, MetricSample, TestOutcome};

/// Test results of the jobs of a time range, with the jobs they belong to.
///
/// Jobs are ordered by time (ties in the order they were stored); each job's results follow
/// one another in `results`, `jobs.results[j]` of them, so the results are in job-time order
/// too. A test is a distinct `(suite, name)`; its display id is [`test_id`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TestTable {
    /// String tables the index columns below point into.
    pub sources: Vec<String>,
    pub builders: Vec<String>,
    pub workers: Vec<String>,
    pub revisions: Vec<String>,
    pub suites: Vec<String>,
    pub names: Vec<String>,
    pub jobs: TestJobs,
    pub tests: TestCases,
    pub results: TestRows,
}

/// One entry per job that has at least one result in the table.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TestJobs {
    /// Index into [`TestTable::sources`].
    pub source: Vec<u32>,
    /// The job's id within its source.
    pub id: Vec<String>,
    /// The job's time (started, else requested), epoch ms.
    pub time_ms: Vec<i64>,
    /// Index into [`TestTable::builders`].
    pub builder: Vec<u32>,
    /// Index into [`TestTable::workers`], `null` when the job has no worker.
    pub worker: Vec<Option<u32>>,
    /// Index into [`TestTable::revisions`], `null` when the job names no revision.
    pub revision: Vec<Option<u32>>,
    /// How many rows of [`TestTable::results`] belong to the job.
    pub results: Vec<u32>,
}

/// The distinct tests of the table.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TestCases {
    /// Index into [`TestTable::suites`].
    pub suite: Vec<u32>,
    /// Index into [`TestTable::names`].
    pub name: Vec<u32>,
}

/// One entry per test result.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TestRows {
    /// Index into [`TestTable::tests`].
    pub test: Vec<u32>,
    /// [`outcome_code`]: 0 passed, 1 failed, 2 error, 3 skipped.
    pub outcome: Vec<u8>,
    pub duration_ms: Vec<Option<i64>>,
}

/// A test outcome as its one-digit code in [`TestRows::outcome`].
pub fn outcome_code(outcome: TestOutcome) -> u8 {
    match outcome {
        TestOutcome::Passed => 0,
        TestOutcome::Failed => 1,
        TestOutcome::Error => 2,
        TestOutcome::Skipped => 3,
    }
}

/// The outcome a code of [`outcome_code`] stands for.
pub fn outcome_from_code(code: u8) -> Option<TestOutcome> {
    Some(match code {
        0 => TestOutcome::Passed,
        1 => TestOutcome::Failed,
        2 => TestOutcome::Error,
        3 => TestOutcome::Skipped,
        _ => return None,
    })
}

/// How a test is named for people: `suite::name`, or the name alone when the report gave
/// no suite.
pub fn test_id(suite: &str, name: &str) -> String {
    if suite.is_empty() { name.to_owned() } else { format!("{suite}::{name}") }
}

impl TestTable {
    /// Number of test results.
    pub fn len(&self) -> usize {
        self.results.test.len()
    }

    pub fn is_empty(&self) -> bool {
        self.results.test.is_empty()
    }

    /// The display id of test `t` (an index into [`TestTable::tests`]).
    pub fn test_name(&self, t: usize) -> String {
        test_id(&self.suites[self.tests.suite[t] as usize], &self.names[self.tests.name[t] as usize])
    }

    /// The job of every result row, in row order.
    pub fn job_of_rows(&self) -> Vec<u32> {
        let mut out = Vec::with_capacity(self.len());
        for (j, &n) in self.jobs.results.iter().enumerate() {
            out.extend(std::iter::repeat_n(j as u32, n as usize));
        }
        out
    }

    /// Checks that every column has its length and every index points into its table, so
    /// code reading the table may index without checks. The browser calls it on what it
    /// receives.
    pub fn check(&self) -> Result<(), String> {
        let jobs = self.jobs.id.len();
        let j = &self.jobs;
        for (name, len) in [
            ("jobs.source", j.source.len()),
            ("jobs.time_ms", j.time_ms.len()),
            ("jobs.builder", j.builder.len()),
            ("jobs.worker", j.worker.len()),
            ("jobs.revision", j.revision.len()),
            ("jobs.results", j.results.len()),
        ] {
            if len != jobs {
                return Err(format!("{name} has {len} entries for {jobs} jobs"));
            }
        }
        if self.tests.name.len() != self.tests.suite.len() {
            return Err("tests.name and tests.suite differ in length".into());
        }
        let rows = self.len();
        if self.results.outcome.len() != rows || self.results.duration_ms.len() != rows {
            return Err("results columns differ in length".into());
        }
        let counted: u64 = j.results.iter().map(|&n| u64::from(n)).sum();
        if counted != rows as u64 {
            return Err(format!("jobs account for {counted} results, the table has {rows}"));
        }
        within("source", j.source.iter().copied(), self.sources.len())?;
        within("builder", j.builder.iter().copied(), self.builders.len())?;
        within("worker", j.worker.iter().flatten().copied(), self.workers.len())?;
        within("revision", j.revision.iter().flatten().copied(), self.revisions.len())?;
        within("suite", self.tests.suite.iter().copied(), self.suites.len())?;
        within("name", self.tests.name.iter().copied(), self.names.len())?;
        within("test", self.results.test.iter().copied(), self.tests.name.len())?;
        within("outcome", self.results.outcome.iter().map(|&o| u32::from(o)), 4)?;
        Ok(())
    }
}

/// An error naming the first of `codes` that is not below `len`.
fn within(what: &str, mut codes: impl Iterator<Item = u32>, len: usize) -> Result<(), String> {
    match codes.find(|&c| c as usize >= len) {
        Some(c) => Err(format!("{what} index {c} is outside its table of {len}")),
        None => Ok(()),
    }
}

/// Builds a [`TestTable`] row by row, interning strings. Push a job, then its results.
#[derive(Default)]
pub struct TestTableBuilder {
    table: TestTable,
    sources: Interner,
    builders: Interner,
    workers: Interner,
    revisions: Interner,
    suites: Interner,
    names: Interner,
    tests: HashMap<(u32, u32), u32>,
}

impl TestTableBuilder {
    /// Starts a job; the results pushed next belong to it.
    pub fn push_job(
        &mut self,
        source: &str,
        id: &str,
        time_ms: i64,
        builder: &str,
        worker: Option<&str>,
        revision: Option<&str>,
    ) {
        let j = &mut self.table.jobs;
        j.source.push(self.sources.code(source));
        j.id.push(id.to_owned());
        j.time_ms.push(time_ms);
        j.builder.push(self.builders.code(builder));
        j.worker.push(worker.map(|w| self.workers.code(w)));
        j.revision.push(revision.map(|r| self.revisions.code(r)));
        j.results.push(0);
    }

    /// Adds a result to the last job pushed.
    ///
    /// # Panics
    /// If no job was pushed yet.
    pub fn push_result(&mut self, suite: &str, name: &str, outcome: TestOutcome, duration_ms: Option<i64>) {
        let key = (self.suites.code(suite), self.names.code(name));
        let next = self.tests.len() as u32;
        let test = *self.tests.entry(key).or_insert_with(|| {
            self.table.tests.suite.push(key.0);
            self.table.tests.name.push(key.1);
            next
        });
        let r = &mut self.table.results;
        r.test.push(test);
        r.outcome.push(outcome_code(outcome));
        r.duration_ms.push(duration_ms);
        *self.table.jobs.results.last_mut().expect("a job is pushed before its results") += 1;
    }

    pub fn finish(mut self) -> TestTable {
        self.table.sources = self.sources.values;
        self.table.builders = self.builders.values;
        self.table.workers = self.workers.values;
        self.table.revisions = self.revisions.values;
        self.table.suites = self.suites.values;
        self.table.names = self.names.values;
        self.table
    }
}

#[derive(Default)]
struct Interner {
    values: Vec<String>,
    codes: HashMap<String, u32>,
}

impl Interner {
    fn code(&mut self, value: &str) -> u32 {
        if let Some(&c) = self.codes.get(value) {
            return c;
        }
        let c = self.values.len() as u32;
        self.values.push(value.to_owned());
        self.codes.insert(value.to_owned(), c);
        c
    }
}

/// One entry of `GET /api/v1/metrics`: a metric name and what the range holds of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricInfo {
    pub name: String,
    /// Samples of the metric in the range.
    pub samples: u64,
    /// The unit the samples give (one of them when they disagree).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Time of the first and last sample in the range, epoch ms.
    pub first_ms: i64,
    pub last_ms: i64,
}

/// The samples of one metric in a time range, ordered by time: `GET /api/v1/samples`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SampleTable {
    pub name: String,
    /// The unit the samples give (the last one seen when they disagree).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    pub time_ms: Vec<i64>,
    pub value: Vec<f64>,
    /// The distinct tag sets; `tags[i]` indexes it.
    pub tag_sets: Vec<BTreeMap<String, String>>,
    pub tags: Vec<u32>,
    /// The job each sample was measured in: an index into `job_sources` and the id.
    pub job_sources: Vec<String>,
    pub job_source: Vec<Option<u32>>,
    pub job_id: Vec<Option<String>>,
}

impl SampleTable {
    /// Codes samples of one metric (as [`crate::records::MetricSample`]s, time-ordered).
    pub fn from_samples(name: &str, samples: &[MetricSample]) -> SampleTable {
        let mut table = SampleTable { name: name.to_owned(), ..SampleTable::default() };
        let mut tag_codes: HashMap<&BTreeMap<String, String>, u32> = HashMap::new();
        let mut sources = Interner::default();
        for s in samples {
            table.time_ms.push(s.time.as_millis());
            table.value.push(s.value);
            let next = tag_codes.len() as u32;
            let code = *tag_codes.entry(&s.tags).or_insert_with(|| {
                table.tag_sets.push(s.tags.clone());
                next
            });
            table.tags.push(code);
            table.job_source.push(s.job.as_ref().map(|j| sources.code(&j.source)));
            table.job_id.push(s.job.as_ref().map(|j| j.id.clone()));
            if s.unit.is_some() {
                table.unit.clone_from(&s.unit);
            }
        }
        table.job_sources = sources.values;
        table
    }

    pub fn len(&self) -> usize {
        self.time_ms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.time_ms.is_empty()
    }

    /// The job sample `i` was measured in, if known.
    pub fn job(&self, i: usize) -> Option<JobKey> {
        let source = self.job_sources.get(self.job_source[i]? as usize)?;
        Some(JobKey { source: source.clone(), id: self.job_id[i].clone()? })
    }

    /// Checks column lengths and indices (see [`TestTable::check`]).
    pub fn check(&self) -> Result<(), String> {
        let n = self.len();
        for (what, len) in [
            ("value", self.value.len()),
            ("tags", self.tags.len()),
            ("job_source", self.job_source.len()),
            ("job_id", self.job_id.len()),
        ] {
            if len != n {
                return Err(format!("{what} has {len} entries for {n} samples"));
            }
        }
        if let Some(&c) = self.tags.iter().find(|&&c| c as usize >= self.tag_sets.len()) {
            return Err(format!("tag set index {c} is outside its table of {}", self.tag_sets.len()));
        }
        if let Some(c) = self.job_source.iter().flatten().find(|&&c| c as usize >= self.job_sources.len()) {
            return Err(format!("job source index {c} is outside its table of {}", self.job_sources.len()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timestamp;

    #[test]
    fn builder_interns_and_counts() {
        let mut b = TestTableBuilder::default();
        b.push_job("ci", "1", 1000, "linux", Some("w1"), Some("abc"));
        b.push_result("s", "a", TestOutcome::Passed, Some(5));
        b.push_result("s", "b", TestOutcome::Failed, None);
        b.push_job("ci", "2", 2000, "linux", None, None);
        b.push_result("s", "a", TestOutcome::Skipped, None);
        let t = b.finish();
        t.check().unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(t.sources, ["ci"]);
        assert_eq!(t.suites, ["s"]);
        assert_eq!(t.names, ["a", "b"]);
        assert_eq!(t.results.test, [0, 1, 0]);
        assert_eq!(t.results.outcome, [0, 1, 3]);
        assert_eq!(t.jobs.results, [2, 1]);
        assert_eq!(t.jobs.worker, [Some(0), None]);
        assert_eq!(t.job_of_rows(), [0, 0, 1]);
        assert_eq!(t.test_name(1), "s::b");
        assert_eq!(test_id("", "x"), "x");
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(serde_json::from_str::<TestTable>(&json).unwrap(), t);
    }

    #[test]
    fn check_finds_bad_indices() {
        let mut b = TestTableBuilder::default();
        b.push_job("ci", "1", 1000, "linux", None, None);
        b.push_result("s", "a", TestOutcome::Passed, None);
        let good = b.finish();
        let mut bad = good.clone();
        bad.results.test[0] = 7;
        assert!(bad.check().unwrap_err().contains("test index 7"));
        let mut bad = good.clone();
        bad.jobs.results[0] = 2;
        assert!(bad.check().is_err());
        let mut bad = good;
        bad.results.outcome[0] = 9;
        assert!(bad.check().is_err());
    }

    #[test]
    fn outcome_codes_round_trip() {
        for o in [TestOutcome::Passed, TestOutcome::Failed, TestOutcome::Error, TestOutcome::Skipped] {
            assert_eq!(outcome_from_code(outcome_code(o)), Some(o));
        }
        assert_eq!(outcome_from_code(4), None);
    }

    #[test]
    fn sample_table_codes_tags_and_jobs() {
        let sample = |t: i64, v: f64, host: &str, job: Option<&str>| MetricSample {
            name: "m".into(),
            value: v,
            unit: Some("s".into()),
            time: Timestamp::from_millis(t),
            tags: [("host".to_owned(), host.to_owned())].into(),
            job: job.map(|id| JobKey { source: "ci".into(), id: id.into() }),
        };
        let t = SampleTable::from_samples(
            "m",
            &[sample(1, 1.0, "a", Some("7")), sample(2, 2.0, "b", None), sample(3, 3.0, "a", Some("8"))],
        );
        t.check().unwrap();
        assert_eq!(t.tags, [0, 1, 0]);
        assert_eq!(t.tag_sets.len(), 2);
        assert_eq!(t.unit.as_deref(), Some("s"));
        assert_eq!(t.job(2), Some(JobKey { source: "ci".into(), id: "8".into() }));
        assert_eq!(t.job(1), None);
    }
}
