//! The intermittent-tests page (`/tests`): which tests flip between passing and failing,
//! and one test's history as a strip of outcomes per builder.
//!
//! The view is the URL: `from`/`to` (Grafana syntax, default the last 7 days), `show`
//! (`intermittent`, `failing` or `all`), `sort` and `dir` (the table's order) and `test`
//! (the test whose history is drawn). The page fetches the range's test results once and
//! computes every number in the browser with `common::flaky`.

use std::rc::Rc;
use std::sync::Arc;

use charming::Chart;
use charming::component::{Axis, Grid, Legend};
use charming::datatype::DataPointItem;
use charming::element::{AxisType, Color, ItemStyle, Symbol, Tooltip, Trigger};
use charming::series::Scatter;
use common::flaky::{self, FlakyConfig, TestSort, TestStats};
use common::records::TestOutcome;
use common::reports::TestTable;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::api_reports;
use crate::components::echart::EChart;
use crate::format::{thousands, utc_minute};
use crate::report_widgets::{RangeLinks, range_text, use_href};

/// `from` when the URL has none: a week, which a busy farm fills with ~a million results.
pub const DEFAULT_FROM: &str = "now-7d";
/// Most table rows drawn; the rest are counted.
const MAX_ROWS: usize = 200;

/// Which tests the table lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Show {
    /// Tests [`flaky`] judges intermittent (the default).
    Intermittent,
    /// Tests with at least one failed or error run.
    Failing,
    /// Every test that ran.
    All,
}

impl Show {
    const ALL: [(Show, &'static str, &'static str); 3] = [
        (Show::Intermittent, "intermittent", "Intermittent"),
        (Show::Failing, "failing", "With failures"),
        (Show::All, "all", "All tests"),
    ];

    fn parse(s: &str) -> Show {
        Show::ALL.iter().find(|(_, key, _)| *key == s).map_or(Show::Intermittent, |(show, _, _)| *show)
    }

    fn keeps(self, s: &TestStats) -> bool {
        match self {
            Show::Intermittent => s.intermittent,
            Show::Failing => s.failures > 0,
            Show::All => true,
        }
    }
}

/// A loaded range: the table and every test's record.
struct Report {
    table: TestTable,
    stats: Vec<TestStats>,
    compute_ms: f64,
}

impl PartialEq for Report {
    /// Reports are compared by identity: one is never rebuilt from the same answer.
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

/// One answer of the API with the range it was asked for.
#[derive(Clone)]
struct Answer {
    from: String,
    to: String,
    outcome: Result<Arc<Report>, String>,
}

/// The page: range, counts, the table of tests and the selected test's history.
#[component]
pub fn Tests() -> impl IntoView {
    let query = use_query_map();
    let param = move |key: &str| query.read().get(key).filter(|v| !v.trim().is_empty());
    let from = Signal::derive(move || param("from").unwrap_or_else(|| DEFAULT_FROM.to_owned()));
    let to = Signal::derive(move || param("to").unwrap_or_else(|| "now".to_owned()));
    let show = Signal::derive(move || Show::parse(&param("show").unwrap_or_default()));
    let sort = Signal::derive(move || param("sort").and_then(|s| TestSort::parse(&s)).unwrap_or_default());
    let descending = Signal::derive(move || match param("dir").as_deref() {
        Some("asc") => false,
        Some("desc") => true,
        _ => sort.get().descending_by_default(),
    });
    let selected = Signal::derive(move || param("test"));

    let href = use_href();

    let loaded = LocalResource::new(move || {
        let (from, to) = (from.get(), to.get());
        async move {
            let outcome = match api_reports::tests(&from, &to).await {
                Ok(table) => Ok(Arc::new(report(table))),
                Err(e) => Err(e.to_string()),
            };
            Answer { from, to, outcome }
        }
    });
    // An answer counts only for the range it was fetched for.
    let current = Memo::new(move |_| {
        let (from, to) = (from.get(), to.get());
        loaded.with(|a| match a {
            Some(a) if a.from == from && a.to == to => Some(a.outcome.clone().map_err(|e| e.to_string())),
            _ => None,
        })
    });
    let ready = move || current.get().and_then(Result::ok);

    let rows = Memo::new(move |_| {
        let Some(r) = ready() else { return (Vec::new(), 0) };
        let mut rows: Vec<TestStats> = r.stats.iter().filter(|s| show.get().keeps(s)).cloned().collect();
        flaky::sort_stats(&mut rows, sort.get(), descending.get());
        let total = rows.len();
        rows.truncate(MAX_ROWS);
        (rows, total)
    });

    let status = move || match current.get() {
        None => ("loading", "Loading test results…".to_owned()),
        Some(Err(message)) => ("error", message),
        Some(Ok(r)) if r.table.is_empty() => {
            ("empty", "No test results in this time range. Import JUnit reports to see them here.".to_owned())
        }
        Some(Ok(_)) => ("ready", String::new()),
    };

    let sort_header = move |key: TestSort, label: &'static str, numeric: bool| {
        let active = move || sort.get() == key;
        let next_desc = move || if active() { !descending.get() } else { key.descending_by_default() };
        let link = move || {
            href(vec![
                ("sort", Some(key.as_str().to_owned())),
                ("dir", Some(if next_desc() { "desc" } else { "asc" }.to_owned())),
            ])
        };
        let aria = move || active().then(|| if descending.get() { "descending" } else { "ascending" });
        let arrow = move || match (active(), descending.get()) {
            (false, _) => "",
            (true, true) => " ↓",
            (true, false) => " ↑",
        };
        view! {
            <th class:num=numeric aria-sort=aria>
                <a href=link data-testid=format!("sort-{}", key.as_str())>{label}{arrow}</a>
            </th>
        }
    };

    view! {
        <section class="toolbar">
            <div class="range">
                <h1>"Intermittent tests"</h1>
                <p class="range-ends" data-testid="range">
                    {move || range_text(&from.get(), &to.get())}
                </p>
            </div>
            <RangeLinks from=from to=to/>
        </section>
        <p class="status" role="status" data-testid="status" data-state=move || status().0>
            {move || status().1}
        </p>
        <Show when=move || ready().is_some_and(|r| !r.table.is_empty())>
            <section class="cards report-cards">
                <Stat label="Tests" testid="tests-count" value=Signal::derive(move || {
                    ready().map(|r| thousands(r.stats.len() as u64)).unwrap_or_default()
                }) note=Signal::derive(move || {
                    ready().map(|r| format!("{} results", thousands(r.table.len() as u64))).unwrap_or_default()
                })/>
                <Stat label="Intermittent" testid="intermittent-count" value=Signal::derive(move || {
                    ready().map(|r| r.stats.iter().filter(|s| s.intermittent).count().to_string()).unwrap_or_default()
                }) note=Signal::derive(move || {
                    let c = FlakyConfig::default();
                    format!("flip ≥{:.0}% on a builder, or mixed on one revision", c.min_flip_rate * 100.0)
                })/>
                <Stat label="Failing results" testid="failure-count" value=Signal::derive(move || {
                    ready().map(|r| thousands(r.stats.iter().map(|s| u64::from(s.failures)).sum())).unwrap_or_default()
                }) note=Signal::derive(move || "failed or error".to_owned())/>
                <Stat label="Computed in" testid="compute-ms" value=Signal::derive(move || {
                    ready().map(|r| format!("{:.1} ms", r.compute_ms)).unwrap_or_default()
                }) note=Signal::derive(move || "in your browser".to_owned())/>
            </section>
            <section class="card">
                <div class="report-card-head">
                    <h2>"Tests"</h2>
                    <nav class="presets" aria-label="Which tests">
                        {Show::ALL
                            .into_iter()
                            .map(|(s, key, label)| {
                                view! {
                                    <a
                                        class="preset"
                                        href=move || href(vec![("show", Some(key.to_owned()))])
                                        aria-current=move || (show.get() == s).then_some("page")
                                        data-testid=format!("show-{key}")
                                    >
                                        {label}
                                    </a>
                                }
                            })
                            .collect_view()}
                    </nav>
                </div>
                <div class="report-scroll">
                    <table class="report-table" data-testid="tests-table">
                        <thead>
                            <tr>
                                {sort_header(TestSort::Test, "Test", false)}
                                {sort_header(TestSort::Runs, "Runs", true)}
                                {sort_header(TestSort::Failures, "Failures", true)}
                                {sort_header(TestSort::Flips, "Flips", true)}
                                {sort_header(TestSort::FailureRate, "Failure rate", true)}
                                {sort_header(TestSort::LastFailure, "Last failure", true)}
                            </tr>
                        </thead>
                        <tbody>
                            <For each=move || rows.get().0 key=|s| s.test let:s>
                                {
                                    let id = s.id.clone();
                                    let link_id = id.clone();
                                    let is_selected = {
                                        let id = id.clone();
                                        move || selected.get().as_deref() == Some(id.as_str())
                                    };
                                    view! {
                                        <tr
                                            data-testid="test-row"
                                            data-test=id.clone()
                                            class:selected=is_selected
                                        >
                                            <td class="test-id">
                                                <a href=move || href(vec![("test", Some(link_id.clone()))])>{id.clone()}</a>
                                                {s.mixed_on_revision.then(|| view! {
                                                    <span class="report-badge" title="Passed and failed on the same builder and revision">
                                                        "same revision"
                                                    </span>
                                                })}
                                            </td>
                                            <td class="num" data-col="runs">{thousands(u64::from(s.runs))}</td>
                                            <td class="num" data-col="failures">{thousands(u64::from(s.failures))}</td>
                                            <td class="num" data-col="flips">{s.flips}</td>
                                            <td class="num" data-col="failure-rate">{percent(s.failure_rate)}</td>
                                            <td class="num" data-col="last-failure">
                                                {s.last_failure_ms.map(utc_minute).unwrap_or_else(|| "–".to_owned())}
                                            </td>
                                        </tr>
                                    }
                                }
                            </For>
                        </tbody>
                    </table>
                </div>
                <p class="report-note" data-testid="report-note">
                    {move || table_note(rows.get().1, show.get())}
                </p>
            </section>
            <Show when=move || selected.get().is_some()>
                <History
                    report=Signal::derive(ready)
                    test=Signal::derive(move || selected.get().unwrap_or_default())
                    close=Signal::derive(move || href(vec![("test", None)]))
                />
            </Show>
        </Show>
    }
}

/// One figure with its label and a note under it.
#[component]
fn Stat(
    label: &'static str,
    testid: &'static str,
    #[prop(into)] value: Signal<String>,
    #[prop(into)] note: Signal<String>,
) -> impl IntoView {
    view! {
        <div class="card stat">
            <span class="stat-label">{label}</span>
            <span class="stat-value" data-testid=testid>{move || value.get()}</span>
            <span class="stat-note">{move || note.get()}</span>
        </div>
    }
}

/// The selected test's runs: a summary line and the outcome strip per builder.
#[component]
fn History(
    #[prop(into)] report: Signal<Option<Arc<Report>>>,
    #[prop(into)] test: Signal<String>,
    #[prop(into)] close: Signal<String>,
) -> impl IntoView {
    let found = Memo::new(move |_| {
        let report = report.get()?;
        let id = test.get();
        let index = flaky::find_test(&report.table, &id)?;
        let stats = report.stats.iter().find(|s| s.test == index).cloned()?;
        Some((report, index, stats))
    });
    let chart = Signal::derive(move || found.get().map(|(r, t, _)| Arc::new(strip_chart(&r.table, t))));
    view! {
        <section class="card chart-card" data-testid="test-history">
            <div class="report-card-head">
                <h2 class="report-history-title">"History of " <code>{move || test.get()}</code></h2>
                <a class="report-close" href=move || close.get() aria-label="Close the history">"×"</a>
            </div>
            {move || match found.get() {
                None => view! {
                    <p class="notice" data-testid="history-summary">
                        "This test has no runs in this time range."
                    </p>
                }
                .into_any(),
                Some((_, _, s)) => view! {
                    <p class="report-history-summary" data-testid="history-summary">{summary(&s)}</p>
                }
                .into_any(),
            }}
            <div class:report-hidden=move || found.get().is_none()>
                <EChart
                    chart=chart
                    on_click=Rc::new(|_| {})
                    on_legend=Rc::new(|_, _| {})
                    on_painted=Rc::new(|| {})
                    height=260
                />
            </div>
        </section>
    }
}

fn report(table: TestTable) -> Report {
    let started = now_ms();
    let stats = flaky::test_stats(&table, &FlakyConfig::default());
    Report { compute_ms: now_ms() - started, table, stats }
}

/// `performance.now()`, or the wall clock without it.
fn now_ms() -> f64 {
    web_sys::window().and_then(|w| w.performance()).map(|p| p.now()).unwrap_or_else(js_sys::Date::now)
}

fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "–".to_owned(), |r| format!("{:.1}%", r * 100.0))
}

/// One line about a test's runs.
fn summary(s: &TestStats) -> String {
    let builders = if s.builders == 1 { "1 builder".to_owned() } else { format!("{} builders", s.builders) };
    let mut text = format!(
        "{} runs on {builders}: {} passed, {} failed or error, {} skipped · {} flips · failure rate {}",
        thousands(u64::from(s.runs)),
        thousands(u64::from(s.passes)),
        thousands(u64::from(s.failures)),
        thousands(u64::from(s.skips)),
        s.flips,
        percent(s.failure_rate),
    );
    if s.intermittent {
        text.push_str(if s.mixed_on_revision {
            " · intermittent: passed and failed on one revision"
        } else {
            " · intermittent: flips often on a builder"
        });
    }
    text
}

fn table_note(total: usize, show: Show) -> String {
    let what = match show {
        Show::Intermittent => "intermittent tests",
        Show::Failing => "tests with failures",
        Show::All => "tests",
    };
    match total {
        0 => format!("No {what} in this time range."),
        n if n > MAX_ROWS => format!("The first {MAX_ROWS} of {} {what}.", thousands(n as u64)),
        n => format!("{} {what}.", thousands(n as u64)),
    }
}

/// Outcome colours, shared with the table's legend.
const OUTCOMES: [(TestOutcome, &str, &str); 4] = [
    (TestOutcome::Passed, "Passed", "#2e9d5b"),
    (TestOutcome::Failed, "Failed", "#d9463b"),
    (TestOutcome::Error, "Error", "#e8833a"),
    (TestOutcome::Skipped, "Skipped", "#9aa3ae"),
];

/// A strip chart: time along the bottom, one row per builder the test ran on, a mark per
/// run coloured by its outcome (one series per outcome, so the legend names them).
fn strip_chart(table: &TestTable, test: u32) -> Chart {
    let runs = flaky::history(table, test);
    let mut builders: Vec<u32> = runs.iter().map(|r| r.builder).collect();
    builders.sort_unstable_by(|a, b| table.builders[*a as usize].cmp(&table.builders[*b as usize]));
    builders.dedup();
    let row_of = |b: u32| builders.iter().position(|&x| x == b).unwrap_or(0);
    let labels: Vec<String> = builders.iter().map(|&b| table.builders[b as usize].clone()).collect();
    let mut chart = Chart::new()
        .animation(false)
        .tooltip(Tooltip::new().trigger(Trigger::Item).formatter("{a}<br/>{b}"))
        .legend(Legend::new().top(0))
        .grid(Grid::new().left(16).right(32).top(36).bottom(8).contain_label(true))
        .x_axis(Axis::new().type_(AxisType::Time))
        .y_axis(Axis::new().type_(AxisType::Category).data(labels).inverse(true));
    for (outcome, name, color) in OUTCOMES {
        let points: Vec<DataPointItem> = runs
            .iter()
            .filter(|r| r.outcome == outcome)
            .map(|r| {
                let j = r.job as usize;
                let mut label = format!(
                    "{}/{} · {} UTC",
                    table.sources[table.jobs.source[j] as usize],
                    table.jobs.id[j],
                    utc_minute(r.time_ms)
                );
                if let Some(w) = table.jobs.worker[j] {
                    label.push_str(&format!(" · {}", table.workers[w as usize]));
                }
                if let Some(ms) = r.duration_ms {
                    label.push_str(&format!(" · {:.1} s", ms as f64 / 1000.0));
                }
                DataPointItem::new(vec![r.time_ms as f64, row_of(r.builder) as f64]).name(label)
            })
            .collect();
        chart = chart.series(
            Scatter::new()
                .name(name)
                .symbol(Symbol::Rect)
                .symbol_size(7)
                .item_style(ItemStyle::new().color(Color::from(color)))
                .data(points),
        );
    }
    chart
}
