//! Widgets shared by pages.

pub mod chart;
pub mod header;
pub mod range_picker;
