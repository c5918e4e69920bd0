//! One page per file, each a view of the URL it is opened at.

pub mod explorer;
pub mod metrics;
pub mod tests;
