//! The filter panel: one block per dimension with its values and job counts (under every
//! other filter), a search field for long lists, and include / exclude per value.

use std::collections::BTreeMap;

use common::view::facets::Facet;
use common::view::{Dim, ViewState};
use leptos::prelude::*;

use crate::format::thousands;
use crate::pages::explorer::{FACET_VALUES, Nav};

#[component]
pub fn FacetPanel(
    facets: Memo<Option<Vec<Facet>>>,
    current: Memo<Option<ViewState>>,
    nav: Nav,
    searches: RwSignal<BTreeMap<String, String>>,
) -> impl IntoView {
    let clear_all = move |_| {
        if let Some(mut view) = current.get_untracked() {
            view.filters.clear();
            view.ranges.clear();
            view.page = 1;
            nav.with_value(|go| go(&view, false));
        }
    };
    let dims = move || facets.get().unwrap_or_default().into_iter().map(|f| f.dim).collect::<Vec<Dim>>();
    let any_filter = move || current.get().is_some_and(|v| !v.filters.is_empty() || !v.ranges.is_empty());
    view! {
        <div class="facets">
            <div class="facets-head">
                <h2>"Filters"</h2>
                <button type="button" class="link" on:click=clear_all disabled=move || !any_filter()>"Clear all"</button>
            </div>
            {move || current.get().map(|v| v.ranges).filter(|r| !r.is_empty()).map(|ranges| view! {
                <ul class="ranges">
                    {ranges.into_iter().map(|r| {
                        let text = format!(
                            "{} {}..{}",
                            common::view::value_name(&r.value),
                            r.min.map(|x| x.to_string()).unwrap_or_default(),
                            r.max.map(|x| x.to_string()).unwrap_or_default(),
                        );
                        let value = r.value.clone();
                        view! {
                            <li>
                                <span>{text}</span>
                                <button type="button" class="link" aria-label="Remove range" on:click=move |_| {
                                    if let Some(mut view) = current.get_untracked() {
                                        view.ranges.retain(|x| x.value != value);
                                        view.page = 1;
                                        nav.with_value(|go| go(&view, false));
                                    }
                                }>"×"</button>
                            </li>
                        }
                    }).collect_view()}
                </ul>
            })}
            <Show when=move || facets.with(|f| f.is_none())>
                <p class="muted">"Counting…"</p>
            </Show>
            <For
                each=dims
                key=|dim| dim.clone()
                let:dim
            >
                <FacetBlock dim=dim facets=facets current=current nav=nav searches=searches/>
            </For>
        </div>
    }
}

#[component]
fn FacetBlock(
    dim: Dim,
    facets: Memo<Option<Vec<Facet>>>,
    current: Memo<Option<ViewState>>,
    nav: Nav,
    searches: RwSignal<BTreeMap<String, String>>,
) -> impl IntoView {
    let name = dim.name().into_owned();
    let facet = {
        let dim = dim.clone();
        Memo::new(move |_| facets.get().and_then(|list| list.into_iter().find(|f| f.dim == dim)))
    };
    let search = {
        let key = name.clone();
        Signal::derive(move || searches.with(|s| s.get(&key).cloned().unwrap_or_default()))
    };
    let filter = {
        let dim = dim.clone();
        Memo::new(move |_| current.get().and_then(|v| v.filter(&dim).cloned()).unwrap_or_default())
    };
    let active = move || filter.with(|f| !f.include.is_empty() || !f.exclude.is_empty());
    let matching = move || facet.with(|f| f.as_ref().map_or(0, |f| f.matching));
    let testid = format!("facet-{name}");
    let searchable = move || matching() > FACET_VALUES || !search.get().is_empty();
    let toggle = {
        let dim = dim.clone();
        move |label: String, exclude: bool| {
            let Some(mut view) = current.get_untracked() else { return };
            let f = view.filter_mut(&dim);
            let (list, other) =
                if exclude { (&mut f.exclude, &mut f.include) } else { (&mut f.include, &mut f.exclude) };
            if let Some(i) = list.iter().position(|v| *v == label) {
                list.remove(i);
            } else {
                list.push(label.clone());
                other.retain(|v| *v != label);
            }
            view.prune();
            view.page = 1;
            nav.with_value(|go| go(&view, false));
        }
    };
    let clear = {
        let dim = dim.clone();
        move |_| {
            let Some(mut view) = current.get_untracked() else { return };
            view.filters.retain(|f| f.dim != dim);
            view.page = 1;
            nav.with_value(|go| go(&view, false));
        }
    };
    let on_search = {
        let key = name.clone();
        move |ev| {
            let text = event_target_value(&ev);
            searches.update(|s| {
                if text.is_empty() {
                    s.remove(&key);
                } else {
                    s.insert(key.clone(), text);
                }
            });
        }
    };
    view! {
        <section class="facet" class:active=active data-testid=testid>
            <header>
                <h3>{name.clone()}</h3>
                <Show when=active>
                    <button type="button" class="link" on:click=clear.clone()>"clear"</button>
                </Show>
            </header>
            <Show when=searchable>
                <input
                    type="search"
                    class="facet-search"
                    placeholder=move || format!("Search {} values", thousands(matching() as u64))
                    aria-label=format!("Search {name}")
                    prop:value=search
                    on:input=on_search.clone()
                />
            </Show>
            <ul>
                {move || {
                    let filter = filter.get();
                    facet
                        .get()
                        .map(|f| f.values)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|v| {
                            let included = filter.include.contains(&v.label);
                            let excluded = filter.exclude.contains(&v.label);
                            let shown = if v.label.is_empty() { "(not set)".to_owned() } else { v.label.clone() };
                            let (t1, t2) = (toggle.clone(), toggle.clone());
                            let (l1, l2) = (v.label.clone(), v.label.clone());
                            view! {
                                <li class:included=included class:excluded=excluded>
                                    <label>
                                        <input
                                            type="checkbox"
                                            prop:checked=included
                                            data-value=v.label.clone()
                                            on:change=move |_| t1(l1.clone(), false)
                                        />
                                        <span class="facet-label" title=shown.clone()>{shown.clone()}</span>
                                    </label>
                                    <span class="count">{thousands(v.count)}</span>
                                    <button
                                        type="button"
                                        class="exclude"
                                        aria-pressed=excluded.to_string()
                                        title=if excluded { "Stop excluding" } else { "Exclude" }
                                        aria-label=format!("Exclude {shown}")
                                        data-value=v.label.clone()
                                        on:click=move |_| t2(l2.clone(), true)
                                    >
                                        "−"
                                    </button>
                                </li>
                            }
                        })
                        .collect_view()
                }}
            </ul>
            {move || {
                let shown = facet.with(|f| f.as_ref().map_or(0, |f| f.values.len()));
                let more = matching().saturating_sub(shown);
                (more > 0)
                    .then(|| {
                        view! {
                            <p class="muted more">{format!("{} more: search to find them", thousands(more as u64))}</p>
                        }
                    })
            }}
        </section>
    }
}
