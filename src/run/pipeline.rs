//! The multi-core pipeline: capture -> N decode/match workers -> one sink.
//!
//! Packets move in batches (one channel operation per batch, not per packet),
//! routed by internal host (`route.rs`) so all of a host's traffic, both
//! directions of every flow, meets in the same worker. Queues are bounded: a live source drops a batch it cannot
//! queue and counts it (capture never blocks); a file source waits instead,
//! so replay loses nothing. Workers send hits to the sink with a blocking
//! send: hits are rare, and a matched hit is never dropped.

use super::batch::{Batch, PREFETCH_AHEAD};
use super::route::{Route, Routes};
use crate::capture::mapping::Mapping;
use crate::capture::{CaptureTotals, PacketSink};
use crate::detect::attribution::Units;
use crate::detect::{Engine, Event, FlowRecord, Hit, Recipe, Sink, Stats};
use crate::metrics::{WorkerReport, WorkerSource};
use crate::output::sink::SinkResult;
use crate::packet::RawPacket;
use crate::protocols::hostnames::HostName;
use arc_swap::ArcSwap;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError, bounded};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What to do when a worker's queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backpressure {
    /// Live capture: drop the batch and count it.
    Drop,
    /// Files: wait for the worker.
    Block,
}

/// Per-worker counters the capture side and the worker share with metrics.
#[derive(Default)]
pub struct WorkerShared {
    /// Packets dropped because this worker's queue was full.
    pub queue_drops: AtomicU64,
    /// The worker's latest counters, published every [`PUBLISH_EVERY`]
    /// (a pointer swap: neither side ever waits for the other).
    pub stats: ArcSwap<Stats>,
}

/// How often a busy worker publishes its counters for metrics.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);

/// Spreads packets over the workers; one per capture thread.
pub struct Router {
    lanes: Vec<Lane>,
    routes: Routes,
    batch_packets: usize,
    mode: Backpressure,
    shared: Arc<Vec<WorkerShared>>,
}

struct Lane {
    tx: Sender<Batch>,
    free: Receiver<Batch>,
    cur: Batch,
}

impl Router {
    /// Queue a packet, copying its bytes.
    pub fn route(&mut self, p: &RawPacket<'_>) {
        self.route_in(p, None);
    }

    /// Queue a packet; when `map` is the mapping the packet lies in, the
    /// batch refers to it instead of copying the bytes.
    pub fn route_in(&mut self, p: &RawPacket<'_>, map: Option<&Arc<Mapping>>) {
        match self.routes.route(p, self.lanes.len()) {
            Route::One(w) => self.put(w, p, map, false),
            Route::Everyone(owner) => {
                for w in 0..self.lanes.len() {
                    self.put(w, p, map, w != owner);
                }
            }
        }
    }

    fn put(&mut self, w: usize, p: &RawPacket<'_>, map: Option<&Arc<Mapping>>, learn_only: bool) {
        let lane = &mut self.lanes[w];
        match map {
            Some(m) => {
                if !lane.cur.push_mapped(p, m, learn_only) {
                    // The batch holds another file's mapping: send it first.
                    self.send(w);
                    let lane = &mut self.lanes[w];
                    if !lane.cur.push_mapped(p, m, learn_only) {
                        lane.cur.push(p, learn_only);
                    }
                }
            }
            None => lane.cur.push(p, learn_only),
        }
        if self.lanes[w].cur.len() >= self.batch_packets {
            self.send(w);
        }
    }

    /// Send every partial batch (on capture timeouts and at the end).
    pub fn flush(&mut self) {
        for w in 0..self.lanes.len() {
            if !self.lanes[w].cur.is_empty() {
                self.send(w);
            }
        }
    }

    fn send(&mut self, w: usize) {
        let lane = &mut self.lanes[w];
        let fresh = lane
            .free
            .try_recv()
            .unwrap_or_else(|_| Batch::with_capacity(self.batch_packets));
        let full = std::mem::replace(&mut lane.cur, fresh);
        match self.mode {
            Backpressure::Block => {
                // A closed channel means the worker is gone: nothing to wait for.
                let _ = lane.tx.send(full);
            }
            Backpressure::Drop => match lane.tx.try_send(full) {
                Ok(()) => {}
                Err(TrySendError::Full(mut b)) | Err(TrySendError::Disconnected(mut b)) => {
                    self.shared[w]
                        .queue_drops
                        .fetch_add(b.len() as u64, Ordering::Relaxed);
                    b.clear();
                    lane.cur = b;
                }
            },
        }
    }
}

impl PacketSink for Router {
    fn packet(&mut self, p: &RawPacket<'_>) {
        self.route(p);
    }

    fn flush(&mut self) {
        Router::flush(self);
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Everything a run through the pipeline produced.
pub struct RunOutcome {
    pub stats: Stats,
    pub queue_drops: u64,
    pub sink: SinkResult,
    /// Per capture interface (live runs only).
    pub captures: Vec<CaptureTotals>,
}

/// Pipeline sizing.
#[derive(Clone, Copy, Debug)]
pub struct Sizing {
    pub workers: usize,
    pub queue_batches: usize,
    pub batch_packets: usize,
}

impl Sizing {
    /// Cores minus one for workers (one core captures), at least one.
    pub fn default_workers() -> usize {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get().saturating_sub(1))
            .max(1)
    }
}

/// Forwards a worker's hits and finished flows to the sink stage.
struct HitForwarder<'a> {
    tx: &'a Sender<Event>,
}

impl Sink for HitForwarder<'_> {
    fn hit(&mut self, hit: Hit) {
        // Blocking: a matched hit is never dropped. If the sink is gone the
        // process is shutting down after a sink failure, already reported.
        let _ = self.tx.send(Event::Hit(Box::new(hit)));
    }

    fn flow(&mut self, flow: FlowRecord) {
        let _ = self.tx.send(Event::Flow(Box::new(flow)));
    }

    fn host_name(&mut self, ts_ns: i64, name: HostName) {
        let _ = self.tx.send(Event::Name(ts_ns, Box::new(name)));
    }

    fn hygiene(&mut self, e: crate::detect::hygiene::HygieneEvent) {
        let _ = self.tx.send(Event::Hygiene(Box::new(e)));
    }

    fn history(&mut self, items: Vec<crate::detect::history::HistoryItem>) {
        let _ = self.tx.send(Event::History(items));
    }
}

/// A worker with no batch for this long ends the flows that timed out.
const IDLE_TICK: Duration = Duration::from_secs(1);

/// One worker thread: its engine, its queue, where its hits go.
struct Worker {
    engine: Engine,
    rx: Receiver<Batch>,
    /// Emptied batches go back to the router for reuse.
    free: Sender<Batch>,
    hits: Sender<Event>,
    shared: Arc<Vec<WorkerShared>>,
    index: usize,
}

impl Worker {
    /// Process batches until the queue closes; returns the counters.
    fn run(mut self) -> Stats {
        let mut fwd = HitForwarder { tx: &self.hits };
        let shared = &self.shared[self.index];
        let mut last_batch = Instant::now();
        let mut published = last_batch;
        loop {
            let mut batch = match self.rx.recv_timeout(IDLE_TICK) {
                Ok(b) => b,
                Err(RecvTimeoutError::Timeout) => {
                    let quiet = last_batch.elapsed().as_nanos() as i64;
                    self.engine.idle(quiet, &mut fwd);
                    // What the last batches counted, now that none follow.
                    shared.stats.store(Arc::new(self.engine.stats.clone()));
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            last_batch = Instant::now();
            for (k, (p, learn_only)) in batch.iter_routed().enumerate() {
                batch.prefetch(k + PREFETCH_AHEAD);
                let survived = if learn_only {
                    self.engine.learn_contained(&p)
                } else {
                    self.engine.process_contained(&p, &mut fwd)
                };
                if !survived {
                    let n = self.engine.stats.panics_recovered;
                    super::contain::log_recovered(&format!("worker {}", self.index), &p, n);
                }
            }
            if last_batch.duration_since(published) >= PUBLISH_EVERY {
                shared.stats.store(Arc::new(self.engine.stats.clone()));
                published = last_batch;
            }
            batch.clear();
            let _ = self.free.try_send(batch);
        }
        self.engine.finish(&mut fwd);
        shared.stats.store(Arc::new(self.engine.stats.clone()));
        self.engine.stats
    }
}

/// Running workers and the senders that feed them.
pub struct Pipeline {
    senders: Vec<(Sender<Batch>, Receiver<Batch>)>,
    units: Arc<Units>,
    /// Resolvers whose lookups every worker learns from.
    resolvers: Vec<IpAddr>,
    pub shared: Arc<Vec<WorkerShared>>,
    workers: Vec<std::thread::JoinHandle<Stats>>,
    sizing: Sizing,
}

impl Pipeline {
    /// Start `sizing.workers` workers, engine `i` made by `recipe` (made for
    /// that many workers), sending hits to `hits`.
    pub fn start(sizing: Sizing, recipe: &Recipe, hits: Sender<Event>) -> Pipeline {
        let shared: Arc<Vec<WorkerShared>> = Arc::new(
            (0..sizing.workers)
                .map(|_| WorkerShared::default())
                .collect(),
        );
        let mut senders = Vec::new();
        let mut workers = Vec::new();
        for i in 0..sizing.workers {
            let (tx, rx) = bounded::<Batch>(sizing.queue_batches);
            let (free_tx, free_rx) = bounded::<Batch>(sizing.queue_batches + 2);
            let worker = Worker {
                engine: recipe.engine(i),
                rx,
                free: free_tx,
                hits: hits.clone(),
                shared: shared.clone(),
                index: i,
            };
            let h = std::thread::Builder::new()
                .name(format!("gw-worker-{i}"))
                .spawn(move || worker.run())
                .expect("spawn worker thread");
            senders.push((tx, free_rx));
            workers.push(h);
        }
        let o = recipe.options();
        Pipeline {
            senders,
            units: recipe.units().clone(),
            resolvers: if o.correlate {
                o.resolvers.clone()
            } else {
                Vec::new()
            },
            shared,
            workers,
            sizing,
        }
    }

    /// Every worker's latest counters and queue drops, for metrics.
    pub fn worker_source(&self) -> WorkerSource {
        let shared = self.shared.clone();
        Box::new(move || {
            shared
                .iter()
                .map(|w| WorkerReport {
                    stats: Stats::clone(&w.stats.load()),
                    queue_drops: w.queue_drops.load(Ordering::Relaxed),
                })
                .collect()
        })
    }

    /// A router for one capture thread.
    pub fn router(&self, mode: Backpressure) -> Router {
        Router {
            lanes: self
                .senders
                .iter()
                .map(|(tx, free)| Lane {
                    tx: tx.clone(),
                    free: free.clone(),
                    cur: Batch::with_capacity(self.sizing.batch_packets),
                })
                .collect(),
            routes: Routes::new(self.units.clone(), self.resolvers.clone()),
            batch_packets: self.sizing.batch_packets,
            mode,
            shared: self.shared.clone(),
        }
    }

    /// Close the queues (after every router is dropped), let the workers
    /// drain them, and return their counters summed.
    pub fn finish(self) -> Stats {
        drop(self.senders);
        let mut total = Stats::default();
        for w in self.workers {
            match w.join() {
                Ok(s) => total.merge(&s),
                Err(_) => tracing::error!("a worker thread panicked; its counters are lost"),
            }
        }
        total
    }

    pub fn queue_drops(&self) -> u64 {
        self.shared
            .iter()
            .map(|w| w.queue_drops.load(Ordering::Relaxed))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::file::{read_file, read_file_shared};
    use crate::decode::decode;
    use std::collections::HashMap;
    use std::path::PathBuf;

    /// A router over `n` lanes whose queues the test reads itself.
    fn router(n: usize) -> (Router, Vec<Receiver<Batch>>) {
        let mut lanes = Vec::new();
        let mut rxs = Vec::new();
        for _ in 0..n {
            let (tx, rx) = bounded(1 << 16);
            let (_free_tx, free) = bounded(1);
            lanes.push(Lane {
                tx,
                free,
                cur: Batch::with_capacity(8),
            });
            rxs.push(rx);
        }
        let shared = Arc::new((0..n).map(|_| WorkerShared::default()).collect());
        let units = Arc::new(crate::testkit::no_units());
        let r = Router {
            lanes,
            routes: Routes::new(units, Vec::new()),
            batch_packets: 8,
            mode: Backpressure::Block,
            shared,
        };
        (r, rxs)
    }

    fn corpus() -> Vec<PathBuf> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
        [
            "zeek/http__pipelined-requests.pcap",
            "zeek/tls__chrome-34-google.pcap",
            "zeek/http-qinq-0.pcap",
            "zeek/dns53.pcap",
            "gateway-small/traffic.pcap",
        ]
        .iter()
        .map(|p| root.join(p))
        .collect()
    }

    type Endpoint = (std::net::IpAddr, u16);
    /// Canonical flow -> (lanes it was seen in, directions seen).
    type FlowLanes = HashMap<(Endpoint, Endpoint, u8), (Vec<usize>, [bool; 2])>;

    /// Both directions of every flow in real and synthetic captures land in
    /// one worker, whether packets are copied or passed as mapped slices.
    #[test]
    fn both_directions_of_a_flow_meet_in_one_worker() {
        for zero_copy in [false, true] {
            let (mut r, rxs) = router(4);
            for f in corpus() {
                if zero_copy {
                    read_file_shared(&f, |p, m| r.route_in(p, m));
                } else {
                    read_file(&f, |p| r.route(p));
                }
            }
            r.flush();
            let mut flows = FlowLanes::new();
            let (mut counts, mut problems) = Default::default();
            for (lane, rx) in rxs.iter().enumerate() {
                for b in rx.try_iter() {
                    for p in b.iter() {
                        let Some(d) = decode(&p, &mut counts, &mut problems) else {
                            continue;
                        };
                        let (sp, dp) = d.transport.ports();
                        let (a, z) = ((d.src, sp), (d.dst, dp));
                        let fwd = a <= z;
                        let key = if fwd { (a, z) } else { (z, a) };
                        let e = flows
                            .entry((key.0, key.1, d.transport.proto_number(d.src.is_ipv6())))
                            .or_default();
                        if !e.0.contains(&lane) {
                            e.0.push(lane);
                        }
                        e.1[usize::from(fwd)] = true;
                    }
                }
            }
            let both = flows.values().filter(|v| v.1 == [true, true]).count();
            assert!(both > 100, "only {both} two-way flows: test input too thin");
            let used: std::collections::HashSet<usize> =
                flows.values().flat_map(|v| v.0.clone()).collect();
            assert_eq!(used.len(), 4, "flows should spread over all workers");
            for (k, v) in &flows {
                // DHCP from 0.0.0.0 is many hosts' announcements, each
                // routed to the host it names (see `route.rs`).
                if k.0.0.is_unspecified() {
                    continue;
                }
                assert_eq!(v.0.len(), 1, "flow {k:?} split over workers {:?}", v.0);
            }
        }
    }

    /// A mapped batch hands out exactly the bytes a copied one does.
    #[test]
    fn zero_copy_batches_equal_copied_ones() {
        let f = &corpus()[0];
        let mut copied = Vec::new();
        read_file(f, |p| copied.push((p.ts_ns, p.orig_len, p.data.to_vec())));
        let (mut r, rxs) = router(1);
        read_file_shared(f, |p, m| {
            assert!(m.is_some(), "classic pcap is read from a mapping");
            r.route_in(p, m)
        });
        r.flush();
        let got: Vec<_> = rxs[0]
            .try_iter()
            .flat_map(|b| {
                b.iter()
                    .map(|p| (p.ts_ns, p.orig_len, p.data.to_vec()))
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(got, copied);
    }
}
