//! QUIC v1/v2 Initial decryption: the TLS server name (SNI) of QUIC
//! connections, read from the datagrams a client sends to UDP port 443.
//!
//! A QUIC client opens a connection with Initial packets whose CRYPTO frames
//! carry a TLS ClientHello. They are encrypted, but with keys anyone can derive
//! from the connection ID in the clear (RFC 9001 §5.2, RFC 9369 §3.3), so a
//! sensor can read the server name of HTTP/3 traffic as it does for TLS over
//! TCP ([`crate::protocols::tls`]).
//!
//! A ClientHello may span several Initials and datagrams (Chrome's, with its
//! post-quantum key share, does not fit one), and CRYPTO frames come in any
//! order (Chrome shuffles them on purpose), so [`QuicAssembler`] keeps the
//! start of each connection's CRYPTO stream until the server name can be read,
//! then reports it once per connection.
//!
//! Bounds: at most [`MAX_PENDING`] unfinished connections holding at most
//! [`CRYPTO_MAX`] bytes each (the oldest evicted, counted), each forgotten
//! [`EXPIRY_NS`] of packet time after its first Initial, and at most
//! [`MAX_DONE`] marks of reported connections. Only Initials that decrypt
//! create state, and datagrams that are not long-header packets of v1 or v2
//! return before any copy or allocation. No input panics (proptests in
//! `tests.rs` and `tests/quic.rs`).

mod frames;
mod keys;
mod packet;
#[cfg(any(test, feature = "testkit"))]
pub mod seal;
#[cfg(test)]
mod tests;

pub use frames::CRYPTO_MAX;
pub use packet::Version;

/// UDP port of HTTP/3: client Initials to it are read.
pub const PORT: u16 = 443;

use crate::packet::Reason;
use crate::protocols::tls::{self, ClientHello};
use frames::CryptoBuf;
use keys::{Keys, OpenError};
use packet::{Long, MAX_CID, Next};
use rustc_hash::FxHashMap;
use std::ops::Range;

/// Unfinished connections kept at once; a sensor sees few handshakes still
/// short of their server name at any moment, a flood only evicts.
pub const MAX_PENDING: usize = 1024;
/// Reported connections remembered, so that their later Initials (ACKs,
/// retransmissions) are not reported or decrypted again.
pub const MAX_DONE: usize = 4 * MAX_PENDING;
/// A handshake takes a few round trips; after this much packet time the
/// rest of a ClientHello is not coming, and a finished connection has no
/// Initials left to send.
pub const EXPIRY_NS: i64 = 10_000_000_000;
/// Cleared CRYPTO buffers kept for reuse, so steady traffic does not allocate.
const POOL: usize = 64;

/// What one datagram told about its connection's ClientHello.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// No long-header Initial of QUIC v1 or v2 (short header, version
    /// negotiation, another version, or not QUIC).
    NotQuic,
    /// The ClientHello could be read: its server name, if it has one.
    Sni(Option<&'a [u8]>),
    /// An Initial was read; the ClientHello needs more CRYPTO data.
    Pending,
    /// An Initial of a connection already reported (server name or failure).
    Repeat,
    /// The datagram or the connection's ClientHello is unusable.
    Failed(Reason),
}

/// A connection whose ClientHello is not complete yet.
struct Conn {
    first_ns: i64,
    /// The client's original DCID: its Initial keys stay those of this ID
    /// even after the client moves to the server's chosen one.
    dcid: [u8; MAX_CID],
    dcid_len: usize,
    keys: Keys,
    buf: Box<CryptoBuf>,
}

/// Reassembles ClientHellos from client Initials, one connection per caller
/// key. Not thread-safe by design: each worker owns one, as with `Stats`.
pub struct QuicAssembler {
    pending: FxHashMap<u64, Conn>,
    /// Packet time at which each connection was reported.
    done: FxHashMap<u64, i64>,
    pool: Vec<Box<CryptoBuf>>,
    /// The last reported ClientHello: [`Outcome::Sni`] borrows from it.
    reported: Option<Box<CryptoBuf>>,
    /// Decryption happens in place, on a copy of the packet.
    scratch: Vec<u8>,
    evicted: u64,
    expired: u64,
}

impl Default for QuicAssembler {
    fn default() -> Self {
        QuicAssembler::new()
    }
}

impl QuicAssembler {
    pub fn new() -> Self {
        QuicAssembler {
            pending: FxHashMap::default(),
            done: FxHashMap::default(),
            pool: Vec::new(),
            reported: None,
            scratch: Vec::new(),
            evicted: 0,
            expired: 0,
        }
    }

    /// Read one UDP payload a client sent to the server. `key` names the
    /// connection: the caller hashes client and server address and port
    /// (the DCID is tracked here). `ts_ns` is packet time, for expiry.
    ///
    /// One connection, one report: after `Sni`, or a `Failed` for its
    /// ClientHello, the key's Initials return `Repeat` for [`EXPIRY_NS`]
    /// without being decrypted, since the later ones (ACKs under the server's
    /// connection ID) could not be; a new connection from the same client
    /// port within that time goes unread.
    pub fn offer(&mut self, key: u64, ts_ns: i64, datagram: &[u8]) -> Outcome<'_> {
        let (first, mut rest) = match first_initial(datagram) {
            Ok(Some(found)) => found,
            Ok(None) => return Outcome::NotQuic,
            Err(r) => return Outcome::Failed(r),
        };
        if let Some(&at) = self.done.get(&key) {
            if fresh(at, ts_ns) {
                return Outcome::Repeat;
            }
            self.done.remove(&key);
        }
        let mut old = match self.pending.remove(&key) {
            Some(c) if fresh(c.first_ns, ts_ns) => Some(c),
            Some(c) => {
                self.expired += 1;
                self.recycle(c.buf);
                None
            }
            None => None,
        };
        let (mut conn, plain) = match self.open_first(&mut old, &first, ts_ns) {
            Ok(opened) => opened,
            Err(e) => {
                if let Some(c) = old {
                    self.pending.insert(key, c);
                }
                return Outcome::Failed(Reason::from(e));
            }
        };
        let mut walked = frames::walk(&self.scratch[plain], |at, data| conn.buf.insert(at, data));
        // Coalesced Initials must share the first one's DCID (RFC 9000 §12.2).
        while walked.is_ok()
            && let Next::Packet(p, after) = packet::next(rest)
        {
            rest = after;
            if p.initial
                && p.dcid == first.dcid
                && let Ok(plain) = open(&mut self.scratch, &conn.keys, &p)
            {
                walked = frames::walk(&self.scratch[plain], |at, data| conn.buf.insert(at, data));
            }
        }
        let verdict = match walked {
            Ok(()) => judge(&conn.buf),
            Err(frames::Malformed) => Hello::Bad(Reason::QuicMalformed),
        };
        match verdict {
            Hello::More if conn.buf.is_empty() => {
                // Nothing to keep (an ACK-only Initial of a connection not seen
                // from its start): holding a buffer for it would only cost.
                self.recycle(conn.buf);
                Outcome::Pending
            }
            Hello::More => {
                if self.pending.len() >= MAX_PENDING {
                    self.evict_oldest(ts_ns);
                }
                self.pending.insert(key, conn);
                Outcome::Pending
            }
            Hello::Bad(reason) => {
                self.mark_done(key, ts_ns);
                self.recycle(conn.buf);
                Outcome::Failed(reason)
            }
            Hello::Sni(sni) => {
                self.mark_done(key, ts_ns);
                if let Some(old) = self.reported.take() {
                    self.recycle(old);
                }
                let buf: &CryptoBuf = self.reported.insert(conn.buf);
                Outcome::Sni(sni.map(move |r| &buf.bytes()[r]))
            }
        }
    }

    /// Unfinished connections dropped to make room for new ones.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Unfinished connections dropped after [`EXPIRY_NS`] without the rest
    /// of their ClientHello.
    pub fn expired(&self) -> u64 {
        self.expired
    }

    /// Unfinished connections held now.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Decrypt the datagram's first Initial into `scratch` with the keys of
    /// the connection it belongs to: those of `old` when it is a later packet
    /// (even under another DCID), else those of its own DCID (a first Initial,
    /// or a client starting over after a Retry). Returns the connection and
    /// where the frames lie; on failure `old` is left as it was.
    fn open_first(
        &mut self,
        old: &mut Option<Conn>,
        p: &Long<'_>,
        ts_ns: i64,
    ) -> Result<(Conn, Range<usize>), OpenError> {
        if let Some(c) = old.take() {
            match open(&mut self.scratch, &c.keys, p) {
                Ok(plain) => return Ok((c, plain)),
                Err(OpenError::Tag) if &c.dcid[..c.dcid_len] != p.dcid => *old = Some(c),
                Err(e) => {
                    *old = Some(c);
                    return Err(e);
                }
            }
        }
        let keys = Keys::client_initial(p.version, p.dcid).ok_or(OpenError::Tag)?;
        let plain = open(&mut self.scratch, &keys, p)?;
        let buf = match old.take() {
            Some(c) => {
                let mut buf = c.buf;
                buf.clear();
                buf
            }
            None => self.pool.pop().unwrap_or_else(CryptoBuf::new),
        };
        let mut dcid = [0; MAX_CID];
        dcid[..p.dcid.len()].copy_from_slice(p.dcid);
        let conn = Conn {
            first_ns: ts_ns,
            dcid,
            dcid_len: p.dcid.len(),
            keys,
            buf,
        };
        Ok((conn, plain))
    }

    fn recycle(&mut self, mut buf: Box<CryptoBuf>) {
        if self.pool.len() < POOL {
            buf.clear();
            self.pool.push(buf);
        }
    }

    /// Drop the connection seen first; an expired one counts as expired.
    fn evict_oldest(&mut self, ts_ns: i64) {
        let Some((&key, c)) = self.pending.iter().min_by_key(|(_, c)| c.first_ns) else {
            return;
        };
        if fresh(c.first_ns, ts_ns) {
            self.evicted += 1;
        } else {
            self.expired += 1;
        }
        if let Some(c) = self.pending.remove(&key) {
            self.recycle(c.buf);
        }
    }

    /// Losing marks early can only repeat a report (or count a later ACK
    /// Initial as undecryptable), never lose one, so a full table is simply
    /// emptied when expiry does not make room.
    fn mark_done(&mut self, key: u64, ts_ns: i64) {
        if self.done.len() >= MAX_DONE {
            self.done.retain(|_, at| fresh(*at, ts_ns));
            if self.done.len() >= MAX_DONE {
                self.done.clear();
            }
        }
        self.done.insert(key, ts_ns);
    }
}

/// Whether something stamped `at` is still live at `now`. Time running
/// backwards (files replayed out of order) keeps it live.
fn fresh(at: i64, now: i64) -> bool {
    now.saturating_sub(at) < EXPIRY_NS
}

impl From<OpenError> for Reason {
    fn from(e: OpenError) -> Reason {
        match e {
            OpenError::Malformed => Reason::QuicMalformed,
            OpenError::Tag => Reason::QuicDecryptFailed,
        }
    }
}

/// The first Initial of a datagram and what follows it. Clients put it first,
/// but 0-RTT or Handshake packets before it are skipped by their length.
fn first_initial(mut d: &[u8]) -> Result<Option<(Long<'_>, &[u8])>, Reason> {
    loop {
        match packet::next(d) {
            Next::Packet(p, rest) if p.initial => return Ok(Some((p, rest))),
            Next::Packet(_, rest) => d = rest,
            Next::End => return Ok(None),
            Next::Malformed => return Err(Reason::QuicMalformed),
        }
    }
}

/// Copy `p` into `scratch` and decrypt it there; returns where the frames are.
fn open(scratch: &mut Vec<u8>, keys: &Keys, p: &Long<'_>) -> Result<Range<usize>, OpenError> {
    scratch.clear();
    scratch.extend_from_slice(p.bytes);
    keys.open(p, scratch)
}

/// Where a connection's ClientHello stands.
enum Hello {
    More,
    /// Complete enough: the server name's place in the CRYPTO buffer.
    Sni(Option<Range<usize>>),
    Bad(Reason),
}

/// Read the ClientHello from the gap-free start of the CRYPTO stream. The
/// server name is reported as soon as it is read, even with the message's
/// tail still missing.
fn judge(buf: &CryptoBuf) -> Hello {
    let have = buf.bytes();
    let &[kind, a, b, c, ..] = have else {
        return Hello::More;
    };
    if kind != 1 {
        return Hello::Bad(Reason::TlsMalformed); // the client speaks first
    }
    let total = 4 + ((usize::from(a) << 16) | (usize::from(b) << 8) | usize::from(c));
    let msg = &have[..have.len().min(total)];
    match tls::client_hello_message(msg) {
        ClientHello::Hello { sni } => Hello::Sni(sni.map(|s| {
            // `s` borrows from `msg`, which starts at the buffer's start.
            let at = s.as_ptr() as usize - msg.as_ptr() as usize;
            at..at + s.len()
        })),
        // Ran out of bytes although the whole message is there.
        ClientHello::Truncated if msg.len() == total => Hello::Bad(Reason::TlsMalformed),
        ClientHello::Truncated if have.len() == CRYPTO_MAX => Hello::Bad(Reason::TlsTruncated),
        ClientHello::Truncated => Hello::More,
        ClientHello::Malformed | ClientHello::NotTls => Hello::Bad(Reason::TlsMalformed),
    }
}
