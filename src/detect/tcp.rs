//! TCP in the engine: every segment goes through the flow table (state,
//! totals, the flow event) and its direction's stream (ordering), and the
//! bytes that come out in order are read as TLS ClientHello, HTTP request
//! headers, or DNS messages (port 53).
//!
//! A message that does not end in its segment is kept in the stream's
//! buffer and read again when the next bytes arrive. A ClientHello alone
//! does not end inspection (issue 14, defect 9: a fake one, SSL 2.0 style
//! included, once hid the plaintext HTTP sent after it on the same
//! connection); the first TLS record that follows it from either side (the
//! server's ServerHello, the client's ChangeCipherSpec) does: from there the
//! connection is encrypted.

use super::emit::Found;
use super::engine::{Engine, HAYSTACK, Pkt};
use super::{Context, HitSource, Observation, Sink};
use crate::intel::Snapshot;
use crate::packet::Reason;
use crate::protocols::dns;
use crate::protocols::http;
use crate::protocols::tls::{self, ClientHello};
use crate::tcp::flow::{Segment, TO_CLIENT, TO_SERVER, Tracked};
use crate::tcp::stream::Verdict;

/// Largest ClientHello or request header kept while waiting for its end.
/// A ClientHello fits one TLS record (16 KiB); request headers beyond this
/// are read as they are, cut (counted as truncated).
const APP_MESSAGE_LIMIT: usize = 16 * 1024 + 5;

/// One TCP segment's payload and where it belongs.
#[derive(Clone, Copy)]
pub(super) struct TcpPayload<'a> {
    pub t: Tracked,
    pub seg: Segment,
    pub payload: &'a [u8],
    /// Port 53 on either side: DNS messages with length prefixes.
    pub dns_port: bool,
    /// Snaplen-cut: the payload is not all there.
    pub cut: bool,
}

/// What reading some bytes at a message boundary found.
pub(super) enum Read {
    /// Nothing more to read here (message handled, or not one we read).
    Used,
    /// A message starts at this offset but does not end: keep the bytes
    /// from there.
    Incomplete(usize),
    /// A TLS session under way: the connection needs no further inspection.
    Finished,
}

impl Engine {
    /// The payload of a tracked TCP segment.
    pub(super) fn on_tcp<S: Sink>(
        &mut self,
        snap: &Snapshot,
        tcp: &TcpPayload<'_>,
        p: &Pkt,
        sink: &mut S,
    ) {
        let TcpPayload {
            t,
            seg,
            payload,
            dns_port,
            cut,
        } = *tcp;
        if cut {
            // Snaplen-cut: the segment's true length is unknown, so it cannot
            // be placed in the stream. Read what was captured as a whole
            // message and let the stream re-anchor on the next segment.
            self.flows.get_mut(t.slot).streams.resync(t.dir);
            if let Read::Finished = self.on_tcp_alone(snap, payload, dns_port, p, sink) {
                self.finish_streams(t);
            }
            return;
        }
        match self.flows.segment(t, seg, payload, &mut self.stats.streams) {
            Verdict::Nothing => {}
            Verdict::Direct(bytes) => {
                let read = if dns_port {
                    self.read_dns(snap, bytes, p, sink)
                } else {
                    self.read_app(snap, bytes, false, p, sink)
                };
                match read {
                    Read::Used => {}
                    Read::Finished => self.finish_streams(t),
                    Read::Incomplete(from) => {
                        let kept = self
                            .flows
                            .get_mut(t.slot)
                            .streams
                            .keep(t.dir, &bytes[from..]);
                        if !kept && !dns_port {
                            // A segment larger than any message we wait for.
                            self.read_app(snap, bytes, true, p, sink);
                        } else if !kept {
                            self.stats.error(Reason::DnsTcpPartial);
                        }
                    }
                }
            }
            Verdict::Buffered => {
                let streams = &mut self.flows.get_mut(t.slot).streams;
                let after_gap = streams.after_gap(t.dir);
                let mut buf = streams.take(t.dir);
                if dns_port && after_gap {
                    // The message framing is lost with the gap.
                    self.stats.error(Reason::DnsTcpPartial);
                    self.flows.get_mut(t.slot).streams.done(t.dir);
                    return;
                }
                let read = if dns_port {
                    let used = self.read_dns_frames(snap, &buf, p, sink);
                    buf.drain(..used);
                    Read::Used
                } else {
                    // Past the limit the message is read as it is, cut.
                    let last = buf.len() >= APP_MESSAGE_LIMIT;
                    self.read_app(snap, &buf, last, p, sink)
                };
                match read {
                    Read::Finished => return self.finish_streams(t),
                    Read::Used if !dns_port => buf.clear(),
                    _ => {}
                }
                self.flows.get_mut(t.slot).streams.put(t.dir, buf);
            }
        }
    }

    /// A segment read on its own, without the flow table: whatever does not
    /// end inside it is counted as truncated.
    pub(super) fn on_tcp_alone<S: Sink>(
        &mut self,
        snap: &Snapshot,
        payload: &[u8],
        dns_port: bool,
        p: &Pkt,
        sink: &mut S,
    ) -> Read {
        if !dns_port {
            return self.read_app(snap, payload, true, p, sink);
        }
        if self.read_dns_frames(snap, payload, p, sink) < payload.len() {
            self.stats.error(Reason::DnsTcpPartial);
        }
        Read::Used
    }

    fn finish_streams(&mut self, t: Tracked) {
        let s = &mut self.flows.get_mut(t.slot).streams;
        s.done(TO_SERVER);
        s.done(TO_CLIENT);
    }

    /// DNS over TCP at a message boundary: every whole message is read;
    /// an unfinished one is kept.
    fn read_dns<S: Sink>(&mut self, snap: &Snapshot, bytes: &[u8], p: &Pkt, sink: &mut S) -> Read {
        let used = self.read_dns_frames(snap, bytes, p, sink);
        if used < bytes.len() {
            Read::Incomplete(used)
        } else {
            Read::Used
        }
    }

    /// Read length-prefixed DNS messages; returns the bytes consumed.
    fn read_dns_frames<S: Sink>(
        &mut self,
        snap: &Snapshot,
        bytes: &[u8],
        p: &Pkt,
        sink: &mut S,
    ) -> usize {
        let mut used = 0;
        while bytes.len() - used >= 2 {
            let len = usize::from(u16::from_be_bytes([bytes[used], bytes[used + 1]]));
            if len == 0 {
                self.stats.error(Reason::DnsMalformed);
                return bytes.len();
            }
            if bytes.len() - used < 2 + len {
                break;
            }
            let msg = &bytes[used + 2..used + 2 + len];
            used += 2 + len;
            if let Some(m) = dns::parse(msg, &mut self.stats.problems) {
                self.on_dns(snap, &m, p, sink);
            }
        }
        used
    }

    /// TLS ClientHello or HTTP request at the start of `bytes`. With `last`,
    /// no more bytes will come: an unfinished message is read as it is and
    /// counted as truncated.
    fn read_app<S: Sink>(
        &mut self,
        snap: &Snapshot,
        bytes: &[u8],
        last: bool,
        p: &Pkt,
        sink: &mut S,
    ) -> Read {
        match tls::client_hello(bytes) {
            ClientHello::NotTls if tls::is_record(bytes) => return Read::Finished,
            ClientHello::NotTls => {}
            ClientHello::Hello { sni } => {
                self.on_client_hello(snap, sni, p, sink);
                // What follows the hello in these bytes: a TLS record ends
                // the inspection, anything else is read as HTTP (one step,
                // not a loop, so a run of hellos is read one by one).
                let end = tls::hello_record_len(bytes);
                return match bytes.get(end..) {
                    Some(rest) if tls::is_record(rest) => Read::Finished,
                    Some(rest) if !rest.is_empty() => {
                        match self.read_http(snap, rest, last, p, sink) {
                            Read::Incomplete(from) => Read::Incomplete(end + from),
                            r => r,
                        }
                    }
                    _ => Read::Used,
                };
            }
            ClientHello::Truncated => {
                if bytes.len() < tls::hello_record_len(bytes) && !last {
                    return Read::Incomplete(0);
                }
                self.stats.error(Reason::TlsTruncated);
                return Read::Used;
            }
            ClientHello::Malformed => {
                self.stats.error(Reason::TlsMalformed);
                return Read::Used;
            }
        }
        if bytes.len() < 6 && bytes.first() == Some(&0x16) && !last {
            return Read::Incomplete(0); // not even a record header yet
        }
        self.read_http(snap, bytes, last, p, sink)
    }

    /// An HTTP request at the start of `bytes` (see [`Engine::read_app`]).
    fn read_http<S: Sink>(
        &mut self,
        snap: &Snapshot,
        bytes: &[u8],
        last: bool,
        p: &Pkt,
        sink: &mut S,
    ) -> Read {
        match http::request(bytes) {
            http::Parsed::NotHttp => Read::Used,
            http::Parsed::Malformed => {
                self.stats.error(Reason::HttpMalformed);
                Read::Used
            }
            http::Parsed::Request {
                complete: false, ..
            } if !last => Read::Incomplete(0),
            http::Parsed::Request { req, complete } => {
                self.on_http(snap, &req, complete, p, sink);
                Read::Used
            }
        }
    }

    fn on_client_hello<S: Sink>(
        &mut self,
        snap: &Snapshot,
        sni: Option<&[u8]>,
        p: &Pkt,
        sink: &mut S,
    ) {
        self.stats.tls_client_hellos += 1;
        let has = sni.is_some_and(|s| self.name.set_host(s));
        self.on_server_name(snap, has, HitSource::TlsSni, p, sink);
    }

    /// A ClientHello's server name, already in `self.name` when `has` (TLS
    /// over TCP or QUIC): observed, then matched and blamed on the sender.
    pub(super) fn on_server_name<S: Sink>(
        &mut self,
        snap: &Snapshot,
        has: bool,
        source: HitSource,
        p: &Pkt,
        sink: &mut S,
    ) {
        if sink.wants_observations() {
            let s = has.then(|| self.name.as_str());
            sink.observe(p.ts, &p.flow, &Observation::Tls { sni: s });
        }
        if has {
            self.match_name(snap, p.flow.src, source, p, sink, |n| {
                if source == HitSource::QuicSni {
                    Context::Quic { sni: n.into() }
                } else {
                    Context::Tls { sni: n.into() }
                }
            });
        }
    }

    fn on_http<S: Sink>(
        &mut self,
        snap: &Snapshot,
        req: &http::Request<'_>,
        complete: bool,
        p: &Pkt,
        sink: &mut S,
    ) {
        self.stats.http_requests += 1;
        if !complete {
            self.stats.error(Reason::HttpTruncated);
        }
        if sink.wants_observations() {
            sink.observe(p.ts, &p.flow, &Observation::Http(req));
        }
        let has_host = req.host.is_some_and(|h| self.name.set_host(h));
        let ctx = |host: Option<&str>| Context::Http {
            method: req.method.into(),
            hostname: host.map(Into::into),
            url: req.target.into(),
        };
        if has_host {
            // The context gets the matched (normalised) host from
            // `match_name`, only for a hit: no copy per request.
            let host_ctx = |host: &str| ctx(Some(host));
            self.match_name(snap, p.flow.src, HitSource::HttpHost, p, sink, host_ctx);
        }
        if !snap.has_patterns() {
            return;
        }
        // Haystack: normalised host, then the target without any scheme and
        // authority (absolute-form targets repeat the host).
        let host = if has_host {
            self.name.as_str().as_bytes()
        } else {
            b""
        };
        let mut target = req.target.as_bytes();
        for scheme in [&b"http://"[..], b"https://"] {
            if let Some(rest) = target.strip_prefix(scheme) {
                target = rest
                    .iter()
                    .position(|&b| b == b'/')
                    .map_or(&b""[..], |i| &rest[i..]);
            }
        }
        let n = host.len().min(HAYSTACK);
        self.hay[..n].copy_from_slice(&host[..n]);
        let m = target.len().min(HAYSTACK - n);
        self.hay[n..n + m].copy_from_slice(&target[..m]);
        if let Some(id) = snap.match_pattern(&self.hay[..n + m]) {
            let host_str = has_host.then(|| self.name.as_str().to_owned());
            let observed = String::from_utf8_lossy(&self.hay[..n + m]).into_owned();
            let found = Found {
                host: p.flow.src,
                outbound: true,
                source: HitSource::HttpUrl,
                observed: &observed,
                context: ctx(host_str.as_deref()),
            };
            self.attribute(snap, id, found, p, sink);
        }
    }
}
