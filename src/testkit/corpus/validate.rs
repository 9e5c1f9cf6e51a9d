//! The manifest's own mistakes, found when it is loaded (no replay needed):
//! undeclared flags, unknown counters and hit sources, rows listed twice,
//! expect blocks that check nothing.

use super::{Capture, Expect, Manifest};
use crate::detect::{HitSource, Stats};
use std::collections::BTreeSet;

/// The names a row may use that the engine defines.
struct Known {
    /// Every counter `stats` may name ([`stat_paths`]).
    stats: BTreeSet<String>,
    /// Every hit source, as written in the alerts.
    sources: BTreeSet<&'static str>,
}

impl Manifest {
    /// Mistakes in the manifest that no replay is needed to see, in the
    /// order of the file: the flags, then row by row.
    pub(super) fn problems(&self) -> Vec<String> {
        let known = Known {
            stats: stat_paths(),
            sources: HitSource::ALL.iter().map(|s| s.as_str()).collect(),
        };
        let mut errs = self.flag_problems();
        let mut seen = BTreeSet::new();
        for c in &self.capture {
            if !seen.insert((c.shared, c.path.clone())) {
                errs.push(format!("{}: listed twice", c.shown()));
            }
            errs.extend(self.row_problems(c));
            for e in &c.expect {
                let at = format!("{} [expect: {}]", c.shown(), e.about);
                errs.extend(expect_problems(&at, e, &known));
            }
        }
        errs
    }

    /// Flags whose counters are not counters of [`Stats::counters`].
    fn flag_problems(&self) -> Vec<String> {
        let counters: BTreeSet<&str> = Stats::default()
            .counters()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        let mut errs = Vec::new();
        for (name, f) in &self.flags {
            for c in &f.counters {
                if !counters.contains(c.as_str()) {
                    errs.push(format!("flag {name:?}: no counter {c:?}"));
                }
            }
        }
        errs
    }

    /// A row's own mistakes (not its expect blocks'): no source, undeclared
    /// flags, a known gap with nothing to compare.
    fn row_problems(&self, c: &Capture) -> Vec<String> {
        let at = c.shown();
        let mut errs = Vec::new();
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
        errs
    }
}

/// An expect block's mistakes: keys that contradict or need each other,
/// nothing to check, unknown counters, hit patterns that cannot match.
fn expect_problems(at: &str, e: &Expect, known: &Known) -> Vec<String> {
    let mut errs = Vec::new();
    if e.units.is_some() && e.units_file.is_some() {
        errs.push(format!("{at}: `units` and `units_file` both given"));
    }
    if !e.has_feeds() && (e.feeds_accepted_over.is_some() || e.feed_lines_accounted) {
        errs.push(format!("{at}: feed checks without feeds"));
    }
    if e.url_host_extra && e.truth_csv.is_none() {
        errs.push(format!("{at}: `url_host_extra` needs `truth_csv`"));
    }
    if !e.checks_anything() {
        errs.push(format!("{at}: expects nothing"));
    }
    if e.exact && e.hits.is_empty() {
        errs.push(format!(
            "{at}: `exact` with no `hits` (use `hit_count = 0` for none)"
        ));
    }
    for k in e.stats.keys() {
        if !known.stats.contains(k) {
            errs.push(format!("{at}: no counter {k:?}"));
        }
    }
    errs.extend(pattern_problems(at, e, known));
    errs
}

/// Hit patterns naming a source gatewatch does not have or a host that is
/// not an address.
fn pattern_problems(at: &str, e: &Expect, known: &Known) -> Vec<String> {
    let mut errs = Vec::new();
    for h in &e.hits {
        if let Some(s) = &h.source
            && !known.sources.contains(s.as_str())
        {
            errs.push(format!(
                "{at}: hit source {s:?} is none of {}",
                known.sources.iter().copied().collect::<Vec<_>>().join(", ")
            ));
        }
        if let Some(a) = &h.host
            && a.parse::<std::net::IpAddr>().is_err()
        {
            errs.push(format!("{at}: hit host {a:?} is not an address"));
        }
    }
    errs
}

impl Expect {
    /// Whether the block checks anything at all (a block that does not is a
    /// mistake: it would pass whatever gatewatch does).
    pub fn checks_anything(&self) -> bool {
        self.feeds_accepted_over.is_some()
            || self.feed_lines_accounted
            || self.clean
            || self.hit_count.is_some()
            || self.exact
            || !self.hits.is_empty()
            || !self.stats.is_empty()
            || self.truth_csv.is_some()
            || self.offenders_csv.is_some()
            || self.hosts_csv.is_some()
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
    super::json_at(&serde_json::to_value(stats).ok()?, path)?.as_u64()
}
