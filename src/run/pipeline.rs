//! The multi-core pipeline: capture -> N decode/match workers -> one sink.
//!
//! Packets move in batches (one channel operation per batch, not per packet),
//! routed by a symmetric flow hash so both directions of a flow meet in the
//! same worker. Queues are bounded: a live source drops a batch it cannot
//! queue and counts it (capture never blocks); a file source waits instead,
//! so replay loses nothing. Workers send hits to the sink with a blocking
//! send: hits are rare, and a matched hit is never dropped.

use crate::capture::{CaptureTotals, PacketSink};
use crate::decode::flow_hash;
use crate::detect::{Engine, Event, FlowRecord, Hit, Recipe, Sink, Stats};
use crate::metrics::{WorkerReport, WorkerSource};
use crate::output::sink::SinkResult;
use crate::packet::{LinkType, RawPacket};
use crate::protocols::hostnames::HostName;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError, bounded};
use memmap2::Mmap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A batch of packets for one worker. Packets from a live capture are copied
/// into the batch's arena (libpcap reuses its ring); packets from a mapped
/// capture file stay where they are and the batch holds the mapping alive.
///
/// Why zero-copy for files: copying each frame into the arena was the largest
/// single cost of the capture thread (21% of cycles with one worker, 2M-packet
/// gateway mix, perf) and that thread was the bottleneck.
pub struct Batch {
    data: Vec<u8>,
    map: Option<Arc<Mmap>>,
    pkts: Vec<Slot>,
}

/// One packet: where its bytes are (arena or mapping) and its metadata.
struct Slot {
    ts_ns: i64,
    orig_len: u32,
    link: LinkType,
    mapped: bool,
    off: usize,
    len: u32,
}

impl Batch {
    fn with_capacity(pkts: usize) -> Batch {
        Batch {
            data: Vec::with_capacity(pkts * 512),
            map: None,
            pkts: Vec::with_capacity(pkts),
        }
    }

    fn slot(p: &RawPacket<'_>, mapped: bool, off: usize) -> Slot {
        Slot {
            ts_ns: p.ts_ns,
            orig_len: p.orig_len,
            link: p.link,
            mapped,
            off,
            len: p.data.len() as u32,
        }
    }

    fn push(&mut self, p: &RawPacket<'_>) {
        let off = self.data.len();
        self.data.extend_from_slice(p.data);
        self.pkts.push(Self::slot(p, false, off));
    }

    /// Add a packet that lies inside `map` without copying it. Returns false
    /// (and adds nothing) when the batch already refers to another mapping or
    /// the packet is not inside `map`.
    fn push_mapped(&mut self, p: &RawPacket<'_>, map: &Arc<Mmap>) -> bool {
        let base = map.as_ptr() as usize;
        let at = p.data.as_ptr() as usize;
        if at < base || at + p.data.len() > base + map.len() {
            return false;
        }
        match &self.map {
            Some(m) if !Arc::ptr_eq(m, map) => return false,
            Some(_) => {}
            None => self.map = Some(map.clone()),
        }
        self.pkts.push(Self::slot(p, true, at - base));
        true
    }

    /// Hint the CPU to load the headers of packet `k`. The worker's first
    /// read of a packet is a cache miss (the bytes come from the page cache or
    /// from the capture core); without this, 73% of `decode`'s cycles sat on
    /// that one load (perf annotate, 2M-packet gateway mix, 1 worker).
    #[inline]
    fn prefetch(&self, k: usize) {
        let Some(s) = self.pkts.get(k) else { return };
        let src: &[u8] = if s.mapped {
            self.map.as_deref().map_or(&[], |m| &m[..])
        } else {
            &self.data
        };
        if let Some(head) = src.get(s.off..) {
            prefetch_read(head.as_ptr());
            if s.len > 64 {
                prefetch_read(head.as_ptr().wrapping_add(64));
            }
        }
    }

    pub fn len(&self) -> usize {
        self.pkts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pkts.is_empty()
    }

    fn clear(&mut self) {
        self.data.clear();
        self.map = None;
        self.pkts.clear();
    }

    pub fn iter(&self) -> impl Iterator<Item = RawPacket<'_>> {
        let map: &[u8] = self.map.as_deref().map_or(&[], |m| &m[..]);
        self.pkts.iter().map(move |s| {
            let src = if s.mapped { map } else { &self.data[..] };
            RawPacket {
                ts_ns: s.ts_ns,
                orig_len: s.orig_len,
                link: s.link,
                data: &src[s.off..s.off + s.len as usize],
            }
        })
    }
}

/// How many packets ahead of the one being processed a worker prefetches.
const PREFETCH_AHEAD: usize = 4;

#[inline(always)]
fn prefetch_read(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetch is a hint; it never faults, whatever the address.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

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
    /// The worker's latest counters, published once per batch.
    pub stats: std::sync::Mutex<Stats>,
}

/// Spreads packets over the workers; one per capture thread.
pub struct Router {
    lanes: Vec<Lane>,
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
    pub fn route_in(&mut self, p: &RawPacket<'_>, map: Option<&Arc<Mmap>>) {
        let n = self.lanes.len();
        let w = if n == 1 {
            0
        } else {
            (flow_hash(p) % n as u64) as usize
        };
        let lane = &mut self.lanes[w];
        match map {
            Some(m) => {
                if !lane.cur.push_mapped(p, m) {
                    // The batch holds another file's mapping: send it first.
                    self.send(w);
                    let lane = &mut self.lanes[w];
                    if !lane.cur.push_mapped(p, m) {
                        lane.cur.push(p);
                    }
                }
            }
            None => lane.cur.push(p),
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
        loop {
            let mut batch = match self.rx.recv_timeout(IDLE_TICK) {
                Ok(b) => b,
                Err(RecvTimeoutError::Timeout) => {
                    let quiet = last_batch.elapsed().as_nanos() as i64;
                    self.engine.idle(quiet, &mut fwd);
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            last_batch = Instant::now();
            for (k, p) in batch.iter().enumerate() {
                batch.prefetch(k + PREFETCH_AHEAD);
                self.engine.process(&p, &mut fwd);
            }
            // Never waits: a scrape holding the lock skips one publication.
            if let Ok(mut s) = shared.stats.try_lock() {
                s.clone_from(&self.engine.stats);
            }
            batch.clear();
            let _ = self.free.try_send(batch);
        }
        self.engine.finish(&mut fwd);
        if let Ok(mut s) = shared.stats.lock() {
            s.clone_from(&self.engine.stats);
        }
        self.engine.stats
    }
}

/// Running workers and the senders that feed them.
pub struct Pipeline {
    senders: Vec<(Sender<Batch>, Receiver<Batch>)>,
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
        Pipeline {
            senders,
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
                    stats: w.stats.lock().map(|s| s.clone()).unwrap_or_default(),
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
        let r = Router {
            lanes,
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
