//! `notification-expiry`, the consumer of NotificationsTable's stream: when DynamoDB's TTL removes
//! a notification (after `RetentionDays`), its counters — unread and total, per type — are
//! corrected once (`store::inbox::expiry`). Removals by callers (the delete route, which corrects
//! the counters itself) and every other change are ignored; the template's filter keeps most of
//! them from invoking the function at all.

use std::sync::Arc;

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::notifications::notification::NotificationType;
use crate::notifications::store;
use crate::platform::app::App;
use crate::platform::domain::UserId;
use crate::platform::dynamodb::keys::NOTIF_PREFIX;
use crate::platform::handler::{StreamBatch, StreamFailure, StreamFuture, StreamResponse};

/// What an expired notification's old image says: whose, which, what type, read or not.
#[derive(Debug, PartialEq)]
pub struct Expired {
    pub user: UserId,
    pub id: Uuid,
    pub kind: NotificationType,
    pub is_read: bool,
}

fn text<'a>(image: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    image.get(name)?.get("S")?.as_str()
}

/// The notification an old image holds; `None` for any other item (a counters item, a job
/// record, a marker), and an error for a notification that cannot be read.
pub fn expired(image: &Map<String, Value>) -> Result<Option<Expired>, String> {
    let Some(id) = text(image, "sk").and_then(|sk| sk.strip_prefix(NOTIF_PREFIX)) else {
        return Ok(None);
    };
    let user = text(image, "pk")
        .and_then(|pk| pk.strip_prefix("USER#"))
        .ok_or("the notification has no USER# partition")?;
    Ok(Some(Expired {
        user: UserId::parse(user).map_err(|e| format!("user id {e}"))?,
        id: Uuid::parse_str(id).map_err(|e| format!("notification id: {e}"))?,
        kind: text(image, "type")
            .and_then(NotificationType::parse)
            .ok_or("the notification has no known type")?,
        is_read: image
            .get("is_read")
            .and_then(|v| v.get("BOOL"))
            .and_then(Value::as_bool)
            .ok_or("the notification has no is_read")?,
    }))
}

/// The stream consumer. Records are handled in order; the first that fails is reported (Lambda
/// retries from it, and the ones after it are counted once whatever happens, by their markers).
pub fn expiry(app: Arc<App>, batch: StreamBatch) -> StreamFuture {
    Box::pin(async move {
        let mut response = StreamResponse::default();
        let inbox = match store::inbox(&app).await {
            Ok(i) => i,
            Err(e) => {
                tracing::error!(error = %e, "no notifications table; the batch is retried");
                response.batch_item_failures = batch
                    .records
                    .first()
                    .map(|r| StreamFailure {
                        item_identifier: r.dynamodb.sequence_number.clone(),
                    })
                    .into_iter()
                    .collect();
                return response;
            }
        };
        let mut counted = 0;
        for record in &batch.records {
            if !record.is_ttl_removal() {
                continue;
            }
            let Some(image) = &record.dynamodb.old_image else {
                continue;
            };
            let n = match expired(image) {
                Ok(Some(n)) => n,
                Ok(None) => continue,
                Err(why) => {
                    // Not ours to fix by retrying: log it and go on.
                    tracing::error!(
                        why,
                        sequence = record.dynamodb.sequence_number,
                        "unreadable expired notification skipped"
                    );
                    continue;
                }
            };
            match inbox
                .count_out_expired(&n.user, &n.id, n.kind, n.is_read)
                .await
            {
                Ok(outcome) => {
                    counted += 1;
                    tracing::info!(user = %n.user, notification = %n.id, outcome = ?outcome, "expired notification counted out");
                }
                Err(e) => {
                    tracing::error!(error = %e, sequence = record.dynamodb.sequence_number, "counting out failed; retried from here");
                    response.batch_item_failures.push(StreamFailure {
                        item_identifier: record.dynamodb.sequence_number.clone(),
                    });
                    break;
                }
            }
        }
        tracing::info!(records = batch.records.len(), counted, "expiry batch");
        response
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_old_image_names_the_expired_notification() {
        let image = json!({
            "pk": {"S": "USER#u1"}, "sk": {"S": "NOTIF#019ab3c4-5d6e-7f80-9a1b-2c3d4e5f6a7b"},
            "type": {"S": "warning"}, "is_read": {"BOOL": false}, "expires_at": {"N": "1"}
        });
        let n = expired(image.as_object().unwrap()).unwrap().unwrap();
        assert_eq!(n.user.as_str(), "u1");
        assert_eq!(n.kind, NotificationType::Warning);
        assert!(!n.is_read);
        let counters = json!({"pk": {"S": "USER#u1"}, "sk": {"S": "COUNTERS"}});
        assert_eq!(expired(counters.as_object().unwrap()), Ok(None));
        let broken = json!({"pk": {"S": "USER#u1"}, "sk": {"S": "NOTIF#x"}});
        assert!(expired(broken.as_object().unwrap()).is_err());
    }
}
