//! DynamoDB adapters.

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;

use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};

use super::keys::{notification_sk, user_partition, COUNTERS_SK, PK, SK, UNREAD_ATTR};
use super::{NotificationCounts, StoreError};
use crate::domain::UserId;
use crate::notification::Notification;

/// The NotificationsTable.
#[derive(Clone)]
pub struct Notifications {
    client: Client,
    table: String,
}

impl Notifications {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Notifications {
            client,
            table: table.into(),
        }
    }
}

impl Notifications {
    /// Stores a notification and counts it as unread in one transaction, so the counter
    /// never disagrees with the items. `expires_at` is the TTL (epoch seconds).
    pub async fn insert(&self, n: &Notification, expires_at: i64) -> Result<(), StoreError> {
        let pk = user_partition(&n.user_id);
        let mut put = Put::builder()
            .table_name(&self.table)
            .item(PK, AttributeValue::S(pk.clone()))
            .item(SK, AttributeValue::S(notification_sk(&n.id)))
            .item("id", AttributeValue::S(n.id.to_string()))
            .item("user_id", AttributeValue::S(n.user_id.to_string()))
            .item("type", AttributeValue::S(n.kind.as_str().to_owned()))
            .item("title", AttributeValue::S(n.title.clone()))
            .item("message", AttributeValue::S(n.message.clone()))
            .item("is_read", AttributeValue::Bool(n.is_read))
            .item("created_at", AttributeValue::S(n.created_at.to_rfc3339()))
            .item("expires_at", AttributeValue::N(expires_at.to_string()))
            .condition_expression("attribute_not_exists(pk)");
        if let Some(data) = &n.data {
            put = put.item("data", AttributeValue::S(data.to_string()));
        }
        let put = put.build().map_err(|e| StoreError::Dynamo(e.to_string()))?;
        let mut items = vec![TransactWriteItem::builder().put(put).build()];
        if !n.is_read {
            let update = Update::builder()
                .table_name(&self.table)
                .key(PK, AttributeValue::S(pk))
                .key(SK, AttributeValue::S(COUNTERS_SK.to_owned()))
                .update_expression("ADD #u :one")
                .expression_attribute_names("#u", UNREAD_ATTR)
                .expression_attribute_values(":one", AttributeValue::N("1".into()))
                .build()
                .map_err(|e| StoreError::Dynamo(e.to_string()))?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map_err(|e| {
                StoreError::Dynamo(format!(
                    "TransactWriteItems notification: {}",
                    aws_sdk_dynamodb::error::DisplayErrorContext(e)
                ))
            })?;
        Ok(())
    }
}

impl NotificationCounts for Notifications {
    async fn unread_count(&self, user: &UserId) -> Result<u64, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, AttributeValue::S(user_partition(user)))
            .key(SK, AttributeValue::S(COUNTERS_SK.to_owned()))
            .projection_expression("#u")
            .expression_attribute_names("#u", UNREAD_ATTR)
            .send()
            .await
            .map_err(|e| {
                StoreError::Dynamo(format!(
                    "GetItem counters: {}",
                    aws_sdk_dynamodb::error::DisplayErrorContext(e)
                ))
            })?;
        match output.item.as_ref().and_then(|item| item.get(UNREAD_ATTR)) {
            None => Ok(0),
            Some(value) => read_count(value),
        }
    }
}

/// A counter attribute: a non-negative whole number.
fn read_count(value: &AttributeValue) -> Result<u64, StoreError> {
    let raw = value
        .as_n()
        .map_err(|_| StoreError::Corrupt(format!("counter is not a number: {value:?}")))?;
    let n: i64 = raw
        .parse()
        .map_err(|_| StoreError::Corrupt(format!("counter is not a whole number: {raw}")))?;
    // A negative counter would be a bug elsewhere; clamp for the reader, log for us.
    if n < 0 {
        tracing::error!(counter = n, "negative unread counter");
    }
    Ok(n.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_that_is_not_a_number_is_reported_as_corrupt() {
        assert!(matches!(
            read_count(&AttributeValue::S("x".into())),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            read_count(&AttributeValue::N("1.5".into())),
            Err(StoreError::Corrupt(_))
        ));
        assert_eq!(read_count(&AttributeValue::N("7".into())).unwrap(), 7);
    }
}
