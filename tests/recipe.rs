//! One engine recipe: the parallel replay (the pipeline `gatewatch bench`
//! and `run` use) honours every engine option exactly as the inline replay
//! does: DNS correlation, reassembly and flow events, internal resolvers,
//! the flow table's size (split over the workers) and the shared host names.

use gatewatch::detect::{EngineOptions, HitSource, Recipe};
use gatewatch::output::sink::{HitSink, SinkOptions};
use gatewatch::run::pipeline::{RunOutcome, Sizing};
use gatewatch::run::replay::{replay, replay_parallel};
use gatewatch::tcp::flow::FlowConfig;
use gatewatch::testkit::workers::WORKER_COUNTS;
use gatewatch::testkit::{
    Collector, PcapWriter, corpus, crafted_recipe, dir_recipe, dns_query, dns_response, ip,
    tcp_frame, udp_frame,
};
use hickory_proto::rr::RecordType;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn small() -> PathBuf {
    corpus("gateway-small")
}

fn gateway_recipe(options: EngineOptions, workers: usize) -> Recipe {
    dir_recipe(&small(), options).workers(workers)
}

/// The pipeline's outcome and its alert log's lines.
fn parallel(
    files: &[PathBuf],
    recipe: &Recipe,
    workers: usize,
    dir: &Path,
) -> (RunOutcome, Vec<Value>) {
    let log = dir.join(format!("alerts-{workers}.jsonl"));
    let sink = HitSink::new(
        Box::new(std::fs::File::create(&log).unwrap()),
        SinkOptions::new("t", 0),
    );
    let sizing = Sizing {
        workers,
        queue_batches: 16,
        batch_packets: 64,
    };
    let o = replay_parallel(files, sizing, recipe, sink);
    let lines = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (o, lines)
}

fn alerts(lines: &[Value]) -> impl Iterator<Item = &Value> {
    lines.iter().filter(|l| l["event_type"] == "alert")
}

/// (host, indicator, how it was seen) of every alert line.
fn hit_set(lines: &[Value]) -> BTreeSet<(String, String, String)> {
    alerts(lines)
        .map(|l| {
            let s = |k: &str| l[k].as_str().unwrap_or("").to_string();
            (s("host_ip"), s("indicator"), s("observed_in"))
        })
        .collect()
}

/// The same as [`hit_set`], from an inline replay.
fn inline(recipe: &Recipe) -> (Collector, gatewatch::detect::Stats) {
    let mut c = Collector::default();
    let r = replay(
        &[small().join("traffic.pcap")],
        &mut recipe.engine(0),
        &mut c,
    );
    (c, r.stats)
}

fn inline_set(c: &Collector) -> BTreeSet<(String, String, String)> {
    c.hits
        .iter()
        .map(|h| {
            let line = gatewatch::output::eve::alert_json(h, "t");
            let v: Value = serde_json::from_str(&line).unwrap();
            let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
            (s("host_ip"), s("indicator"), s("observed_in"))
        })
        .collect()
}

fn correlated(lines: &[Value]) -> usize {
    alerts(lines)
        .filter(|l| l["correlated_from"] == "dns")
        .count()
}

#[test]
fn parallel_replay_honours_correlation_and_reassembly() {
    let d = tempfile::tempdir().unwrap();
    let files = [small().join("traffic.pcap")];
    for (correlate, reassemble) in [(true, true), (false, true), (true, false), (false, false)] {
        let options = EngineOptions {
            correlate,
            reassemble,
            ..EngineOptions::default()
        };
        let (c, stats) = inline(&gateway_recipe(options.clone(), 1));
        let want_links = c
            .hits
            .iter()
            .filter(|h| h.source == HitSource::DnsLink)
            .count();
        assert_eq!(want_links > 0, correlate, "inline, correlate {correlate}");
        assert_eq!(stats.flows.created > 0, reassemble);
        for workers in WORKER_COUNTS {
            let recipe = gateway_recipe(options.clone(), workers);
            let (o, lines) = parallel(&files, &recipe, workers, d.path());
            let what =
                format!("{workers} worker(s), correlate {correlate}, reassemble {reassemble}");
            assert_eq!(correlated(&lines) > 0, correlate, "{what}");
            assert_eq!(o.stats.flows.created > 0, reassemble, "{what}");
            assert_eq!(o.sink.counts.flows > 0, reassemble, "{what}");
            // A host's packets meet in one worker: the workers find
            // exactly what one inline engine finds.
            assert_eq!(hit_set(&lines), inline_set(&c), "{what}");
            assert_eq!(o.sink.counts.flows as usize, c.flows.len(), "{what}");
        }
    }
}

#[test]
fn parallel_replay_splits_the_flow_table_and_shares_host_names() {
    let d = tempfile::tempdir().unwrap();
    let files = [small().join("traffic.pcap")];
    let tiny = EngineOptions {
        flows: FlowConfig {
            max_flows: 64,
            ..FlowConfig::default()
        },
        ..EngineOptions::default()
    };
    let recipe = gateway_recipe(tiny, 2);
    assert_eq!(recipe.flow_share().max_flows, 32);
    let (o, _) = parallel(&files, &recipe, 2, d.path());
    assert!(o.stats.flows.evicted > 0, "a 64-flow table must evict");
    let (roomy, _) = parallel(
        &files,
        &gateway_recipe(EngineOptions::default(), 2),
        2,
        d.path(),
    );
    assert_eq!(roomy.stats.flows.evicted, 0);

    // DHCP names are learned by whichever worker sees them and attached to
    // hits on every worker: with one worker, exactly as inline.
    let (c, _) = inline(&gateway_recipe(EngineOptions::default(), 1));
    let want: BTreeSet<(String, String)> = c
        .hits
        .iter()
        .filter_map(|h| Some((h.host.to_string(), h.host_name.as_deref()?.to_string())))
        .collect();
    assert!(want.len() > 50, "names on hits: {}", want.len());
    let (_, lines) = parallel(
        &files,
        &gateway_recipe(EngineOptions::default(), 1),
        1,
        d.path(),
    );
    let got: BTreeSet<(String, String)> = alerts(&lines)
        .filter_map(|l| {
            Some((
                l["host_ip"].as_str()?.to_string(),
                l["hostname"].as_str()?.to_string(),
            ))
        })
        .collect();
    assert_eq!(got, want);
}

/// A resolver's lookup teaches every worker: each of its clients, on
/// whichever worker, is found when it connects to the address, with any
/// worker count.
#[test]
fn parallel_replay_honours_internal_resolvers() {
    let resolver = ip("10.1.0.53");
    let mut w = PcapWriter::new(1, 65535);
    let q = dns_query(11, "cdn.c2.example", RecordType::A);
    let a = dns_response(11, "cdn.c2.example", &[], "203.0.113.50".parse().unwrap());
    let mut frames = vec![
        udp_frame(resolver, ip("8.8.8.8"), 40000, 53, None, &q),
        udp_frame(ip("8.8.8.8"), resolver, 53, 40000, None, &a),
    ];
    const CLIENTS: u8 = 24;
    for c in 0..CLIENTS {
        let client = ip(&format!("10.1.{c}.6"));
        frames.push(tcp_frame(client, ip("203.0.113.50"), 50000, 443, 1, b""));
    }
    for (i, f) in frames.iter().enumerate() {
        w.frame(1_700_000_000_000_000 + i as u64 * 1_000, f, f.len());
    }
    let d = tempfile::tempdir().unwrap();
    let pcap = d.path().join("resolver.pcap");
    w.write(&pcap);
    for configured in [true, false] {
        let options = EngineOptions {
            resolvers: if configured {
                vec![resolver]
            } else {
                Vec::new()
            },
            ..EngineOptions::default()
        };
        for workers in WORKER_COUNTS {
            let recipe = crafted_recipe(&["c2.example"], options.clone()).workers(workers);
            let (o, lines) = parallel(std::slice::from_ref(&pcap), &recipe, workers, d.path());
            let what = format!("{workers} worker(s), resolver configured {configured}");
            let query = alerts(&lines)
                .find(|l| l["observed_in"] == "dns.query")
                .expect("the resolver's query is a hit");
            assert_eq!(query["host_ip"], "10.1.0.53");
            assert_eq!(query["via_resolver"] == true, configured, "{query}");
            let clients = alerts(&lines)
                .filter(|l| l["correlated_from"] == "dns" && l["via_resolver"] == true)
                .count();
            let want = if configured { usize::from(CLIENTS) } else { 0 };
            assert_eq!(clients, want, "{what}");
            // The copies other workers learn from are not counted again.
            assert_eq!(o.stats.packets, frames.len() as u64, "{what}");
            assert_eq!(o.stats.dns_queries, 1, "{what}");
        }
    }
}

/// The DNS-heavy mix with 10% of queries listed, each lookup followed by
/// connections to its answer: the pipeline with 1, 2 and 4 workers finds
/// exactly the alerts one inline engine finds, correlated ones included.
#[test]
fn dns_heavy_mix_gives_the_same_alerts_with_any_worker_count() {
    use gatewatch::testkit::synth::{DnsMix, dns_mix};
    use gatewatch::testkit::workers::replay_with_any_workers;
    use gatewatch::testkit::{load_feeds, load_units};
    let d = tempfile::tempdir().unwrap();
    let mix = DnsMix {
        packets: 30_000,
        seed: 5,
        listed_per_mille: 100,
        heavy_pct: 0,
    };
    dns_mix(d.path(), mix).unwrap();
    let (inline, diffs) = replay_with_any_workers(
        &d.path().join("traffic.pcap"),
        load_feeds(&d.path().join("feeds.toml")),
        load_units(&d.path().join("units.csv")),
    );
    let linked = inline
        .sink
        .hits
        .iter()
        .filter(|h| h.source == HitSource::DnsLink)
        .count();
    assert!(linked > 100, "only {linked} correlated hits: mix too thin");
    assert!(diffs.is_empty(), "{diffs:?}");
}
