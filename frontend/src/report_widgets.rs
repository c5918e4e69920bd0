//! Small pieces the tests and metrics pages share: time-range preset links, a link to the
//! current page with some query parameters changed, and the range's description.

use common::TimeRange;
use leptos::prelude::*;
use leptos_router::hooks::{use_location, use_query_map};

use crate::format::{relative_name, utc_minute};

/// The presets offered: label and the Grafana `from` expression (`to` is always `now`).
pub const PRESETS: [(&str, &str); 4] =
    [("24h", "now-24h"), ("7d", "now-7d"), ("30d", "now-30d"), ("90d", "now-90d")];

/// A function giving the current page's URL with parameters replaced (`Some`) or removed
/// (`None`), everything else kept: every control is a link, so every view is a permalink.
pub fn use_href() -> impl Fn(Vec<(&'static str, Option<String>)>) -> String + Copy + Send + Sync + 'static {
    let query = use_query_map();
    let location = use_location();
    move |changes| {
        let mut params = query.get();
        for (key, value) in changes {
            match value {
                Some(v) => params.replace(key, v),
                None => {
                    params.remove(key);
                }
            }
        }
        format!("{}{}", location.pathname.get(), params.to_query_string())
    }
}

/// Links to the preset ranges; the one matching the URL is marked `aria-current`.
#[component]
pub fn RangeLinks(from: Signal<String>, to: Signal<String>) -> impl IntoView {
    let href = use_href();
    view! {
        <nav class="presets" aria-label="Time range">
            {PRESETS
                .into_iter()
                .map(|(label, preset_from)| {
                    let current = move || from.get() == preset_from && to.get() == "now";
                    view! {
                        <a
                            href=move || href(vec![("from", Some(preset_from.to_owned())), ("to", Some("now".to_owned()))])
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

/// `Last 7 days: 2024-03-01 10:00 → 2024-03-08 10:00 UTC`, or why the range is unreadable.
pub fn range_text(from: &str, to: &str) -> String {
    let name = relative_name(from, to).unwrap_or_else(|| "Custom range".to_owned());
    match TimeRange::parse(from, to, js_sys::Date::now() as i64) {
        Ok(r) => format!("{name}: {} → {} UTC", utc_minute(r.from_ms), utc_minute(r.to_ms)),
        Err(e) => format!("Not a time range: {e}"),
    }
}
