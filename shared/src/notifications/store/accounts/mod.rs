//! The AccountsTable, for notifications: preferences, webhook endpoints and delivery logs.
//!
//! Layout (partition `USER#<user>`):
//! - `PREFS`: `email_address`, `email_<type>` and `webhook_<type>` switches,
//!   `low_credit_threshold` (shown; the copy the check reads is beside the credit totals),
//!   `updated_at`.
//! - `WEBHOOK#<id>`: one endpoint (`url`, `secret`, `enabled`, ...); `WEBHOOKS` counts them.
//! - `DELIVERY#<notification>#<uuid v7>`: one delivery attempt, in attempt order.
//! - `DELIVERED#<notification>#<target>`: the notification reached that target; a repeated
//!   queue message finds it and sends nothing.
//! - `PENDING#...`, `DUE#...`, `DIGESTSENT#...`: deliveries waiting for a digest or for quiet
//!   hours to end (see `pending`).

mod deliveries;
mod endpoints;
pub use endpoints::{EndpointChange, Rotation};
mod pending;
pub use pending::{DigestClaim, DueBatch, DueRecord, Joined, Pending, DUE_SHARDS};
mod preferences;
pub use preferences::{ReportClaim, ReportSubscriber};

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{Delete, Put, ReturnValue, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::notifications::channels::Channel;
use crate::notifications::delivery::{Attempt, AttemptStatus};
use crate::notifications::notification::NotificationType;
use crate::notifications::preferences::{CheckedUpdate, EmailAddress, Preferences};
use crate::platform::domain::UserId;
use crate::platform::dynamodb::attrs::{flag, num, s, time};
use crate::platform::dynamodb::error::{
    built, conditional, is_condition_failed, is_retryable, sdk,
};
use crate::platform::dynamodb::keys::{
    delivered_sk, delivery_prefix, delivery_sk, user_partition, webhook_sk, PK, PREFS_SK, SK,
    WEBHOOK_COUNT_SK, WEBHOOK_PREFIX,
};
use crate::platform::dynamodb::paging;
use crate::platform::dynamodb::transact::{transact_retrying, Tx};
use crate::platform::dynamodb::{Attrs, Item, StoreError, Table};

fn switch_attr(channel: Channel, kind: NotificationType) -> String {
    format!("{}_{}", channel.as_str(), kind.as_str())
}

/// A webhook endpoint of one user.
#[derive(Clone, Debug, PartialEq)]
pub struct Endpoint {
    /// `wh_` and 32 hex digits.
    pub id: String,
    pub user_id: UserId,
    pub url: String,
    /// `whsec_...`; shown to the user once, at creation.
    pub secret: String,
    pub description: Option<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    /// The notification types it receives; `None`: all of them.
    pub types: Option<Vec<NotificationType>>,
    /// The secret before the last rotation, still signing (beside the new one) until `until`.
    pub previous_secret: Option<Rotated>,
    /// Failed delivery attempts in a row (a delivered one resets it).
    pub failures: i64,
}

/// A rotated-out secret and how long it keeps signing.
#[derive(Clone, Debug, PartialEq)]
pub struct Rotated {
    pub secret: String,
    pub until: DateTime<Utc>,
}

impl Endpoint {
    /// Whether a notification of `kind` goes to this endpoint.
    pub fn accepts(&self, kind: NotificationType) -> bool {
        self.types.as_ref().is_none_or(|t| t.contains(&kind))
    }

    /// The secrets that sign a delivery at `now`: the current one, then the previous one while
    /// its overlap lasts.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<&str> {
        let mut out = vec![self.secret.as_str()];
        if let Some(r) = self.previous_secret.as_ref().filter(|r| r.until > now) {
            out.push(r.secret.as_str());
        }
        out
    }

    pub fn new_id() -> String {
        format!("wh_{}", Uuid::now_v7().simple())
    }

    /// Whether `raw` has the shape of an endpoint id.
    pub fn is_id(raw: &str) -> bool {
        raw.strip_prefix("wh_")
            .is_some_and(|hex| hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit()))
    }
}

/// Who may deliver a notification to one target now.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// This invocation: send, then mark delivered (or release).
    Claimed,
    /// Nobody: it was delivered.
    Delivered,
    /// Another invocation, right now: try again later.
    Busy,
}

#[derive(Debug, PartialEq, Eq)]
pub enum CreateEndpoint {
    Created,
    /// The user has [`Accounts::MAX_ENDPOINTS`] already.
    LimitReached,
}

/// The AccountsTable.
#[derive(Clone)]
pub struct Accounts {
    pub(in crate::notifications::store) table: Table,
}

impl Accounts {
    pub const MAX_ENDPOINTS: i64 = 10;

    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Accounts {
            table: Table::new(client, table),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_ids_have_one_shape() {
        let id = Endpoint::new_id();
        assert!(Endpoint::is_id(&id), "{id}");
        for bad in [
            "",
            "wh_",
            "wh_xyz",
            "WH_0123456789abcdef0123456789abcdef",
            "../x",
        ] {
            assert!(!Endpoint::is_id(bad), "{bad}");
        }
    }
}
