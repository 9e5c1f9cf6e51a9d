//! Hit patterns (`[[capture.expect.hits]]`): which hits of a replay a
//! pattern selects, and hits written in one line for failure messages.

use crate::detect::Hit;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The sensor id the alert JSON of a manifest check is written with.
pub const SENSOR_ID: &str = "corpus";

/// A `[[capture.expect.hits]]` pattern: it selects the hits that agree with
/// every key it gives; `count` is how many there must be (at least one when
/// absent).
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HitPattern {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Unit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// The indicator as listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indicator: Option<String>,
    /// `dns_query`, `dns_answer`, `tls_sni`, `quic_sni`, `http_host`,
    /// `http_url`, `ip`, `dns_link`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// What was seen on the wire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound: Option<bool>,
    /// The alert's `app_proto` (`dns`, `tls`, `quic`, `http`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_proto: Option<String>,
    /// Feed name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feed: Option<String>,
    /// Feed category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// The indicator's description from the feed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Fields of the alert JSON line (`alert_json`), by dotted path
    /// (`"quic.sni"`; nested tables are flattened the same way).
    #[serde(default, skip_serializing_if = "toml::Table::is_empty")]
    pub alert: toml::Table,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<usize>,
}

impl fmt::Display for HitPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut p = serde_json::to_value(self).unwrap_or_default();
        if let Some(m) = p.as_object_mut() {
            m.remove("count");
        }
        write!(f, "{p}")
    }
}

impl HitPattern {
    /// Whether `hit` (whose alert JSON is `alert`) agrees with every key.
    pub fn matches(&self, hit: &Hit, alert: &serde_json::Value) -> bool {
        let eq = |want: &Option<String>, got: &str| want.as_deref().is_none_or(|w| w == got);
        eq(&self.host, &hit.host.to_string())
            && eq(&self.unit, &hit.unit.code)
            && eq(&self.indicator, &hit.indicator.value)
            && eq(&self.source, hit.source.as_str())
            && eq(&self.observed, &hit.observed)
            && self.outbound.is_none_or(|o| o == hit.outbound)
            && eq(&self.feed, &hit.indicator.feed.name)
            && eq(&self.category, &hit.indicator.feed.category)
            && self
                .description
                .as_deref()
                .is_none_or(|d| hit.indicator.description.as_deref() == Some(d))
            && self
                .app_proto
                .as_deref()
                .is_none_or(|a| alert["app_proto"].as_str() == Some(a))
            && flatten(&self.alert)
                .iter()
                .all(|(k, v)| json_at(alert, k) == Some(v))
    }

    /// Whether the number of hits it selected, `n`, is what it asks for.
    pub fn count_ok(&self, n: usize) -> bool {
        match self.count {
            Some(c) => n == c,
            None => n > 0,
        }
    }

    /// The count it asks for, in words, for failure messages.
    pub fn wanted(&self) -> String {
        self.count
            .map_or("at least 1".to_owned(), |c| c.to_string())
    }
}

/// A hit in one line, for failure messages.
pub fn describe(hit: &Hit) -> String {
    format!(
        "{{host {} unit {} indicator {} via {} observed {:?}{}}}",
        hit.host,
        hit.unit.code,
        hit.indicator.value,
        hit.source.as_str(),
        &*hit.observed,
        if hit.outbound { "" } else { " inbound" }
    )
}

/// Every hit in one line each, indented under a failure message.
pub fn listing(hits: &[Hit]) -> String {
    hits.iter()
        .map(describe)
        .collect::<Vec<_>>()
        .join("\n        ")
}

/// `table` as (dotted path, JSON value) pairs.
fn flatten(table: &toml::Table) -> Vec<(String, serde_json::Value)> {
    let mut out = Vec::new();
    for (k, v) in table {
        match v {
            toml::Value::Table(t) => out.extend(
                flatten(t)
                    .into_iter()
                    .map(|(k2, v)| (format!("{k}.{k2}"), v)),
            ),
            v => out.push((k.clone(), serde_json::to_value(v).unwrap_or_default())),
        }
    }
    out
}

/// The value at dotted `path` of `v`.
pub fn json_at<'a>(v: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}
