//! `GET /api/v1/metrics` (which metrics there are) and `GET /api/v1/samples` (one metric's
//! samples), for the metrics page (which buckets them in the browser with
//! `common::series`).

use axum::Json;
use axum::extract::{RawQuery, State};
use common::TimeRange;
use common::reports::{MetricInfo, SampleTable};
use common::time::parse_time_expr;

use super::AppState;
use crate::error::ApiError;

/// `from`/`to` (Grafana syntax) and the other keys of a query string.
fn parse(raw: Option<&str>) -> (Option<String>, Option<String>, Vec<(String, String)>) {
    let (mut from, mut to, mut rest) = (None, None, Vec::new());
    for (key, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "from" => from = Some(value.into_owned()),
            "to" => to = Some(value.into_owned()),
            _ => rest.push((key.into_owned(), value.into_owned())),
        }
    }
    (from, to, rest)
}

/// The range of `from`/`to`; a missing end leaves that side unbounded.
pub fn open_range(from: Option<&str>, to: Option<&str>, now_ms: i64) -> Result<TimeRange, ApiError> {
    let end = |name: &str, expr: Option<&str>, round_up: bool, unbounded: i64| {
        expr.map_or(Ok(unbounded), |e| {
            parse_time_expr(e, now_ms, round_up).map_err(|msg| ApiError::BadQuery(format!("{name}: {msg}")))
        })
    };
    let range =
        TimeRange { from_ms: end("from", from, false, i64::MIN)?, to_ms: end("to", to, true, i64::MAX)? };
    if range.to_ms < range.from_ms {
        return Err(ApiError::BadQuery(format!(
            "to ({}) is before from ({})",
            to.unwrap_or_default(),
            from.unwrap_or_default()
        )));
    }
    Ok(range)
}

/// `GET /api/v1/metrics?from=&to=`: every metric with samples in the range (all time when
/// no range is given), by name.
pub async fn list(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Vec<MetricInfo>>, ApiError> {
    let (from, to, _) = parse(raw.as_deref());
    let range = open_range(from.as_deref(), to.as_deref(), jiff::Timestamp::now().as_millisecond())?;
    Ok(Json(state.store.metrics(range).await?))
}

/// `GET /api/v1/samples?name=&from=&to=`: the samples of one metric in a range (default the
/// last 30 days), time-ordered, as a [`SampleTable`].
pub async fn samples(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<SampleTable>, ApiError> {
    let (from, to, rest) = parse(raw.as_deref());
    let name =
        rest.into_iter().find(|(k, _)| k == "name").map(|(_, v)| v).filter(|v| !v.is_empty()).ok_or_else(
            || ApiError::BadQuery("name: the metric to read is required (see /api/v1/metrics)".into()),
        )?;
    let now = jiff::Timestamp::now().as_millisecond();
    let range = TimeRange::parse(from.as_deref().unwrap_or("now-30d"), to.as_deref().unwrap_or("now"), now)
        .map_err(ApiError::BadQuery)?;
    let samples = state.store.samples(&name, range).await?;
    Ok(Json(SampleTable::from_samples(&name, &samples)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_ranges() {
        let now = 1_710_000_000_000;
        let r = open_range(None, None, now).unwrap();
        assert_eq!((r.from_ms, r.to_ms), (i64::MIN, i64::MAX));
        let r = open_range(Some("now-1h"), None, now).unwrap();
        assert_eq!((r.from_ms, r.to_ms), (now - 3_600_000, i64::MAX));
        assert!(open_range(Some("now"), Some("now-1d"), now).is_err());
        assert!(open_range(Some("later"), None, now).is_err());
    }
}
