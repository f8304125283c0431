//! One table of a store: the client and the table name together, with the request shapes every
//! store repeats (a consistent read of one item, an update or put of one item, a Query).

use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::Client;

use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};

use super::attrs::{s, Attrs};
use super::error::sdk;
use super::keys::{PK, SK};
use super::transact::Retry;
use super::{Item, StoreError};

#[derive(Clone, Debug)]
pub struct Table {
    client: Client,
    name: String,
}

impl Table {
    pub fn new(client: Client, name: impl Into<String>) -> Self {
        Table {
            client,
            name: name.into(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The item at `pk`/`sk`, read strongly consistent (a write just made is seen).
    pub async fn get(
        &self,
        pk: impl Into<String>,
        sk: impl Into<String>,
        what: &'static str,
    ) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.name)
            .key(PK, s(pk))
            .key(SK, s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk(what))?;
        Ok(out.item)
    }

    /// An `UpdateItem` of the item at `pk`/`sk`, to be given its expressions.
    pub fn update(&self, pk: impl Into<String>, sk: impl Into<String>) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.name)
            .key(PK, s(pk))
            .key(SK, s(sk))
    }

    /// A `PutItem` into this table, to be given its item.
    pub fn put(&self) -> PutItemFluentBuilder {
        self.client.put_item().table_name(&self.name)
    }

    /// A `Query` of this table, to be given its key condition.
    pub fn query(&self) -> QueryFluentBuilder {
        self.client.query().table_name(&self.name)
    }

    /// A `Query` of the items of partition `pk` whose sort key starts with `prefix`, consistent.
    pub fn query_prefix(
        &self,
        pk: impl Into<String>,
        prefix: impl Into<String>,
    ) -> QueryFluentBuilder {
        self.query()
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":prefix", s(prefix))
            .consistent_read(true)
    }

    /// Up to `limit` sort keys of partition `pk` (strongly consistent, keys only), and whether
    /// more follow.
    pub async fn sort_keys(
        &self,
        pk: impl Into<String>,
        limit: usize,
    ) -> Result<(Vec<String>, bool), StoreError> {
        let out = self
            .query()
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(pk))
            .projection_expression("sk")
            .consistent_read(true)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(sdk("Query sort keys"))?;
        let more = out.last_evaluated_key.is_some_and(|k| !k.is_empty());
        let keys = out
            .items
            .unwrap_or_default()
            .iter()
            .map(|item| item.string(SK).map(str::to_owned))
            .collect::<Result<_, _>>()?;
        Ok((keys, more))
    }

    /// Deletes the items `sks` of partition `pk`: 25 per `BatchWriteItem`, the ones DynamoDB
    /// leaves unprocessed sent again under the retry policy.
    pub async fn delete_items(&self, pk: &str, sks: &[String]) -> Result<(), StoreError> {
        for chunk in sks.chunks(25) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|sk| {
                    let delete = DeleteRequest::builder()
                        .key(PK, s(pk))
                        .key(SK, s(sk))
                        .build()
                        .map_err(|e| StoreError::Dynamo(e.to_string()))?;
                    Ok(WriteRequest::builder().delete_request(delete).build())
                })
                .collect::<Result<_, StoreError>>()?;
            let mut retry = Retry::new("BatchWriteItem deletes");
            while !requests.is_empty() {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.name, requests)
                    .send()
                    .await
                    .map_err(sdk("BatchWriteItem deletes"))?;
                requests = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.name))
                    .unwrap_or_default();
                if !requests.is_empty() {
                    retry.pause().await?;
                }
            }
        }
        Ok(())
    }
}
