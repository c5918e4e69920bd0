//! The pivot view as an HTML table: rows × columns × measure with totals; clicking a cell
//! lists its jobs, clicking a header sorts.

use std::sync::Arc;

use common::view::pivot::{Cell, Pivot};
use common::view::{SortKey, ViewMeasure, ViewSort};
use leptos::prelude::*;

use crate::format::measure_value;
use crate::load::Loaded;
use crate::pages::explorer::{Computed, Nav, Shown};

/// Rows drawn; the CSV export has them all.
const MAX_ROWS: usize = 1000;

#[component]
pub fn PivotTable(
    computed: Memo<Option<Computed>>,
    nav: Nav,
    loaded: RwSignal<Option<Arc<Loaded>>>,
) -> impl IntoView {
    let pivot = Memo::new(move |_| {
        let c = computed.get()?;
        let Ok(Shown::Groups(answer)) = &c.shown else { return None };
        Some((Pivot::new(answer, &c.view.measure, c.view.sort.as_ref()), c.view.clone()))
    });
    let drill = move |group: usize| {
        let (Some(c), Some(data)) = (computed.get_untracked(), loaded.get_untracked()) else { return };
        if let Ok(Shown::Groups(answer)) = &c.shown {
            let view = c.view.drill_down(answer, group, data.now_ms);
            nav.with_value(|go| go(&view, false));
        }
    };
    let sort_by = move |key: SortKey| {
        let Some(c) = computed.get_untracked() else { return };
        let mut view = c.view.clone();
        view.sort = match &view.sort {
            // Measures start largest first; keys A to Z; a second click flips.
            Some(s) if s.key == key => Some(ViewSort { key, descending: !s.descending }),
            _ => Some(ViewSort { descending: key == SortKey::Measure, key }),
        };
        nav.with_value(|go| go(&view, false));
    };
    move || {
        let Some((p, view)) = pivot.get() else {
            return view! { <p class="muted">"Computing…"</p> }.into_any();
        };
        let measure = view.measure.clone();
        let max = p.cells.iter().flatten().filter_map(|c| c.value).fold(0.0f64, |m, v| m.max(v.abs()));
        let cell = move |c: &Cell, class: &'static str| {
            let text = if c.group.is_some() { measure_value(&measure, c.value) } else { String::new() };
            let tint = c
                .value
                .filter(|_| class == "cell" && max > 0.0)
                .map(|v| format!("background: rgba(78, 121, 167, {:.3})", 0.06 + 0.34 * (v.abs() / max)));
            let group = c.group;
            view! {
                <td
                    class=class
                    style=tint.unwrap_or_default()
                    tabindex=group.map(|_| "0")
                    title=format!("{} jobs", c.jobs)
                    on:click=move |_| { if let Some(g) = group { drill(g) } }
                    on:keydown=move |ev| { if ev.key() == "Enter" && let Some(g) = group { drill(g) } }
                >
                    {text}
                </td>
            }
        };
        let arrow = |key: SortKey| match &view.sort {
            Some(s) if s.key == key => {
                if s.descending {
                    " ▼"
                } else {
                    " ▲"
                }
            }
            _ => "",
        };
        let corner = match (&p.row_dim, &p.col_dim) {
            (Some(r), Some(c)) => format!("{r} \\ {c}"),
            (Some(r), None) => r.clone(),
            (None, _) => String::new(),
        };
        let has_columns = !p.columns.is_empty();
        let rows_total = p.rows.len();
        let total_header = if has_columns { "Total".to_owned() } else { measure_label(&view.measure) };
        let cell_total = cell.clone();
        view! {
            <div class="pivot-wrap">
                <table class="pivot" data-testid="pivot-table">
                    <thead>
                        <tr>
                            <th scope="col" class="sortable" on:click=move |_| sort_by(SortKey::Key)>{corner}{arrow(SortKey::Key)}</th>
                            {p.columns.iter().map(|c| view! { <th scope="col">{c.label.clone()}</th> }).collect_view()}
                            <th scope="col" class="sortable total" on:click=move |_| sort_by(SortKey::Measure)>
                                {total_header}{arrow(SortKey::Measure)}
                            </th>
                        </tr>
                    </thead>
                    <tbody>
                        {p.rows.iter().enumerate().take(MAX_ROWS).map(|(i, line)| {
                            let cells = p.cells[i].iter().map(|c| cell(c, "cell")).collect_view();
                            let total = has_columns.then(|| cell(&p.row_totals[i], "total"));
                            view! { <tr><th scope="row">{line.label.clone()}</th>{cells}{total}</tr> }
                        }).collect_view()}
                    </tbody>
                    {p.row_dim.is_some().then(|| view! {
                        <tfoot>
                            <tr>
                                <th scope="row">"Total"</th>
                                {p.col_totals.iter().map(|c| cell_total(c, "total")).collect_view()}
                                {cell_total(&p.total, "total")}
                            </tr>
                        </tfoot>
                    })}
                </table>
                {(rows_total > MAX_ROWS).then(|| view! {
                    <p class="muted">{format!("Showing {MAX_ROWS} of {rows_total} rows; the CSV export has them all.")}</p>
                })}
            </div>
        }
        .into_any()
    }
}

/// A measure's column header.
fn measure_label(m: &ViewMeasure) -> String {
    m.to_string()
}
