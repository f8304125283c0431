//! Meterbell: usage analytics and notifications for API and LLM platforms.
//!
//! The Lambda binaries in `functions/` are thin: each builds an [`App`] once at cold start and
//! hands every event to a handler from [`handlers`]. Everything else lives here:
//!
//! - [`domain`]: the types a handler holding a value can trust (user ids, roles).
//! - [`auth`]: JWT validation into an [`auth::Identity`].
//! - [`http`]: request parsing, the JSON error contract and its single status mapping.
//! - [`store`]: the DynamoDB adapters behind small per-capability traits, with in-memory fakes.
//! - [`handlers`]: one function per Lambda, callable in-process by tests and the local runner.
//! - [`lambda`]: the cold-start and runtime glue the binaries call.

pub mod app;
pub mod auth;
pub mod config;
pub mod cursor;
pub mod delivery;
pub mod domain;
pub mod email;
pub mod error;
pub mod handlers;
pub mod http;
pub mod jobs;
pub mod lambda;
pub mod notification;
pub mod preferences;
pub mod store;
pub mod usage;
pub mod webhook;

pub use app::App;
pub use config::Config;
pub use error::ApiError;
