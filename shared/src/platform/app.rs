//! Everything a handler borrows, built once per process: configuration and the token verifier
//! at cold start; the AWS clients at cold start too (`MB_AWS_CLIENTS=init`, the default) or on
//! first use (`first-use`).
//!
//! Why at init: loading the SDK configuration builds the HTTPS client, which reads the platform's
//! trust store. Lambda runs the init phase with a full CPU boost, while a 256 MB function gets a
//! fraction of a core during a request; the caller of a cold function waits for init and its
//! first request either way, so the work is cheapest where the CPU is. `make bench` prints both
//! ways (README, "Figures"). Secrets named by `<NAME>_ARN` are read here too, once.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::OnceCell;

use crate::platform::auth::Verifier;
use crate::platform::config::{secret_references, Config, ConfigError};

/// When a deployed function builds its AWS clients: in Lambda's init phase, or when a request
/// first needs one. Environment variable `MB_AWS_CLIENTS` (`init`, the default, or `first-use`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientsAt {
    Init,
    FirstUse,
}

impl ClientsAt {
    pub fn from_env() -> Result<Self, ConfigError> {
        match std::env::var("MB_AWS_CLIENTS")
            .ok()
            .as_deref()
            .map(str::trim)
        {
            None | Some("") | Some("init") => Ok(Self::Init),
            Some("first-use") => Ok(Self::FirstUse),
            Some(other) => Err(ConfigError(format!(
                "MB_AWS_CLIENTS must be init or first-use, not {other:?}"
            ))),
        }
    }
}

async fn load_sdk() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// Reads each `(setting, secret ARN)` from Secrets Manager, concurrently: the secret's
/// `SecretString` is the setting's value.
pub async fn read_secrets(
    client: &aws_sdk_secretsmanager::Client,
    refs: &[(&'static str, String)],
) -> Result<HashMap<&'static str, String>, ConfigError> {
    let reads = refs.iter().map(|(name, arn)| async move {
        let out = client
            .get_secret_value()
            .secret_id(arn)
            .send()
            .await
            .map_err(|e| {
                ConfigError(format!(
                    "{name}: cannot read secret {arn}: {}",
                    aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
                ))
            })?;
        let value = out
            .secret_string()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                ConfigError(format!(
                    "{name}: secret {arn} has no SecretString (store the value as text)"
                ))
            })?;
        Ok::<_, ConfigError>((*name, value.to_owned()))
    });
    Ok(futures::future::try_join_all(reads)
        .await?
        .into_iter()
        .collect())
}

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
    /// The process environment, AWS clients from the default credential and region chain (and
    /// `AWS_ENDPOINT_URL_*`) when first used. Secrets named by `<NAME>_ARN` are not read: a
    /// deployed function uses [`App::start`].
    pub fn from_env() -> Result<Arc<Self>, ConfigError> {
        let config = Config::from_env()?;
        let verifier = Verifier::new(&config.jwt)?;
        Ok(Arc::new(App {
            config,
            verifier,
            clients: OnceCell::new(),
        }))
    }

    /// What a deployed function does at cold start: the configuration from its environment, the
    /// secrets it names (`JWT_SECRET_ARN`, `CURSOR_SECRET_ARN`) read from Secrets Manager once,
    /// and the AWS clients built now or on first use.
    pub async fn start(clients_at: ClientsAt) -> Result<Arc<Self>, ConfigError> {
        Self::start_with(|name| std::env::var(name).ok(), None, clients_at).await
    }

    /// [`App::start`] reading settings through `lookup`, and with `sdk` when given (tests point
    /// it at the emulators).
    pub async fn start_with(
        lookup: impl Fn(&str) -> Option<String>,
        sdk: Option<aws_config::SdkConfig>,
        clients_at: ClientsAt,
    ) -> Result<Arc<Self>, ConfigError> {
        let refs = secret_references(&lookup)?;
        let sdk = match sdk {
            Some(sdk) => Some(sdk),
            None if !refs.is_empty() || clients_at == ClientsAt::Init => Some(load_sdk().await),
            None => None,
        };
        let secrets = match &sdk {
            Some(sdk) if !refs.is_empty() => {
                read_secrets(&aws_sdk_secretsmanager::Client::new(sdk), &refs).await?
            }
            _ => HashMap::new(),
        };
        let config =
            Config::from_lookup(|name| secrets.get(name).cloned().or_else(|| lookup(name)))?;
        match sdk {
            // Loaded anyway (for the secrets, or to build the clients at init): build them now.
            Some(sdk) => Self::new(config, &sdk),
            None => {
                let verifier = Verifier::new(&config.jwt)?;
                Ok(Arc::new(App {
                    config,
                    verifier,
                    clients: OnceCell::new(),
                }))
            }
        }
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
                let sdk = load_sdk().await;
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
