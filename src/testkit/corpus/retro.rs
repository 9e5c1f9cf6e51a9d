//! The retro-hunt rule (issue 16), run on every expect block with feeds: a
//! replay with no feeds keeps the history in a store; a hunt with the
//! block's feeds must then leave the store with the (host, indicator) pairs
//! a fresh replay with those feeds gives its offenders. URL and keyword
//! indicators are left out of the comparison: the history keeps names and
//! addresses, not request paths.

use super::{Expect, Failures};
use crate::detect::{EngineOptions, Hit, Recipe, Sink};
use crate::intel::indicator::IndicatorKind;
use crate::intel::{Intel, Snapshot};
use crate::output::sink::{HitSink, SinkOptions, StorePolicy};
use crate::run::replay::replay;
use crate::run::retro::{Reported, RetroOptions, hunt};
use crate::store::Store;
use crate::store::writer::{StoreWriter, WriterStats};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

type Pairs = BTreeSet<(IpAddr, String)>;

/// Check block `e` of capture `file` (paths relative to `base`) against the
/// hits of its fresh replay; true when the rule ran.
pub fn check_retro(
    at: &str,
    file: &Path,
    base: &Path,
    e: &Expect,
    fresh: &[Hit],
    fail: &mut Failures,
) -> bool {
    let (Ok(feeds), Ok(units)) = (e.feeds(base), e.units(base)) else {
        return false; // check_expect has reported it
    };
    retro_matches(at, file, feeds.snapshot, units, fresh, fail);
    true
}

/// The rule for capture `file`, feeds `snapshot` and `units`, whose fresh
/// replay gave `fresh`.
pub fn retro_matches(
    at: &str,
    file: &Path,
    snapshot: Snapshot,
    units: crate::detect::attribution::Units,
    fresh: &[Hit],
    fail: &mut Failures,
) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("gatewatch-retro-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    hunt_and_compare(
        at,
        file,
        &dir.join("retro.db"),
        (snapshot, units),
        fresh,
        fail,
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// [`check_retro`] with the store at `db`.
fn hunt_and_compare(
    at: &str,
    file: &Path,
    db: &Path,
    (snapshot, units): (Snapshot, crate::detect::attribution::Units),
    fresh: &[Hit],
    fail: &mut Failures,
) {
    let db = db.to_path_buf();
    let units = Arc::new(units);
    let options = EngineOptions {
        history: true,
        ..EngineOptions::default()
    };
    let recipe = Recipe::new(
        Arc::new(Intel::new(Snapshot::empty())),
        units.clone(),
        options,
    );
    let st = into_store(&db, |sink| {
        replay(&[file.to_path_buf()], &mut recipe.engine(0), sink);
    });
    if st.history_dropped.load(Ordering::Relaxed) > 0 {
        fail.add(
            at,
            "retro: the history of one host-day was full; raise the bound",
        );
    }
    let reader = match Store::open_read_only(&db) {
        Ok(s) => s,
        Err(err) => return fail.add(at, format!("retro: {err}")),
    };
    let o = RetroOptions {
        since_ns: None,
        sinkhole: true,
    };
    let mut hunted = Ok(());
    into_store(&db, |sink| {
        let r = hunt(&reader, &snapshot, &units, &o, &mut Reported::new(), |h| {
            sink.hit(h)
        });
        hunted = r.map(|_| ());
    });
    if let Err(err) = hunted {
        fail.add(at, format!("retro: hunt failed: {err}"));
    }
    let want: Pairs = fresh
        .iter()
        .filter(|h| h.offender())
        .filter(|h| {
            !matches!(
                h.indicator.kind,
                IndicatorKind::Url | IndicatorKind::Keyword
            )
        })
        .map(|h| (h.host, h.indicator.value.to_string()))
        .collect();
    match stored_pairs(&db) {
        Ok(got) if got == want => {}
        Ok(got) => fail.add(
            at,
            format!(
                "retro: after the hunt the store has {} (host, indicator) pair(s), a fresh replay {}:\n  only after the hunt: {:?}\n  only in the fresh replay: {:?}",
                got.len(),
                want.len(),
                got.difference(&want).collect::<Vec<_>>(),
                want.difference(&got).collect::<Vec<_>>()
            ),
        ),
        Err(err) => fail.add(at, format!("retro: {err}")),
    }
}

/// Run `f` with a sink whose hits (and history) go to the store at `db`;
/// the writer's counters once all is committed.
fn into_store(db: &Path, f: impl FnOnce(&mut HitSink<'static>)) -> Arc<WriterStats> {
    let w = StoreWriter::start(Store::open(db).expect("open store"), 65_536, None);
    let mut o = SinkOptions::new("retro-test", 0);
    o.store = Some((w, StorePolicy::Wait));
    let mut sink = HitSink::new(Box::new(std::io::sink()), o);
    f(&mut sink);
    sink.finish().store.expect("store counters")
}

fn stored_pairs(db: &Path) -> Result<Pairs, String> {
    let s = Store::open_read_only(db).map_err(|e| e.to_string())?;
    let pairs = s.host_indicator_pairs().map_err(|e| e.to_string())?;
    Ok(pairs.into_iter().collect())
}
