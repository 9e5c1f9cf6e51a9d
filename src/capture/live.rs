//! Live capture with libpcap (the `pcap` crate): one thread per interface.
//!
//! The capture thread only hands frames to its [`PacketSink`] (the
//! pipeline's router, which copies them into batches); it never waits on a
//! worker. An interface that goes
//! away is logged, counted and reopened with back-off while the other
//! interfaces keep capturing. About once a second the thread also reads the
//! link state (see `link_state`): a link set down or without carrier is
//! reported as down while the handle, which still works, is kept.

use super::link_state::{LinkProbe, LinkReport, LinkState};
use super::{CaptureShared, PacketSink};
use crate::packet::{LinkType, RawPacket};
use anyhow::{Result, anyhow};
use serde::Deserialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a read waits before the thread checks for shutdown and flushes
/// partial batches.
const READ_TIMEOUT_MS: i32 = 100;
/// Reopen delays after a lost handle: doubling from `BACKOFF_MIN` up to
/// `BACKOFF_MAX`, cut short when the link comes back up.
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// After a stop request, keep reading until the kernel has nothing left and at
/// least this long has passed (a TPACKET_V3 block is handed over up to one
/// read timeout after its first frame), so frames received before the stop
/// are still processed; on a busy port, stop after `DRAIN_MAX` regardless.
const DRAIN_MIN: Duration = Duration::from_millis(2 * READ_TIMEOUT_MS as u64);
const DRAIN_MAX: Duration = Duration::from_secs(1);

/// One `[[interface]]` of `gatewatch.toml`: what to capture and how.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterfaceConfig {
    pub name: String,
    #[serde(default = "default_snaplen")]
    pub snaplen: i32,
    #[serde(default = "default_buffer_mib")]
    pub buffer_mib: i32,
    #[serde(default = "yes")]
    pub promisc: bool,
    #[serde(default)]
    pub filter: Option<String>,
}

fn default_snaplen() -> i32 {
    65535
}
fn default_buffer_mib() -> i32 {
    64
}
fn yes() -> bool {
    true
}

impl InterfaceConfig {
    pub fn named(name: &str) -> Self {
        InterfaceConfig {
            name: name.into(),
            snaplen: default_snaplen(),
            buffer_mib: default_buffer_mib(),
            promisc: true,
            filter: None,
        }
    }
}

/// Open `cfg.name` for capture, or explain in the operator's terms why not.
///
/// An interface that does not exist or is set administratively down is
/// refused: that is a configuration mistake the operator fixes at once. One
/// that is up but has no carrier (NO-CARRIER: cable out, mirror session not
/// configured yet, veth peer down) is opened: a mirror port often gets its
/// link only after the sensor starts, and the capture handle works as soon as
/// it does. [`run`] reports such a link as down (`gatewatch_capture_up` 0,
/// `/healthz` 503, a warning naming the interface) until the carrier comes.
pub fn open(cfg: &InterfaceConfig) -> Result<pcap::Capture<pcap::Active>> {
    let name = &cfg.name;
    // Where the state cannot be read at all, let libpcap say what is wrong.
    let state = LinkProbe::new().and_then(|p| p.state(name)).ok();
    match state {
        Some(LinkState::Gone) => {
            return Err(anyhow!(
                "interface {name:?} does not exist (see `ip link`); check [[interface]] name or --interface"
            ));
        }
        Some(LinkState::AdminDown) => {
            return Err(anyhow!(
                "interface {name:?} is down: bring it up with `ip link set {name} up`"
            ));
        }
        Some(LinkState::Up | LinkState::NoCarrier) | None => {}
    }
    let explain = |e: pcap::Error| {
        let msg = e.to_string();
        if msg.contains("ermission") || msg.contains("not permitted") {
            anyhow!(
                "no permission to capture on {name:?} ({msg}): run as root or give the binary CAP_NET_RAW and CAP_NET_ADMIN \
                 (setcap cap_net_raw,cap_net_admin=eip /usr/local/bin/gatewatch, or use deploy/systemd/gatewatch.service)"
            )
        } else if msg.contains("No such device") || msg.contains("doesn't exist") {
            anyhow!("interface {name:?} does not exist ({msg})")
        } else {
            anyhow!("cannot capture on {name:?}: {msg}")
        }
    };
    let mut cap = pcap::Capture::from_device(name.as_str())
        .map_err(explain)?
        .promisc(cfg.promisc)
        .snaplen(cfg.snaplen)
        .buffer_size(cfg.buffer_mib.saturating_mul(1 << 20))
        .timeout(READ_TIMEOUT_MS)
        .immediate_mode(false)
        .open()
        .map_err(explain)?;
    if let Some(f) = cfg.filter.as_deref().filter(|f| !f.trim().is_empty()) {
        cap.filter(f, true)
            .map_err(|e| anyhow!("interface {name:?}: BPF filter {f:?} rejected: {e}"))?;
    }
    // Non-blocking, with our own poll(): with TPACKET_V3 and immediate mode
    // off, libpcap polls with no timeout on an idle interface, so a blocking
    // read would never return to see a shutdown request.
    cap.setnonblock()
        .map_err(|e| anyhow!("interface {name:?}: cannot set non-blocking mode: {e}"))
}

/// Copy the handle's cumulative kernel/interface drop counts, on top of the
/// totals carried over from earlier handles, into the shared counters.
fn publish_drops(
    c: &mut pcap::Capture<pcap::Active>,
    shared: &CaptureShared,
    base_kernel: u64,
    base_if: u64,
) {
    if let Ok(s) = c.stats() {
        shared
            .kernel_drops
            .store(base_kernel + u64::from(s.dropped), Ordering::Relaxed);
        shared
            .interface_drops
            .store(base_if + u64::from(s.if_dropped), Ordering::Relaxed);
    }
}

/// Wait until the capture descriptor is readable or `READ_TIMEOUT_MS` passes.
fn wait_readable(cap: &pcap::Capture<pcap::Active>) {
    use std::os::unix::io::AsRawFd;
    let mut pfd = libc::pollfd {
        fd: cap.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe {
        libc::poll(&mut pfd, 1, READ_TIMEOUT_MS);
    }
}

/// Capture until `stop`, handing every frame to `sink`. `first` is the
/// handle opened (and checked) at start-up.
pub fn run(
    cfg: InterfaceConfig,
    first: pcap::Capture<pcap::Active>,
    mut sink: impl PacketSink,
    stop: Arc<AtomicBool>,
    shared: Arc<CaptureShared>,
) {
    let mut link = LinkReport::new(&cfg.name);
    // The state at start is published before the thread counts as running,
    // so /healthz never says "ok" for a link that is down from the start.
    link.check(&shared);
    shared.running.store(true, Ordering::Relaxed);
    let mut t = Thread {
        cfg,
        stop,
        shared,
        link,
        stopping: None,
        base_kernel: 0,
        base_if: 0,
    };
    let mut cap = Some(first);
    let mut backoff = BACKOFF_MIN;
    while !t.stopped() {
        let Some(c) = cap.as_mut() else {
            cap = t.reopen(&mut backoff);
            continue;
        };
        let lost = t.read_until_lost(c, &mut sink);
        t.carry_drops(c);
        if !lost {
            break;
        }
        cap = None;
    }
    sink.flush();
    t.shared.up.store(false, Ordering::Relaxed);
}

/// A capture thread's state across handles.
struct Thread {
    cfg: InterfaceConfig,
    stop: Arc<AtomicBool>,
    shared: Arc<CaptureShared>,
    link: LinkReport,
    /// When the stop request was first seen.
    stopping: Option<Instant>,
    /// pcap's statistics are cumulative per handle: totals of closed handles.
    base_kernel: u64,
    base_if: u64,
}

impl Thread {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Wait out the back-off (cut short when the link comes back up), then
    /// try to open the interface again.
    fn reopen(&mut self, backoff: &mut Duration) -> Option<pcap::Capture<pcap::Active>> {
        let until = Instant::now() + *backoff;
        let mut was_up = self.link.check(&self.shared) == LinkState::Up;
        while Instant::now() < until && !self.stopped() {
            std::thread::sleep(Duration::from_millis(100));
            let up = self.link.check(&self.shared) == LinkState::Up;
            if up && !was_up {
                break;
            }
            was_up = up;
        }
        if self.stopped() {
            return None;
        }
        match open(&self.cfg) {
            Ok(c) => {
                self.link.set_handle(true, &self.shared);
                *backoff = BACKOFF_MIN;
                Some(c)
            }
            Err(e) => {
                tracing::debug!("interface {:?}: reopen failed: {e:#}", self.cfg.name);
                *backoff = (*backoff * 2).min(BACKOFF_MAX);
                None
            }
        }
    }

    /// Read from `c` until a stop request has drained or the handle fails.
    /// Returns whether the handle was lost.
    fn read_until_lost(
        &mut self,
        c: &mut pcap::Capture<pcap::Active>,
        sink: &mut impl PacketSink,
    ) -> bool {
        let dlt = LinkType::from_dlt(c.get_datalink().0);
        let mut last_tick = Instant::now();
        loop {
            if self.stopped()
                && self.stopping.get_or_insert_with(Instant::now).elapsed() >= DRAIN_MAX
            {
                return false;
            }
            match c.next_packet() {
                Ok(p) => {
                    let ts = p.header.ts;
                    self.shared.packets.fetch_add(1, Ordering::Relaxed);
                    sink.packet(&RawPacket {
                        ts_ns: ts.tv_sec * 1_000_000_000 + ts.tv_usec * 1_000,
                        orig_len: p.header.len,
                        link: dlt,
                        data: p.data,
                    });
                }
                Err(pcap::Error::TimeoutExpired) => {
                    // Nothing buffered: hand partial batches over, then wait.
                    sink.flush();
                    if self.stopping.is_some_and(|t| t.elapsed() >= DRAIN_MIN) {
                        return false;
                    }
                    wait_readable(c);
                }
                Err(e) => {
                    self.shared.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(
                        "interface {:?}: capture failed ({e}); retrying with back-off",
                        self.cfg.name
                    );
                    self.link.set_handle(false, &self.shared);
                    return !self.stopped();
                }
            }
            if last_tick.elapsed() >= Duration::from_secs(1) {
                publish_drops(c, &self.shared, self.base_kernel, self.base_if);
                self.link.check(&self.shared);
                last_tick = Instant::now();
            }
        }
    }

    /// Publish the handle's final drop counts and keep them as the base for
    /// the next handle.
    fn carry_drops(&mut self, c: &mut pcap::Capture<pcap::Active>) {
        publish_drops(c, &self.shared, self.base_kernel, self.base_if);
        self.base_kernel = self.shared.kernel_drops.load(Ordering::Relaxed);
        self.base_if = self.shared.interface_drops.load(Ordering::Relaxed);
    }
}
