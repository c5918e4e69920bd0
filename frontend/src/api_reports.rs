//! HTTP calls of the tests and metrics pages: `GET /api/v1/tests`, `/api/v1/metrics` and
//! `/api/v1/samples` (docs/API.md). Kept apart from `api` so the two grow independently;
//! errors are the same [`ApiError`].

use common::reports::{MetricInfo, SampleTable, TestTable};
use gloo_net::http::Request;

use crate::api::{ApiError, error_from};

/// The test results of the jobs in `from`..`to` (Grafana syntax, passed through as in the
/// page's URL), checked so the page may index the table freely.
pub async fn tests(from: &str, to: &str) -> Result<TestTable, ApiError> {
    let text = get_text("/api/v1/tests", &[("from", from), ("to", to)]).await?;
    let table: TestTable = serde_json::from_str(&text).map_err(|e| ApiError::Body(e.to_string()))?;
    table.check().map_err(ApiError::Body)?;
    Ok(table)
}

/// The metrics with samples in `from`..`to`, by name.
pub async fn metrics(from: &str, to: &str) -> Result<Vec<MetricInfo>, ApiError> {
    let text = get_text("/api/v1/metrics", &[("from", from), ("to", to)]).await?;
    serde_json::from_str(&text).map_err(|e| ApiError::Body(e.to_string()))
}

/// The samples of metric `name` in `from`..`to`, time-ordered.
pub async fn samples(name: &str, from: &str, to: &str) -> Result<SampleTable, ApiError> {
    let text = get_text("/api/v1/samples", &[("name", name), ("from", from), ("to", to)]).await?;
    let table: SampleTable = serde_json::from_str(&text).map_err(|e| ApiError::Body(e.to_string()))?;
    table.check().map_err(ApiError::Body)?;
    Ok(table)
}

/// The body of a successful GET, or the error envelope's sentence.
async fn get_text(path: &str, query: &[(&str, &str)]) -> Result<String, ApiError> {
    let response = Request::get(path)
        .query(query.iter().copied())
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| ApiError::Network(e.to_string()))?;
    if !response.ok() {
        return Err(error_from(response).await);
    }
    response.text().await.map_err(|e| ApiError::Body(e.to_string()))
}
