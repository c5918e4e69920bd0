//! The embedded default store: one SQLite file in WAL mode.
//!
//! Durability: WAL with `synchronous=NORMAL` keeps every committed transaction across a
//! crash or kill of the process (a power cut may lose the last few); a write is
//! acknowledged only after its transaction commits.
//!
//! Writes go through rusqlite on one connection (`write`), the bulk job scan through
//! rusqlite on its own read-only connection (`scan`), and everything else through the sqlx
//! pool. All link the same libsqlite3.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use common::records::{JobKey, MetricSample, TestResult};
use common::{Job, JobResult, JobTable, Step, TimeRange, Timestamp};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use tracing::instrument;

use super::{JobQuery, Records, Store, StoreError, WriteReport};

mod reports;
mod scan;
#[cfg(test)]
mod tests;
mod write;

pub struct SqliteStore {
    pool: SqlitePool,
    /// The database file, for the bulk-read connection (see `scan`).
    path: PathBuf,
    /// The one writing connection: writers queue here, then write on a blocking thread.
    writer: tokio::sync::Mutex<write::Writer>,
}

impl SqliteStore {
    /// Opens the file a `sqlite://PATH` URL names, creating it if missing, and migrates it.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?;
        let path = options.get_filename().to_owned();
        if path.as_os_str() == ":memory:" {
            return Err(StoreError::Unsupported("an in-memory SQLite database".into()));
        }
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        let writer = tokio::sync::Mutex::new(write::Writer::open(&path)?);
        Ok(SqliteStore { pool, path, writer })
    }
}

/// Runs blocking store work without stalling the async workers: on a multi-threaded
/// runtime the worker hands its other tasks off first; on a current-thread runtime (tests,
/// or a blocking thread's `block_on`) there is no one else to stall.
fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

/// A step as stored in `jobs.steps`: times as epoch ms and the result as its code, so
/// writing a million steps prints no dates (and `json_each` queries compare integers).
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredStep {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    started_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    finished_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    result: Option<u8>,
}

impl StoredStep {
    fn json(steps: &[Step]) -> Option<String> {
        if steps.is_empty() {
            return None;
        }
        let stored: Vec<StoredStep> = steps
            .iter()
            .map(|s| StoredStep {
                name: s.name.clone(),
                started_at: s.started_at.map(Timestamp::as_millis),
                finished_at: s.finished_at.map(Timestamp::as_millis),
                result: s.result.map(JobResult::code),
            })
            .collect();
        Some(serde_json::to_string(&stored).expect("steps serialize"))
    }

    fn into_step(self) -> Result<Step, StoreError> {
        let result = match self.result {
            None => None,
            Some(code) => Some(
                JobResult::from_code(code)
                    .ok_or_else(|| StoreError::Corrupt(format!("step result {code}")))?,
            ),
        };
        Ok(Step {
            name: self.name,
            started_at: ts(self.started_at),
            finished_at: ts(self.finished_at),
            result,
        })
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(text: Option<String>) -> Result<Option<T>, StoreError> {
    text.map(|t| serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(e.to_string()))).transpose()
}

fn ts(ms: Option<i64>) -> Option<Timestamp> {
    ms.map(Timestamp::from_millis)
}

fn json_or_null<T: serde::Serialize>(map: &BTreeMap<String, T>) -> Option<String> {
    (!map.is_empty()).then(|| serde_json::to_string(map).expect("string-keyed maps serialize"))
}

#[async_trait]
impl Store for SqliteStore {
    #[instrument(skip_all, fields(jobs = records.jobs.len(), tests = records.tests.len(), samples = records.samples.len()))]
    async fn write(&self, records: Records<'_>) -> Result<WriteReport, StoreError> {
        // One writer at a time in this process; across processes, BEGIN IMMEDIATE.
        let mut writer = self.writer.lock().await;
        blocking(|| writer.write(records))
    }

    #[instrument(skip_all, fields(from_ms = query.range.from_ms, to_ms = query.range.to_ms))]
    async fn job_table(&self, query: &JobQuery) -> Result<JobTable, StoreError> {
        let (path, query) = (self.path.clone(), query.clone());
        tokio::task::spawn_blocking(move || scan::table(&path, &query))
            .await
            .map_err(|e| StoreError::Corrupt(format!("scan failed: {e}")))?
    }

    #[instrument(skip_all, fields(from_ms = query.range.from_ms, to_ms = query.range.to_ms))]
    async fn job_rows(&self, query: &JobQuery) -> Result<Vec<Job>, StoreError> {
        let (path, query) = (self.path.clone(), query.clone());
        tokio::task::spawn_blocking(move || scan::rows(&path, &query))
            .await
            .map_err(|e| StoreError::Corrupt(format!("scan failed: {e}")))?
    }

    async fn job(&self, source: &str, id: &str) -> Result<Option<Job>, StoreError> {
        let row = sqlx::query(
            "SELECT j.pk, p.value, br.value, b.value, w.value, r.value, j.requested_at, j.started_at, \
             j.finished_at, j.result, j.tags, j.metrics, j.url, j.steps \
             FROM jobs j JOIN names s ON s.id = j.source_id JOIN names b ON b.id = j.builder_id \
             LEFT JOIN names p ON p.id = j.project_id LEFT JOIN names br ON br.id = j.branch_id \
             LEFT JOIN names r ON r.id = j.revision_id LEFT JOIN names w ON w.id = j.worker_id \
             WHERE s.value = ? AND j.ext_id = ?",
        )
        .bind(source)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let result_of = |code: i64| {
            u8::try_from(code)
                .ok()
                .and_then(JobResult::from_code)
                .ok_or_else(|| StoreError::Corrupt(format!("result code {code}")))
        };
        Ok(Some(Job {
            source: source.to_owned(),
            id: id.to_owned(),
            builder: row.try_get(3)?,
            project: row.try_get(1)?,
            branch: row.try_get(2)?,
            revision: row.try_get(5)?,
            worker: row.try_get(4)?,
            requested_at: ts(row.try_get(6)?),
            started_at: ts(row.try_get(7)?),
            finished_at: ts(row.try_get(8)?),
            result: result_of(row.try_get(9)?)?,
            tags: parse_json(row.try_get(10)?)?.unwrap_or_default(),
            metrics: parse_json(row.try_get(11)?)?.unwrap_or_default(),
            url: row.try_get(12)?,
            steps: parse_json::<Vec<StoredStep>>(row.try_get(13)?)?
                .unwrap_or_default()
                .into_iter()
                .map(StoredStep::into_step)
                .collect::<Result<_, _>>()?,
        }))
    }

    async fn job_count(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs").fetch_one(&self.pool).await?;
        Ok(n as u64)
    }

    async fn tests_of(&self, source: &str, id: &str) -> Result<Vec<TestResult>, StoreError> {
        let rows = sqlx::query(
            "SELECT t.suite, t.name, t.outcome, t.duration_ms, t.message FROM test_results t \
             JOIN names s ON s.id = t.source_id WHERE s.value = ? AND t.job_ext_id = ? ORDER BY t.suite, t.name",
        )
        .bind(source)
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let outcome: String = r.try_get(2)?;
                Ok(TestResult {
                    job: JobKey { source: source.to_owned(), id: id.to_owned() },
                    suite: r.try_get(0)?,
                    name: r.try_get(1)?,
                    outcome: serde_json::from_value(serde_json::Value::String(outcome.clone()))
                        .map_err(|_| StoreError::Corrupt(format!("test outcome {outcome}")))?,
                    duration_ms: r.try_get(3)?,
                    message: r.try_get(4)?,
                })
            })
            .collect()
    }

    async fn samples(&self, name: &str, range: TimeRange) -> Result<Vec<MetricSample>, StoreError> {
        // Links are resolved here, not when samples are written, so it does not matter
        // whether a job or its samples arrive first: the stored key if that job exists,
        // else (for samples whose tags name a build) the job of that builder and build
        // number in the link's source, the latest should numbers have been reused, else the
        // stored key.
        let rows = sqlx::query(
            "SELECT s.tags, bn.value, b.build_number, m.time, m.value, m.unit, src.value, \
             CASE WHEN l.id IS NULL THEN NULL \
                  WHEN b.id IS NULL \
                    OR EXISTS (SELECT 1 FROM jobs j WHERE j.source_id = l.source_id AND j.ext_id = l.ext_id) \
                  THEN l.ext_id \
                  ELSE coalesce((SELECT j.ext_id FROM jobs j WHERE j.source_id = l.source_id \
                       AND j.builder_id = b.builder_id AND j.build_number = b.build_number \
                       ORDER BY j.t DESC LIMIT 1), l.ext_id) \
             END \
             FROM names n JOIN metric_samples m ON m.name_id = n.id \
             JOIN metric_series s ON s.id = m.series_id \
             LEFT JOIN metric_builds b ON b.id = m.build_id LEFT JOIN names bn ON bn.id = b.builder_id \
             LEFT JOIN metric_links l ON l.id = m.link_id LEFT JOIN names src ON src.id = l.source_id \
             WHERE n.value = ? AND m.time >= ? AND m.time <= ? ORDER BY m.time, m.series_id, m.build_id",
        )
        .bind(name)
        .bind(range.from_ms)
        .bind(range.to_ms)
        .fetch_all(&self.pool)
        .await?;
        let mut parsed: HashMap<String, BTreeMap<String, String>> = HashMap::new();
        rows.into_iter()
            .map(|r| {
                let json: String = r.try_get(0)?;
                let mut tags = match parsed.get(&json) {
                    Some(tags) => tags.clone(),
                    None => {
                        let tags: BTreeMap<String, String> =
                            serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                        parsed.entry(json).or_insert(tags).clone()
                    }
                };
                if let (Some(builder), Some(number)) =
                    (r.try_get::<Option<String>, _>(1)?, r.try_get::<Option<String>, _>(2)?)
                {
                    tags.insert(write::BUILDER_TAG.to_owned(), builder);
                    tags.insert(write::BUILD_TAG.to_owned(), number);
                }
                let job = match (r.try_get::<Option<String>, _>(6)?, r.try_get::<Option<String>, _>(7)?) {
                    (Some(source), Some(id)) => Some(JobKey { source, id }),
                    _ => None,
                };
                Ok(MetricSample {
                    name: name.to_owned(),
                    tags,
                    time: Timestamp::from_millis(r.try_get(3)?),
                    value: r.try_get(4)?,
                    unit: r.try_get(5)?,
                    job,
                })
            })
            .collect()
    }

    async fn test_table(
        &self,
        query: &JobQuery,
        test: Option<&str>,
    ) -> Result<common::reports::TestTable, StoreError> {
        reports::test_table(&self.path, query, test).await
    }

    async fn metrics(&self, range: TimeRange) -> Result<Vec<common::reports::MetricInfo>, StoreError> {
        reports::metrics(&self.pool, range).await
    }

    async fn high_water(&self, source: &str) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar("SELECT high_water FROM import_state WHERE source = ?")
            .bind(source)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn set_high_water(&self, source: &str, value: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO import_state (source, high_water) VALUES (?, ?) \
             ON CONFLICT (source) DO UPDATE SET high_water = excluded.high_water",
        )
        .bind(source)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
