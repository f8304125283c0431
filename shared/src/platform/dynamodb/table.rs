//! One table of a store: the client and the table name together, with the request shapes every
//! store repeats (a consistent read of one item, an update or put of one item, a Query).

use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::Client;

use super::attrs::s;
use super::error::sdk;
use super::keys::{PK, SK};
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
}
