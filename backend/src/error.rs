//! The API's error type: 4xx say what was wrong with the input, 5xx are opaque to the
//! client and logged once with their cause.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use common::api::{ErrorBody, ErrorDetail};

use crate::ingest::RecordError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A record in an ingest batch is invalid.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The query string is wrong (bad time, unknown format ...).
    #[error("{0}")]
    BadQuery(String),
    #[error("request body is larger than the {limit_mib} MiB limit")]
    BodyTooLarge { limit_mib: usize },
    #[error("{0}")]
    BadBody(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, index, field) = match &self {
            ApiError::Record(e) => (StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.index, e.field.clone()),
            ApiError::BadQuery(_) => (StatusCode::BAD_REQUEST, "bad_query", None, None),
            ApiError::BodyTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", None, None),
            ApiError::BadBody(_) => (StatusCode::BAD_REQUEST, "bad_body", None, None),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found", None, None),
            ApiError::Store(_) | ApiError::Internal(_) => {
                tracing::error!(error = ?anyhow::Error::from(self), "request failed");
                let body = ErrorBody {
                    error: ErrorDetail {
                        code: "internal".into(),
                        message: "internal server error; see the server log".into(),
                        index: None,
                        field: None,
                    },
                };
                return (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response();
            }
        };
        let body =
            ErrorBody { error: ErrorDetail { code: code.into(), message: self.to_string(), index, field } };
        (status, Json(body)).into_response()
    }
}
