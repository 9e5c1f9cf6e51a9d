//! The web console: `gatewatch serve`, or the sensor itself with a
//! `[console]` section. Officials log in with their account and see their
//! units only.
//!
//! Invariants:
//! - Every page, download, report and API answer is filtered on the server
//!   by the account as the store has it *now* ([`Ctx`] re-reads it on each
//!   request, so disabling an account or taking a unit away acts at once):
//!   another unit's page is 403, another unit's host 404, as if absent.
//! - Pages read the store read-only; only a status change (mark cleaned,
//!   reopen) writes, in one transaction with its audit row.
//! - Every form that changes something carries the session's CSRF token
//!   (403 without it); cookies are `HttpOnly; SameSite=Strict`, `Secure`
//!   under TLS or `secure_cookies`.
//! - Every value on a page goes through maud's escaping; the style sheet is
//!   compiled in and no page runs a script (the CSP forbids them).

// Handlers end early with a ready `Response` as the error; boxing it on
// every early return buys nothing on this cold path.
#![allow(clippy::result_large_err)]

mod admin;
mod api;
mod auth;
mod central;
mod chart;
mod host;
mod login;
mod overview;
mod pages;
mod unit;

use crate::store::Store;
use crate::store::accounts::Account;
use anyhow::Context as _;
use auth::{Auth, COOKIE, Session, cookie_value};
use axum::Router;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::Markup;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// What the console reads.
#[derive(Clone, Debug)]
pub enum Source {
    /// One sensor's offender store (its accounts in it).
    Store(PathBuf),
    /// The central PostgreSQL of many sensors (its accounts in it), a
    /// libpq URL and the CA certificate its TLS is checked with.
    Central { url: String, ca: Option<PathBuf> },
}

/// How the console is served.
#[derive(Clone, Debug)]
pub struct ConsoleOptions {
    pub source: Source,
    pub listen: SocketAddr,
    /// Units from the units file, `(code, name)`: a unit with no offender
    /// yet still shows (with zeros).
    pub units: Vec<(String, String)>,
    /// PEM certificate chain and key: serve HTTPS (rustls).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Mark cookies `Secure` (implied by `tls`): behind a TLS proxy.
    pub secure_cookies: bool,
}

struct App {
    opts: ConsoleOptions,
    auth: Auth,
    /// Connections to the central, when that is the source.
    central: Option<central::Pool>,
}

type Shared = Arc<App>;

/// A running console (for `gatewatch run`): where it listens.
pub struct Console {
    /// `http://` or `https://` and the bound address.
    pub url: String,
}

/// Serve the console until the process ends.
pub fn serve(o: ConsoleOptions) -> anyhow::Result<()> {
    let (addr, run) = bind(o)?;
    tracing::info!("console on {addr}");
    run()
}

/// Bind now (so a busy port fails the start), serve on a thread of its own.
pub fn start(o: ConsoleOptions) -> anyhow::Result<Console> {
    let (addr, run) = bind(o)?;
    std::thread::Builder::new()
        .name("gw-console".into())
        .spawn(move || {
            if let Err(e) = run() {
                tracing::error!("console stopped: {e:#}");
            }
        })?;
    tracing::info!("console on {addr}");
    Ok(Console { url: addr })
}

type Runner = Box<dyn FnOnce() -> anyhow::Result<()> + Send>;

fn bind(o: ConsoleOptions) -> anyhow::Result<(String, Runner)> {
    let l = std::net::TcpListener::bind(o.listen)
        .with_context(|| format!("console: cannot listen on {}", o.listen))?;
    l.set_nonblocking(true)?;
    let local = l.local_addr()?;
    let tls = o.tls.clone();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let central = match &o.source {
        Source::Central { url, ca } => Some(central::Pool::new(url, ca.as_deref())),
        Source::Store(_) => None,
    };
    let app = Arc::new(App {
        opts: o,
        auth: Auth::default(),
        central,
    });
    let routes = if app.central.is_some() {
        central::routes()
    } else {
        store_routes()
    };
    let svc = router(routes, app).into_make_service();
    let run = move || -> anyhow::Result<()> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_io()
            .enable_time()
            .build()?;
        rt.block_on(async move {
            match tls {
                Some((cert, key)) => {
                    let cfg = axum_server::tls_rustls::RustlsConfig::from_pem_file(&cert, &key)
                        .await
                        .with_context(|| {
                            format!(
                                "console TLS: cannot use certificate {} with key {} (PEM files)",
                                cert.display(),
                                key.display()
                            )
                        })?;
                    axum_server::from_tcp_rustls(l, cfg)?.serve(svc).await?;
                }
                None => axum_server::from_tcp(l)?.serve(svc).await?,
            }
            Ok(())
        })
    };
    Ok((format!("{scheme}://{local}"), Box::new(run)))
}

/// The pages over one sensor's store.
fn store_routes() -> Router<Shared> {
    Router::new()
        .route("/", get(overview::page))
        .route("/unit/{code}", get(unit::page))
        .route("/unit/{code}/offenders.csv", get(unit::csv))
        .route("/unit/{code}/offenders.xlsx", get(unit::xlsx))
        .route("/unit/{code}/report", get(unit::report))
        .route("/report", get(overview::report))
        .route("/host/{ip}", get(host::page))
        .route("/host/{ip}/status", post(host::set_status))
        .route("/feeds", get(admin::feeds))
        .route("/sensors", get(admin::sensors))
        .route("/audit", get(admin::audit))
        .route("/api/{*rest}", get(api::get))
}

/// `routes` with what every console has: login, logout, the style sheet,
/// the security headers.
fn router(routes: Router<Shared>, app: Shared) -> Router {
    routes
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/assets/console.css", get(pages::css))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(app)
}

/// No framing, no sniffing, no referrer, no script, no foreign origin.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    for (k, v) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
    r
}

fn page(status: StatusCode, m: Markup) -> Response {
    (status, Html(m.into_string())).into_response()
}

fn error(status: StatusCode, msg: &str) -> Response {
    page(status, pages::layout(msg, None, maud::html! {}))
}

fn forbidden_csrf() -> Response {
    error(StatusCode::FORBIDDEN, "Thiếu mã chống giả mạo (CSRF)")
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::warn!("console: {e}");
    error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
}

impl App {
    /// A `Set-Cookie` value with the console's flags.
    fn cookie(&self, name: &str, value: &str, path: &str) -> String {
        let secure = if self.opts.tls.is_some() || self.opts.secure_cookies {
            "; Secure"
        } else {
            ""
        };
        format!("{name}={value}; HttpOnly; SameSite=Strict; Path={path}{secure}")
    }

    /// The store file, when that is the source.
    fn store_path(&self) -> Result<&std::path::Path, Response> {
        match &self.opts.source {
            Source::Store(p) => Ok(p),
            Source::Central { .. } => Err(error(StatusCode::NOT_FOUND, "Không có trang này")),
        }
    }

    fn open(&self) -> Result<Store, Response> {
        Store::open_read_only_unchecked(self.store_path()?)
            .map_err(|e| error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()))
    }

    /// The account as the store has it now, if it may still log in.
    fn current(&self, store: &Store, name: &str) -> Option<Account> {
        match store.account(name) {
            Ok(a) => a.filter(|a| !a.disabled),
            Err(e) => {
                tracing::warn!("console: {e}");
                None
            }
        }
    }
}

/// A logged-in request: its session (with the account re-read from the
/// store) and the store, open read-only.
struct Ctx {
    session: Session,
    store: Store,
}

impl Ctx {
    fn account(&self) -> &Account {
        &self.session.account
    }

    /// A page of this session.
    fn page(&self, title: &str, body: Markup) -> Response {
        session_page(&self.session, true, title, body)
    }
}

/// A page of `s`, its header showing the account, the menu (with the
/// feeds page when `feeds`) and the logout form.
fn session_page(s: &Session, feeds: bool, title: &str, body: Markup) -> Response {
    let a = &s.account;
    let nav = pages::Nav {
        name: &a.name,
        csrf: &s.csrf,
        province: a.sees_all(),
        admin: a.is_admin(),
        feeds,
    };
    page(StatusCode::OK, pages::layout(title, Some(&nav), body))
}

fn session_id(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(header::COOKIE)
        .and_then(|c| c.to_str().ok())
        .and_then(|c| cookie_value(c, COOKIE))
}

impl FromRequestParts<Shared> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Shared) -> Result<Ctx, Response> {
        let to_login = || Redirect::to("/login").into_response();
        let id = session_id(parts).ok_or_else(to_login)?;
        let mut session = app.auth.session(id).ok_or_else(to_login)?;
        let store = app.open()?;
        match app.current(&store, &session.account.name) {
            Some(a) => session.account = a,
            None => {
                app.auth.logout(id);
                return Err(to_login());
            }
        }
        Ok(Ctx { session, store })
    }
}
