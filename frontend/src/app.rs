//! The root component: header and routes.

use leptos::prelude::*;
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;

use crate::components::header::Header;
use crate::pages::overview::Overview;

/// The whole app: the header bar over whichever page the URL names.
#[component]
pub fn App() -> impl IntoView {
    view! {
        <Router>
            <Header/>
            <main class="page">
                <Routes fallback=|| view! { <p class="card notice">"There is no page here."</p> }>
                    <Route path=path!("/") view=Overview/>
                </Routes>
            </main>
        </Router>
    }
}
