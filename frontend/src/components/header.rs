//! The header bar.

use leptos::prelude::*;
use leptos_router::hooks::use_location;

/// The pages linked from the header: path and label.
const PAGES: [(&str, &str); 3] = [("/", "Jobs"), ("/tests", "Tests"), ("/metrics", "Metrics")];

/// The product name and what it is for, on every page, and links to the pages.
#[component]
pub fn Header() -> impl IntoView {
    let location = use_location();
    view! {
        <header class="topbar">
            <a class="brand" href="/">"Buildscope"</a>
            <span class="tagline">"CI build-farm job records"</span>
            <nav class="topnav" aria-label="Pages">
                {PAGES
                    .into_iter()
                    .map(|(path, label)| {
                        let current = move || (location.pathname.get() == path).then_some("page");
                        view! { <a href=path aria-current=current data-testid=format!("nav-{}", label.to_lowercase())>{label}</a> }
                    })
                    .collect_view()}
            </nav>
        </header>
    }
}
