//! DNS tunnelling: a host sending data out in query names (iodine,
//! dnscat2, DNS-based C2). Counted per (host, registered domain): query
//! names whose part below the registered domain is long and high-entropy,
//! by distinct name, with their bytes and the time they span. All three
//! thresholds must be passed together, so a short burst of long CDN names
//! or a slow trickle of a few do not count. Antivirus and reputation
//! look-up zones, reverse DNS and DNS blocklists (whose names are hashes or
//! addresses by design) are exempt, plus `exempt_zones`.

use super::settings::TunnelSettings;
use super::table::{Keep, Table};
use super::{Finding, Heuristic, Sample, at_least, distinct, key, names, set_bit};
use serde_json::json;
use std::net::IpAddr;

#[derive(Clone, Copy, Default)]
struct Zone {
    first: i64,
    last: i64,
    names: [u64; 4],
    queries: u32,
    bytes: u32,
    reported: bool,
    sample: Sample,
}

impl Keep for Zone {
    fn worth(&self) -> u32 {
        self.queries
    }
}

pub(super) struct Tunnels {
    zones: Table<Zone>,
}

/// Whether the data part of a name looks encoded: long, and dense in
/// distinct characters (hex, base32 and base64 all are; words are not).
fn encoded(data: &str, min_len: usize) -> bool {
    let n = data.bytes().filter(|&b| b != b'.').count();
    if n < min_len {
        return false;
    }
    let e = names::entropy(data.as_bytes());
    e >= 3.5
}

impl Tunnels {
    pub fn new(entries: usize) -> Tunnels {
        Tunnels {
            zones: Table::new(entries),
        }
    }

    pub fn evicted(&self) -> u64 {
        self.zones.evicted
    }

    pub fn live(&self) -> usize {
        self.zones.live()
    }

    /// A query from `host` to `server` for `name` (lower case, no final
    /// dot).
    pub fn query(
        &mut self,
        s: &TunnelSettings,
        ts: i64,
        host: IpAddr,
        server: IpAddr,
        name: &str,
    ) -> Option<Finding> {
        // Most names are short: no suffix look-up for them.
        if name.len() < s.min_length as usize + 4 {
            return None;
        }
        let reg = names::registered(name)?;
        let data = names::below(name, reg);
        if !encoded(data, s.min_length as usize) || names::exempt(name, reg, &s.exempt_zones) {
            return None;
        }
        let window = i64::from(s.window_s) * 1_000_000_000;
        let z = self.zones.entry(key((host, reg)), ts, window);
        if z.queries == 0 || ts.saturating_sub(z.first) > window {
            *z = Zone {
                first: ts,
                sample: Sample::of(name),
                ..Zone::default()
            };
        }
        z.queries = z.queries.saturating_add(1);
        z.last = ts;
        if !set_bit(&mut z.names, key(name)) || z.reported {
            return None;
        }
        z.bytes = z.bytes.saturating_add(data.len() as u32);
        let n = distinct(&z.names);
        let span = z.last - z.first;
        if at_least(&z.names) < s.min_names
            || z.bytes < s.min_bytes
            || span < i64::from(s.min_span_s) * 1_000_000_000
        {
            return None;
        }
        z.reported = true;
        let secs = span as f64 / 1e9;
        Some(Finding {
            heuristic: Heuristic::DnsTunnel,
            ts,
            host,
            remote: server,
            port: 53,
            proto: 17,
            indicator: reg.into(),
            observed: name.into(),
            evidence: json!({
                "domain": reg,
                "distinct_names": n,
                "queries": z.queries,
                "name_bytes": z.bytes,
                "seconds": (secs * 1000.0).round() / 1000.0,
                "sample_names": [z.sample.as_str(), name],
            }),
            signature: format!(
                "gatewatch heuristic dns_tunnel: {host} sent {n} encoded names ({} bytes) under {reg} in {secs:.0} s",
                z.bytes
            ),
        })
    }
}
