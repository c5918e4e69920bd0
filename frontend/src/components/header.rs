//! The header bar.

use leptos::prelude::*;

/// The product name and what it is for, on every page.
#[component]
pub fn Header() -> impl IntoView {
    view! {
        <header class="topbar">
            <a class="brand" href="/">"Buildscope"</a>
            <span class="tagline">"CI build-farm job records"</span>
        </header>
    }
}
