use axum::Json;
use axum::extract::State;
use common::api::Health;

use super::AppState;
use crate::error::ApiError;

/// `GET /api/v1/health`: the server is up and the store answers.
pub async fn health(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    Ok(Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        jobs: state.store.job_count().await?,
    }))
}
