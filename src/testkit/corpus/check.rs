//! Running the manifest's rows ([`Run`]): for each capture the tshark
//! comparison and names-feed check, the counters its flags promise, and its
//! expect blocks; with the shared data set, its captures that have a summary
//! but no row. Failures are collected, each naming its capture, with counts
//! of what was checked for the test's minimums.

use super::{
    Capture, Manifest, Truth, check_expect, compare_with_tshark, names_check, read_summary,
};
use crate::intel::Snapshot;
use crate::testkit::{Replayed, captures_with_summaries, replay_collect, summary_path, units_from};
use std::fmt;
use std::path::Path;

/// Failures, each naming its capture (`"{at}: {what}"`).
#[derive(Debug, Default)]
pub struct Failures(pub Vec<String>);

impl Failures {
    /// Record that `what` went wrong at `at` (a capture, or `manifest`).
    pub fn add(&mut self, at: &str, what: impl fmt::Display) {
        self.0.push(format!("{at}: {what}"));
    }
}

/// What was checked, for the minimum counts.
#[derive(Debug, Default)]
pub struct Tally {
    /// Captures compared with tshark: (corpus, shared).
    pub tshark: (usize, usize),
    /// Captures whose names feed flagged their clients: (corpus, shared).
    pub names: (usize, usize),
    /// Expect blocks run.
    pub expects: usize,
    /// Shared rows not run (no `GATEWATCH_SHARED_DATA`).
    pub skipped_shared: usize,
    /// Captures replayed with no indicators, to see that none alerts.
    pub quiet_checked: usize,
    /// Expect blocks whose retro-hunt gave the fresh replay's pairs.
    pub retro_checked: usize,
}

impl Tally {
    /// Count a capture compared with tshark, and whether its names feed
    /// was checked, as a corpus or a shared one.
    fn compared(&mut self, shared: bool, named: bool) {
        let (tshark, names) = if shared {
            (&mut self.tshark.1, &mut self.names.1)
        } else {
            (&mut self.tshark.0, &mut self.names.0)
        };
        *tshark += 1;
        *names += usize::from(named);
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tshark compared on {} corpus and {} shared captures, names feeds on {} and {}, {} expect blocks, {} retro-hunts, {} replayed with no indicators",
            self.tshark.0,
            self.tshark.1,
            self.names.0,
            self.names.1,
            self.expects,
            self.retro_checked,
            self.quiet_checked
        )
    }
}

/// A run of the manifest: what failed, what was checked, and notes for the
/// test to print.
#[derive(Debug, Default)]
pub struct Run {
    pub failures: Failures,
    pub tally: Tally,
    /// Things worth saying that are not failures.
    pub notes: Vec<String>,
}

impl Run {
    /// Check one row of `m`: its ground truth, its flags' counters and its
    /// expect blocks. A shared row is skipped (and counted) when `shared`,
    /// the data set's folder, is `None`.
    pub fn row(&mut self, m: &Manifest, row: &Capture, shared: Option<&Path>) {
        let Some(base) = row.base(m.dir(), shared) else {
            self.tally.skipped_shared += 1;
            return;
        };
        let at = row.shown();
        let file = base.join(&row.path);
        if !file.is_file() {
            let missing = format!("listed in the manifest but {} is missing", file.display());
            return self.failures.add(&at, missing);
        }
        let mut plain: Option<Replayed> = None;
        if self.tshark_row(&at, row, &file) {
            let r = plain.insert(plain_replay(&file));
            self.against_tshark(&at, &file, r, row.known_gap.as_deref(), row.shared);
        }
        // What the capture exercises must be reached, unless the row
        // documents a gap.
        if row.known_gap.is_none() {
            self.flag_counters(m, row, &at, &file, &mut plain);
        }
        let r = plain.get_or_insert_with(|| plain_replay(&file));
        self.quiet_without_feeds(&at, row.alerts_without_feeds.as_deref(), r);
        for e in &row.expect {
            self.tally.expects += 1;
            let at = format!("{at} [expect: {}]", e.about);
            if check_expect(&at, &file, &base, e, &mut self.failures) {
                self.tally.retro_checked += 1;
            }
        }
    }

    /// The captures of the shared data set's `pcaps/` (under `dir`) with a
    /// summary but no row: the tshark comparison and the names check, with
    /// no gap allowed.
    pub fn unlisted_shared(&mut self, m: &Manifest, dir: &Path) {
        let listed = m.shared_paths(dir);
        for p in captures_with_summaries(&dir.join("pcaps")) {
            if listed.contains(&p) {
                continue;
            }
            let at = format!("{} (no manifest row)", p.display());
            self.notes.push(format!(
                "{at}: compared with tshark; add a row to say what it exercises"
            ));
            let plain = plain_replay(&p);
            self.against_tshark(&at, &p, &plain, None, true);
            self.quiet_without_feeds(&at, None, &plain);
        }
    }

    /// Fail (as the manifest) when only `got` `what` were checked, fewer
    /// than `min`: rows that silently stop running lower the count.
    pub fn at_least(&mut self, got: usize, min: usize, what: &str) {
        if got < min {
            self.failures.add("manifest", format!("only {got} {what}"));
        }
    }

    /// Whether the row is compared with tshark: `truth = "tshark"` with a
    /// summary next to the capture; either one without the other fails.
    fn tshark_row(&mut self, at: &str, row: &Capture, file: &Path) -> bool {
        let has_summary = summary_path(file).is_file();
        match (row.truth, has_summary) {
            (Some(Truth::Tshark), false) => self.failures.add(
                at,
                "`truth = \"tshark\"` but there is no .summary.txt next to it",
            ),
            (None, true) => self.failures.add(
                at,
                "has a tshark summary: set `truth = \"tshark\"` so it is compared",
            ),
            _ => {}
        }
        row.truth == Some(Truth::Tshark) && has_summary
    }

    /// Compare the plain replay `r` of `file` with its tshark summary and
    /// run the names-feed check; counted as a corpus or `shared` capture.
    fn against_tshark(
        &mut self,
        at: &str,
        file: &Path,
        r: &Replayed,
        gap: Option<&str>,
        shared: bool,
    ) {
        let s = read_summary(file);
        compare_with_tshark(at, &s, r, gap, &mut self.failures);
        let named = names_check(at, file, &s, gap, &mut self.failures);
        // The names check hunts its capture's history too.
        self.tally.retro_checked += usize::from(named);
        self.tally.compared(shared, named);
    }

    /// Each flag of the row with counters reaches one of them in the plain
    /// replay (made here unless `plain` holds it already).
    /// With no indicators loaded a clean capture raises no alert: only a
    /// heuristic could, and on clean traffic it must not. `why` documents
    /// an exception (which must then still hold).
    fn quiet_without_feeds(&mut self, at: &str, why: Option<&str>, r: &Replayed) {
        self.tally.quiet_checked += 1;
        let hits: Vec<String> = r
            .sink
            .hits
            .iter()
            .map(|h| {
                let what = h.heuristic().unwrap_or("list");
                format!("{what} on {}: {}", h.host, h.observed)
            })
            .collect();
        match (why, hits.is_empty()) {
            (None, false) => self.failures.add(
                at,
                format!(
                    "alerts with no indicators loaded (a heuristic's false positive, or add alerts_without_feeds with the reason): {}",
                    hits.join("; ")
                ),
            ),
            (Some(w), true) => self.failures.add(
                at,
                format!("alerts_without_feeds says {w:?}, but no alert was raised: remove it"),
            ),
            _ => {}
        }
    }

    fn flag_counters(
        &mut self,
        m: &Manifest,
        row: &Capture,
        at: &str,
        file: &Path,
        plain: &mut Option<Replayed>,
    ) {
        for f in &row.flags {
            let counters = &m.flags[f].counters;
            if counters.is_empty() {
                continue;
            }
            let r = plain.get_or_insert_with(|| plain_replay(file));
            let reached = r
                .stats
                .counters()
                .into_iter()
                .any(|(k, v)| v > 0 && counters.iter().any(|c| c == k));
            if !reached {
                self.failures.add(
                    at,
                    format!("flag {f:?}: none of the counters {counters:?} is above zero"),
                );
            }
        }
    }
}

/// A replay with no feeds and no units (default internal networks), as the
/// ground-truth comparison wants it.
fn plain_replay(p: &Path) -> Replayed {
    replay_collect(
        &[p.to_path_buf()],
        Snapshot::empty(),
        units_from("code,name,cidrs\n"),
    )
}
