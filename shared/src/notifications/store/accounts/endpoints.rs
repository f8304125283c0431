//! A user's webhook endpoints, bounded in number by a counter written in the same transaction.

use aws_sdk_dynamodb::types::AttributeValue;

use super::*;

impl Accounts {
    /// Stores a new endpoint unless the user has the maximum already (counted in the same
    /// transaction, so concurrent creations cannot exceed it).
    pub async fn create_endpoint(&self, e: &Endpoint) -> Result<CreateEndpoint, StoreError> {
        let pk = user_partition(&e.user_id);
        let mut put = Put::builder()
            .table_name(self.table.name())
            .item(PK, s(pk.clone()))
            .item(SK, s(webhook_sk(&e.id)))
            .item("id", s(e.id.clone()))
            .item("user_id", s(e.user_id.to_string()))
            .item("url", s(e.url.clone()))
            .item("secret", s(e.secret.clone()))
            .item("enabled", flag(e.enabled))
            .item("created_at", time(e.created_at))
            .condition_expression("attribute_not_exists(pk)");
        if let Some(d) = &e.description {
            put = put.item("description", s(d.clone()));
        }
        if let Some(types) = &e.types {
            put = put.item("types", types_attr(types));
        }
        let count = built(
            Update::builder()
                .table_name(self.table.name())
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
        match transact_retrying(self.table.client(), "creating a webhook endpoint", items).await? {
            Tx::ConditionsFailed(failed) if Tx::failed(&failed, 1) => {
                Ok(CreateEndpoint::LimitReached)
            }
            Tx::ConditionsFailed(_) => Err(StoreError::Dynamo("endpoint id collision".into())),
            _ => Ok(CreateEndpoint::Created),
        }
    }

    pub async fn endpoints(&self, user: &UserId) -> Result<Vec<Endpoint>, StoreError> {
        let query = self
            .table
            .query_prefix(user_partition(user), WEBHOOK_PREFIX);
        paging::all(query, "Query webhook endpoints")
            .await?
            .iter()
            .map(Self::parse_endpoint)
            .collect()
    }

    pub async fn endpoint(&self, user: &UserId, id: &str) -> Result<Option<Endpoint>, StoreError> {
        let out_item = self
            .table
            .get(
                user_partition(user),
                webhook_sk(id),
                "GetItem webhook endpoint",
            )
            .await?;
        out_item.as_ref().map(Self::parse_endpoint).transpose()
    }

    fn parse_endpoint(item: &Item) -> Result<Endpoint, StoreError> {
        Ok(Endpoint {
            id: item.string("id")?.to_owned(),
            user_id: UserId::parse(item.string("user_id")?)
                .map_err(|why| StoreError::Corrupt(format!("endpoint user_id {why}")))?,
            url: item.string("url")?.to_owned(),
            secret: item.string("secret")?.to_owned(),
            description: item.opt_string("description")?.map(str::to_owned),
            enabled: item.flag("enabled")?,
            disabled_reason: item.opt_string("disabled_reason")?.map(str::to_owned),
            created_at: item.time("created_at")?,
            types: match item.get("types") {
                None => None,
                Some(AttributeValue::L(list)) => Some(
                    list.iter()
                        .map(|v| {
                            v.as_s()
                                .ok()
                                .and_then(|t| NotificationType::parse(t))
                                .ok_or_else(|| StoreError::Corrupt(format!("types: {v:?}")))
                        })
                        .collect::<Result<_, _>>()?,
                ),
                Some(other) => return Err(StoreError::Corrupt(format!("types: {other:?}"))),
            },
            previous_secret: match (
                item.opt_string("previous_secret")?,
                item.opt_time("previous_secret_until")?,
            ) {
                (Some(secret), Some(until)) => Some(Rotated {
                    secret: secret.to_owned(),
                    until,
                }),
                _ => None,
            },
            failures: item.opt_int("failures")?.unwrap_or(0),
        })
    }

    /// Applies `change` to the endpoint; `None` when the user has no such endpoint.
    pub async fn change_endpoint(
        &self,
        user: &UserId,
        id: &str,
        change: &EndpointChange,
    ) -> Result<Option<Endpoint>, StoreError> {
        let mut sets = vec![];
        let mut removes = vec![];
        let mut update = self.table.update(user_partition(user), webhook_sk(id));
        match &change.types {
            None => {}
            Some(None) => removes.push("#types"),
            Some(Some(types)) => {
                sets.push("#types = :types");
                update = update.expression_attribute_values(":types", types_attr(types));
            }
        }
        match &change.description {
            None => {}
            Some(None) => removes.push("#desc"),
            Some(Some(d)) => {
                sets.push("#desc = :d");
                update = update.expression_attribute_values(":d", s(d.clone()));
            }
        }
        match change.enabled {
            None => {}
            Some(true) => {
                // Switched back on: its failures are forgiven.
                sets.push("enabled = :t, #failures = :zero");
                removes.push("disabled_reason");
                update = update
                    .expression_attribute_values(":t", flag(true))
                    .expression_attribute_values(":zero", num(0));
            }
            Some(false) => {
                sets.push("enabled = :f, disabled_reason = :why");
                update = update
                    .expression_attribute_values(":f", flag(false))
                    .expression_attribute_values(":why", s("paused by its owner"));
            }
        }
        if let Some(r) = &change.rotated {
            sets.push("secret = :secret, previous_secret = :old, previous_secret_until = :until");
            update = update
                .expression_attribute_values(":secret", s(r.new_secret.clone()))
                .expression_attribute_values(":old", s(r.previous.secret.clone()))
                .expression_attribute_values(":until", time(r.previous.until));
        }
        if sets.is_empty() && removes.is_empty() {
            return self.endpoint(user, id).await;
        }
        let mut expression = String::new();
        if !sets.is_empty() {
            expression.push_str(&format!("SET {}", sets.join(", ")));
        }
        if !removes.is_empty() {
            expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        // Names only where the expression uses them: DynamoDB refuses unused ones.
        for (name, attr) in [
            ("#types", "types"),
            ("#desc", "description"),
            ("#failures", "failures"),
        ] {
            if expression.contains(name) {
                update = update.expression_attribute_names(name, attr);
            }
        }
        let result = update
            .update_expression(expression.trim())
            .condition_expression("attribute_exists(pk)")
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match conditional("UpdateItem webhook endpoint", result)? {
            None => Ok(None),
            Some(out) => out
                .attributes
                .as_ref()
                .map(Self::parse_endpoint)
                .transpose(),
        }
    }

    /// Counts one more failed attempt in a row; the count after it (0 when the endpoint is gone).
    pub async fn count_failure(&self, user: &UserId, id: &str) -> Result<i64, StoreError> {
        let result = self
            .table
            .update(user_partition(user), webhook_sk(id))
            .update_expression("ADD #failures :one")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#failures", "failures")
            .expression_attribute_values(":one", num(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        match conditional("UpdateItem endpoint failures", result)? {
            None => Ok(0),
            Some(out) => out
                .attributes
                .as_ref()
                .map_or(Ok(0), |a| Ok(a.opt_int("failures")?.unwrap_or(0))),
        }
    }

    /// A delivered attempt ends the run of failures.
    pub async fn clear_failures(&self, user: &UserId, id: &str) -> Result<(), StoreError> {
        let result = self
            .table
            .update(user_partition(user), webhook_sk(id))
            .update_expression("SET #failures = :zero")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#failures", "failures")
            .expression_attribute_values(":zero", num(0))
            .send()
            .await;
        conditional("UpdateItem endpoint failures", result)?;
        Ok(())
    }

    /// Deletes an endpoint; `false` when the user has no such endpoint.
    pub async fn delete_endpoint(&self, user: &UserId, id: &str) -> Result<bool, StoreError> {
        let pk = user_partition(user);
        let delete = built(
            Delete::builder()
                .table_name(self.table.name())
                .key(PK, s(pk.clone()))
                .key(SK, s(webhook_sk(id)))
                .condition_expression("attribute_exists(pk)")
                .build(),
        )?;
        let count = built(
            Update::builder()
                .table_name(self.table.name())
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
        match transact_retrying(self.table.client(), "deleting a webhook endpoint", items).await? {
            Tx::ConditionsFailed(_) => Ok(false),
            _ => Ok(true),
        }
    }

    /// Stops deliveries to an endpoint (it answered 410 Gone, or kept failing); `true` when
    /// this call turned it off (it was on).
    pub async fn disable_endpoint(
        &self,
        user: &UserId,
        id: &str,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let result = self
            .table
            .update(user_partition(user), webhook_sk(id))
            .update_expression("SET enabled = :f, disabled_reason = :why, disabled_at = :now")
            .condition_expression("attribute_exists(pk) AND enabled = :t")
            .expression_attribute_values(":f", flag(false))
            .expression_attribute_values(":t", flag(true))
            .expression_attribute_values(":why", s(reason))
            .expression_attribute_values(":now", time(Utc::now()))
            .send()
            .await;
        // Deleted or disabled meanwhile: nothing left to do.
        Ok(conditional("UpdateItem disable endpoint", result)?.is_some())
    }
}

/// What a change of an endpoint sets: each `Some` replaces (an inner `None` clears).
#[derive(Clone, Debug, Default)]
pub struct EndpointChange {
    pub types: Option<Option<Vec<NotificationType>>>,
    pub description: Option<Option<String>>,
    pub enabled: Option<bool>,
    pub rotated: Option<Rotation>,
}

/// A new signing secret, the old one kept signing until `previous.until`.
#[derive(Clone, Debug)]
pub struct Rotation {
    pub new_secret: String,
    pub previous: Rotated,
}

fn types_attr(types: &[NotificationType]) -> AttributeValue {
    AttributeValue::L(types.iter().map(|t| s(t.as_str())).collect())
}
