//! Preset time ranges as links, so every range is a permalink that opens in a new tab.

use leptos::prelude::*;
use leptos_router::hooks::{use_location, use_query_map};

/// The presets offered: label and the Grafana `from` expression (`to` is always `now`).
pub const PRESETS: [(&str, &str); 4] =
    [("24h", "now-24h"), ("7d", "now-7d"), ("30d", "now-30d"), ("90d", "now-90d")];

/// A row of links to the preset ranges. Each keeps the rest of the query string, and the
/// one matching the current URL is marked `aria-current`. Plain anchors: the router turns
/// clicks on them into client-side navigation, and they still open in a new tab.
#[component]
pub fn RangePicker(
    /// The `from` expression currently in the URL (defaulted).
    from: Signal<String>,
    /// The `to` expression currently in the URL (defaulted).
    to: Signal<String>,
) -> impl IntoView {
    let query = use_query_map();
    let location = use_location();
    let link = move |preset_from: &str| {
        let mut params = query.get();
        params.insert("from", preset_from.to_owned());
        params.insert("to", "now".to_owned());
        format!("{}{}", location.pathname.get(), params.to_query_string())
    };
    view! {
        <nav class="presets" aria-label="Time range">
            {PRESETS
                .into_iter()
                .map(|(label, preset_from)| {
                    let current = move || from.get() == preset_from && to.get() == "now";
                    view! {
                        <a
                            href=move || link(preset_from)
                            class="preset"
                            data-testid=format!("preset-{label}")
                            aria-current=move || current().then_some("page")
                        >
                            {label}
                        </a>
                    }
                })
                .collect_view()}
        </nav>
    }
}
