//! Meterbell: usage analytics and notifications for API and LLM platforms.
//!
//! The Lambda binaries in `functions/` are thin: each builds an [`App`] once at cold start and
//! hands every event to its handler from [`functions::FUNCTIONS`]. The library has two halves on
//! one platform (see `docs/architecture.md`):
//!
//! - [`analytics`]: usage events, money, periods, rollups, their store, the ingest path and the
//!   read routes.
//! - [`notifications`]: the inbox, preferences, jobs, the dispatcher and the channels (email,
//!   webhook) with their delivery log.
//! - [`seam`]: the one place where the halves meet (a usage event becoming a notification job).
//! - [`lifecycle`]: a user's data across both halves: erase and export.
//! - [`platform`]: configuration, identity, HTTP plumbing and errors, the app, the Lambda runners
//!   and one toolkit per AWS service.
//! - [`portal`]: the usage portal page, its short-lived tokens and the OpenAPI document.

pub mod analytics;
pub mod functions;
pub mod lifecycle;
pub mod notifications;
pub mod platform;
pub mod portal;
pub mod seam;

pub use platform::app::App;
pub use platform::config::Config;
pub use platform::error::ApiError;
