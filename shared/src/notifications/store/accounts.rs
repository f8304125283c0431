//! The AccountsTable, for notifications: preferences, webhook endpoints and delivery logs.
//!
//! Layout (partition `USER#<user>`):
//! - `PREFS`: `email_address`, `email_<type>` and `webhook_<type>` switches, `updated_at`.
//! - `WEBHOOK#<id>`: one endpoint (`url`, `secret`, `enabled`, ...); `WEBHOOKS` counts them.
//! - `DELIVERY#<notification>#<uuid v7>`: one delivery attempt, in attempt order.
//! - `DELIVERED#<notification>#<target>`: the notification reached that target; a repeated
//!   queue message finds it and sends nothing.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnValue, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, SecondsFormat, Utc};
use uuid::Uuid;

use crate::notifications::delivery::{Attempt, AttemptStatus};
use crate::notifications::notification::NotificationType;
use crate::notifications::preferences::{Channel, CheckedUpdate, EmailAddress, Preferences};
use crate::notifications::store::inbox::backoff;
use crate::platform::domain::UserId;
use crate::platform::dynamodb::keys::{
    delivered_sk, delivery_prefix, delivery_sk, user_partition, webhook_sk, PK, PREFS_SK, SK,
    WEBHOOK_COUNT_SK, WEBHOOK_PREFIX,
};
use crate::platform::dynamodb::StoreError;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn num(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn time(at: DateTime<Utc>) -> AttributeValue {
    s(at.to_rfc3339_opts(SecondsFormat::Micros, true))
}

fn dynamo<E>(what: &'static str) -> impl FnOnce(E) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |e| StoreError::Dynamo(format!("{what}: {}", DisplayErrorContext(e)))
}

fn built<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::Dynamo(format!("building a request: {e}")))
}

fn text<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Option<&'a String> {
    item.get(name).and_then(|v| v.as_s().ok())
}

fn parse_time(raw: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| StoreError::Corrupt(format!("not a timestamp: {raw:?}")))
}

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
}

impl Endpoint {
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
    client: Client,
    table: String,
}

impl Accounts {
    pub const MAX_ENDPOINTS: i64 = 10;

    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Accounts {
            client,
            table: table.into(),
        }
    }

    // ------------------------------------------------------------------ preferences

    pub async fn preferences(&self, user: &UserId) -> Result<Preferences, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(user_partition(user)))
            .key(SK, s(PREFS_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(dynamo("GetItem preferences"))?;
        Ok(out
            .item
            .map(|item| Self::parse_preferences(&item))
            .transpose()?
            .unwrap_or_default())
    }

    fn parse_preferences(
        item: &HashMap<String, AttributeValue>,
    ) -> Result<Preferences, StoreError> {
        let mut p = Preferences::default();
        if let Some(raw) = text(item, "email_address") {
            p.email_address = Some(
                EmailAddress::parse(raw)
                    .map_err(|why| StoreError::Corrupt(format!("email_address {why}")))?,
            );
        }
        for channel in Channel::ALL {
            for kind in NotificationType::ALL {
                if let Some(on) = item
                    .get(&switch_attr(channel, kind))
                    .and_then(|v| v.as_bool().ok())
                {
                    match channel {
                        Channel::Email => p.email.set(kind, *on),
                        Channel::Webhook => p.webhook.set(kind, *on),
                    }
                }
            }
        }
        p.updated_at = text(item, "updated_at")
            .map(|r| parse_time(r))
            .transpose()?;
        Ok(p)
    }

    /// Applies `update` in one write (concurrent updates of different fields both stick) and
    /// returns the preferences as stored.
    pub async fn update_preferences(
        &self,
        user: &UserId,
        update: &CheckedUpdate,
    ) -> Result<Preferences, StoreError> {
        let mut sets = vec!["#updated = :now".to_owned()];
        let mut removes = vec![];
        let mut names = HashMap::from([("#updated".to_owned(), "updated_at".to_owned())]);
        let mut values = HashMap::from([(":now".to_owned(), time(Utc::now()))]);
        match &update.email_address {
            None => {}
            Some(None) => {
                names.insert("#email".into(), "email_address".into());
                removes.push("#email".to_owned());
            }
            Some(Some(address)) => {
                names.insert("#email".into(), "email_address".into());
                values.insert(":email".into(), s(address.as_str()));
                sets.push("#email = :email".into());
            }
        }
        for (i, (channel, kind, on)) in update.switches.iter().enumerate() {
            names.insert(format!("#s{i}"), switch_attr(*channel, *kind));
            values.insert(format!(":s{i}"), AttributeValue::Bool(*on));
            sets.push(format!("#s{i} = :s{i}"));
        }
        let mut expression = format!("SET {}", sets.join(", "));
        if !removes.is_empty() {
            expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(user_partition(user)))
            .key(SK, s(PREFS_SK))
            .update_expression(expression)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(dynamo("UpdateItem preferences"))?;
        Self::parse_preferences(&out.attributes.unwrap_or_default())
    }

    // ------------------------------------------------------------------ webhook endpoints

    /// Stores a new endpoint unless the user has the maximum already (counted in the same
    /// transaction, so concurrent creations cannot exceed it).
    pub async fn create_endpoint(&self, e: &Endpoint) -> Result<CreateEndpoint, StoreError> {
        let pk = user_partition(&e.user_id);
        let mut put = Put::builder()
            .table_name(&self.table)
            .item(PK, s(pk.clone()))
            .item(SK, s(webhook_sk(&e.id)))
            .item("id", s(e.id.clone()))
            .item("user_id", s(e.user_id.to_string()))
            .item("url", s(e.url.clone()))
            .item("secret", s(e.secret.clone()))
            .item("enabled", AttributeValue::Bool(e.enabled))
            .item("created_at", time(e.created_at))
            .condition_expression("attribute_not_exists(pk)");
        if let Some(d) = &e.description {
            put = put.item("description", s(d.clone()));
        }
        let count = built(
            Update::builder()
                .table_name(&self.table)
                .key(PK, s(pk))
                .key(SK, s(WEBHOOK_COUNT_SK))
                .update_expression("ADD #n :one")
                .condition_expression("attribute_not_exists(#n) OR #n < :max")
                .expression_attribute_names("#n", "count")
                .expression_attribute_values(":one", num(1))
                .expression_attribute_values(":max", num(Self::MAX_ENDPOINTS))
                .build(),
        )?;
        let items = vec![
            TransactWriteItem::builder()
                .put(built(put.build())?)
                .build(),
            TransactWriteItem::builder().update(count).build(),
        ];
        for attempt in 0..8 {
            match self.transact(items.clone()).await? {
                TxResult::Committed => return Ok(CreateEndpoint::Created),
                TxResult::Conflict => backoff(attempt).await,
                TxResult::ConditionFailed(failed) => {
                    if failed.get(1).copied().unwrap_or(false) {
                        return Ok(CreateEndpoint::LimitReached);
                    }
                    return Err(StoreError::Dynamo("endpoint id collision".into()));
                }
            }
        }
        Err(StoreError::Contention("creating a webhook endpoint".into()))
    }

    pub async fn endpoints(&self, user: &UserId) -> Result<Vec<Endpoint>, StoreError> {
        let mut out = vec![];
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(user_partition(user)))
                .expression_attribute_values(":prefix", s(WEBHOOK_PREFIX))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(dynamo("Query webhook endpoints"))?;
            for item in page.items() {
                out.push(Self::parse_endpoint(item)?);
            }
            match page.last_evaluated_key {
                Some(k) => start = Some(k),
                None => break,
            }
        }
        Ok(out)
    }

    pub async fn endpoint(&self, user: &UserId, id: &str) -> Result<Option<Endpoint>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(user_partition(user)))
            .key(SK, s(webhook_sk(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(dynamo("GetItem webhook endpoint"))?;
        out.item.as_ref().map(Self::parse_endpoint).transpose()
    }

    fn parse_endpoint(item: &HashMap<String, AttributeValue>) -> Result<Endpoint, StoreError> {
        let need = |name: &str| {
            text(item, name)
                .cloned()
                .ok_or_else(|| StoreError::Corrupt(format!("webhook endpoint lacks {name}")))
        };
        Ok(Endpoint {
            id: need("id")?,
            user_id: UserId::parse(&need("user_id")?)
                .map_err(|why| StoreError::Corrupt(format!("endpoint user_id {why}")))?,
            url: need("url")?,
            secret: need("secret")?,
            description: text(item, "description").cloned(),
            enabled: item
                .get("enabled")
                .and_then(|v| v.as_bool().ok())
                .copied()
                .unwrap_or(false),
            disabled_reason: text(item, "disabled_reason").cloned(),
            created_at: parse_time(&need("created_at")?)?,
        })
    }

    /// Deletes an endpoint; `false` when the user has no such endpoint.
    pub async fn delete_endpoint(&self, user: &UserId, id: &str) -> Result<bool, StoreError> {
        let pk = user_partition(user);
        let delete = built(
            Delete::builder()
                .table_name(&self.table)
                .key(PK, s(pk.clone()))
                .key(SK, s(webhook_sk(id)))
                .condition_expression("attribute_exists(pk)")
                .build(),
        )?;
        let count = built(
            Update::builder()
                .table_name(&self.table)
                .key(PK, s(pk))
                .key(SK, s(WEBHOOK_COUNT_SK))
                .update_expression("ADD #n :minus")
                .expression_attribute_names("#n", "count")
                .expression_attribute_values(":minus", num(-1))
                .build(),
        )?;
        let items = vec![
            TransactWriteItem::builder().delete(delete).build(),
            TransactWriteItem::builder().update(count).build(),
        ];
        for attempt in 0..8 {
            match self.transact(items.clone()).await? {
                TxResult::Committed => return Ok(true),
                TxResult::Conflict => backoff(attempt).await,
                TxResult::ConditionFailed(_) => return Ok(false),
            }
        }
        Err(StoreError::Contention("deleting a webhook endpoint".into()))
    }

    /// Stops deliveries to an endpoint (it answered 410 Gone).
    pub async fn disable_endpoint(
        &self,
        user: &UserId,
        id: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(user_partition(user)))
            .key(SK, s(webhook_sk(id)))
            .update_expression("SET enabled = :f, disabled_reason = :why, disabled_at = :now")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":f", AttributeValue::Bool(false))
            .expression_attribute_values(":why", s(reason))
            .expression_attribute_values(":now", time(Utc::now()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) => {
                use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
                match err.into_service_error() {
                    // Deleted meanwhile: nothing left to disable.
                    UpdateItemError::ConditionalCheckFailedException(_) => Ok(()),
                    other => Err(StoreError::Dynamo(format!(
                        "UpdateItem disable endpoint: {}",
                        DisplayErrorContext(other)
                    ))),
                }
            }
        }
    }

    // ------------------------------------------------------------------ delivery log

    pub async fn record_attempt(
        &self,
        user: &UserId,
        a: &Attempt,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(PK, s(user_partition(user)))
            .item(SK, s(delivery_sk(&a.notification_id, &Uuid::now_v7())))
            .item("notification_id", s(a.notification_id.to_string()))
            .item("channel", s(a.channel.as_str()))
            .item("target", s(a.target.clone()))
            .item("attempt", num(a.attempt as i64))
            .item("status", s(a.status.as_str()))
            .item("at", time(a.at))
            .item("expires_at", num(expires_at));
        if let Some(id) = &a.endpoint_id {
            put = put.item("endpoint_id", s(id.clone()));
        }
        if let Some(code) = a.http_status {
            put = put.item("http_status", num(code as i64));
        }
        if let Some(e) = &a.error {
            put = put.item("error", s(e.clone()));
        }
        put.send()
            .await
            .map_err(dynamo("PutItem delivery attempt"))?;
        Ok(())
    }

    /// Every attempt to deliver `notification`, oldest first.
    pub async fn attempts(
        &self,
        user: &UserId,
        notification: &Uuid,
    ) -> Result<Vec<Attempt>, StoreError> {
        let mut out = vec![];
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(user_partition(user)))
                .expression_attribute_values(":prefix", s(delivery_prefix(notification)))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(dynamo("Query delivery attempts"))?;
            for item in page.items() {
                out.push(Self::parse_attempt(item)?);
            }
            match page.last_evaluated_key {
                Some(k) => start = Some(k),
                None => break,
            }
        }
        Ok(out)
    }

    fn parse_attempt(item: &HashMap<String, AttributeValue>) -> Result<Attempt, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("delivery attempt lacks {what}"));
        let number = |name: &str| -> Option<i64> {
            item.get(name)
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse().ok())
        };
        Ok(Attempt {
            notification_id: text(item, "notification_id")
                .and_then(|v| Uuid::parse_str(v).ok())
                .ok_or_else(|| corrupt("notification_id"))?,
            channel: match text(item, "channel").map(String::as_str) {
                Some("email") => Channel::Email,
                Some("webhook") => Channel::Webhook,
                _ => return Err(corrupt("channel")),
            },
            target: text(item, "target")
                .cloned()
                .ok_or_else(|| corrupt("target"))?,
            endpoint_id: text(item, "endpoint_id").cloned(),
            attempt: number("attempt")
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| corrupt("attempt"))?,
            status: text(item, "status")
                .and_then(|v| AttemptStatus::parse(v))
                .ok_or_else(|| corrupt("status"))?,
            http_status: number("http_status").and_then(|n| u16::try_from(n).ok()),
            error: text(item, "error").cloned(),
            at: parse_time(text(item, "at").ok_or_else(|| corrupt("at"))?)?,
        })
    }

    /// Claims the delivery of `notification` to `target` for `lease_seconds`, so that two
    /// copies of one queue message never both send: [`Claim::Delivered`] when it reached the
    /// target already, [`Claim::Busy`] while another invocation holds an unexpired claim.
    pub async fn claim_delivery(
        &self,
        user: &UserId,
        notification: &Uuid,
        target: &str,
        lease_seconds: i64,
        expires_at: i64,
    ) -> Result<Claim, StoreError> {
        let now = Utc::now().timestamp();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(user_partition(user)))
            .key(SK, s(delivered_sk(notification, target)))
            .update_expression("SET #state = :sending, #until = :until, expires_at = :exp")
            .condition_expression(
                "attribute_not_exists(pk) OR (#state <> :delivered AND #until < :now)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#until", "claimed_until")
            .expression_attribute_values(":sending", s("sending"))
            .expression_attribute_values(":delivered", s("delivered"))
            .expression_attribute_values(":now", num(now))
            .expression_attribute_values(":until", num(now + lease_seconds))
            .expression_attribute_values(":exp", num(expires_at))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claim::Claimed),
            Err(err) => {
                use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
                match err.into_service_error() {
                    UpdateItemError::ConditionalCheckFailedException(_) => {}
                    UpdateItemError::TransactionConflictException(_) => return Ok(Claim::Busy),
                    other => {
                        return Err(StoreError::Dynamo(format!(
                            "UpdateItem delivery claim: {}",
                            DisplayErrorContext(other)
                        )))
                    }
                }
                let out = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .key(PK, s(user_partition(user)))
                    .key(SK, s(delivered_sk(notification, target)))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(dynamo("GetItem delivery claim"))?;
                let delivered = out
                    .item
                    .as_ref()
                    .and_then(|i| text(i, "state"))
                    .is_some_and(|state| state == "delivered");
                Ok(if delivered {
                    Claim::Delivered
                } else {
                    Claim::Busy
                })
            }
        }
    }

    /// Records that `notification` reached `target`; later copies of its message send nothing.
    pub async fn mark_delivered(
        &self,
        user: &UserId,
        notification: &Uuid,
        target: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item(PK, s(user_partition(user)))
            .item(SK, s(delivered_sk(notification, target)))
            .item("state", s("delivered"))
            .item("expires_at", num(expires_at))
            .send()
            .await
            .map_err(dynamo("PutItem delivered marker"))?;
        Ok(())
    }

    /// Gives a claim back after a failed attempt, so the retry may claim at once.
    pub async fn release_delivery(
        &self,
        user: &UserId,
        notification: &Uuid,
        target: &str,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(user_partition(user)))
            .key(SK, s(delivered_sk(notification, target)))
            .update_expression("SET #until = :zero")
            .condition_expression("#state = :sending")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#until", "claimed_until")
            .expression_attribute_values(":sending", s("sending"))
            .expression_attribute_values(":zero", num(0))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) => {
                use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
                match err.into_service_error() {
                    UpdateItemError::ConditionalCheckFailedException(_) => Ok(()),
                    other => Err(StoreError::Dynamo(format!(
                        "UpdateItem delivery release: {}",
                        DisplayErrorContext(other)
                    ))),
                }
            }
        }
    }

    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<TxResult, StoreError> {
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(TxResult::Committed),
            Err(err) => match err.into_service_error() {
                TransactWriteItemsError::TransactionCanceledException(e) => {
                    let codes: Vec<&str> = e
                        .cancellation_reasons()
                        .iter()
                        .map(|r| r.code().unwrap_or("None"))
                        .collect();
                    if codes.contains(&"TransactionConflict") {
                        Ok(TxResult::Conflict)
                    } else {
                        Ok(TxResult::ConditionFailed(
                            codes
                                .iter()
                                .map(|c| *c == "ConditionalCheckFailed")
                                .collect(),
                        ))
                    }
                }
                TransactWriteItemsError::TransactionInProgressException(_) => {
                    Ok(TxResult::Conflict)
                }
                other => Err(StoreError::Dynamo(format!(
                    "TransactWriteItems: {}",
                    DisplayErrorContext(other)
                ))),
            },
        }
    }
}

enum TxResult {
    Committed,
    Conflict,
    ConditionFailed(Vec<bool>),
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
