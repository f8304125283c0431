//! Storage ports, one small trait per capability, with the DynamoDB adapters beside their
//! in-memory fakes (the fakes serve unit tests of domain logic only; integration tests run
//! against DynamoDB Local).

pub mod accounts;
pub mod dynamodb;
pub mod keys;
pub mod memory;
pub mod notifications;
pub mod usage;

use std::future::Future;

use crate::domain::UserId;
use crate::error::ApiError;

/// A storage failure. Never the client's fault, so always a 500 with the cause logged.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("DynamoDB request failed: {0}")]
    Dynamo(String),
    #[error("stored item is corrupt: {0}")]
    Corrupt(String),
    #[error("gave up after repeated write conflicts: {0}")]
    Contention(String),
    #[error("SQS request failed: {0}")]
    Sqs(String),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        ApiError::Unexpected(err.into())
    }
}

/// Per-user notification counters.
pub trait NotificationCounts {
    /// The user's unread count; 0 for a user with nothing yet.
    fn unread_count(&self, user: &UserId) -> impl Future<Output = Result<u64, StoreError>> + Send;
}
