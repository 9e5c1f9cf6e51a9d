//! The multi-core pipeline: capture -> N decode/match workers -> one sink.
//!
//! Packets move in batches (one channel operation per batch, not per packet),
//! routed by a symmetric flow hash so both directions of a flow meet in the
//! same worker. Queues are bounded: a live source drops a batch it cannot
//! queue and counts it (capture never blocks); a file source waits instead,
//! so replay loses nothing. Workers send hits to the sink with a blocking
//! send: hits are rare, and a matched hit is never dropped.

use crate::capture::{LinkType, RawPacket};
use crate::decode::flow_hash;
use crate::detect::{Engine, Hit, Sink};
use crate::stats::Stats;
use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A batch of packets copied out of the capture buffer into one arena.
pub struct Batch {
    data: Vec<u8>,
    pkts: Vec<(i64, u32, LinkType, u32, u32)>,
}

impl Batch {
    fn with_capacity(pkts: usize) -> Batch {
        Batch {
            data: Vec::with_capacity(pkts * 512),
            pkts: Vec::with_capacity(pkts),
        }
    }

    fn push(&mut self, p: &RawPacket<'_>) {
        let off = self.data.len() as u32;
        self.data.extend_from_slice(p.data);
        self.pkts
            .push((p.ts_ns, p.orig_len, p.link, off, p.data.len() as u32));
    }

    pub fn len(&self) -> usize {
        self.pkts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pkts.is_empty()
    }

    fn clear(&mut self) {
        self.data.clear();
        self.pkts.clear();
    }

    pub fn iter(&self) -> impl Iterator<Item = RawPacket<'_>> {
        self.pkts
            .iter()
            .map(|&(ts_ns, orig_len, link, off, len)| RawPacket {
                ts_ns,
                orig_len,
                link,
                data: &self.data[off as usize..(off + len) as usize],
            })
    }
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
    pub fn route(&mut self, p: &RawPacket<'_>) {
        let n = self.lanes.len();
        let w = if n == 1 {
            0
        } else {
            (flow_hash(p) % n as u64) as usize
        };
        let lane = &mut self.lanes[w];
        lane.cur.push(p);
        if lane.cur.len() >= self.batch_packets {
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

impl Drop for Router {
    fn drop(&mut self) {
        self.flush();
    }
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

/// Forwards a worker's hits to the sink stage.
struct HitForwarder<'a> {
    tx: &'a Sender<Hit>,
}

impl Sink for HitForwarder<'_> {
    fn hit(&mut self, hit: Hit) {
        // Blocking: a matched hit is never dropped. If the sink is gone the
        // process is shutting down after a sink failure, already reported.
        let _ = self.tx.send(hit);
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
    /// Start `sizing.workers` workers, each with an engine from `make_engine`,
    /// sending hits to `hits`.
    pub fn start(
        sizing: Sizing,
        mut make_engine: impl FnMut() -> Engine,
        hits: Sender<Hit>,
    ) -> Pipeline {
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
            let mut engine = make_engine();
            let hits = hits.clone();
            let shared = shared.clone();
            let h = std::thread::Builder::new()
                .name(format!("gw-worker-{i}"))
                .spawn(move || {
                    let mut fwd = HitForwarder { tx: &hits };
                    for mut batch in rx {
                        for p in batch.iter() {
                            engine.process(&p, &mut fwd);
                        }
                        if let Ok(mut s) = shared[i].stats.try_lock() {
                            s.clone_from(&engine.stats);
                        }
                        batch.clear();
                        let _ = free_tx.try_send(batch);
                    }
                    if let Ok(mut s) = shared[i].stats.lock() {
                        s.clone_from(&engine.stats);
                    }
                    engine.stats
                })
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
