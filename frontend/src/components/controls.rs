//! The explorer's controls: time range, measure, grouping, view, and the link and export
//! actions. Each control derives a new `ViewState` from the current one and goes there
//! through `Nav`.

use std::sync::Arc;

use common::TimeRange;
use common::engine::TimeBucket;
use common::view::pivot::Pivot;
use common::view::rows::{answer_csv, histogram_csv};
use common::view::{Dim, Stat, ViewKind, ViewMeasure, ViewState, value_name};
use leptos::prelude::*;
use wasm_bindgen::JsCast;

use crate::format::{relative_name, utc_minute};
use crate::load::Loaded;
use crate::pages::explorer::{Computed, Nav, Shown, groupable};

/// The preset ranges: label and `from` (`to` is `now`).
pub const PRESETS: [(&str, &str); 4] =
    [("24h", "now-24h"), ("7d", "now-7d"), ("30d", "now-30d"), ("90d", "now-90d")];

fn go(nav: Nav, view: &ViewState, replace: bool) {
    nav.with_value(|f| f(view, replace));
}

/// Range name, its resolved ends, presets, and free `from`/`to` fields (Grafana syntax).
#[component]
pub fn RangeBar(current: Memo<Option<ViewState>>, nav: Nav) -> impl IntoView {
    let from = move || current.get().map(|v| v.from).unwrap_or_else(|| common::view::DEFAULT_FROM.into());
    let to = move || current.get().map(|v| v.to).unwrap_or_else(|| common::view::DEFAULT_TO.into());
    // Typing in a field: the first change after focusing pushes a history entry, the rest
    // replace it, and only expressions that parse reach the URL.
    let typing = StoredValue::new(false);
    let edit = move |which: &'static str, text: String| {
        let Some(mut view) = current.get_untracked() else { return };
        if which == "from" {
            view.from = text;
        } else {
            view.to = text;
        }
        if view.time_range(js_sys::Date::now() as i64).is_err() {
            return;
        }
        view.page = 1;
        let replace = typing.get_value();
        typing.set_value(true);
        go(nav, &view, replace);
    };
    // One free-text field per end of the range.
    let field = move |label: &'static str, which: &'static str, value: Signal<String>| {
        view! {
            <label class="field">
                {label}
                <input
                    type="text"
                    data-testid=format!("range-{which}")
                    prop:value=value
                    spellcheck="false"
                    on:focus=move |_| typing.set_value(false)
                    on:input=move |ev| edit(which, event_target_value(&ev))
                />
            </label>
        }
    };
    view! {
        <section class="toolbar">
            <div class="range">
                <h1 data-testid="range-name">{move || relative_name(&from(), &to()).unwrap_or_else(|| "Custom range".into())}</h1>
                <p class="range-ends" data-testid="range">
                    {move || match TimeRange::parse(&from(), &to(), js_sys::Date::now() as i64) {
                        Ok(r) => format!("{} → {} UTC", utc_minute(r.from_ms), utc_minute(r.to_ms)),
                        Err(e) => format!("Not a time range: {e}"),
                    }}
                </p>
            </div>
            <div class="range-controls">
                <nav class="presets" aria-label="Time range presets">
                    {PRESETS
                        .into_iter()
                        .map(|(label, preset)| {
                            let active = move || from() == preset && to() == "now";
                            view! {
                                <button
                                    type="button"
                                    class="preset"
                                    data-testid=format!("preset-{label}")
                                    aria-pressed=move || active().to_string()
                                    on:click=move |_| {
                                        if let Some(mut view) = current.get_untracked() {
                                            view.from = preset.to_owned();
                                            view.to = "now".to_owned();
                                            view.page = 1;
                                            go(nav, &view, false);
                                        }
                                    }
                                >
                                    {label}
                                </button>
                            }
                        })
                        .collect_view()}
                </nav>
                {field("From ", "from", Signal::derive(from))}
                {field("To ", "to", Signal::derive(to))}
            </div>
        </section>
    }
}

/// Every measure the loaded table supports, as (URL form, label) in option groups.
fn measure_groups(data: Option<&Loaded>) -> Vec<(String, Vec<(String, String)>)> {
    let plain = vec![
        ("count".to_owned(), "Jobs".to_owned()),
        ("success_rate".to_owned(), "Success rate".to_owned()),
        ("failure_rate".to_owned(), "Failure rate".to_owned()),
        ("failures".to_owned(), "Failures".to_owned()),
        ("cpu_hours".to_owned(), "CPU hours".to_owned()),
    ];
    let mut groups = vec![("Jobs".to_owned(), plain)];
    let mut values = vec![
        (common::engine::Value::Duration, "Duration (s)".to_owned()),
        (common::engine::Value::QueueWait, "Queue wait (s)".to_owned()),
    ];
    if let Some(d) = data {
        values.extend(
            d.table
                .metrics
                .iter()
                .map(|m| (common::engine::Value::Metric(m.name.clone()), format!("Metric {}", m.name))),
        );
    }
    for (value, label) in values {
        let options = Stat::ALL
            .iter()
            .map(|&stat| {
                let m = ViewMeasure::Stat { stat, value: value.clone() };
                (m.to_string(), format!("{} {}", stat.as_str(), value_name(&value)))
            })
            .collect();
        groups.push((label, options));
    }
    groups
}

/// Measure, group-by dimensions, time bucket and view kind.
#[component]
pub fn ViewControls(
    current: Memo<Option<ViewState>>,
    loaded: RwSignal<Option<Arc<Loaded>>>,
    nav: Nav,
) -> impl IntoView {
    let change = move |f: &dyn Fn(&mut ViewState)| {
        if let Some(mut view) = current.get_untracked() {
            f(&mut view);
            view.page = 1;
            go(nav, &view, false);
        }
    };
    let measure = move || current.get().map(|v| v.measure.to_string()).unwrap_or_default();
    let dims = move || loaded.get().map(|l| groupable(&l)).unwrap_or_default();
    let group_select = move |slot: usize| {
        let selected = move || {
            current.get().and_then(|v| v.group.get(slot).map(|d| d.name().into_owned())).unwrap_or_default()
        };
        view! {
            <select
                data-testid=format!("group-{}", slot + 1)
                aria-label=format!("Group by ({})", if slot == 0 { "first" } else { "second" })
                on:change=move |ev| {
                    let value = event_target_value(&ev);
                    change(&|view| {
                        let chosen = Dim::parse(&value);
                        let first = view.group.first().cloned();
                        let second = view.group.get(1).cloned();
                        view.group = match (slot, chosen) {
                            (0, None) => Vec::new(),
                            (0, Some(d)) => std::iter::once(d.clone()).chain(second.filter(|s| *s != d)).collect(),
                            (_, None) => first.into_iter().collect(),
                            (_, Some(d)) => match first {
                                Some(f) if f != d => vec![f, d],
                                Some(f) => vec![f],
                                None => Vec::new(),
                            },
                        };
                        view.hidden.clear();
                    })
                }
            >
                <option value="" selected=move || selected().is_empty()>{if slot == 0 { "(no grouping)" } else { "(none)" }}</option>
                {move || dims()
                    .into_iter()
                    .map(|d| {
                        let name = d.name().into_owned();
                        let is = name.clone();
                        let text = name.clone();
                        view! { <option value=name selected=move || selected() == is>{text}</option> }
                    })
                    .collect_view()}
            </select>
        }
    };
    let bucket = move || current.get().and_then(|v| v.bucket);
    let kind = move || current.get().map(|v| v.view).unwrap_or_default();
    view! {
        <div class="controls">
            <label class="field">
                "Measure "
                <select
                    data-testid="measure"
                    on:change=move |ev| {
                        let text = event_target_value(&ev);
                        if let Ok(parsed) = ViewState::from_query_string(&format!("measure={}", js_sys::encode_uri_component(&text))) {
                            change(&|view| view.measure = parsed.measure.clone());
                        }
                    }
                >
                    {move || measure_groups(loaded.get().as_deref())
                        .into_iter()
                        .map(|(label, options)| view! {
                            <optgroup label=label>
                                {options.into_iter().map(|(value, text)| {
                                    let is = value.clone();
                                    view! { <option value=value selected=move || measure() == is>{text}</option> }
                                }).collect_view()}
                            </optgroup>
                        })
                        .collect_view()}
                </select>
            </label>
            <label class="field">"Group by " {group_select(0)}</label>
            <label class="field">"then " {group_select(1)}</label>
            <label class="field">
                "Per "
                <select
                    data-testid="bucket"
                    on:change=move |ev| {
                        let b = match event_target_value(&ev).as_str() {
                            "hour" => Some(TimeBucket::Hour),
                            "week" => Some(TimeBucket::Week),
                            "month" => Some(TimeBucket::Month),
                            _ => Some(TimeBucket::Day),
                        };
                        change(&|view| view.bucket = b);
                    }
                >
                    {[("hour", TimeBucket::Hour), ("day", TimeBucket::Day), ("week", TimeBucket::Week), ("month", TimeBucket::Month)]
                        .into_iter()
                        .map(|(name, b)| view! { <option value=name selected=move || bucket() == Some(b)>{name}</option> })
                        .collect_view()}
                </select>
            </label>
            <div class="tabs" role="tablist" aria-label="View">
                {ViewKind::ALL
                    .into_iter()
                    .map(|k| {
                        let label = match k {
                            ViewKind::Line => "Line",
                            ViewKind::StackedBar => "Stacked",
                            ViewKind::Bar => "Bars",
                            ViewKind::Heatmap => "Heatmap",
                            ViewKind::Histogram => "Histogram",
                            ViewKind::Pivot => "Pivot",
                            ViewKind::Jobs => "Jobs",
                        };
                        view! {
                            <button
                                type="button"
                                role="tab"
                                data-testid=format!("view-{}", k.as_str())
                                aria-selected=move || (kind() == k).to_string()
                                on:click=move |_| change(&|view| { view.view = k; view.sort = None; })
                            >
                                {label}
                            </button>
                        }
                    })
                    .collect_view()}
            </div>
        </div>
    }
}

/// "Copy link" and "Export CSV".
#[component]
pub fn Actions(
    current: Memo<Option<ViewState>>,
    computed: Memo<Option<Computed>>,
    loaded: RwSignal<Option<Arc<Loaded>>>,
) -> impl IntoView {
    let (copied, set_copied) = signal(None::<String>);
    let copy = move |_| {
        let Some(window) = web_sys::window() else { return };
        let href = window.location().href().unwrap_or_default();
        // The clipboard API needs a secure context and permission; the link is shown
        // selected either way, so it can be copied by hand.
        let clipboard = js_sys::Reflect::get(&window.navigator(), &"clipboard".into()).ok();
        if let Some(clipboard) = clipboard.filter(|c| !c.is_undefined())
            && let Ok(write) = js_sys::Reflect::get(&clipboard, &"writeText".into())
            && let Ok(write) = write.dyn_into::<js_sys::Function>()
        {
            let _ = write.call1(&clipboard, &href.clone().into());
        }
        set_copied.set(Some(href));
    };
    // Job rows come from the server (they carry each job's CI link), narrowed exactly as
    // the page narrows them: the view's query string with the range pinned to the loaded
    // instants. Pivots, charts and histograms are written here from what is shown.
    let server_csv = move || -> Option<String> {
        let view = current.get()?;
        let data = loaded.get()?;
        let range = view.time_range(data.now_ms).ok()?;
        let mut pinned = view.clone();
        pinned.from = range.from_ms.to_string();
        pinned.to = range.to_ms.to_string();
        Some(format!("/api/v1/jobs?{}&format=csv", pinned.to_query_string()))
    };
    let is_jobs = move || current.get().is_some_and(|v| v.view == ViewKind::Jobs);
    let export_here = move |ev: leptos::ev::MouseEvent| {
        if is_jobs() {
            return;
        }
        let Some(c) = computed.get_untracked() else { return };
        let bytes = match &c.shown {
            Ok(Shown::Groups(answer)) if c.view.view == ViewKind::Pivot => {
                Pivot::new(answer, &c.view.measure, c.view.sort.as_ref()).to_csv(&c.view.measure)
            }
            Ok(Shown::Groups(answer)) => answer_csv(answer, &c.view.measure),
            Ok(Shown::Histogram { histogram, value }) => histogram_csv(histogram, &value_name(value)),
            _ => return,
        };
        let Some(anchor) = ev.current_target().and_then(|t| t.dyn_into::<web_sys::HtmlAnchorElement>().ok())
        else {
            return;
        };
        if let Some(url) = blob_url(&bytes) {
            let old = anchor.href();
            if old.starts_with("blob:") {
                let _ = web_sys::Url::revoke_object_url(&old);
            }
            anchor.set_href(&url);
        }
    };
    let filename = move || {
        current
            .get()
            .map(|v| format!("buildscope-{}.csv", v.view.as_str()))
            .unwrap_or_else(|| "buildscope.csv".into())
    };
    view! {
        <span class="actions">
            <button type="button" data-testid="copy-link" on:click=copy>"Copy link"</button>
            <a
                class="button"
                data-testid="export-csv"
                download=filename
                href=move || if is_jobs() { server_csv().unwrap_or_default() } else { "#".to_owned() }
                on:click=export_here
            >
                "Export CSV"
            </a>
            {move || copied.get().map(|href| view! {
                <input class="copied" readonly data-testid="copied-link" value=href
                    on:focus=move |ev| { if let Some(i) = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok()) { i.select(); } }/>
                <span class="muted">"Link copied"</span>
            })}
        </span>
    }
}

/// An object URL holding `bytes` as CSV.
fn blob_url(bytes: &[u8]) -> Option<String> {
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type("text/csv;charset=utf-8");
    let blob = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options).ok()?;
    web_sys::Url::create_object_url_with_blob(&blob).ok()
}
