//! Importers: turn what CI systems emit into Buildscope records.
//!
//! Each module parses one source format into [`ImportBatch`]es; it never touches the store.
//! The caller (CLI `buildscope import KIND` or `POST /api/v1/import/KIND`) writes each batch
//! in one transaction, so a malformed input leaves nothing half-written.
//!
//! Shared pieces: `json` is the streaming JSON reader of the REST formats (Buildbot,
//! Jenkins, GitHub, GitLab); [`pull`] is what their HTTP pulls share (each format's `fetch`
//! walks its API's pages and hands batches to [`run::pull`], which keeps the high-water mark).

pub mod buildapi;
pub mod buildbot;
pub mod buildstats;
pub mod csv;
pub mod github;
pub mod gitlab;
pub mod influx;
pub mod jenkins;
pub(crate) mod json;
pub mod junit;
pub mod pull;
pub mod run;

use common::Job;
use common::records::{JobKey, MetricSample, TestResult};

/// What a parser produced from (part of) one input.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ImportBatch {
    pub jobs: Vec<Job>,
    pub tests: Vec<TestResult>,
    pub samples: Vec<MetricSample>,
    /// Records read but deliberately not imported, with the reason.
    pub skipped: Vec<Skipped>,
}

/// A record that was read but not imported, and why (e.g. "build 12 has no builder").
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    /// Where in the input: `line 12`, `builds[3]`, `suite x / case y`.
    pub at: String,
    pub reason: String,
}

/// Why an input could not be imported, with where.
#[derive(Debug, thiserror::Error)]
#[error("{at}: {message}")]
pub struct ImportError {
    /// File, record and/or line: `builds-4hr.js: builds[17].starttime`, `line 42`.
    pub at: String,
    pub message: String,
}

impl ImportError {
    pub fn new(at: impl Into<String>, message: impl Into<String>) -> Self {
        ImportError { at: at.into(), message: message.into() }
    }
}

/// How a parser should label what it reads, and what the caller knows that the input does
/// not say. Build with `..Default::default()` so new fields do not break callers.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// File name or URL the input came from; prefixes every error location.
    pub origin: String,
    /// Overrides the `source` the parser would give its jobs (e.g. `buildbot-main`).
    pub source: Option<String>,
    /// The job the input belongs to: required for JUnit reports; for buildstats it overrides
    /// the key derived from the build directory.
    pub job: Option<JobKey>,
    /// "Now" in epoch milliseconds: the time of line-protocol points without a timestamp.
    pub now_ms: i64,
    /// Unit of line-protocol timestamps (the write endpoints' `precision` parameter).
    pub precision: influx::Precision,
}

/// A reader that fails, rather than ends, once more than `limit` bytes come through: the
/// guard against decompression bombs in gzip and tar input.
pub(crate) struct Limited<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R> Limited<R> {
    pub(crate) fn new(inner: R, limit: u64) -> Self {
        Limited { inner, left: limit, limit }
    }
}

impl<R: std::io::Read> std::io::Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            // Anything beyond the limit is an error; exactly at it is fine.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(std::io::Error::other(format!(
                    "decompressed input is larger than the {} byte limit",
                    self.limit
                ))),
            };
        }
        let max = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// Adds a tag unless it could never pass validation or carries nothing (empty key or
/// value, key or value over [`common::job::MAX_NAME_LEN`]): one runaway property (a commit
/// message, say) should not cost the whole job.
pub(crate) fn insert_tag(
    tags: &mut std::collections::BTreeMap<String, String>,
    key: &str,
    value: impl Into<String>,
) {
    let value = value.into();
    let fits = |s: &str| !s.is_empty() && s.len() <= common::job::MAX_NAME_LEN;
    if fits(key) && fits(&value) {
        tags.insert(key.to_owned(), value);
    }
}

/// Records per batch the streaming JSON importers hand to their sink: one transaction each.
pub const BATCH_RECORDS: usize = 10_000;

/// Collects converted records into batches of [`BATCH_RECORDS`] and hands each full one to
/// the sink, so a parser's memory stays bounded by one batch.
pub(crate) struct Batcher<'s> {
    batch: ImportBatch,
    sink: &'s mut dyn FnMut(ImportBatch) -> Result<(), ImportError>,
}

impl<'s> Batcher<'s> {
    pub(crate) fn new(sink: &'s mut dyn FnMut(ImportBatch) -> Result<(), ImportError>) -> Self {
        Batcher { batch: ImportBatch::default(), sink }
    }

    /// Adds a job, or a skip at `at` (only formatted for a skip) with the reason.
    pub(crate) fn push(
        &mut self,
        at: impl FnOnce() -> String,
        job: Result<Job, String>,
    ) -> Result<(), ImportError> {
        match job {
            Ok(job) => self.batch.jobs.push(job),
            Err(reason) => self.batch.skipped.push(Skipped { at: at(), reason }),
        }
        if self.batch.jobs.len() + self.batch.skipped.len() >= BATCH_RECORDS {
            (self.sink)(std::mem::take(&mut self.batch))?;
        }
        Ok(())
    }

    /// Hands over what is left. The sink always gets this last batch, empty or not, so an
    /// input without records still reports.
    pub(crate) fn finish(mut self) -> Result<(), ImportError> {
        (self.sink)(std::mem::take(&mut self.batch))
    }
}
