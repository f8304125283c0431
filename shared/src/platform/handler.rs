//! The four shapes of a Lambda handler (an API route, a queue consumer, a scheduled run, a
//! DynamoDB stream consumer) and
//! the macro that turns a route's `async fn -> Result` into the first shape with the one error
//! mapping.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_http::Request;

use crate::platform::app::App;
use crate::platform::error::ApiError;
use crate::platform::http::HttpResponse;

pub type HttpFuture = Pin<Box<dyn Future<Output = HttpResponse> + Send>>;
/// An API Gateway route's function: the request in, the response out (errors already mapped).
pub type HttpHandler = fn(Arc<App>, Request) -> HttpFuture;

pub type SqsFuture = Pin<Box<dyn Future<Output = SqsBatchResponse> + Send>>;
/// A queue consumer: a batch in, the ids of the messages to retry out.
pub type SqsHandler = fn(Arc<App>, SqsEvent) -> SqsFuture;

/// One firing of an EventBridge schedule: the time the schedule names (the event's `time`), so
/// two runs of the same firing — Lambda retries an asynchronous invocation — decide alike.
#[derive(Clone, Debug)]
pub struct Tick {
    pub at: chrono::DateTime<chrono::Utc>,
    /// The EventBridge event id (`local` when the local runner fires it).
    pub id: String,
}

pub type ScheduleFuture = Pin<Box<dyn Future<Output = Result<(), ApiError>> + Send>>;
/// A scheduled function: a firing in, done or failed out (Lambda retries a failed asynchronous
/// invocation twice, then hands the event to the function's dead-letter queue).
pub type ScheduleHandler = fn(Arc<App>, Tick) -> ScheduleFuture;

/// A DynamoDB Streams batch as Lambda delivers it: the fields Meterbell reads.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct StreamBatch {
    #[serde(rename = "Records", default)]
    pub records: Vec<StreamRecord>,
}

#[derive(Clone, Debug, serde::Deserialize)]
pub struct StreamRecord {
    /// `INSERT`, `MODIFY` or `REMOVE`.
    #[serde(rename = "eventName", default)]
    pub event_name: String,
    /// Set on a removal by DynamoDB itself (TTL): type `Service`, principal
    /// `dynamodb.amazonaws.com`.
    #[serde(rename = "userIdentity", default)]
    pub user_identity: Option<StreamIdentity>,
    pub dynamodb: StreamChange,
}

#[derive(Clone, Debug, serde::Deserialize)]
pub struct StreamIdentity {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(rename = "principalId", default)]
    pub principal_id: String,
}

impl StreamRecord {
    /// Whether DynamoDB's TTL removed the item (rather than a caller deleting it).
    pub fn is_ttl_removal(&self) -> bool {
        self.event_name == "REMOVE"
            && self
                .user_identity
                .as_ref()
                .is_some_and(|i| i.kind == "Service" && i.principal_id == "dynamodb.amazonaws.com")
    }
}

#[derive(Clone, Debug, serde::Deserialize)]
pub struct StreamChange {
    #[serde(rename = "SequenceNumber")]
    pub sequence_number: String,
    /// The item before the change, in DynamoDB's JSON (`{"pk": {"S": "..."}, ...}`).
    #[serde(rename = "OldImage", default)]
    pub old_image: Option<serde_json::Map<String, serde_json::Value>>,
}

/// The partial-batch answer of a stream consumer: Lambda retries from the first failed record.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct StreamResponse {
    #[serde(rename = "batchItemFailures")]
    pub batch_item_failures: Vec<StreamFailure>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct StreamFailure {
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: String,
}

pub type StreamFuture = Pin<Box<dyn Future<Output = StreamResponse> + Send>>;
/// A DynamoDB Streams consumer: a batch in, the first record to retry out.
pub type StreamHandler = fn(Arc<App>, StreamBatch) -> StreamFuture;

/// Declares `pub fn $name(app, req) -> HttpFuture` running `$body(&app, &req)` and mapping its
/// error to the JSON error response, so each handler body is plain `async fn -> Result`.
macro_rules! http_handler {
    ($(#[$meta:meta])* $name:ident => $body:path) => {
        $(#[$meta])*
        pub fn $name(
            app: std::sync::Arc<$crate::App>,
            req: lambda_http::Request,
        ) -> $crate::platform::handler::HttpFuture {
            Box::pin(async move {
                let result = $body(&app, &req).await;
                $crate::platform::http::respond(&app, result)
            })
        }
    };
}
pub(crate) use http_handler;
