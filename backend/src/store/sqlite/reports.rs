//! Reads behind the report endpoints: the test results of a time range's jobs
//! (`GET /api/v1/tests`) and the metric names with their sample counts
//! (`GET /api/v1/metrics`).
//!
//! Test results are read like the job scan (`scan.rs`): rusqlite on a read-only connection
//! in a blocking thread, because a week of a farm's results is a million rows and sqlx
//! costs microseconds per row. The query walks `jobs_by_time` for the range and looks each
//! job's results up by the `test_results` primary key, so the rows come grouped by job in
//! time order without a sort.

use std::collections::HashMap;
use std::path::Path;

use common::TimeRange;
use common::records::TestOutcome;
use common::reports::{MetricInfo, TestTable, TestTableBuilder};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use sqlx::{Row, SqlitePool};
use tracing::instrument;

use crate::store::{JobQuery, StoreError};

/// See [`crate::store::Store::test_table`].
#[instrument(skip_all, fields(from_ms = query.range.from_ms, to_ms = query.range.to_ms, test))]
pub async fn test_table(path: &Path, query: &JobQuery, test: Option<&str>) -> Result<TestTable, StoreError> {
    let (path, query, test) = (path.to_owned(), query.clone(), test.map(str::to_owned));
    tokio::task::spawn_blocking(move || read_tests(&path, &query, test.as_deref()))
        .await
        .map_err(|e| StoreError::Corrupt(format!("test scan failed: {e}")))?
}

fn read_tests(path: &Path, query: &JobQuery, test: Option<&str>) -> Result<TestTable, StoreError> {
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    // One read transaction: names and results are one snapshot.
    let tx = conn.transaction()?;
    let mut names = Names::default();

    let mut params: Vec<rusqlite::types::Value> = vec![query.range.from_ms.into(), query.range.to_ms.into()];
    let mut sql = String::from(
        "SELECT j.pk, j.source_id, j.ext_id, j.t, j.builder_id, j.worker_id, j.revision_id, \
         t.suite, t.name, t.outcome, t.duration_ms \
         FROM jobs j JOIN test_results t ON t.source_id = j.source_id AND t.job_ext_id = j.ext_id \
         WHERE j.t >= ?1 AND j.t <= ?2",
    );
    if !query.sources.is_empty() {
        let mut ids = Vec::new();
        for source in &query.sources {
            if let Some(id) = names.id_of(&tx, source)? {
                ids.push(id);
            }
        }
        if ids.is_empty() {
            return Ok(TestTable::default());
        }
        let first = params.len() + 1;
        let marks: Vec<String> = (first..first + ids.len()).map(|i| format!("?{i}")).collect();
        sql.push_str(&format!(" AND j.source_id IN ({})", marks.join(", ")));
        params.extend(ids.into_iter().map(rusqlite::types::Value::from));
    }
    if let Some(test) = test.filter(|t| !t.is_empty()) {
        params.push(test.to_owned().into());
        sql.push_str(&format!(
            " AND instr(lower(CASE WHEN t.suite = '' THEN t.name ELSE t.suite || '::' || t.name END), lower(?{})) > 0",
            params.len()
        ));
    }
    sql.push_str(" ORDER BY j.t, j.pk");

    let mut builder = TestTableBuilder::default();
    let mut last_job = None;
    let mut stmt = tx.prepare(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
    while let Some(row) = rows.next()? {
        let pk: i64 = row.get(0)?;
        if last_job != Some(pk) {
            last_job = Some(pk);
            let source = names.get(&tx, row.get(1)?)?;
            let builder_name = names.get(&tx, row.get(4)?)?;
            let worker = row.get::<_, Option<i64>>(5)?.map(|id| names.get(&tx, id)).transpose()?;
            let revision = row.get::<_, Option<i64>>(6)?.map(|id| names.get(&tx, id)).transpose()?;
            let id = row.get_ref(2)?.as_str().map_err(|e| StoreError::Corrupt(e.to_string()))?;
            builder.push_job(&source, id, row.get(3)?, &builder_name, worker.as_deref(), revision.as_deref());
        }
        let text = |i: usize| row.get_ref(i)?.as_str().map_err(|e| StoreError::Corrupt(e.to_string()));
        let outcome = match text(9)? {
            "passed" => TestOutcome::Passed,
            "failed" => TestOutcome::Failed,
            "error" => TestOutcome::Error,
            "skipped" => TestOutcome::Skipped,
            other => return Err(StoreError::Corrupt(format!("test outcome {other}"))),
        };
        builder.push_result(text(7)?, text(8)?, outcome, row.get(10)?);
    }
    Ok(builder.finish())
}

/// `names` values read on demand and kept for the scan.
#[derive(Default)]
struct Names {
    by_id: HashMap<i64, String>,
}

impl Names {
    fn get(&mut self, conn: &Connection, id: i64) -> Result<String, StoreError> {
        if let Some(v) = self.by_id.get(&id) {
            return Ok(v.clone());
        }
        let value: String = conn
            .prepare("SELECT value FROM names WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?
            .ok_or_else(|| StoreError::Corrupt(format!("name id {id} is missing")))?;
        self.by_id.insert(id, value.clone());
        Ok(value)
    }

    fn id_of(&mut self, conn: &Connection, value: &str) -> Result<Option<i64>, StoreError> {
        Ok(conn
            .prepare("SELECT id FROM names WHERE value = ?1")?
            .query_row([value], |r| r.get(0))
            .optional()?)
    }
}

/// See [`crate::store::Store::metrics`]. One range query per metric name over the samples'
/// `(name_id, time, ...)` key, so only the samples in the range are read.
#[instrument(skip_all, fields(from_ms = range.from_ms, to_ms = range.to_ms))]
pub async fn metrics(pool: &SqlitePool, range: TimeRange) -> Result<Vec<MetricInfo>, StoreError> {
    let names = sqlx::query(
        "SELECT n.id, n.value FROM names n WHERE n.id IN (SELECT DISTINCT name_id FROM metric_series) \
         ORDER BY n.value",
    )
    .fetch_all(pool)
    .await?;
    let mut out = Vec::new();
    for name in names {
        let id: i64 = name.try_get(0)?;
        let r = sqlx::query(
            "SELECT count(*), max(unit), min(time), max(time) FROM metric_samples \
             WHERE name_id = ? AND time >= ? AND time <= ?",
        )
        .bind(id)
        .bind(range.from_ms)
        .bind(range.to_ms)
        .fetch_one(pool)
        .await?;
        let samples = r.try_get::<i64, _>(0)? as u64;
        if samples == 0 {
            continue;
        }
        out.push(MetricInfo {
            name: name.try_get(1)?,
            samples,
            unit: r.try_get::<Option<String>, _>(1)?.filter(|u| !u.is_empty()),
            first_ms: r.try_get(2)?,
            last_ms: r.try_get(3)?,
        });
    }
    Ok(out)
}
