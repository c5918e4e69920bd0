//! Buildscope's shared contract: the job record, time parsing, the columnar job table and
//! its wire encoding, and the pure analytics over it. Compiles for wasm32 (the browser) and
//! natively (the server, tests and benchmarks), so both compute identical numbers.
//!
//! Nothing here depends on a web framework, a database or a browser API.

pub mod api;
pub mod demo;
pub mod demo_extras;
pub mod engine;
pub mod export;
pub mod flaky;
pub mod job;
pub mod records;
pub mod reports;
pub mod series;
pub mod table;
pub mod time;
pub mod view;
pub mod wire;

pub use job::{FieldError, Job, JobResult, Step};
pub use table::JobTable;
pub use time::{TimeRange, Timestamp};
