//! Query paging: every page of a Query, each one starting where the previous ended, as a stream
//! a store can stop reading whenever it has enough.

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use futures::{Stream, TryStreamExt};

use super::attrs::Item;
use super::error::sdk;
use super::StoreError;

/// One page: its items and the read units DynamoDB reports it consumed (when asked for).
pub struct QueryPage {
    pub items: Vec<Item>,
    /// Items the page matched (with `Select::Count`, the only answer).
    pub count: i32,
    pub read_units: f64,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Item>,
}

/// The pages of `query`, lazily: nothing is read past the page the caller stops at.
pub fn pages(
    query: QueryFluentBuilder,
    what: &'static str,
) -> impl Stream<Item = Result<QueryPage, StoreError>> {
    futures::stream::try_unfold(Some(None), move |state: Option<Option<Item>>| {
        let query = query.clone();
        async move {
            let Some(start) = state else {
                return Ok(None);
            };
            let out = query
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(sdk(what))?;
            let read_units = super::units(out.consumed_capacity());
            let next = out.last_evaluated_key.filter(|k| !k.is_empty());
            let page = QueryPage {
                count: out.count,
                items: out.items.unwrap_or_default(),
                read_units,
                next: next.clone(),
            };
            Ok(Some((page, next.map(Some))))
        }
    })
}

/// Every item `query` matches.
pub async fn all(query: QueryFluentBuilder, what: &'static str) -> Result<Vec<Item>, StoreError> {
    let pages: Vec<QueryPage> = pages(query, what).try_collect().await?;
    Ok(pages.into_iter().flat_map(|p| p.items).collect())
}
