//! A user's data lifecycle across both halves: erasing everything held about a user (with the
//! admin totals kept exact) and exporting it. Like the seam, this is a place that may use both
//! halves; neither half uses it.

pub mod erase;
pub mod export;
pub mod routes;
