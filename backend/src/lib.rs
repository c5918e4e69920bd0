//! Buildscope's server: a thin axum layer over a job store.
//!
//! `router(state)` wires every route; `serve(listener, state, shutdown)` runs it. Tests bind
//! port 0 and call the same functions as `main`.

pub mod error;
pub mod import;
pub mod ingest;
pub mod routes;
pub mod settings;
pub mod store;

pub use routes::{AppState, router, serve};
