//! The types every stage shares, and nothing else: a captured frame
//! ([`RawPacket`], [`LinkType`]), the flow it belongs to ([`FlowKey`]), and
//! why input could not be used ([`Reason`], counted in [`Problems`]).
//!
//! This is the bottom layer: it imports no other module of the crate, so
//! capture, decode, the parsers and detection can all speak of a packet
//! without depending on each other.

use std::fmt;
use std::net::IpAddr;

/// Link-layer framing of a packet, from the pcap/pcapng link type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkType {
    Ethernet,
    /// Bare IPv4 or IPv6, version taken from the first nibble.
    RawIp,
    Ipv4,
    Ipv6,
    LinuxSll,
    LinuxSll2,
    /// BSD loopback: 4-byte address family in host or network order.
    Null,
    Other(u32),
}

impl LinkType {
    /// Map a DLT/LINKTYPE number to our framing.
    pub fn from_dlt(dlt: i32) -> LinkType {
        match dlt {
            1 => LinkType::Ethernet,
            12 | 14 | 101 => LinkType::RawIp,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            113 => LinkType::LinuxSll,
            276 => LinkType::LinuxSll2,
            0 | 108 => LinkType::Null,
            n => LinkType::Other(n as u32),
        }
    }
}

/// One captured frame, borrowed from the source's buffer.
#[derive(Clone, Copy, Debug)]
pub struct RawPacket<'a> {
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts_ns: i64,
    /// Length on the wire; larger than `data.len()` when the snaplen cut it.
    pub orig_len: u32,
    pub link: LinkType,
    pub data: &'a [u8],
}

impl RawPacket<'_> {
    pub fn is_snaplen_cut(&self) -> bool {
        (self.orig_len as usize) > self.data.len()
    }
}

/// Ask the CPU to start loading the cache line at `p`: for the few loads
/// on the packet path that miss the cache and can be known a little early.
#[inline(always)]
pub fn prefetch_read<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetch is a hint; it never faults, whatever the address.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// A vector of `n` copies of `x` whose memory the kernel is asked to back
/// with huge pages (Linux `MADV_HUGEPAGE`; elsewhere, or when refused, an
/// ordinary vector): for tables probed at random on the packet path, where
/// 4 KiB pages cost a TLB miss per probe.
pub fn huge_vec<T: Clone>(n: usize, x: T) -> Vec<T> {
    let mut v: Vec<T> = Vec::with_capacity(n);
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = v.as_ptr() as usize;
        let end = start + n * std::mem::size_of::<T>();
        let (a, b) = (start.next_multiple_of(HUGE), end & !(HUGE - 1));
        if b > a {
            // SAFETY: advice on whole pages inside the vector's own
            // allocation; it changes how they are backed, never their
            // contents, and failure leaves them as they were.
            unsafe {
                libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_HUGEPAGE);
            }
        }
    }
    v.resize(n, x);
    v
}

/// The flow a packet belongs to, as seen on the wire (not normalised).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub src: IpAddr,
    pub src_port: u16,
    pub dst: IpAddr,
    pub dst_port: u16,
    pub proto: u8,
}

/// Why a packet, or part of one, could not be used. Every early return on the
/// input side names one of these, so nothing is dropped without a count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Reason {
    /// The capture record was cut by the snapshot length (caplen < origlen).
    SnaplenCut,
    /// Link-layer header shorter than its fixed size.
    LinkTruncated,
    /// A link type this decoder does not know.
    LinkTypeUnsupported,
    /// An EtherType that carries no IP (ARP, LLDP, STP, ...). Counted, not an error.
    NonIp,
    /// PPPoE header broken or PPP protocol not IPv4/IPv6.
    PppoeMalformed,
    /// More VLAN tags than we are willing to strip.
    VlanTooDeep,
    /// A UDP datagram to the VXLAN port (4789) whose 8-byte header is short
    /// or lacks the I flag. The datagram is then used as plain UDP.
    VxlanMalformed,
    /// A UDP datagram to the Geneve port (6081) whose header is short, not
    /// version 0, or whose options run past the datagram. Used as plain UDP.
    GeneveMalformed,
    /// A GRE header that is short, of a version other than 0 or 1 (PPTP), or
    /// has routing or recursion bits set. The packet is used as plain GRE.
    GreMalformed,
    /// An ERSPAN header (type II or III, inside GRE) that is short or of the
    /// wrong version. The packet is used as plain GRE.
    ErspanMalformed,
    /// More tunnels nested in one another than we are willing to strip.
    TunnelTooDeep,
    /// IPv4/IPv6 header missing, short or inconsistent.
    IpMalformed,
    /// IP payload shorter than the IP header's length field says.
    IpTruncated,
    /// TCP header short or with a bad data offset.
    TcpMalformed,
    /// UDP header short or with an impossible length.
    UdpMalformed,
    /// DNS message that hickory-proto refused before the question was read.
    DnsMalformed,
    /// DNS message whose answer section broke off after a usable question.
    DnsAnswersMalformed,
    /// DNS over TCP segment that does not hold a whole length-prefixed message.
    DnsTcpPartial,
    /// A TLS handshake record that claims to be a ClientHello but is malformed.
    TlsMalformed,
    /// A ClientHello cut before its extensions (needs reassembly, see issue 6),
    /// or one in QUIC CRYPTO frames whose server name lies past the bytes
    /// `quic` keeps per connection.
    TlsTruncated,
    /// Something that starts like an HTTP request but does not parse.
    HttpMalformed,
    /// HTTP request headers that do not end inside this segment.
    HttpTruncated,
    /// A DHCP, NetBIOS name service or mDNS message on its port that is cut
    /// short or inconsistent (lengths, option list, name encoding).
    HostNameMalformed,
    /// A well-formed host name announcement whose name is unsafe to show
    /// (empty, over 253 bytes, control characters, not UTF-8). The packet was
    /// understood, so this is not counted as lost input.
    HostNameRejected,
    /// A QUIC v1/v2 Initial with a broken header, varint, length or frame.
    QuicMalformed,
    /// A QUIC Initial whose AEAD tag does not match the keys its connection
    /// ID gives. Not counted as loss: anyone can derive those keys, so this
    /// means the datagram is no client Initial we can read (a later Initial
    /// under a server-chosen connection ID, or not QUIC at all).
    QuicDecryptFailed,
}

impl Reason {
    pub const ALL: [Reason; 26] = [
        Reason::SnaplenCut,
        Reason::LinkTruncated,
        Reason::LinkTypeUnsupported,
        Reason::NonIp,
        Reason::PppoeMalformed,
        Reason::VlanTooDeep,
        Reason::VxlanMalformed,
        Reason::GeneveMalformed,
        Reason::GreMalformed,
        Reason::ErspanMalformed,
        Reason::TunnelTooDeep,
        Reason::IpMalformed,
        Reason::IpTruncated,
        Reason::TcpMalformed,
        Reason::UdpMalformed,
        Reason::DnsMalformed,
        Reason::DnsAnswersMalformed,
        Reason::DnsTcpPartial,
        Reason::TlsMalformed,
        Reason::TlsTruncated,
        Reason::HttpMalformed,
        Reason::HttpTruncated,
        Reason::HostNameMalformed,
        Reason::HostNameRejected,
        Reason::QuicMalformed,
        Reason::QuicDecryptFailed,
    ];

    /// Stable snake_case name, used in logs, `--stats` and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::SnaplenCut => "snaplen_cut",
            Reason::LinkTruncated => "link_truncated",
            Reason::LinkTypeUnsupported => "linktype_unsupported",
            Reason::NonIp => "non_ip",
            Reason::PppoeMalformed => "pppoe_malformed",
            Reason::VlanTooDeep => "vlan_too_deep",
            Reason::VxlanMalformed => "vxlan_malformed",
            Reason::GeneveMalformed => "geneve_malformed",
            Reason::GreMalformed => "gre_malformed",
            Reason::ErspanMalformed => "erspan_malformed",
            Reason::TunnelTooDeep => "tunnel_too_deep",
            Reason::IpMalformed => "ip_malformed",
            Reason::IpTruncated => "ip_truncated",
            Reason::TcpMalformed => "tcp_malformed",
            Reason::UdpMalformed => "udp_malformed",
            Reason::DnsMalformed => "dns_malformed",
            Reason::DnsAnswersMalformed => "dns_answers_malformed",
            Reason::DnsTcpPartial => "dns_tcp_partial",
            Reason::TlsMalformed => "tls_malformed",
            Reason::TlsTruncated => "tls_truncated",
            Reason::HttpMalformed => "http_malformed",
            Reason::HttpTruncated => "http_truncated",
            Reason::HostNameMalformed => "host_name_malformed",
            Reason::HostNameRejected => "host_name_rejected",
            Reason::QuicMalformed => "quic_malformed",
            Reason::QuicDecryptFailed => "quic_decrypt_failed",
        }
    }

    /// Whether the reason means input was lost (as opposed to merely
    /// uninteresting traffic such as ARP). Lost input sets the replay exit code.
    pub fn is_loss(self) -> bool {
        !matches!(
            self,
            Reason::NonIp | Reason::HostNameRejected | Reason::QuicDecryptFailed
        )
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Counts of input that could not be used, by [`Reason`]. Plain integers:
/// the stage that meets a problem bumps its own copy without locking.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Problems {
    counts: [u64; Reason::ALL.len()],
    /// Sum of `counts`, so a caller can tell cheaply whether a packet added one.
    events: u64,
}

impl Problems {
    #[inline]
    pub fn count(&mut self, reason: Reason) {
        self.counts[reason as usize] += 1;
        self.events += 1;
    }

    pub fn of(&self, reason: Reason) -> u64 {
        self.counts[reason as usize]
    }

    /// Problems of any reason so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Packets or parts of packets that were lost to bad input.
    pub fn lost(&self) -> u64 {
        Reason::ALL
            .iter()
            .filter(|r| r.is_loss())
            .map(|r| self.of(*r))
            .sum()
    }

    pub fn merge(&mut self, o: &Problems) {
        for (a, b) in self.counts.iter_mut().zip(o.counts.iter()) {
            *a += b;
        }
        self.events += o.events;
    }
}

/// Panic injection for the containment tests, compiled only with the
/// fixture kit: a packet or feed file holding [`inject::MARK`] panics where
/// it is checked, but only while a test has armed it (a fuzzer cannot).
#[cfg(feature = "testkit")]
pub mod inject {
    use std::sync::atomic::{AtomicBool, Ordering};

    pub const MARK: &[u8] = b"gatewatch-injected-panic";
    static ARMED: AtomicBool = AtomicBool::new(false);

    /// Arm (or disarm) the injected panics, for the whole process.
    pub fn arm(on: bool) {
        ARMED.store(on, Ordering::SeqCst);
    }

    /// Panic when armed and `data` holds [`MARK`].
    #[inline]
    pub fn check(data: &[u8]) {
        if ARMED.load(Ordering::Relaxed) && data.windows(MARK.len()).any(|w| w == MARK) {
            panic!("injected panic (containment test)");
        }
    }
}

/// Panics caught outside the workers, which count theirs per engine:
/// while parsing a feed file (the feed is refused) and while answering an
/// HTTP request (answered 500). Read by the metrics.
pub mod panics {
    use std::sync::atomic::AtomicU64;

    pub static FEEDS: AtomicU64 = AtomicU64::new(0);
    pub static HTTP: AtomicU64 = AtomicU64::new(0);
}
