//! Widgets shared by pages.

pub mod controls;
pub mod echart;
pub mod facets;
pub mod header;
pub mod job_list;
pub mod job_steps;
pub mod pivot_table;
