//! The platform beneath both halves: configuration, identity, HTTP plumbing with the one
//! error-to-status mapping, the app built once per process, the Lambda runners, and one toolkit
//! per AWS service (DynamoDB, SQS).

pub mod app;
pub mod auth;
pub mod config;
pub mod cursor;
pub mod domain;
pub mod dynamodb;
pub mod error;
pub mod handler;
pub mod http;
pub mod lambda;
pub mod names;
pub mod sqs;
