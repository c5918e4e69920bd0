//! Import endpoints: `POST /api/v1/import/{kind}` (body = the file), the Buildbot
//! HttpStatusPush hook, and InfluxDB's v1 and v2 write endpoints.
//!
//! Line protocol (`influx`, `/write`, `/api/v2/write`) is parsed as the body arrives, so a
//! body of any size goes through in bounded memory. The other kinds are parsed from the
//! whole body (their parsers take JSON or XML documents, gzip and tar whole), which is why
//! they keep the [`super::BODY_LIMIT_BYTES`] limit.

use std::collections::HashMap;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use common::api::ErrorDetail;
use serde::Serialize;

use super::AppState;
use super::jobs::body_error;
use crate::error::ApiError;
use crate::import::buildbot;
use crate::import::run::{self, ImportReport, Kind};

/// An import's answer: the report, and on failure the error envelope beside it.
#[derive(Serialize)]
struct Answer {
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorDetail>,
    report: ImportReport,
}

fn answer(report: ImportReport) -> Response {
    match &report.error {
        None => (StatusCode::OK, Json(Answer { error: None, report })).into_response(),
        Some(message) => {
            let error = ErrorDetail {
                code: "invalid_input".into(),
                message: message.clone(),
                index: None,
                field: None,
            };
            (StatusCode::UNPROCESSABLE_ENTITY, Json(Answer { error: Some(error), report })).into_response()
        }
    }
}

fn options(
    kind: &str,
    q: &HashMap<String, String>,
    source_key: &str,
) -> Result<crate::import::Options, ApiError> {
    run::options(
        &format!("{kind} upload"),
        q.get(source_key).filter(|s| !s.is_empty()).cloned(),
        q.get("job").map(String::as_str),
        q.get("precision").map(String::as_str),
    )
    .map_err(ApiError::BadQuery)
}

/// `POST /api/v1/import/{kind}?source=&job=SOURCE/ID&precision=`.
pub async fn import(
    State(state): State<AppState>,
    Path(kind): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    request: Request,
) -> Result<Response, ApiError> {
    let kind: Kind = kind.parse().map_err(ApiError::NotFound)?;
    let opts = options(kind.name(), &q, "source")?;
    let report = if kind == Kind::Influx {
        run::import(state.store, kind, streamed(request.into_body()), opts).await
    } else {
        // `Bytes` applies the router's body limit.
        let body = Bytes::from_request(request, &()).await.map_err(body_error)?;
        run::import(state.store, kind, std::io::Cursor::new(body), opts).await
    };
    Ok(answer(report))
}

/// A request body as a blocking reader for an importer on a blocking thread: it yields the
/// body's chunks as they arrive, so memory holds a chunk, not the body.
fn streamed(body: Body) -> impl std::io::BufRead + Send + 'static {
    use futures_util::TryStreamExt;
    let chunks = body.into_data_stream().map_err(std::io::Error::other);
    tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(chunks))
}

/// `POST /api/v1/hooks/buildbot`: Buildbot's HttpStatusPush posts the build dict when a
/// build starts and when it finishes.
pub async fn buildbot_hook(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let opts = options("buildbot push", &q, "source")?;
    let body = body.map_err(body_error)?;
    let batch = buildbot::parse_push_with(&body, &opts).map_err(|e| ApiError::BadBody(e.to_string()))?;
    Ok(answer(run::import_batch(state.store.as_ref(), batch).await))
}

/// `POST /write?db=&precision=` (InfluxDB 1.x): `db` names the source.
pub async fn influx_v1(
    state: State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    body: Body,
) -> Result<Response, ApiError> {
    influx_write(state, options("line protocol", &q, "db")?, body).await
}

/// `POST /api/v2/write?bucket=&precision=` (InfluxDB 2.x): `bucket` names the source.
pub async fn influx_v2(
    state: State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    body: Body,
) -> Result<Response, ApiError> {
    influx_write(state, options("line protocol", &q, "bucket")?, body).await
}

/// Answers like InfluxDB: 204 when every point was stored, 400 naming the bad line.
/// Batches before a bad line are stored, as the report of `/api/v1/import/influx` says.
async fn influx_write(
    State(state): State<AppState>,
    opts: crate::import::Options,
    body: Body,
) -> Result<Response, ApiError> {
    let report = run::import(state.store, Kind::Influx, streamed(body), opts).await;
    match report.error {
        None => Ok(StatusCode::NO_CONTENT.into_response()),
        Some(e) => Err(ApiError::BadBody(e)),
    }
}
