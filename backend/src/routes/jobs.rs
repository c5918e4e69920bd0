//! `/api/v1/jobs`: ingest and read job records.

use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use common::api::{IngestReport, JobsFormat};
use common::{Job, TimeRange};

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
        Ok(ListParams { query: JobQuery { range, sources }, format })
    }
}

/// `GET /api/v1/jobs`: the jobs of a time range (and sources) in the requested encoding.
pub async fn list(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    let params = ListParams::parse(raw.as_deref(), jiff::Timestamp::now().as_millisecond())?;
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
            let rows = state.store.job_rows(&params.query).await?;
            let db_ms = started.elapsed().as_secs_f64() * 1e3;
            let body = serde_json::to_vec(&rows).map_err(|e| ApiError::Internal(e.to_string()))?;
            (body, "application/json", db_ms)
        }
        JobsFormat::Csv => {
            let rows: Vec<Job> = state.store.job_rows(&params.query).await?;
            let db_ms = started.elapsed().as_secs_f64() * 1e3;
            let body = tokio::task::spawn_blocking(move || common::export::jobs_csv(&rows))
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            (body, "text/csv; charset=utf-8; header=present", db_ms)
        }
    };
    let encode_ms = started.elapsed().as_secs_f64() * 1e3 - db_ms;
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
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
        for bad in ["from=yesterday", "format=xml", "from=now&to=now-1d"] {
            assert!(ListParams::parse(Some(bad), now).is_err(), "{bad}");
        }
    }
}
