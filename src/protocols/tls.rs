//! TLS ClientHello server-name (SNI) extraction from the start of a TCP payload.
//!
//! Written here rather than with tls-parser because a sensor sees the first
//! segment of a ClientHello, often without the rest of the record: this
//! walker reads as far as the bytes go and finds the SNI whenever it lies in
//! what was captured, where a whole-record parser refuses the message. It is
//! a bounds-checked cursor over the borrowed slice, so it neither allocates
//! nor panics (see the proptest in `tests/malformed.rs`).

/// Result of looking at the first bytes of a TCP payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientHello<'a> {
    /// The payload does not start with a TLS handshake record.
    NotTls,
    /// A ClientHello; `sni` is the first host_name entry, if any.
    Hello { sni: Option<&'a [u8]> },
    /// A ClientHello whose bytes end before the extensions were read.
    Truncated,
    /// A handshake record that claims to be a ClientHello but is inconsistent.
    Malformed,
}

struct Cur<'a> {
    b: &'a [u8],
}

impl<'a> Cur<'a> {
    fn u8(&mut self) -> Option<u8> {
        let (&v, rest) = self.b.split_first()?;
        self.b = rest;
        Some(v)
    }
    fn u16(&mut self) -> Option<u16> {
        let v = self.take(2)?;
        Some(u16::from_be_bytes([v[0], v[1]]))
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.b.len() < n {
            return None;
        }
        let (v, rest) = self.b.split_at(n);
        self.b = rest;
        Some(v)
    }
}

/// Whether `payload` starts with a TLS record header of a session under
/// way (change-cipher-spec, alert, handshake or application data, version
/// 3.x). After a ClientHello such a record, from either side, means the
/// rest of the connection is encrypted.
pub fn is_record(payload: &[u8]) -> bool {
    payload.len() >= 5 && (0x14..=0x17).contains(&payload[0]) && payload[1] == 3 && payload[2] <= 4
}

/// Bytes the ClientHello record at the start of `payload` takes (TLS record
/// or SSL 2.0 header included), as its header says: what to wait for when
/// it is cut, where what follows it starts. A payload too short to say is
/// taken whole.
pub fn hello_record_len(payload: &[u8]) -> usize {
    match payload {
        [b0, b1, ..] if b0 & 0x80 != 0 => 2 + (usize::from(b0 & 0x7f) << 8 | usize::from(*b1)),
        [_, _, _, l0, l1, ..] => 5 + usize::from(u16::from_be_bytes([*l0, *l1])),
        _ => payload.len(),
    }
}

/// Look for a ClientHello at the start of `payload`.
pub fn client_hello(payload: &[u8]) -> ClientHello<'_> {
    // SSL 2.0-compatible ClientHello (two-byte header with the top bit set,
    // message type 1, version 3.x): old clients and some malware (Glupteba)
    // still send it. It has no extensions, so no SNI.
    if payload.len() >= 5 && payload[0] & 0x80 != 0 && payload[2] == 1 && payload[3] == 3 {
        return ClientHello::Hello { sni: None };
    }
    // Record header: type 22 (handshake), version 3.x, length.
    if payload.len() < 6 || payload[0] != 0x16 || payload[1] != 3 || payload[2] > 4 {
        return ClientHello::NotTls;
    }
    // Handshake type 1 = ClientHello.
    if payload[5] != 1 {
        return ClientHello::NotTls;
    }
    let rec_len = usize::from(u16::from_be_bytes([payload[3], payload[4]]));
    if rec_len < 4 {
        return ClientHello::Malformed;
    }
    client_hello_message(&payload[5..payload.len().min(5 + rec_len)])
}

/// Look for a ClientHello handshake message (type, 3-byte length, body) at
/// the start of `msg`, without a record header: QUIC carries the handshake
/// in CRYPTO frames, not in TLS records. `msg` may end early (`Truncated`,
/// unless the server name was already read) but should hold nothing past the
/// message: a ClientHello without extensions is known by ending there.
pub fn client_hello_message(msg: &[u8]) -> ClientHello<'_> {
    match msg.first() {
        None => return ClientHello::Truncated,
        Some(&1) => {}
        Some(_) => return ClientHello::NotTls,
    }
    let mut c = Cur { b: msg };
    let parsed = (|| -> Result<Option<&[u8]>, bool> {
        // Err(true) = ran out of bytes, Err(false) = inconsistent.
        c.u8().ok_or(true)?; // handshake type
        let hs_len = c.take(3).ok_or(true)?;
        let hs_len =
            (usize::from(hs_len[0]) << 16) | (usize::from(hs_len[1]) << 8) | usize::from(hs_len[2]);
        if hs_len < 38 {
            return Err(false);
        }
        c.take(2 + 32).ok_or(true)?; // client_version, random
        let sid = usize::from(c.u8().ok_or(true)?);
        if sid > 32 {
            return Err(false);
        }
        c.take(sid).ok_or(true)?;
        let cs = usize::from(c.u16().ok_or(true)?);
        if cs % 2 != 0 {
            return Err(false);
        }
        c.take(cs).ok_or(true)?;
        let comp = usize::from(c.u8().ok_or(true)?);
        c.take(comp).ok_or(true)?;
        if c.b.is_empty() && hs_len <= msg.len().saturating_sub(4) {
            return Ok(None); // no extensions at all (SSL 3.0 style)
        }
        let ext_total = usize::from(c.u16().ok_or(true)?);
        let mut exts = Cur {
            b: &c.b[..c.b.len().min(ext_total)],
        };
        let complete = c.b.len() >= ext_total;
        while !exts.b.is_empty() {
            let (Some(ty), Some(len)) = (exts.u16(), exts.u16()) else {
                return Err(true);
            };
            let Some(body) = exts.take(usize::from(len)) else {
                return Err(true);
            };
            if ty == 0 {
                let mut s = Cur { b: body };
                let list = usize::from(s.u16().ok_or(false)?);
                let mut list = Cur {
                    b: s.take(list).ok_or(false)?,
                };
                while !list.b.is_empty() {
                    let kind = list.u8().ok_or(false)?;
                    let n = usize::from(list.u16().ok_or(false)?);
                    let name = list.take(n).ok_or(false)?;
                    if kind == 0 {
                        return if name.is_empty() {
                            Err(false)
                        } else {
                            Ok(Some(name))
                        };
                    }
                }
                return Ok(None);
            }
        }
        if complete { Ok(None) } else { Err(true) }
    })();
    match parsed {
        Ok(sni) => ClientHello::Hello { sni },
        Err(true) => ClientHello::Truncated,
        Err(false) => ClientHello::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{client_hello_record as hello, sni_ext};

    #[test]
    fn finds_sni_after_other_extensions() {
        let rec = hello(&[(10, vec![0, 2, 0, 29]), sni_ext("bad.example")]);
        assert_eq!(
            client_hello(&rec),
            ClientHello::Hello {
                sni: Some(b"bad.example")
            }
        );
    }

    #[test]
    fn no_sni_is_not_an_error() {
        let rec = hello(&[(10, vec![0, 2, 0, 29])]);
        assert_eq!(client_hello(&rec), ClientHello::Hello { sni: None });
    }

    #[test]
    fn cut_before_sni_is_truncated_cut_after_still_found() {
        let rec = hello(&[
            (10, vec![0, 2, 0, 29]),
            sni_ext("bad.example"),
            (13, vec![0; 40]),
        ]);
        assert_eq!(client_hello(&rec[..60]), ClientHello::Truncated);
        let sni_end = rec.len() - 44;
        assert_eq!(
            client_hello(&rec[..sni_end]),
            ClientHello::Hello {
                sni: Some(b"bad.example")
            }
        );
    }

    #[test]
    fn bare_handshake_message_without_record_header() {
        let rec = hello(&[(10, vec![0, 2, 0, 29]), sni_ext("quic.example")]);
        let msg = &rec[5..];
        assert_eq!(
            client_hello_message(msg),
            ClientHello::Hello {
                sni: Some(b"quic.example")
            }
        );
        assert_eq!(client_hello_message(&msg[..50]), ClientHello::Truncated);
        assert_eq!(client_hello_message(&[]), ClientHello::Truncated);
        assert_eq!(client_hello_message(&[2, 0, 0, 40]), ClientHello::NotTls);
        // The record path is not taken: a record header here is not a message.
        assert_eq!(client_hello_message(&rec), ClientHello::NotTls);
    }

    #[test]
    fn garbage_is_not_tls_or_malformed() {
        assert_eq!(client_hello(b"GET / HTTP/1.1\r\n"), ClientHello::NotTls);
        assert_eq!(client_hello(&[0x16, 3, 1, 0, 1, 1]), ClientHello::Malformed);
        let mut rec = hello(&[sni_ext("x.example")]);
        rec[9 + 34] = 200; // session id length > 32
        assert_eq!(client_hello(&rec), ClientHello::Malformed);
    }
}
