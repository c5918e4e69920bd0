//! The explorer: one page whose URL is the whole view (see `common::view`).
//!
//! The URL is parsed into a `ViewState`; the jobs of its time range are fetched once as a
//! columnar table (again only when the range grows past what is loaded); every other change
//! (filters, measure, grouping, view, sort, page) recomputes in the browser with
//! `common`'s engine and redraws. Changes go through `Nav`, which writes the new view into
//! the URL (push for discrete steps, replace while typing) and notes when the input
//! happened, so the page can report how long it took until the result was on screen.

use std::rc::Rc;
use std::sync::Arc;

use common::engine::{self, Measure, TopK, Value};
use common::view::facets::{Facet, FacetCounter, dims_of};
use common::view::histogram::Histogram;
use common::view::rows::PAGE_SIZE;
use common::view::{Dim, ViewError, ViewKind, ViewState, value_name};
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::NavigateOptions;
use leptos_router::hooks::{use_location, use_navigate};

use crate::charts::{self, ChartSpec, Target};
use crate::components::controls::{Actions, RangeBar, ViewControls};
use crate::components::echart::{EChart, ItemClick, after_paint};
use crate::components::facets::FacetPanel;
use crate::components::job_list::JobList;
use crate::components::pivot_table::PivotTable;
use crate::format::{bytes, thousands};
use crate::load::{self, Loaded, Progress};

/// Series drawn in time charts; the rest are summed into "(other)".
const TOP_SERIES: usize = 10;
/// Bars, and heatmap rows, drawn; the rest are summed into "(other)".
const TOP_BARS: usize = 40;
/// Histogram bins asked for.
const BINS: usize = 40;
/// Values listed per filter before searching.
pub const FACET_VALUES: usize = 8;

/// A high-resolution clock in ms (`performance.now()`), or the wall clock without one.
pub fn now_ms() -> f64 {
    web_sys::window().and_then(|w| w.performance()).map(|p| p.now()).unwrap_or_else(js_sys::Date::now)
}

/// Goes to a view: `(view, replace)`. Also notes the instant of the input.
pub type Nav = StoredValue<Rc<dyn Fn(&ViewState, bool)>, LocalStorage>;

/// What the loader is doing.
#[derive(Clone, Debug, PartialEq)]
enum LoadState {
    Idle,
    Loading(Progress),
    Failed(String),
}

/// One recomputation: the view it is for, what to show, how many jobs are in view and
/// how long the engine took.
#[derive(Clone, Debug, PartialEq)]
pub struct Computed {
    pub view: ViewState,
    pub shown: Result<Shown, ViewError>,
    pub selected: usize,
    pub compute_ms: f64,
    /// The resolved range, epoch ms.
    pub range: (i64, i64),
}

/// The result of a view, by kind.
#[derive(Clone, Debug, PartialEq)]
pub enum Shown {
    Groups(engine::Answer),
    Histogram {
        histogram: Histogram,
        value: Value,
    },
    /// One page of the job list (rows of the table) and the number of jobs listed.
    Jobs {
        rows: Vec<u32>,
        total: usize,
    },
}

#[component]
pub fn Explorer() -> impl IntoView {
    let location = use_location();
    let navigate = use_navigate();
    let parsed =
        Memo::new(move |_| ViewState::from_query_string(location.search.get().trim_start_matches('?')));
    let current = Memo::new(move |_| parsed.get().ok());
    // What is wrong with the link, if anything: a key that does not parse, or a range that
    // parses but is not one (`to` before `from`).
    let link_error = Memo::new(move |_| match parsed.get() {
        Err(e) => Some(e),
        Ok(view) => view.time_range(js_sys::Date::now() as i64).err(),
    });
    let loaded = RwSignal::new(None::<Arc<Loaded>>);
    let load_state = RwSignal::new(LoadState::Idle);
    let generation = StoredValue::new(0u64);
    let input_at = StoredValue::new(None::<f64>);
    let redraw_ms = RwSignal::new(None::<f64>);
    // Results put on screen so far: tests wait for it to move after an input.
    let redraws = RwSignal::new(0u64);
    let searches = RwSignal::new(std::collections::BTreeMap::<String, String>::new());

    let nav: Nav = StoredValue::new_local(Rc::new(move |view: &ViewState, replace: bool| {
        input_at.set_value(Some(now_ms()));
        let query = view.to_query_string();
        let url = if query.is_empty() { "/".to_owned() } else { format!("/?{query}") };
        navigate(&url, NavigateOptions { replace, scroll: false, ..Default::default() });
    }) as Rc<dyn Fn(&ViewState, bool)>);

    // Fetch when the view's range is not inside what is loaded. `now` stays the instant of
    // the last load, so relative ranges that fit do not refetch or drift.
    Effect::new(move |_| {
        let Some(view) = current.get() else { return };
        let have = loaded.get_untracked();
        if let Some(l) = &have
            && let Ok(r) = view.time_range(l.now_ms)
            && l.covers(r.from_ms, r.to_ms)
        {
            return;
        }
        let now = js_sys::Date::now() as i64;
        let Ok(range) = view.time_range(now) else { return };
        let ticket = generation.get_value() + 1;
        generation.set_value(ticket);
        load_state.set(LoadState::Loading(Progress::default()));
        spawn_local(async move {
            let progress = move |p: Progress| {
                if generation.get_value() == ticket {
                    load_state.set(LoadState::Loading(p));
                }
            };
            let outcome = load::jobs(range.from_ms, range.to_ms, now, progress).await;
            if generation.get_value() != ticket {
                return;
            }
            match outcome {
                Ok(l) => {
                    loaded.set(Some(l));
                    load_state.set(LoadState::Idle);
                }
                Err(e) => load_state.set(LoadState::Failed(e.to_string())),
            }
        });
    });

    let computed = Memo::new(move |_| {
        let view = current.get()?;
        let data = loaded.get()?;
        let range = view.time_range(data.now_ms).ok()?;
        if !data.covers(range.from_ms, range.to_ms) {
            return None;
        }
        let started = now_ms();
        let (shown, selected) = match compute(&view, &data) {
            Ok((shown, selected)) => (Ok(shown), selected),
            Err(e) => (Err(e), 0),
        };
        Some(Computed {
            view,
            shown,
            selected,
            compute_ms: now_ms() - started,
            range: (range.from_ms, range.to_ms),
        })
    });

    // Facets depend on the range and filters only, not on how the result is drawn.
    let facet_key = Memo::new(move |_| {
        current.get().map(|v| ViewState {
            from: v.from,
            to: v.to,
            filters: v.filters,
            ranges: v.ranges,
            ..Default::default()
        })
    });
    let facets = Memo::new(move |_| {
        let view = facet_key.get()?;
        let data = loaded.get()?;
        let counter = FacetCounter::new(&data.table, &view, data.now_ms).ok()?;
        let searches = searches.get();
        let list: Vec<Facet> = dims_of(&data.table)
            .iter()
            .filter_map(|dim| {
                let search = searches.get(dim.name().as_ref()).map(String::as_str).unwrap_or("");
                let limit = if search.is_empty() { FACET_VALUES } else { 50 };
                counter.facet(dim, search, limit).ok()
            })
            .collect();
        Some(list)
    });

    let spec = Memo::new(move |_| computed.get().and_then(|c| chart_spec(&c)).map(Arc::new));
    let chart = Signal::derive(move || spec.get().map(|s| Arc::new(s.chart.clone())));
    let chart_height = Signal::derive(move || spec.get().map_or(420, |s| s.height));

    let painted = move || {
        redraws.update(|n| *n += 1);
        if let Some(at) = input_at.get_value() {
            redraw_ms.set(Some(now_ms() - at));
            input_at.set_value(None);
        }
    };
    // Views drawn as HTML: report the paint once the DOM has the new rows.
    Effect::new(move |_| {
        if let Some(c) = computed.get()
            && !c.view.view.has_time_axis()
            && matches!(c.view.view, ViewKind::Pivot | ViewKind::Jobs)
        {
            after_paint(painted);
        }
    });

    let on_click = Rc::new(move |click: ItemClick| {
        let (Some(c), Some(spec)) = (computed.get_untracked(), spec.get_untracked()) else { return };
        let Some(data) = loaded.get_untracked() else { return };
        let drilled = match (spec.target(click.series, click.index), &c.shown) {
            (Some(Target::Group(g)), Ok(Shown::Groups(answer))) => c.view.drill_down(answer, g, data.now_ms),
            (Some(Target::Bin(i)), Ok(Shown::Histogram { histogram, value })) => {
                c.view.drill_into_bin(histogram, value, i)
            }
            _ => return,
        };
        nav.with_value(|go| go(&drilled, false));
    });
    let on_legend = Rc::new(move |name: String, shown: bool| {
        let Some(mut view) = current.get_untracked() else { return };
        view.hidden.retain(|h| *h != name);
        if !shown {
            view.hidden.push(name);
            view.hidden.sort();
        }
        // The legend already shows the change: only the URL follows.
        nav.with_value(|go| go(&view, true));
        input_at.set_value(None);
    });
    // Reactive closures in the view must be `Send`: the callbacks stay in local storage.
    let on_click = StoredValue::new_local(on_click as Rc<dyn Fn(ItemClick)>);
    let on_legend = StoredValue::new_local(on_legend as Rc<dyn Fn(String, bool)>);
    let on_painted = StoredValue::new_local(Rc::new(painted) as Rc<dyn Fn()>);

    let status = move || -> (&'static str, String) {
        if let Some(e) = link_error.get() {
            return ("error", format!("The view in this link cannot be shown: `{}` is not valid.", e.key));
        }
        match load_state.get() {
            LoadState::Failed(message) => return ("error", message),
            LoadState::Loading(p) => {
                let of = p.total.map(|t| format!(" of {}", bytes(t))).unwrap_or_default();
                return ("loading", format!("Loading jobs… {}{of}", bytes(p.received)));
            }
            LoadState::Idle => {}
        }
        match computed.get() {
            None => ("loading", "Loading jobs…".to_owned()),
            Some(Computed { shown: Err(e), .. }) => ("error", format!("This view cannot be shown: {e}")),
            Some(c) if c.selected == 0 => {
                ("empty", "No jobs match this view. Widen the time range or remove a filter.".to_owned())
            }
            Some(_) => ("ready", String::new()),
        }
    };
    let progress = move || match load_state.get() {
        LoadState::Loading(Progress { received, total: Some(total) }) if total > 0 => {
            Some((received as f64 / total as f64).min(1.0))
        }
        _ => None,
    };

    view! {
        <div class="explorer">
            <RangeBar current=current nav=nav/>
            <p class="status" role="status" data-testid="status" data-state=move || status().0>
                {move || status().1}
                {move || progress().map(|p| view! { <progress data-testid="load-progress" max="1" value=p></progress> })}
            </p>
            {move || link_error.get().map(|e| view! { <BadLink error=e/> })}
            <div class="layout">
                <aside class="sidebar" aria-label="Filters">
                    <FacetPanel facets=facets current=current nav=nav searches=searches/>
                </aside>
                <section class="main">
                    <ViewControls current=current loaded=loaded nav=nav/>
                    <div class="summary-line">
                        <span>
                            <strong data-testid="job-count">
                                {move || computed.get().map(|c| thousands(c.selected as u64))}
                            </strong>
                            " jobs in view"
                        </span>
                        <span class="muted">
                            "computed in "
                            <span data-testid="recompute-ms">
                                {move || computed.get().map(|c| format!("{:.1}", c.compute_ms))}
                            </span>
                            " ms · on screen in "
                            <span data-testid="redraw-ms" data-count=move || redraws.get().to_string()>
                                {move || redraw_ms.get().map_or_else(|| "–".to_owned(), |ms| format!("{ms:.0}"))}
                            </span>
                            " ms"
                        </span>
                        <span class="muted" data-testid="loaded">
                            {move || loaded.get().map(|l| format!(
                                "{} jobs loaded ({}, decoded in {:.0} ms)",
                                thousands(l.table.len as u64),
                                bytes(l.bytes),
                                l.decode_ms,
                            ))}
                        </span>
                        <Actions current=current computed=computed loaded=loaded/>
                    </div>
                    <div class="result card" class:dim=move || computed.get().is_none()>
                        {move || {
                            let kind = current.get().map(|v| v.view).unwrap_or_default();
                            match kind {
                                ViewKind::Pivot => view! { <PivotTable computed=computed nav=nav loaded=loaded/> }.into_any(),
                                ViewKind::Jobs => view! { <JobList computed=computed nav=nav loaded=loaded/> }.into_any(),
                                _ => view! {
                                    <EChart
                                        chart=chart
                                        on_click=on_click.get_value()
                                        on_legend=on_legend.get_value()
                                        on_painted=on_painted.get_value()
                                        fit_height=chart_height
                                    />
                                    <p class="hint">"Click a point, bar or cell to list its jobs."</p>
                                }.into_any(),
                            }
                        }}
                    </div>
                </section>
            </div>
        </div>
    }
}

/// A link whose query string does not parse: what is wrong, and ways out.
#[component]
fn BadLink(error: ViewError) -> impl IntoView {
    let key = error.key.clone();
    let without = move || {
        let search = web_sys::window().and_then(|w| w.location().search().ok()).unwrap_or_default();
        let kept: Vec<&str> = search
            .trim_start_matches('?')
            .split('&')
            .filter(|p| !p.is_empty() && p.split('=').next() != Some(key.as_str()))
            .collect();
        if kept.is_empty() { "/".to_owned() } else { format!("/?{}", kept.join("&")) }
    };
    view! {
        <div class="card notice error" data-testid="view-error">
            <h2>"This link has a problem"</h2>
            <p>
                <code>{format!("{}={}", error.key, error.value)}</code>
                ": "
                {error.expected.clone()}
            </p>
            <p>
                <a href=without()>{format!("Open it without `{}`", error.key)}</a>
                " · "
                <a href="/">"Open the default view"</a>
            </p>
        </div>
    }
}

/// Runs the view's computation: the answer, histogram or job-list page, and the number of
/// jobs in view.
fn compute(view: &ViewState, data: &Loaded) -> Result<(Shown, usize), ViewError> {
    let table = &data.table;
    let engine_error = |e: engine::QueryError| ViewError::new("view", "", e.to_string());
    match view.view {
        ViewKind::Jobs => {
            let rows = view.job_rows(table, data.now_ms)?;
            let total = rows.len();
            let start = (view.page.saturating_sub(1) as usize * PAGE_SIZE).min(total);
            let page = rows[start..(start + PAGE_SIZE).min(total)].to_vec();
            Ok((Shown::Jobs { rows: page, total }, total))
        }
        ViewKind::Histogram => {
            let value = view.measure.value().cloned().unwrap_or(Value::Duration);
            let query = view.to_engine_query(table, data.now_ms)?;
            let selection = engine::select(table, &query.filters).map_err(engine_error)?;
            let values = engine::values(table, &value, selection.rows()).map_err(engine_error)?;
            Ok((Shown::Histogram { histogram: Histogram::new(&values, BINS), value }, selection.len()))
        }
        kind => {
            let mut query = view.to_engine_query(table, data.now_ms)?;
            // Many groups do not fit a chart: keep the busiest, sum the rest into "(other)".
            let k = match kind {
                ViewKind::Line | ViewKind::StackedBar => Some(TOP_SERIES),
                ViewKind::Bar | ViewKind::Heatmap => Some(TOP_BARS),
                _ => None,
            };
            if let Some(k) = k
                && !query.dims.is_empty()
            {
                query.measures.push(Measure::Count);
                query.top = Some(TopK { part: 0, k, by: 1, ascending: false, other: true });
            }
            let answer = engine::run(table, &query).map_err(engine_error)?;
            let selected = answer.selected as usize;
            Ok((Shown::Groups(answer), selected))
        }
    }
}

fn chart_spec(c: &Computed) -> Option<ChartSpec> {
    let Ok(shown) = &c.shown else { return None };
    Some(match (c.view.view, shown) {
        (ViewKind::Line | ViewKind::StackedBar, Shown::Groups(a)) => charts::time_series(&c.view, a, c.range),
        (ViewKind::Bar, Shown::Groups(a)) => charts::bars(&c.view, a),
        (ViewKind::Heatmap, Shown::Groups(a)) => charts::heatmap(&c.view, a),
        (ViewKind::Histogram, Shown::Histogram { histogram, value }) => {
            charts::histogram(&c.view, histogram, &value_name(value))
        }
        _ => return None,
    })
}

/// The dimensions a view can group by, for the controls.
pub fn groupable(data: &Loaded) -> Vec<Dim> {
    dims_of(&data.table)
}
