//! The overview page: how many jobs ran per day in a time range and how long they took.
//!
//! The view is the URL: `?from=now-30d&to=now` (Grafana time syntax). The page fetches that
//! range from the data API, decodes the columnar table and summarises it per day, all in
//! the browser, and times the decode + summary so regressions show.

use common::summary::{self, DailyPoint};
use common::{JobTable, TimeRange};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::api;
use crate::components::chart::DailyChart;
use crate::components::range_picker::RangePicker;
use crate::format::{relative_name, thousands, utc_minute};

/// `from` when the URL has none.
pub const DEFAULT_FROM: &str = "now-30d";
/// `to` when the URL has none.
pub const DEFAULT_TO: &str = "now";

/// The overview of the URL's time range: range picker, job count, the daily chart, and a
/// status line for loading, empty and failed states.
#[component]
pub fn Overview() -> impl IntoView {
    let query = use_query_map();
    let param = move |key: &str, default: &str| {
        query.read().get(key).filter(|v| !v.trim().is_empty()).unwrap_or_else(|| default.to_owned())
    };
    let from = Signal::derive(move || param("from", DEFAULT_FROM));
    let to = Signal::derive(move || param("to", DEFAULT_TO));

    let loaded = LocalResource::new(move || {
        let (from, to) = (from.get(), to.get());
        async move { load(from, to).await }
    });
    // A refetch keeps showing the previous answer, so an answer counts only for the range it
    // was fetched for; until the new one arrives the page is loading.
    let current = Memo::new(move |_| {
        let (from, to) = (from.get(), to.get());
        loaded.with(|answer| match answer {
            Some(a) if a.from == from && a.to == to => Some(a.outcome.clone()),
            _ => None,
        })
    });
    let summary = move || current.get().and_then(Result::ok);
    let points = Signal::derive(move || summary().map(|s| s.points).unwrap_or_default());

    let status = move || match current.get() {
        None => ("loading", "Loading…".to_owned()),
        Some(Err(message)) => ("error", message),
        Some(Ok(s)) if s.jobs == 0 => ("empty", "No jobs in this time range".to_owned()),
        Some(Ok(_)) => ("ready", String::new()),
    };

    view! {
        <section class="toolbar">
            <div class="range">
                <h1 data-testid="range-name">{move || range_name(&from.get(), &to.get())}</h1>
                <p class="range-ends" data-testid="range">{move || range_ends(&from.get(), &to.get())}</p>
            </div>
            <RangePicker from=from to=to/>
        </section>
        <p class="status" role="status" data-testid="status" data-state=move || status().0>
            {move || status().1}
        </p>
        <Show when=move || summary().is_some()>
            <section class="cards">
                <div class="card stat">
                    <span class="stat-label">"Jobs"</span>
                    <span class="stat-value" data-testid="job-count">
                        {move || summary().map(|s| s.jobs.to_string())}
                    </span>
                    <span class="stat-note">
                        {move || summary().map(|s| jobs_note(&s))}
                    </span>
                </div>
                <div class="card stat">
                    <span class="stat-label">"Decode + summary"</span>
                    <span class="stat-value">
                        <span data-testid="recompute-ms">
                            {move || summary().map(|s| format!("{:.2}", s.recompute_ms))}
                        </span>
                        <span class="unit">" ms"</span>
                    </span>
                    <span class="stat-note">"computed in your browser"</span>
                </div>
            </section>
        </Show>
        <section class="card chart-card" class:dim=move || summary().is_none_or(|s| s.jobs == 0)>
            <h2>"Jobs per day and median run time"</h2>
            <DailyChart points=points/>
            <p class="exports">
                "The data behind this view: "
                <a href=move || export_href(&from.get(), &to.get(), "csv")>"CSV"</a>
                " · "
                <a href=move || export_href(&from.get(), &to.get(), "json")>"JSON"</a>
            </p>
        </section>
    }
}

/// What the page shows for one answer of the data API.
#[derive(Clone, Debug, PartialEq)]
struct Summary {
    jobs: usize,
    points: Vec<DailyPoint>,
    /// Milliseconds spent decoding the table and summarising it per day.
    recompute_ms: f64,
}

/// One answer, with the range it answers.
#[derive(Clone, Debug, PartialEq)]
struct Answer {
    from: String,
    to: String,
    /// The summary, or a sentence saying why there is none.
    outcome: Result<Summary, String>,
}

async fn load(from: String, to: String) -> Answer {
    let outcome = match api::jobs_columnar(&from, &to).await {
        Ok(bytes) => summarise(&bytes),
        Err(e) => Err(e.to_string()),
    };
    Answer { from, to, outcome }
}

/// Decodes the wire table and computes the daily points, timing both.
fn summarise(bytes: &[u8]) -> Result<Summary, String> {
    let started = now_ms();
    let table = JobTable::decode(bytes).map_err(|e| format!("The job table could not be decoded: {e}"))?;
    let points = summary::daily(&table);
    let recompute_ms = now_ms() - started;
    Ok(Summary { jobs: table.len, points, recompute_ms })
}

/// A high-resolution clock in ms (`performance.now()`), or the wall clock without one.
fn now_ms() -> f64 {
    web_sys::window().and_then(|w| w.performance()).map(|p| p.now()).unwrap_or_else(js_sys::Date::now)
}

/// The job count for people, and over how many days the jobs spread.
fn jobs_note(s: &Summary) -> String {
    match (s.jobs, s.points.len()) {
        (0, _) => "none in this range".to_owned(),
        (jobs, 1) => format!("{} on one day", thousands(jobs as u64)),
        (jobs, days) => format!("{} over {days} days", thousands(jobs as u64)),
    }
}

/// `Last 30 days` for a relative range, `Custom range` otherwise.
fn range_name(from: &str, to: &str) -> String {
    relative_name(from, to).unwrap_or_else(|| "Custom range".to_owned())
}

/// The range's ends resolved now, in UTC, or why they cannot be.
fn range_ends(from: &str, to: &str) -> String {
    match TimeRange::parse(from, to, js_sys::Date::now() as i64) {
        Ok(r) => format!("{} → {} UTC", utc_minute(r.from_ms), utc_minute(r.to_ms)),
        Err(e) => format!("Not a time range: {e}"),
    }
}

/// The same range from the data API in another format.
fn export_href(from: &str, to: &str, format: &str) -> String {
    let encode = |s: &str| String::from(js_sys::encode_uri_component(s));
    format!("/api/v1/jobs?from={}&to={}&format={format}", encode(from), encode(to))
}
