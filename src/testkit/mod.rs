//! Test kit shared by the tests, benchmarks and fuzz targets: capture
//! builders, a pcap writer, a replay harness that collects hits and
//! observations, and a reader for the tshark ground-truth summaries that sit
//! next to the real captures.

use crate::attribution::{Units, default_internal};
pub mod names;
pub mod synth;
pub mod tcp;

pub use names::{dhcp_request, mdns_announcement, nbns_registration};

use crate::capture::file::read_file;
use crate::detect::{Engine, FlowKey, Hit, Observation, Sink};
use crate::dns;
use crate::flow::FlowRecord;
use crate::intel::feeds::{FeedsConfig, build_snapshot};
use crate::intel::{Intel, Snapshot};
use crate::name::NameBuf;
use crate::stats::Stats;
use etherparse::PacketBuilder;
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Writes a classic pcap file (microsecond timestamps) in memory.
pub struct PcapWriter {
    pub bytes: Vec<u8>,
}

impl PcapWriter {
    /// `linktype`: 1 Ethernet, 101 raw IP, 113 Linux SLL, 276 SLL2.
    pub fn new(linktype: u32, snaplen: u32) -> Self {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        bytes.extend_from_slice(&2u16.to_le_bytes());
        bytes.extend_from_slice(&4u16.to_le_bytes());
        bytes.extend_from_slice(&0i32.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&snaplen.to_le_bytes());
        bytes.extend_from_slice(&linktype.to_le_bytes());
        PcapWriter { bytes }
    }

    /// Add a frame; `orig_len` larger than `data` marks a snaplen cut.
    pub fn frame(&mut self, ts_us: u64, data: &[u8], orig_len: usize) -> &mut Self {
        self.bytes
            .extend_from_slice(&((ts_us / 1_000_000) as u32).to_le_bytes());
        self.bytes
            .extend_from_slice(&((ts_us % 1_000_000) as u32).to_le_bytes());
        self.bytes
            .extend_from_slice(&(data.len() as u32).to_le_bytes());
        self.bytes
            .extend_from_slice(&(orig_len.max(data.len()) as u32).to_le_bytes());
        self.bytes.extend_from_slice(data);
        self
    }

    pub fn write(&self, path: &Path) {
        std::fs::write(path, &self.bytes).expect("write test capture");
    }
}

const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];

fn build_udp(b: etherparse::PacketBuilderStep<etherparse::UdpHeader>, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).expect("build packet");
    out
}

fn build_tcp(b: etherparse::PacketBuilderStep<etherparse::TcpHeader>, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).expect("build packet");
    out
}

pub(crate) fn ip_layer(
    eth: etherparse::PacketBuilderStep<etherparse::Ethernet2Header>,
    src: IpAddr,
    dst: IpAddr,
) -> etherparse::PacketBuilderStep<etherparse::IpHeaders> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => eth.ipv4(s.octets(), d.octets(), 64),
        (IpAddr::V6(s), IpAddr::V6(d)) => eth.ipv6(s.octets(), d.octets(), 64),
        _ => panic!("mixed address families"),
    }
}

/// Ethernet + IP + UDP frame, optionally VLAN-tagged.
pub fn udp_frame(
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    vlan: Option<u16>,
    payload: &[u8],
) -> Vec<u8> {
    let eth = PacketBuilder::ethernet2(MAC_A, MAC_B);
    let ip = match vlan {
        Some(v) => {
            let tagged = eth.single_vlan(v.try_into().expect("vlan id"));
            match (src, dst) {
                (IpAddr::V4(s), IpAddr::V4(d)) => tagged.ipv4(s.octets(), d.octets(), 64),
                (IpAddr::V6(s), IpAddr::V6(d)) => tagged.ipv6(s.octets(), d.octets(), 64),
                _ => panic!("mixed address families"),
            }
        }
        None => ip_layer(eth, src, dst),
    };
    build_udp(ip.udp(sport, dport), payload)
}

/// Ethernet + IP + TCP (PSH|ACK) frame.
pub fn tcp_frame(
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    seq: u32,
    payload: &[u8],
) -> Vec<u8> {
    let ip = ip_layer(PacketBuilder::ethernet2(MAC_A, MAC_B), src, dst);
    build_tcp(ip.tcp(sport, dport, seq, 64240).psh().ack(1), payload)
}

/// A DNS query message for `name`, encoded by hickory-proto.
pub fn dns_query(id: u16, name: &str, rtype: RecordType) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).expect("name"), rtype));
    m.to_vec().expect("encode query")
}

/// A DNS response for `name` with a CNAME chain and then an A record.
pub fn dns_response(id: u16, name: &str, cnames: &[&str], a: Ipv4Addr) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Response, OpCode::Query);
    m.add_query(Query::query(
        Name::from_ascii(name).expect("name"),
        RecordType::A,
    ));
    let mut owner = Name::from_ascii(name).expect("name");
    for c in cnames {
        let target = Name::from_ascii(c).expect("cname");
        m.add_answer(Record::from_rdata(
            owner.clone(),
            60,
            RData::CNAME(hickory_proto::rr::rdata::CNAME(target.clone())),
        ));
        owner = target;
    }
    m.add_answer(Record::from_rdata(
        owner,
        60,
        RData::A(hickory_proto::rr::rdata::A(a)),
    ));
    m.to_vec().expect("encode response")
}

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
}

impl Sink for Collector {
    fn hit(&mut self, hit: Hit) {
        self.hits.push(hit);
    }
    fn flow(&mut self, flow: FlowRecord) {
        self.flows.push(flow);
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
    let rep = read_file(&p, |pkt| e.process(pkt, &mut c));
    let _ = std::fs::remove_file(&p);
    assert!(rep.problems.is_empty(), "{:?}", rep.problems);
    c
}

/// Result of [`replay_collect`].
pub struct Replayed {
    pub sink: Collector,
    pub stats: Stats,
    pub problems: Vec<crate::capture::SourceProblem>,
}

/// Replay files through a fresh engine into a [`Collector`].
pub fn replay_collect(files: &[PathBuf], snap: Snapshot, units: Units) -> Replayed {
    let mut e = Engine::new(Arc::new(Intel::new(snap)), Arc::new(units));
    let mut sink = Collector::default();
    let mut problems = Vec::new();
    for f in files {
        let r = read_file(f, |p| e.process(p, &mut sink));
        problems.extend(r.problems);
    }
    e.finish(&mut sink);
    Replayed {
        sink,
        stats: e.stats,
        problems,
    }
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

/// Units from a CSV text with default internal networks.
pub fn units_from(text: &str) -> Units {
    Units::parse("test-units.csv", text, &default_internal()).unwrap_or_else(|e| panic!("{e}"))
}

/// The tshark ground truth written next to each real capture.
#[derive(Debug, Default)]
pub struct Summary {
    pub packets: u64,
    /// (count, qname, qtype)
    pub dns_queries: Vec<(u64, String, u16)>,
    /// (qname, rcode, A+AAAA, CNAMEs)
    pub dns_responses: Vec<(String, u16, Vec<IpAddr>, Vec<String>)>,
    /// (count, src, dst, port, sni or empty)
    pub sni: Vec<(u64, IpAddr, IpAddr, u16, String)>,
    /// (count, src, dst, port, method, host, uri)
    pub http: Vec<(u64, IpAddr, IpAddr, u16, String, String, String)>,
}

impl Summary {
    pub fn parse(text: &str) -> Summary {
        let mut s = Summary::default();
        let mut section = "";
        let split = |v: &str| -> Vec<String> {
            v.split(',')
                .filter(|x| !x.is_empty())
                .map(str::to_owned)
                .collect()
        };
        for line in text.lines() {
            if let Some(h) = line.strip_prefix("## ") {
                section = h.split(' ').next().unwrap_or("");
                section = match section {
                    "DNS" if h.contains("queries") => "dnsq",
                    "DNS" => "dnsr",
                    "TLS/QUIC" => "sni",
                    "HTTP" => "http",
                    "capinfos" => "cap",
                    _ => "",
                };
                continue;
            }
            let Some(l) = line.strip_prefix("  ") else {
                continue;
            };
            let f: Vec<&str> = l.split('\t').collect();
            match section {
                "cap" if f.len() >= 4 => s.packets = f[3].parse().unwrap_or(0),
                "dnsq" if f.len() == 2 => {
                    // Several questions in one message: "a,b,c 1,1,28".
                    let (names, types) = f[1].rsplit_once(' ').unwrap_or((f[1], "0"));
                    let count = f[0].parse().unwrap_or(0);
                    for (n, t) in names.split(',').zip(types.split(',')) {
                        s.dns_queries
                            .push((count, n.to_ascii_lowercase(), t.parse().unwrap_or(0)));
                    }
                }
                "dnsr" if f.len() >= 2 => {
                    let mut ips: Vec<IpAddr> = Vec::new();
                    for col in [f.get(2), f.get(3)].into_iter().flatten() {
                        ips.extend(split(col).iter().filter_map(|x| x.parse::<IpAddr>().ok()));
                    }
                    let cn = f
                        .get(4)
                        .map(|c| split(c).iter().map(|x| x.to_ascii_lowercase()).collect())
                        .unwrap_or_default();
                    s.dns_responses.push((
                        f[0].to_ascii_lowercase(),
                        f[1].parse().unwrap_or(0),
                        ips,
                        cn,
                    ));
                }
                "sni" if f.len() >= 4 => {
                    if let (Ok(a), Ok(b), Ok(p)) = (f[1].parse(), f[2].parse(), f[3].parse()) {
                        s.sni.push((
                            f[0].parse().unwrap_or(0),
                            a,
                            b,
                            p,
                            f.get(4).unwrap_or(&"").to_string(),
                        ));
                    }
                }
                "http" if f.len() >= 6 => {
                    if let (Ok(a), Ok(b), Ok(p)) = (f[1].parse(), f[2].parse(), f[3].parse()) {
                        s.http.push((
                            f[0].parse().unwrap_or(0),
                            a,
                            b,
                            p,
                            f[4].to_owned(),
                            f[5].to_owned(),
                            f.get(6).unwrap_or(&"").to_string(),
                        ));
                    }
                }
                _ => {}
            }
        }
        s
    }
}

/// Writes a pcapng file (one section, one interface, microsecond timestamps).
pub struct PcapNgWriter {
    pub bytes: Vec<u8>,
}

impl PcapNgWriter {
    pub fn new(linktype: u16) -> Self {
        let mut w = PcapNgWriter { bytes: Vec::new() };
        let mut shb = Vec::new();
        shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
        shb.extend_from_slice(&1u16.to_le_bytes());
        shb.extend_from_slice(&0u16.to_le_bytes());
        shb.extend_from_slice(&(-1i64).to_le_bytes());
        w.block(0x0a0d_0d0a, &shb);
        let mut idb = Vec::new();
        idb.extend_from_slice(&linktype.to_le_bytes());
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&0u32.to_le_bytes());
        w.block(1, &idb);
        w
    }

    fn block(&mut self, ty: u32, body: &[u8]) {
        let pad = (4 - body.len() % 4) % 4;
        let len = (12 + body.len() + pad) as u32;
        self.bytes.extend_from_slice(&ty.to_le_bytes());
        self.bytes.extend_from_slice(&len.to_le_bytes());
        self.bytes.extend_from_slice(body);
        self.bytes.extend(std::iter::repeat_n(0, pad));
        self.bytes.extend_from_slice(&len.to_le_bytes());
    }

    pub fn frame(&mut self, ts_us: u64, data: &[u8], orig_len: usize) -> &mut Self {
        let mut epb = Vec::new();
        epb.extend_from_slice(&0u32.to_le_bytes());
        epb.extend_from_slice(&((ts_us >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts_us as u32).to_le_bytes());
        epb.extend_from_slice(&(data.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(orig_len.max(data.len()) as u32).to_le_bytes());
        epb.extend_from_slice(data);
        self.block(6, &epb);
        self
    }
}

/// Build a TLS ClientHello record with the given extensions, following the
/// RFC 8446 section 4.1.2 layout.
pub fn client_hello_record(exts: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7u8; 32]);
    body.push(0); // session id
    body.extend_from_slice(&[0, 4, 0x13, 0x01, 0x13, 0x02]);
    body.extend_from_slice(&[1, 0]);
    let mut e = Vec::new();
    for (ty, data) in exts {
        e.extend_from_slice(&ty.to_be_bytes());
        e.extend_from_slice(&(data.len() as u16).to_be_bytes());
        e.extend_from_slice(data);
    }
    body.extend_from_slice(&(e.len() as u16).to_be_bytes());
    body.extend_from_slice(&e);
    let mut hs = vec![1, 0, (body.len() >> 8) as u8, body.len() as u8];
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 3, 1, (hs.len() >> 8) as u8, hs.len() as u8];
    rec.extend_from_slice(&hs);
    rec
}

pub fn sni_ext(name: &str) -> (u16, Vec<u8>) {
    let mut d = Vec::new();
    d.extend_from_slice(&((name.len() + 3) as u16).to_be_bytes());
    d.push(0);
    d.extend_from_slice(&(name.len() as u16).to_be_bytes());
    d.extend_from_slice(name.as_bytes());
    (0, d)
}

/// The development data set named by `GATEWATCH_SHARED_DATA`, if set. When it
/// is set but the directory is missing, that is a failure, not a skip.
pub fn shared_data() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("GATEWATCH_SHARED_DATA")?);
    assert!(
        dir.join("pcaps").is_dir(),
        "GATEWATCH_SHARED_DATA={} has no pcaps/ directory",
        dir.display()
    );
    Some(dir)
}

/// Every `.pcap`/`.pcapng` under `dir` that has a tshark `.summary.txt`, sorted.
pub fn captures_with_summaries(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.expect("directory entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "pcap" || x == "pcapng")
                && summary_path(&p).is_file()
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// `capture.pcap` -> `capture.pcap.summary.txt`.
pub fn summary_path(p: &Path) -> PathBuf {
    PathBuf::from(format!("{}.summary.txt", p.display()))
}
