//! The embedded default store: one SQLite file in WAL mode.
//!
//! Durability: WAL with `synchronous=NORMAL` keeps every committed transaction across a
//! crash or kill of the process (a power cut may lose the last few); a write is
//! acknowledged only after its transaction commits.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use common::records::{JobKey, MetricSample, TestOutcome, TestResult};
use common::{Job, JobResult, JobTable, Step, TimeRange, Timestamp};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool, Transaction};
use tracing::instrument;

use super::{Counts, JobQuery, Records, Store, StoreError, WriteReport};

mod scan;

/// Rows per multi-row statement: well under SQLite's 32,766 bound parameters.
const CHUNK: usize = 500;

pub struct SqliteStore {
    pool: SqlitePool,
    /// The database file, for the bulk-read connection (see `scan`).
    path: PathBuf,
    writer: tokio::sync::Mutex<()>,
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
        Ok(SqliteStore { pool, path, writer: tokio::sync::Mutex::new(()) })
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
        // One writer at a time in this process, and IMMEDIATE so the transaction takes the
        // write lock up front: two deferred transactions that both read and then write
        // would deadlock on the upgrade, and SQLite answers one of them SQLITE_BUSY at once
        // instead of waiting. Another process's writer is waited for (busy_timeout).
        let _writer = self.writer.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut wanted: BTreeSet<&str> = BTreeSet::new();
        for job in records.jobs {
            wanted.extend([job.source.as_str(), job.builder.as_str()]);
            wanted.extend(
                [&job.project, &job.branch, &job.revision, &job.worker]
                    .into_iter()
                    .flatten()
                    .map(String::as_str),
            );
        }
        for test in records.tests {
            wanted.insert(&test.job.source);
        }
        for sample in records.samples {
            wanted.insert(&sample.name);
            if let Some(job) = &sample.job {
                wanted.insert(&job.source);
            }
        }
        let ids = intern(&mut tx, wanted).await?;
        let report = WriteReport {
            jobs: write_jobs(&mut tx, &ids, records.jobs).await?,
            tests: write_tests(&mut tx, &ids, records.tests).await?,
            samples: write_samples(&mut tx, &ids, records.samples).await?,
        };
        tx.commit().await?;
        Ok(report)
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
        let rows = sqlx::query(
            "SELECT m.tags, m.time, m.value, m.unit, js.value, m.job_ext_id FROM metric_samples m \
             JOIN names n ON n.id = m.name_id LEFT JOIN names js ON js.id = m.job_source_id \
             WHERE n.value = ? AND m.time >= ? AND m.time <= ? ORDER BY m.time",
        )
        .bind(name)
        .bind(range.from_ms)
        .bind(range.to_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let tags: String = r.try_get(0)?;
                let job = match (r.try_get::<Option<String>, _>(4)?, r.try_get::<Option<String>, _>(5)?) {
                    (Some(source), Some(id)) => Some(JobKey { source, id }),
                    _ => None,
                };
                Ok(MetricSample {
                    name: name.to_owned(),
                    tags: serde_json::from_str(&tags).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    time: Timestamp::from_millis(r.try_get(1)?),
                    value: r.try_get(2)?,
                    unit: r.try_get(3)?,
                    job,
                })
            })
            .collect()
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

/// Ids of the given strings in `names`, inserting the missing ones.
async fn intern(
    tx: &mut Transaction<'_, Sqlite>,
    wanted: BTreeSet<&str>,
) -> Result<HashMap<String, i64>, StoreError> {
    let wanted: Vec<&str> = wanted.into_iter().collect();
    let mut ids = HashMap::with_capacity(wanted.len());
    for chunk in wanted.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Sqlite>::new("SELECT id, value FROM names WHERE value IN (");
        let mut sep = qb.separated(", ");
        for v in chunk {
            sep.push_bind(*v);
        }
        qb.push(")");
        for row in qb.build().fetch_all(&mut **tx).await? {
            ids.insert(row.try_get::<String, _>(1)?, row.try_get::<i64, _>(0)?);
        }
    }
    let missing: Vec<&str> = wanted.into_iter().filter(|v| !ids.contains_key(*v)).collect();
    for chunk in missing.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Sqlite>::new("INSERT INTO names (value) ");
        qb.push_values(chunk, |mut b, v| {
            b.push_bind(*v);
        });
        qb.push(" RETURNING id, value");
        for row in qb.build().fetch_all(&mut **tx).await? {
            ids.insert(row.try_get::<String, _>(1)?, row.try_get::<i64, _>(0)?);
        }
    }
    Ok(ids)
}

fn name_id(ids: &HashMap<String, i64>, v: &str) -> i64 {
    ids[v]
}

/// Keeps the last record of each key, preserving first-seen order; returns how many
/// earlier duplicates were dropped.
fn last_of_each<'a, T, K: Ord>(records: &'a [T], key: impl Fn(&'a T) -> K) -> (Vec<&'a T>, u64) {
    let mut last: BTreeMap<K, usize> = BTreeMap::new();
    for (i, r) in records.iter().enumerate() {
        last.insert(key(r), i);
    }
    let mut keep: Vec<usize> = last.into_values().collect();
    keep.sort_unstable();
    let dropped = (records.len() - keep.len()) as u64;
    (keep.into_iter().map(|i| &records[i]).collect(), dropped)
}

async fn write_jobs(
    tx: &mut Transaction<'_, Sqlite>,
    ids: &HashMap<String, i64>,
    jobs: &[Job],
) -> Result<Counts, StoreError> {
    let (jobs, duplicates) = last_of_each(jobs, |j| (j.source.as_str(), j.id.as_str()));
    let mut counts = Counts { inserted: 0, updated: duplicates };
    let opt = |v: &Option<String>| v.as_deref().map(|v| name_id(ids, v));
    for chunk in jobs.chunks(CHUNK) {
        let existing = existing_jobs(tx, ids, chunk).await?;
        counts.updated += existing;
        counts.inserted += chunk.len() as u64 - existing;
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO jobs (source_id, ext_id, builder_id, project_id, branch_id, revision_id, worker_id, \
             requested_at, started_at, finished_at, t, result, url, tags, metrics, steps) ",
        );
        qb.push_values(chunk, |mut b, j| {
            let ms = |t: Option<Timestamp>| t.map(Timestamp::as_millis);
            b.push_bind(name_id(ids, &j.source))
                .push_bind(j.id.as_str())
                .push_bind(name_id(ids, &j.builder))
                .push_bind(opt(&j.project))
                .push_bind(opt(&j.branch))
                .push_bind(opt(&j.revision))
                .push_bind(opt(&j.worker))
                .push_bind(ms(j.requested_at))
                .push_bind(ms(j.started_at))
                .push_bind(ms(j.finished_at))
                .push_bind(ms(j.time()).expect("validated jobs have a time"))
                .push_bind(i64::from(j.result.code()))
                .push_bind(j.url.as_deref())
                .push_bind(json_or_null(&j.tags))
                .push_bind(json_or_null(&j.metrics))
                .push_bind(StoredStep::json(&j.steps));
        });
        qb.push(
            " ON CONFLICT (source_id, ext_id) DO UPDATE SET builder_id = excluded.builder_id, \
             project_id = excluded.project_id, branch_id = excluded.branch_id, revision_id = excluded.revision_id, \
             worker_id = excluded.worker_id, requested_at = excluded.requested_at, started_at = excluded.started_at, \
             finished_at = excluded.finished_at, t = excluded.t, result = excluded.result, url = excluded.url, \
             tags = excluded.tags, metrics = excluded.metrics, steps = excluded.steps",
        );
        qb.build().execute(&mut **tx).await?;
    }
    Ok(counts)
}

/// How many of the chunk's jobs are already stored.
async fn existing_jobs(
    tx: &mut Transaction<'_, Sqlite>,
    ids: &HashMap<String, i64>,
    chunk: &[&Job],
) -> Result<u64, StoreError> {
    count_existing(
        tx,
        chunk,
        "SELECT 1 FROM jobs m WHERE m.source_id = k.column1 AND m.ext_id = k.column2",
        |qb, j| {
            qb.push_bind(name_id(ids, &j.source)).push(", ").push_bind(j.id.as_str());
        },
    )
    .await
}

/// How many of `keys` are stored: one query whose correlated `EXISTS` searches the key's
/// index once per key. (A row-value `IN (VALUES ...)` looks simpler but makes SQLite scan
/// the whole index for every chunk.)
async fn count_existing<'a, T>(
    tx: &mut Transaction<'_, Sqlite>,
    keys: &'a [T],
    exists: &str,
    push_key: impl Fn(&mut QueryBuilder<Sqlite>, &'a T),
) -> Result<u64, StoreError> {
    if keys.is_empty() {
        return Ok(0);
    }
    let mut qb = QueryBuilder::<Sqlite>::new("SELECT count(*) FROM (VALUES ");
    for (i, key) in keys.iter().enumerate() {
        qb.push(if i == 0 { "(" } else { ", (" });
        push_key(&mut qb, key);
        qb.push(")");
    }
    qb.push(") AS k WHERE EXISTS (").push(exists).push(")");
    let n: i64 = qb.build().fetch_one(&mut **tx).await?.try_get(0)?;
    Ok(n as u64)
}

fn outcome_name(o: TestOutcome) -> &'static str {
    match o {
        TestOutcome::Passed => "passed",
        TestOutcome::Failed => "failed",
        TestOutcome::Error => "error",
        TestOutcome::Skipped => "skipped",
    }
}

async fn write_tests(
    tx: &mut Transaction<'_, Sqlite>,
    ids: &HashMap<String, i64>,
    tests: &[TestResult],
) -> Result<Counts, StoreError> {
    let (tests, duplicates) = last_of_each(tests, |t| (&t.job, t.suite.as_str(), t.name.as_str()));
    let mut counts = Counts { inserted: 0, updated: duplicates };
    for chunk in tests.chunks(CHUNK) {
        let existing = count_existing(
            tx,
            chunk,
            "SELECT 1 FROM test_results m WHERE m.source_id = k.column1 AND m.job_ext_id = k.column2 \
             AND m.suite = k.column3 AND m.name = k.column4",
            |qb, t| {
                qb.push_bind(name_id(ids, &t.job.source))
                    .push(", ")
                    .push_bind(t.job.id.as_str())
                    .push(", ")
                    .push_bind(t.suite.as_str())
                    .push(", ")
                    .push_bind(t.name.as_str());
            },
        )
        .await?;
        counts.updated += existing;
        counts.inserted += chunk.len() as u64 - existing;
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO test_results (source_id, job_ext_id, suite, name, outcome, duration_ms, message) ",
        );
        qb.push_values(chunk, |mut b, t| {
            b.push_bind(name_id(ids, &t.job.source))
                .push_bind(t.job.id.as_str())
                .push_bind(t.suite.as_str())
                .push_bind(t.name.as_str())
                .push_bind(outcome_name(t.outcome))
                .push_bind(t.duration_ms)
                .push_bind(t.message.as_deref());
        });
        qb.push(
            " ON CONFLICT (source_id, job_ext_id, suite, name) DO UPDATE SET outcome = excluded.outcome, \
             duration_ms = excluded.duration_ms, message = excluded.message",
        );
        qb.build().execute(&mut **tx).await?;
    }
    Ok(counts)
}

async fn write_samples(
    tx: &mut Transaction<'_, Sqlite>,
    ids: &HashMap<String, i64>,
    samples: &[MetricSample],
) -> Result<Counts, StoreError> {
    let keyed: Vec<(String, &MetricSample)> =
        samples.iter().map(|s| (serde_json::to_string(&s.tags).expect("string maps serialize"), s)).collect();
    let (keyed, duplicates) = last_of_each(&keyed, |(tags, s)| (s.name.clone(), tags.clone(), s.time));
    let mut counts = Counts { inserted: 0, updated: duplicates };
    for chunk in keyed.chunks(CHUNK) {
        let existing = count_existing(
            tx,
            chunk,
            "SELECT 1 FROM metric_samples m WHERE m.name_id = k.column1 AND m.tags = k.column2 AND m.time = k.column3",
            |qb, (tags, s)| {
                qb.push_bind(name_id(ids, &s.name))
                    .push(", ")
                    .push_bind(tags.as_str())
                    .push(", ")
                    .push_bind(s.time.as_millis());
            },
        )
        .await?;
        counts.updated += existing;
        counts.inserted += chunk.len() as u64 - existing;
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO metric_samples (name_id, tags, time, value, unit, job_source_id, job_ext_id) ",
        );
        qb.push_values(chunk, |mut b, (tags, s)| {
            b.push_bind(name_id(ids, &s.name))
                .push_bind(tags.as_str())
                .push_bind(s.time.as_millis())
                .push_bind(s.value)
                .push_bind(s.unit.as_deref())
                .push_bind(s.job.as_ref().map(|j| name_id(ids, &j.source)))
                .push_bind(s.job.as_ref().map(|j| j.id.as_str()));
        });
        qb.push(
            " ON CONFLICT (name_id, tags, time) DO UPDATE SET value = excluded.value, unit = excluded.unit, \
             job_source_id = excluded.job_source_id, job_ext_id = excluded.job_ext_id",
        );
        qb.build().execute(&mut **tx).await?;
    }
    Ok(counts)
}
