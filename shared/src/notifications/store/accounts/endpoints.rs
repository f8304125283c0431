//! A user's webhook endpoints, bounded in number by a counter written in the same transaction.

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
        })
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

    /// Stops deliveries to an endpoint (it answered 410 Gone).
    pub async fn disable_endpoint(
        &self,
        user: &UserId,
        id: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        let result = self
            .table
            .update(user_partition(user), webhook_sk(id))
            .update_expression("SET enabled = :f, disabled_reason = :why, disabled_at = :now")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":f", flag(false))
            .expression_attribute_values(":why", s(reason))
            .expression_attribute_values(":now", time(Utc::now()))
            .send()
            .await;
        // Deleted meanwhile: nothing left to disable.
        conditional("UpdateItem disable endpoint", result)?;
        Ok(())
    }
}
