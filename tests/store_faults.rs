//! The store on a full disk: the writer counts and logs failed commits,
//! nothing panics or blocks, and writing resumes when space returns. Uses a
//! small tmpfs the test mounts itself (needs root, like the live tests; it
//! fails, never skips, where it cannot mount).

use gatewatch::output::eve::alert_json;
use gatewatch::store::Store;
use gatewatch::store::writer::{StoreRecord, StoreWriter};
use gatewatch::testkit::{gateway_small_hits, wait_until};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// A tmpfs mounted for the test, unmounted on drop (also on failure).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        let o = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "gwtest"])
            .arg(dir)
            .output()
            .expect("run mount");
        assert!(
            o.status.success(),
            "cannot mount a tmpfs (this test needs root): {}",
            String::from_utf8_lossy(&o.stderr)
        );
        Tmpfs(dir.to_path_buf())
    }

    fn resize(&self, size: &str) {
        let o = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// How long the writer may take to get somewhere.
const WRITER_WAIT: Duration = Duration::from_secs(30);

#[test]
fn full_disk_is_counted_and_writing_resumes_when_space_returns() {
    let hits = gateway_small_hits();

    let d = tempfile::tempdir().unwrap();
    // 2 MiB: the first records (each alert kept twice, in alerts and the
    // journal) fit; the padded ones below do not.
    let fs = Tmpfs::mount(d.path(), "2m");
    let db = d.path().join("g.db");
    let w = StoreWriter::start(Store::open(&db).unwrap(), 100_000, None);
    // First what fits, then about 3 MB of alert text: far more than the
    // 2 MiB disk, far less than 64 MiB.
    let mut offered = 0u64;
    for h in &hits {
        assert!(w.offer(StoreRecord::from_hit(h, alert_json(h, "t"))));
        offered += 1;
    }
    wait_until("the first records", WRITER_WAIT, || {
        w.stats.written.load(Ordering::Relaxed) == offered
    });
    let pad = "x".repeat(1_500);
    for round in 0..10 {
        for h in &hits {
            let json = format!("{}{pad}{round}", alert_json(h, "t"));
            assert!(
                w.offer(StoreRecord::from_hit(h, json)),
                "queue never full here"
            );
            offered += 1;
        }
    }
    wait_until("a failed commit", WRITER_WAIT, || {
        w.stats.errors.load(Ordering::Relaxed) > 0
    });
    let written_full = w.stats.written.load(Ordering::Relaxed);
    assert!(written_full < offered, "the disk should have filled");
    assert!(written_full >= hits.len() as u64);

    fs.resize("64m");
    wait_until("writing to resume", WRITER_WAIT, || {
        w.stats.written.load(Ordering::Relaxed) > written_full
    });
    let st = w.finish();
    let (written, overflow) = (
        st.written.load(Ordering::Relaxed),
        st.overflow.load(Ordering::Relaxed),
    );
    assert_eq!(
        written + overflow,
        offered,
        "every record written or counted"
    );
    let s = Store::open_read_only(&db).unwrap();
    assert_eq!(s.integrity_check().unwrap(), "ok");
    assert_eq!(s.alert_count().unwrap(), written);
    eprintln!(
        "disk full after {written_full} records; {} failed commit(s); {written} written, {overflow} dropped",
        st.errors.load(Ordering::Relaxed)
    );
}

fn one_host_store(db: &Path) -> IpAddr {
    let hits = gateway_small_hits();
    let w = StoreWriter::start(Store::open(db).unwrap(), 1_000, None);
    w.put(StoreRecord::from_hit(&hits[0], alert_json(&hits[0], "t")));
    w.finish();
    hits[0].host
}

#[test]
fn a_store_locked_by_another_writer_is_named() {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("l.db");
    let ip = one_host_store(&db);
    let other = rusqlite::Connection::open(&db).unwrap();
    other
        .execute_batch("BEGIN IMMEDIATE; UPDATE hosts SET hits = hits;")
        .unwrap();
    let mut s = Store::open(&db).unwrap();
    let e = s.mark_cleaned(ip, "t", "", 1).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("l.db") && msg.contains("locked"), "{msg}");
    other.execute_batch("ROLLBACK").unwrap();
    assert!(
        s.mark_cleaned(ip, "t", "", 1).is_ok(),
        "works once released"
    );
}

#[test]
fn a_store_on_a_read_only_file_system_is_named() {
    let d = tempfile::tempdir().unwrap();
    let fs = Tmpfs::mount(d.path(), "8m");
    let db = d.path().join("ro.db");
    one_host_store(&db);
    let o = Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(d.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let e = Store::open(&db)
        .err()
        .expect("a read-only store cannot be opened for writing");
    let msg = e.to_string();
    assert!(msg.contains("ro.db"), "{msg}");
    assert!(
        msg.contains("read-only") || msg.contains("readonly"),
        "{msg}"
    );
    fs.resize("8m");
}
