//! Everything a handler borrows, built once per process: configuration and the token verifier
//! at cold start, the AWS clients on first use.
//!
//! Why the clients wait: loading the SDK configuration builds the HTTPS client, which reads the
//! platform's trust store; done at init that was three quarters of our cold start, while a
//! request that is refused (bad token, bad parameter) never needs AWS at all.

use std::sync::Arc;

use tokio::sync::OnceCell;

use crate::platform::auth::Verifier;
use crate::platform::config::{Config, ConfigError};

#[derive(Clone)]
struct Clients {
    dynamodb: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
    ses: aws_sdk_ses::Client,
}

pub struct App {
    config: Config,
    verifier: Verifier,
    clients: OnceCell<Clients>,
}

impl App {
    /// What a deployed function does at cold start: the process environment; AWS clients come
    /// from the default credential and region chain (and `AWS_ENDPOINT_URL_*`) when first used.
    pub fn from_env() -> Result<Arc<Self>, ConfigError> {
        let config = Config::from_env()?;
        let verifier = Verifier::new(&config.jwt)?;
        Ok(Arc::new(App {
            config,
            verifier,
            clients: OnceCell::new(),
        }))
    }

    /// Builds from a configuration and an already-loaded SDK configuration.
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
        let clients = OnceCell::new_with(Some(Clients { dynamodb, sqs, ses }));
        Ok(Arc::new(App {
            config,
            verifier,
            clients,
        }))
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    async fn clients(&self) -> &Clients {
        self.clients
            .get_or_init(|| async {
                let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                Clients {
                    dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
                    sqs: aws_sdk_sqs::Client::new(&sdk),
                    ses: aws_sdk_ses::Client::new(&sdk),
                }
            })
            .await
    }

    pub async fn dynamodb(&self) -> &aws_sdk_dynamodb::Client {
        &self.clients().await.dynamodb
    }

    pub async fn sqs(&self) -> &aws_sdk_sqs::Client {
        &self.clients().await.sqs
    }

    pub async fn ses(&self) -> &aws_sdk_ses::Client {
        &self.clients().await.ses
    }
}
