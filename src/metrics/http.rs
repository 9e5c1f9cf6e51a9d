//! The metrics listener: `/metrics`, `/healthz`, `POST /api/reload` and the
//! read-only `/api/*` endpoints.
//!
//! One thread takes every request and answers `/metrics` and `/healthz`
//! itself; `/api/*` requests go to [`API_THREADS`] threads through a bounded
//! queue. A reload or a slow store query therefore never delays a scrape or
//! a health check, and a flood of API requests is answered 503 once the
//! queue is full instead of piling up. Every request is answered inside
//! `catch_unwind`: a handler bug answers 500 (counted in
//! `gatewatch_panics_recovered_total{stage="http"}`), not a dead listener.
//!
//! Access to `/api/*`, for `Authorization: Bearer <token>`:
//! - the configured API token (compared in constant time): the operator,
//!   every unit;
//! - an account's token (`gatewatch users token`): that account, scoped to
//!   its units (see `store::api`); a disabled account's is refused;
//! - no token: only when neither a token is configured nor an account
//!   exists in the store, and only from this host (a loopback peer,
//!   `::ffff:127.0.0.1` included). Otherwise 401.
//!
//! `/metrics` and `/healthz` are open to whoever can reach the listener,
//! which binds loopback unless configured.

use super::Metrics;
use crate::store::accounts::{Account, same_secret};
use anyhow::{Context as _, Result};
use crossbeam_channel::{Receiver, TrySendError, bounded};
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Threads answering `/api/*`: a reload holds one while queries go on.
pub const API_THREADS: usize = 2;
/// `/api/*` requests waiting for a thread before new ones get 503.
const API_QUEUE: usize = 64;

/// What the `/api/*` endpoints need: the store to read, and the token that
/// authenticates requests (`None`: this host only).
#[derive(Clone, Default)]
pub struct Api {
    pub store: Option<PathBuf>,
    pub token: Option<String>,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token never reaches a log.
        f.debug_struct("Api")
            .field("store", &self.store)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// Bind the metrics listener now (so a taken port is an error at start) and
/// serve it on background threads. Returns the address actually bound (the
/// port the kernel chose for port 0) and the accepting thread.
pub fn serve(
    addr: SocketAddr,
    m: Arc<Metrics>,
    api: Api,
) -> Result<(SocketAddr, std::thread::JoinHandle<()>)> {
    let server = tiny_http::Server::http(addr).map_err(|e| anyhow::anyhow!("{e}")).with_context(|| {
        format!("cannot listen for metrics on {addr}: is another process using the port? Set [metrics] listen in the config or --metrics-listen")
    })?;
    let bound = server.server_addr().to_ip().unwrap_or(addr);
    if !bound.ip().is_loopback() && api.token.is_none() {
        tracing::warn!(
            "metrics listener on {bound}: /api answers this host only; set [metrics] \
             api_token_file to use it from elsewhere"
        );
    }
    let (tx, rx) = bounded::<tiny_http::Request>(API_QUEUE);
    let api = Arc::new(api);
    for i in 0..API_THREADS {
        let (rx, m, api) = (rx.clone(), m.clone(), api.clone());
        std::thread::Builder::new()
            .name(format!("gw-api-{i}"))
            .spawn(move || api_thread(&rx, &m, &api))?;
    }
    let h = std::thread::Builder::new()
        .name("gw-metrics".into())
        .spawn(move || {
            for req in server.incoming_requests() {
                if req.url().starts_with("/api/") {
                    match tx.try_send(req) {
                        Ok(()) => {}
                        Err(TrySendError::Full(req) | TrySendError::Disconnected(req)) => {
                            respond(req, 503, json_error("busy: too many API requests, retry"));
                        }
                    }
                    continue;
                }
                contained(req, |req| answer_open(&m, req));
            }
        })?;
    Ok((bound, h))
}

/// A `/api/*` thread: requests off the queue until the listener ends.
fn api_thread(rx: &Receiver<tiny_http::Request>, m: &Metrics, api: &Api) {
    for req in rx.iter() {
        contained(req, |req| answer_api(m, api, req));
    }
}

/// Answer `req` with what `handle` makes of it, or 500 if it panics.
fn contained(req: tiny_http::Request, handle: impl FnOnce(&tiny_http::Request) -> Reply) {
    match catch_unwind(AssertUnwindSafe(|| handle(&req))) {
        Ok(reply) => respond(req, reply.0, reply.1),
        Err(_) => {
            crate::packet::panics::HTTP.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                "answering {} {} panicked; answered 500 (a bug: please report it)",
                req.method(),
                req.url()
            );
            respond(req, 500, json_error("internal error (logged)"));
        }
    }
}

/// Status code and (body, content type).
type Reply = (u16, (String, &'static str));

const JSON: &str = "application/json";
const TEXT: &str = "text/plain";

fn json_error(msg: &str) -> (String, &'static str) {
    (serde_json::json!({ "error": msg }).to_string(), JSON)
}

fn respond(req: tiny_http::Request, code: u16, (body, ctype): (String, &'static str)) {
    let header = tiny_http::Header::from_bytes(&b"Content-Type"[..], ctype.as_bytes())
        .expect("static header");
    let _ = req.respond(
        tiny_http::Response::from_string(body)
            .with_status_code(code)
            .with_header(header),
    );
}

/// `/metrics`, `/healthz`, and 404 for anything else outside `/api/`.
fn answer_open(m: &Metrics, req: &tiny_http::Request) -> Reply {
    match req.url() {
        "/metrics" => (200, (m.render(), "text/plain; version=0.0.4")),
        "/healthz" => {
            let (ok, text) = m.healthy();
            (if ok { 200 } else { 503 }, (text, TEXT))
        }
        _ => (
            404,
            (
                "not found: try /metrics, /healthz or /api/units\n".into(),
                TEXT,
            ),
        ),
    }
}

/// An `/api/*` request, once its sender is allowed.
fn answer_api(m: &Metrics, api: &Api, req: &tiny_http::Request) -> Reply {
    let who = match allowed(api, req) {
        Ok(who) => who,
        Err(e) => return e,
    };
    let url = req.url();
    if url == "/api/reload" {
        if who.as_ref().is_some_and(|a| !a.is_admin()) {
            return (
                403,
                json_error("reloading the feeds is for a province-admin"),
            );
        }
        return api_reload(m, req);
    }
    let method = req.method().as_str();
    let (code, body) = crate::store::api::handle(api.store.as_deref(), method, url, who.as_ref());
    (code, (body, JSON))
}

/// Who sends `req`, if allowed to use `/api/*` (see the module comment):
/// `None` for the operator, else the token's account.
fn allowed(api: &Api, req: &tiny_http::Request) -> Result<Option<Account>, Reply> {
    let given = req
        .headers()
        .iter()
        .find(|h| h.field.equiv("Authorization"))
        .and_then(|h| h.value.as_str().strip_prefix("Bearer "))
        .map(str::trim);
    let wrong = || {
        (
            401,
            json_error("missing or wrong API token (Authorization: Bearer)"),
        )
    };
    let store = api
        .store
        .as_deref()
        .and_then(|p| crate::store::Store::open_read_only_unchecked(p).ok());
    match (given, &api.token) {
        (Some(g), Some(t)) if same_secret(g.as_bytes(), t.as_bytes()) => Ok(None),
        (Some(g), _) => store
            .and_then(|s| s.token_account(g).ok().flatten())
            .map(Some)
            .ok_or_else(wrong),
        (None, Some(_)) => Err(wrong()),
        (None, None) if store.is_some_and(|s| s.has_accounts().unwrap_or(true)) => Err(wrong()),
        (None, None) if is_local(req) => Ok(None),
        (None, None) => Err((
            403,
            json_error("the API answers this host only (no api_token_file is configured)"),
        )),
    }
}

/// A loopback peer; ::ffff:127.0.0.1 is this host too (a dual-stack
/// listener sees it).
fn is_local(req: &tiny_http::Request) -> bool {
    req.remote_addr()
        .is_some_and(|a| a.ip().to_canonical().is_loopback())
}

/// `POST /api/reload`: reload the feeds now and answer with what happened
/// to each.
fn api_reload(m: &Metrics, req: &tiny_http::Request) -> Reply {
    if req.method() != &tiny_http::Method::Post {
        return (405, json_error("use POST"));
    }
    // A browser adds Origin to a cross-site POST; curl and scripts do not.
    // Refusing it keeps a web page the operator visits from reloading.
    if req.headers().iter().any(|h| h.field.equiv("Origin")) {
        return (
            403,
            json_error("reload is not accepted from a web page (Origin header)"),
        );
    }
    match m.reload_hook() {
        Some(h) => {
            let (code, body) = h();
            (code, (body, JSON))
        }
        None => (
            503,
            json_error("this process does not reload feeds (only `gatewatch run` does)"),
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
        let (addr, _h) = serve(
            "127.0.0.1:0".parse().unwrap(),
            Metrics::new(),
            Api::default(),
        )
        .unwrap();
        assert!(addr.ip().is_loopback());
        assert_ne!(addr.port(), 0, "{addr}");
        assert_eq!(get(addr, "/nothing").0, 404);
    }

    #[test]
    fn healthz_is_starting_until_every_capture_thread_runs() {
        let m = Metrics::new();
        let (addr, _h) = serve("127.0.0.1:0".parse().unwrap(), m.clone(), Api::default()).unwrap();
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
