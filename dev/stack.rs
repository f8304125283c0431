//! The local stack: AWS clients pointed at the emulators on loopback, and the tables and queues
//! of `template.yaml` created there (idempotently).

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use meterbell::{App, Config};

use crate::template::{Function, Resolver, Table, Template};

/// Where the emulators listen. Read from the same `AWS_ENDPOINT_URL_*` variables the AWS SDK
/// honours, with the `make dev` defaults; never a real AWS endpoint.
#[derive(Clone, Debug)]
pub struct Endpoints {
    pub dynamodb: String,
    pub sqs: String,
    pub ses: String,
}

impl Endpoints {
    pub fn from_env() -> Result<Self> {
        let get =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
        let endpoints = Endpoints {
            dynamodb: get("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000"),
            sqs: get("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:5000"),
            ses: get("AWS_ENDPOINT_URL_SES", "http://127.0.0.1:5000"),
        };
        for url in [&endpoints.dynamodb, &endpoints.sqs, &endpoints.ses] {
            let host = url
                .trim_start_matches("http://")
                .split([':', '/'])
                .next()
                .unwrap_or_default();
            if !(host == "localhost" || host.starts_with("127.") || host == "[::1]") {
                return Err(anyhow!("{url} is not a loopback address; the local stack only talks to local emulators"));
            }
        }
        Ok(endpoints)
    }
}

/// AWS clients for the emulators: fixed dummy credentials, one region.
#[derive(Clone)]
pub struct Clients {
    pub sdk: aws_config::SdkConfig,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub ses: aws_sdk_ses::Client,
}

impl Clients {
    pub fn local(endpoints: &Endpoints) -> Self {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
                aws_sdk_dynamodb::config::Credentials::new(
                    "test",
                    "test",
                    None,
                    None,
                    "meterbell-local",
                ),
            ))
            .build();
        let dynamodb = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&sdk)
                .endpoint_url(&endpoints.dynamodb)
                .build(),
        );
        let sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(&sdk)
                .endpoint_url(&endpoints.sqs)
                .build(),
        );
        let ses = aws_sdk_ses::Client::from_conf(
            aws_sdk_ses::config::Builder::from(&sdk)
                .endpoint_url(&endpoints.ses)
                .build(),
        );
        Clients {
            sdk,
            dynamodb,
            sqs,
            ses,
        }
    }
}

/// The template's resources as they exist on the emulators.
pub struct LocalStack {
    pub template: Template,
    pub resolver: Resolver,
    pub clients: Clients,
}

impl LocalStack {
    /// Creates every table and queue of `template` that does not exist yet.
    /// `overrides` replace parameter defaults, as `sam deploy --parameter-overrides` does.
    pub async fn provision(
        template: Template,
        clients: Clients,
        overrides: &BTreeMap<String, String>,
    ) -> Result<Self> {
        let mut resolver = Resolver {
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            ..Resolver::default()
        };
        for (name, default) in &template.parameters {
            if let Some(value) = overrides.get(name).cloned().or_else(|| default.clone()) {
                resolver.parameters.insert(name.clone(), value);
            }
        }
        for name in overrides.keys() {
            if !template.parameters.contains_key(name) {
                return Err(anyhow!(
                    "parameter override {name}: the template has no such parameter"
                ));
            }
        }
        for table in &template.tables {
            let arn = ensure_table(&clients.dynamodb, table)
                .await
                .with_context(|| format!("table {}", table.logical_id))?;
            resolver
                .refs
                .insert(table.logical_id.clone(), table.logical_id.clone());
            resolver
                .attributes
                .insert(format!("{}.Arn", table.logical_id), arn);
        }
        // Dead-letter queues first: a redrive policy names its target's ARN.
        let mut queues = template.queues.clone();
        queues.sort_by_key(|q| q.redrive.is_some());
        for queue in &queues {
            let mut attributes = vec![];
            if let Some(v) = &queue.visibility_timeout {
                attributes.push((QueueAttributeName::VisibilityTimeout, resolver.resolve(v)?));
            }
            if let Some(v) = &queue.message_retention {
                attributes.push((
                    QueueAttributeName::MessageRetentionPeriod,
                    resolver.resolve(v)?,
                ));
            }
            if let Some((dlq, max)) = &queue.redrive {
                let target = resolver
                    .attributes
                    .get(&format!("{dlq}.Arn"))
                    .cloned()
                    .ok_or_else(|| {
                        anyhow!(
                            "queue {}: dead-letter queue {dlq} is not in the template",
                            queue.logical_id
                        )
                    })?;
                let max: u32 = resolver.resolve(max)?.parse().context("maxReceiveCount")?;
                let policy =
                    serde_json::json!({"deadLetterTargetArn": target, "maxReceiveCount": max});
                attributes.push((QueueAttributeName::RedrivePolicy, policy.to_string()));
            }
            let (url, arn) = ensure_queue(&clients.sqs, &queue.logical_id, attributes)
                .await
                .with_context(|| format!("queue {}", queue.logical_id))?;
            resolver.refs.insert(queue.logical_id.clone(), url.clone());
            resolver
                .attributes
                .insert(format!("{}.Arn", queue.logical_id), arn);
            resolver
                .attributes
                .insert(format!("{}.QueueUrl", queue.logical_id), url);
            resolver.attributes.insert(
                format!("{}.QueueName", queue.logical_id),
                queue.logical_id.clone(),
            );
        }
        for api in &template.apis {
            resolver.refs.insert(api.logical_id.clone(), "local".into());
        }
        // The configuration set every email names (bounces and complaints come back through it
        // on AWS; moto only needs it to exist).
        for (id, name) in &template.ses_configuration_sets {
            let name = resolver.resolve(name)?;
            let existing = clients
                .ses
                .list_configuration_sets()
                .send()
                .await
                .context("listing SES configuration sets")?;
            if !existing
                .configuration_sets()
                .iter()
                .any(|c| c.name() == name)
            {
                let set = aws_sdk_ses::types::ConfigurationSet::builder()
                    .name(&name)
                    .build()
                    .context("configuration set")?;
                clients
                    .ses
                    .create_configuration_set()
                    .configuration_set(set)
                    .send()
                    .await
                    .with_context(|| format!("creating SES configuration set {name}"))?;
            }
            resolver.refs.insert(id.clone(), name);
        }
        // SES sends only from verified identities; verify the configured sender, as an
        // operator does once per deployment.
        if let Some(sender) = resolver
            .parameters
            .get("EmailSender")
            .filter(|s| !s.is_empty())
        {
            clients
                .ses
                .verify_email_identity()
                .email_address(sender)
                .send()
                .await
                .map_err(|e| anyhow!(aws_sdk_ses::error::DisplayErrorContext(e).to_string()))
                .with_context(|| format!("verifying the email sender {sender}"))?;
        }
        Ok(LocalStack {
            template,
            resolver,
            clients,
        })
    }

    /// A function's [`App`], configured from the environment the template gives that function,
    /// so a variable missing from the template is missing locally too.
    pub fn app_for(&self, function: &Function) -> Result<Arc<App>> {
        let env = self.resolver.environment(&self.template, function)?;
        let config = Config::from_lookup(|name| env.get(name).cloned())
            .with_context(|| format!("function {}", function.logical_id))?;
        Ok(App::with_clients(
            config,
            self.clients.dynamodb.clone(),
            self.clients.sqs.clone(),
            self.clients.ses.clone(),
        )?)
    }

    pub fn queue_url(&self, logical_id: &str) -> Result<&str> {
        self.resolver
            .refs
            .get(logical_id)
            .map(String::as_str)
            .ok_or_else(|| anyhow!("queue {logical_id} is not in the template"))
    }

    pub fn stage(&self) -> Result<String> {
        match self.template.apis.first() {
            Some(api) => self.resolver.resolve(&api.stage),
            None => Ok("prod".into()),
        }
    }
}

async fn ensure_table(client: &aws_sdk_dynamodb::Client, table: &Table) -> Result<String> {
    if let Ok(found) = client
        .describe_table()
        .table_name(&table.logical_id)
        .send()
        .await
    {
        if let Some(arn) = found.table.and_then(|t| t.table_arn) {
            return Ok(arn);
        }
    }
    let key = |pairs: &[(String, String)]| -> Result<Vec<KeySchemaElement>> {
        pairs
            .iter()
            .map(|(name, kind)| {
                Ok(KeySchemaElement::builder()
                    .attribute_name(name)
                    .key_type(KeyType::from(kind.as_str()))
                    .build()?)
            })
            .collect()
    };
    let mut create = client
        .create_table()
        .table_name(&table.logical_id)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(key(&table.key)?));
    for (name, kind) in &table.attributes {
        create = create.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::from(kind.as_str()))
                .build()?,
        );
    }
    for gsi in &table.gsis {
        create = create.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(&gsi.name)
                .set_key_schema(Some(key(&gsi.key)?))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::from(gsi.projection.as_str()))
                        .set_non_key_attributes(
                            (!gsi.non_key_attributes.is_empty())
                                .then(|| gsi.non_key_attributes.clone()),
                        )
                        .build(),
                )
                .build()?,
        );
    }
    let created = create
        .send()
        .await
        .map_err(|e| anyhow!(aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string()))?;
    if let Some(attribute) = &table.ttl_attribute {
        client
            .update_time_to_live()
            .table_name(&table.logical_id)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(attribute)
                    .enabled(true)
                    .build()?,
            )
            .send()
            .await
            .map_err(|e| anyhow!(aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string()))?;
    }
    created
        .table_description
        .and_then(|t| t.table_arn)
        .ok_or_else(|| anyhow!("CreateTable returned no ARN"))
}

async fn ensure_queue(
    client: &aws_sdk_sqs::Client,
    name: &str,
    attributes: Vec<(QueueAttributeName, String)>,
) -> Result<(String, String)> {
    let url = match client
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .ok()
        .and_then(|o| o.queue_url)
    {
        Some(url) => {
            let mut set = client.set_queue_attributes().queue_url(&url);
            for (k, v) in &attributes {
                set = set.attributes(k.clone(), v);
            }
            if !attributes.is_empty() {
                set.send()
                    .await
                    .map_err(|e| anyhow!(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
            }
            url
        }
        None => {
            let mut create = client.create_queue().queue_name(name);
            for (k, v) in attributes {
                create = create.attributes(k, v);
            }
            create
                .send()
                .await
                .map_err(|e| anyhow!(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?
                .queue_url
                .ok_or_else(|| anyhow!("CreateQueue returned no URL"))?
        }
    };
    let arn = client
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| anyhow!(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| anyhow!("queue has no ARN"))?;
    Ok((url, arn))
}
