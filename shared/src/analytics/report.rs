//! The usage report's findings: recommendations computed from a period's rollups against the
//! period before, each with the numbers behind it. Pure: the route reads the rollups and renders.

use serde::Serialize;
use serde_json::{json, Value};

use crate::analytics::money::format_usd;
use crate::analytics::rollup::{Counters, Rollup};

/// One recommendation: what it is about, the sentence, and the figures it rests on.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Recommendation {
    pub kind: &'static str,
    pub text: String,
    pub numbers: Value,
}

/// Requests a model, endpoint or period needs before the report draws a conclusion from it.
pub const MIN_REQUESTS: i64 = 50;

fn usd(micros: i64) -> String {
    format!("${}", format_usd(micros, 2))
}

fn usd_per_request(micros: f64) -> String {
    // Four decimals, or six for fractions of a hundredth of a cent (embeddings).
    if micros > 0.0 && micros < 100.0 {
        format!("${:.6}", micros / 1_000_000.0)
    } else {
        format!("${:.4}", micros / 1_000_000.0)
    }
}

fn pct(part: f64, whole: f64) -> f64 {
    if whole == 0.0 {
        0.0
    } else {
        part * 100.0 / whole
    }
}

fn rate(c: &Counters) -> f64 {
    pct(c.errors as f64, c.requests as f64)
}

fn per_request(c: &Counters) -> f64 {
    if c.requests == 0 {
        0.0
    } else {
        c.cost_micros as f64 / c.requests as f64
    }
}

/// Recommendations for the period `now` against the period before, `before`; `label` names the
/// previous period in sentences ("last month").
pub fn recommendations(now: &Rollup, before: &Rollup, label: &str) -> Vec<Recommendation> {
    let mut out = vec![];
    let total = now.total.cost_micros;
    // Where the money goes: one model with a large share.
    let mut models: Vec<(&(String, String), &Counters)> = now.models.iter().collect();
    models.sort_by(|a, b| b.1.cost_micros.cmp(&a.1.cost_micros).then(a.0.cmp(b.0)));
    if let Some(((p, m), c)) = models.first() {
        let share = pct(c.cost_micros as f64, total as f64);
        if total > 0 && share >= 40.0 {
            out.push(Recommendation {
                kind: "concentration",
                text: format!(
                    "{share:.0}% of spend ({} of {}) is {p}/{m}.",
                    usd(c.cost_micros),
                    usd(total)
                ),
                numbers: json!({"model": format!("{p}/{m}"), "share_percent": (share * 10.0).round() / 10.0,
                    "cost_usd": c.cost_micros as f64 / 1e6, "total_cost_usd": total as f64 / 1e6}),
            });
        }
        // A cheaper model of the same provider the user already relies on.
        let a = per_request(c);
        let cheaper = models
            .iter()
            .skip(1)
            .filter(|((op, _), o)| op == p && o.requests >= MIN_REQUESTS && per_request(o) > 0.0)
            .min_by(|x, y| per_request(x.1).total_cmp(&per_request(y.1)));
        if let Some(((cp, cm), o)) = cheaper {
            let b = per_request(o);
            if c.requests >= MIN_REQUESTS && b * 2.0 <= a {
                let saving = ((a - b) * c.requests as f64 / 2.0).round() as i64;
                out.push(Recommendation {
                    kind: "cheaper_model",
                    text: format!(
                        "{p}/{m} costs {} per request; {cp}/{cm}, also in your usage, costs {} \
                         ({:.0}× less). Moving half of {p}/{m}'s {} requests to it would save \
                         about {} a period.",
                        usd_per_request(a),
                        usd_per_request(b),
                        a / b,
                        c.requests,
                        usd(saving)
                    ),
                    numbers: json!({"model": format!("{p}/{m}"), "cost_per_request_usd": a / 1e6,
                        "alternative": format!("{cp}/{cm}"), "alternative_cost_per_request_usd": b / 1e6,
                        "requests": c.requests, "saving_usd": saving as f64 / 1e6}),
                });
            }
        }
    }
    // Endpoints that got worse: errors and latency against the period before.
    for (e, c) in &now.endpoints {
        let Some(old) = before.endpoints.get(e) else {
            continue;
        };
        if c.requests < MIN_REQUESTS || old.requests < MIN_REQUESTS {
            continue;
        }
        let (r, r0) = (rate(c), rate(old));
        if r >= 2.0 * r0 && r - r0 >= 1.0 {
            out.push(Recommendation {
                kind: "error_rate",
                text: format!("Errors on {e}: {r:.1}% against {r0:.1}% {label}."),
                numbers: json!({"endpoint": e, "error_rate_percent": (r * 10.0).round() / 10.0,
                    "previous_error_rate_percent": (r0 * 10.0).round() / 10.0,
                    "requests": c.requests, "errors": c.errors}),
            });
        }
        let p95 =
            |h: Option<&crate::analytics::histogram::Histogram>| h.and_then(|h| h.quantile(0.95));
        if let (Some(l), Some(l0)) = (
            p95(now.endpoint_latency.get(e)),
            p95(before.endpoint_latency.get(e)),
        ) {
            if l >= 1.5 * l0 && l - l0 >= 200.0 {
                out.push(Recommendation {
                    kind: "latency",
                    text: format!("p95 latency on {e}: {l:.0} ms against {l0:.0} ms {label}."),
                    numbers: json!({"endpoint": e, "p95_ms": l.round(), "previous_p95_ms": l0.round()}),
                });
            }
        }
    }
    // Spend growing faster than use.
    let (n, n0) = (&now.total, &before.total);
    if n.requests >= MIN_REQUESTS && n0.requests >= MIN_REQUESTS {
        let (a, a0) = (per_request(n), per_request(n0));
        if a0 > 0.0 && a >= 1.2 * a0 {
            out.push(Recommendation {
                kind: "cost_per_request",
                text: format!(
                    "Cost per request rose {:.0}% ({} against {} {label}): spend {} against {}, \
                     requests {} against {}.",
                    pct(a - a0, a0),
                    usd_per_request(a),
                    usd_per_request(a0),
                    usd(n.cost_micros),
                    usd(n0.cost_micros),
                    n.requests,
                    n0.requests
                ),
                numbers: json!({"cost_per_request_usd": a / 1e6, "previous_cost_per_request_usd": a0 / 1e6,
                    "cost_usd": n.cost_micros as f64 / 1e6, "previous_cost_usd": n0.cost_micros as f64 / 1e6,
                    "requests": n.requests, "previous_requests": n0.requests}),
            });
        }
    }
    tag_growth(now, before, label, &mut out);
    out
}

/// An attributed tag value (a project, a team) whose spend grew fast and now weighs in the
/// total: who is behind a rise, which the model and endpoint figures cannot say.
fn tag_growth(now: &Rollup, before: &Rollup, label: &str, out: &mut Vec<Recommendation>) {
    let total = now.total.cost_micros;
    let keys: std::collections::BTreeSet<&String> = now
        .model_tags
        .values()
        .flat_map(|tags| tags.keys().map(|(k, _)| k))
        .collect();
    for key in keys {
        let old = before.tag_values(key);
        for (value, c) in now.tag_values(key) {
            let Some(o) = old.get(&value) else { continue };
            let share = pct(c.cost_micros as f64, total as f64);
            if c.requests < MIN_REQUESTS || o.requests < MIN_REQUESTS || o.cost_micros == 0 {
                continue;
            }
            let growth = pct((c.cost_micros - o.cost_micros) as f64, o.cost_micros as f64);
            if share >= 10.0 && growth >= 50.0 {
                out.push(Recommendation {
                    kind: "tag_growth",
                    text: format!(
                        "{key}={value} spent {}, up {growth:.0}% from {} {label}; it is now {share:.0}% of spend.",
                        usd(c.cost_micros),
                        usd(o.cost_micros)
                    ),
                    numbers: json!({"tag": key, "value": value, "cost_usd": c.cost_micros as f64 / 1e6,
                        "previous_cost_usd": o.cost_micros as f64 / 1e6,
                        "growth_percent": growth.round(), "share_percent": (share * 10.0).round() / 10.0}),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::event::{UsageEvent, Window};

    fn rollup(events: &[(&str, &str, &str, u16, u32, &str)]) -> Rollup {
        let mut r = Rollup::default();
        for (i, (provider, model, endpoint, status, latency, cost)) in events.iter().enumerate() {
            let raw: Value = serde_json::from_str(&format!(
                r#"{{"event_id": "e{i}", "user_id": "u", "timestamp": "2026-10-10T10:00:00Z",
                "kind": "request", "provider": "{provider}", "model": "{model}",
                "endpoint": "{endpoint}", "status_code": {status}, "latency_ms": {latency},
                "credits": 1, "cost_usd": {cost}}}"#
            ))
            .unwrap();
            let window = Window {
                now: "2026-11-01T00:00:00Z".parse().unwrap(),
                retention_days: 90,
            };
            r.add(&UsageEvent::parse(&raw, window).unwrap());
        }
        r
    }

    fn many(
        n: usize,
        e: (
            &'static str,
            &'static str,
            &'static str,
            u16,
            u32,
            &'static str,
        ),
    ) -> Vec<(
        &'static str,
        &'static str,
        &'static str,
        u16,
        u32,
        &'static str,
    )> {
        vec![e; n]
    }

    #[test]
    fn a_dominant_model_and_a_cheaper_one_in_use_are_named_with_their_numbers() {
        let mut events = many(60, ("openai", "gpt-4o", "/v1/embeddings", 200, 100, "0.06"));
        events.extend(many(
            60,
            (
                "openai",
                "text-embedding-3-small",
                "/v1/embeddings",
                200,
                50,
                "0.001",
            ),
        ));
        let now = rollup(&events);

        let recs = recommendations(&now, &Rollup::default(), "last month");

        let kinds: Vec<&str> = recs.iter().map(|r| r.kind).collect();
        assert_eq!(kinds, ["concentration", "cheaper_model"]);
        assert!(
            recs[0]
                .text
                .starts_with("98% of spend ($3.60 of $3.66) is openai/gpt-4o"),
            "{}",
            recs[0].text
        );
        assert!(
            recs[1].text.contains("costs $0.0600 per request"),
            "{}",
            recs[1].text
        );
        assert!(recs[1].text.contains("(60× less)"), "{}", recs[1].text);
        assert_eq!(recs[1].numbers["saving_usd"], json!(1.77));
    }

    #[test]
    fn an_endpoint_whose_errors_grew_is_named_against_the_period_before() {
        let mut now_events = many(92, ("openai", "gpt-4o", "/v1/chat", 200, 100, "0"));
        now_events.extend(many(8, ("openai", "gpt-4o", "/v1/chat", 500, 100, "0")));
        let mut old_events = many(199, ("openai", "gpt-4o", "/v1/chat", 200, 100, "0"));
        old_events.extend(many(1, ("openai", "gpt-4o", "/v1/chat", 500, 100, "0")));

        let recs = recommendations(&rollup(&now_events), &rollup(&old_events), "last month");

        let errors: Vec<&Recommendation> = recs.iter().filter(|r| r.kind == "error_rate").collect();
        assert_eq!(errors.len(), 1);
        assert_eq!(
            errors[0].text,
            "Errors on /v1/chat: 8.0% against 0.5% last month."
        );
    }

    #[test]
    fn too_little_usage_draws_no_conclusion() {
        let now = rollup(&many(
            10,
            ("openai", "gpt-4o", "/v1/chat", 500, 100, "0.01"),
        ));
        let recs = recommendations(&now, &Rollup::default(), "last week");
        assert!(recs.iter().all(|r| r.kind == "concentration"), "{recs:?}");
    }

    #[test]
    fn a_tag_value_whose_spend_grew_fast_is_named_with_its_figures() {
        use crate::analytics::attribution::TagKeys;
        let keys = TagKeys::parse(Some("project")).unwrap();
        let tagged = |n: usize, cost: &str| {
            let mut r = Rollup::default();
            for i in 0..n {
                let raw: Value = serde_json::from_str(&format!(
                    r#"{{"event_id": "t{i}", "user_id": "u", "timestamp": "2026-10-10T10:00:00Z",
                    "kind": "request", "provider": "openai", "model": "gpt-4o", "status_code": 200,
                    "latency_ms": 5, "cost_usd": {cost}, "tags": {{"project": "search"}}}}"#
                ))
                .unwrap();
                let window = Window {
                    now: "2026-11-01T00:00:00Z".parse().unwrap(),
                    retention_days: 90,
                };
                r.add_attributed(&UsageEvent::parse(&raw, window).unwrap(), &keys);
            }
            r
        };
        let (before, now) = (tagged(60, "0.01"), tagged(60, "0.03"));

        let recs = recommendations(&now, &before, "last month");

        let rec = recs.iter().find(|r| r.kind == "tag_growth").unwrap();
        assert_eq!(
            rec.text,
            "project=search spent $1.80, up 200% from $0.60 last month; it is now 100% of spend."
        );
    }
}
