//! The job store: one trait, one implementation per database engine, chosen once at
//! start-up from the `DATABASE_URL` scheme. Only this module writes SQL.

mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use common::records::{MetricSample, TestResult};
use common::reports::{MetricInfo, TestTable};
use common::{Job, JobTable, TimeRange};
use serde::Serialize;

use crate::settings::DatabaseUrl;

pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database error: {0}")]
    Scan(#[from] rusqlite::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("{0} is not supported yet (use sqlite://PATH)")]
    Unsupported(String),
}

/// Which jobs to read: a time range (on the job's time, started else requested) and
/// optionally a set of sources.
#[derive(Clone, Debug, PartialEq)]
pub struct JobQuery {
    pub range: TimeRange,
    /// Empty means every source.
    pub sources: Vec<String>,
}

/// Records written in one transaction.
#[derive(Clone, Copy, Debug, Default)]
pub struct Records<'a> {
    pub jobs: &'a [Job],
    pub tests: &'a [TestResult],
    pub samples: &'a [MetricSample],
}

/// How many records of each kind were new and how many replaced stored ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WriteReport {
    pub jobs: Counts,
    pub tests: Counts,
    pub samples: Counts,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub inserted: u64,
    pub updated: u64,
}

impl std::ops::AddAssign for WriteReport {
    fn add_assign(&mut self, other: WriteReport) {
        for (a, b) in
            [(&mut self.jobs, other.jobs), (&mut self.tests, other.tests), (&mut self.samples, other.samples)]
        {
            a.inserted += b.inserted;
            a.updated += b.updated;
        }
    }
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Writes all records in one transaction: all are stored or none. Records are keyed
    /// (jobs by source + id, tests by job + suite + name, samples by name + tags + time);
    /// writing a key again replaces what was stored. Within one call the last record of a
    /// key wins.
    async fn write(&self, records: Records<'_>) -> Result<WriteReport, StoreError>;

    /// The jobs of a query as a columnar table, ordered by time.
    async fn job_table(&self, query: &JobQuery) -> Result<JobTable, StoreError>;

    /// The jobs of a query as records (with url, without steps), ordered like
    /// [`Store::job_table`].
    async fn job_rows(&self, query: &JobQuery) -> Result<Vec<Job>, StoreError>;

    /// One job with its steps.
    async fn job(&self, source: &str, id: &str) -> Result<Option<Job>, StoreError>;

    /// How many jobs are stored.
    async fn job_count(&self) -> Result<u64, StoreError>;

    /// Test results of one job.
    async fn tests_of(&self, source: &str, id: &str) -> Result<Vec<TestResult>, StoreError>;

    /// Metric samples named `name` in a time range, ordered by time.
    ///
    /// A sample's job is resolved when it is read, so jobs and their samples may arrive in
    /// either order: the job it was written with if that is stored; else, when its tags
    /// have `builder_name` and `build_number`, the job of that builder whose `buildnumber`
    /// tag is that number in the same source (how Buildbot's statistics samples find builds
    /// keyed by buildid); else the job key as written.
    async fn samples(&self, name: &str, range: TimeRange) -> Result<Vec<MetricSample>, StoreError>;

    /// Test results of the jobs a query selects, with those jobs, dictionary coded, jobs
    /// ordered by time. `test`, when given, keeps only tests whose `suite::name` contains
    /// it (ASCII case-insensitive). Results whose job is not stored are left out.
    async fn test_table(&self, query: &JobQuery, test: Option<&str>) -> Result<TestTable, StoreError>;

    /// Every metric with samples in `range`: name, sample count, unit, first and last time;
    /// ordered by name.
    async fn metrics(&self, range: TimeRange) -> Result<Vec<MetricInfo>, StoreError>;

    /// How far an incremental importer got for `source` (e.g. Buildbot's last complete_at).
    async fn high_water(&self, source: &str) -> Result<Option<i64>, StoreError>;

    async fn set_high_water(&self, source: &str, value: i64) -> Result<(), StoreError>;
}

/// Opens (creating and migrating if needed) the store a URL names.
pub async fn open(url: &DatabaseUrl) -> Result<Arc<dyn Store>, StoreError> {
    if url.0.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open(&url.0).await?))
    } else {
        Err(StoreError::Unsupported(format!("{url}")))
    }
}
