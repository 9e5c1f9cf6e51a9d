//! Domain-name normalisation shared by DNS, TLS SNI, HTTP Host and the feeds.
//!
//! Names are compared as lower-case ASCII with no trailing dot. Bytes that
//! cannot occur in a host name (control bytes, non-ASCII, a dot inside a DNS
//! label) become `?`, so a crafted name can never alias a listed domain and
//! logs never carry raw binary.

/// Longest presentation-form name we keep (RFC 1035: 255 octets on the wire).
pub const MAX_NAME: usize = 255;

/// A fixed stack buffer holding one normalised name; reused per packet so the
/// hot path never allocates.
pub struct NameBuf {
    buf: [u8; MAX_NAME],
    len: usize,
}

impl Default for NameBuf {
    fn default() -> Self {
        NameBuf {
            buf: [0; MAX_NAME],
            len: 0,
        }
    }
}

#[inline]
fn clean(b: u8) -> u8 {
    match b {
        b'A'..=b'Z' => b + 32,
        b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => b,
        _ => b'?',
    }
}

impl NameBuf {
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Append one DNS label (a dot is added before all but the first).
    /// Returns false when the name would exceed [`MAX_NAME`].
    pub fn push_label(&mut self, label: &[u8]) -> bool {
        let need = label.len() + usize::from(self.len > 0);
        if self.len + need > MAX_NAME {
            return false;
        }
        if self.len > 0 {
            self.buf[self.len] = b'.';
            self.len += 1;
        }
        for &b in label {
            self.buf[self.len] = if b == b'.' { b'?' } else { clean(b) };
            self.len += 1;
        }
        true
    }

    /// Set from a host name in presentation form (SNI, Host header, feed
    /// line): lower-cased, trailing dot dropped. Returns false if too long or
    /// empty.
    pub fn set_host(&mut self, host: &[u8]) -> bool {
        let host = host.strip_suffix(b".").unwrap_or(host);
        if host.is_empty() || host.len() > MAX_NAME {
            self.len = 0;
            return false;
        }
        for (d, &s) in self.buf.iter_mut().zip(host) {
            *d = clean(s);
        }
        self.len = host.len();
        true
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII bytes are ever written (see `clean`).
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Normalise an owned name (feeds, tests): same rules as [`NameBuf`].
pub fn normalize(host: &str) -> String {
    let mut b = NameBuf::default();
    b.set_host(host.as_bytes());
    b.as_str().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowercases_and_drops_trailing_dot() {
        assert_eq!(normalize("WWW.Example.COM."), "www.example.com");
    }

    #[test]
    fn binary_and_embedded_dots_never_alias() {
        let mut b = NameBuf::default();
        assert!(b.push_label(b"bad.example"));
        assert_eq!(b.as_str(), "bad?example");
        b.clear();
        assert!(b.push_label(&[0xff, b'A', 0]));
        assert_eq!(b.as_str(), "?a?");
    }

    #[test]
    fn length_is_bounded() {
        let mut b = NameBuf::default();
        let label = [b'a'; 63];
        let mut pushed = 0;
        while b.push_label(&label) {
            pushed += 1;
        }
        assert_eq!(pushed, 4); // 4 x 63 + 3 dots = 255
        assert!(b.as_str().len() <= MAX_NAME);
        assert!(!b.set_host(&[b'a'; 300]));
    }
}
