//! Every write to the store: one rusqlite connection, one `BEGIN IMMEDIATE` transaction per
//! [`Records`], run on the calling thread (the caller moves off the async workers first).
//!
//! An insert that finds its key taken (`ON CONFLICT DO NOTHING` changed nothing) is
//! followed by an update: that is how a write tells inserted from replaced keys without
//! asking first. Strings, series, builds and job links are interned through in-memory
//! caches in front of their tables, so a sample usually costs a few hash lookups and a
//! share of a multi-row insert. (sqlx's driver copies every row into owned values and
//! sends it across a channel; through it, samples went in at ~126,000 a second.)

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::records::{JobKey, MetricSample, TestOutcome, TestResult};
use common::{Job, Timestamp};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use rustc_hash::FxHashMap;

use super::{StoredStep, json_or_null};
use crate::store::{Counts, Records, StoreError, WriteReport};

/// Entries a cache may hold before it is emptied: builds and links come and go with
/// builds, so old entries are rarely asked for again, and memory stays bounded.
const CACHE_ENTRIES: usize = 1 << 17;

/// Samples per multi-row insert (7 parameters each, far below SQLite's 32,766).
const ROWS_PER_INSERT: usize = 64;

/// Tags that name a build when both are present; see `metric_builds` in the migrations.
pub(super) const BUILDER_TAG: &str = "builder_name";
pub(super) const BUILD_TAG: &str = "build_number";

/// The writing connection and what it remembers between transactions.
pub(super) struct Writer {
    conn: Connection,
    cache: Cache,
    /// Reused between writes: a batch's sample rows.
    rows: Vec<SampleRow>,
}

/// Ids of committed rows by their key. Only filled from the current transaction and
/// emptied when it fails, so a cached id always names a committed row.
#[derive(Default)]
struct Cache {
    names: FxHashMap<Box<str>, i64>,
    /// By `name_id` + each (non-build) tag's key and value, length-prefixed.
    series: FxHashMap<Box<[u8]>, i64>,
    /// By `builder_id` + build number.
    builds: FxHashMap<Box<[u8]>, i64>,
    /// By `source_id` + job id.
    links: FxHashMap<Box<[u8]>, i64>,
    /// Scratch space for building keys.
    key: Vec<u8>,
}

impl Writer {
    /// Opens the file for writing; it must exist and be migrated.
    pub(super) fn open(path: &Path) -> Result<Writer, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(30))?;
        // Per connection, as the sqlx pool sets them: WAL (already the file's mode) with
        // synchronous=NORMAL keeps every commit across a killed process. A larger page cache
        // keeps the series index's hot pages in memory during long imports.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
             PRAGMA cache_size = -65536;",
        )?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(Writer { conn, cache: Cache::default(), rows: Vec::new() })
    }

    /// Writes all records in one transaction.
    pub(super) fn write(&mut self, records: Records<'_>) -> Result<WriteReport, StoreError> {
        let result = self.write_tx(records);
        if result.is_err() {
            // Ids handed out by the rolled-back transaction no longer exist.
            self.cache = Cache::default();
        }
        result
    }

    fn write_tx(&mut self, records: Records<'_>) -> Result<WriteReport, StoreError> {
        // IMMEDIATE takes the write lock up front: two deferred transactions that both read
        // and then write would deadlock on the upgrade. Another process's writer is waited
        // for (busy_timeout).
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        self.cache.trim();
        let report = WriteReport {
            jobs: write_jobs(&tx, &mut self.cache, records.jobs)?,
            tests: write_tests(&tx, &mut self.cache, records.tests)?,
            samples: write_samples(&tx, &mut self.cache, &mut self.rows, records.samples)?,
        };
        tx.commit()?;
        Ok(report)
    }
}

impl Cache {
    fn trim(&mut self) {
        if self.names.len() > CACHE_ENTRIES {
            self.names = FxHashMap::default();
        }
        if self.series.len() > CACHE_ENTRIES {
            self.series = FxHashMap::default();
        }
        if self.builds.len() > CACHE_ENTRIES {
            self.builds = FxHashMap::default();
        }
        if self.links.len() > CACHE_ENTRIES {
            self.links = FxHashMap::default();
        }
    }

    /// The id of `value` in `names`, inserting it if missing.
    fn name(&mut self, conn: &Connection, value: &str) -> Result<i64, StoreError> {
        if let Some(&id) = self.names.get(value) {
            return Ok(id);
        }
        let id = match conn
            .prepare_cached("SELECT id FROM names WHERE value = ?1")?
            .query_row([value], |r| r.get(0))
            .optional()?
        {
            Some(id) => id,
            None => {
                conn.prepare_cached("INSERT INTO names (value) VALUES (?1)")?.execute([value])?;
                conn.last_insert_rowid()
            }
        };
        self.names.insert(value.into(), id);
        Ok(id)
    }

    fn opt_name(&mut self, conn: &Connection, value: Option<&str>) -> Result<Option<i64>, StoreError> {
        value.map(|v| self.name(conn, v)).transpose()
    }

    /// The row of `samples[index]`. `prev` is the row before: a line's fields share its
    /// tags and job, so most lookups are answered by comparing with it.
    fn sample_row(
        &mut self,
        conn: &Connection,
        samples: &[MetricSample],
        index: usize,
        prev: Option<&SampleRow>,
    ) -> Result<SampleRow, StoreError> {
        let s = &samples[index];
        let prev = prev.map(|r| (&samples[r.index as usize], r));
        let name_id = match prev {
            Some((p, r)) if p.name == s.name => r.key.0,
            _ => self.name(conn, &s.name)?,
        };
        let (series_id, build_id) = match prev {
            Some((p, r)) if p.tags == s.tags => {
                let series_id = if r.key.0 == name_id { r.key.2 } else { self.series(conn, name_id, s)? };
                (series_id, r.key.3)
            }
            _ => {
                let series_id = self.series(conn, name_id, s)?;
                let build_id = match build_of(&s.tags) {
                    Some((builder, number)) => self.build(conn, builder, number)?,
                    None => 0,
                };
                (series_id, build_id)
            }
        };
        let link_id = match (prev, &s.job) {
            (_, None) => None,
            (Some((p, r)), Some(job)) if p.job.as_ref() == Some(job) => r.link_id,
            (_, Some(job)) => Some(self.link(conn, job)?),
        };
        Ok(SampleRow {
            key: (name_id, s.time.as_millis(), series_id, build_id),
            index: index as u32,
            has_unit: s.unit.is_some(),
            value: s.value,
            link_id,
        })
    }

    /// The id of a sample's series: its name and its tags but the build's, inserting it if
    /// missing.
    fn series(&mut self, conn: &Connection, name_id: i64, sample: &MetricSample) -> Result<i64, StoreError> {
        let (tags, split) = (&sample.tags, build_of(&sample.tags).is_some());
        let kept = || tags.iter().filter(move |(k, _)| !(split && is_build_tag(k)));
        self.key.clear();
        self.key.extend_from_slice(&name_id.to_le_bytes());
        for (k, v) in kept() {
            for s in [k, v] {
                self.key.extend_from_slice(&(s.len() as u32).to_le_bytes());
                self.key.extend_from_slice(s.as_bytes());
            }
        }
        if let Some(&id) = self.series.get(self.key.as_slice()) {
            return Ok(id);
        }
        let json = serde_json::to_string(&kept().collect::<BTreeMap<_, _>>()).expect("string maps serialize");
        let id = insert_or_select(conn, "metric_series", "name_id", "tags", params![name_id, json])?;
        self.series.insert(self.key.as_slice().into(), id);
        Ok(id)
    }

    /// The id of a build (builder and number), inserting it if missing.
    fn build(&mut self, conn: &Connection, builder: &str, number: &str) -> Result<i64, StoreError> {
        let builder_id = self.name(conn, builder)?;
        self.key.clear();
        self.key.extend_from_slice(&builder_id.to_le_bytes());
        self.key.extend_from_slice(number.as_bytes());
        if let Some(&id) = self.builds.get(self.key.as_slice()) {
            return Ok(id);
        }
        let id = insert_or_select(
            conn,
            "metric_builds",
            "builder_id",
            "build_number",
            params![builder_id, number],
        )?;
        self.builds.insert(self.key.as_slice().into(), id);
        Ok(id)
    }

    /// The id of a job link, inserting it if missing.
    fn link(&mut self, conn: &Connection, job: &JobKey) -> Result<i64, StoreError> {
        let source_id = self.name(conn, &job.source)?;
        self.key.clear();
        self.key.extend_from_slice(&source_id.to_le_bytes());
        self.key.extend_from_slice(job.id.as_bytes());
        if let Some(&id) = self.links.get(self.key.as_slice()) {
            return Ok(id);
        }
        let id = insert_or_select(conn, "metric_links", "source_id", "ext_id", params![source_id, job.id])?;
        self.links.insert(self.key.as_slice().into(), id);
        Ok(id)
    }
}

/// The id of the row of `table` whose unique key `(a, b)` is `key`, inserting it if
/// missing. Table and column names are this module's constants, never input.
fn insert_or_select(
    conn: &Connection,
    table: &str,
    a: &str,
    b: &str,
    key: &[&dyn rusqlite::ToSql],
) -> Result<i64, StoreError> {
    let inserted = conn
        .prepare_cached(&format!("INSERT INTO {table} ({a}, {b}) VALUES (?1, ?2) ON CONFLICT DO NOTHING"))?
        .execute(key)?;
    if inserted == 1 {
        return Ok(conn.last_insert_rowid());
    }
    let select = format!("SELECT id FROM {table} WHERE {a} = ?1 AND {b} = ?2");
    Ok(conn.prepare_cached(&select)?.query_row(key, |r| r.get(0))?)
}

/// Adds one row's outcome: `inserted` rows changed by the insert, otherwise the update ran.
fn count(counts: &mut Counts, inserted: bool) {
    if inserted {
        counts.inserted += 1;
    } else {
        counts.updated += 1;
    }
}

fn write_jobs(conn: &Connection, cache: &mut Cache, jobs: &[Job]) -> Result<Counts, StoreError> {
    let mut counts = Counts::default();
    if jobs.is_empty() {
        return Ok(counts);
    }
    let mut insert = conn.prepare_cached(
        "INSERT INTO jobs (source_id, ext_id, builder_id, project_id, branch_id, revision_id, worker_id, \
         requested_at, started_at, finished_at, t, result, url, tags, metrics, steps, build_number) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17) \
         ON CONFLICT (source_id, ext_id) DO NOTHING",
    )?;
    let mut update = conn.prepare_cached(
        "UPDATE jobs SET builder_id = ?3, project_id = ?4, branch_id = ?5, revision_id = ?6, worker_id = ?7, \
         requested_at = ?8, started_at = ?9, finished_at = ?10, t = ?11, result = ?12, url = ?13, tags = ?14, \
         metrics = ?15, steps = ?16, build_number = ?17 WHERE source_id = ?1 AND ext_id = ?2",
    )?;
    let ms = |t: Option<Timestamp>| t.map(Timestamp::as_millis);
    for j in jobs {
        let row = params![
            cache.name(conn, &j.source)?,
            j.id,
            cache.name(conn, &j.builder)?,
            cache.opt_name(conn, j.project.as_deref())?,
            cache.opt_name(conn, j.branch.as_deref())?,
            cache.opt_name(conn, j.revision.as_deref())?,
            cache.opt_name(conn, j.worker.as_deref())?,
            ms(j.requested_at),
            ms(j.started_at),
            ms(j.finished_at),
            ms(j.time()).expect("validated jobs have a time"),
            i64::from(j.result.code()),
            j.url,
            json_or_null(&j.tags),
            json_or_null(&j.metrics),
            StoredStep::json(&j.steps),
            j.tags.get(JOB_BUILD_NUMBER_TAG),
        ];
        let inserted = insert.execute(row)? == 1;
        if !inserted {
            update.execute(row)?;
        }
        count(&mut counts, inserted);
    }
    Ok(counts)
}

/// The job tag that holds a Buildbot build's number (its `buildnumber` property); stored
/// apart too (`jobs.build_number`), for samples that name their build.
const JOB_BUILD_NUMBER_TAG: &str = "buildnumber";

fn outcome_name(o: TestOutcome) -> &'static str {
    match o {
        TestOutcome::Passed => "passed",
        TestOutcome::Failed => "failed",
        TestOutcome::Error => "error",
        TestOutcome::Skipped => "skipped",
    }
}

fn write_tests(conn: &Connection, cache: &mut Cache, tests: &[TestResult]) -> Result<Counts, StoreError> {
    let mut counts = Counts::default();
    if tests.is_empty() {
        return Ok(counts);
    }
    let mut insert = conn.prepare_cached(
        "INSERT INTO test_results (source_id, job_ext_id, suite, name, outcome, duration_ms, message) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
    )?;
    let mut update = conn.prepare_cached(
        "UPDATE test_results SET outcome = ?5, duration_ms = ?6, message = ?7 \
         WHERE source_id = ?1 AND job_ext_id = ?2 AND suite = ?3 AND name = ?4",
    )?;
    for t in tests {
        let row = params![
            cache.name(conn, &t.job.source)?,
            t.job.id,
            t.suite,
            t.name,
            outcome_name(t.outcome),
            t.duration_ms,
            t.message,
        ];
        let inserted = insert.execute(row)? == 1;
        if !inserted {
            update.execute(row)?;
        }
        count(&mut counts, inserted);
    }
    Ok(counts)
}

/// A sample with its ids resolved.
struct SampleRow {
    /// name_id, time, series_id, build_id: the primary key.
    key: (i64, i64, i64, i64),
    /// Where the sample is in the written slice: the tiebreak between equal keys, and
    /// where the (rare) unit is read from.
    index: u32,
    has_unit: bool,
    value: f64,
    link_id: Option<i64>,
}

impl SampleRow {
    fn bind(
        &self,
        samples: &[MetricSample],
        stmt: &mut rusqlite::Statement<'_>,
        first: usize,
    ) -> rusqlite::Result<()> {
        let (name_id, time, series_id, build_id) = self.key;
        // Rows are sorted by key: reading the sample itself would be a cache miss per row.
        let unit = if self.has_unit { samples[self.index as usize].unit.as_deref() } else { None };
        stmt.raw_bind_parameter(first, name_id)?;
        stmt.raw_bind_parameter(first + 1, time)?;
        stmt.raw_bind_parameter(first + 2, series_id)?;
        stmt.raw_bind_parameter(first + 3, build_id)?;
        stmt.raw_bind_parameter(first + 4, self.value)?;
        stmt.raw_bind_parameter(first + 5, unit)?;
        stmt.raw_bind_parameter(first + 6, self.link_id)
    }
}

/// The build a sample's tags name, if they have both build tags.
fn build_of(tags: &BTreeMap<String, String>) -> Option<(&str, &str)> {
    Some((tags.get(BUILDER_TAG)?, tags.get(BUILD_TAG)?))
}

fn is_build_tag(key: &str) -> bool {
    key == BUILDER_TAG || key == BUILD_TAG
}

/// `INSERT ... VALUES (...), ... ON CONFLICT DO NOTHING` for `rows` samples.
fn insert_samples_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO metric_samples (name_id, time, series_id, build_id, value, unit, link_id) VALUES ",
    );
    for i in 0..rows {
        sql += if i == 0 { "(?, ?, ?, ?, ?, ?, ?)" } else { ", (?, ?, ?, ?, ?, ?, ?)" };
    }
    sql + " ON CONFLICT DO NOTHING"
}

fn write_samples(
    conn: &Connection,
    cache: &mut Cache,
    rows: &mut Vec<SampleRow>,
    samples: &[MetricSample],
) -> Result<Counts, StoreError> {
    let mut counts = Counts::default();
    if samples.is_empty() {
        return Ok(counts);
    }
    rows.clear();
    for index in 0..samples.len() {
        let row = cache.sample_row(conn, samples, index, rows.last())?;
        rows.push(row);
    }
    // In key order, consecutive inserts land next to each other. Of two samples with one
    // key the later is still written last, and wins.
    rows.sort_unstable_by_key(|r| (r.key, r.index));
    let mut update = conn.prepare_cached(
        "UPDATE metric_samples SET value = ?5, unit = ?6, link_id = ?7 \
         WHERE name_id = ?1 AND time = ?2 AND series_id = ?3 AND build_id = ?4",
    )?;
    let mut many = conn.prepare_cached(&insert_samples_sql(ROWS_PER_INSERT))?;
    let mut groups = rows.chunks_exact(ROWS_PER_INSERT);
    for group in &mut groups {
        for (i, row) in group.iter().enumerate() {
            row.bind(samples, &mut many, 1 + i * 7)?;
        }
        let inserted = many.raw_execute()?;
        counts.inserted += inserted as u64;
        counts.updated += (group.len() - inserted) as u64;
        if inserted < group.len() {
            // Some keys were taken: write every row of the group over, in order.
            for row in group {
                row.bind(samples, &mut update, 1)?;
                update.raw_execute()?;
            }
        }
    }
    let mut one = conn.prepare_cached(&insert_samples_sql(1))?;
    for row in groups.remainder() {
        row.bind(samples, &mut one, 1)?;
        let inserted = one.raw_execute()? == 1;
        if !inserted {
            row.bind(samples, &mut update, 1)?;
            update.raw_execute()?;
        }
        count(&mut counts, inserted);
    }
    rows.clear();
    rows.shrink_to(1 << 16);
    Ok(counts)
}
