//! Transactions and the one retry policy every store uses for races and throttling.
//!
//! A transaction either commits, is cancelled because some of its conditions did not hold (the
//! caller decides what that means: a duplicate, a changed state to read again), or meets a race
//! or throttling, which is retried after a short randomised pause, [`Retry::MAX_ATTEMPTS`] times
//! at most before the write gives up with [`StoreError::Contention`].

use std::time::Duration;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{ReturnConsumedCapacity, TransactWriteItem};
use aws_sdk_dynamodb::Client;

use super::error::{is_retryable_code, sdk};
use super::StoreError;

/// How one transaction attempt ended.
#[derive(Debug)]
pub enum Tx {
    /// Written; the write units DynamoDB reports it consumed.
    Committed { write_units: f64 },
    /// Cancelled: per item, in order, whether its condition failed (at least one did).
    ConditionsFailed(Vec<bool>),
    /// A race or throttling: nothing was written; pause and try again.
    Retry(String),
}

impl Tx {
    /// Whether the `i`-th item's condition failed.
    pub fn failed(conditions: &[bool], i: usize) -> bool {
        conditions.get(i).copied().unwrap_or(false)
    }
}

/// Runs one `TransactWriteItems`. An item that would outgrow DynamoDB's 400 KB is an error
/// here; [`transact_sized`] is for the one caller that can write less instead.
pub async fn transact(client: &Client, items: Vec<TransactWriteItem>) -> Result<Tx, StoreError> {
    match transact_sized(client, items).await? {
        Attempt::Done(tx) => Ok(tx),
        Attempt::TooLarge(_) => Err(StoreError::Dynamo(
            "TransactWriteItems: an item would exceed the 400 KB item limit".into(),
        )),
    }
}

/// How a [`transact_sized`] attempt ended.
#[derive(Debug)]
pub enum Attempt {
    Done(Tx),
    /// Cancelled because an update would grow its item past 400 KB: per item, in order,
    /// whether it was one of those. Nothing was written.
    TooLarge(Vec<bool>),
}

/// Runs one `TransactWriteItems`, telling items grown too large apart from other failures.
pub async fn transact_sized(
    client: &Client,
    items: Vec<TransactWriteItem>,
) -> Result<Attempt, StoreError> {
    let result = client
        .transact_write_items()
        .set_transact_items(Some(items))
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await;
    let err = match result {
        Ok(out) => {
            let write_units = out
                .consumed_capacity()
                .iter()
                .filter_map(|c| c.capacity_units)
                .sum();
            return Ok(Attempt::Done(Tx::Committed { write_units }));
        }
        Err(err) => err,
    };
    if let Some(TransactWriteItemsError::TransactionCanceledException(cancel)) =
        err.as_service_error()
    {
        let codes: Vec<&str> = cancel
            .cancellation_reasons()
            .iter()
            .map(|r| r.code().unwrap_or("None"))
            .collect();
        // A condition that failed is a fact about the data, whatever else happened.
        if codes.contains(&"ConditionalCheckFailed") {
            return Ok(Attempt::Done(Tx::ConditionsFailed(
                codes
                    .iter()
                    .map(|c| *c == "ConditionalCheckFailed")
                    .collect(),
            )));
        }
        // "Item size to update has exceeded the maximum allowed size" (AWS and DynamoDB Local).
        let too_large: Vec<bool> = cancel
            .cancellation_reasons()
            .iter()
            .map(|r| {
                r.code() == Some("ValidationError")
                    && r.message().is_some_and(|m| m.contains("size"))
            })
            .collect();
        if too_large.contains(&true) {
            return Ok(Attempt::TooLarge(too_large));
        }
        if codes.iter().any(|c| is_retryable_code(c)) {
            return Ok(Attempt::Done(Tx::Retry(codes.join(","))));
        }
    }
    if err.code().is_some_and(is_retryable_code) {
        return Ok(Attempt::Done(Tx::Retry(
            err.code().unwrap_or_default().to_owned(),
        )));
    }
    Err(sdk("TransactWriteItems")(err))
}

/// The retry policy of writes that lose races or are throttled: jittered exponential pauses
/// (10 ms doubling to 640 ms), [`Retry::MAX_ATTEMPTS`] attempts in all.
pub struct Retry {
    what: &'static str,
    attempt: u32,
}

impl Retry {
    pub const MAX_ATTEMPTS: u32 = 12;

    /// A policy for the write described by `what` (named in the give-up error).
    pub fn new(what: &'static str) -> Self {
        Retry { what, attempt: 0 }
    }

    /// Whether another attempt may be made.
    pub fn more(&self) -> bool {
        self.attempt < Self::MAX_ATTEMPTS
    }

    /// Counts an attempt that must be repeated and pauses before the next; gives up with
    /// [`StoreError::Contention`] when the attempts are spent.
    pub async fn pause(&mut self) -> Result<(), StoreError> {
        self.attempt += 1;
        if !self.more() {
            return Err(self.exhausted());
        }
        let cap = 10u64 << self.attempt.min(6);
        let jitter = getrandom::u64().unwrap_or(7) % cap;
        tokio::time::sleep(Duration::from_millis(cap / 2 + jitter / 2)).await;
        Ok(())
    }

    /// Counts an attempt that must be repeated at once (the data changed under it: read again).
    pub fn again(&mut self) -> Result<(), StoreError> {
        self.attempt += 1;
        if self.more() {
            Ok(())
        } else {
            Err(self.exhausted())
        }
    }

    pub fn exhausted(&self) -> StoreError {
        StoreError::Contention(self.what.to_owned())
    }
}

/// Runs a transaction of fixed items under the retry policy until it commits or its conditions
/// fail.
pub async fn transact_retrying(
    client: &Client,
    what: &'static str,
    items: Vec<TransactWriteItem>,
) -> Result<Tx, StoreError> {
    let mut retry = Retry::new(what);
    loop {
        match transact(client, items.clone()).await? {
            Tx::Retry(_) => retry.pause().await?,
            done => return Ok(done),
        }
    }
}
