//! DGA malware: a host whose look-ups for many random-looking names come
//! back NXDOMAIN (the generator's domains of the day, nearly all
//! unregistered).
//!
//! Counted per host: NXDOMAIN answers whose registered domain's first
//! label looks machine-made (`names::random_label`), by distinct
//! registered domain, so a misconfigured search suffix, a DNS blocklist or
//! an antivirus zone (one registered domain, however many names) never
//! adds up. Random-looking names that resolve (CDNs) are not NXDOMAIN; a
//! few typos are words and few.

use super::settings::DgaSettings;
use super::table::{Keep, Table};
use super::{Finding, Heuristic, Sample, at_least, distinct, key, names, set_bit};
use serde_json::json;
use std::net::IpAddr;

const SAMPLES: usize = 3;

#[derive(Clone, Copy, Default)]
struct Burst {
    first: i64,
    last: i64,
    domains: [u64; 4],
    answers: u32,
    reported: bool,
    samples: [Sample; SAMPLES],
}

impl Keep for Burst {
    fn worth(&self) -> u32 {
        self.answers
    }
}

pub(super) struct Dga {
    hosts: Table<Burst>,
}

impl Dga {
    pub fn new(entries: usize) -> Dga {
        Dga {
            hosts: Table::new(entries),
        }
    }

    pub fn evicted(&self) -> u64 {
        self.hosts.evicted
    }

    pub fn live(&self) -> usize {
        self.hosts.live()
    }

    /// An NXDOMAIN answer from `server` to `host` for `name` (lower case,
    /// no final dot).
    pub fn nxdomain(
        &mut self,
        s: &DgaSettings,
        ts: i64,
        host: IpAddr,
        server: IpAddr,
        name: &str,
    ) -> Option<Finding> {
        let reg = names::registered(name)?;
        let label = reg.split('.').next().unwrap_or("");
        if !names::random_label(label.as_bytes(), s.min_length as usize)
            || names::exempt(name, reg, &[])
        {
            return None;
        }
        let window = i64::from(s.window_s) * 1_000_000_000;
        let b = self.hosts.entry(key(host), ts, window);
        if b.answers == 0 || ts.saturating_sub(b.first) > window {
            *b = Burst {
                first: ts,
                ..Burst::default()
            };
        }
        b.answers = b.answers.saturating_add(1);
        b.last = ts;
        if !set_bit(&mut b.domains, key(reg)) || b.reported {
            return None;
        }
        if let Some(free) = b.samples.iter_mut().find(|x| x.is_empty()) {
            *free = Sample::of(name);
        }
        if at_least(&b.domains) < s.min_domains {
            return None;
        }
        let n = distinct(&b.domains);
        b.reported = true;
        let samples: Vec<&str> = b.samples.iter().map(Sample::as_str).collect();
        let secs = (b.last - b.first) as f64 / 1e9;
        Some(Finding {
            heuristic: Heuristic::Dga,
            ts,
            host,
            remote: server,
            port: 53,
            proto: 17,
            indicator: "nxdomain".into(),
            observed: name.into(),
            evidence: json!({
                "nxdomain_answers": b.answers,
                "distinct_domains": n,
                "sample_names": samples,
                "seconds": (secs * 1000.0).round() / 1000.0,
            }),
            signature: format!(
                "gatewatch heuristic dga: {host} got NXDOMAIN for {n} random-looking domains in {secs:.1} s (e.g. {})",
                samples[0]
            ),
        })
    }
}
