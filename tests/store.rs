//! The offender store: what the sink writes comes back from a fresh
//! connection, cleaning status and reinfection follow hits, and broken or
//! foreign database files are refused with a message naming them.

use gatewatch::detect::Hit;
use gatewatch::output::eve::alert_json;
use gatewatch::store::writer::{StoreRecord, StoreWriter};
use gatewatch::store::{SCHEMA_VERSION, Status, Store, StoreError};
use gatewatch::testkit::{corpus, gateway_small_hits};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

fn write(path: &Path, hits: &[Hit]) {
    let w = StoreWriter::start(Store::open(path).unwrap(), 100_000, None);
    for h in hits {
        assert!(w.offer(StoreRecord::from_hit(h, alert_json(h, "t"))));
    }
    let st = w.finish();
    assert_eq!(
        st.written.load(std::sync::atomic::Ordering::Relaxed),
        hits.len() as u64
    );
}

#[test]
fn hits_round_trip_through_the_store() {
    let hits = gateway_small_hits();
    assert!(hits.len() > 100);
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("sub/dir/gatewatch.db");
    write(&db, &hits);

    let s = Store::open_read_only(&db).unwrap();
    assert_eq!(s.integrity_check().unwrap(), "ok");
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(s.alert_count().unwrap(), hits.len() as u64);
    // Per host: hit count, unit, first and last seen equal the hits'.
    let mut want: BTreeMap<IpAddr, (String, u64, i64, i64)> = BTreeMap::new();
    for h in &hits {
        let e = want
            .entry(h.host)
            .or_insert((h.unit.code.clone(), 0, i64::MAX, i64::MIN));
        e.1 += 1;
        e.2 = e.2.min(h.ts_ns);
        e.3 = e.3.max(h.ts_ns);
    }
    let rows = s.hosts(None).unwrap();
    assert_eq!(rows.len(), want.len());
    for r in &rows {
        let w = &want[&r.ip];
        assert_eq!(
            (&r.unit, r.hits, r.first_seen_ns, r.last_seen_ns),
            (&w.0, w.1, w.2, w.3)
        );
        assert_eq!(r.status, Status::Open);
    }
    // The offenders the generator planted, by unit.
    let truth = std::fs::read_to_string(corpus("gateway-small/offenders.csv")).unwrap();
    let planted: Vec<(IpAddr, String)> = truth
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].parse().unwrap(), f[1].to_owned())
        })
        .collect();
    assert_eq!(planted.len(), rows.len());
    for (ip, unit) in planted {
        assert_eq!(s.host(ip).unwrap().unwrap().unit, unit);
    }
    let one_unit = &rows[0].unit;
    let of_unit = s.hosts(Some(one_unit)).unwrap();
    assert!(!of_unit.is_empty() && of_unit.iter().all(|r| &r.unit == one_unit));

    // Writing the same hits again (a second replay) adds, never duplicates hosts.
    write(&db, &hits);
    let s = Store::open_read_only(&db).unwrap();
    assert_eq!(s.hosts(None).unwrap().len(), want.len());
    assert_eq!(s.alert_count().unwrap(), 2 * hits.len() as u64);
}

#[test]
fn cleaned_hosts_are_reinfected_by_a_later_hit_only() {
    let mut hits = gateway_small_hits();
    hits.sort_by_key(|h| h.ts_ns);
    let host = hits[0].host;
    let mine: Vec<Hit> = hits.iter().filter(|h| h.host == host).cloned().collect();
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("g.db");
    write(&db, &mine[..1]);

    let mut s = Store::open(&db).unwrap();
    let cleaned_at = mine[0].ts_ns + 1_000;
    let row = s
        .mark_cleaned(host, "tester", "reimaged", cleaned_at)
        .unwrap();
    assert_eq!(row.status, Status::Cleaned);
    let err = s
        .mark_cleaned("203.0.113.77".parse().unwrap(), "t", "", 0)
        .unwrap_err();
    assert!(err.to_string().contains("no such offender host"), "{err}");
    drop(s);

    // A hit from before the cleaning (late replay) does not reinfect.
    let mut early = mine[0].clone();
    early.ts_ns = cleaned_at - 1;
    write(&db, &[early]);
    assert_eq!(
        Store::open_read_only(&db)
            .unwrap()
            .host(host)
            .unwrap()
            .unwrap()
            .status,
        Status::Cleaned
    );
    let mut late = mine[0].clone();
    late.ts_ns = cleaned_at + 1;
    write(&db, &[late]);
    let s = Store::open_read_only(&db).unwrap();
    let row = s.host(host).unwrap().unwrap();
    assert_eq!(row.status, Status::Reinfected);
    assert_eq!(row.hits, 3);
}

#[test]
fn foreign_broken_and_newer_files_are_refused_by_name() {
    let d = tempfile::tempdir().unwrap();
    let junk = d.path().join("junk.db");
    std::fs::write(&junk, vec![0x42u8; 8192]).unwrap();
    let e = Store::open(&junk).err().expect("junk refused");
    let msg = e.to_string();
    assert!(msg.contains("junk.db"), "{msg}");

    let newer = d.path().join("newer.db");
    {
        let c = rusqlite::Connection::open(&newer).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
    }
    let e = Store::open(&newer).err().expect("newer schema refused");
    assert!(
        matches!(e, StoreError::NewerSchema { found: 99, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("newer gatewatch"), "{e}");

    let missing = d.path().join("none.db");
    let e = Store::open_read_only(&missing)
        .err()
        .expect("missing refused");
    assert!(e.to_string().contains("none.db"), "{e}");

    // An empty (version 0) database is migrated in place.
    let empty = d.path().join("empty.db");
    rusqlite::Connection::open(&empty)
        .unwrap()
        .execute_batch("CREATE TABLE other (x INTEGER);")
        .unwrap();
    assert_eq!(
        Store::open(&empty).unwrap().schema_version().unwrap(),
        SCHEMA_VERSION
    );
}

#[test]
fn a_full_queue_counts_overflow_instead_of_waiting() {
    let hits = gateway_small_hits();
    let d = tempfile::tempdir().unwrap();
    let w = StoreWriter::start(Store::open(&d.path().join("q.db")).unwrap(), 4, None);
    let mut refused = 0;
    for h in hits.iter().cycle().take(5_000) {
        if !w.offer(StoreRecord::from_hit(h, String::new())) {
            refused += 1;
        }
    }
    let st = w.finish();
    let written = st.written.load(std::sync::atomic::Ordering::Relaxed);
    let overflow = st.overflow.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        refused > 0,
        "a 4-slot queue should overflow under 5,000 offers"
    );
    assert_eq!(overflow, refused);
    assert_eq!(written + overflow, 5_000, "every record written or counted");
}

#[test]
fn offender_lists_and_unit_figures_agree_with_the_hits() {
    let hits = gateway_small_hits();
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("q.db");
    write(&db, &hits);
    let mut s = Store::open(&db).unwrap();
    let all = s.offenders(None, None, None).unwrap();
    let hosts: std::collections::BTreeSet<IpAddr> = hits.iter().map(|h| h.host).collect();
    assert_eq!(all.len(), hosts.len());
    let total: u64 = all.iter().map(|o| o.hits).sum();
    assert_eq!(total, hits.len() as u64);
    for o in &all {
        assert!(!o.top_indicators.is_empty() && o.top_indicators.len() <= 5);
        assert!(!o.categories.is_empty());
        assert!(!o.unit_name.is_empty());
        let distinct: std::collections::BTreeSet<&str> = hits
            .iter()
            .filter(|h| h.host.to_string() == o.ip)
            .map(|h| &*h.indicator.value)
            .collect();
        assert_eq!(o.indicator_count, distinct.len() as u64, "{}", o.ip);
    }
    let figs = s.unit_figures(i64::MIN, i64::MAX).unwrap();
    assert_eq!(
        figs.iter().map(|f| f.detected).sum::<u64>(),
        hosts.len() as u64
    );
    assert!(
        figs.iter()
            .all(|f| f.still_infected == f.detected && f.cleaned == 0)
    );
    let units = s.units().unwrap();
    assert_eq!(
        units.iter().map(|u| u.hosts).sum::<u64>(),
        hosts.len() as u64
    );

    // Mark one cleaned: the figures and the status filter follow.
    let ip: IpAddr = all[0].ip.parse().unwrap();
    s.mark_cleaned(ip, "t", "", i64::MAX - 1).unwrap();
    let figs = s.unit_figures(i64::MIN, i64::MAX).unwrap();
    assert_eq!(figs.iter().map(|f| f.cleaned).sum::<u64>(), 1);
    let cleaned = s.offenders(None, None, Some(Status::Cleaned)).unwrap();
    assert_eq!(cleaned.len(), 1);
    assert_eq!(cleaned[0].ip, all[0].ip);
    // A period before any hit detects nothing.
    assert!(s.unit_figures(0, 1).unwrap().is_empty());
    // Since-filter: hosts last seen at or after the newest hit only.
    let newest = hits.iter().map(|h| h.ts_ns).max().unwrap();
    let recent = s.offenders(None, Some(newest), None).unwrap();
    assert!(!recent.is_empty() && recent.len() < all.len());
}

#[test]
fn raw_alerts_past_retention_are_pruned_aggregates_kept() {
    let hits = gateway_small_hits();
    let day = 86_400_000_000_000i64;
    // The same hits spread over ten days, newest last.
    let spread: Vec<Hit> = hits
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let mut h = h.clone();
            h.ts_ns += (i % 10) as i64 * day;
            h
        })
        .collect();
    let newest = spread.iter().map(|h| h.ts_ns).max().unwrap();
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("r.db");
    let w = StoreWriter::start(
        Store::open(&db).unwrap(),
        100_000,
        Some(std::time::Duration::from_secs(2 * 86_400)),
    );
    for h in &spread {
        w.put(StoreRecord::from_hit(h, alert_json(h, "t")));
    }
    w.finish();
    let s = Store::open_read_only(&db).unwrap();
    let kept = spread
        .iter()
        .filter(|h| h.ts_ns >= newest - 2 * day)
        .count();
    assert!(kept > 0 && kept < spread.len());
    assert_eq!(s.alert_count().unwrap(), kept as u64);
    let total: u64 = s.hosts(None).unwrap().iter().map(|h| h.hits).sum();
    assert_eq!(total, spread.len() as u64, "aggregates keep every hit");
}

#[test]
fn readers_see_consistent_data_while_the_writer_commits() {
    let hits = gateway_small_hits();
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("c.db");
    let w = StoreWriter::start(Store::open(&db).unwrap(), 100_000, None);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut reads = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Through the store's own checks (schema, integrity)...
                let s = Store::open_read_only(&db).unwrap();
                assert!(s.alert_count().is_ok());
                // ...and one statement, one snapshot: aggregates equal raw alerts.
                let c = rusqlite::Connection::open(&db).unwrap();
                let (n, hits): (i64, Option<i64>) = c
                    .query_row(
                        "SELECT (SELECT count(*) FROM alerts), (SELECT sum(hits) FROM hosts)",
                        [],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .unwrap();
                assert_eq!(hits.unwrap_or(0), n, "a reader saw half a commit");
                reads += 1;
            }
            reads
        })
    };
    for round in 0..20 {
        for h in &hits {
            let mut h = h.clone();
            h.ts_ns += round;
            w.put(StoreRecord::from_hit(&h, alert_json(&h, "t")));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    w.finish();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);
    let s = Store::open_read_only(&db).unwrap();
    assert_eq!(s.alert_count().unwrap(), 20 * hits.len() as u64);
}
