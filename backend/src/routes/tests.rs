//! `GET /api/v1/tests`: the test results of a time range's jobs, for the intermittent-tests
//! page (which computes its statistics in the browser with `common::flaky`).

use std::time::Instant;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use common::TimeRange;

use super::AppState;
use crate::error::ApiError;
use crate::store::JobQuery;

/// Query of `GET /api/v1/tests`.
#[derive(Debug, PartialEq)]
pub struct TestParams {
    pub query: JobQuery,
    /// Keep tests whose `suite::name` contains this (case-insensitive).
    pub test: Option<String>,
}

impl TestParams {
    /// Parses `from`, `to` (Grafana syntax; default the last 7 days), `source` (repeatable or
    /// comma-separated) and `test`. Other keys (the page's own view state) are ignored.
    pub fn parse(raw: Option<&str>, now_ms: i64) -> Result<TestParams, ApiError> {
        let (mut from, mut to) = ("now-7d".to_owned(), "now".to_owned());
        let mut sources = Vec::new();
        let mut test = None;
        for (key, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            match key.as_ref() {
                "from" => from = value.into_owned(),
                "to" => to = value.into_owned(),
                "source" => sources.extend(value.split(',').filter(|s| !s.is_empty()).map(str::to_owned)),
                "test" => test = Some(value.into_owned()).filter(|t| !t.trim().is_empty()),
                _ => {}
            }
        }
        let range = TimeRange::parse(&from, &to, now_ms).map_err(ApiError::BadQuery)?;
        Ok(TestParams { query: JobQuery { range, sources }, test })
    }
}

/// `GET /api/v1/tests`: a [`common::reports::TestTable`] as JSON.
pub async fn list(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    let params = TestParams::parse(raw.as_deref(), jiff::Timestamp::now().as_millisecond())?;
    let started = Instant::now();
    let table = state.store.test_table(&params.query, params.test.as_deref()).await?;
    let db_ms = started.elapsed().as_secs_f64() * 1e3;
    let mut response = Json(table).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("db;dur={db_ms:.1}")) {
        response.headers_mut().insert("server-timing", v);
    }
    Ok(response)
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn test_params() {
        let now = 1_710_000_000_000;
        let p = TestParams::parse(Some("from=now-1d&source=a,b&test=Login&sort=flips"), now).unwrap();
        assert_eq!(p.query.range, TimeRange { from_ms: now - 86_400_000, to_ms: now });
        assert_eq!(p.query.sources, ["a", "b"]);
        assert_eq!(p.test.as_deref(), Some("Login"));
        let p = TestParams::parse(Some("test=%20"), now).unwrap();
        assert_eq!((p.query.range.from_ms, p.test), (now - 7 * 86_400_000, None));
        assert!(TestParams::parse(Some("to=soon"), now).is_err());
    }
}
