//! Link state of a capture interface, and how a capture thread reports it.
//!
//! The state is read with `SIOCGIFFLAGS` on a datagram socket rather than
//! from `/sys/class/net/IFACE/{operstate,flags,carrier}`:
//!
//! - the ioctl answers for the network namespace the process runs in, while
//!   sysfs shows the namespace of whoever mounted it (a container or a
//!   service with its own namespace can see another machine's `eth1` there);
//! - the kernel derives `IFF_RUNNING` for the ioctl from the operational
//!   state (`dev_get_flags`): set for operstate "up" and also "unknown" (lo,
//!   tun and drivers that never report carrier), clear for "down",
//!   "lowerlayerdown" (a veth whose peer is down), "dormant", "notpresent".
//!   sysfs `flags` holds no `IFF_RUNNING`, and operstate alone would need the
//!   "unknown" special case;
//! - one system call, no parsing, no file descriptors per check.
//!
//! So: up = `IFF_UP` and `IFF_RUNNING`; `IFF_UP` alone = no carrier; neither
//! = set administratively down; `ENODEV` = the interface is gone.

use super::CaptureShared;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::Ordering;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// `IFF_UP` and `IFF_RUNNING`: capturing sees traffic.
    Up,
    /// `IFF_UP` without `IFF_RUNNING`: cable out, mirror port off, veth peer down.
    NoCarrier,
    /// Not `IFF_UP` (`ip link set IFACE down`).
    AdminDown,
    /// No such interface in this network namespace.
    Gone,
}

impl LinkState {
    /// From the `SIOCGIFFLAGS` flags.
    pub fn from_flags(flags: i32) -> LinkState {
        if flags & libc::IFF_UP == 0 {
            LinkState::AdminDown
        } else if flags & libc::IFF_RUNNING == 0 {
            LinkState::NoCarrier
        } else {
            LinkState::Up
        }
    }

    /// What is wrong, for the log.
    pub fn describe(self) -> &'static str {
        match self {
            LinkState::Up => "link up",
            LinkState::NoCarrier => "link down (no carrier)",
            LinkState::AdminDown => "set administratively down",
            LinkState::Gone => "gone (no such interface)",
        }
    }
}

/// A socket to ask the kernel about interfaces with `SIOCGIFFLAGS`.
pub struct LinkProbe {
    fd: OwnedFd,
}

impl LinkProbe {
    /// An `AF_INET` datagram socket (any family works for `SIOCGIFFLAGS`; an
    /// `AF_UNIX` one is the fallback where `AF_INET` is not allowed).
    pub fn new() -> std::io::Result<LinkProbe> {
        for family in [libc::AF_INET, libc::AF_UNIX] {
            // SAFETY: plain socket(2); the descriptor is owned below.
            let fd = unsafe { libc::socket(family, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
            if fd >= 0 {
                // SAFETY: `fd` is a fresh descriptor nobody else owns.
                return Ok(LinkProbe {
                    fd: unsafe { OwnedFd::from_raw_fd(fd) },
                });
            }
        }
        Err(std::io::Error::last_os_error())
    }

    /// The state of interface `name`. A name the kernel could not hold
    /// (empty, 16 bytes or more, or with a NUL) is `Gone`: the ioctl would
    /// silently truncate it and answer for another interface.
    pub fn state(&self, name: &str) -> std::io::Result<LinkState> {
        let bytes = name.as_bytes();
        if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
            return Ok(LinkState::Gone);
        }
        // SAFETY: ifreq is plain old data; all-zero is a valid value.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        for (d, s) in ifr.ifr_name.iter_mut().zip(bytes) {
            *d = *s as libc::c_char;
        }
        // SAFETY: SIOCGIFFLAGS reads ifr_name and writes ifr_flags of the
        // ifreq we own, for the duration of the call.
        let rc = unsafe { libc::ioctl(self.fd.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut ifr) };
        if rc < 0 {
            let e = std::io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ENODEV) | Some(libc::ENXIO) => Ok(LinkState::Gone),
                _ => Err(e),
            };
        }
        // SAFETY: the kernel filled in ifru_flags.
        let flags = unsafe { ifr.ifr_ifru.ifru_flags };
        Ok(LinkState::from_flags(i32::from(flags) & 0xffff))
    }
}

/// What a capture thread reports for its interface: `gatewatch_capture_up`
/// is 1 only while it has a working capture handle *and* the link is up.
/// Every loss is counted in `gatewatch_capture_errors_total` and logged once;
/// the way back is logged as "capture resumed".
pub struct LinkReport {
    name: String,
    probe: Option<LinkProbe>,
    link: LinkState,
    handle_ok: bool,
    /// Whether a loss has been reported and not yet a resumption.
    reported_down: bool,
    /// No check made yet (the link state at start is reported differently).
    first: bool,
}

impl LinkReport {
    pub fn new(name: &str) -> LinkReport {
        let probe = match LinkProbe::new() {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::warn!(
                    "interface {name:?}: cannot watch the link state ({e}); a link that goes down \
                     while the capture handle still works will not be reported"
                );
                None
            }
        };
        LinkReport {
            name: name.to_string(),
            probe,
            link: LinkState::Up,
            handle_ok: true,
            reported_down: false,
            first: true,
        }
    }

    /// Read the link state now and publish. At start, a link that is already
    /// down is reported the same way as one that goes down later.
    pub fn check(&mut self, shared: &CaptureShared) -> LinkState {
        let Some(p) = &self.probe else {
            self.publish(shared);
            return self.link;
        };
        match p.state(&self.name) {
            Ok(s) => {
                if s != LinkState::Up && self.link == LinkState::Up && self.handle_ok {
                    shared.errors.fetch_add(1, Ordering::Relaxed);
                    if self.first && s == LinkState::NoCarrier {
                        tracing::warn!(
                            "interface {:?} is up but has no carrier (NO-CARRIER): capturing \
                             anyway, but reporting it as down (gatewatch_capture_up 0, /healthz \
                             503) until the link comes up; check the cable and the mirror port",
                            self.name
                        );
                    } else {
                        tracing::warn!(
                            "interface {:?}: {}; reporting capture as down \
                             (gatewatch_capture_up 0, /healthz 503) until the link is up again",
                            self.name,
                            s.describe()
                        );
                    }
                    self.reported_down = true;
                } else if s != self.link {
                    tracing::debug!("interface {:?}: {}", self.name, s.describe());
                }
                self.link = s;
            }
            Err(e) => tracing::debug!("interface {:?}: link state unknown: {e}", self.name),
        }
        self.first = false;
        self.publish(shared);
        self.link
    }

    /// The capture handle failed (already logged and counted by the caller)
    /// or was reopened.
    pub fn set_handle(&mut self, ok: bool, shared: &CaptureShared) {
        self.handle_ok = ok;
        if !ok {
            self.reported_down = true;
        }
        self.publish_as(shared, "reopened");
    }

    fn publish(&mut self, shared: &CaptureShared) {
        self.publish_as(shared, "link up");
    }

    /// Set `up`; `why` says what brought a capture reported down back up.
    fn publish_as(&mut self, shared: &CaptureShared, why: &str) {
        let up = self.handle_ok && self.link == LinkState::Up;
        if up && self.reported_down {
            tracing::info!("interface {:?}: {why}, capture resumed", self.name);
            self.reported_down = false;
        }
        shared.up.store(up, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_to_state() {
        let (up, run) = (libc::IFF_UP, libc::IFF_RUNNING);
        assert_eq!(LinkState::from_flags(up | run), LinkState::Up);
        assert_eq!(LinkState::from_flags(up), LinkState::NoCarrier);
        assert_eq!(LinkState::from_flags(0), LinkState::AdminDown);
        // RUNNING without UP does not happen, but is not "up" either.
        assert_eq!(LinkState::from_flags(run), LinkState::AdminDown);
    }

    #[test]
    fn loopback_with_operstate_unknown_is_up() {
        // lo reports operstate "unknown"; IFF_RUNNING is still set for it.
        let p = LinkProbe::new().unwrap();
        if std::fs::read_to_string("/sys/class/net/lo/operstate")
            .is_ok_and(|s| s.trim() == "unknown")
        {
            assert_eq!(p.state("lo").unwrap(), LinkState::Up);
        }
        assert_eq!(p.state("gw-no-such0").unwrap(), LinkState::Gone);
        assert_eq!(
            p.state("a-name-far-too-long-for-linux").unwrap(),
            LinkState::Gone
        );
        assert_eq!(p.state("").unwrap(), LinkState::Gone);
    }

    #[test]
    fn loss_is_counted_and_logged_once() {
        let shared = CaptureShared::default();
        let mut r = LinkReport::new("gw-no-such0");
        assert_eq!(r.check(&shared), LinkState::Gone);
        assert!(!shared.up.load(Ordering::Relaxed));
        assert_eq!(r.check(&shared), LinkState::Gone);
        assert_eq!(shared.errors.load(Ordering::Relaxed), 1);
    }
}
