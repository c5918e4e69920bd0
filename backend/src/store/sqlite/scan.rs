//! The bulk read behind `GET /api/v1/jobs`: every job of a time range, straight from SQLite
//! into a columnar table or rows.
//!
//! This one path reads through rusqlite (linked to the same libsqlite3 as sqlx) on its own
//! read-only connection in a blocking thread: sqlx's SQLite driver copies each row into an
//! owned value and sends it across a channel, which cost ~5 µs a job here, five times
//! SQLite's own scan. Everything else goes through sqlx.

use std::collections::BTreeMap;
use std::path::Path;

use common::table::{IdColumn, TableBuilder};
use common::{Job, JobResult, JobTable, Timestamp};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, Row};

use crate::store::{JobQuery, StoreError};

/// Reads a query's jobs into a columnar table.
pub fn table(path: &Path, query: &JobQuery) -> Result<JobTable, StoreError> {
    let mut builder = TableBuilder::default();
    let mut tags = TagCache::default();
    let mut metrics: Vec<(String, f64)> = Vec::new();
    scan(path, query, false, |names, row| {
        let fixed = fixed_dims(names, row)?;
        let id = text(row, 1)?.unwrap_or_default();
        let row_tags = tags.get(text(row, 11)?)?;
        let tag_refs: Vec<(&str, &str)> = row_tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        parse_metrics(text(row, 12)?, &mut metrics)?;
        let metric_refs: Vec<(&str, f64)> = metrics.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        builder.push_row(fixed, id, int(row, 7)?, int(row, 8)?, int(row, 9)?, &tag_refs, &metric_refs);
        Ok(())
    })?;
    Ok(builder.finish())
}

/// Reads a query's jobs as records (with url, without steps), in the table's row order.
pub fn rows(path: &Path, query: &JobQuery) -> Result<Vec<Job>, StoreError> {
    let mut jobs = Vec::new();
    let mut tags = TagCache::default();
    let mut metrics: Vec<(String, f64)> = Vec::new();
    scan(path, query, true, |names, row| {
        let [source, project, branch, builder, worker, revision, _] = fixed_dims(names, row)?;
        let owned = |s: Option<&str>| s.map(str::to_owned);
        parse_metrics(text(row, 12)?, &mut metrics)?;
        let time = |i| Ok::<_, StoreError>(int(row, i)?.map(Timestamp::from_millis));
        jobs.push(Job {
            source: owned(source).unwrap_or_default(),
            id: text(row, 1)?.unwrap_or_default().to_owned(),
            builder: owned(builder).unwrap_or_default(),
            project: owned(project),
            branch: owned(branch),
            revision: owned(revision),
            worker: owned(worker),
            requested_at: time(7)?,
            started_at: time(8)?,
            finished_at: time(9)?,
            result: result(row)?,
            url: owned(text(row, 13)?),
            tags: tags.get(text(row, 11)?)?.iter().cloned().collect(),
            metrics: metrics.drain(..).collect(),
            steps: Vec::new(),
        });
        Ok(())
    })?;
    // The table orders rows by time, source, then id (prefix and number); SQL gave time.
    jobs.sort_by(|a, b| {
        (a.time(), &a.source)
            .cmp(&(b.time(), &b.source))
            .then_with(|| IdColumn::split(&a.id).cmp(&IdColumn::split(&b.id)))
    });
    Ok(jobs)
}

/// Names by id (`names` ids are dense from 1).
type Names = Vec<Option<String>>;

/// Runs the query in one read transaction (so names and jobs are one snapshot) and hands
/// each row to `each`.
fn scan(
    path: &Path,
    query: &JobQuery,
    with_url: bool,
    mut each: impl FnMut(&Names, &Row) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    let tx = conn.transaction()?;
    let mut names: Names = Vec::new();
    {
        let mut stmt = tx.prepare("SELECT id, value FROM names")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let id = usize::try_from(row.get::<_, i64>(0)?)
                .map_err(|_| StoreError::Corrupt("negative name id".into()))?;
            if names.len() <= id {
                names.resize(id + 1, None);
            }
            names[id] = Some(row.get(1)?);
        }
    }
    let mut params = vec![query.range.from_ms, query.range.to_ms];
    for source in &query.sources {
        if let Some(id) = names.iter().position(|n| n.as_deref() == Some(source.as_str())) {
            params.push(id as i64);
        }
    }
    if !query.sources.is_empty() && params.len() == 2 {
        return Ok(());
    }
    let source_filter = if params.len() > 2 {
        format!(" AND source_id IN ({})", vec!["?"; params.len() - 2].join(", "))
    } else {
        String::new()
    };
    let sql = format!(
        "SELECT source_id, ext_id, builder_id, project_id, branch_id, revision_id, worker_id, \
         requested_at, started_at, finished_at, result, tags, metrics, {} \
         FROM jobs WHERE t >= ? AND t <= ?{source_filter} ORDER BY t, pk",
        if with_url { "url" } else { "NULL" }
    );
    let mut stmt = tx.prepare(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
    while let Some(row) = rows.next()? {
        each(&names, row)?;
    }
    Ok(())
}

/// source, project, branch, builder, worker, revision, result: the table's fixed dims.
fn fixed_dims<'n>(names: &'n Names, row: &Row) -> Result<[Option<&'n str>; 7], StoreError> {
    let name = |i: usize| -> Result<Option<&'n str>, StoreError> {
        match int(row, i)? {
            None => Ok(None),
            Some(id) => names
                .get(id as usize)
                .and_then(Option::as_deref)
                .map(Some)
                .ok_or_else(|| StoreError::Corrupt(format!("name id {id} is missing"))),
        }
    };
    Ok([name(0)?, name(3)?, name(4)?, name(2)?, name(6)?, name(5)?, Some(result(row)?.as_str())])
}

fn result(row: &Row) -> Result<JobResult, StoreError> {
    let code = int(row, 10)?.unwrap_or(-1);
    u8::try_from(code)
        .ok()
        .and_then(JobResult::from_code)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown result code {code}")))
}

fn int(row: &Row, i: usize) -> Result<Option<i64>, StoreError> {
    match row.get_ref(i)? {
        ValueRef::Null => Ok(None),
        ValueRef::Integer(v) => Ok(Some(v)),
        other => Err(StoreError::Corrupt(format!(
            "column {i}: expected an integer, found {:?}",
            other.data_type()
        ))),
    }
}

fn text<'r>(row: &'r Row, i: usize) -> Result<Option<&'r str>, StoreError> {
    match row.get_ref(i)? {
        ValueRef::Null => Ok(None),
        ValueRef::Text(t) => std::str::from_utf8(t).map(Some).map_err(|e| StoreError::Corrupt(e.to_string())),
        other => {
            Err(StoreError::Corrupt(format!("column {i}: expected text, found {:?}", other.data_type())))
        }
    }
}

/// Parsed tag sets by their JSON text: a farm has few distinct tag sets, so each is parsed
/// once per scan.
#[derive(Default)]
struct TagCache {
    parsed: rustc_hash::FxHashMap<String, Vec<(String, String)>>,
    empty: Vec<(String, String)>,
}

impl TagCache {
    fn get(&mut self, json: Option<&str>) -> Result<&[(String, String)], StoreError> {
        let Some(json) = json else { return Ok(&self.empty) };
        if !self.parsed.contains_key(json) {
            let map: BTreeMap<String, String> =
                serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("tags: {e}")))?;
            self.parsed.insert(json.to_owned(), map.into_iter().collect());
        }
        Ok(&self.parsed[json])
    }
}

fn parse_metrics(json: Option<&str>, into: &mut Vec<(String, f64)>) -> Result<(), StoreError> {
    into.clear();
    if let Some(json) = json {
        let map: BTreeMap<String, f64> =
            serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("metrics: {e}")))?;
        into.extend(map);
    }
    Ok(())
}
