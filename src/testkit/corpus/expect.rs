//! Running one `[[capture.expect]]` block: load its feeds and units, check
//! what the feeds accepted, replay the capture with them, and check the
//! hits, counters and generated ground truth the block asks for.

use super::{Expect, Failures, SENSOR_ID, csv_columns, data_lines, describe, listing, stat};
use crate::detect::{Hit, HitSource};
use crate::intel::feeds::FeedReport;
use crate::output::eve::alert_json;
use crate::testkit::Replayed;
use crate::testkit::workers::replay_with_any_workers;
use std::collections::BTreeSet;
use std::fmt::Debug;
use std::path::Path;

/// Run block `e` of the row of capture `file` (its paths relative to
/// `base`); every failure is named `at`. True when the retro-hunt rule ran
/// too (a block with feeds).
pub fn check_expect(at: &str, file: &Path, base: &Path, e: &Expect, fail: &mut Failures) -> bool {
    let feeds = match e.feeds(base) {
        Ok(f) => f,
        Err(err) => {
            fail.add(at, format!("feeds:\n{err}"));
            return false;
        }
    };
    let units = match e.units(base) {
        Ok(u) => u,
        Err(err) => {
            fail.add(at, format!("units:\n{err}"));
            return false;
        }
    };
    for (rep, path) in feeds.reports.iter().zip(&feeds.files) {
        feed_report(at, e, rep, path, fail);
    }
    let (r, diffs) = replay_with_any_workers(file, feeds.snapshot, units);
    for d in diffs {
        fail.add(at, format!("results depend on the worker count: {d}"));
    }
    replay_checks(at, e, &r, fail);
    csv_checks(at, base, e, &r.sink.hits, fail);
    e.has_feeds() && super::retro::check_retro(at, file, base, e, &r.sink.hits, fail)
}

/// One feed (read from `path`) loaded, with more than `feeds_accepted_over`
/// entries and every data line accounted for, as the block asks.
fn feed_report(at: &str, e: &Expect, rep: &FeedReport, path: &Path, fail: &mut Failures) {
    if let Some(f) = &rep.failed {
        fail.add(at, format!("feed {:?} failed: {f}", rep.name));
    }
    if let Some(n) = e.feeds_accepted_over
        && rep.accepted <= n
    {
        fail.add(
            at,
            format!(
                "feed {:?} accepted {} entries, want more than {n} (first rejected: {:?})",
                rep.name,
                rep.accepted,
                rep.rejected.first().map(ToString::to_string)
            ),
        );
    }
    if e.feed_lines_accounted {
        lines_accounted(at, rep, path, fail);
    }
}

/// Accepted + rejected + skipped entries of a feed equal the data lines of
/// its file: no line is silently dropped.
fn lines_accounted(at: &str, rep: &FeedReport, path: &Path, fail: &mut Failures) {
    let lines = match data_lines(path) {
        Ok(n) => n,
        Err(err) => return fail.add(at, err),
    };
    let sum = rep.accepted + rep.rejected.len() + rep.skipped.len();
    if sum != lines {
        fail.add(
            at,
            format!(
                "feed {:?}: accepted {} + rejected {} + skipped {} = {sum}, but {} has {lines} data lines",
                rep.name,
                rep.accepted,
                rep.rejected.len(),
                rep.skipped.len(),
                path.display()
            ),
        );
    }
}

/// What the replay `r` gave against the block: clean, the hit count, the
/// hit patterns (and nothing else when `exact`), the counters.
fn replay_checks(at: &str, e: &Expect, r: &Replayed, fail: &mut Failures) {
    let hits = &r.sink.hits;
    if e.clean && (!r.problems.is_empty() || r.stats.lost() > 0) {
        fail.add(
            at,
            format!(
                "not clean: {} lost, problems {:?}",
                r.stats.lost(),
                r.problems
            ),
        );
    }
    if let Some(n) = e.hit_count
        && hits.len() != n
    {
        fail.add(
            at,
            format!("{} hits, want {n}:\n        {}", hits.len(), listing(hits)),
        );
    }
    hit_patterns(at, e, hits, fail);
    for (k, want) in &e.stats {
        let got = stat(&r.stats, k);
        if got != Some(*want) {
            fail.add(at, format!("counter {k} is {got:?}, want {want}"));
        }
    }
}

/// Each pattern selects as many hits as it asks for; with `exact`, every
/// hit is selected by some pattern.
fn hit_patterns(at: &str, e: &Expect, hits: &[Hit], fail: &mut Failures) {
    let alerts: Vec<serde_json::Value> = hits
        .iter()
        .map(|h| serde_json::from_str(&alert_json(h, SENSOR_ID)).expect("alert JSON"))
        .collect();
    for p in &e.hits {
        let n = hits
            .iter()
            .zip(&alerts)
            .filter(|(h, a)| p.matches(h, a))
            .count();
        if !p.count_ok(n) {
            fail.add(
                at,
                format!(
                    "hit {p}: {n} found, want {}; the hits:\n        {}",
                    p.wanted(),
                    listing(hits)
                ),
            );
        }
    }
    if e.exact {
        for (h, a) in hits.iter().zip(&alerts) {
            if !e.hits.iter().any(|p| p.matches(h, a)) {
                fail.add(at, format!("unexpected hit {}", describe(h)));
            }
        }
    }
}

/// The CSV files the hits must agree with: the generated truth, the
/// offenders, the hosts.
fn csv_checks(at: &str, base: &Path, e: &Expect, hits: &[Hit], fail: &mut Failures) {
    if let Some(t) = &e.truth_csv {
        generated_truth(at, &base.join(t), e.url_host_extra, hits, fail);
    }
    if let Some(o) = &e.offenders_csv {
        let want = csv_columns(&base.join(o), &["host_ip", "unit"]).map(pairs);
        let got = hits
            .iter()
            .map(|h| (h.host.to_string(), h.unit.code.clone()))
            .collect();
        same_set(
            at,
            &format!("offenders (host, unit) differ from {o}"),
            want,
            got,
            fail,
        );
    }
    if let Some(o) = &e.hosts_csv {
        let want = csv_columns(&base.join(o), &["host_ip"])
            .map(|rows| rows.into_iter().map(|r| r[0].clone()).collect());
        let got = hits.iter().map(|h| h.host.to_string()).collect();
        same_set(at, &format!("hosts differ from {o}"), want, got, fail);
    }
}

/// The first two columns of CSV rows, as a set of pairs.
fn pairs(rows: Vec<Vec<String>>) -> BTreeSet<(String, String)> {
    rows.into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect()
}

/// `got` equals `want` (read from a CSV file: a read error fails too).
fn same_set<T: Ord + Debug>(
    at: &str,
    what: &str,
    want: Result<BTreeSet<T>, String>,
    got: BTreeSet<T>,
    fail: &mut Failures,
) {
    match want {
        Ok(want) if got != want => fail.add(
            at,
            differ(
                what,
                &want.difference(&got).collect::<Vec<_>>(),
                &got.difference(&want).collect::<Vec<_>>(),
            ),
        ),
        Ok(_) => {}
        Err(err) => fail.add(at, err),
    }
}

/// A failure message: `what` differs, with what is missing and extra.
fn differ(what: &str, missing: &[impl Debug], extra: &[impl Debug]) -> String {
    format!("{what}\n    missing {missing:?}\n    extra   {extra:?}")
}

/// Every (host, indicator) pair of a generated `truth.csv` is found and
/// nothing else is, but for the documented URL-host extra when allowed.
fn generated_truth(
    at: &str,
    truth: &Path,
    url_host_extra: bool,
    hits: &[Hit],
    fail: &mut Failures,
) {
    let want = match csv_columns(truth, &["host_ip", "indicator"]) {
        Ok(rows) => pairs(rows),
        Err(err) => return fail.add(at, err),
    };
    let got: BTreeSet<(String, String)> = hits
        .iter()
        .map(|h| (h.host.to_string(), h.indicator.value.to_string()))
        .collect();
    let missing: Vec<_> = want.difference(&got).collect();
    let extra: Vec<_> = got
        .difference(&want)
        .filter(|(host, ind)| !(url_host_extra && url_host_hit(&want, hits, host, ind)))
        .collect();
    if !missing.is_empty() || !extra.is_empty() {
        let what = format!("(host, indicator) pairs differ from {}", truth.display());
        fail.add(at, differ(&what, &missing, &extra));
    }
}

/// Whether the extra hit (`host`, `ind`) is the Host header of a listed URL
/// `host` fetched. The generator records one indicator per infection
/// method; when the host of a listed URL is itself a listed domain (both are
/// drawn from the same name space), the Host header is a genuine second hit.
fn url_host_hit(want: &BTreeSet<(String, String)>, hits: &[Hit], host: &str, ind: &str) -> bool {
    let url_host_listed = want
        .iter()
        .any(|(h, w)| h == host && w.starts_with(&format!("{ind}/")));
    let via_http_host = hits.iter().any(|x| {
        x.host.to_string() == *host && *x.indicator.value == *ind && x.source == HitSource::HttpHost
    });
    url_host_listed && via_http_host
}
