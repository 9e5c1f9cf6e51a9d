//! Frames of a decrypted Initial packet (RFC 9000 §12.4, §19) and the CRYPTO
//! stream they carry.

use super::packet::Reader;

/// A frame an Initial may not carry, or one that does not fit the packet.
/// The server would close the connection with PROTOCOL_VIOLATION.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed;

/// Walk the frames of an Initial's plaintext, handing each CRYPTO frame's
/// stream offset and data to `crypto`. Only PADDING, PING, ACK, CRYPTO and
/// CONNECTION_CLOSE are allowed in Initials; CONNECTION_CLOSE ends the walk.
pub fn walk(plain: &[u8], mut crypto: impl FnMut(u64, &[u8])) -> Result<(), Malformed> {
    if plain.is_empty() {
        return Err(Malformed); // a packet without frames (RFC 9000 §12.4)
    }
    let mut r = Reader { b: plain };
    while let Some(ty) = r.u8() {
        match ty {
            // PADDING comes in long runs (to 1200 bytes), so skip it at once.
            0x00 => {
                let run = r.b.iter().position(|&b| b != 0).unwrap_or(r.b.len());
                r.b = &r.b[run..];
            }
            0x01 => {}
            0x02 | 0x03 => skip_ack(&mut r, ty == 0x03).ok_or(Malformed)?,
            0x06 => {
                let offset = r.varint().ok_or(Malformed)?;
                let len = r.size().ok_or(Malformed)?;
                let data = r.take(len).ok_or(Malformed)?;
                // Stream offsets are capped at 2^62 - 1 (RFC 9000 §19.6).
                if offset + len as u64 >= 1 << 62 {
                    return Err(Malformed);
                }
                crypto(offset, data);
            }
            0x1c => return Ok(()),
            _ => return Err(Malformed),
        }
    }
    Ok(())
}

/// Skip an ACK frame's body: largest, delay, range count, first range, then
/// a (gap, length) pair per range and, for type 0x03, three ECN counts.
fn skip_ack(r: &mut Reader<'_>, ecn: bool) -> Option<()> {
    r.varint()?;
    r.varint()?;
    let ranges = r.varint()?;
    r.varint()?;
    // Each pair takes at least two bytes, so a huge count ends at the packet's
    // end instead of spinning.
    for _ in 0..ranges {
        r.varint()?;
        r.varint()?;
    }
    if ecn {
        for _ in 0..3 {
            r.varint()?;
        }
    }
    Some(())
}

/// CRYPTO bytes kept per connection. A ClientHello is usually 250 to 2,000
/// bytes (post-quantum key shares push it past one datagram); one that puts
/// its server name further out than this is reported as truncated.
pub const CRYPTO_MAX: usize = 8 * 1024;

/// The start of one connection's CRYPTO stream, filled in any order: Chrome
/// splits and shuffles its ClientHello over frames and datagrams.
pub struct CryptoBuf {
    data: [u8; CRYPTO_MAX],
    /// One bit per byte of `data` that some frame has filled.
    have: [u64; CRYPTO_MAX / 64],
}

impl CryptoBuf {
    pub fn new() -> Box<CryptoBuf> {
        Box::new(CryptoBuf {
            data: [0; CRYPTO_MAX],
            have: [0; CRYPTO_MAX / 64],
        })
    }

    /// Forget what was filled; the bytes themselves need no clearing.
    pub fn clear(&mut self) {
        self.have = [0; CRYPTO_MAX / 64];
    }

    /// Store `data` at stream `offset`, dropping what lies past `CRYPTO_MAX`.
    /// A retransmission overwrites with the same bytes.
    pub fn insert(&mut self, offset: u64, data: &[u8]) {
        let Ok(start) = usize::try_from(offset) else {
            return;
        };
        if start >= CRYPTO_MAX {
            return;
        }
        let end = CRYPTO_MAX.min(start.saturating_add(data.len()));
        self.data[start..end].copy_from_slice(&data[..end - start]);
        let mut i = start;
        while i < end {
            let bit = i % 64;
            let n = (64 - bit).min(end - i);
            let ones = if n == 64 { u64::MAX } else { (1 << n) - 1 };
            self.have[i / 64] |= ones << bit;
            i += n;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.have.iter().all(|&w| w == 0)
    }

    /// Length of the gap-free stream start: what a parser can read.
    pub fn prefix(&self) -> usize {
        for (w, &bits) in self.have.iter().enumerate() {
            if bits != u64::MAX {
                return w * 64 + bits.trailing_ones() as usize;
            }
        }
        CRYPTO_MAX
    }

    pub fn bytes(&self) -> &[u8] {
        &self.data[..self.prefix()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_allowed_frame_and_crypto_order() {
        let mut plain = vec![0x01, 0x00, 0x00];
        // ACK: largest 5, delay 0, 1 range, first 1, gap 0, len 0.
        plain.extend_from_slice(&[0x02, 5, 0, 1, 1, 0, 0]);
        // ACK_ECN: largest 2, delay 0, 0 ranges, first 0, ECN 1 1 1.
        plain.extend_from_slice(&[0x03, 2, 0, 0, 0, 1, 1, 1]);
        plain.extend_from_slice(&[0x06, 0x40, 3, 2, b'd', b'e']);
        plain.extend_from_slice(&[0x06, 0, 3, b'a', b'b', b'c']);
        plain.extend_from_slice(&[0; 40]);
        let mut got = Vec::new();
        walk(&plain, |o, d| got.push((o, d.to_vec()))).unwrap();
        assert_eq!(got, vec![(3, b"de".to_vec()), (0, b"abc".to_vec())]);
    }

    #[test]
    fn forbidden_or_short_frames_are_malformed() {
        assert_eq!(walk(&[], |_, _| {}), Err(Malformed));
        assert_eq!(walk(&[0x08, 0, 0], |_, _| {}), Err(Malformed)); // STREAM
        assert_eq!(walk(&[0x06, 0, 5, 1, 2], |_, _| {}), Err(Malformed));
        assert_eq!(walk(&[0x02, 1, 0, 0xbf, 0xff], |_, _| {}), Err(Malformed));
        // Offset plus length past 2^62 - 1.
        let mut f = vec![
            0x06, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0,
        ];
        assert_eq!(walk(&f, |_, _| {}), Err(Malformed));
        f[1] = 0xc0; // far, but legal: the buffer drops it, the walk goes on
        assert_eq!(walk(&f, |_, _| {}), Ok(()));
        // CONNECTION_CLOSE ends the walk before the junk after it.
        assert_eq!(walk(&[0x1c, 0, 0, 0, 0xff], |_, _| {}), Ok(()));
    }

    #[test]
    fn buffer_prefix_grows_only_when_gaps_close() {
        let mut b = CryptoBuf::new();
        b.insert(100, &[7; 100]);
        assert_eq!(b.prefix(), 0);
        b.insert(0, &[1; 64]);
        assert_eq!(b.prefix(), 64);
        b.insert(50, &[2; 50]);
        assert_eq!(b.prefix(), 200);
        assert_eq!(b.bytes()[63..65], [2, 2]);
        b.insert(CRYPTO_MAX as u64 - 1, &[9; 10]);
        b.insert(u64::MAX, &[9; 10]);
        b.insert(200, &vec![3; CRYPTO_MAX]);
        assert_eq!(b.prefix(), CRYPTO_MAX);
        b.clear();
        assert_eq!(b.prefix(), 0);
    }
}
