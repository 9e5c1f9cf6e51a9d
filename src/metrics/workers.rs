//! Decode/match workers: packets, bytes, parse errors by reason, queue
//! drops, the TCP flow table, DNS correlation. Workers count in their own
//! [`Stats`]; a scrape reads what each last published.

use super::family::{Deltas, counter, counter_vec, gauge};
use crate::decode::Encap;
use crate::detect::Stats;
use crate::packet::Reason;
use prometheus::{IntCounter, IntCounterVec, IntGauge, Registry};
use std::sync::Mutex;

/// What one worker reports at a scrape.
#[derive(Clone, Debug, Default)]
pub struct WorkerReport {
    /// Its counters, as it last published them.
    pub stats: Stats,
    /// Packets dropped because its queue was full.
    pub queue_drops: u64,
}

/// Reads every worker's report; the pipeline provides it.
pub type WorkerSource = Box<dyn Fn() -> Vec<WorkerReport> + Send + Sync>;

pub struct WorkerMetrics {
    packets: IntCounter,
    bytes: IntCounter,
    dns_queries: IntCounter,
    worker_packets: IntCounterVec,
    queue_drops: IntCounterVec,
    parse_errors: IntCounterVec,
    tunnel_headers: IntCounterVec,
    hits_allowlisted: IntCounter,
    dns_unsolicited: IntCounter,
    tcp: TcpMetrics,
    dns_links: IntGauge,
    dns_links_evicted: IntCounter,
    panics: IntCounterVec,
    heuristics: HeuristicMetrics,
    drops: IntCounterVec,
    source: Mutex<Option<WorkerSource>>,
}

/// What the heuristics found, and what their bounded tables had to forget.
struct HeuristicMetrics {
    findings: IntCounterVec,
    evicted: IntCounterVec,
}

impl HeuristicMetrics {
    fn new(r: &Registry) -> HeuristicMetrics {
        HeuristicMetrics {
            findings: counter_vec(
                r,
                "gatewatch_heuristic_findings_total",
                "Hosts reported by a heuristic (no list named them), by heuristic: scan, dga, sinkhole_answer, dns_tunnel, beacon (a suspicion).",
                &["heuristic"],
            ),
            evicted: counter_vec(
                r,
                "gatewatch_heuristic_evictions_total",
                "Live per-host entries a heuristic's table pushed out for a new one (it is full: raise [heuristics] max_tracked if this grows steadily).",
                &["table"],
            ),
        }
    }

    fn fold(&self, d: &mut Deltas, s: &crate::detect::heuristics::HeuristicStats) {
        use crate::detect::Heuristic;
        for h in Heuristic::ALL {
            let c = &self.findings.with_label_values(&[h.as_str()]);
            d.add(format!("heur-{}", h.as_str()), s.reported[h as usize], c);
        }
        for (i, t) in ["scan", "dga", "dns_tunnel", "beacon"].iter().enumerate() {
            let c = &self.evicted.with_label_values(&[t]);
            d.add(format!("heur-ev-{t}"), s.evicted[i], c);
        }
    }
}

/// `gatewatch_tunnel_headers_total{encap}`: how much of the input a remote
/// mirror delivered in a tunnel, by kind.
fn tunnel_headers(r: &Registry) -> IntCounterVec {
    counter_vec(
        r,
        "gatewatch_tunnel_headers_total",
        "Tunnel headers stripped to reach the mirrored packets inside, by encapsulation (ERSPAN rides in GRE and counts under gre too).",
        &["encap"],
    )
}

impl WorkerMetrics {
    /// `drops` is the shared `gatewatch_drops_total{stage}` family.
    pub(super) fn new(r: &Registry, drops: IntCounterVec) -> WorkerMetrics {
        WorkerMetrics {
            packets: counter(
                r,
                "gatewatch_packets_total",
                "Packets processed by the workers.",
            ),
            bytes: counter(
                r,
                "gatewatch_bytes_total",
                "Bytes (on the wire) processed by the workers.",
            ),
            dns_queries: counter(r, "gatewatch_dns_queries_total", "DNS queries seen."),
            worker_packets: counter_vec(
                r,
                "gatewatch_worker_packets_total",
                "Packets processed, per worker.",
                &["worker"],
            ),
            queue_drops: counter_vec(
                r,
                "gatewatch_queue_drops_total",
                "Packets dropped because a worker queue was full.",
                &["worker"],
            ),
            parse_errors: counter_vec(
                r,
                "gatewatch_parse_errors_total",
                "Packets or parts of packets not decoded, by reason.",
                &["reason"],
            ),
            tunnel_headers: tunnel_headers(r),
            hits_allowlisted: counter(
                r,
                "gatewatch_hits_allowlisted_total",
                "Matches suppressed by an allowlist.",
            ),
            dns_unsolicited: counter(
                r,
                "gatewatch_dns_answers_unsolicited_total",
                "DNS answers with addresses that answered no query seen (spoofed, unsolicited, or the query was not mirrored); not learned from.",
            ),
            tcp: TcpMetrics::new(r),
            dns_links: gauge(
                r,
                "gatewatch_dns_links",
                "Addresses internal hosts got in answers for listed domains, remembered for correlation.",
            ),
            dns_links_evicted: counter(
                r,
                "gatewatch_dns_links_evicted_total",
                "Correlation links dropped to keep the table under its cap (before their TTL).",
            ),
            panics: counter_vec(
                r,
                "gatewatch_panics_recovered_total",
                "Panics caught and survived, by stage: a worker (the packet's flow was reset), feed parsing (the feed was refused, its previous version kept), the HTTP listener (answered 500). Each is a bug: report it with the log line.",
                &["stage"],
            ),
            heuristics: HeuristicMetrics::new(r),
            drops,
            source: Mutex::new(None),
        }
    }

    pub fn watch(&self, source: WorkerSource) {
        if let Ok(mut g) = self.source.lock() {
            *g = Some(source);
        }
    }

    pub(super) fn refresh(&self, d: &mut Deltas) {
        let reports = match self.source.lock() {
            Ok(g) => g.as_ref().map(|f| f()).unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        let mut sum = Stats::default();
        let mut queue_total = 0;
        for (i, w) in reports.iter().enumerate() {
            let id = i.to_string();
            let packets = &self.worker_packets.with_label_values(&[&id]);
            d.add(format!("wp{i}"), w.stats.packets, packets);
            let drops = &self.queue_drops.with_label_values(&[&id]);
            d.add(format!("wq{i}"), w.queue_drops, drops);
            queue_total += w.queue_drops;
            sum.merge(&w.stats);
        }
        let queue = &self.drops.with_label_values(&["queue"]);
        d.add("d-queue".into(), queue_total, queue);
        self.fold_totals(d, &sum);
        self.dns_links.set(sum.links.live as i64);
        let ev = sum.links.evicted;
        d.add("dns_links_evicted".into(), ev, &self.dns_links_evicted);
        self.fold_panics(d, sum.panics_recovered);
        self.heuristics.fold(d, &sum.heuristics);
    }

    fn fold_panics(&self, d: &mut Deltas, workers: u64) {
        use crate::packet::panics;
        use std::sync::atomic::Ordering::Relaxed;
        for (stage, n) in [
            ("worker", workers),
            ("feeds", panics::FEEDS.load(Relaxed)),
            ("http", panics::HTTP.load(Relaxed)),
        ] {
            let c = &self.panics.with_label_values(&[stage]);
            d.add(format!("panic-{stage}"), n, c);
        }
    }

    /// The workers' summed counters.
    fn fold_totals(&self, d: &mut Deltas, sum: &Stats) {
        d.add("packets".into(), sum.packets, &self.packets);
        d.add("bytes".into(), sum.bytes, &self.bytes);
        d.add("dnsq".into(), sum.dns_queries, &self.dns_queries);
        d.add(
            "allowlisted".into(),
            sum.hits_allowlisted,
            &self.hits_allowlisted,
        );
        let unsolicited = sum.dns_answers_unsolicited;
        d.add("dns_unsolicited".into(), unsolicited, &self.dns_unsolicited);
        self.tcp.fold(d, sum);
        for r in Reason::ALL {
            let c = &self.parse_errors.with_label_values(&[r.as_str()]);
            d.add(format!("pe-{}", r.as_str()), sum.errors_of(r), c);
        }
        for e in Encap::ALL {
            let c = &self.tunnel_headers.with_label_values(&[e.as_str()]);
            d.add(format!("tun-{}", e.as_str()), e.count_in(&sum.decode), c);
        }
    }
}

/// The TCP flow table and streams, all workers.
struct TcpMetrics {
    flows: IntGauge,
    flows_evicted: IntCounter,
    gaps: IntCounter,
    reassembly_dropped: IntCounter,
    reassembly_bytes: IntGauge,
    overlap_conflicts: IntCounter,
}

impl TcpMetrics {
    fn new(r: &Registry) -> TcpMetrics {
        TcpMetrics {
            flows: gauge(
                r,
                "gatewatch_tcp_flows",
                "Flows tracked now (TCP, and UDP other than DNS and the name protocols), all workers.",
            ),
            flows_evicted: counter(
                r,
                "gatewatch_tcp_flows_evicted_total",
                "TCP flows pushed out of a full flow table before they ended (a SYN flood, or the table is too small).",
            ),
            reassembly_dropped: counter(
                r,
                "gatewatch_tcp_reassembly_dropped_total",
                "TCP flows that gave up their reassembly copies because the reassembly budget ([flows] reassembly_mib) was spent.",
            ),
            reassembly_bytes: gauge(
                r,
                "gatewatch_tcp_reassembly_bytes",
                "Bytes held copied for TCP reassembly, all workers.",
            ),
            gaps: counter(
                r,
                "gatewatch_tcp_gaps_total",
                "Holes in TCP payload that inspection skipped (segments missing from the capture).",
            ),
            overlap_conflicts: counter(
                r,
                "gatewatch_tcp_overlap_conflicts_total",
                "Overlapping TCP segments whose content differed (the first copy was inspected).",
            ),
        }
    }

    fn fold(&self, d: &mut Deltas, sum: &Stats) {
        let open = sum.flows.created.saturating_sub(sum.flows.ended);
        self.flows.set(open as i64);
        d.add("tcp_evicted".into(), sum.flows.evicted, &self.flows_evicted);
        d.add("tcp_gaps".into(), sum.streams.gaps, &self.gaps);
        let dropped = sum.flows.reassembly_dropped;
        d.add("tcp_rdrop".into(), dropped, &self.reassembly_dropped);
        self.reassembly_bytes.set(sum.flows.reassembly_bytes as i64);
        let overlap = sum.streams.overlap_conflicts;
        d.add("tcp_overlap".into(), overlap, &self.overlap_conflicts);
    }
}
