//! The central serves the newest signed feed snapshot and a sensor fetches
//! it on a schedule (issue 18), on a real PostgreSQL: `feeds publish`
//! refuses a version not newer than the newest (the same file again is no
//! change); a sensor running v1 swaps in a published v2 without a restart
//! and keeps it on disk; a snapshot signed with another key, an older one
//! under a newer row (inserted straight into the table) and a shrunken one
//! are refused with their reason counted, while the running one keeps
//! matching and the file on disk stays; a central that is down is counted
//! and asked again, and the sensor goes on.

use gatewatch::intel::indicator::Entry;
use gatewatch::intel::snap::swap::SnapshotReloader;
use gatewatch::intel::snap::{self, SigningKey};
use gatewatch::intel::triggers::OnReload;
use gatewatch::intel::{FeedMeta, Intel, Severity, Snapshot, SnapshotBuilder};
use gatewatch::metrics::Metrics;
use gatewatch::run::fetch::{FetchSource, Fetcher};
use gatewatch::store::central::{FetchStats, sha256_hex};
use gatewatch::testkit::postgres::Postgres;
use gatewatch::testkit::{bin, text, wait_until};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The indicator every snapshot here lists.
const KNOWN: &str = "always.example";
const EVERY: Duration = Duration::from_millis(200);
const WAIT: Duration = Duration::from_secs(20);

/// `KNOWN`, `n` numbered domains and `extra`, signed by `key`.
fn file(n: usize, extra: &str, version: u64, key: &SigningKey) -> Vec<u8> {
    let f = Arc::new(FeedMeta {
        name: "domains".into(),
        category: "malware".into(),
        severity: Severity::High,
    });
    let mut b = SnapshotBuilder::default();
    b.add(Entry::Domain(KNOWN.into()), &f);
    for i in 0..n {
        b.add(Entry::Domain(format!("d{i}.example")), &f);
    }
    if !extra.is_empty() {
        b.add(Entry::Domain(extra.into()), &f);
    }
    let s: Snapshot = b.build();
    snap::compile(&s, &[], version, 1_800_000_000, key)
}

/// `gatewatch feeds publish` of `bytes` (written to `dir/NAME.snap`), with
/// the public key `public` when given: (success, what it said).
fn publish(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    url: &str,
    public: Option<&Path>,
) -> (bool, String) {
    let p = dir.join(format!("{name}.snap"));
    std::fs::write(&p, bytes).unwrap();
    let mut c = bin();
    c.args(["feeds", "publish"])
        .arg(&p)
        .args(["--central", url]);
    if let Some(k) = public {
        c.arg("--key").arg(k);
    }
    let o = c.output().unwrap();
    (o.status.success(), text(&o))
}

fn keypair(dir: &Path, name: &str) -> (SigningKey, PathBuf) {
    let (k, p) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.pub")),
    );
    snap::keygen(&k, &p).unwrap();
    (SigningKey::load(&k).unwrap(), p)
}

fn matches(intel: &Intel, name: &str) -> bool {
    intel.load().match_domain(name).is_some()
}

fn series(m: &Metrics, name: &str) -> f64 {
    m.render()
        .lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// A sensor started from `path` as `run` starts one, fetching from `url`.
struct Sensor {
    intel: Arc<Intel>,
    reloader: Arc<SnapshotReloader>,
    metrics: Arc<Metrics>,
    stats: Arc<FetchStats>,
    _fetcher: Fetcher,
}

fn sensor(path: &Path, public: &Path, url: &str) -> Sensor {
    let key = snap::PublicKey::load(public).unwrap();
    let loaded = snap::load(path, &key).unwrap();
    let intel = Arc::new(Intel::new(loaded.snapshot));
    let reloader = Arc::new(SnapshotReloader::new(
        path,
        key,
        0.5,
        intel.clone(),
        (&loaded.info, loaded.feeds),
    ));
    let metrics = Metrics::new();
    let on: OnReload = {
        let (m, intel) = (metrics.clone(), intel.clone());
        Arc::new(move |r| m.feeds.reloaded(r, &intel.load_full()))
    };
    let stats = Arc::new(FetchStats::default());
    metrics.ship.watch_fetch(stats.clone());
    let src = FetchSource {
        url: url.to_owned(),
        ca: None,
    };
    let fetcher = Fetcher::start(src, EVERY, reloader.clone(), on, stats.clone()).unwrap();
    Sensor {
        intel,
        reloader,
        metrics,
        stats,
        _fetcher: fetcher,
    }
}

impl Sensor {
    /// Wait for one more refusal with `reason`, then check nothing changed:
    /// still `version`, still matching what it matched, `disk` on disk.
    fn refuses(&self, reason: &str, version: u64, path: &Path, disk: &[u8]) {
        let s = format!("gatewatch_snapshot_refused_total{{reason=\"{reason}\"}}");
        wait_until(&s, WAIT, || series(&self.metrics, &s) >= 1.0);
        assert_eq!(self.reloader.running().version, version, "{reason}");
        assert!(matches(&self.intel, KNOWN) && matches(&self.intel, "new2.example"));
        assert!(!matches(&self.intel, "refused.example"), "{reason}");
        assert_eq!(
            std::fs::read(path).unwrap(),
            disk,
            "{reason}: the file on disk changed"
        );
    }
}

#[test]
fn a_sensor_fetches_newer_snapshots_and_refuses_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pg = Postgres::start(d);
    let url = pg.url();
    let (k, public) = keypair(d, "k");
    let (other, _) = keypair(d, "other");
    let v1 = file(1000, "", 1, &k);
    let path = d.join("feeds.snap");
    snap::write_file(&path, &v1).unwrap();
    let (ok, out) = publish(d, "v1", &v1, &url, Some(&public));
    assert!(
        ok && out.contains("published") && out.contains("signature verified"),
        "{out}"
    );
    let (ok, out) = publish(d, "v1", &v1, &url, Some(&public));
    assert!(ok && out.contains("already published"), "{out}");
    let s = sensor(&path, &public, &url);

    // v2 is fetched and swapped in without a restart, and kept on disk.
    let v2 = file(1000, "new2.example", 2, &k);
    assert!(publish(d, "v2", &v2, &url, Some(&public)).0);
    wait_until("v2 swapped in", WAIT, || matches(&s.intel, "new2.example"));
    assert_eq!(s.reloader.running().version, 2);
    assert_eq!(std::fs::read(&path).unwrap(), v2);
    assert!(s.metrics.render().contains("gatewatch_snapshot_version 2"));

    // Signed by another key: publish checks it with --key; without, it goes
    // in, and the sensor refuses it.
    let v3 = file(1000, "refused.example", 3, &other);
    let (ok, out) = publish(d, "v3", &v3, &url, Some(&public));
    assert!(!ok && out.contains("signed by another key"), "{out}");
    assert!(publish(d, "v3", &v3, &url, None).0);
    s.refuses("signature", 2, &path, &v2);

    // An older version: publish refuses it; put straight into the table
    // under a newer row, the sensor reads the signed version and refuses.
    let old = file(1000, "refused.example", 1, &k);
    let (ok, out) = publish(d, "old", &old, &url, Some(&public));
    assert!(!ok && out.contains("not newer than version 3"), "{out}");
    let mut raw = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    raw.execute(
        "INSERT INTO gw_snapshots VALUES (10, now(), 1002, $1, $2)",
        &[&sha256_hex(&old), &old],
    )
    .unwrap();
    s.refuses("not_newer", 2, &path, &v2);

    // Shrunk below half of the running count.
    assert!(publish(d, "v11", &file(100, "refused.example", 11, &k), &url, None).0);
    s.refuses("shrunk", 2, &path, &v2);

    // The central down: counted, asked again, matching goes on.
    pg.stop();
    wait_until("a failed fetch", WAIT, || {
        s.stats.failures.load(Ordering::Relaxed) >= 2
    });
    assert!(series(&s.metrics, "gatewatch_snapshot_fetch_failures_total") >= 1.0);
    assert!(matches(&s.intel, "new2.example"));
    pg.up();
    let v12 = file(900, "new12.example", 12, &k);
    assert!(publish(d, "v12", &v12, &url, Some(&public)).0);
    wait_until("v12 swapped in", WAIT, || {
        matches(&s.intel, "new12.example")
    });
    assert_eq!(std::fs::read(&path).unwrap(), v12);
    assert!(!matches(&s.intel, "new2.example") && matches(&s.intel, KNOWN));
}
