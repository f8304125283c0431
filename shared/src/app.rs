//! Everything a handler borrows, built once at cold start: configuration ("expensive" to read),
//! the token verifier, and the AWS clients ("cheap" once the SDK configuration is loaded).

use std::sync::Arc;

use crate::auth::Verifier;
use crate::config::{Config, ConfigError};

pub struct App {
    config: Config,
    verifier: Verifier,
    dynamodb: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
    ses: aws_sdk_ses::Client,
}

impl App {
    /// What a deployed function does at cold start: the process environment and the default
    /// AWS credential and region chain (plus `AWS_ENDPOINT_URL_*` for the local emulators).
    pub async fn from_env() -> Result<Arc<Self>, ConfigError> {
        let config = Config::from_env()?;
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self::new(config, &sdk)
    }

    /// Builds from a configuration and an already-loaded SDK configuration (local runner, tests).
    pub fn new(config: Config, sdk: &aws_config::SdkConfig) -> Result<Arc<Self>, ConfigError> {
        Self::with_clients(
            config,
            aws_sdk_dynamodb::Client::new(sdk),
            aws_sdk_sqs::Client::new(sdk),
            aws_sdk_ses::Client::new(sdk),
        )
    }

    /// Builds from ready clients (the local stack points each at its own emulator).
    pub fn with_clients(
        config: Config,
        dynamodb: aws_sdk_dynamodb::Client,
        sqs: aws_sdk_sqs::Client,
        ses: aws_sdk_ses::Client,
    ) -> Result<Arc<Self>, ConfigError> {
        let verifier = Verifier::new(&config.jwt)?;
        Ok(Arc::new(App {
            config,
            verifier,
            dynamodb,
            sqs,
            ses,
        }))
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    pub fn dynamodb(&self) -> &aws_sdk_dynamodb::Client {
        &self.dynamodb
    }

    pub fn sqs(&self) -> &aws_sdk_sqs::Client {
        &self.sqs
    }

    pub fn ses(&self) -> &aws_sdk_ses::Client {
        &self.ses
    }
}
