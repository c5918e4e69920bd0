//! The job list: the jobs behind the view, one page at a time, sortable by column, each
//! linking to its CI page.

use std::sync::Arc;

use common::engine::Value;
use common::table::dim;
use common::view::rows::PAGE_SIZE;
use common::view::{Dim, SortKey, ViewSort, ViewState};
use leptos::prelude::*;

use crate::components::job_steps::JobSteps;
use crate::format::{seconds, utc_minute};
use crate::load::Loaded;
use crate::pages::explorer::{Computed, Nav, Shown};

/// One listed job, as text.
#[derive(Clone, Debug, PartialEq)]
struct Row {
    time: String,
    builder: String,
    result: String,
    worker: String,
    branch: String,
    revision: String,
    duration: String,
    queue: String,
    source: String,
    id: String,
}

fn row(data: &Loaded, r: usize) -> Row {
    let t = &data.table;
    let text = |d: usize| t.dims[d].get(r).unwrap_or("").to_owned();
    let time = t.time_ms(r);
    Row {
        time: if time == common::table::NO_TIME { String::new() } else { utc_minute(time) },
        builder: text(dim::BUILDER),
        result: text(dim::RESULT),
        worker: text(dim::WORKER),
        branch: text(dim::BRANCH),
        revision: text(dim::REVISION).chars().take(12).collect(),
        duration: t.duration_ms(r).map(|ms| seconds(ms as f64 / 1000.0)).unwrap_or_default(),
        queue: t.queue_ms(r).map(|ms| seconds(ms as f64 / 1000.0)).unwrap_or_default(),
        source: text(dim::SOURCE),
        id: t.ids.get(r),
    }
}

#[component]
pub fn JobList(
    computed: Memo<Option<Computed>>,
    nav: Nav,
    loaded: RwSignal<Option<Arc<Loaded>>>,
) -> impl IntoView {
    let page = Memo::new(move |_| {
        let c = computed.get()?;
        let data = loaded.get()?;
        let Ok(Shown::Jobs { rows, total }) = &c.shown else { return None };
        Some((rows.iter().map(|&r| row(&data, r as usize)).collect::<Vec<Row>>(), *total, c.view.clone()))
    });
    // The job whose steps are shown under the list (not part of the URL: a detail).
    let open = RwSignal::new(None::<(String, String)>);
    let go_to = move |f: &dyn Fn(&mut ViewState)| {
        let Some(c) = computed.get_untracked() else { return };
        let mut view = c.view.clone();
        f(&mut view);
        nav.with_value(|go| go(&view, false));
    };
    let sort_by = move |key: SortKey| {
        go_to(&|view| {
            view.sort = match &view.sort {
                Some(s) if s.key == key => Some(ViewSort { key: key.clone(), descending: !s.descending }),
                // Times and values start largest first, names A to Z.
                _ => Some(ViewSort { key: key.clone(), descending: !matches!(key, SortKey::Dim(_)) }),
            };
            view.page = 1;
        })
    };
    move || {
        let Some((rows, total, view)) = page.get() else {
            return view! { <p class="muted">"Computing…"</p> }.into_any();
        };
        let pages = ViewState::pages(total);
        let current_page = view.page.min(pages);
        let header = |label: &'static str, key: SortKey| {
            let arrow = match &view.sort {
                Some(s) if s.key == key => {
                    if s.descending {
                        " ▼"
                    } else {
                        " ▲"
                    }
                }
                None if key == SortKey::Time => " ▼",
                _ => "",
            };
            view! {
                <th scope="col" class="sortable" tabindex="0"
                    on:click={ let key = key.clone(); move |_| sort_by(key.clone()) }
                    on:keydown=move |ev| { if ev.key() == "Enter" { sort_by(key.clone()) } }
                >
                    {label}{arrow}
                </th>
            }
        };
        let first = (current_page as usize - 1) * PAGE_SIZE;
        view! {
            <div class="job-list-wrap">
                <table class="jobs" data-testid="job-list">
                    <thead>
                        <tr>
                            {header("Time (UTC)", SortKey::Time)}
                            {header("Builder", SortKey::Dim(Dim::Builder))}
                            {header("Result", SortKey::Dim(Dim::Result))}
                            {header("Worker", SortKey::Dim(Dim::Worker))}
                            {header("Branch", SortKey::Dim(Dim::Branch))}
                            {header("Revision", SortKey::Dim(Dim::Revision))}
                            {header("Duration", SortKey::Value(Value::Duration))}
                            {header("Queued", SortKey::Value(Value::QueueWait))}
                            <th scope="col">"Job"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {rows.into_iter().map(|r| {
                            let key = (r.source.clone(), r.id.clone());
                            let is_open = open.with(|o| o.as_ref() == Some(&key));
                            let href = format!(
                                "/api/v1/jobs/{}/{}/ci",
                                js_sys::encode_uri_component(&r.source),
                                js_sys::encode_uri_component(&r.id),
                            );
                            view! {
                                <tr>
                                    <td class="nowrap">{r.time}</td>
                                    <td>{r.builder}</td>
                                    <td><span class=format!("badge result-{}", r.result)>{r.result.clone()}</span></td>
                                    <td>{r.worker}</td>
                                    <td>{r.branch}</td>
                                    <td class="mono">{r.revision}</td>
                                    <td class="num">{r.duration}</td>
                                    <td class="num">{r.queue}</td>
                                    <td class="nowrap">
                                        <a href=href target="_blank" rel="noopener" title="Open the job in its CI">{format!("{} ↗", r.id)}</a>
                                        " "
                                        <button type="button" class="link" data-testid="show-steps"
                                            aria-pressed=is_open.to_string()
                                            on:click=move |_| open.update(|o| {
                                                *o = if o.as_ref() == Some(&key) { None } else { Some(key.clone()) };
                                            })>
                                            "steps"
                                        </button>
                                    </td>
                                </tr>
                                {is_open.then(|| view! {
                                    <tr class="steps-row">
                                        <td colspan="9"><JobSteps source=r.source.clone() id=r.id.clone()/></td>
                                    </tr>
                                })}
                            }
                        }).collect_view()}
                    </tbody>
                </table>
                <nav class="pager" aria-label="Pages">
                    <button type="button" data-testid="page-prev" disabled=current_page <= 1
                        on:click=move |_| go_to(&|v| v.page = current_page - 1)>"← Previous"</button>
                    <span data-testid="job-page">
                        {format!("Jobs {}–{} of {} · page {current_page} of {pages}",
                            (first + 1).min(total), (first + PAGE_SIZE).min(total), total)}
                    </span>
                    <button type="button" data-testid="page-next" disabled=current_page >= pages
                        on:click=move |_| go_to(&|v| v.page = current_page + 1)>"Next →"</button>
                </nav>
            </div>
        }
        .into_any()
    }
}
