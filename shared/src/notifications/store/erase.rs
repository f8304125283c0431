//! Erasing a user from the notifications tables: their whole partition of NotificationsTable
//! (notifications, counters, job records) and of AccountsTable (preferences, webhook endpoints,
//! the delivery log and delivery claims, deliveries waiting for a digest or quiet hours and their
//! due records — the due index entries go with them), a page at a time.

use crate::platform::domain::UserId;
use crate::platform::dynamodb::keys::{
    user_partition, NOTIF_PREFIX, PENDING_PREFIX, PREFS_SK, WEBHOOK_PREFIX,
};
use crate::platform::dynamodb::StoreError;

use super::{Accounts, Notifications};

/// What the user holds in the notifications tables, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NotificationsInventory {
    pub notifications: u64,
    pub preferences: u64,
    pub webhook_endpoints: u64,
    pub delivery_attempts: u64,
    /// Emails and webhooks waiting for a digest or for quiet hours to end.
    pub waiting_deliveries: u64,
    /// Counters, job records and delivery claims: the bookkeeping of the above.
    pub bookkeeping: u64,
}

/// Counts the sort keys of a partition by what they are.
fn tally(inv: &mut NotificationsInventory, sk: &str) {
    if sk.starts_with(NOTIF_PREFIX) {
        inv.notifications += 1;
    } else if sk == PREFS_SK {
        inv.preferences += 1;
    } else if sk.starts_with(WEBHOOK_PREFIX) {
        inv.webhook_endpoints += 1;
    } else if sk.starts_with("DELIVERY#") {
        inv.delivery_attempts += 1;
    } else if sk.starts_with(PENDING_PREFIX) {
        inv.waiting_deliveries += 1;
    } else {
        inv.bookkeeping += 1;
    }
}

const PAGE: usize = 1_000;

impl Notifications {
    pub async fn inventory(
        &self,
        user: &UserId,
        inv: &mut NotificationsInventory,
    ) -> Result<(), StoreError> {
        count_partition(&self.table, user, inv).await
    }

    /// Deletes up to `limit` items of the user's partition; `true` once it is empty.
    pub async fn erase_page(&self, user: &UserId, limit: usize) -> Result<bool, StoreError> {
        erase_page(&self.table, user, limit).await
    }
}

impl Accounts {
    pub async fn inventory(
        &self,
        user: &UserId,
        inv: &mut NotificationsInventory,
    ) -> Result<(), StoreError> {
        count_partition(&self.table, user, inv).await
    }

    /// Deletes up to `limit` items of the user's partition; `true` once it is empty.
    pub async fn erase_page(&self, user: &UserId, limit: usize) -> Result<bool, StoreError> {
        erase_page(&self.table, user, limit).await
    }
}

async fn count_partition(
    table: &crate::platform::dynamodb::Table,
    user: &UserId,
    inv: &mut NotificationsInventory,
) -> Result<(), StoreError> {
    let query = table
        .query()
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            crate::platform::dynamodb::attrs::s(user_partition(user)),
        )
        .projection_expression("sk")
        .consistent_read(true)
        .limit(PAGE as i32);
    for item in crate::platform::dynamodb::paging::all(query, "Query partition to count").await? {
        use crate::platform::dynamodb::Attrs;
        tally(inv, item.string(crate::platform::dynamodb::keys::SK)?);
    }
    Ok(())
}

async fn erase_page(
    table: &crate::platform::dynamodb::Table,
    user: &UserId,
    limit: usize,
) -> Result<bool, StoreError> {
    let pk = user_partition(user);
    let (keys, more) = table.sort_keys(pk.clone(), limit).await?;
    table.delete_items(&pk, &keys).await?;
    Ok(!more && keys.len() < limit)
}
