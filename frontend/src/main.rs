//! Buildscope's browser app: a Leptos client-side-rendered single page that fetches job
//! tables from the server's data API, decodes them with `common`, and charts them.
//!
//! Layout: `app` routes URLs to `pages/`, widgets live in `components/`, all HTTP is in
//! `api`, and `format` turns numbers and instants into text.

mod api;
mod api_reports;
mod app;
mod charts;
mod components;
mod format;
mod load;
mod pages;
mod report_widgets;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}
