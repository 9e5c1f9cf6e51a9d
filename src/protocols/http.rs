//! HTTP/1.x request line and Host header, parsed with httparse.
//!
//! httparse fills a caller-provided header array and borrows every value from
//! the packet, so a request costs no allocation.

/// Methods we recognise at the start of a TCP payload. Checking the prefix
/// first keeps httparse off the vast majority of segments (bulk data).
const METHODS: [&[u8]; 9] = [
    b"GET ",
    b"POST ",
    b"HEAD ",
    b"PUT ",
    b"DELETE ",
    b"OPTIONS ",
    b"CONNECT ",
    b"PATCH ",
    b"TRACE ",
];

/// Header slots given to httparse; requests with more are reported truncated.
const MAX_HEADERS: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub method: &'a str,
    /// Request target as sent: origin-form `/path?q`, absolute-form for
    /// proxies, or authority-form for CONNECT.
    pub target: &'a str,
    /// Host without port: from the Host header, else from an absolute or
    /// authority-form target.
    pub host: Option<&'a [u8]>,
    /// Whether `host` came from a Host header (rather than the target).
    pub host_header: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    NotHttp,
    /// `complete` is false when the headers did not end in this segment.
    Request {
        req: Request<'a>,
        complete: bool,
    },
    Malformed,
}

/// Parse an HTTP request at the start of `payload`.
pub fn request(payload: &[u8]) -> Parsed<'_> {
    if !METHODS.iter().any(|m| payload.starts_with(m)) {
        return Parsed::NotHttp;
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut r = httparse::Request::new(&mut headers);
    let complete = match r.parse(payload) {
        Ok(httparse::Status::Complete(_)) => true,
        Ok(httparse::Status::Partial) => false,
        Err(httparse::Error::TooManyHeaders) => false,
        Err(_) => return Parsed::Malformed,
    };
    let (Some(method), Some(target)) = (r.method, r.path) else {
        if complete {
            return Parsed::Malformed;
        }
        return cut_request_line(payload);
    };
    let header_host = r
        .headers
        .iter()
        .take_while(|h| !h.name.is_empty())
        .find(|h| h.name.eq_ignore_ascii_case("host"))
        .map(|h| strip_port(trim(h.value)));
    let host_header = header_host.is_some_and(|h| !h.is_empty());
    let host = header_host.or_else(|| target_host(method, target));
    Parsed::Request {
        req: Request {
            method,
            target,
            host: host.filter(|h| !h.is_empty()),
            host_header,
        },
        complete,
    }
}

/// A request line cut before its end (snaplen, or a first segment that ends
/// early): keep the method and as much of the target as was captured.
fn cut_request_line(payload: &[u8]) -> Parsed<'_> {
    let line = payload
        .split(|&b| b == b'\r' || b == b'\n')
        .next()
        .unwrap_or(payload);
    let mut parts = line.splitn(3, |&b| b == b' ');
    let (Some(m), Some(t)) = (parts.next(), parts.next()) else {
        return Parsed::Malformed;
    };
    match (std::str::from_utf8(m), std::str::from_utf8(t)) {
        (Ok(method), Ok(target))
            if !target.is_empty() && target.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            Parsed::Request {
                req: Request {
                    method,
                    target,
                    host: target_host(method, target),
                    host_header: false,
                },
                complete: false,
            }
        }
        _ => Parsed::Malformed,
    }
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &v[start..end.max(start)]
}

/// `host:port` -> `host`; a bracketed IPv6 literal keeps no brackets.
fn strip_port(v: &[u8]) -> &[u8] {
    if let Some(rest) = v.strip_prefix(b"[") {
        return rest.split(|&b| b == b']').next().unwrap_or(rest);
    }
    match v.iter().rposition(|&b| b == b':') {
        Some(i) if v[i + 1..].iter().all(u8::is_ascii_digit) => &v[..i],
        _ => v,
    }
}

/// Host named by an absolute-form (`http://h/...`) or CONNECT target.
fn target_host<'a>(method: &str, target: &'a str) -> Option<&'a [u8]> {
    if method == "CONNECT" {
        return Some(strip_port(target.as_bytes()));
    }
    let rest = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))?;
    let auth = rest.split(['/', '?', '#']).next()?;
    let auth = auth.rsplit('@').next()?;
    Some(strip_port(auth.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(p: &[u8]) -> (Request<'_>, bool) {
        match request(p) {
            Parsed::Request { req, complete } => (req, complete),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn host_and_target() {
        let (r, c) =
            req(b"GET /a/b.php?x=1 HTTP/1.1\r\nHost: Bad.Example:8080\r\nUser-Agent: x\r\n\r\n");
        assert!(c);
        assert_eq!(r.method, "GET");
        assert_eq!(r.target, "/a/b.php?x=1");
        assert_eq!(r.host, Some(&b"Bad.Example"[..]));
    }

    #[test]
    fn proxy_and_connect_forms() {
        let (r, _) = req(b"GET http://user@h.example:81/x HTTP/1.1\r\n\r\n");
        assert_eq!(r.host, Some(&b"h.example"[..]));
        let (r, _) = req(b"CONNECT c2.example:443 HTTP/1.1\r\n\r\n");
        assert_eq!(r.host, Some(&b"c2.example"[..]));
        let (r, _) = req(b"GET / HTTP/1.1\r\nHost: [2001:db8::1]:80\r\n\r\n");
        assert_eq!(r.host, Some(&b"2001:db8::1"[..]));
    }

    #[test]
    fn request_line_cut_short() {
        let (r, c) = req(b"GET /download/CHANGES.br");
        assert!(!c);
        assert_eq!(r.target, "/download/CHANGES.br");
        assert_eq!(r.host, None);
    }

    #[test]
    fn partial_and_garbage() {
        let (r, c) = req(b"GET /x HTTP/1.1\r\nHost: a.example\r\nAccept");
        assert!(!c);
        assert_eq!(r.host, Some(&b"a.example"[..]));
        assert_eq!(request(b"\x16\x03\x01"), Parsed::NotHttp);
        assert_eq!(request(b"GET \x00\x01 HTTP/1.1\r\n\r\n"), Parsed::Malformed);
    }
}
