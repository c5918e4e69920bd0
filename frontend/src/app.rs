//! The root component: header and routes.

use leptos::prelude::*;
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;

use crate::components::header::Header;
use crate::pages::explorer::Explorer;
use crate::pages::metrics::Metrics;
use crate::pages::tests::Tests;

/// The whole app: the header bar over whichever page the URL names.
#[component]
pub fn App() -> impl IntoView {
    view! {
        <Router>
            <Header/>
            <main class="page">
                <Routes fallback=|| view! { <p class="card notice">"There is no page here."</p> }>
                    <Route path=path!("/") view=Explorer/>
                    <Route path=path!("/tests") view=Tests/>
                    <Route path=path!("/metrics") view=Metrics/>
                </Routes>
            </main>
        </Router>
    }
}
