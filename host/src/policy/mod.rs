//! Policy: deny lists, curated mode, approval.

pub mod pattern;
