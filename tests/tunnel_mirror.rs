//! The shared generator's `--encap` captures: a gateway mix whose every
//! frame arrives inside VXLAN, Geneve, GRE or ERSPAN II, as a remote mirror
//! delivers it, gives the same hits (hosts, units, indicators, flows) as the
//! plain capture of the same seed, every frame counted under its
//! encapsulation and nothing lost.
//!
//! The generator lives beside the checkout (`../shared/tools`); without it
//! the test says so and passes, unless `GATEWATCH_SHARED_DATA` is set (then
//! the tools must be there too).

use gatewatch::detect::Hit;
use gatewatch::testkit::corpus::csv_columns;
use gatewatch::testkit::{Replayed, corpus, generator, replay_dir};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Small and fixed: 40 hosts in 4 units, 12 infected, about 1,700 frames.
const ARGS: &[&str] = &[
    "--packets",
    "1500",
    "--units",
    "4",
    "--hosts-per-unit",
    "10",
    "--infected",
    "0.3",
    "--feed-domains",
    "300",
    "--feed-ips",
    "300",
    "--feed-cidrs",
    "20",
    "--seed",
    "13",
];

const ENCAPS: [&str; 4] = ["vxlan", "geneve", "gre", "erspan"];

fn spawn(script: &Path, out: &Path, encap: Option<&str>) -> Child {
    let mut c = Command::new("python3");
    c.arg(script).arg(out).args(ARGS);
    if let Some(e) = encap {
        c.args(["--encap", e]);
    }
    // It prints its meta.json; the test output has no use for it.
    c.stdout(Stdio::null());
    c.spawn().expect("python3 runs the generator")
}

/// A hit as both captures must give it.
fn key(h: &Hit) -> (String, String, String, String, String) {
    (
        h.host.to_string(),
        h.unit.code.clone(),
        format!("{:?}", h.source),
        h.observed.to_string(),
        format!("{:?}", h.flow),
    )
}

fn keys(r: &Replayed) -> BTreeSet<(String, String, String, String, String)> {
    r.sink.hits.iter().map(key).collect()
}

/// The counter of `encap` in a replay's stats.
fn counted(r: &Replayed, encap: &str) -> u64 {
    let name = if encap == "erspan" {
        "erspan_type2"
    } else {
        encap
    };
    let c = r.stats.counters();
    c.iter().find(|(k, _)| *k == name).map(|(_, v)| *v).unwrap()
}

#[test]
fn encapsulated_mirrors_give_the_plain_hits() {
    let Some(script) = generator() else {
        eprintln!("gen-gateway-pcap.py not found beside the checkout: skipped");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = |name: &str| tmp.path().join(name);
    let mut children = vec![spawn(&script, &dir("plain"), None)];
    for e in ENCAPS {
        children.push(spawn(&script, &dir(e), Some(e)));
    }
    for mut c in children {
        assert!(c.wait().unwrap().success(), "generator failed");
    }
    let feeds = corpus("gateway-small/feeds.toml");
    for name in ["plain"].iter().chain(ENCAPS.iter()) {
        std::fs::copy(&feeds, dir(name).join("feeds.toml")).unwrap();
    }
    let plain = replay_dir(&dir("plain"));
    let offenders: BTreeSet<String> =
        csv_columns(&dir("plain").join("offenders.csv"), &["host_ip"])
            .unwrap()
            .concat()
            .into_iter()
            .collect();
    let hosts: BTreeSet<String> = plain.sink.hits.iter().map(|h| h.host.to_string()).collect();
    assert_eq!(hosts, offenders, "the plain capture finds its offenders");
    assert_eq!(plain.stats.lost(), 0);
    for e in ENCAPS {
        let r = replay_dir(&dir(e));
        assert_eq!(r.stats.packets, plain.stats.packets, "{e}");
        assert_eq!(
            counted(&r, e),
            r.stats.packets,
            "{e}: every frame decapsulated"
        );
        assert_eq!(r.stats.lost(), 0, "{e}: {}", r.stats);
        assert_eq!(
            keys(&r),
            keys(&plain),
            "{e}: hits differ from the plain capture's"
        );
        assert_eq!(r.sink.hits.len(), plain.sink.hits.len(), "{e}");
        assert_eq!(r.sink.seen, plain.sink.seen, "{e}: observations differ");
        // Flow totals count the hosts' frames, not the mirror's tunnel.
        let totals = |r: &Replayed| {
            let mut t: Vec<_> = r
                .sink
                .flows
                .iter()
                .map(|f| (f.client, f.server, f.pkts, f.bytes))
                .collect();
            t.sort();
            t
        };
        assert_eq!(totals(&r), totals(&plain), "{e}: flow totals differ");
    }
}
