//! `/api/v1/jobs`: ingest and read job records.

use std::collections::HashMap;
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use common::api::{IngestReport, JobsFormat};
use common::view::ViewState;
use common::{Job, JobTable, TimeRange};

use super::{AppState, BODY_LIMIT_BYTES};
use crate::error::ApiError;
use crate::ingest::parse_jobs;
use crate::store::{JobQuery, Records};

/// `POST /api/v1/jobs`: a JSON array of jobs, stored atomically.
pub async fn ingest(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<IngestReport>, ApiError> {
    let body = body.map_err(body_error)?;
    let jobs = tokio::task::spawn_blocking(move || parse_jobs(&body))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??;
    let report = state.store.write(Records { jobs: &jobs, ..Default::default() }).await?;
    Ok(Json(IngestReport { inserted: report.jobs.inserted, updated: report.jobs.updated }))
}

/// Maps a body that could not be read to the error envelope (413 for the size limit).
pub fn body_error(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::BodyTooLarge { limit_mib: BODY_LIMIT_BYTES >> 20 }
    } else {
        ApiError::BadBody(rejection.body_text())
    }
}

/// Query of `GET /api/v1/jobs`.
#[derive(Debug, PartialEq)]
pub struct ListParams {
    pub query: JobQuery,
    pub format: JobsFormat,
    /// The explorer's view, when the query narrows rows further than range and source
    /// (`var-`, `not-`, `range-` or `sort` keys): the `json` and `csv` answers then hold
    /// exactly the job list of that view, in its order.
    pub view: Option<ViewState>,
}

impl ListParams {
    /// Parses `from`, `to` (Grafana syntax; default the last 30 days), `source` (repeatable
    /// or comma-separated) and `format` (`columnar`, `json`, `csv`).
    pub fn parse(raw: Option<&str>, now_ms: i64) -> Result<ListParams, ApiError> {
        let (mut from, mut to) = ("now-30d".to_owned(), "now".to_owned());
        let mut sources = Vec::new();
        let mut format = JobsFormat::Columnar;
        for (key, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            match key.as_ref() {
                "from" => from = value.into_owned(),
                "to" => to = value.into_owned(),
                "source" => sources.extend(value.split(',').filter(|s| !s.is_empty()).map(str::to_owned)),
                "format" => {
                    format = serde_json::from_value(serde_json::Value::String(value.to_string())).map_err(
                        |_| {
                            ApiError::BadQuery(format!("format: `{value}` is not one of columnar, json, csv"))
                        },
                    )?
                }
                // The browser keeps its whole view in the URL and may pass it along; what
                // the server does not narrow by, it ignores.
                _ => {}
            }
        }
        let range = TimeRange::parse(&from, &to, now_ms).map_err(ApiError::BadQuery)?;
        let view =
            ViewState::from_query_string(raw.unwrap_or("")).map_err(|e| ApiError::BadQuery(e.to_string()))?;
        let narrows = !view.filters.is_empty() || !view.ranges.is_empty() || view.sort.is_some();
        Ok(ListParams { query: JobQuery { range, sources }, format, view: narrows.then_some(view) })
    }
}

/// `GET /api/v1/jobs`: the jobs of a time range (and sources) in the requested encoding.
pub async fn list(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let params = ListParams::parse(raw.as_deref(), now_ms)?;
    let started = Instant::now();
    let (body, content_type, db_ms) = match params.format {
        JobsFormat::Columnar => {
            let table = state.store.job_table(&params.query).await?;
            let db_ms = started.elapsed().as_secs_f64() * 1e3;
            let body = tokio::task::spawn_blocking(move || table.encode())
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            (body, common::wire::CONTENT_TYPE, db_ms)
        }
        JobsFormat::Json => {
            let rows = narrow(state.store.job_rows(&params.query).await?, params.view, now_ms).await?;
            let db_ms = started.elapsed().as_secs_f64() * 1e3;
            let body = serde_json::to_vec(&rows).map_err(|e| ApiError::Internal(e.to_string()))?;
            (body, "application/json", db_ms)
        }
        JobsFormat::Csv => {
            let rows = narrow(state.store.job_rows(&params.query).await?, params.view, now_ms).await?;
            let db_ms = started.elapsed().as_secs_f64() * 1e3;
            let body = tokio::task::spawn_blocking(move || common::export::jobs_csv(&rows))
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            (body, "text/csv; charset=utf-8; header=present", db_ms)
        }
    };
    let encode_ms = started.elapsed().as_secs_f64() * 1e3 - db_ms;
    let decoded_length = body.len();
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    // The size before compression, so the browser can show download progress (it sees
    // decoded bytes; Content-Length, when present, is the compressed size).
    headers.insert("x-decoded-length", HeaderValue::from(decoded_length));
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if params.format == JobsFormat::Csv {
        headers.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment; filename=\"buildscope-jobs.csv\""),
        );
    }
    // Lets a browser's network panel (and the benchmark) split store time from encoding.
    if let Ok(v) = HeaderValue::from_str(&format!("db;dur={db_ms:.1}, encode;dur={encode_ms:.1}")) {
        headers.insert("server-timing", v);
    }
    Ok(response)
}

/// The jobs of `view`'s job list among `rows`, in its order (all of `rows` without a view):
/// the same `common::view` code the browser's job list runs.
async fn narrow(rows: Vec<Job>, view: Option<ViewState>, now_ms: i64) -> Result<Vec<Job>, ApiError> {
    let Some(view) = view else { return Ok(rows) };
    tokio::task::spawn_blocking(move || {
        let table = JobTable::from_jobs(&rows);
        let mut at: HashMap<(&str, &str), usize> = HashMap::with_capacity(rows.len());
        for (i, j) in rows.iter().enumerate() {
            at.insert((&j.source, &j.id), i);
        }
        let order = view.job_rows(&table, now_ms).map_err(|e| ApiError::BadQuery(e.to_string()))?;
        let source = &table.dims[common::table::dim::SOURCE];
        let picked: Vec<usize> = order
            .iter()
            .filter_map(|&r| {
                let id = table.ids.get(r as usize);
                at.get(&(source.get(r as usize).unwrap_or(""), id.as_str())).copied()
            })
            .collect();
        let mut slots: Vec<Option<Job>> = rows.into_iter().map(Some).collect();
        Ok(picked.into_iter().filter_map(|i| slots[i].take()).collect())
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
}

/// `GET /api/v1/jobs/{source}/{id}/ci`: a redirect to the job's page in its CI system.
pub async fn ci_link(
    State(state): State<AppState>,
    Path((source, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let job = state
        .store
        .job(&source, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no job `{id}` in source `{source}`")))?;
    let url = job.url.ok_or_else(|| {
        ApiError::NotFound(format!(
            "job `{id}` of source `{source}` was imported without a link to its CI page"
        ))
    })?;
    Ok(axum::response::Redirect::temporary(&url).into_response())
}

/// `GET /api/v1/jobs/{source}/{id}`: one job with its steps.
pub async fn detail(
    State(state): State<AppState>,
    Path((source, id)): Path<(String, String)>,
) -> Result<Json<Job>, ApiError> {
    state
        .store
        .job(&source, &id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no job `{id}` in source `{source}`")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_params() {
        let now = 1_710_000_000_000;
        let p = ListParams::parse(Some("from=now-1d&to=now&source=a,b&source=c&format=csv&view=pivot"), now)
            .unwrap();
        assert_eq!(p.query.range, TimeRange { from_ms: now - 86_400_000, to_ms: now });
        assert_eq!(p.query.sources, ["a", "b", "c"]);
        assert_eq!(p.format, JobsFormat::Csv);
        let p = ListParams::parse(None, now).unwrap();
        assert_eq!(p.query.range.from_ms, now - 30 * 86_400_000);
        assert_eq!(p.format, JobsFormat::Columnar);
        assert_eq!(p.view, None);
        let p = ListParams::parse(Some("from=now-1d&var-worker=w1&sort=-duration&format=csv"), now).unwrap();
        let view = p.view.expect("filters and sort narrow the rows");
        assert_eq!(view.filters[0].include, ["w1"]);
        for bad in ["from=yesterday", "format=xml", "from=now&to=now-1d", "var-nope=1", "sort=sideways"] {
            assert!(ListParams::parse(Some(bad), now).is_err(), "{bad}");
        }
    }
}
