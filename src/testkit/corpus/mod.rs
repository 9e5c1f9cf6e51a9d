//! The corpus manifest (`tests/corpus/manifest.toml`): one row per capture
//! with what it exercises and what gatewatch must find in it. This module
//! holds the manifest's types, reads and validates it, and builds what a row
//! asks for (feeds, units); `tests/corpus.rs` runs the rows. The schema is
//! documented in `tests/corpus/README.md`.

use crate::detect::attribution::{Units, default_internal};
use crate::detect::{Hit, HitSource, Stats};
use crate::intel::feeds::{FeedReport, FeedsConfig, build_snapshot, toml_error};
use crate::intel::indicator::{EntryType, classify};
use crate::intel::{FeedMeta, Severity, Snapshot, SnapshotBuilder};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The whole manifest.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The manifest file itself (set by [`Manifest::load`]).
    #[serde(skip)]
    pub path: PathBuf,
    /// The flags rows may use: name -> what it means (and which counters
    /// prove the capture exercises it).
    #[serde(default)]
    pub flags: BTreeMap<String, Flag>,
    /// The rows, `[[capture]]`.
    #[serde(default)]
    pub capture: Vec<Capture>,
}

/// One flag of the `[flags]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flag {
    /// What the flag says about a capture.
    pub about: String,
    /// Counters of [`Stats::counters`] at least one of which must be above
    /// zero when the capture is replayed (left unchecked on a known gap).
    #[serde(default)]
    pub counters: Vec<String>,
}

/// Where a row's ground truth comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Truth {
    /// `<capture>.summary.txt` next to the capture (tshark 4.0.17).
    Tshark,
}

/// One `[[capture]]` row.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capture {
    /// Relative to the manifest's folder, or to `$GATEWATCH_SHARED_DATA`
    /// when `shared`.
    pub path: String,
    /// The capture is in the shared development data set.
    #[serde(default)]
    pub shared: bool,
    /// Where it comes from upstream (repository and path, or the generator).
    pub source: String,
    /// Why it is in the corpus, in a line.
    #[serde(default)]
    pub about: Option<String>,
    /// What it exercises: names declared in `[flags]`.
    #[serde(default)]
    pub flags: Vec<String>,
    /// `"tshark"`: compare with the summary and run the names-feed check.
    #[serde(default)]
    pub truth: Option<Truth>,
    /// Why gatewatch sees less than tshark here: ours must be a subset of
    /// tshark's, and the row fails once it is equal (the gap closed).
    #[serde(default)]
    pub known_gap: Option<String>,
    /// Runs with feeds and units, and what they must give.
    #[serde(default)]
    pub expect: Vec<Expect>,
}

/// One `[[capture.expect]]` block: feeds and units to replay the capture
/// with, and what that replay must give.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// What the block checks, in a line (named in failures).
    pub about: String,
    /// A feeds file (as `--feeds`), relative to the row's base folder.
    #[serde(default)]
    pub feeds_file: Option<String>,
    /// Feeds written inline: `[[capture.expect.feed]]` tables read exactly
    /// like the `[[feed]]` tables of a feeds file (paths relative to the
    /// row's base folder).
    #[serde(default)]
    pub feed: Vec<toml::Table>,
    /// Indicators written inline (each classified as `auto`), as one more
    /// high-severity feed named `inline` in category `test`.
    #[serde(default)]
    pub indicators: Vec<String>,
    /// The units CSV text (`code,name,cidrs`).
    #[serde(default)]
    pub units: Option<String>,
    /// A units CSV file, relative to the row's base folder.
    #[serde(default)]
    pub units_file: Option<String>,
    /// Whether the default internal networks (RFC 1918 and friends) are
    /// internal besides the units' own networks.
    #[serde(default)]
    pub default_internal: bool,
    /// Every feed accepts more than this many entries.
    #[serde(default)]
    pub feeds_accepted_over: Option<usize>,
    /// Every feed accounts for each data line of its file (not blank, not
    /// starting with `#`): accepted + rejected + skipped == data lines.
    #[serde(default)]
    pub feed_lines_accounted: bool,
    /// No source problems and nothing lost.
    #[serde(default)]
    pub clean: bool,
    /// The number of hits.
    #[serde(default)]
    pub hit_count: Option<usize>,
    /// Every hit matches one of `hits`.
    #[serde(default)]
    pub exact: bool,
    /// Hit patterns, `[[capture.expect.hits]]`.
    #[serde(default)]
    pub hits: Vec<HitPattern>,
    /// Engine counters by name (as in `gatewatch replay --stats` JSON;
    /// dotted for the nested ones, e.g. `"hits.quic_sni"`).
    #[serde(default)]
    pub stats: BTreeMap<String, u64>,
    /// Generated ground truth, `host_ip` and `indicator` columns: every pair
    /// is found and no other.
    #[serde(default)]
    pub truth_csv: Option<String>,
    /// With `truth_csv`: allow the extra (host, domain) hit when the host of
    /// a listed URL the host fetched is itself a listed domain, seen in the
    /// Host header (`http_host`): a genuine second hit the generator does not
    /// record.
    #[serde(default)]
    pub url_host_extra: bool,
    /// `host_ip` and `unit` columns: the (host, unit) pairs of the hits are
    /// exactly these.
    #[serde(default)]
    pub offenders_csv: Option<String>,
    /// `host_ip` column: the hosts of the hits are exactly these.
    #[serde(default)]
    pub hosts_csv: Option<String>,
}

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

/// The sensor id the alert JSON of a manifest check is written with.
pub const SENSOR_ID: &str = "corpus";

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

/// The feeds an [`Expect`] block loaded.
pub struct Feeds {
    pub snapshot: Snapshot,
    /// One per feed (the inline `indicators` have none).
    pub reports: Vec<FeedReport>,
    /// The file of each feed, in the order of `reports`.
    pub files: Vec<PathBuf>,
}

impl Expect {
    /// Whether the block loads any feed.
    pub fn has_feeds(&self) -> bool {
        self.feeds_file.is_some() || !self.feed.is_empty() || !self.indicators.is_empty()
    }

    /// Load the feeds: `feeds_file`, then the inline `feed` tables (through
    /// the feeds-file parser, paths relative to `base`), then `indicators`.
    pub fn feeds(&self, base: &Path) -> Result<Feeds, String> {
        let mut specs = Vec::new();
        if let Some(f) = &self.feeds_file {
            specs.extend(
                FeedsConfig::load(&base.join(f))
                    .map_err(|e| e.to_string())?
                    .feeds,
            );
        }
        if !self.feed.is_empty() {
            #[derive(Serialize)]
            struct Inline<'a> {
                feed: &'a [toml::Table],
            }
            let text = toml::to_string(&Inline { feed: &self.feed }).map_err(|e| e.to_string())?;
            let shown = base.join("(inline [[capture.expect.feed]])");
            specs.extend(
                FeedsConfig::parse(&shown, &text)
                    .map_err(|e| e.to_string())?
                    .feeds,
            );
        }
        let files = specs.iter().map(|s| s.path.clone()).collect();
        let cfg = FeedsConfig {
            path: base.join("manifest feeds"),
            feeds: specs,
        };
        let (mut snapshot, reports, _) = build_snapshot(&cfg);
        if !self.indicators.is_empty() {
            let meta = Arc::new(FeedMeta {
                name: "inline".into(),
                category: "test".into(),
                severity: Severity::High,
            });
            let mut b = SnapshotBuilder::ranked(cfg.feeds.len() as u32);
            for i in &self.indicators {
                b.add(
                    classify(i, EntryType::Auto).map_err(|r| format!("indicator {i:?}: {r}"))?,
                    &meta,
                );
            }
            let mut parts = snapshot.parts().to_vec();
            parts.push(Arc::new(b.build_part()));
            snapshot = Snapshot::assemble(parts);
        }
        Ok(Feeds {
            snapshot,
            reports,
            files,
        })
    }

    /// The units: `units` text or `units_file`, internal networks as
    /// `default_internal` says; none given: no units.
    pub fn units(&self, base: &Path) -> Result<Units, String> {
        let internal = if self.default_internal {
            default_internal()
        } else {
            Vec::new()
        };
        match (&self.units, &self.units_file) {
            (Some(t), None) => Units::parse("units (manifest)", t, &internal),
            (None, Some(f)) => Units::load(&base.join(f), &internal),
            _ => Units::parse("no units", "code,name,cidrs\n", &internal),
        }
        .map_err(|e| e.to_string())
    }
}

impl Capture {
    /// The capture as named in failures: its manifest path, shared ones
    /// under `$GATEWATCH_SHARED_DATA/`.
    pub fn shown(&self) -> String {
        if self.shared {
            format!("$GATEWATCH_SHARED_DATA/{}", self.path)
        } else {
            self.path.clone()
        }
    }

    /// The folder the row's paths are relative to: the manifest's, or the
    /// shared data set (`None` when that is not set).
    pub fn base(&self, manifest_dir: &Path, shared: Option<&Path>) -> Option<PathBuf> {
        if self.shared {
            shared.map(Path::to_path_buf)
        } else {
            Some(manifest_dir.to_path_buf())
        }
    }
}

impl Manifest {
    /// Read and validate the manifest; every problem at once.
    pub fn load(path: &Path) -> Result<Manifest, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let shown = path.display().to_string();
        let mut m: Manifest =
            toml::from_str(&text).map_err(|e| toml_error(&shown, &text, &e).to_string())?;
        m.path = path.to_path_buf();
        let errs = m.problems();
        if errs.is_empty() {
            Ok(m)
        } else {
            Err(format!("{shown}:\n  - {}", errs.join("\n  - ")))
        }
    }

    /// The folder of the manifest.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// Whether a row names `file` (a path under the manifest's folder).
    pub fn has_row_for(&self, file: &Path) -> bool {
        let want = std::fs::canonicalize(file).ok();
        self.capture.iter().filter(|c| !c.shared).any(|c| {
            let p = self.dir().join(&c.path);
            p == file || (want.is_some() && std::fs::canonicalize(&p).ok() == want)
        })
    }

    /// Mistakes in the manifest that no replay is needed to see.
    fn problems(&self) -> Vec<String> {
        let counters: BTreeSet<&str> = Stats::default()
            .counters()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        let stat_paths = stat_paths();
        let sources: BTreeSet<&str> = HitSource::ALL.iter().map(|s| s.as_str()).collect();
        let mut errs = Vec::new();
        for (name, f) in &self.flags {
            for c in &f.counters {
                if !counters.contains(c.as_str()) {
                    errs.push(format!("flag {name:?}: no counter {c:?}"));
                }
            }
        }
        let mut seen = BTreeSet::new();
        for c in &self.capture {
            let at = c.shown();
            if !seen.insert((c.shared, c.path.clone())) {
                errs.push(format!("{at}: listed twice"));
            }
            if c.source.trim().is_empty() {
                errs.push(format!("{at}: `source` is empty"));
            }
            for f in &c.flags {
                if !self.flags.contains_key(f) {
                    errs.push(format!("{at}: flag {f:?} is not declared in [flags]"));
                }
            }
            if c.known_gap.is_some() && c.truth.is_none() {
                errs.push(format!("{at}: `known_gap` needs `truth`"));
            }
            for e in &c.expect {
                let at = format!("{at} [expect: {}]", e.about);
                if e.units.is_some() && e.units_file.is_some() {
                    errs.push(format!("{at}: `units` and `units_file` both given"));
                }
                if !e.has_feeds() && (e.feeds_accepted_over.is_some() || e.feed_lines_accounted) {
                    errs.push(format!("{at}: feed checks without feeds"));
                }
                if e.url_host_extra && e.truth_csv.is_none() {
                    errs.push(format!("{at}: `url_host_extra` needs `truth_csv`"));
                }
                let checks = e.feeds_accepted_over.is_some()
                    || e.feed_lines_accounted
                    || e.clean
                    || e.hit_count.is_some()
                    || e.exact
                    || !e.hits.is_empty()
                    || !e.stats.is_empty()
                    || e.truth_csv.is_some()
                    || e.offenders_csv.is_some()
                    || e.hosts_csv.is_some();
                if !checks {
                    errs.push(format!("{at}: expects nothing"));
                }
                if e.exact && e.hits.is_empty() {
                    errs.push(format!(
                        "{at}: `exact` with no `hits` (use `hit_count = 0` for none)"
                    ));
                }
                for k in e.stats.keys() {
                    if !stat_paths.contains(k) {
                        errs.push(format!("{at}: no counter {k:?}"));
                    }
                }
                for h in &e.hits {
                    if let Some(s) = &h.source
                        && !sources.contains(s.as_str())
                    {
                        errs.push(format!(
                            "{at}: hit source {s:?} is none of {}",
                            sources.iter().copied().collect::<Vec<_>>().join(", ")
                        ));
                    }
                    if let Some(a) = &h.host
                        && a.parse::<std::net::IpAddr>().is_err()
                    {
                        errs.push(format!("{at}: hit host {a:?} is not an address"));
                    }
                }
            }
        }
        errs
    }
}

/// Every counter name `stats` may use: the dotted paths to the numbers of
/// the stats JSON.
pub fn stat_paths() -> BTreeSet<String> {
    fn walk(prefix: &str, v: &serde_json::Value, out: &mut BTreeSet<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&p, v, out);
                }
            }
            serde_json::Value::Number(_) => {
                out.insert(prefix.to_owned());
            }
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    walk(
        "",
        &serde_json::to_value(Stats::default()).unwrap_or_default(),
        &mut out,
    );
    out
}

/// The counter at dotted `path` of `stats`.
pub fn stat(stats: &Stats, path: &str) -> Option<u64> {
    json_at(&serde_json::to_value(stats).ok()?, path)?.as_u64()
}

/// The data lines of a line-based feed file: not blank, not a `#` comment.
pub fn data_lines(p: &Path) -> Result<usize, String> {
    Ok(std::fs::read_to_string(p)
        .map_err(|e| format!("{}: {e}", p.display()))?
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .count())
}

/// The `columns` (by header name) of every row of the CSV file `p`.
pub fn csv_columns(p: &Path, columns: &[&str]) -> Result<Vec<Vec<String>>, String> {
    let at = |e: &dyn fmt::Display| format!("{}: {e}", p.display());
    let mut r = csv::Reader::from_path(p).map_err(|e| at(&e))?;
    let hdr = r.headers().map_err(|e| at(&e))?.clone();
    let idx: Vec<usize> = columns
        .iter()
        .map(|c| {
            hdr.iter()
                .position(|h| h == *c)
                .ok_or_else(|| at(&format!("no column {c:?}")))
        })
        .collect::<Result<_, _>>()?;
    r.records()
        .map(|rec| {
            let rec = rec.map_err(|e| at(&e))?;
            Ok(idx
                .iter()
                .map(|&i| rec.get(i).unwrap_or("").to_owned())
                .collect())
        })
        .collect()
}

/// A tshark summary as [`Summary::parse`](super::Summary::parse) reads it,
/// plus the SNI and HTTP lines of tunnelled traffic, which it skips: tshark
/// lists every address of those packets, outer first (`10.200.0.3,192.168.69.10`);
/// they are kept here with the innermost one, the end a decoder that strips
/// the tunnel sees.
pub fn summary_with_tunnels(text: &str) -> super::Summary {
    let mut s = super::Summary::parse(text);
    let inner = |f: &str| -> Option<std::net::IpAddr> {
        if f.contains(',') {
            f.rsplit(',').next()?.parse().ok()
        } else {
            None
        }
    };
    let mut section = "";
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            section = h.split(' ').next().unwrap_or("");
            continue;
        }
        let Some(l) = line.strip_prefix("  ") else {
            continue;
        };
        let f: Vec<&str> = l.split('\t').collect();
        if f.len() < 4 || !(f[1].contains(',') || f[2].contains(',')) {
            continue;
        }
        let (Some(a), Some(b)) = (
            inner(f[1]).or_else(|| f[1].parse().ok()),
            inner(f[2]).or_else(|| f[2].parse().ok()),
        ) else {
            continue;
        };
        let (Ok(port), count) = (f[3].parse(), f[0].parse().unwrap_or(0)) else {
            continue;
        };
        match section {
            "TLS/QUIC" => s
                .sni
                .push((count, a, b, port, f.get(4).unwrap_or(&"").to_string())),
            "HTTP" if f.len() >= 6 => s.http.push((
                count,
                a,
                b,
                port,
                f[4].to_owned(),
                f[5].to_owned(),
                f.get(6).unwrap_or(&"").to_string(),
            )),
            _ => {}
        }
    }
    s
}
