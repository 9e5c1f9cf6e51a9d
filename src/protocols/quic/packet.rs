//! Long-header packets (RFC 9000 §17.2) of the two versions we can open, and
//! the variable-length integers their headers and frames use.

/// Connection IDs longer than this are invalid in v1 and v2 (RFC 9000 §17.2).
pub const MAX_CID: usize = 20;

/// A QUIC version whose Initial packets this module can open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// RFC 9000/9001.
    V1,
    /// RFC 9369: v1 with another salt, labels and long-header type numbers.
    V2,
}

impl Version {
    fn from_wire(v: u32) -> Option<Version> {
        match v {
            0x0000_0001 => Some(Version::V1),
            0x6b33_43cf => Some(Version::V2),
            _ => None,
        }
    }

    /// Long-header type bits of an Initial: v2 permutes the types so that
    /// middleboxes cannot ossify on v1's numbers (RFC 9369 §3.2).
    fn initial_type(self) -> u8 {
        match self {
            Version::V1 => 0b00,
            Version::V2 => 0b01,
        }
    }

    fn retry_type(self) -> u8 {
        match self {
            Version::V1 => 0b11,
            Version::V2 => 0b00,
        }
    }

    /// HKDF-Extract salt of the Initial secret (RFC 9001 §5.2, RFC 9369 §3.3.1).
    pub fn initial_salt(self) -> &'static [u8; 20] {
        match self {
            Version::V1 => &[
                0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8,
                0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a,
            ],
            Version::V2 => &[
                0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26,
                0x9d, 0xcb, 0xf9, 0xbd, 0x2e, 0xd9,
            ],
        }
    }

    /// HKDF-Expand-Label labels of the packet key, IV and header-protection
    /// key (RFC 9001 §5.1, RFC 9369 §3.3.2).
    pub fn labels(self) -> [&'static [u8]; 3] {
        match self {
            Version::V1 => [b"quic key", b"quic iv", b"quic hp"],
            Version::V2 => [b"quicv2 key", b"quicv2 iv", b"quicv2 hp"],
        }
    }
}

/// A bounds-checked cursor: every read either succeeds or leaves `None`.
pub struct Reader<'a> {
    pub b: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn u8(&mut self) -> Option<u8> {
        let (&v, rest) = self.b.split_first()?;
        self.b = rest;
        Some(v)
    }

    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.b.len() < n {
            return None;
        }
        let (v, rest) = self.b.split_at(n);
        self.b = rest;
        Some(v)
    }

    /// A variable-length integer: the top two bits of the first byte give
    /// its length, 1, 2, 4 or 8 bytes (RFC 9000 §16).
    pub fn varint(&mut self) -> Option<u64> {
        let first = *self.b.first()?;
        let bytes = self.take(1 << (first >> 6))?;
        Some(
            bytes[1..]
                .iter()
                .fold(u64::from(first & 0x3f), |v, &b| (v << 8) | u64::from(b)),
        )
    }

    /// A varint used as a length or offset into this packet.
    pub fn size(&mut self) -> Option<usize> {
        usize::try_from(self.varint()?).ok()
    }
}

/// One long-header packet of a known version, located in a datagram.
#[derive(Clone, Copy, Debug)]
pub struct Long<'a> {
    pub version: Version,
    pub initial: bool,
    pub dcid: &'a [u8],
    /// Offset of the still-protected packet number in `bytes`.
    pub pn_offset: usize,
    /// The whole packet: header, packet number, payload and AEAD tag.
    pub bytes: &'a [u8],
}

/// What the next bytes of a datagram hold.
#[derive(Debug)]
pub enum Next<'a> {
    /// A packet, and the bytes after it (coalesced packets, RFC 9000 §12.2).
    Packet(Long<'a>, &'a [u8]),
    /// Nothing more we read: a short-header packet (always last), padding,
    /// an unknown version, version negotiation or a Retry (servers only;
    /// it has no length, so nothing after it can be found).
    End,
    /// A known version whose header does not fit its datagram.
    Malformed,
}

/// Parse the long header at the start of `d`. The fixed bit is not checked:
/// RFC 9287 lets a client clear it, even in Initials, and the version and the
/// AEAD tag are the stronger test.
pub fn next(d: &[u8]) -> Next<'_> {
    let Some(&first) = d.first() else {
        return Next::End;
    };
    if first & 0x80 == 0 || d.len() < 5 {
        return Next::End;
    }
    let Some(version) = Version::from_wire(u32::from_be_bytes([d[1], d[2], d[3], d[4]])) else {
        return Next::End;
    };
    let kind = (first >> 4) & 0b11;
    if kind == version.retry_type() {
        return Next::End;
    }
    let initial = kind == version.initial_type();
    let mut r = Reader { b: &d[5..] };
    let parsed = (|| {
        let dcid_len = usize::from(r.u8()?);
        if dcid_len > MAX_CID {
            return None;
        }
        let dcid = r.take(dcid_len)?;
        let scid_len = usize::from(r.u8()?);
        if scid_len > MAX_CID {
            return None;
        }
        r.take(scid_len)?;
        if initial {
            let token = r.size()?;
            r.take(token)?;
        }
        let len = r.size()?;
        let pn_offset = d.len() - r.b.len();
        let end = pn_offset.checked_add(len).filter(|&e| e <= d.len())?;
        Some((dcid, pn_offset, end))
    })();
    match parsed {
        Some((dcid, pn_offset, end)) => Next::Packet(
            Long {
                version,
                initial,
                dcid,
                pn_offset,
                bytes: &d[..end],
            },
            &d[end..],
        ),
        None => Next::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_of_every_length() {
        // The four examples of RFC 9000 §A.1.
        for (hex, want) in [
            (
                &[0xc2u8, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c][..],
                151_288_809_941_952_652,
            ),
            (&[0x9d, 0x7f, 0x3e, 0x7d][..], 494_878_333),
            (&[0x7b, 0xbd][..], 15_293),
            (&[0x25][..], 37),
        ] {
            let mut r = Reader { b: hex };
            assert_eq!(r.varint(), Some(want));
            assert!(r.b.is_empty());
        }
        assert_eq!(Reader { b: &[0x40] }.varint(), None);
        assert_eq!(Reader { b: &[] }.varint(), None);
    }

    #[test]
    fn coalesced_handshake_then_short_header() {
        // v1 Handshake (type 2), DCID 1 byte, empty SCID, length 3; then a
        // short-header packet.
        let d = [0xe0, 0, 0, 0, 1, 1, 0xaa, 0, 3, 1, 2, 3, 0x40, 9];
        let Next::Packet(p, rest) = next(&d) else {
            panic!("no packet");
        };
        assert!(!p.initial);
        assert_eq!(p.dcid, &[0xaa]);
        assert_eq!(p.bytes.len(), 12);
        assert_eq!(rest, &[0x40, 9]);
        assert!(matches!(next(rest), Next::End));
    }

    #[test]
    fn bad_lengths_are_malformed_unknown_versions_end() {
        let mut d = vec![0xc0, 0, 0, 0, 1, 21];
        d.extend_from_slice(&[0; 30]);
        assert!(matches!(next(&d), Next::Malformed), "DCID over 20");
        let d = [0xc0, 0, 0, 0, 1, 0, 0, 0, 0x44, 0x00];
        assert!(matches!(next(&d), Next::Malformed), "length past the end");
        let d = [0xc0, 0xff, 0, 0, 0x1d, 0, 0, 0, 0];
        assert!(matches!(next(&d), Next::End), "draft version");
        let d = [0xc0, 0, 0, 0, 0, 0, 0];
        assert!(matches!(next(&d), Next::End), "version negotiation");
        // v2 Initial is type 0b01; type 0b00 is its Retry.
        let d = [0xd0, 0x6b, 0x33, 0x43, 0xcf, 0, 0, 0, 0];
        assert!(matches!(
            next(&d),
            Next::Packet(Long { initial: true, .. }, _)
        ));
        let d = [0xc0, 0x6b, 0x33, 0x43, 0xcf, 0, 0, 0, 0];
        assert!(matches!(next(&d), Next::End));
    }
}
