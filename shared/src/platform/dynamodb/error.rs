//! The one mapping from an SDK error to a [`StoreError`], and the classification of the errors
//! a write may retry.

use std::fmt::Display;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};

use super::StoreError;

/// `map_err(sdk("GetItem counters"))`: the failed call named, with the SDK's full context.
pub fn sdk<E>(what: &'static str) -> impl FnOnce(E) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |e| StoreError::Dynamo(format!("{what}: {}", DisplayErrorContext(e)))
}

/// A request builder's result (a required field was not set: a bug of ours).
pub fn built<T, E: Display>(r: Result<T, E>) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::Dynamo(format!("building a request: {e}")))
}

/// Error codes that say "not now" rather than "no": a race with another writer, throttling,
/// a passing fault. A write that meets one retries under [`super::transact::Retry`].
pub fn is_retryable_code(code: &str) -> bool {
    matches!(
        code,
        "TransactionConflict"
            | "TransactionConflictException"
            | "TransactionInProgressException"
            | "ThrottlingError"
            | "ThrottlingException"
            | "ProvisionedThroughputExceeded"
            | "ProvisionedThroughputExceededException"
            | "RequestLimitExceeded"
            | "InternalServerError"
    )
}

/// Whether a failed call's error is one to retry.
pub fn is_retryable<E: ProvideErrorMetadata>(err: &E) -> bool {
    err.code().is_some_and(is_retryable_code)
}

/// Whether a failed call's error is its condition expression evaluating false.
pub fn is_condition_failed<E: ProvideErrorMetadata>(err: &E) -> bool {
    err.code() == Some("ConditionalCheckFailedException")
}

/// The result of a conditional single-item write: `Some` when it was written, `None` when its
/// condition did not hold.
pub fn conditional<T, E>(what: &'static str, result: Result<T, E>) -> Result<Option<T>, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if is_condition_failed(&e) => Ok(None),
        Err(e) => Err(sdk(what)(e)),
    }
}
