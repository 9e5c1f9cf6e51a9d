//! A bare HTTP/1.1 client for the metrics listener and its JSON API: what
//! the test asks for is exactly what goes on the wire.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Send `METHOD PATH` with an empty body to `addr` and return the whole
/// answer (status line, headers, body) once the server closes the
/// connection; fails the test after 5 s without an answer.
pub fn http_request(addr: SocketAddr, method: &str, path: &str) -> String {
    http_request_with(addr, method, path, "")
}

/// As [`http_request`], with `headers` (each ending in `\r\n`) added.
pub fn http_request_with(addr: SocketAddr, method: &str, path: &str, headers: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{headers}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out)
        .unwrap_or_else(|e| panic!("{method} {path} on {addr}: {e}"));
    out
}
