//! The shared generator's unlisted malware (`--unlisted`): on several
//! seeds, every planted host is found with its behaviour named (`scan`,
//! `dga`, `sinkhole_answer`), no clean host (the look-alikes included) is
//! reported by a heuristic, and the offenders are exactly the generator's.
//!
//! The generator lives beside the checkout (`../shared/tools`); without it
//! the test says so and passes, unless `GATEWATCH_SHARED_DATA` is set (then
//! it must be there).

use gatewatch::testkit::corpus::csv_columns;
use gatewatch::testkit::{corpus, generator, replay_dir};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};

const SEEDS: [&str; 4] = ["3", "17", "29", "101"];

fn generate(script: &Path, out: &Path, seed: &str) -> std::process::Child {
    Command::new("python3")
        .arg(script)
        .arg(out)
        .args([
            "--packets",
            "6000",
            "--units",
            "10",
            "--hosts-per-unit",
            "20",
        ])
        .args([
            "--unlisted",
            "12",
            "--feed-domains",
            "2000",
            "--feed-ips",
            "2000",
        ])
        .args(["--feed-cidrs", "100", "--seed", seed])
        .stdout(Stdio::null())
        .spawn()
        .expect("python3 runs the generator")
}

#[test]
fn planted_unlisted_malware_is_found_on_several_seeds() {
    let Some(script) = generator() else {
        eprintln!("gen-gateway-pcap.py not found beside the checkout: skipped");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dirs: Vec<_> = SEEDS.iter().map(|s| tmp.path().join(s)).collect();
    let children: Vec<_> = SEEDS
        .iter()
        .zip(&dirs)
        .map(|(s, d)| generate(&script, d, s))
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success(), "generator failed");
    }
    for (seed, dir) in SEEDS.iter().zip(&dirs) {
        std::fs::copy(
            corpus("gateway-unlisted/feeds.toml"),
            dir.join("feeds.toml"),
        )
        .unwrap();
        let r = replay_dir(dir);
        let truth = csv_columns(&dir.join("truth.csv"), &["host_ip", "how"]).unwrap();
        let planted: BTreeSet<(String, String)> = truth
            .into_iter()
            .map(|r| (r[0].clone(), r[1].clone()))
            .filter(|(_, how)| ["scan", "dga", "sinkhole_answer"].contains(&how.as_str()))
            .collect();
        assert_eq!(planted.len(), 12, "seed {seed}: the generator planted 12");
        let mut found: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for h in &r.sink.hits {
            if let Some(b) = h.heuristic() {
                found
                    .entry(h.host.to_string())
                    .or_default()
                    .insert(b.into());
            }
        }
        let got: BTreeSet<(String, String)> = found
            .iter()
            .flat_map(|(h, bs)| bs.iter().map(move |b| (h.clone(), b.clone())))
            .collect();
        assert_eq!(
            got, planted,
            "seed {seed}: heuristic findings differ from the planted hosts"
        );
        let offenders: BTreeSet<String> = csv_columns(&dir.join("offenders.csv"), &["host_ip"])
            .unwrap()
            .concat()
            .into_iter()
            .collect();
        let hosts: BTreeSet<String> = r.sink.hits.iter().map(|h| h.host.to_string()).collect();
        assert_eq!(hosts, offenders, "seed {seed}: offenders differ");
        assert_eq!(r.stats.lost(), 0, "seed {seed}");
    }
}
