//! The DynamoDB toolkit every store uses: attribute reading and writing, the one SDK-error
//! mapping, transactions with one retry policy, paging, and every key format.

pub mod attrs;
pub mod error;
pub mod keys;
pub mod paging;
pub mod table;
pub mod transact;

pub use attrs::{Attrs, Item};
pub use table::Table;

use aws_sdk_dynamodb::types::ConsumedCapacity;

use crate::platform::error::ApiError;

/// The capacity units DynamoDB reports a request consumed (0 when it was not asked to).
pub fn units(consumed: Option<&ConsumedCapacity>) -> f64 {
    consumed.and_then(|c| c.capacity_units).unwrap_or(0.0)
}

/// A storage failure. Never the client's fault, so always a 500 with the cause logged.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("DynamoDB request failed: {0}")]
    Dynamo(String),
    #[error("stored item is corrupt: {0}")]
    Corrupt(String),
    #[error("gave up after repeated write conflicts: {0}")]
    Contention(String),
    #[error(transparent)]
    Config(#[from] crate::platform::config::ConfigError),
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        ApiError::Unexpected(err.into())
    }
}
