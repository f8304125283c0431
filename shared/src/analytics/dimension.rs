//! Slicing usage by dimension: `group_by` (provider, model, endpoint or an attributed tag) and
//! `filter` (one value of one of them), applied to rollups.
//!
//! Rollups keep each dimension's own counters, plus model-by-tag counters; they keep no
//! model-by-endpoint or tag-by-endpoint counts. So some slices are exact and some cannot be
//! answered at all: a filter on an endpoint says nothing of that endpoint's models. Routes ask
//! [`Dims::keeps`] and leave out (or refuse, naming the parameter) what a filter cannot split,
//! rather than guess.

use std::collections::{BTreeMap, BTreeSet};

use super::attribution::TagKeys;
use super::rollup::{Counters, Rollup};
use crate::platform::error::ApiError;

/// At most this many groups come back by name; the rest are summed as `other`.
pub const DEFAULT_GROUPS: usize = 10;
pub const MAX_GROUPS: usize = 100;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dimension {
    Provider,
    /// Named `provider/model`, as every route names models.
    Model,
    Endpoint,
    Tag(String),
}

impl Dimension {
    /// `provider`, `model`, `endpoint` or `tag:<declared key>`; `field` names the parameter.
    pub fn parse(raw: &str, keys: &TagKeys, field: &str) -> Result<Self, ApiError> {
        match raw {
            "provider" => Ok(Self::Provider),
            "model" => Ok(Self::Model),
            "endpoint" => Ok(Self::Endpoint),
            other => match other.strip_prefix("tag:") {
                Some(key) if keys.declared(key) => Ok(Self::Tag(key.to_owned())),
                Some(key) => Err(ApiError::invalid(
                    field,
                    format!(
                        "tag {key:?} is not attributed in this deployment (attributed: {})",
                        listed(keys)
                    ),
                )),
                None => Err(ApiError::invalid(
                    field,
                    format!(
                        "{field} must be provider, model, endpoint or tag:<key>, not {other:?}"
                    ),
                )),
            },
        }
    }

    pub fn label(&self) -> String {
        match self {
            Self::Provider => "provider".into(),
            Self::Model => "model".into(),
            Self::Endpoint => "endpoint".into(),
            Self::Tag(k) => format!("tag:{k}"),
        }
    }

    /// Each value of this dimension in `r` with its usage.
    pub fn values(&self, r: &Rollup) -> BTreeMap<String, Counters> {
        match self {
            Self::Provider => r.providers.clone(),
            Self::Model => r
                .models
                .iter()
                .map(|((p, m), c)| (format!("{p}/{m}"), *c))
                .collect(),
            Self::Endpoint => r.endpoints.clone(),
            Self::Tag(k) => r.tag_values(k),
        }
    }

    /// The usage carrying no value of this dimension: requests without the tag. Every request
    /// has a provider, a model and an endpoint (`(none)` when not given).
    ///
    /// Taken from the model items, which hold the tag counters, rather than from `r.total`: in
    /// a zone off the hour the total comes from quarter hours and the models from whole edge
    /// hours, and the difference of two windows could even be negative.
    pub fn untagged(&self, r: &Rollup) -> Option<Counters> {
        let Self::Tag(_) = self else { return None };
        let mut rest = Counters::default();
        for c in r.models.values() {
            rest.merge(c);
        }
        rest.latency_ms = 0;
        for c in self.values(r).values() {
            rest.requests -= c.requests;
            rest.errors -= c.errors;
            rest.credits -= c.credits;
            rest.cost_micros -= c.cost_micros;
            rest.input_tokens -= c.input_tokens;
            rest.output_tokens -= c.output_tokens;
        }
        Some(rest)
    }
}

fn listed(keys: &TagKeys) -> String {
    let all: Vec<&str> = keys.iter().collect();
    if all.is_empty() {
        "none".into()
    } else {
        all.join(", ")
    }
}

/// What a route shows, for [`Dims::keeps`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Facet<'a> {
    Providers,
    Models,
    Endpoints,
    Tag(&'a str),
    /// Latency percentiles.
    Latency,
    /// Requests per hour of day.
    Hours,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    pub dimension: Dimension,
    pub value: String,
}

impl Filter {
    /// `<dimension>=<value>`: `provider=openai`, `model=openai/gpt-4o`, `endpoint=/v1/chat`,
    /// `tag:project=search`.
    pub fn parse(raw: &str, keys: &TagKeys) -> Result<Self, ApiError> {
        let Some((dimension, value)) = raw.split_once('=') else {
            return Err(ApiError::invalid(
                "filter",
                format!(
                    "filter must be <dimension>=<value> such as tag:project=search, not {raw:?}"
                ),
            ));
        };
        if value.is_empty() {
            return Err(ApiError::invalid("filter", "filter needs a value after ="));
        }
        let dimension = Dimension::parse(dimension, keys, "filter")?;
        if dimension == Dimension::Model && !value.contains('/') {
            // A bare model name matches nothing: every route names models provider/model.
            return Err(ApiError::invalid(
                "filter",
                format!("a model filter names provider/model, such as model=openai/{value}"),
            ));
        }
        Ok(Filter {
            dimension,
            value: value.to_owned(),
        })
    }

    /// Whether a rollup cut to this filter still knows `facet` exactly.
    pub fn keeps(&self, facet: Facet) -> bool {
        match (&self.dimension, facet) {
            (Dimension::Provider | Dimension::Model, f) => matches!(
                f,
                Facet::Providers | Facet::Models | Facet::Tag(_) | Facet::Latency
            ),
            (Dimension::Endpoint, f) => matches!(f, Facet::Endpoints | Facet::Latency),
            (Dimension::Tag(key), f) => match f {
                Facet::Providers | Facet::Models => true,
                Facet::Tag(k) => k == key,
                _ => false,
            },
        }
    }

    /// `r` cut to the usage this filter names; what it cannot split is left empty, and
    /// payments (which belong to no dimension) are left out.
    pub fn apply(&self, r: &Rollup) -> Rollup {
        let mut out = Rollup::default();
        let models = |keep: &dyn Fn(&str, &str) -> bool, out: &mut Rollup| {
            for ((p, m), c) in &r.models {
                if !keep(p, m) {
                    continue;
                }
                let id = (p.clone(), m.clone());
                out.models.insert(id.clone(), *c);
                out.providers.entry(p.clone()).or_default().merge(c);
                out.total.merge(c);
                if let Some(h) = r.model_latency.get(&id) {
                    out.model_latency.insert(id.clone(), h.clone());
                    out.latency.merge(h);
                }
                if let Some(tags) = r.model_tags.get(&id) {
                    out.model_tags.insert(id, tags.clone());
                }
            }
        };
        match &self.dimension {
            Dimension::Provider => models(&|p, _| p == self.value, &mut out),
            Dimension::Model => models(&|p, m| format!("{p}/{m}") == self.value, &mut out),
            Dimension::Endpoint => {
                if let Some(c) = r.endpoints.get(&self.value) {
                    out.total = *c;
                    out.endpoints.insert(self.value.clone(), *c);
                }
                if let Some(h) = r.endpoint_latency.get(&self.value) {
                    out.latency = h.clone();
                    out.endpoint_latency.insert(self.value.clone(), h.clone());
                }
            }
            Dimension::Tag(key) => {
                let tag = (key.clone(), self.value.clone());
                for (id, tags) in &r.model_tags {
                    if let Some(c) = tags.get(&tag) {
                        out.models.insert(id.clone(), *c);
                        out.providers.entry(id.0.clone()).or_default().merge(c);
                        out.total.merge(c);
                        out.model_tags
                            .insert(id.clone(), BTreeMap::from([(tag.clone(), *c)]));
                    }
                }
            }
        }
        out
    }
}

/// A read's `filter` and `group_by`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dims {
    pub filter: Option<Filter>,
    pub group_by: Option<Dimension>,
}

impl Dims {
    pub fn parse(
        filter: Option<&str>,
        group_by: Option<&str>,
        keys: &TagKeys,
    ) -> Result<Self, ApiError> {
        let dims = Dims {
            filter: filter.map(|f| Filter::parse(f, keys)).transpose()?,
            group_by: group_by
                .map(|g| Dimension::parse(g, keys, "group_by"))
                .transpose()?,
        };
        if let (Some(f), Some(g)) = (&dims.filter, &dims.group_by) {
            if !f.keeps(facet_of(g)) {
                return Err(ApiError::invalid(
                    "group_by",
                    format!(
                        "usage filtered by {} cannot be grouped by {}: rollups do not count those two dimensions together",
                        f.dimension.label(),
                        g.label()
                    ),
                ));
            }
        }
        Ok(dims)
    }

    pub fn keeps(&self, facet: Facet) -> bool {
        self.filter.as_ref().is_none_or(|f| f.keeps(facet))
    }

    /// A route whose whole answer is `facet` refuses a filter that cannot split it.
    pub fn require(&self, facet: Facet, what: &str) -> Result<(), ApiError> {
        match &self.filter {
            Some(f) if !f.keeps(facet) => Err(ApiError::invalid(
                "filter",
                format!(
                    "{what} cannot be filtered by {}: rollups do not count those two dimensions together",
                    f.dimension.label()
                ),
            )),
            _ => Ok(()),
        }
    }

    pub fn apply(&self, r: &Rollup) -> Rollup {
        match &self.filter {
            Some(f) => f.apply(r),
            None => r.clone(),
        }
    }
}

fn facet_of(d: &Dimension) -> Facet<'_> {
    match d {
        Dimension::Provider => Facet::Providers,
        Dimension::Model => Facet::Models,
        Dimension::Endpoint => Facet::Endpoints,
        Dimension::Tag(k) => Facet::Tag(k),
    }
}

/// A grouping of a period: the top values by cost (then requests), the rest summed as `other`,
/// and for a tag the usage without it.
#[derive(Clone, Debug, PartialEq)]
pub struct Groups {
    pub top: Vec<(String, Counters)>,
    /// How many values were summed, and their sum.
    pub other: Option<(usize, Counters)>,
    pub untagged: Option<Counters>,
}

impl Groups {
    /// Ranks `dim`'s values over `r` and keeps `limit` of them by name.
    pub fn rank(r: &Rollup, dim: &Dimension, limit: usize) -> Groups {
        let mut all: Vec<(String, Counters)> = dim.values(r).into_iter().collect();
        all.sort_by(|a, b| {
            b.1.cost_micros
                .cmp(&a.1.cost_micros)
                .then(b.1.requests.cmp(&a.1.requests))
                .then(a.0.cmp(&b.0))
        });
        let rest = if all.len() > limit {
            all.split_off(limit)
        } else {
            vec![]
        };
        Groups {
            top: all,
            other: summed(&rest),
            untagged: dim.untagged(r).filter(|c| c.requests != 0),
        }
    }

    /// The same groups (by the names ranked over the whole period) in one bucket's rollup `r`.
    pub fn within(&self, r: &Rollup, dim: &Dimension) -> Groups {
        let named: BTreeSet<&str> = self.top.iter().map(|(n, _)| n.as_str()).collect();
        let values = dim.values(r);
        let top = self
            .top
            .iter()
            .map(|(n, _)| (n.clone(), values.get(n).copied().unwrap_or_default()))
            .collect();
        let rest: Vec<(String, Counters)> = values
            .into_iter()
            .filter(|(n, _)| !named.contains(n.as_str()))
            .collect();
        Groups {
            top,
            other: summed(&rest),
            untagged: dim.untagged(r),
        }
    }
}

fn summed(rest: &[(String, Counters)]) -> Option<(usize, Counters)> {
    if rest.is_empty() {
        return None;
    }
    let mut sum = Counters::default();
    for (_, c) in rest {
        sum.merge(c);
    }
    Some((rest.len(), sum))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys() -> TagKeys {
        TagKeys::parse(Some("project,team")).unwrap()
    }

    fn usage() -> Rollup {
        let mut r = Rollup::default();
        let events = [
            (
                "1",
                "gpt-4o",
                "/v1/chat",
                json!({"project": "search"}),
                0.30,
            ),
            ("2", "gpt-4o", "/v1/embed", json!({"project": "chat"}), 0.20),
            (
                "3",
                "mini",
                "/v1/chat",
                json!({"project": "search", "team": "a"}),
                0.05,
            ),
            ("4", "mini", "/v1/chat", json!({}), 0.01),
        ];
        for (id, model, endpoint, tags, cost) in events {
            let raw = json!({"event_id": id, "user_id": "u", "timestamp": "2026-11-22T10:00:00Z",
                "kind": "request", "provider": "openai", "model": model, "endpoint": endpoint,
                "status_code": 200, "latency_ms": 10, "credits": 1, "cost_usd": cost, "tags": tags});
            let e = crate::analytics::event::fixture(&raw);
            r.add_attributed(&e, &keys());
        }
        r
    }

    fn field(e: ApiError) -> String {
        let body: serde_json::Value = serde_json::from_str(&e.body()).unwrap();
        body["error"]["field"].as_str().unwrap().to_owned()
    }

    #[test]
    fn a_tag_filter_keeps_that_values_usage_by_model() {
        let f = Filter::parse("tag:project=search", &keys()).unwrap();

        let cut = f.apply(&usage());

        assert_eq!(cut.total.requests, 2);
        assert_eq!(cut.total.cost_micros, 350_000);
        assert_eq!(cut.models.len(), 2);
        assert!(cut.endpoints.is_empty());
    }

    #[test]
    fn grouping_by_tag_ranks_by_cost_and_counts_the_untagged() {
        let g = Groups::rank(&usage(), &Dimension::Tag("project".into()), 1);

        assert_eq!(g.top.len(), 1);
        assert_eq!(g.top[0].0, "search");
        assert_eq!(g.other.unwrap().0, 1);
        assert_eq!(g.other.unwrap().1.cost_micros, 200_000);
        assert_eq!(g.untagged.unwrap().requests, 1);
        assert_eq!(g.untagged.unwrap().cost_micros, 10_000);
    }

    #[test]
    fn the_untagged_row_comes_from_the_model_items_even_when_the_exact_total_covers_less() {
        // A Kolkata day: the total from quarter hours misses an edge hour's tagged event that
        // the attributed model items hold.
        let mut r = usage();
        r.total.requests -= 1;
        r.total.cost_micros -= 300_000;

        let g = Groups::rank(&r, &Dimension::Tag("project".into()), 10);

        assert_eq!(g.untagged.unwrap().requests, 1);
        assert_eq!(g.untagged.unwrap().cost_micros, 10_000);
    }

    #[test]
    fn a_model_filter_without_its_provider_is_refused() {
        let e = Filter::parse("model=gpt-4o", &keys()).unwrap_err();

        assert_eq!(field(e), "filter");
        assert!(Filter::parse("model=openai/gpt-4o", &keys()).is_ok());
    }

    #[test]
    fn undeclared_keys_and_unsplittable_pairs_are_refused_by_name() {
        assert_eq!(
            field(Dims::parse(None, Some("tag:region"), &keys()).unwrap_err()),
            "group_by"
        );
        assert_eq!(
            field(Dims::parse(Some("tag:region=eu"), None, &keys()).unwrap_err()),
            "filter"
        );
        assert_eq!(
            field(Dims::parse(Some("model"), None, &keys()).unwrap_err()),
            "filter"
        );
        assert_eq!(
            field(Dims::parse(None, Some("color"), &keys()).unwrap_err()),
            "group_by"
        );
        assert_eq!(
            field(Dims::parse(Some("endpoint=/v1/chat"), Some("model"), &keys()).unwrap_err()),
            "group_by"
        );
        assert!(Dims::parse(Some("tag:project=search"), Some("model"), &keys()).is_ok());
        assert!(Dims::parse(Some("model=openai/mini"), Some("tag:team"), &keys()).is_ok());
    }
}
