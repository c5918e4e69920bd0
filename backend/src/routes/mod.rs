//! HTTP routes. One `router()` wires them all; handlers are thin: extract, validate, call
//! the store, map to a response.

mod health;
mod import;
mod jobs;
mod metrics;
mod tests;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get, post};
use tokio::net::TcpListener;
use tower_http::compression::{CompressionLayer, CompressionLevel};
use tower_http::services::{ServeDir, ServeFile};
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::store::Store;

/// Largest accepted request body for the kinds read whole (jobs JSON, the JSON, XML and tar
/// imports). Line protocol (`/api/v1/import/influx`, `/write`, `/api/v2/write`) is streamed
/// into the importer and has no limit.
pub const BODY_LIMIT_BYTES: usize = 64 << 20;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// The built frontend (`trunk build` output); `index.html` answers every unknown
    /// non-API path so permalinks load the app.
    pub static_dir: PathBuf,
}

/// Every route of the server.
pub fn router(state: AppState) -> Router {
    let index = state.static_dir.join("index.html");
    if !index.exists() {
        tracing::warn!(path = %index.display(), "frontend not built; the API works, the browser app will 404");
    }
    let frontend = ServeDir::new(&state.static_dir).fallback(ServeFile::new(index));
    Router::new()
        .route("/api/v1/health", get(health::health))
        .route("/api/v1/jobs", get(jobs::list).post(jobs::ingest))
        .route("/api/v1/jobs/{source}/{id}", get(jobs::detail))
        .route("/api/v1/jobs/{source}/{id}/ci", get(jobs::ci_link))
        .route("/api/v1/tests", get(tests::list))
        .route("/api/v1/metrics", get(metrics::list))
        .route("/api/v1/samples", get(metrics::samples))
        .route("/api/v1/import/{kind}", post(import::import))
        .route("/api/v1/hooks/buildbot", post(import::buildbot_hook))
        .route("/write", post(import::influx_v1))
        .route("/api/v2/write", post(import::influx_v2))
        .route("/api/{*rest}", any(api_not_found))
        .fallback_service(frontend)
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        // Brotli at quality 4 and gzip at level 4: most of the ratio for a fraction of the
        // CPU of the defaults (brotli's default, 11, takes seconds on a large job table).
        .layer(CompressionLayer::new().quality(CompressionLevel::Precise(4)))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn api_not_found() -> ApiError {
    ApiError::NotFound("no such API endpoint; see docs/API.md".into())
}

/// Serves until `shutdown` resolves, then finishes the requests in flight.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}
