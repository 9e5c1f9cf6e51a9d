//! The metrics listener: `/metrics`, `/healthz`, `POST /api/reload` and the
//! read-only `/api/*` endpoints, on one tiny_http thread.

use super::Metrics;
use anyhow::{Context as _, Result};
use std::net::SocketAddr;
use std::sync::Arc;

/// Bind the metrics listener now (so a taken port is an error at start) and
/// serve it on a background thread. Returns the address actually bound (the
/// port the kernel chose for port 0).
pub fn serve(
    addr: SocketAddr,
    m: Arc<Metrics>,
    store: Option<std::path::PathBuf>,
) -> Result<(SocketAddr, std::thread::JoinHandle<()>)> {
    let server = tiny_http::Server::http(addr).map_err(|e| anyhow::anyhow!("{e}")).with_context(|| {
        format!("cannot listen for metrics on {addr}: is another process using the port? Set [metrics] listen in the config or --metrics-listen")
    })?;
    let bound = server.server_addr().to_ip().unwrap_or(addr);
    let h = std::thread::Builder::new()
        .name("gw-metrics".into())
        .spawn(move || {
            for req in server.incoming_requests() {
                let url = req.url().to_owned();
                let (code, body, ctype) = match url.as_str() {
                    "/api/reload" => {
                        let (code, body) = api_reload(&m, &req);
                        (code, body, "application/json")
                    }
                    u if u.starts_with("/api/") => {
                        let method = req.method().as_str().to_owned();
                        let (code, body) = crate::store::api::handle(store.as_deref(), &method, u);
                        (code, body, "application/json")
                    }
                    "/metrics" => (200, m.render(), "text/plain; version=0.0.4"),
                    "/healthz" => {
                        let (ok, text) = m.healthy();
                        (if ok { 200 } else { 503 }, text, "text/plain")
                    }
                    _ => (
                        404,
                        "not found: try /metrics, /healthz or /api/units\n".into(),
                        "text/plain",
                    ),
                };
                let header = tiny_http::Header::from_bytes(&b"Content-Type"[..], ctype.as_bytes())
                    .expect("static header");
                let _ = req.respond(
                    tiny_http::Response::from_string(body)
                        .with_status_code(code)
                        .with_header(header),
                );
            }
        })?;
    Ok((bound, h))
}

/// `POST /api/reload`, from this host only: reload the feeds now and answer
/// with what happened to each.
fn api_reload(m: &Metrics, req: &tiny_http::Request) -> (u16, String) {
    let err = |code, msg: &str| (code, serde_json::json!({ "error": msg }).to_string());
    if req.method() != &tiny_http::Method::Post {
        return err(405, "use POST");
    }
    // ::ffff:127.0.0.1 is this host too (a dual-stack listener sees it).
    if !req
        .remote_addr()
        .is_some_and(|a| a.ip().to_canonical().is_loopback())
    {
        return err(403, "reload is accepted from this host only");
    }
    // A browser adds Origin to a cross-site POST; curl and scripts do not.
    // Refusing it keeps a web page the operator visits from reloading.
    if req.headers().iter().any(|h| h.field.equiv("Origin")) {
        return err(
            403,
            "reload is not accepted from a web page (Origin header)",
        );
    }
    match m.reload_hook() {
        Some(h) => h(),
        None => err(
            503,
            "this process does not reload feeds (only `gatewatch run` does)",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::CaptureShared;
    use std::io::{Read, Write};
    use std::sync::atomic::Ordering;

    /// GET `path` from the listener: (status, body).
    fn get(addr: SocketAddr, path: &str) -> (u16, String) {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let mut r = String::new();
        s.read_to_string(&mut r).unwrap();
        let code = r.split_whitespace().nth(1).unwrap().parse().unwrap();
        let body = r.split_once("\r\n\r\n").map_or("", |x| x.1).to_string();
        (code, body)
    }

    #[test]
    fn serve_returns_the_bound_port() {
        let (addr, _h) = serve("127.0.0.1:0".parse().unwrap(), Metrics::new(), None).unwrap();
        assert!(addr.ip().is_loopback());
        assert_ne!(addr.port(), 0, "{addr}");
        assert_eq!(get(addr, "/nothing").0, 404);
    }

    #[test]
    fn healthz_is_starting_until_every_capture_thread_runs() {
        let m = Metrics::new();
        let (addr, _h) = serve("127.0.0.1:0".parse().unwrap(), m.clone(), None).unwrap();
        // Listener up, no interface opened yet.
        assert_eq!(get(addr, "/healthz"), (503, "starting\n".into()));
        let (a, b) = (
            Arc::new(CaptureShared {
                name: "eth1".into(),
                ..Default::default()
            }),
            Arc::new(CaptureShared {
                name: "eth2".into(),
                ..Default::default()
            }),
        );
        m.capture.watch(a.clone());
        a.up.store(true, Ordering::Relaxed);
        a.running.store(true, Ordering::Relaxed);
        // Not every interface registered yet.
        assert_eq!(get(addr, "/healthz"), (503, "starting\n".into()));
        m.capture.watch(b.clone());
        m.capture.started();
        // eth2's thread has not started.
        assert_eq!(get(addr, "/healthz"), (503, "starting\n".into()));
        b.running.store(true, Ordering::Relaxed);
        assert_eq!(
            get(addr, "/healthz"),
            (503, "capture down on: eth2\n".into())
        );
        b.up.store(true, Ordering::Relaxed);
        assert_eq!(get(addr, "/healthz"), (200, "ok\n".into()));
    }
}
