//! The corpus manifest (`tests/corpus/manifest.toml`): one row per capture
//! with what it exercises and what gatewatch must find in it. This module
//! holds the manifest's types, reads and validates it (`validate`), and
//! builds what a row asks for (feeds, units); [`Run`] runs the rows (`check`,
//! with `tshark` for the ground truth and `expect` for the expect blocks),
//! and `tests/corpus.rs` asserts on the failures it collects. The schema is
//! documented in `tests/corpus/README.md`.

mod check;
mod expect;
mod files;
mod hits;
mod retro;
mod tshark;
mod validate;

pub use crate::testkit::capture_files;
pub use check::{Failures, Run, Tally};
pub use expect::check_expect;
pub use files::{csv_columns, data_lines};
pub use hits::{HitPattern, SENSOR_ID, describe, json_at, listing};
pub use tshark::{compare_with_tshark, names_check, read_summary};
pub use validate::{stat, stat_paths};

use crate::detect::attribution::{Units, default_internal};
use crate::intel::feeds::{FeedReport, FeedSpec, FeedsConfig, build_snapshot, toml_error};
use crate::intel::indicator::{EntryType, classify};
use crate::intel::{FeedMeta, Severity, Snapshot, SnapshotBuilder};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
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
    /// Counters of [`Stats::counters`](crate::detect::Stats::counters) at least one of which must be above
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
    /// Why this capture raises alerts with no indicators loaded (a
    /// heuristic finds something in it). Without it, a replay with no
    /// feeds must raise none; with it, it must raise some.
    #[serde(default)]
    pub alerts_without_feeds: Option<String>,
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

/// A high-severity feed `name` in category `test`, for indicators a check
/// makes up.
fn test_feed(name: &str) -> Arc<FeedMeta> {
    Arc::new(FeedMeta {
        name: name.into(),
        category: "test".into(),
        severity: Severity::High,
    })
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
        specs.extend(self.inline_feeds(base)?);
        let files = specs.iter().map(|s| s.path.clone()).collect();
        let cfg = FeedsConfig {
            path: base.join("manifest feeds"),
            feeds: specs,
        };
        let (snapshot, reports, _) = build_snapshot(&cfg);
        Ok(Feeds {
            snapshot: self.with_indicators(snapshot, cfg.feeds.len())?,
            reports,
            files,
        })
    }

    /// The inline `[[capture.expect.feed]]` tables, read by the feeds-file
    /// parser as if they were a feeds file in `base`.
    fn inline_feeds(&self, base: &Path) -> Result<Vec<FeedSpec>, String> {
        if self.feed.is_empty() {
            return Ok(Vec::new());
        }
        #[derive(Serialize)]
        struct Inline<'a> {
            feed: &'a [toml::Table],
        }
        let text = toml::to_string(&Inline { feed: &self.feed }).map_err(|e| e.to_string())?;
        let shown = base.join("(inline [[capture.expect.feed]])");
        Ok(FeedsConfig::parse(&shown, &text)
            .map_err(|e| e.to_string())?
            .feeds)
    }

    /// `snapshot` with the inline `indicators` added as one more feed,
    /// ranked after the `feeds` others.
    fn with_indicators(&self, snapshot: Snapshot, feeds: usize) -> Result<Snapshot, String> {
        if self.indicators.is_empty() {
            return Ok(snapshot);
        }
        let meta = test_feed("inline");
        let mut b = SnapshotBuilder::ranked(feeds as u32);
        for i in &self.indicators {
            b.add(
                classify(i, EntryType::Auto).map_err(|r| format!("indicator {i:?}: {r}"))?,
                &meta,
            );
        }
        let mut parts = snapshot.parts().to_vec();
        parts.push(Arc::new(b.build_part()));
        Ok(Snapshot::assemble(parts))
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

    /// The captures of the shared rows, under the data set's folder `dir`.
    pub fn shared_paths(&self, dir: &Path) -> BTreeSet<PathBuf> {
        self.capture
            .iter()
            .filter(|c| c.shared)
            .map(|c| dir.join(&c.path))
            .collect()
    }

    /// Whether a row names `file` (a path under the manifest's folder).
    pub fn has_row_for(&self, file: &Path) -> bool {
        let want = std::fs::canonicalize(file).ok();
        self.capture.iter().filter(|c| !c.shared).any(|c| {
            let p = self.dir().join(&c.path);
            p == file || (want.is_some() && std::fs::canonicalize(&p).ok() == want)
        })
    }
}
