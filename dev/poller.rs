//! Runs the template's queue consumers locally as Lambda's SQS event source mapping does:
//! receive up to `BatchSize` messages, hand them over as a real `SqsEvent`, delete the ones the
//! consumer did not report as failed, and leave the failed ones to reappear after the queue's
//! visibility timeout — so the queue's redrive policy moves them to its dead-letter queue.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Result};
use aws_lambda_events::sqs::SqsEvent;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use meterbell::functions::{self as handlers, Handler};
use meterbell::platform::handler::SqsHandler;
use meterbell::App;
use serde_json::json;

use crate::stack::LocalStack;
use crate::template::QueueSource;

pub struct Consumer {
    pub function: String,
    pub queue_url: String,
    pub queue_arn: String,
    pub source: QueueSource,
    pub handler: SqsHandler,
    pub app: Arc<App>,
}

/// One consumer per SQS event of every function in the template.
pub fn consumers(stack: &LocalStack) -> Result<Vec<Consumer>> {
    let mut out = vec![];
    for function in &stack.template.functions {
        for source in &function.queue_sources {
            let handler = match handlers::by_binary(&function.binary) {
                Some(Handler::Sqs(h)) => h,
                _ => {
                    return Err(anyhow!(
                        "{}: no SQS handler for binary {:?}",
                        function.logical_id,
                        function.binary
                    ))
                }
            };
            out.push(Consumer {
                function: function.logical_id.clone(),
                queue_url: stack.queue_url(&source.queue)?.to_owned(),
                queue_arn: stack
                    .resolver
                    .attributes
                    .get(&format!("{}.Arn", source.queue))
                    .cloned()
                    .unwrap_or_default(),
                source: source.clone(),
                handler,
                app: stack.app_for(function)?,
            });
        }
    }
    Ok(out)
}

impl Consumer {
    /// Polls until the task is dropped.
    pub async fn run(self, sqs: aws_sdk_sqs::Client) {
        loop {
            match self.poll_once(&sqs, Duration::from_secs(1)).await {
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(function = self.function, error = %e, "polling failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// One receive-invoke-delete round; returns (received, failed).
    pub async fn poll_once(
        &self,
        sqs: &aws_sdk_sqs::Client,
        wait: Duration,
    ) -> Result<(usize, usize)> {
        let received = sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(self.source.batch_size.clamp(1, 10) as i32)
            .wait_time_seconds(wait.as_secs() as i32)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| anyhow!(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok((0, 0));
        }
        let records: Vec<_> = messages
            .iter()
            .map(|m| {
                let attributes: serde_json::Map<String, serde_json::Value> = m
                    .attributes
                    .iter()
                    .flatten()
                    .map(|(k, v)| (k.as_str().to_owned(), json!(v)))
                    .collect();
                let message_attributes: serde_json::Map<String, serde_json::Value> = m
                    .message_attributes
                    .iter()
                    .flatten()
                    .map(|(k, v)| {
                        (k.clone(), json!({"stringValue": v.string_value, "dataType": v.data_type, "stringListValues": [], "binaryListValues": []}))
                    })
                    .collect();
                json!({
                    "messageId": m.message_id,
                    "receiptHandle": m.receipt_handle,
                    "body": m.body,
                    "attributes": attributes,
                    "messageAttributes": message_attributes,
                    "md5OfBody": m.md5_of_body,
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.queue_arn,
                    "awsRegion": "us-east-1",
                })
            })
            .collect();
        let event: SqsEvent = serde_json::from_value(json!({ "Records": records }))?;
        let response = (self.handler)(self.app.clone(), event).await;
        let ids: HashSet<&str> = messages
            .iter()
            .filter_map(|m| m.message_id.as_deref())
            .collect();
        let mut failed: HashSet<String> = response
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect();
        if !self.source.report_batch_item_failures && !failed.is_empty() {
            tracing::warn!(
                function = self.function,
                "failures reported without ReportBatchItemFailures; Lambda ignores them"
            );
            failed.clear();
        }
        // An id that is not in the batch makes Lambda treat the whole batch as failed.
        if failed.iter().any(|id| !ids.contains(id.as_str())) {
            failed = ids.iter().map(|s| s.to_string()).collect();
        }
        let done: Vec<DeleteMessageBatchRequestEntry> = messages
            .iter()
            .filter(|m| {
                m.message_id
                    .as_deref()
                    .is_some_and(|id| !failed.contains(id))
            })
            .enumerate()
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(format!("m{i}"))
                    .set_receipt_handle(m.receipt_handle.clone())
                    .build()
                    .ok()
            })
            .collect();
        if !done.is_empty() {
            sqs.delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(done))
                .send()
                .await
                .map_err(|e| anyhow!(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
        }
        if !failed.is_empty() {
            tracing::warn!(
                function = self.function,
                failed = failed.len(),
                "messages left for retry"
            );
        }
        Ok((messages.len(), failed.len()))
    }
}
