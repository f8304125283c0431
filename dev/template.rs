//! Reads `template.yaml`, the single source of truth for functions, routes, tables and queues,
//! and resolves the intrinsic functions the local stack needs (`!Ref`, `!GetAtt`, `!Sub`).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde_yaml::Value;

/// The environment variable that tells the one Lambda binary which handler a function runs.
pub const FUNCTION_SELECTOR: &str = "MB_FUNCTION";

/// The parts of the template the local stack uses.
#[derive(Debug, Clone)]
pub struct Template {
    /// SES configuration sets: (logical id, `Name` as written).
    pub ses_configuration_sets: Vec<(String, Value)>,
    pub parameters: BTreeMap<String, Option<String>>,
    pub globals_env: BTreeMap<String, Value>,
    /// `Conditions`, for `!If` in environments.
    pub conditions: BTreeMap<String, Value>,
    pub tables: Vec<Table>,
    pub queues: Vec<Queue>,
    pub functions: Vec<Function>,
    pub apis: Vec<Api>,
}

#[derive(Debug, Clone)]
pub struct Table {
    pub logical_id: String,
    pub attributes: Vec<(String, String)>,
    pub key: Vec<(String, String)>,
    pub gsis: Vec<Gsi>,
    pub ttl_attribute: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Gsi {
    pub name: String,
    pub key: Vec<(String, String)>,
    pub projection: String,
    pub non_key_attributes: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Queue {
    pub logical_id: String,
    pub visibility_timeout: Option<Value>,
    pub message_retention: Option<Value>,
    /// (dead-letter queue's logical id, maxReceiveCount)
    pub redrive: Option<(String, Value)>,
}

#[derive(Debug, Clone)]
pub struct Function {
    pub logical_id: String,
    /// `Environment.Variables.MB_FUNCTION`: the handler the one Lambda binary runs for this
    /// function (a name of `meterbell::functions::FUNCTIONS`).
    pub binary: String,
    pub env: BTreeMap<String, Value>,
    pub routes: Vec<Route>,
    pub queue_sources: Vec<QueueSource>,
    /// `Schedule` events: EventBridge schedule expressions (`rate(1 hour)`, `cron(2 * * * ? *)`).
    pub schedules: Vec<String>,
    /// `DynamoDB` events: the tables whose streams the function consumes.
    pub stream_sources: Vec<String>,
    pub timeout_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub method: String,
    pub path: String,
}

#[derive(Debug, Clone)]
pub struct QueueSource {
    pub queue: String,
    pub batch_size: usize,
    pub report_batch_item_failures: bool,
}

#[derive(Debug, Clone)]
pub struct Api {
    pub logical_id: String,
    pub stage: Value,
    pub cors_allow_origin: Option<Value>,
    pub cors_allow_headers: Option<Value>,
    pub cors_allow_methods: Option<Value>,
}

impl Template {
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self> {
        let doc: Value = serde_yaml::from_str(text).context("template is not YAML")?;
        let mut parameters = BTreeMap::new();
        if let Some(map) = doc.get("Parameters").and_then(Value::as_mapping) {
            for (name, spec) in map {
                let name = key(name)?;
                let default = spec.get("Default").map(scalar).transpose()?;
                parameters.insert(name, default);
            }
        }
        let globals_env = env_map(doc.get("Globals").and_then(|g| g.get("Function")));
        let mut conditions = BTreeMap::new();
        if let Some(map) = doc.get("Conditions").and_then(Value::as_mapping) {
            for (name, expr) in map {
                conditions.insert(key(name)?, expr.clone());
            }
        }
        let resources = doc
            .get("Resources")
            .and_then(Value::as_mapping)
            .ok_or_else(|| anyhow!("template has no Resources"))?;
        let (mut tables, mut queues, mut functions, mut apis) = (vec![], vec![], vec![], vec![]);
        let mut ses_configuration_sets = vec![];
        for (id, resource) in resources {
            let id = key(id)?;
            let props = resource.get("Properties").cloned().unwrap_or(Value::Null);
            match resource.get("Type").and_then(Value::as_str) {
                Some("AWS::DynamoDB::Table") => {
                    tables.push(parse_table(&id, &props).with_context(|| id.clone())?)
                }
                Some("AWS::SQS::Queue") => {
                    queues.push(parse_queue(&id, &props).with_context(|| id.clone())?)
                }
                Some("AWS::Serverless::Function") => {
                    functions.push(parse_function(&id, &props).with_context(|| id.clone())?)
                }
                Some("AWS::SES::ConfigurationSet") => ses_configuration_sets.push((
                    id.clone(),
                    props
                        .get("Name")
                        .cloned()
                        .unwrap_or(Value::String(id.clone())),
                )),
                Some("AWS::Serverless::Api") => apis.push(Api {
                    logical_id: id.clone(),
                    stage: props
                        .get("StageName")
                        .cloned()
                        .unwrap_or(Value::String("prod".into())),
                    cors_allow_origin: props
                        .get("Cors")
                        .and_then(|c| c.get("AllowOrigin"))
                        .cloned(),
                    cors_allow_headers: props
                        .get("Cors")
                        .and_then(|c| c.get("AllowHeaders"))
                        .cloned(),
                    cors_allow_methods: props
                        .get("Cors")
                        .and_then(|c| c.get("AllowMethods"))
                        .cloned(),
                }),
                _ => {}
            }
        }
        Ok(Template {
            parameters,
            globals_env,
            conditions,
            tables,
            queues,
            functions,
            apis,
            ses_configuration_sets,
        })
    }

    pub fn function(&self, logical_id: &str) -> Option<&Function> {
        self.functions.iter().find(|f| f.logical_id == logical_id)
    }
}

fn key(v: &Value) -> Result<String> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("expected a string key, found {v:?}"))
}

/// A plain scalar as text.
fn scalar(v: &Value) -> Result<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => bail!("expected a scalar, found {other:?}"),
    }
}

fn env_map(holder: Option<&Value>) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    if let Some(vars) = holder
        .and_then(|h| h.get("Environment"))
        .and_then(|e| e.get("Variables"))
        .and_then(Value::as_mapping)
    {
        for (k, v) in vars {
            if let Some(k) = k.as_str() {
                out.insert(k.to_owned(), v.clone());
            }
        }
    }
    out
}

fn pairs(list: Option<&Value>, a: &str, b: &str) -> Result<Vec<(String, String)>> {
    let mut out = vec![];
    for item in list.and_then(Value::as_sequence).into_iter().flatten() {
        let x = item
            .get(a)
            .map(scalar)
            .transpose()?
            .ok_or_else(|| anyhow!("{a} missing"))?;
        let y = item
            .get(b)
            .map(scalar)
            .transpose()?
            .ok_or_else(|| anyhow!("{b} missing"))?;
        out.push((x, y));
    }
    Ok(out)
}

fn parse_table(id: &str, props: &Value) -> Result<Table> {
    let mut gsis = vec![];
    for gsi in props
        .get("GlobalSecondaryIndexes")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
    {
        gsis.push(Gsi {
            name: gsi
                .get("IndexName")
                .map(scalar)
                .transpose()?
                .ok_or_else(|| anyhow!("IndexName missing"))?,
            key: pairs(gsi.get("KeySchema"), "AttributeName", "KeyType")?,
            projection: gsi
                .get("Projection")
                .and_then(|p| p.get("ProjectionType"))
                .map(scalar)
                .transpose()?
                .unwrap_or_else(|| "ALL".into()),
            non_key_attributes: gsi
                .get("Projection")
                .and_then(|p| p.get("NonKeyAttributes"))
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
        });
    }
    let ttl = props.get("TimeToLiveSpecification");
    let ttl_enabled = ttl
        .and_then(|t| t.get("Enabled"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(Table {
        logical_id: id.to_owned(),
        attributes: pairs(
            props.get("AttributeDefinitions"),
            "AttributeName",
            "AttributeType",
        )?,
        key: pairs(props.get("KeySchema"), "AttributeName", "KeyType")?,
        gsis,
        ttl_attribute: if ttl_enabled {
            ttl.and_then(|t| t.get("AttributeName"))
                .map(scalar)
                .transpose()?
        } else {
            None
        },
    })
}

fn parse_queue(id: &str, props: &Value) -> Result<Queue> {
    let redrive = match props.get("RedrivePolicy") {
        None => None,
        Some(policy) => {
            let target = policy
                .get("deadLetterTargetArn")
                .ok_or_else(|| anyhow!("deadLetterTargetArn missing"))?;
            let dlq = getatt_target(target)
                .ok_or_else(|| anyhow!("deadLetterTargetArn must be !GetAtt Queue.Arn"))?;
            let max = policy
                .get("maxReceiveCount")
                .cloned()
                .ok_or_else(|| anyhow!("maxReceiveCount missing"))?;
            Some((dlq, max))
        }
    };
    Ok(Queue {
        logical_id: id.to_owned(),
        visibility_timeout: props.get("VisibilityTimeout").cloned(),
        message_retention: props.get("MessageRetentionPeriod").cloned(),
        redrive,
    })
}

/// The logical id `X` of `!GetAtt X.Arn` (short or long form).
fn getatt_target(v: &Value) -> Option<String> {
    match v {
        Value::Tagged(t) if t.tag == "!GetAtt" => t
            .value
            .as_str()
            .and_then(|s| s.split('.').next())
            .map(str::to_owned),
        Value::Mapping(m) => m
            .get("Fn::GetAtt")
            .and_then(Value::as_sequence)
            .and_then(|s| s.first())
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    }
}

fn parse_function(id: &str, props: &Value) -> Result<Function> {
    let env = env_map(Some(props));
    // The multi-call binary runs the handler `MB_FUNCTION` names (functions/src/main.rs).
    let binary = env
        .get(FUNCTION_SELECTOR)
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("Environment.Variables.{FUNCTION_SELECTOR} missing"))?
        .to_owned();
    let mut routes = vec![];
    let mut queue_sources = vec![];
    let mut schedules = vec![];
    let mut stream_sources = vec![];
    for (_, event) in props
        .get("Events")
        .and_then(Value::as_mapping)
        .into_iter()
        .flatten()
    {
        let p = event.get("Properties").cloned().unwrap_or(Value::Null);
        match event.get("Type").and_then(Value::as_str) {
            Some("Api") => routes.push(Route {
                method: p
                    .get("Method")
                    .map(scalar)
                    .transpose()?
                    .unwrap_or_default()
                    .to_ascii_uppercase(),
                path: p
                    .get("Path")
                    .map(scalar)
                    .transpose()?
                    .ok_or_else(|| anyhow!("Api event without Path"))?,
            }),
            Some("SQS") => {
                let queue = p
                    .get("Queue")
                    .and_then(getatt_target)
                    .ok_or_else(|| anyhow!("SQS event Queue must be !GetAtt Queue.Arn"))?;
                let batch_size = p.get("BatchSize").and_then(Value::as_u64).unwrap_or(10) as usize;
                let report_batch_item_failures = p
                    .get("FunctionResponseTypes")
                    .and_then(Value::as_sequence)
                    .is_some_and(|s| {
                        s.iter()
                            .any(|v| v.as_str() == Some("ReportBatchItemFailures"))
                    });
                queue_sources.push(QueueSource {
                    queue,
                    batch_size,
                    report_batch_item_failures,
                });
            }
            Some("DynamoDB") => {
                stream_sources.push(p.get("Stream").and_then(getatt_target).ok_or_else(|| {
                    anyhow!("DynamoDB event Stream must be !GetAtt Table.StreamArn")
                })?)
            }
            Some("Schedule") => schedules.push(
                p.get("Schedule")
                    .map(scalar)
                    .transpose()?
                    .ok_or_else(|| anyhow!("Schedule event without Schedule"))?,
            ),
            _ => {}
        }
    }
    Ok(Function {
        logical_id: id.to_owned(),
        binary,
        env,
        routes,
        queue_sources,
        schedules,
        stream_sources,
        timeout_seconds: props.get("Timeout").and_then(Value::as_u64).unwrap_or(10),
    })
}

/// Values for `!Ref` and `!GetAtt` in the local stack.
#[derive(Debug, Clone, Default)]
pub struct Resolver {
    pub parameters: BTreeMap<String, String>,
    /// logical id -> what `!Ref` gives (table name, queue URL, ...)
    pub refs: BTreeMap<String, String>,
    /// "LogicalId.Attribute" -> value
    pub attributes: BTreeMap<String, String>,
    pub region: String,
    pub account_id: String,
}

impl Resolver {
    /// Stand-in values for every parameter and resource, for reading a function's environment
    /// without emulators (template checks, the cold-start bench). `overrides` set parameters.
    pub fn offline(template: &Template, overrides: &[(&str, &str)]) -> Self {
        let mut r = Resolver {
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            ..Resolver::default()
        };
        for (k, v) in &template.parameters {
            r.parameters
                .insert(k.clone(), v.clone().unwrap_or_default());
        }
        for (k, v) in overrides {
            r.parameters.insert((*k).to_owned(), (*v).to_owned());
        }
        for t in &template.tables {
            r.refs.insert(t.logical_id.clone(), t.logical_id.clone());
            r.attributes.insert(
                format!("{}.Arn", t.logical_id),
                format!(
                    "arn:aws:dynamodb:us-east-1:123456789012:table/{}",
                    t.logical_id
                ),
            );
        }
        for q in &template.queues {
            r.refs.insert(
                q.logical_id.clone(),
                format!(
                    "https://sqs.us-east-1.amazonaws.com/123456789012/{}",
                    q.logical_id
                ),
            );
            r.attributes.insert(
                format!("{}.Arn", q.logical_id),
                format!("arn:aws:sqs:us-east-1:123456789012:{}", q.logical_id),
            );
        }
        for (id, _) in &template.ses_configuration_sets {
            r.refs.insert(id.clone(), format!("{id}-local"));
        }
        for api in &template.apis {
            r.refs.insert(api.logical_id.clone(), "offline".into());
        }
        r
    }

    pub fn resolve(&self, v: &Value) -> Result<String> {
        match v {
            Value::String(_) | Value::Number(_) | Value::Bool(_) => scalar(v),
            Value::Null => Ok(String::new()),
            Value::Tagged(t) => match t.tag.to_string().as_str() {
                "!Ref" => self.reference(&scalar(&t.value)?),
                "!GetAtt" => self.attribute(&scalar(&t.value)?),
                "!Sub" => self.substitute(&scalar(&t.value)?),
                other => bail!("intrinsic {other} is not supported locally"),
            },
            Value::Mapping(m) => {
                if let Some(r) = m.get("Ref") {
                    self.reference(&scalar(r)?)
                } else if let Some(a) = m.get("Fn::GetAtt") {
                    let parts: Vec<String> = a
                        .as_sequence()
                        .into_iter()
                        .flatten()
                        .filter_map(|p| p.as_str().map(str::to_owned))
                        .collect();
                    self.attribute(&parts.join("."))
                } else if let Some(s) = m.get("Fn::Sub") {
                    self.substitute(&scalar(s)?)
                } else {
                    bail!("cannot resolve {v:?} locally")
                }
            }
            Value::Sequence(_) => bail!("cannot resolve a list to a single value"),
        }
    }

    fn reference(&self, name: &str) -> Result<String> {
        match name {
            "AWS::Region" => return Ok(self.region.clone()),
            "AWS::AccountId" => return Ok(self.account_id.clone()),
            "AWS::StackName" => return Ok("meterbell-local".into()),
            _ => {}
        }
        self.parameters
            .get(name)
            .or_else(|| self.refs.get(name))
            .cloned()
            .ok_or_else(|| anyhow!("!Ref {name}: no such parameter or resource in the local stack"))
    }

    fn attribute(&self, name: &str) -> Result<String> {
        self.attributes
            .get(name)
            .cloned()
            .ok_or_else(|| anyhow!("!GetAtt {name}: unknown locally"))
    }

    fn substitute(&self, text: &str) -> Result<String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..]
                .find('}')
                .ok_or_else(|| anyhow!("unclosed ${{ in !Sub {text:?}"))?
                + start;
            let name = &rest[start + 2..end];
            out.push_str(&if name.contains('.') {
                self.attribute(name)?
            } else {
                self.reference(name)?
            });
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// A function's environment: globals, then its own variables, resolved.
    pub fn environment(
        &self,
        template: &Template,
        function: &Function,
    ) -> Result<BTreeMap<String, String>> {
        let mut env = BTreeMap::new();
        for (k, v) in template.globals_env.iter().chain(function.env.iter()) {
            // `!If [Condition, value, !Ref AWS::NoValue]`: the variable exists only when true.
            let v = match self.choose(template, v)? {
                Some(v) => v,
                None => {
                    env.remove(k);
                    continue;
                }
            };
            env.insert(
                k.clone(),
                self.resolve(v)
                    .with_context(|| format!("{}: variable {k}", function.logical_id))?,
            );
        }
        Ok(env)
    }

    /// The branch an `!If` takes (recursively), or `v` itself; `None` for `AWS::NoValue`.
    fn choose<'v>(&self, template: &Template, v: &'v Value) -> Result<Option<&'v Value>> {
        let Value::Tagged(t) = v else {
            return Ok(Some(v));
        };
        if t.tag == "!Ref" && t.value.as_str() == Some("AWS::NoValue") {
            return Ok(None);
        }
        if t.tag != "!If" {
            return Ok(Some(v));
        }
        let parts = t
            .value
            .as_sequence()
            .filter(|p| p.len() == 3)
            .ok_or_else(|| anyhow!("!If takes [condition, then, else]"))?;
        let name = scalar(&parts[0])?;
        let branch = if self.condition(template, &name)? {
            &parts[1]
        } else {
            &parts[2]
        };
        self.choose(template, branch)
    }

    /// Evaluates the template's condition `name` against the parameters.
    pub fn condition(&self, template: &Template, name: &str) -> Result<bool> {
        let expr = template
            .conditions
            .get(name)
            .ok_or_else(|| anyhow!("condition {name} is not in the template"))?;
        self.truth(template, expr)
            .with_context(|| format!("condition {name}"))
    }

    fn truth(&self, template: &Template, v: &Value) -> Result<bool> {
        let Value::Tagged(t) = v else {
            bail!("cannot evaluate {v:?} locally")
        };
        let args = || -> Vec<&Value> { t.value.as_sequence().into_iter().flatten().collect() };
        match t.tag.to_string().as_str() {
            "!Equals" => match args().as_slice() {
                [a, b] => Ok(self.resolve(a)? == self.resolve(b)?),
                _ => bail!("!Equals takes two values"),
            },
            "!Not" => match args().as_slice() {
                [x] => Ok(!self.truth(template, x)?),
                _ => bail!("!Not takes one condition"),
            },
            "!Or" => {
                for x in args() {
                    if self.truth(template, x)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            "!And" => {
                for x in args() {
                    if !self.truth(template, x)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            "!Condition" => self.condition(template, &scalar(&t.value)?),
            other => bail!("condition function {other} is not supported locally"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"
Parameters:
  Stage: { Type: String, Default: dev }
  Max: { Type: Number, Default: 3 }
Globals:
  Function:
    Environment:
      Variables:
        STAGE: !Ref Stage
Resources:
  T:
    Type: AWS::DynamoDB::Table
    Properties:
      AttributeDefinitions: [{ AttributeName: pk, AttributeType: S }]
      KeySchema: [{ AttributeName: pk, KeyType: HASH }]
      TimeToLiveSpecification: { AttributeName: ttl, Enabled: true }
  Q:
    Type: AWS::SQS::Queue
    Properties:
      RedrivePolicy: { deadLetterTargetArn: !GetAtt D.Arn, maxReceiveCount: !Ref Max }
  D:
    Type: AWS::SQS::Queue
  F:
    Type: AWS::Serverless::Function
    Metadata: { BuildMethod: makefile }
    Properties:
      Environment: { Variables: { MB_FUNCTION: f, TABLE: !Ref T, URL: !Sub "x-${Stage}-${D.Arn}" } }
      Events:
        A: { Type: Api, Properties: { Path: "/a/{id}", Method: get } }
        S: { Type: SQS, Properties: { Queue: !GetAtt Q.Arn, BatchSize: 5, FunctionResponseTypes: [ReportBatchItemFailures] } }
"#;

    #[test]
    fn resources_and_events_are_read_from_the_template() {
        let t = Template::parse(TEMPLATE).unwrap();
        assert_eq!(t.tables[0].ttl_attribute.as_deref(), Some("ttl"));
        let q = t.queues.iter().find(|q| q.logical_id == "Q").unwrap();
        assert_eq!(q.redrive.as_ref().unwrap().0, "D");
        let f = t.function("F").unwrap();
        assert_eq!(
            f.routes,
            vec![Route {
                method: "GET".into(),
                path: "/a/{id}".into()
            }]
        );
        assert_eq!(f.queue_sources[0].queue, "Q");
        assert_eq!(f.queue_sources[0].batch_size, 5);
        assert!(f.queue_sources[0].report_batch_item_failures);
    }

    #[test]
    fn a_functions_environment_resolves_refs_and_subs() {
        let t = Template::parse(TEMPLATE).unwrap();
        let mut r = Resolver::default();
        r.parameters.insert("Stage".into(), "dev".into());
        r.refs.insert("T".into(), "TableT".into());
        r.attributes.insert("D.Arn".into(), "arn:d".into());
        let env = r.environment(&t, t.function("F").unwrap()).unwrap();
        assert_eq!(env["STAGE"], "dev");
        assert_eq!(env["TABLE"], "TableT");
        assert_eq!(env["URL"], "x-dev-arn:d");
    }

    #[test]
    fn the_real_template_parses() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("template.yaml");
        let t = Template::load(&path).unwrap();
        assert!(!t.functions.is_empty() && !t.tables.is_empty() && !t.queues.is_empty());
    }
}
