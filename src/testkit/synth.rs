//! Synthetic inputs for benchmarks the shared generator does not cover: a
//! DNS-heavy gateway mix and feed sets of any size. Deterministic (fixed
//! seed), written in the same layout as `gen-gateway-pcap.py` output
//! (`traffic.pcap`, `units.csv`, `feeds.toml`, `feeds/`), so `gatewatch bench`
//! takes either.

use super::{PcapWriter, dns_query, dns_response, tcp_frame, udp_frame};
use hickory_proto::rr::RecordType;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

/// A small xorshift generator: reproducible output without a dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

const UNITS: u32 = 40;
const HOSTS_PER_UNIT: u32 = 50;

fn host(unit: u32, n: u32) -> Ipv4Addr {
    Ipv4Addr::new(
        10,
        20 + (unit / 200) as u8,
        (unit % 200) as u8,
        10 + n as u8,
    )
}

/// The i-th listed domain of the synthetic feeds.
pub fn feed_domain(i: u64) -> String {
    format!("bad{i}.evil-{}.example", i % 97)
}

/// The i-th listed IPv4 address of the synthetic feeds (198.18.0.0/15,
/// the benchmarking range, so nothing real is named).
pub fn feed_ip(i: u64) -> Ipv4Addr {
    let v = 0xc612_0000u32 + (i as u32 % 0x2_0000);
    Ipv4Addr::from(v)
}

/// The shape of a [`dns_mix`].
#[derive(Clone, Copy, Debug)]
pub struct DnsMix {
    pub packets: u64,
    pub seed: u64,
    /// Queries per 1,000 that name a listed domain (10 = 1%, 1000 = an
    /// outbreak).
    pub listed_per_mille: u64,
    /// Percent of the exchanges made by one host (the balance of routing
    /// by internal host); 0 spreads them evenly.
    pub heavy_pct: u64,
}

/// Write a DNS-heavy mix of about `mix.packets` packets into `dir`: two
/// thirds of the exchanges are DNS (query and answer, to an internal and a
/// public resolver), so 80% of the packets; the rest TCP data, half of it
/// from the address the host's last lookup returned (so a listed lookup is
/// followed by a connection DNS correlation must find). Returns the number
/// of DNS packets written.
pub fn dns_mix(dir: &Path, mix: DnsMix) -> std::io::Result<u64> {
    std::fs::create_dir_all(dir.join("feeds"))?;
    let (packets, seed) = (mix.packets, mix.seed);
    let mut rng = Rng::new(seed);
    let mut last = std::collections::HashMap::new();
    write_units(dir)?;
    write_mix_feeds(dir)?;
    let mut w = PcapWriter::new(1, 65535);
    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("traffic.pcap"))?);
    out.write_all(&w.bytes)?;
    let (mut n, mut dns, mut ts) = (0u64, 0u64, 1_700_000_000_000_000u64);
    let bulk = vec![0x5au8; 1200];
    while n < packets {
        w.bytes.clear();
        ts += 1 + rng.below(20);
        let h = if rng.below(100) < mix.heavy_pct {
            IpAddr::V4(host(0, 1))
        } else {
            IpAddr::V4(host(
                rng.below(UNITS as u64) as u32,
                rng.below(HOSTS_PER_UNIT as u64) as u32,
            ))
        };
        if rng.below(3) < 2 {
            let answer = dns_exchange(&mut w, &mut rng, ts, h, mix.listed_per_mille);
            last.insert(h, answer);
            n += 2;
            dns += 2;
        } else {
            let remote = last.get(&h).copied().filter(|_| rng.below(2) == 0);
            tcp_data(&mut w, &mut rng, ts, (h, remote), &bulk);
            n += 1;
        }
        out.write_all(&w.bytes[..])?;
    }
    out.flush()?;
    Ok(dns)
}

/// Entries in each of the mix's two feeds (domains and addresses).
const MIX_LISTED: u64 = 20_000;
/// The resolvers the mix's hosts ask: an internal one and a public one.
const MIX_RESOLVERS: [Ipv4Addr; 2] = [Ipv4Addr::new(10, 0, 0, 53), Ipv4Addr::new(8, 8, 8, 8)];

/// `units.csv`: one /24 per unit.
fn write_units(dir: &Path) -> std::io::Result<()> {
    let mut units = String::from("code,name,cidrs\n");
    for u in 0..UNITS {
        let net = host(u, 0);
        let o = net.octets();
        writeln!(units, "D{u:03},Đơn vị {u},{}.{}.{}.0/24", o[0], o[1], o[2]).unwrap();
    }
    std::fs::write(dir.join("units.csv"), units)
}

/// The mix's feeds (listed domains and addresses) and their `feeds.toml`.
fn write_mix_feeds(dir: &Path) -> std::io::Result<()> {
    let mut domains = String::new();
    let mut ips = String::new();
    for i in 0..MIX_LISTED {
        writeln!(domains, "{}", feed_domain(i)).unwrap();
        writeln!(ips, "{}", feed_ip(i)).unwrap();
    }
    std::fs::write(dir.join("feeds/domains.txt"), domains)?;
    std::fs::write(dir.join("feeds/ips.txt"), ips)?;
    std::fs::write(
        dir.join("feeds.toml"),
        "# Synthetic feeds for the DNS-heavy benchmark mix (testkit::synth).\n\
         [[feed]]\nname = \"synth-domains\"\npath = \"feeds/domains.txt\"\nformat = \"plain\"\n\
         entry_type = \"domain\"\ncategory = \"malware\"\nseverity = \"high\"\n\n\
         [[feed]]\nname = \"synth-ips\"\npath = \"feeds/ips.txt\"\nformat = \"plain\"\n\
         entry_type = \"ip\"\ncategory = \"botnet-c2\"\nseverity = \"high\"\n",
    )
}

/// One DNS query from `h` and its answer (300 us later), for a listed name
/// `listed_per_mille` times in 1,000; returns the answer's address. The
/// draws from `rng` keep their order: the output is fixed by the seed.
fn dns_exchange(
    w: &mut PcapWriter,
    rng: &mut Rng,
    ts: u64,
    h: IpAddr,
    listed_per_mille: u64,
) -> IpAddr {
    let name = if rng.below(1000) < listed_per_mille {
        feed_domain(rng.below(MIX_LISTED))
    } else {
        format!(
            "www{}.site{}.{}",
            rng.below(50),
            rng.below(20_000),
            ["com", "vn", "gov.vn", "net", "org"][rng.below(5) as usize]
        )
    };
    let r = IpAddr::V4(MIX_RESOLVERS[rng.below(2) as usize]);
    let id = rng.below(65_536) as u16;
    let sport = 1024 + rng.below(60_000) as u16;
    let answer = Ipv4Addr::from(0x6500_0000u32 + rng.below(1 << 24) as u32);
    let q = dns_query(id, &name, RecordType::A);
    let cname = format!("edge{}.cdn.example.net", rng.below(100));
    let cnames: &[&str] = if rng.below(4) == 0 { &[&cname] } else { &[] };
    let a = dns_response(id, &name, cnames, answer);
    w.frame(ts, &udp_frame(h, r, sport, 53, None, &q), 0);
    w.frame(ts + 300, &udp_frame(r, h, 53, sport, None, &a), 0);
    IpAddr::V4(answer)
}

/// One TCP data segment from port 443 to `h`, from `remote` when given,
/// else from a listed address 1 time in 2,000, carrying a prefix of `bulk`.
fn tcp_data(
    w: &mut PcapWriter,
    rng: &mut Rng,
    ts: u64,
    (h, remote): (IpAddr, Option<IpAddr>),
    bulk: &[u8],
) {
    let remote = if let Some(r) = remote {
        r
    } else if rng.below(2000) == 0 {
        IpAddr::V4(feed_ip(rng.below(MIX_LISTED)))
    } else {
        IpAddr::V4(Ipv4Addr::from(0x6800_0000u32 + rng.below(1 << 24) as u32))
    };
    let sport = 1024 + rng.below(60_000) as u16;
    let len = 64 + rng.below(bulk.len() as u64 - 64) as usize;
    let seq = rng.next_u64() as u32;
    w.frame(ts, &tcp_frame(remote, h, 443, sport, seq, &bulk[..len]), 0);
}

/// Write feed files with `domains` domains, `ips` IPv4 addresses and `nets`
/// networks, plus their `feeds.toml`, into `dir`. For start-up measurements.
pub fn big_feeds(dir: &Path, domains: u64, ips: u64, nets: u64) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut rng = Rng::new(7);
    let mut d = String::with_capacity(domains as usize * 28);
    for i in 0..domains {
        let tld = ["com", "net", "org", "ru", "xyz", "top", "vn"][rng.below(7) as usize];
        writeln!(d, "h{:x}.n{}.{tld}", rng.next_u64() & 0xff_ffff_ffff, i).unwrap();
    }
    std::fs::write(dir.join("domains.txt"), d)?;
    let mut s = String::with_capacity(ips as usize * 16);
    for _ in 0..ips {
        let v = 0x0b00_0000u32 + (rng.next_u64() as u32 % 0xb000_0000);
        writeln!(s, "{}", Ipv4Addr::from(v)).unwrap();
    }
    std::fs::write(dir.join("ips.txt"), s)?;
    let mut c = String::new();
    for _ in 0..nets {
        let v = (0x0b00_0000u32 + (rng.next_u64() as u32 % 0xb000_0000)) & 0xffff_ff00;
        writeln!(c, "{}/24", Ipv4Addr::from(v)).unwrap();
    }
    std::fs::write(dir.join("nets.txt"), c)?;
    let mut toml = String::from("# Synthetic feeds for the start-up benchmark (testkit::synth).\n");
    for (name, file, ty) in [
        ("big-domains", "domains.txt", "domain"),
        ("big-ips", "ips.txt", "ip"),
        ("big-nets", "nets.txt", "ip"),
    ] {
        write!(
            toml,
            "[[feed]]\nname = \"{name}\"\npath = \"{file}\"\nformat = \"plain\"\n\
             entry_type = \"{ty}\"\ncategory = \"malware\"\nseverity = \"high\"\n\n"
        )
        .unwrap();
    }
    std::fs::write(dir.join("feeds.toml"), toml)
}

/// Write a capture of `n` DNS queries (type A) for `name` to `path`: query
/// `i` (id `i` as u16) goes from `host(i)` port 40000 to 8.8.8.8 at
/// [`T0_US`](super::T0_US) + `i` microseconds. With `name` on a feed, every
/// packet is a hit: a storm for the sink and the store.
pub fn query_storm(path: &Path, n: u64, name: &str, host: impl Fn(u64) -> IpAddr) {
    let resolver = IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8));
    let mut w = PcapWriter::new(1, 65535);
    for i in 0..n {
        let q = dns_query(i as u16, name, RecordType::A);
        let f = udp_frame(host(i), resolver, 40000, 53, None, &q);
        w.frame(super::T0_US + i, &f, 0);
    }
    w.write(path);
}
