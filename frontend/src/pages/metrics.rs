//! The metrics page (`/metrics`): any metric's samples over time, per hour, day, week or
//! month: mean with a ±1 standard deviation band, p50, p95, min and max.
//!
//! The view is the URL: `from`/`to` (Grafana syntax, default the last 30 days), `metric`
//! (its name), `bucket` (`auto`, `hour`, `day`, `week`, `month`), `tag` (`key=value`: only
//! samples carrying that tag) and `hide` (legend entries switched off, comma-separated).
//! Samples are fetched per metric and range; the statistics come from `common::series`.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use charming::Chart;
use charming::component::{Axis, Grid, Legend};
use charming::element::{AreaStyle, AxisType, Color, LineStyle, Symbol, Tooltip, Trigger};
use charming::series::Line;
use common::TimeRange;
use common::engine::TimeBucket;
use common::reports::{MetricInfo, SampleTable};
use common::series::{self, BucketStats};
use leptos::prelude::*;
use leptos_router::NavigateOptions;
use leptos_router::hooks::{use_navigate, use_query_map};

use crate::api_reports;
use crate::components::echart::EChart;
use crate::format::{thousands, utc_date, utc_minute};
use crate::report_widgets::{RangeLinks, range_text, use_href};

/// `from` when the URL has none.
pub const DEFAULT_FROM: &str = "now-30d";

/// The lines drawn, by legend name. The band is two stacked series (its lower edge is
/// invisible), toggled together under one legend entry.
const BAND: &str = "±1 stddev";
const LINES: [(&str, &str); 5] =
    [("Mean", "#2f6fde"), ("p50", "#2e9d5b"), ("p95", "#e8833a"), ("Min", "#9aa3ae"), ("Max", "#6b7280")];

/// The bucket choices: URL value, label, bucket (`None`: chosen from the range's span).
const BUCKETS: [(&str, &str, Option<TimeBucket>); 5] = [
    ("auto", "Auto", None),
    ("hour", "Hour", Some(TimeBucket::Hour)),
    ("day", "Day", Some(TimeBucket::Day)),
    ("week", "Week", Some(TimeBucket::Week)),
    ("month", "Month", Some(TimeBucket::Month)),
];

/// Most bucket rows listed under the chart (the latest ones).
const MAX_BUCKET_ROWS: usize = 120;

#[derive(Clone)]
struct Fetched<T> {
    key: (String, String, String),
    outcome: Result<Arc<T>, String>,
}

/// What the chart and table show for the current URL.
struct Shown {
    bucket: TimeBucket,
    buckets: Vec<BucketStats>,
    /// All the kept samples as one bucket.
    overall: BucketStats,
    /// Tag `key=value` pairs of the metric's samples, with sample counts.
    tags: Vec<(String, usize)>,
}

impl PartialEq for Shown {
    /// Compared by identity: a new one is computed only when its inputs change.
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

/// The page: range, metric and bucket choosers, overall figures, the chart and the buckets.
#[component]
pub fn Metrics() -> impl IntoView {
    let query = use_query_map();
    let navigate = use_navigate();
    let param = move |key: &str| query.read().get(key).filter(|v| !v.trim().is_empty());
    let from = Signal::derive(move || param("from").unwrap_or_else(|| DEFAULT_FROM.to_owned()));
    let to = Signal::derive(move || param("to").unwrap_or_else(|| "now".to_owned()));
    let metric = Signal::derive(move || param("metric"));
    let bucket_key = Signal::derive(move || {
        param("bucket")
            .filter(|b| BUCKETS.iter().any(|(k, _, _)| k == b))
            .unwrap_or_else(|| "auto".to_owned())
    });
    let tag = Signal::derive(move || param("tag"));
    let hidden = Signal::derive(move || {
        param("hide").map(|h| h.split(',').map(str::to_owned).collect::<Vec<_>>()).unwrap_or_default()
    });

    let href = use_href();
    let go = StoredValue::new_local(Rc::new(move |url: String, replace: bool| {
        navigate(&url, NavigateOptions { replace, scroll: false, ..Default::default() });
    }) as Rc<dyn Fn(String, bool)>);

    let metrics = LocalResource::new(move || {
        let (from, to) = (from.get(), to.get());
        async move {
            let outcome = api_reports::metrics(&from, &to).await.map(Arc::new).map_err(|e| e.to_string());
            Fetched { key: (from, to, String::new()), outcome }
        }
    });
    let samples = LocalResource::new(move || {
        let (from, to, name) = (from.get(), to.get(), metric.get());
        async move {
            let outcome = match &name {
                Some(name) => {
                    api_reports::samples(name, &from, &to).await.map(Arc::new).map_err(|e| e.to_string())
                }
                None => Ok(Arc::new(SampleTable::default())),
            };
            Fetched { key: (from, to, name.unwrap_or_default()), outcome }
        }
    });
    let current_metrics = Memo::new(move |_| {
        let key = (from.get(), to.get(), String::new());
        metrics.with(|m| m.as_ref().filter(|m| m.key == key).map(|m| m.outcome.clone()))
    });
    let current_samples = Memo::new(move |_| {
        let key = (from.get(), to.get(), metric.get().unwrap_or_default());
        samples.with(|s| s.as_ref().filter(|s| s.key == key).map(|s| s.outcome.clone()))
    });
    let info = Memo::new(move |_| {
        let name = metric.get()?;
        current_metrics.get()?.ok()?.iter().find(|m| m.name == name).cloned()
    });
    let unit = Memo::new(move |_| {
        current_samples.get().and_then(Result::ok).and_then(|s| s.unit.clone()).or_else(|| info.get()?.unit)
    });

    let shown = Memo::new(move |_| {
        let table = current_samples.get()?.ok()?;
        let range = TimeRange::parse(&from.get(), &to.get(), js_sys::Date::now() as i64).ok()?;
        let bucket = BUCKETS
            .iter()
            .find(|(k, _, _)| *k == bucket_key.get())
            .and_then(|b| b.2)
            .unwrap_or_else(|| series::auto_bucket(range.to_ms - range.from_ms));
        Some(Arc::new(show(&table, bucket, tag.get().as_deref())))
    });

    let status = move || {
        if metric.get().is_none() {
            return match current_metrics.get() {
                None => ("loading", "Loading metrics…".to_owned()),
                Some(Err(e)) => ("error", e),
                Some(Ok(m)) if m.is_empty() => (
                    "empty",
                    "No metric samples in this time range. Send InfluxDB line protocol to /write or import \
                     buildstats to see them here."
                        .to_owned(),
                ),
                Some(Ok(_)) => ("choose", "Choose a metric.".to_owned()),
            };
        }
        match (current_samples.get(), shown.get()) {
            (None, _) => ("loading", "Loading samples…".to_owned()),
            (Some(Err(e)), _) => ("error", e),
            (Some(Ok(t)), _) if t.is_empty() => {
                ("empty", format!("No samples of {} in this time range.", metric.get().unwrap_or_default()))
            }
            (_, Some(s)) if s.overall.count == 0 => {
                ("empty", format!("No samples carry the tag {}.", tag.get().unwrap_or_default()))
            }
            (_, None) => ("error", "The time range cannot be read.".to_owned()),
            _ => ("ready", String::new()),
        }
    };

    let chart = Signal::derive(move || {
        let s = shown.get()?;
        (s.overall.count > 0).then(|| Arc::new(series_chart(&s, &hidden.get(), unit.get().as_deref())))
    });
    let on_metric = move |ev: leptos::ev::Event| {
        let name = event_target_value(&ev);
        let url = href(vec![("metric", Some(name).filter(|n| !n.is_empty())), ("tag", None), ("hide", None)]);
        go.with_value(|go| go(url, false));
    };
    let on_tag = move |ev: leptos::ev::Event| {
        let value = event_target_value(&ev);
        let url = href(vec![("tag", Some(value).filter(|v| !v.is_empty()))]);
        go.with_value(|go| go(url, false));
    };
    // Legend toggles go into the URL (replacing the entry: they are not worth a Back).
    let on_legend = move |name: String, shown_now: bool| {
        let mut hide = hidden.get_untracked();
        hide.retain(|h| h != &name);
        if !shown_now {
            hide.push(name);
        }
        let url = href(vec![("hide", (!hide.is_empty()).then(|| hide.join(",")))]);
        go.with_value(|go| go(url, true));
    };
    let fmt = move |v: Option<f64>| value_text(v, unit.get().as_deref());

    view! {
        <section class="toolbar">
            <div class="range">
                <h1>"Metrics"</h1>
                <p class="range-ends" data-testid="range">{move || range_text(&from.get(), &to.get())}</p>
            </div>
            <RangeLinks from=from to=to/>
        </section>
        <section class="card report-controls">
            <label class="report-control">
                <span class="report-control-label">"Metric"</span>
                <select data-testid="metric-select" on:change=on_metric prop:value=move || metric.get().unwrap_or_default()>
                    <option value="">"Choose a metric…"</option>
                    {move || {
                        let mut names: Vec<(String, u64)> = current_metrics
                            .get()
                            .and_then(Result::ok)
                            .map(|m| m.iter().map(|m| (m.name.clone(), m.samples)).collect())
                            .unwrap_or_default();
                        // A metric named in the URL but without samples in range stays listed.
                        if let Some(name) = metric.get()
                            && !names.iter().any(|(n, _)| *n == name)
                        {
                            names.insert(0, (name, 0));
                        }
                        let chosen = metric.get();
                        names
                            .into_iter()
                            .map(|(name, n)| {
                                let selected = chosen.as_deref() == Some(name.as_str());
                                view! {
                                    <option value=name.clone() selected=selected>
                                        {format!("{name} ({})", thousands(n))}
                                    </option>
                                }
                            })
                            .collect_view()
                    }}
                </select>
            </label>
            <div class="report-control">
                <span class="report-control-label">"Bucket"</span>
                <nav class="presets" aria-label="Bucket">
                    {BUCKETS
                        .into_iter()
                        .map(|(key, label, _)| view! {
                            <a
                                class="preset"
                                href=move || href(vec![("bucket", Some(key.to_owned()).filter(|k| k != "auto"))])
                                aria-current=move || (bucket_key.get() == key).then_some("page")
                                data-testid=format!("bucket-{key}")
                            >
                                {label}
                            </a>
                        })
                        .collect_view()}
                </nav>
            </div>
            <Show when=move || metric.get().is_some()>
                <label class="report-control">
                    <span class="report-control-label">"Only samples tagged"</span>
                    <select data-testid="tag-select" on:change=on_tag prop:value=move || tag.get().unwrap_or_default()>
                        <option value="">"Any tags"</option>
                        {move || {
                            let chosen = tag.get();
                            shown
                                .get()
                                .map(|s| s.tags.clone())
                                .unwrap_or_default()
                                .into_iter()
                                .map(|(t, n)| {
                                    let selected = chosen.as_deref() == Some(t.as_str());
                                    view! {
                                        <option value=t.clone() selected=selected>{format!("{t} ({})", thousands(n as u64))}</option>
                                    }
                                })
                                .collect_view()
                        }}
                    </select>
                </label>
            </Show>
        </section>
        <p class="status" role="status" data-testid="status" data-state=move || status().0>
            {move || status().1}
        </p>
        <Show when=move || metric.get().is_none() && current_metrics.get().and_then(Result::ok).is_some_and(|m| !m.is_empty())>
            <section class="card">
                <h2>"Metrics in this range"</h2>
                <div class="report-scroll">
                    <table class="report-table" data-testid="metrics-table">
                        <thead>
                            <tr>
                                <th>"Metric"</th>
                                <th class="num">"Samples"</th>
                                <th>"Unit"</th>
                                <th class="num">"First"</th>
                                <th class="num">"Last"</th>
                            </tr>
                        </thead>
                        <tbody>
                            {move || {
                                current_metrics
                                    .get()
                                    .and_then(Result::ok)
                                    .map(|m| m.iter().cloned().collect::<Vec<MetricInfo>>())
                                    .unwrap_or_default()
                                    .into_iter()
                                    .map(|m| {
                                        let link = href(vec![("metric", Some(m.name.clone()))]);
                                        view! {
                                            <tr data-testid="metric-row">
                                                <td><a href=link>{m.name.clone()}</a></td>
                                                <td class="num">{thousands(m.samples)}</td>
                                                <td>{m.unit.clone().unwrap_or_else(|| "–".to_owned())}</td>
                                                <td class="num">{utc_minute(m.first_ms)}</td>
                                                <td class="num">{utc_minute(m.last_ms)}</td>
                                            </tr>
                                        }
                                    })
                                    .collect_view()
                            }}
                        </tbody>
                    </table>
                </div>
            </section>
        </Show>
        <Show when=move || shown.get().is_some_and(|s| s.overall.count > 0)>
            <section class="cards report-cards">
                <Figure label="Samples" testid="sample-count" value=Signal::derive(move || {
                    shown.get().map(|s| thousands(s.overall.count)).unwrap_or_default()
                })/>
                <Figure label="Mean" testid="overall-mean" value=Signal::derive(move || fmt(shown.get().and_then(|s| s.overall.mean)))/>
                <Figure label="p50" testid="overall-p50" value=Signal::derive(move || fmt(shown.get().and_then(|s| s.overall.p50())))/>
                <Figure label="p95" testid="overall-p95" value=Signal::derive(move || fmt(shown.get().and_then(|s| s.overall.p95())))/>
                <Figure label="Max" testid="overall-max" value=Signal::derive(move || fmt(shown.get().and_then(|s| s.overall.max)))/>
            </section>
            <section class="card chart-card">
                <h2>
                    {move || metric.get().unwrap_or_default()}
                    {move || unit.get().map(|u| format!(" ({u})"))}
                    {move || shown.get().map(|s| format!(" per {}", bucket_name(s.bucket)))}
                </h2>
                <EChart
                    chart=chart
                    on_click=Rc::new(|_| {})
                    on_legend=Rc::new(on_legend)
                    on_painted=Rc::new(|| {})
                    height=380
                />
            </section>
            <section class="card">
                <h2>"Buckets"</h2>
                <div class="report-scroll report-scroll-tall">
                    <table class="report-table" data-testid="buckets-table">
                        <thead>
                            <tr>
                                <th>"Bucket"</th>
                                <th class="num">"Count"</th>
                                <th class="num">"Mean"</th>
                                <th class="num">"Stddev"</th>
                                <th class="num">"Min"</th>
                                <th class="num">"p50"</th>
                                <th class="num">"p90"</th>
                                <th class="num">"p95"</th>
                                <th class="num">"p99"</th>
                                <th class="num">"Max"</th>
                            </tr>
                        </thead>
                        <tbody>
                            {move || {
                                let Some(s) = shown.get() else { return Vec::new() };
                                let skip = s.buckets.len().saturating_sub(MAX_BUCKET_ROWS);
                                s.buckets
                                    .iter()
                                    .skip(skip)
                                    .rev()
                                    .map(|b| {
                                        view! {
                                            <tr data-testid="bucket-row" data-start=b.start_ms.to_string()>
                                                <td>{bucket_label(s.bucket, b.start_ms)}</td>
                                                <td class="num" data-col="count">{thousands(b.count)}</td>
                                                <td class="num" data-col="mean">{fmt(b.mean)}</td>
                                                <td class="num" data-col="stddev">{fmt(b.stddev)}</td>
                                                <td class="num" data-col="min">{fmt(b.min)}</td>
                                                <td class="num" data-col="p50">{fmt(b.p50())}</td>
                                                <td class="num" data-col="p90">{fmt(b.p90())}</td>
                                                <td class="num" data-col="p95">{fmt(b.p95())}</td>
                                                <td class="num" data-col="p99">{fmt(b.p99())}</td>
                                                <td class="num" data-col="max">{fmt(b.max)}</td>
                                            </tr>
                                        }
                                    })
                                    .collect::<Vec<_>>()
                            }}
                        </tbody>
                    </table>
                </div>
                <p class="report-note">
                    {move || shown.get().map(|s| bucket_note(s.buckets.len())).unwrap_or_default()}
                </p>
            </section>
        </Show>
    }
}

/// A labelled figure.
#[component]
fn Figure(label: &'static str, testid: &'static str, #[prop(into)] value: Signal<String>) -> impl IntoView {
    view! {
        <div class="card stat">
            <span class="stat-label">{label}</span>
            <span class="stat-value report-figure" data-testid=testid>{move || value.get()}</span>
        </div>
    }
}

/// Buckets the samples that carry `tag` (`key=value`), or all of them.
fn show(table: &SampleTable, bucket: TimeBucket, tag: Option<&str>) -> Shown {
    let wanted = tag.and_then(|t| t.split_once('='));
    let keep: Vec<bool> = table
        .tag_sets
        .iter()
        .map(|set| wanted.is_none_or(|(k, v)| set.get(k).is_some_and(|x| x == v)))
        .collect();
    let mut tag_counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut per_set = vec![0usize; table.tag_sets.len()];
    let (mut times, mut values) = (Vec::new(), Vec::new());
    for i in 0..table.len() {
        let set = table.tags[i] as usize;
        per_set[set] += 1;
        if keep[set] {
            times.push(table.time_ms[i]);
            values.push(table.value[i]);
        }
    }
    for (set, n) in table.tag_sets.iter().zip(per_set) {
        for (k, v) in set {
            // Per-job tags (build numbers) would list every sample; leave them out.
            if k != "build_number" {
                *tag_counts.entry(format!("{k}={v}")).or_default() += n;
            }
        }
    }
    let mut tags: Vec<(String, usize)> = tag_counts.into_iter().collect();
    tags.truncate(500);
    let buckets = series::bucketed(&times, &values, bucket);
    let mut all: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
    Shown { bucket, buckets, overall: series::stats(0, &mut all), tags }
}

/// The chart: bucket labels along the bottom, the band under the lines.
fn series_chart(s: &Shown, hidden: &[String], unit: Option<&str>) -> Chart {
    let labels: Vec<String> = s.buckets.iter().map(|b| bucket_label(s.bucket, b.start_ms)).collect();
    let column =
        |f: &dyn Fn(&BucketStats) -> Option<f64>| s.buckets.iter().map(f).collect::<Vec<Option<f64>>>();
    let lower = column(&|b| Some(b.mean? - b.stddev?));
    let width = column(&|b| Some(2.0 * b.stddev?));
    let visible = |name: &str| (name.to_owned(), !hidden.iter().any(|h| h == name));
    let selected: Vec<(String, bool)> =
        std::iter::once(visible(BAND)).chain(LINES.iter().map(|(n, _)| visible(n))).collect();
    let points = s.buckets.len();
    let mut chart = Chart::new()
        .animation(false)
        .tooltip(Tooltip::new().trigger(Trigger::Axis))
        .legend(
            Legend::new()
                .top(0)
                .data(std::iter::once(BAND).chain(LINES.iter().map(|(n, _)| *n)).collect())
                .selected(selected),
        )
        .grid(Grid::new().left(16).right(48).top(48).bottom(16).contain_label(true))
        .x_axis(Axis::new().type_(AxisType::Category).boundary_gap(false).data(labels))
        .y_axis(Axis::new().type_(AxisType::Value).name(unit.unwrap_or("")).scale(true))
        .series(
            Line::new()
                .name(BAND)
                .stack("band")
                .symbol(Symbol::None)
                .line_style(LineStyle::new().opacity(0))
                .item_style(
                    charming::element::ItemStyle::new().color(Color::from("rgba(47, 111, 222, 0.35)")),
                )
                .data(lower),
        )
        .series(
            Line::new()
                .name(BAND)
                .stack("band")
                .symbol(Symbol::None)
                .line_style(LineStyle::new().opacity(0))
                .item_style(
                    charming::element::ItemStyle::new().color(Color::from("rgba(47, 111, 222, 0.35)")),
                )
                .area_style(AreaStyle::new().color(Color::from("rgba(47, 111, 222, 0.15)")))
                .data(width),
        );
    let pick: [Stat; 5] = [&|b| b.mean, &|b| b.p50(), &|b| b.p95(), &|b| b.min, &|b| b.max];
    for ((name, color), f) in LINES.into_iter().zip(pick) {
        let mut line = Line::new()
            .name(name)
            .connect_nulls(false)
            .line_style(LineStyle::new().color(Color::from(color)).width(if name == "Mean" {
                2.5
            } else {
                1.5
            }))
            .item_style(charming::element::ItemStyle::new().color(Color::from(color)))
            .data(column(f));
        if points > 60 {
            line = line.symbol(Symbol::None);
        }
        chart = chart.series(line);
    }
    chart
}

/// One statistic of a bucket.
type Stat<'a> = &'a dyn Fn(&BucketStats) -> Option<f64>;

fn bucket_name(b: TimeBucket) -> &'static str {
    match b {
        TimeBucket::Hour => "hour",
        TimeBucket::Day => "day",
        TimeBucket::Week => "week (from Monday)",
        TimeBucket::Month => "month",
    }
}

fn bucket_label(b: TimeBucket, ms: i64) -> String {
    match b {
        TimeBucket::Hour => utc_minute(ms),
        TimeBucket::Month => utc_date(ms)[..7].to_owned(),
        _ => utc_date(ms),
    }
}

fn bucket_note(n: usize) -> String {
    if n > MAX_BUCKET_ROWS {
        format!(
            "The latest {MAX_BUCKET_ROWS} of {} buckets, newest first. Times are UTC.",
            thousands(n as u64)
        )
    } else {
        format!("{n} buckets, newest first. Times are UTC.")
    }
}

/// A value for people: bytes in KB/MB/GB, seconds with a unit, others to 4 significant
/// digits with thousands separators.
fn value_text(v: Option<f64>, unit: Option<&str>) -> String {
    let Some(v) = v else { return "–".to_owned() };
    match unit {
        Some("bytes") if v.abs() >= 1e3 => {
            let (x, u) = if v.abs() >= 1e9 {
                (v / 1e9, "GB")
            } else if v.abs() >= 1e6 {
                (v / 1e6, "MB")
            } else {
                (v / 1e3, "KB")
            };
            format!("{x:.2} {u}")
        }
        _ => {
            let text = if v.abs() >= 1e4 {
                let whole = thousands(v.abs().round() as u64);
                if v < 0.0 { format!("-{whole}") } else { whole }
            } else if v == v.trunc() {
                format!("{v:.0}")
            } else {
                let digits = (3 - v.abs().log10().floor() as i32).clamp(0, 6) as usize;
                let t = format!("{v:.digits$}");
                if t.contains('.') { t.trim_end_matches('0').trim_end_matches('.').to_owned() } else { t }
            };
            match unit {
                Some(u) if !u.is_empty() => format!("{text} {u}"),
                _ => text,
            }
        }
    }
}
