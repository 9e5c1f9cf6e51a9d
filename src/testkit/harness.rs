//! Running engines in tests: a sink that keeps everything ([`Collector`]),
//! replays of crafted frames and of capture files, and the feeds and units
//! a test needs.

use super::PcapWriter;
use crate::capture::file::read_file;
use crate::detect::attribution::{Units, default_internal};
use crate::detect::{Engine, EngineOptions, FlowRecord, Hit, Observation, Recipe, Sink, Stats};
use crate::intel::feeds::{FeedsConfig, build_snapshot};
use crate::intel::{Intel, Snapshot};
use crate::packet::FlowKey;
use crate::protocols::dns;
use crate::protocols::name::NameBuf;
use crate::run::replay::replay;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An observation, owned, for assertions.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Seen {
    DnsQuery {
        name: String,
        qtype: u16,
    },
    DnsAnswer {
        name: String,
        rcode: u16,
        a: Vec<IpAddr>,
        cname: Vec<String>,
    },
    Sni {
        src: IpAddr,
        dst: IpAddr,
        port: u16,
        sni: Option<String>,
    },
    /// `host` is the Host header only (tshark's view); the matcher also
    /// takes the host of absolute-form and CONNECT targets.
    Http {
        src: IpAddr,
        dst: IpAddr,
        port: u16,
        method: String,
        host: Option<String>,
        target: String,
    },
}

/// Sink that keeps everything, for tests.
#[derive(Default)]
pub struct Collector {
    pub hits: Vec<Hit>,
    pub seen: Vec<Seen>,
    pub flows: Vec<FlowRecord>,
    pub hygiene: Vec<crate::detect::hygiene::HygieneEvent>,
    pub history: Vec<crate::detect::history::HistoryItem>,
}

impl Sink for Collector {
    fn hit(&mut self, hit: Hit) {
        self.hits.push(hit);
    }
    fn flow(&mut self, flow: FlowRecord) {
        self.flows.push(flow);
    }
    fn hygiene(&mut self, e: crate::detect::hygiene::HygieneEvent) {
        self.hygiene.push(e);
    }
    fn history(&mut self, items: Vec<crate::detect::history::HistoryItem>) {
        self.history.extend(items);
    }
    fn wants_observations(&self) -> bool {
        true
    }
    fn observe(&mut self, _ts: i64, f: &FlowKey, o: &Observation<'_>) {
        let mut nb = NameBuf::default();
        match o {
            Observation::Dns(m) if !m.response => {
                for q in &m.queries {
                    dns::name_into(q.name(), &mut nb);
                    self.seen.push(Seen::DnsQuery {
                        name: nb.as_str().into(),
                        qtype: q.query_type().into(),
                    });
                }
            }
            Observation::Dns(m) => {
                let mut a = Vec::new();
                let mut cname = Vec::new();
                for (_, ans) in &m.answers {
                    match ans {
                        dns::Answer::A(ip, _) => a.push(*ip),
                        dns::Answer::Cname(n) => {
                            dns::name_into(n, &mut nb);
                            cname.push(nb.as_str().to_owned());
                        }
                    }
                }
                let name = m.queries.first().map(|q| {
                    dns::name_into(q.name(), &mut nb);
                    nb.as_str().to_owned()
                });
                self.seen.push(Seen::DnsAnswer {
                    name: name.unwrap_or_default(),
                    rcode: m.rcode,
                    a,
                    cname,
                });
            }
            Observation::Tls { sni } => self.seen.push(Seen::Sni {
                src: f.src,
                dst: f.dst,
                port: f.dst_port,
                sni: sni.map(str::to_owned),
            }),
            Observation::Http(r) => self.seen.push(Seen::Http {
                src: f.src,
                dst: f.dst,
                port: f.dst_port,
                method: r.method.into(),
                host: r.host.filter(|_| r.host_header).map(|h| {
                    nb.set_host(h);
                    nb.as_str().to_owned()
                }),
                target: r.target.into(),
            }),
        }
    }
}

/// Write `frames` (microsecond timestamp, Ethernet frame) to a classic pcap
/// file and read it through `e` as `gatewatch replay` does; the file must
/// read without a problem. Open flows stay open (call `Engine::finish`).
pub fn replay_frames<'a>(
    e: &mut Engine,
    frames: impl IntoIterator<Item = (u64, &'a [u8])>,
) -> Collector {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut w = PcapWriter::new(1, 65535);
    for (ts_us, f) in frames {
        w.frame(ts_us, f, f.len());
    }
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let p = std::env::temp_dir().join(format!("gatewatch-frames-{}-{n}.pcap", std::process::id()));
    w.write(&p);
    let mut c = Collector::default();
    let rep = read_file(&p, |pkt| {
        e.process_contained(pkt, &mut c);
    });
    let _ = std::fs::remove_file(&p);
    assert!(rep.problems.is_empty(), "{:?}", rep.problems);
    c
}

/// [`replay_frames`] of `(microseconds, frame)` pairs, then
/// [`Engine::finish`]: what the engine found once the capture is over
/// (flows ended, heuristics' candidates judged).
pub fn replay_to_end(e: &mut Engine, frames: &[(u64, Vec<u8>)]) -> Collector {
    let mut c = replay_frames(e, frames.iter().map(|(t, f)| (*t, f.as_slice())));
    e.finish(&mut c);
    c
}

/// The time of the first frame of a crafted capture, in microseconds since
/// the epoch (2023-11-14 22:13:20 UTC).
pub const T0_US: u64 = 1_700_000_000_000_000;

/// As [`replay_frames`], with each frame's time given in whole seconds after
/// [`T0_US`].
pub fn replay_at_secs(e: &mut Engine, frames: &[(u64, Vec<u8>)]) -> Collector {
    replay_frames(
        e,
        frames
            .iter()
            .map(|(t, f)| (T0_US + t * 1_000_000, f.as_slice())),
    )
}

/// Result of [`replay_collect`].
pub struct Replayed {
    pub sink: Collector,
    pub stats: Stats,
    pub problems: Vec<crate::capture::SourceProblem>,
}

/// Replay files through a fresh engine into a [`Collector`].
pub fn replay_collect(files: &[PathBuf], snap: Snapshot, units: Units) -> Replayed {
    collect(files, &mut engine(snap, units))
}

/// Replay files through engine 0 of `recipe`, into a [`Collector`].
pub fn replay_recipe(files: &[PathBuf], recipe: &Recipe) -> Replayed {
    collect(files, &mut recipe.engine(0))
}

/// Replay files through `e` as `gatewatch replay` does, into a [`Collector`].
fn collect(files: &[PathBuf], e: &mut Engine) -> Replayed {
    let mut sink = Collector::default();
    let report = replay(files, e, &mut sink);
    Replayed {
        sink,
        stats: report.stats,
        problems: report.problems,
    }
}

/// Replay a data folder laid out as `tests/corpus/gateway-small` is
/// (`traffic.pcap`, `feeds.toml`, `units.csv`) through a fresh engine: its
/// feeds (which must all load), its units with the default internal
/// networks.
pub fn replay_dir(dir: &Path) -> Replayed {
    let mut e = dir_recipe(dir, EngineOptions::default()).engine(0);
    collect(&[dir.join("traffic.pcap")], &mut e)
}

/// The recipe of a data folder laid out as `tests/corpus/gateway-small` is:
/// its feeds (which must all load) and its units with the default internal
/// networks, with `options`.
pub fn dir_recipe(dir: &Path, options: EngineOptions) -> Recipe {
    let snap = load_feeds(&dir.join("feeds.toml"));
    recipe_with(snap, load_units(&dir.join("units.csv")), options)
}

/// The hits of the synthetic gateway capture `tests/corpus/gateway-small`
/// (its generated feeds and units; the known offenders are in its
/// `offenders.csv`).
pub fn gateway_small_hits() -> Vec<Hit> {
    replay_dir(&super::corpus("gateway-small")).sink.hits
}

/// The recipe of a test run: `snap` and `units` with `options`.
pub fn recipe_with(snap: Snapshot, units: Units, options: EngineOptions) -> Recipe {
    Recipe::new(Arc::new(Intel::new(snap)), Arc::new(units), options)
}

/// An engine with the default options, as `gatewatch replay` makes it.
pub fn engine(snap: Snapshot, units: Units) -> Engine {
    recipe_with(snap, units, EngineOptions::default()).engine(0)
}

/// The recipe of the crafted-capture tests: `block` listed on one
/// high-severity `botnet-c2` feed named `ncsc`, and one unit, `U1` "Phòng
/// Một" over 10.1.0.0/16 (its only internal network), with `options`.
pub fn crafted_recipe(block: &[&str], options: EngineOptions) -> Recipe {
    let snap = snapshot_of("ncsc", "botnet-c2", block, &[]);
    recipe_with(snap, one_unit("U1", "Phòng Một", "10.1.0.0/16"), options)
}

/// Engine 0 of [`crafted_recipe`] with the default options.
pub fn crafted_engine(block: &[&str]) -> Engine {
    crafted_recipe(block, EngineOptions::default()).engine(0)
}

/// Load a feeds file, panicking with every problem on failure.
pub fn load_feeds(path: &Path) -> Snapshot {
    let cfg = FeedsConfig::load(path).unwrap_or_else(|e| panic!("{e}"));
    let (s, reps, _) = build_snapshot(&cfg);
    for r in reps {
        assert!(r.failed.is_none(), "{:?}", r.failed);
    }
    s
}

/// A snapshot of one high-severity feed named `feed` in `category` holding
/// `block`, plus the allowlist entries `allow` (each classified as `auto`;
/// a bad entry panics): the indicator set of a crafted test.
pub fn snapshot_of(feed: &str, category: &str, block: &[&str], allow: &[&str]) -> Snapshot {
    use crate::intel::indicator::{EntryType, classify};
    let f = Arc::new(crate::intel::FeedMeta {
        name: feed.into(),
        category: category.into(),
        severity: crate::intel::Severity::High,
    });
    let entry = |e: &&str| classify(e, EntryType::Auto).unwrap_or_else(|r| panic!("{e}: {r}"));
    let mut b = crate::intel::SnapshotBuilder::default();
    for e in block {
        b.add(entry(e), &f);
    }
    for e in allow {
        b.allow(entry(e));
    }
    b.build()
}

/// One unit, `code` named `name` over `cidrs` (space-separated); only its
/// networks are internal.
pub fn one_unit(code: &str, name: &str, cidrs: &str) -> Units {
    let text = format!("code,name,cidrs\n{code},{name},{cidrs}\n");
    Units::parse("test-units.csv", &text, &[]).unwrap_or_else(|e| panic!("{e}"))
}

/// Load a units file with the default internal networks, panicking with
/// its problems on failure.
pub fn load_units(path: &Path) -> Units {
    Units::load(path, &default_internal()).unwrap_or_else(|e| panic!("{e}"))
}

/// No units, the default internal networks: hits are found and blamed on
/// internal hosts, but name no unit.
pub fn no_units() -> Units {
    units_from("code,name,cidrs\n")
}

/// Units from a CSV text with default internal networks.
pub fn units_from(text: &str) -> Units {
    Units::parse("test-units.csv", text, &default_internal()).unwrap_or_else(|e| panic!("{e}"))
}
