//! Rollups: everything the analytics routes read, summed per user per hour and per day (and
//! system-wide). A rollup is a bag of integer counters stored as flat DynamoDB attributes, so a
//! batch of events becomes one `ADD` per counter and two rollups merge by adding.
//!
//! Attribute names: `T|f` totals; `P|provider|f`, `M|provider|model|f`, `E|endpoint|f` per
//! dimension, with f = r requests, e errors, c credits, u cost (micro-USD), i/o tokens in/out,
//! l latency sum (ms); `H|b`, `MH|provider|model|b`, `EH|endpoint|b` latency histogram buckets;
//! `D|hh` requests per UTC hour of day; `Y|x` payments; `MG|provider|model|key|value|f` the
//! usage of one model under one value of an attributed tag (every f but l).
//!
//! Tag counters ride in the model's own item (stored there as `G|key|value|f`): an event
//! already rewrites its model item, so attribution adds bytes to a write it pays anyway instead
//! of items of its own, and it keeps exact model-by-tag figures (what `filter=tag:…` with
//! `group_by=model` needs). A tag's total is the sum over its models.

use std::collections::BTreeMap;

use super::attribution::TagKeys;
use super::event::{Detail, UsageEvent};
use super::histogram::Histogram;
use crate::analytics::event::PaymentStatus;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub requests: i64,
    pub errors: i64,
    pub credits: i64,
    pub cost_micros: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub latency_ms: i64,
}

impl Counters {
    pub fn merge(&mut self, o: &Counters) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.credits += o.credits;
        self.cost_micros += o.cost_micros;
        self.input_tokens += o.input_tokens;
        self.output_tokens += o.output_tokens;
        self.latency_ms += o.latency_ms;
    }

    /// What a tag's counters keep: all but the latency sum (latency per tag would need its
    /// histograms too, the largest part of an item).
    fn tag_fields(&self) -> [(&'static str, i64); 6] {
        [
            ("r", self.requests),
            ("e", self.errors),
            ("c", self.credits),
            ("u", self.cost_micros),
            ("i", self.input_tokens),
            ("o", self.output_tokens),
        ]
    }

    fn fields(&self) -> [(&'static str, i64); 7] {
        [
            ("r", self.requests),
            ("e", self.errors),
            ("c", self.credits),
            ("u", self.cost_micros),
            ("i", self.input_tokens),
            ("o", self.output_tokens),
            ("l", self.latency_ms),
        ]
    }

    fn set(&mut self, field: &str, v: i64) {
        match field {
            "r" => self.requests += v,
            "e" => self.errors += v,
            "c" => self.credits += v,
            "u" => self.cost_micros += v,
            "i" => self.input_tokens += v,
            "o" => self.output_tokens += v,
            "l" => self.latency_ms += v,
            _ => {}
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Payments {
    pub succeeded: i64,
    pub paid_micros: i64,
    pub credits_purchased: i64,
    pub failed: i64,
    pub failed_micros: i64,
    pub refunds: i64,
    pub refunded_micros: i64,
    pub credits_refunded: i64,
}

impl Payments {
    fn fields(&self) -> [(&'static str, i64); 8] {
        [
            ("n", self.succeeded),
            ("a", self.paid_micros),
            ("c", self.credits_purchased),
            ("f", self.failed),
            ("fa", self.failed_micros),
            ("r", self.refunds),
            ("ra", self.refunded_micros),
            ("rc", self.credits_refunded),
        ]
    }

    fn set(&mut self, field: &str, v: i64) {
        match field {
            "n" => self.succeeded += v,
            "a" => self.paid_micros += v,
            "c" => self.credits_purchased += v,
            "f" => self.failed += v,
            "fa" => self.failed_micros += v,
            "r" => self.refunds += v,
            "ra" => self.refunded_micros += v,
            "rc" => self.credits_refunded += v,
            _ => {}
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rollup {
    pub total: Counters,
    pub providers: BTreeMap<String, Counters>,
    /// Keyed by (provider, model).
    pub models: BTreeMap<(String, String), Counters>,
    pub endpoints: BTreeMap<String, Counters>,
    pub latency: Histogram,
    pub model_latency: BTreeMap<(String, String), Histogram>,
    pub endpoint_latency: BTreeMap<String, Histogram>,
    /// Requests per UTC hour of day.
    pub hour_of_day: BTreeMap<u8, i64>,
    pub payments: Payments,
    /// Per (provider, model), per attributed (tag key, value): requests, errors, credits, cost.
    pub model_tags: BTreeMap<(String, String), BTreeMap<(String, String), Counters>>,
}

/// A (provider, model) pair.
pub type ModelId = (String, String);
/// A (tag key, value) pair.
pub type TagValue = (String, String);

impl Rollup {
    pub fn add(&mut self, event: &UsageEvent) {
        self.add_with(event, true);
    }

    /// Adds `event` and its attributed tags (`keys`): what a user's rollups hold.
    pub fn add_attributed(&mut self, event: &UsageEvent, keys: &TagKeys) {
        self.add_with(event, true);
        if let Detail::Request(r) = &event.detail {
            for (k, v) in keys.of(event) {
                let c = self
                    .model_tags
                    .entry((r.provider.clone(), r.model.clone()))
                    .or_default()
                    .entry((k.to_owned(), v.to_owned()))
                    .or_default();
                c.requests += 1;
                c.errors += i64::from(r.is_error());
                c.credits += r.credits;
                c.cost_micros += r.cost_micros;
                c.input_tokens += r.input_tokens;
                c.output_tokens += r.output_tokens;
            }
        }
    }

    /// Each value of tag `key` with its usage, summed over models.
    pub fn tag_values(&self, key: &str) -> BTreeMap<String, Counters> {
        let mut out: BTreeMap<String, Counters> = BTreeMap::new();
        for tags in self.model_tags.values() {
            for ((k, v), c) in tags {
                if k == key {
                    out.entry(v.clone()).or_default().merge(c);
                }
            }
        }
        out
    }

    /// Adds what system-wide reports read (totals, providers, models, payments) and leaves out
    /// endpoints, histograms and hours of day, which keeps the shared items small and cheap to
    /// write.
    pub fn add_system(&mut self, event: &UsageEvent) {
        self.add_with(event, false);
    }

    fn add_with(&mut self, event: &UsageEvent, detail: bool) {
        match &event.detail {
            Detail::Request(r) => {
                let c = Counters {
                    requests: 1,
                    errors: i64::from(r.is_error()),
                    credits: r.credits,
                    cost_micros: r.cost_micros,
                    input_tokens: r.input_tokens,
                    output_tokens: r.output_tokens,
                    latency_ms: i64::from(r.latency_ms),
                };
                self.total.merge(&c);
                self.providers
                    .entry(r.provider.clone())
                    .or_default()
                    .merge(&c);
                let model = (r.provider.clone(), r.model.clone());
                self.models.entry(model.clone()).or_default().merge(&c);
                if !detail {
                    return;
                }
                self.endpoints
                    .entry(r.endpoint.clone())
                    .or_default()
                    .merge(&c);
                self.latency.record(r.latency_ms);
                self.model_latency
                    .entry(model)
                    .or_default()
                    .record(r.latency_ms);
                self.endpoint_latency
                    .entry(r.endpoint.clone())
                    .or_default()
                    .record(r.latency_ms);
                let hour = event
                    .timestamp
                    .format("%H")
                    .to_string()
                    .parse::<u8>()
                    .unwrap_or(0);
                *self.hour_of_day.entry(hour).or_default() += 1;
            }
            Detail::Payment(p) => match p.status {
                PaymentStatus::Succeeded => {
                    self.payments.succeeded += 1;
                    self.payments.paid_micros += p.amount_micros;
                    self.payments.credits_purchased += p.credits;
                }
                PaymentStatus::Failed => {
                    self.payments.failed += 1;
                    self.payments.failed_micros += p.amount_micros;
                }
                PaymentStatus::Refunded => {
                    self.payments.refunds += 1;
                    self.payments.refunded_micros += p.amount_micros;
                    self.payments.credits_refunded += p.credits;
                }
            },
        }
    }

    pub fn merge(&mut self, o: &Rollup) {
        self.total.merge(&o.total);
        for (k, v) in &o.providers {
            self.providers.entry(k.clone()).or_default().merge(v);
        }
        for (k, v) in &o.models {
            self.models.entry(k.clone()).or_default().merge(v);
        }
        for (k, v) in &o.endpoints {
            self.endpoints.entry(k.clone()).or_default().merge(v);
        }
        self.latency.merge(&o.latency);
        for (k, v) in &o.model_latency {
            self.model_latency.entry(k.clone()).or_default().merge(v);
        }
        for (k, v) in &o.endpoint_latency {
            self.endpoint_latency.entry(k.clone()).or_default().merge(v);
        }
        for (h, v) in &o.hour_of_day {
            *self.hour_of_day.entry(*h).or_default() += v;
        }
        for (f, v) in o.payments.fields() {
            self.payments.set(f, v);
        }
        for (m, tags) in &o.model_tags {
            let mine = self.model_tags.entry(m.clone()).or_default();
            for (t, c) in tags {
                mine.entry(t.clone()).or_default().merge(c);
            }
        }
    }

    /// Every non-zero counter as (attribute name, value): what one `ADD` update applies.
    pub fn terms(&self) -> Vec<(String, i64)> {
        let mut out = vec![];
        let mut push = |name: String, v: i64| {
            if v != 0 {
                out.push((name, v));
            }
        };
        for (f, v) in self.total.fields() {
            push(format!("T|{f}"), v);
        }
        for (p, c) in &self.providers {
            for (f, v) in c.fields() {
                push(format!("P|{p}|{f}"), v);
            }
        }
        for ((p, m), c) in &self.models {
            for (f, v) in c.fields() {
                push(format!("M|{p}|{m}|{f}"), v);
            }
        }
        for (e, c) in &self.endpoints {
            for (f, v) in c.fields() {
                push(format!("E|{e}|{f}"), v);
            }
        }
        for (b, v) in &self.latency.buckets {
            push(format!("H|{b}"), *v);
        }
        for ((p, m), h) in &self.model_latency {
            for (b, v) in &h.buckets {
                push(format!("MH|{p}|{m}|{b}"), *v);
            }
        }
        for (e, h) in &self.endpoint_latency {
            for (b, v) in &h.buckets {
                push(format!("EH|{e}|{b}"), *v);
            }
        }
        for (h, v) in &self.hour_of_day {
            push(format!("D|{h:02}"), *v);
        }
        for (f, v) in self.payments.fields() {
            push(format!("Y|{f}"), v);
        }
        for ((p, m), tags) in &self.model_tags {
            for ((k, tv), c) in tags {
                for (f, v) in c.tag_fields() {
                    push(format!("MG|{p}|{m}|{k}|{tv}|{f}"), v);
                }
            }
        }
        out
    }

    /// The attribute name `term` is stored under in its item: a model's tag counters drop the
    /// model, which the item's key already names (fewer bytes in every write).
    pub fn stored_name(term: &str) -> String {
        match term.strip_prefix("MG|") {
            Some(rest) => {
                let parts: Vec<&str> = rest.splitn(3, '|').collect();
                match parts.as_slice() {
                    [_, _, tail] => format!("G|{tail}"),
                    _ => term.to_owned(),
                }
            }
            None => term.to_owned(),
        }
    }

    /// Rebuilds the rollup of one stored item: `part` is its part of the bucket (see
    /// [`Self::part_of`]), which names the model of its tag counters.
    pub fn from_item<'a>(
        part: Option<&str>,
        terms: impl IntoIterator<Item = (&'a str, i64)>,
    ) -> Rollup {
        let model = part.and_then(|p| p.strip_prefix("M#"));
        let mut full: Vec<(String, i64)> = vec![];
        let mut plain: Vec<(&str, i64)> = vec![];
        for (name, v) in terms {
            match (model, name.strip_prefix("G|")) {
                (Some(m), Some(rest)) => full.push((format!("MG|{m}|{rest}"), v)),
                _ => plain.push((name, v)),
            }
        }
        Rollup::from_terms(
            plain
                .into_iter()
                .chain(full.iter().map(|(n, v)| (n.as_str(), *v))),
        )
    }

    /// Which stored item of its bucket the counter `term` lives in: the bucket's own item
    /// (`None`: totals, providers, latency, hours of day, payments — all bounded in size), or
    /// the item of one model or one endpoint. Storing each model and endpoint apart keeps every
    /// item an event rewrites small, so a write costs the same however many models and
    /// endpoints a user has (DynamoDB bills an update on the item's whole size).
    pub fn part_of(term: &str) -> Option<String> {
        let parts: Vec<&str> = term.split('|').collect();
        match parts.as_slice() {
            ["M" | "MH", p, m, _] | ["MG", p, m, _, _, _] => Some(format!("M#{p}|{m}")),
            ["E" | "EH", e, _] => Some(format!("E#{e}")),
            _ => None,
        }
    }

    /// Rebuilds a rollup from stored counters; attributes that are not counters are skipped.
    pub fn from_terms<'a>(terms: impl IntoIterator<Item = (&'a str, i64)>) -> Rollup {
        let mut r = Rollup::default();
        for (name, v) in terms {
            let parts: Vec<&str> = name.split('|').collect();
            match parts.as_slice() {
                ["T", f] => r.total.set(f, v),
                ["P", p, f] => r.providers.entry((*p).to_owned()).or_default().set(f, v),
                ["M", p, m, f] => r
                    .models
                    .entry(((*p).to_owned(), (*m).to_owned()))
                    .or_default()
                    .set(f, v),
                ["E", e, f] => r.endpoints.entry((*e).to_owned()).or_default().set(f, v),
                ["H", b] => {
                    if let Ok(b) = b.parse() {
                        r.latency.add(b, v)
                    }
                }
                ["MH", p, m, b] => {
                    if let Ok(b) = b.parse() {
                        r.model_latency
                            .entry(((*p).to_owned(), (*m).to_owned()))
                            .or_default()
                            .add(b, v)
                    }
                }
                ["EH", e, b] => {
                    if let Ok(b) = b.parse() {
                        r.endpoint_latency
                            .entry((*e).to_owned())
                            .or_default()
                            .add(b, v)
                    }
                }
                ["D", h] => {
                    if let Ok(h) = h.parse() {
                        *r.hour_of_day.entry(h).or_default() += v
                    }
                }
                ["Y", f] => r.payments.set(f, v),
                ["MG", p, m, k, tv, f] => r
                    .model_tags
                    .entry(((*p).to_owned(), (*m).to_owned()))
                    .or_default()
                    .entry(((*k).to_owned(), (*tv).to_owned()))
                    .or_default()
                    .set(f, v),
                _ => {}
            }
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(id: &str, model: &str, status: u16, latency: u32, cost: f64) -> UsageEvent {
        let raw = json!({"event_id": id, "user_id": "u", "timestamp": "2026-11-22T10:04:05Z", "kind": "request",
            "provider": "openai", "model": model, "endpoint": "/v1/chat", "status_code": status,
            "latency_ms": latency, "credits": 10, "cost_usd": cost});
        crate::analytics::event::fixture(&raw)
    }

    #[test]
    fn a_rollup_survives_the_trip_through_attributes() {
        let mut r = Rollup::default();
        r.add(&event("a", "gpt-4o", 200, 100, 0.01));
        r.add(&event("b", "gpt-4o-mini", 500, 300, 0.002));
        let terms = r.terms();
        let back = Rollup::from_terms(terms.iter().map(|(n, v)| (n.as_str(), *v)));
        assert_eq!(back, r);
        assert_eq!(r.total.requests, 2);
        assert_eq!(r.total.errors, 1);
        assert_eq!(r.total.cost_micros, 12_000);
        assert_eq!(r.hour_of_day[&10], 2);
    }

    fn tagged(id: &str, model: &str, tags: serde_json::Value) -> UsageEvent {
        let raw = json!({"event_id": id, "user_id": "u", "timestamp": "2026-11-22T10:04:05Z", "kind": "request",
            "provider": "openai", "model": model, "endpoint": "/v1/chat", "status_code": 200,
            "latency_ms": 10, "credits": 10, "cost_usd": 0.5, "tags": tags});
        crate::analytics::event::fixture(&raw)
    }

    #[test]
    fn attributed_tags_are_counted_per_model_and_stored_in_the_models_item() {
        let keys = TagKeys::parse(Some("project,team")).unwrap();
        let mut r = Rollup::default();
        r.add_attributed(
            &tagged("a", "gpt-4o", json!({"project": "search", "x": "y"})),
            &keys,
        );
        r.add_attributed(
            &tagged(
                "b",
                "gpt-4o-mini",
                json!({"project": "search", "team": "core"}),
            ),
            &keys,
        );
        r.add_attributed(&tagged("c", "gpt-4o", json!({"project": "chat"})), &keys);

        let projects = r.tag_values("project");
        assert_eq!(projects["search"].requests, 2);
        assert_eq!(projects["search"].cost_micros, 1_000_000);
        assert_eq!(projects["chat"].requests, 1);
        assert_eq!(r.tag_values("team")["core"].requests, 1);
        assert!(r.tag_values("x").is_empty());

        // Stored: each model item keeps its own tag counters under short names.
        let mut items: BTreeMap<Option<String>, Vec<(String, i64)>> = BTreeMap::new();
        for (name, v) in r.terms() {
            items
                .entry(Rollup::part_of(&name))
                .or_default()
                .push((Rollup::stored_name(&name), v));
        }
        let gpt4o = &items[&Some("M#openai|gpt-4o".to_owned())];
        assert!(gpt4o
            .iter()
            .any(|(n, v)| n == "G|project|search|u" && *v == 500_000));
        let mut back = Rollup::default();
        for (part, terms) in &items {
            back.merge(&Rollup::from_item(
                part.as_deref(),
                terms.iter().map(|(n, v)| (n.as_str(), *v)),
            ));
        }
        assert_eq!(back, r);
    }

    #[test]
    fn merging_two_rollups_equals_rolling_up_all_events() {
        let (mut a, mut b, mut all) = (Rollup::default(), Rollup::default(), Rollup::default());
        for (i, e) in [
            event("1", "m1", 200, 5, 0.1),
            event("2", "m2", 404, 50, 0.2),
            event("3", "m1", 200, 500, 0.3),
        ]
        .iter()
        .enumerate()
        {
            if i == 0 {
                a.add(e)
            } else {
                b.add(e)
            }
            all.add(e);
        }
        a.merge(&b);
        assert_eq!(a, all);
    }

    #[test]
    fn model_and_endpoint_counters_live_in_items_of_their_own_and_the_rest_in_the_bucket() {
        let parts: Vec<Option<String>> = [
            "T|r",
            "P|openai|u",
            "H|12",
            "D|07",
            "Y|paid",
            "M|openai|gpt-4o|r",
            "MH|openai|gpt-4o|12",
            "E|/v1/chat|e",
            "EH|/v1/chat|3",
        ]
        .iter()
        .map(|t| Rollup::part_of(t))
        .collect();

        assert_eq!(&parts[..5], &[None, None, None, None, None]);
        assert_eq!(parts[5].as_deref(), Some("M#openai|gpt-4o"));
        assert_eq!(parts[5], parts[6]);
        assert_eq!(parts[7].as_deref(), Some("E#/v1/chat"));
        assert_eq!(parts[7], parts[8]);
    }
}
