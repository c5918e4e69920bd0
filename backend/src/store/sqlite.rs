//! The embedded default store: one SQLite file in WAL mode.
//!
//! Durability: WAL with `synchronous=NORMAL` keeps every committed transaction across a
//! crash or kill of the process (a power cut may lose the last few); a write is
//! acknowledged only after its transaction commits.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use common::records::{JobKey, MetricSample, TestOutcome, TestResult};
use common::table::{IdColumn, TableBuilder};
use common::{Job, JobResult, JobTable, Step, TimeRange, Timestamp};
use futures_util::TryStreamExt;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool, Transaction};
use tracing::instrument;

use super::{Counts, JobQuery, Records, Store, StoreError, WriteReport};

/// Rows per multi-row statement: well under SQLite's 32,766 bound parameters.
const CHUNK: usize = 500;

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens the file a `sqlite://PATH` URL names, creating it if missing, and migrates it.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(SqliteStore { pool })
    }

    async fn names(&self) -> Result<HashMap<i64, String>, StoreError> {
        let mut names = HashMap::new();
        let mut rows = sqlx::query("SELECT id, value FROM names").fetch(&self.pool);
        while let Some(row) = rows.try_next().await? {
            names.insert(row.try_get(0)?, row.try_get(1)?);
        }
        Ok(names)
    }

    /// Streams the rows of a job query to `each`, with the names table to spell ids.
    async fn scan_jobs(
        &self,
        query: &JobQuery,
        with_url: bool,
        mut each: impl FnMut(&HashMap<i64, String>, &SqliteRow) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let names = self.names().await?;
        let mut source_ids = Vec::new();
        for source in &query.sources {
            if let Some((&id, _)) = names.iter().find(|(_, v)| *v == source) {
                source_ids.push(id);
            }
        }
        if !query.sources.is_empty() && source_ids.is_empty() {
            return Ok(());
        }
        let mut qb = QueryBuilder::<Sqlite>::new(
            "SELECT source_id, ext_id, builder_id, project_id, branch_id, revision_id, worker_id, \
             requested_at, started_at, finished_at, result, tags, metrics",
        );
        qb.push(if with_url { ", url" } else { ", NULL" });
        qb.push(" FROM jobs WHERE t >= ").push_bind(query.range.from_ms);
        qb.push(" AND t <= ").push_bind(query.range.to_ms);
        if !source_ids.is_empty() {
            qb.push(" AND source_id IN (");
            let mut sep = qb.separated(", ");
            for id in source_ids {
                sep.push_bind(id);
            }
            qb.push(")");
        }
        qb.push(" ORDER BY t, pk");
        let mut rows = qb.build().fetch(&self.pool);
        while let Some(row) = rows.try_next().await? {
            each(&names, &row)?;
        }
        Ok(())
    }
}

/// The parts of a stored job row, spelled out.
struct RowView<'a> {
    fixed: [Option<&'a str>; 7],
    id: String,
    requested: Option<i64>,
    started: Option<i64>,
    finished: Option<i64>,
    result: JobResult,
    tags: BTreeMap<String, String>,
    metrics: BTreeMap<String, f64>,
    url: Option<String>,
}

fn view<'a>(names: &'a HashMap<i64, String>, row: &SqliteRow) -> Result<RowView<'a>, StoreError> {
    let name = |i: usize| -> Result<Option<&'a str>, StoreError> {
        match row.try_get::<Option<i64>, _>(i)? {
            None => Ok(None),
            Some(id) => names
                .get(&id)
                .map(|s| Some(s.as_str()))
                .ok_or_else(|| StoreError::Corrupt(format!("name id {id} is missing"))),
        }
    };
    let code: i64 = row.try_get(10)?;
    let result = u8::try_from(code)
        .ok()
        .and_then(JobResult::from_code)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown result code {code}")))?;
    let json = |i: usize| -> Result<Option<String>, StoreError> { Ok(row.try_get(i)?) };
    let tags = match json(11)? {
        Some(t) => serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(format!("tags: {e}")))?,
        None => BTreeMap::new(),
    };
    let metrics = match json(12)? {
        Some(m) => serde_json::from_str(&m).map_err(|e| StoreError::Corrupt(format!("metrics: {e}")))?,
        None => BTreeMap::new(),
    };
    Ok(RowView {
        fixed: [name(0)?, name(3)?, name(4)?, name(2)?, name(6)?, name(5)?, Some(result.as_str())],
        id: row.try_get(1)?,
        requested: row.try_get(7)?,
        started: row.try_get(8)?,
        finished: row.try_get(9)?,
        result,
        tags,
        metrics,
        url: row.try_get(13)?,
    })
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
        let mut tx = self.pool.begin().await?;
        let mut wanted: BTreeSet<&str> = BTreeSet::new();
        for job in records.jobs {
            wanted.extend([job.source.as_str(), job.builder.as_str()]);
            wanted.extend([&job.project, &job.branch, &job.revision, &job.worker].into_iter().flatten().map(String::as_str));
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
        let mut builder = TableBuilder::default();
        self.scan_jobs(query, false, |names, row| {
            let v = view(names, row)?;
            let tags: Vec<(&str, &str)> = v.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let metrics: Vec<(&str, f64)> = v.metrics.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            builder.push_row(v.fixed, &v.id, v.requested, v.started, v.finished, &tags, &metrics);
            Ok(())
        })
        .await?;
        Ok(builder.finish())
    }

    #[instrument(skip_all, fields(from_ms = query.range.from_ms, to_ms = query.range.to_ms))]
    async fn job_rows(&self, query: &JobQuery) -> Result<Vec<Job>, StoreError> {
        let mut jobs = Vec::new();
        self.scan_jobs(query, true, |names, row| {
            let v = view(names, row)?;
            let text = |s: Option<&str>| s.map(str::to_owned);
            jobs.push(Job {
                source: text(v.fixed[0]).unwrap_or_default(),
                id: v.id,
                builder: text(v.fixed[3]).unwrap_or_default(),
                project: text(v.fixed[1]),
                branch: text(v.fixed[2]),
                revision: text(v.fixed[5]),
                worker: text(v.fixed[4]),
                requested_at: ts(v.requested),
                started_at: ts(v.started),
                finished_at: ts(v.finished),
                result: v.result,
                url: v.url,
                tags: v.tags,
                metrics: v.metrics,
                steps: Vec::new(),
            });
            Ok(())
        })
        .await?;
        // Same order as the columnar table: time, then source and id.
        jobs.sort_by(|a, b| {
            (a.time(), &a.source).cmp(&(b.time(), &b.source)).then_with(|| id_order(&a.id, &b.id))
        });
        Ok(jobs)
    }

    async fn job(&self, source: &str, id: &str) -> Result<Option<Job>, StoreError> {
        let row = sqlx::query(
            "SELECT j.pk, p.value, br.value, b.value, w.value, r.value, j.requested_at, j.started_at, \
             j.finished_at, j.result, j.tags, j.metrics, j.url \
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
        let pk: i64 = row.try_get(0)?;
        let result_of = |code: i64| {
            u8::try_from(code).ok().and_then(JobResult::from_code).ok_or_else(|| StoreError::Corrupt(format!("result code {code}")))
        };
        let steps = sqlx::query("SELECT name, started_at, finished_at, result FROM steps WHERE job_pk = ? ORDER BY idx")
            .bind(pk)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|s| {
                Ok(Step {
                    name: s.try_get(0)?,
                    started_at: ts(s.try_get(1)?),
                    finished_at: ts(s.try_get(2)?),
                    result: s.try_get::<Option<i64>, _>(3)?.map(result_of).transpose()?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
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
            steps,
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

/// Ids in the columnar table's order: text prefix, then trailing number.
fn id_order(a: &str, b: &str) -> std::cmp::Ordering {
    IdColumn::split(a).cmp(&IdColumn::split(b))
}

/// Ids of the given strings in `names`, inserting the missing ones.
async fn intern(tx: &mut Transaction<'_, Sqlite>, wanted: BTreeSet<&str>) -> Result<HashMap<String, i64>, StoreError> {
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

async fn write_jobs(tx: &mut Transaction<'_, Sqlite>, ids: &HashMap<String, i64>, jobs: &[Job]) -> Result<Counts, StoreError> {
    let (jobs, duplicates) = last_of_each(jobs, |j| (j.source.as_str(), j.id.as_str()));
    let mut counts = Counts { inserted: 0, updated: duplicates };
    let opt = |v: &Option<String>| v.as_deref().map(|v| name_id(ids, v));
    for chunk in jobs.chunks(CHUNK) {
        let existing = existing_jobs(tx, ids, chunk).await?;
        counts.updated += existing.len() as u64;
        counts.inserted += (chunk.len() - existing.len()) as u64;
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO jobs (source_id, ext_id, builder_id, project_id, branch_id, revision_id, worker_id, \
             requested_at, started_at, finished_at, t, result, url, tags, metrics) ",
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
                .push_bind(json_or_null(&j.metrics));
        });
        qb.push(
            " ON CONFLICT (source_id, ext_id) DO UPDATE SET builder_id = excluded.builder_id, \
             project_id = excluded.project_id, branch_id = excluded.branch_id, revision_id = excluded.revision_id, \
             worker_id = excluded.worker_id, requested_at = excluded.requested_at, started_at = excluded.started_at, \
             finished_at = excluded.finished_at, t = excluded.t, result = excluded.result, url = excluded.url, \
             tags = excluded.tags, metrics = excluded.metrics",
        );
        qb.build().execute(&mut **tx).await?;
        write_steps(tx, ids, chunk, existing).await?;
    }
    Ok(counts)
}

/// `(source_id, ext_id) -> pk` of the chunk's jobs already stored.
async fn existing_jobs(
    tx: &mut Transaction<'_, Sqlite>,
    ids: &HashMap<String, i64>,
    chunk: &[&Job],
) -> Result<HashMap<(i64, String), i64>, StoreError> {
    let mut qb = QueryBuilder::<Sqlite>::new("SELECT source_id, ext_id, pk FROM jobs WHERE (source_id, ext_id) IN (VALUES ");
    let mut first = true;
    for j in chunk {
        qb.push(if first { "(" } else { ", (" });
        first = false;
        qb.push_bind(name_id(ids, &j.source)).push(", ").push_bind(j.id.as_str()).push(")");
    }
    qb.push(")");
    let mut found = HashMap::new();
    for row in qb.build().fetch_all(&mut **tx).await? {
        found.insert((row.try_get(0)?, row.try_get(1)?), row.try_get(2)?);
    }
    Ok(found)
}

/// Replaces the steps of the chunk's jobs: old steps of updated jobs go, new ones come.
async fn write_steps(
    tx: &mut Transaction<'_, Sqlite>,
    ids: &HashMap<String, i64>,
    chunk: &[&Job],
    existed: HashMap<(i64, String), i64>,
) -> Result<(), StoreError> {
    if !existed.is_empty() {
        let mut qb = QueryBuilder::<Sqlite>::new("DELETE FROM steps WHERE job_pk IN (");
        let mut sep = qb.separated(", ");
        for pk in existed.values() {
            sep.push_bind(*pk);
        }
        qb.push(")");
        qb.build().execute(&mut **tx).await?;
    }
    let with_steps: Vec<&Job> = chunk.iter().copied().filter(|j| !j.steps.is_empty()).collect();
    if with_steps.is_empty() {
        return Ok(());
    }
    let pks = existing_jobs(tx, ids, &with_steps).await?;
    let mut rows: Vec<(i64, usize, &Step)> = Vec::new();
    for j in &with_steps {
        let pk = pks[&(name_id(ids, &j.source), j.id.clone())];
        rows.extend(j.steps.iter().enumerate().map(|(i, s)| (pk, i, s)));
    }
    for part in rows.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Sqlite>::new("INSERT INTO steps (job_pk, idx, name, started_at, finished_at, result) ");
        qb.push_values(part, |mut b, (pk, idx, s)| {
            b.push_bind(*pk)
                .push_bind(*idx as i64)
                .push_bind(s.name.as_str())
                .push_bind(s.started_at.map(Timestamp::as_millis))
                .push_bind(s.finished_at.map(Timestamp::as_millis))
                .push_bind(s.result.map(|r| i64::from(r.code())));
        });
        qb.build().execute(&mut **tx).await?;
    }
    Ok(())
}

fn outcome_name(o: TestOutcome) -> &'static str {
    match o {
        TestOutcome::Passed => "passed",
        TestOutcome::Failed => "failed",
        TestOutcome::Error => "error",
        TestOutcome::Skipped => "skipped",
    }
}

async fn write_tests(tx: &mut Transaction<'_, Sqlite>, ids: &HashMap<String, i64>, tests: &[TestResult]) -> Result<Counts, StoreError> {
    let (tests, duplicates) = last_of_each(tests, |t| (&t.job, t.suite.as_str(), t.name.as_str()));
    let mut counts = Counts { inserted: 0, updated: duplicates };
    for chunk in tests.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "SELECT count(*) FROM test_results WHERE (source_id, job_ext_id, suite, name) IN (VALUES ",
        );
        let mut first = true;
        for t in chunk {
            qb.push(if first { "(" } else { ", (" });
            first = false;
            qb.push_bind(name_id(ids, &t.job.source))
                .push(", ")
                .push_bind(t.job.id.as_str())
                .push(", ")
                .push_bind(t.suite.as_str())
                .push(", ")
                .push_bind(t.name.as_str())
                .push(")");
        }
        qb.push(")");
        let existing: i64 = qb.build().fetch_one(&mut **tx).await?.try_get(0)?;
        counts.updated += existing as u64;
        counts.inserted += chunk.len() as u64 - existing as u64;
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
    let keyed: Vec<(String, &MetricSample)> = samples
        .iter()
        .map(|s| (serde_json::to_string(&s.tags).expect("string maps serialize"), s))
        .collect();
    let (keyed, duplicates) = last_of_each(&keyed, |(tags, s)| (s.name.clone(), tags.clone(), s.time));
    let mut counts = Counts { inserted: 0, updated: duplicates };
    for chunk in keyed.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Sqlite>::new("SELECT count(*) FROM metric_samples WHERE (name_id, tags, time) IN (VALUES ");
        let mut first = true;
        for (tags, s) in chunk {
            qb.push(if first { "(" } else { ", (" });
            first = false;
            qb.push_bind(name_id(ids, &s.name))
                .push(", ")
                .push_bind(tags.as_str())
                .push(", ")
                .push_bind(s.time.as_millis())
                .push(")");
        }
        qb.push(")");
        let existing: i64 = qb.build().fetch_one(&mut **tx).await?.try_get(0)?;
        counts.updated += existing as u64;
        counts.inserted += chunk.len() as u64 - existing as u64;
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
