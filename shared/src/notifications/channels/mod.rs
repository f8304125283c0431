//! How a notification leaves the inbox: each channel in one place, its message format and its
//! sender (an SQS consumer) side by side.

pub mod email;
pub mod webhook;
