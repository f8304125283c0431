//! `template.yaml` is the single source of truth; these checks keep the code, the sample events
//! and the IAM policies in step with it. No emulator needed.

use std::collections::BTreeSet;

use meterbell::functions::{by_binary, Handler};
use meterbell_dev::template::{Resolver, Template};
use serde_yaml::Value;

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn template() -> Template {
    Template::load(&root().join("template.yaml")).unwrap()
}

fn raw() -> Value {
    serde_yaml::from_str(&std::fs::read_to_string(root().join("template.yaml")).unwrap()).unwrap()
}

#[test]
fn every_function_has_a_handler_of_the_right_kind() {
    for f in template().functions {
        match by_binary(&f.binary) {
            Some(Handler::Http(_)) => {
                assert!(!f.routes.is_empty(), "{} serves no route", f.logical_id)
            }
            Some(Handler::Sqs(_)) => assert!(
                !f.queue_sources.is_empty(),
                "{} consumes no queue",
                f.logical_id
            ),
            Some(Handler::Schedule(_)) => {
                assert!(!f.schedules.is_empty(), "{} has no schedule", f.logical_id)
            }
            Some(Handler::Stream(_)) => assert!(
                !f.stream_sources.is_empty(),
                "{} consumes no stream",
                f.logical_id
            ),
            None => panic!("{}: no handler for binary {}", f.logical_id, f.binary),
        }
    }
}

#[test]
fn every_function_has_a_sample_event_of_its_kind() {
    for f in template().functions {
        let path = root().join(format!("events/{}.json", f.binary));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|_| panic!("{} is missing", path.display()));
        if !f.stream_sources.is_empty() {
            let batch: meterbell::platform::handler::StreamBatch =
                serde_json::from_str(&text).unwrap();
            assert!(!batch.records.is_empty(), "{}", path.display());
        } else if !f.schedules.is_empty() {
            let event: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(
                event["detail-type"],
                "Scheduled Event",
                "{}",
                path.display()
            );
            assert!(event["time"].is_string(), "{}: no time", path.display());
        } else if f.routes.is_empty() {
            serde_json::from_str::<aws_lambda_events::sqs::SqsEvent>(&text).unwrap();
        } else {
            let req = lambda_http::request::from_str(&text).unwrap();
            let route = &f.routes[0];
            assert_eq!(req.method().as_str(), route.method, "{}", path.display());
        }
    }
}

#[test]
fn every_functions_environment_makes_a_valid_configuration() {
    let t = template();
    let r = Resolver::offline(
        &t,
        &[
            ("JwtSecret", &"x".repeat(32)),
            ("CursorSecret", &"y".repeat(32)),
        ],
    );
    for f in &t.functions {
        let env = r.environment(&t, f).unwrap();
        meterbell::Config::from_lookup(|k| env.get(k).cloned()).unwrap();
    }
}

/// Logical ids named by `!Ref X` / `!GetAtt X.*` anywhere inside `v`.
fn referenced(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Tagged(t) if t.tag == "!Ref" || t.tag == "!GetAtt" => {
            if let Some(s) = t.value.as_str() {
                out.insert(s.split('.').next().unwrap().to_owned());
            }
        }
        Value::Tagged(t) if t.tag == "!Sub" => {
            let text = t.value.as_str().unwrap_or_default();
            for piece in text.split("${").skip(1) {
                let name = piece.split(['}', '.']).next().unwrap_or_default();
                out.insert(name.to_owned());
            }
        }
        Value::Tagged(t) => referenced(&t.value, out),
        Value::Mapping(m) => m.values().for_each(|x| referenced(x, out)),
        Value::Sequence(s) => s.iter().for_each(|x| referenced(x, out)),
        _ => {}
    }
}

#[test]
fn each_function_is_granted_exactly_the_tables_and_queues_it_is_configured_with() {
    let raw = raw();
    let t = template();
    let stateful: BTreeSet<String> = t
        .tables
        .iter()
        .map(|x| x.logical_id.clone())
        .chain(t.queues.iter().map(|q| q.logical_id.clone()))
        .collect();
    for f in &t.functions {
        let props = &raw["Resources"][f.logical_id.as_str()]["Properties"];
        let mut granted = BTreeSet::new();
        referenced(&props["Policies"], &mut granted);
        let mut configured = BTreeSet::new();
        referenced(&props["Environment"], &mut configured);
        // SAM grants a consumed queue through its event source, and the function reads it from
        // the event rather than from its environment.
        for source in &f.queue_sources {
            granted.insert(source.queue.clone());
            configured.insert(source.queue.clone());
        }
        let granted: BTreeSet<_> = granted.intersection(&stateful).cloned().collect();
        let configured: BTreeSet<_> = configured.intersection(&stateful).cloned().collect();
        assert_eq!(
            granted, configured,
            "{}: policy and environment disagree",
            f.logical_id
        );
        let text = serde_yaml::to_string(&props["Policies"]).unwrap();
        assert!(
            !text.contains("'*'") && !text.contains("dynamodb:*") && !text.contains("sqs:*"),
            "{}: wildcard grant",
            f.logical_id
        );
    }
}

#[test]
fn every_queue_has_a_dead_letter_queue_except_dead_letter_queues() {
    let t = template();
    let mut targets: BTreeSet<String> = t
        .queues
        .iter()
        .filter_map(|q| q.redrive.as_ref().map(|r| r.0.clone()))
        .collect();
    targets.extend(failure_destinations(&raw()));
    for q in &t.queues {
        assert!(
            q.redrive.is_some() || targets.contains(&q.logical_id),
            "{} has no dead-letter queue",
            q.logical_id
        );
    }
    for name in [
        "UsageEventsQueue",
        "NotificationJobsQueue",
        "EmailQueue",
        "WebhookQueue",
    ] {
        assert!(
            t.queues.iter().any(|q| q.logical_id == name),
            "queue {name} of the architecture is missing"
        );
    }
}

/// Alarms of the template: (metric, the logical id its dimension points at).
fn alarms(raw: &Value) -> Vec<(String, String)> {
    let mut out = vec![];
    for (_, r) in raw["Resources"].as_mapping().unwrap() {
        if r["Type"].as_str() != Some("AWS::CloudWatch::Alarm") {
            continue;
        }
        let p = &r["Properties"];
        let mut target = BTreeSet::new();
        referenced(&p["Dimensions"], &mut target);
        let metric = format!(
            "{}/{}",
            p["Namespace"].as_str().unwrap_or_default(),
            p["MetricName"].as_str().unwrap_or_default()
        );
        // Every alarm notifies the topic parameter, and only when it is given.
        let actions = serde_yaml::to_string(&p["AlarmActions"]).unwrap();
        assert!(
            actions.contains("HasAlarmTopic") && actions.contains("AlarmTopicArn"),
            "alarm on {metric} must notify AlarmTopicArn under HasAlarmTopic"
        );
        for t in target {
            out.push((metric.clone(), t));
        }
    }
    out
}

#[test]
fn every_function_has_error_and_throttle_alarms_and_a_log_group_with_retention() {
    let raw = raw();
    let alarms = alarms(&raw);
    for f in template().functions {
        for metric in ["AWS/Lambda/Errors", "AWS/Lambda/Throttles"] {
            assert!(
                alarms.contains(&(metric.to_owned(), f.logical_id.clone())),
                "{}: no {metric} alarm",
                f.logical_id
            );
        }
        let props = &raw["Resources"][f.logical_id.as_str()]["Properties"];
        let mut group = BTreeSet::new();
        referenced(&props["LoggingConfig"]["LogGroup"], &mut group);
        let group = group
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("{}: no LoggingConfig.LogGroup", f.logical_id));
        let retention = &raw["Resources"][group.as_str()]["Properties"]["RetentionInDays"];
        assert_eq!(
            serde_yaml::to_string(retention).unwrap().trim(),
            "!Ref LogRetentionDays",
            "{group}: retention must be the LogRetentionDays parameter"
        );
    }
}

/// Queues where Lambda puts what a function finally failed on: a function's `DeadLetterQueue`
/// (asynchronous invocations) and an event's `DestinationConfig.OnFailure` (streams).
fn failure_destinations(raw: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (_, r) in raw["Resources"].as_mapping().unwrap() {
        let props = &r["Properties"];
        let mut refs = BTreeSet::new();
        referenced(&props["DeadLetterQueue"], &mut refs);
        if let Some(events) = props["Events"].as_mapping() {
            for (_, e) in events {
                referenced(&e["Properties"]["DestinationConfig"], &mut refs);
            }
        }
        out.extend(refs);
    }
    out
}

#[test]
fn every_dead_letter_queue_has_a_depth_alarm_and_the_api_a_5xx_alarm() {
    let raw = raw();
    let alarms = alarms(&raw);
    let t = template();
    let mut dlqs: BTreeSet<String> = t
        .queues
        .iter()
        .filter_map(|q| q.redrive.as_ref().map(|r| r.0.clone()))
        .collect();
    dlqs.extend(failure_destinations(&raw));
    assert!(!dlqs.is_empty());
    for dlq in dlqs {
        assert!(
            alarms.contains(&(
                "AWS/SQS/ApproximateNumberOfMessagesVisible".to_owned(),
                dlq.clone()
            )),
            "{dlq}: no depth alarm"
        );
    }
    assert!(
        alarms.iter().any(|(m, _)| m == "AWS/ApiGateway/5XXError"),
        "no alarm on the API's 5xx rate"
    );
}

#[test]
fn a_deploy_without_token_keys_or_cursor_key_fails_with_a_rule_naming_what_to_set() {
    let raw = raw();
    let rules = serde_yaml::to_string(&raw["Rules"]).unwrap();
    for name in [
        "JwtSecret",
        "JwtSecretArn",
        "JwtPublicKey",
        "JwtJwks",
        "CursorSecret",
        "CursorSecretArn",
    ] {
        assert!(rules.contains(name), "Rules never mention {name}");
    }
    for secret in ["JwtSecret", "CursorSecret"] {
        let p = &raw["Parameters"][secret];
        assert_eq!(p["NoEcho"].as_bool(), Some(true), "{secret} must be NoEcho");
        assert_eq!(p["AllowedPattern"].as_str(), Some("^(|.{32,})$"));
        assert!(p["ConstraintDescription"]
            .as_str()
            .unwrap_or_default()
            .contains("32"));
    }
    // Secrets Manager access is granted only when a secret is named, and only to those.
    let policy = &raw["Resources"]["SecretsReadPolicy"];
    assert_eq!(policy["Condition"].as_str(), Some("ReadsSecrets"));
    let text = serde_yaml::to_string(&policy["Properties"]).unwrap();
    assert!(text.contains("secretsmanager:GetSecretValue") && !text.contains("'*'"));
}
