//! The corpus manifest (`tests/corpus/manifest.toml`), row by row: for every
//! capture, the tshark ground truth (DNS names, CNAMEs, TLS/QUIC SNI, HTTP
//! requests, packet count) and a feed of the names it saw, the counters its
//! flags promise, and each `[[capture.expect]]` block (feeds, units, the hits
//! they must give). Shared rows run when `GATEWATCH_SHARED_DATA` is set, and
//! then every capture with a summary under its `pcaps/` is compared with
//! tshark even without a row. Adding a capture means adding a row; the
//! schema is in `tests/corpus/README.md`.

use gatewatch::detect::HitSource;
use gatewatch::detect::attribution::Units;
use gatewatch::intel::indicator::{EntryType, classify};
use gatewatch::intel::{FeedMeta, Severity, Snapshot, SnapshotBuilder};
use gatewatch::output::eve::alert_json;
use gatewatch::testkit::corpus::{
    Capture, Expect, Manifest, SENSOR_ID, Truth, csv_columns, data_lines, describe, stat,
    summary_with_tunnels,
};
use gatewatch::testkit::{
    Replayed, Seen, Summary, captures_with_summaries, replay_collect, shared_data, summary_path,
    units_from,
};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn manifest() -> Manifest {
    let p = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/corpus/manifest.toml"
    ));
    Manifest::load(p).unwrap_or_else(|e| panic!("{e}"))
}

/// What was checked, for the minimum counts.
#[derive(Default)]
struct Tally {
    /// Captures compared with tshark: (corpus, shared).
    tshark: (usize, usize),
    /// Captures whose names feed flagged their clients: (corpus, shared).
    names: (usize, usize),
    expects: usize,
    skipped_shared: usize,
}

/// Failures, each naming its capture.
struct Failures(Vec<String>);

impl Failures {
    fn add(&mut self, at: &str, what: impl std::fmt::Display) {
        self.0.push(format!("{at}: {what}"));
    }
}

#[test]
fn corpus_manifest() {
    let t0 = std::time::Instant::now();
    let m = manifest();
    let shared = shared_data();
    let mut fail = Failures(Vec::new());
    let mut tally = Tally::default();
    for row in &m.capture {
        let Some(base) = row.base(m.dir(), shared.as_deref()) else {
            tally.skipped_shared += 1;
            continue;
        };
        check_row(&m, row, &base, &mut fail, &mut tally);
    }
    match &shared {
        None => eprintln!(
            "GATEWATCH_SHARED_DATA not set: the {} shared rows of the manifest were not run",
            tally.skipped_shared
        ),
        Some(dir) => {
            // Captures of the shared pcaps/ with a summary but no row: the
            // tshark comparison and the names check with no gap allowed.
            let listed: BTreeSet<PathBuf> = m
                .capture
                .iter()
                .filter(|c| c.shared)
                .map(|c| dir.join(&c.path))
                .collect();
            for p in captures_with_summaries(&dir.join("pcaps")) {
                if listed.contains(&p) {
                    continue;
                }
                let at = format!("{} (no manifest row)", p.display());
                eprintln!("{at}: compared with tshark; add a row to say what it exercises");
                let plain = plain_replay(&p);
                compare_with_tshark(&at, &p, &plain, None, &mut fail);
                if names_check(&at, &p, None, &mut fail) {
                    tally.names.1 += 1;
                }
                tally.tshark.1 += 1;
            }
        }
    }
    eprintln!(
        "corpus manifest: {} rows; tshark compared on {} corpus and {} shared captures, names feeds on {} and {}, {} expect blocks; {:.1}s",
        m.capture.len(),
        tally.tshark.0,
        tally.tshark.1,
        tally.names.0,
        tally.names.1,
        tally.expects,
        t0.elapsed().as_secs_f64()
    );
    if tally.tshark.0 < 10 {
        fail.add(
            "manifest",
            format!(
                "only {} corpus captures compared with tshark",
                tally.tshark.0
            ),
        );
    }
    if tally.names.0 < 8 {
        fail.add(
            "manifest",
            format!(
                "only {} corpus captures had a names-feed check",
                tally.names.0
            ),
        );
    }
    if shared.is_some() {
        if tally.tshark.1 < 30 {
            fail.add(
                "manifest",
                format!(
                    "only {} shared captures compared with tshark",
                    tally.tshark.1
                ),
            );
        }
        if tally.names.1 < 8 {
            fail.add(
                "manifest",
                format!(
                    "only {} shared captures had a names-feed check",
                    tally.names.1
                ),
            );
        }
    }
    assert!(
        fail.0.is_empty(),
        "{} failure(s):\n{}",
        fail.0.len(),
        fail.0.join("\n")
    );
}

/// Every capture file under `tests/corpus/` has a row (and a shared capture
/// without one is named, as the generic pass only compares it with tshark).
#[test]
fn every_corpus_capture_has_a_manifest_row() {
    let m = manifest();
    let mut missing = Vec::new();
    for p in capture_files(m.dir()) {
        if !m.has_row_for(&p) {
            missing.push(p.strip_prefix(m.dir()).unwrap_or(&p).display().to_string());
        }
    }
    assert!(
        missing.is_empty(),
        "captures under {} with no row in {}: {missing:?}",
        m.dir().display(),
        m.path.display()
    );
    if let Some(dir) = shared_data() {
        let listed: BTreeSet<PathBuf> = m
            .capture
            .iter()
            .filter(|c| c.shared)
            .map(|c| dir.join(&c.path))
            .collect();
        for p in capture_files(&dir) {
            if !listed.contains(&p) {
                eprintln!("note: shared capture {} has no manifest row", p.display());
            }
        }
    }
}

/// Every `*.pcap` and `*.pcapng` under `dir`, sorted.
fn capture_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.expect("directory entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "pcap" || x == "pcapng") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn check_row(m: &Manifest, row: &Capture, base: &Path, fail: &mut Failures, tally: &mut Tally) {
    let at = row.shown();
    let file = base.join(&row.path);
    if !file.is_file() {
        fail.add(
            &at,
            format!("listed in the manifest but {} is missing", file.display()),
        );
        return;
    }
    let has_summary = summary_path(&file).is_file();
    match (row.truth, has_summary) {
        (Some(Truth::Tshark), false) => fail.add(
            &at,
            "`truth = \"tshark\"` but there is no .summary.txt next to it",
        ),
        (None, true) => fail.add(
            &at,
            "has a tshark summary: set `truth = \"tshark\"` so it is compared",
        ),
        _ => {}
    }
    let mut plain: Option<Replayed> = None;
    if row.truth == Some(Truth::Tshark) && has_summary {
        let r = plain.insert(plain_replay(&file));
        compare_with_tshark(&at, &file, r, row.known_gap.as_deref(), fail);
        let named = names_check(&at, &file, row.known_gap.as_deref(), fail);
        if row.shared {
            tally.tshark.1 += 1;
            tally.names.1 += usize::from(named);
        } else {
            tally.tshark.0 += 1;
            tally.names.0 += usize::from(named);
        }
    }
    // The flags' counters (what the capture exercises must be reached),
    // unless the row documents a gap.
    if row.known_gap.is_none() {
        for f in &row.flags {
            let counters = &m.flags[f].counters;
            if counters.is_empty() {
                continue;
            }
            let r = plain.get_or_insert_with(|| plain_replay(&file));
            let reached = r
                .stats
                .counters()
                .into_iter()
                .any(|(k, v)| v > 0 && counters.iter().any(|c| c == k));
            if !reached {
                fail.add(
                    &at,
                    format!("flag {f:?}: none of the counters {counters:?} is above zero"),
                );
            }
        }
    }
    for e in &row.expect {
        tally.expects += 1;
        check_expect(&format!("{at} [expect: {}]", e.about), &file, base, e, fail);
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

fn check_expect(at: &str, file: &Path, base: &Path, e: &Expect, fail: &mut Failures) {
    let feeds = match e.feeds(base) {
        Ok(f) => f,
        Err(err) => return fail.add(at, format!("feeds:\n{err}")),
    };
    let units = match e.units(base) {
        Ok(u) => u,
        Err(err) => return fail.add(at, format!("units:\n{err}")),
    };
    for (rep, path) in feeds.reports.iter().zip(&feeds.files) {
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
            match data_lines(path) {
                Ok(lines) => {
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
                Err(err) => fail.add(at, err),
            }
        }
    }
    let r = replay_collect(&[file.to_path_buf()], feeds.snapshot, units);
    let hits = &r.sink.hits;
    let alerts: Vec<serde_json::Value> = hits
        .iter()
        .map(|h| serde_json::from_str(&alert_json(h, SENSOR_ID)).expect("alert JSON"))
        .collect();
    let all = || {
        hits.iter()
            .map(describe)
            .collect::<Vec<_>>()
            .join("\n        ")
    };
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
            format!("{} hits, want {n}:\n        {}", hits.len(), all()),
        );
    }
    for p in &e.hits {
        let n = hits
            .iter()
            .zip(&alerts)
            .filter(|(h, a)| p.matches(h, a))
            .count();
        let ok = match p.count {
            Some(c) => n == c,
            None => n > 0,
        };
        if !ok {
            let want = p.count.map_or("at least 1".to_owned(), |c| c.to_string());
            fail.add(
                at,
                format!(
                    "hit {p}: {n} found, want {want}; the hits:\n        {}",
                    all()
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
    for (k, want) in &e.stats {
        let got = stat(&r.stats, k);
        if got != Some(*want) {
            fail.add(at, format!("counter {k} is {got:?}, want {want}"));
        }
    }
    if let Some(t) = &e.truth_csv {
        generated_truth(at, &base.join(t), e.url_host_extra, hits, fail);
    }
    if let Some(o) = &e.offenders_csv {
        match csv_columns(&base.join(o), &["host_ip", "unit"]) {
            Ok(rows) => {
                let want: BTreeSet<(String, String)> = rows
                    .into_iter()
                    .map(|r| (r[0].clone(), r[1].clone()))
                    .collect();
                let got: BTreeSet<(String, String)> = hits
                    .iter()
                    .map(|h| (h.host.to_string(), h.unit.code.clone()))
                    .collect();
                if got != want {
                    fail.add(
                        at,
                        format!(
                            "offenders (host, unit) differ from {o}\n    missing {:?}\n    extra   {:?}",
                            want.difference(&got).collect::<Vec<_>>(),
                            got.difference(&want).collect::<Vec<_>>()
                        ),
                    );
                }
            }
            Err(err) => fail.add(at, err),
        }
    }
    if let Some(o) = &e.hosts_csv {
        match csv_columns(&base.join(o), &["host_ip"]) {
            Ok(rows) => {
                let want: BTreeSet<String> = rows.into_iter().map(|r| r[0].clone()).collect();
                let got: BTreeSet<String> = hits.iter().map(|h| h.host.to_string()).collect();
                if got != want {
                    fail.add(
                        at,
                        format!(
                            "hosts differ from {o}\n    missing {:?}\n    extra   {:?}",
                            want.difference(&got).collect::<Vec<_>>(),
                            got.difference(&want).collect::<Vec<_>>()
                        ),
                    );
                }
            }
            Err(err) => fail.add(at, err),
        }
    }
}

/// Every (host, indicator) pair of a generated `truth.csv` is found and
/// nothing else is, but for the documented URL-host extra when allowed.
fn generated_truth(
    at: &str,
    truth: &Path,
    url_host_extra: bool,
    hits: &[gatewatch::detect::Hit],
    fail: &mut Failures,
) {
    let rows = match csv_columns(truth, &["host_ip", "indicator"]) {
        Ok(r) => r,
        Err(err) => return fail.add(at, err),
    };
    let want: BTreeSet<(String, String)> = rows
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    let got: BTreeSet<(String, String)> = hits
        .iter()
        .map(|h| (h.host.to_string(), h.indicator.value.to_string()))
        .collect();
    let missing: Vec<_> = want.difference(&got).collect();
    // The generator records one indicator per infection method. When the
    // host of a listed URL is itself a listed domain (both are drawn from the
    // same name space), the Host header is a genuine second hit.
    let extra: Vec<_> = got
        .difference(&want)
        .filter(|(host, ind)| {
            let url_host_listed = want
                .iter()
                .any(|(h, w)| h == host && w.starts_with(&format!("{ind}/")));
            let via_http_host = hits.iter().any(|x| {
                x.host.to_string() == *host
                    && *x.indicator.value == **ind
                    && x.source == HitSource::HttpHost
            });
            !(url_host_extra && url_host_listed && via_http_host)
        })
        .collect();
    if !missing.is_empty() || !extra.is_empty() {
        fail.add(
            at,
            format!(
                "(host, indicator) pairs differ from {}\n    missing {missing:?}\n    extra   {extra:?}",
                truth.display()
            ),
        );
    }
}

type Sni = BTreeSet<(IpAddr, IpAddr, u16, String)>;
type Http = BTreeSet<(IpAddr, IpAddr, u16, String, String, String)>;

#[derive(Default)]
struct Found {
    queries: BTreeSet<(String, u16)>,
    answers: BTreeSet<(String, Vec<String>)>,
    sni: Sni,
    http: Http,
}

fn ours(r: &Replayed) -> Found {
    let mut f = Found::default();
    for s in &r.sink.seen {
        match s.clone() {
            Seen::DnsQuery { name, qtype } => {
                f.queries.insert((name, qtype));
            }
            Seen::DnsAnswer { name, cname, .. } => {
                f.answers.insert((name, cname));
            }
            Seen::Sni {
                src,
                dst,
                port,
                sni,
            } => {
                f.sni.insert((src, dst, port, sni.unwrap_or_default()));
            }
            Seen::Http {
                src,
                dst,
                port,
                method,
                host,
                target,
            } => {
                let uri: String = target.chars().take(120).collect();
                f.http
                    .insert((src, dst, port, method, host.unwrap_or_default(), uri));
            }
        }
    }
    f
}

fn summary(p: &Path) -> Summary {
    summary_with_tunnels(&std::fs::read_to_string(summary_path(p)).unwrap())
}

fn truth(s: &Summary) -> Found {
    Found {
        queries: s
            .dns_queries
            .iter()
            .map(|(_, n, t)| (n.clone(), *t))
            .collect(),
        answers: s
            .dns_responses
            .iter()
            .map(|(n, _, _, c)| (n.clone(), c.clone()))
            .collect(),
        sni: s
            .sni
            .iter()
            .map(|(_, a, b, p, n)| (*a, *b, *p, n.to_ascii_lowercase()))
            .collect(),
        http: s
            .http
            .iter()
            .map(|(_, a, b, p, m, h, u)| {
                let host = h.split(':').next().unwrap_or("").to_ascii_lowercase();
                (*a, *b, *p, m.clone(), host, u.clone())
            })
            .collect(),
    }
}

/// The DNS queries, CNAME answers, SNI and HTTP requests gatewatch saw
/// equal tshark's (a subset on a known gap, which fails once they are
/// equal), and it read as many packets as capinfos counted.
fn compare_with_tshark(at: &str, p: &Path, r: &Replayed, gap: Option<&str>, fail: &mut Failures) {
    let s = summary(p);
    let (o, t) = (ours(r), truth(&s));
    if r.stats.packets != s.packets {
        fail.add(
            at,
            format!("{} packets read, tshark saw {}", r.stats.packets, s.packets),
        );
    }
    let mut cmp = |what: &str, a: String, b: String, equal: bool, subset: bool| {
        let ok = match gap {
            None => equal,
            Some(_) => subset,
        };
        if !ok {
            fail.add(at, format!("{what}\n    ours:   {a}\n    tshark: {b}"));
        }
    };
    cmp(
        "DNS queries",
        format!("{:?}", o.queries),
        format!("{:?}", t.queries),
        o.queries == t.queries,
        o.queries.is_subset(&t.queries),
    );
    // tshark lists CNAME chains per response; compare names with CNAMEs.
    let with_cname = |a: &BTreeSet<(String, Vec<String>)>| -> BTreeSet<(String, Vec<String>)> {
        a.iter().filter(|a| !a.1.is_empty()).cloned().collect()
    };
    let (oa, ta) = (with_cname(&o.answers), with_cname(&t.answers));
    cmp(
        "DNS CNAME answers",
        format!("{oa:?}"),
        format!("{ta:?}"),
        oa == ta,
        oa.is_subset(&ta),
    );
    cmp(
        "TLS SNI",
        format!("{:?}", o.sni),
        format!("{:?}", t.sni),
        o.sni == t.sni,
        o.sni.is_subset(&t.sni),
    );
    cmp(
        "HTTP requests",
        format!("{:?}", o.http),
        format!("{:?}", t.http),
        o.http == t.http,
        o.http.is_subset(&t.http),
    );
    if let Some(why) = gap
        && o.sni == t.sni
        && o.http == t.http
        && o.queries == t.queries
    {
        fail.add(
            at,
            format!("listed with known_gap ({why}) but now matches tshark: remove `known_gap`"),
        );
    }
}

/// A feed of the parent domains of the SNI and HTTP Host names tshark saw,
/// and a unit of exactly the clients that sent them, must flag exactly
/// those clients (a subset on a known gap), all in that unit. False when
/// tshark saw no such name.
fn names_check(at: &str, p: &Path, gap: Option<&str>, fail: &mut Failures) -> bool {
    let s = summary(p);
    let mut clients: BTreeSet<IpAddr> = BTreeSet::new();
    let mut names: BTreeSet<String> = BTreeSet::new();
    for (_, src, _, _, sni) in &s.sni {
        if sni.contains('.') {
            clients.insert(*src);
            names.insert(sni.to_ascii_lowercase());
        }
    }
    for (_, src, _, _, _, host, _) in &s.http {
        let h = host.split(':').next().unwrap_or("").to_ascii_lowercase();
        if h.contains('.') && h.parse::<IpAddr>().is_err() {
            clients.insert(*src);
            names.insert(h);
        }
    }
    if names.is_empty() {
        return false;
    }
    let feed = Arc::new(FeedMeta {
        name: "names".into(),
        category: "test".into(),
        severity: Severity::High,
    });
    let mut b = SnapshotBuilder::default();
    for n in &names {
        let parent: Vec<&str> = n.rsplitn(3, '.').take(2).collect();
        let parent = format!("{}.{}", parent[1], parent[0]);
        if let Ok(e) = classify(&parent, EntryType::Domain) {
            b.add(e, &feed);
        }
    }
    let nets: Vec<String> = clients
        .iter()
        .map(|c| {
            if c.is_ipv4() {
                format!("{c}/32")
            } else {
                format!("{c}/128")
            }
        })
        .collect();
    let units = match Units::parse(
        "u",
        &format!("code,name,cidrs\nLAB,Đơn vị thử,{}\n", nets.join(" ")),
        &[],
    ) {
        Ok(u) => u,
        Err(e) => {
            fail.add(at, format!("names check units: {e}"));
            return true;
        }
    };
    let r = replay_collect(&[p.to_path_buf()], b.build(), units);
    let found: BTreeSet<IpAddr> = r.sink.hits.iter().map(|h| h.host).collect();
    let ok = match gap {
        None => found == clients,
        Some(_) => found.is_subset(&clients),
    };
    if !ok {
        fail.add(
            at,
            format!("names feed {names:?} flagged {found:?}, want its clients {clients:?}"),
        );
    }
    if let Some(h) = r.sink.hits.iter().find(|h| h.unit.code != "LAB") {
        fail.add(
            at,
            format!("names feed hit outside the unit: {}", describe(h)),
        );
    }
    true
}
