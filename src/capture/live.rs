//! Live capture with libpcap (the `pcap` crate): one thread per interface.
//!
//! The capture thread only copies frames into batches and routes them by flow
//! hash (see `pipeline`); it never waits on a worker. An interface that goes
//! away is logged, counted and reopened with back-off while the other
//! interfaces keep capturing. About once a second the thread also reads the
//! link state (see `link_state`): a link set down or without carrier is
//! reported as down while the handle, which still works, is kept.

use super::link_state::{LinkProbe, LinkReport, LinkState};
use super::{LinkType, RawPacket};
use crate::config::InterfaceConfig;
use crate::metrics::CaptureShared;
use crate::pipeline::Router;
use anyhow::{Result, anyhow};
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

/// Capture until `stop`, routing every frame. `first` is the handle opened
/// (and checked) at start-up.
pub fn run(
    cfg: InterfaceConfig,
    first: pcap::Capture<pcap::Active>,
    mut router: Router,
    stop: Arc<AtomicBool>,
    shared: Arc<CaptureShared>,
) {
    let mut cap = Some(first);
    let mut link = LinkReport::new(&cfg.name);
    // The state at start is published before the thread counts as running,
    // so /healthz never says "ok" for a link that is down from the start.
    link.check(&shared);
    shared.running.store(true, Ordering::Relaxed);
    let mut backoff = BACKOFF_MIN;
    // pcap's statistics are cumulative per handle; carry totals across reopens.
    let (mut base_kernel, mut base_if) = (0u64, 0u64);
    let mut stopping: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        let Some(c) = cap.as_mut() else {
            // Reopen after a back-off, or at once when the link comes back.
            let until = Instant::now() + backoff;
            let mut was_up = link.check(&shared) == LinkState::Up;
            while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                let up = link.check(&shared) == LinkState::Up;
                if up && !was_up {
                    break;
                }
                was_up = up;
            }
            if stop.load(Ordering::Relaxed) {
                break;
            }
            match open(&cfg) {
                Ok(c) => {
                    cap = Some(c);
                    link.set_handle(true, &shared);
                    backoff = BACKOFF_MIN;
                }
                Err(e) => {
                    tracing::debug!("interface {:?}: reopen failed: {e:#}", cfg.name);
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
            continue;
        };
        let dlt = LinkType::from_dlt(c.get_datalink().0);
        let mut last_tick = Instant::now();
        loop {
            if stop.load(Ordering::Relaxed)
                && stopping.get_or_insert_with(Instant::now).elapsed() >= DRAIN_MAX
            {
                break;
            }
            match c.next_packet() {
                Ok(p) => {
                    let ts = p.header.ts;
                    shared.packets.fetch_add(1, Ordering::Relaxed);
                    router.route(&RawPacket {
                        ts_ns: ts.tv_sec * 1_000_000_000 + ts.tv_usec * 1_000,
                        orig_len: p.header.len,
                        link: dlt,
                        data: p.data,
                    });
                }
                Err(pcap::Error::TimeoutExpired) => {
                    // Nothing buffered: hand partial batches over, then wait.
                    router.flush();
                    if stopping.is_some_and(|t| t.elapsed() >= DRAIN_MIN) {
                        break;
                    }
                    wait_readable(c);
                }
                Err(e) => {
                    shared.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(
                        "interface {:?}: capture failed ({e}); retrying with back-off",
                        cfg.name
                    );
                    link.set_handle(false, &shared);
                    break;
                }
            }
            if last_tick.elapsed() >= Duration::from_secs(1) {
                publish_drops(c, &shared, base_kernel, base_if);
                link.check(&shared);
                last_tick = Instant::now();
            }
        }
        publish_drops(c, &shared, base_kernel, base_if);
        base_kernel = shared.kernel_drops.load(Ordering::Relaxed);
        base_if = shared.interface_drops.load(Ordering::Relaxed);
        if !stop.load(Ordering::Relaxed) {
            cap = None;
        } else {
            break;
        }
    }
    router.flush();
    shared.up.store(false, Ordering::Relaxed);
}
