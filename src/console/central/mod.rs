//! The console over the central PostgreSQL (`gatewatch serve --central`):
//! the nation -> province -> unit -> host view of many sensors, with the
//! same logins, sessions, CSRF tokens and headers as a sensor's console.
//!
//! Invariants:
//! - An account limited to a province sees that province only (its units
//!   only, if it has units): another province's or unit's page is 403,
//!   another's host 404, as if absent. The nation's pages are for accounts
//!   with no province.
//! - A host is named by sensor and address (`/h/{sensor}/{ip}`): two
//!   provinces may both use 10.20.0.0/16.
//! - The account is read from PostgreSQL again on every request, so
//!   disabling it acts at once.
//! - The `postgres` client blocks (it runs its own runtime), so every use
//!   of it is on a blocking thread, never on the server's async workers.

mod admin;
mod host;
mod views;

use super::auth::Session;
use super::{Shared, error, session_id, session_page};
use crate::store::central::{Central, CentralError};
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::Markup;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Idle connections kept for the next request.
const IDLE: usize = 4;

/// Connections to the central, reused between requests.
pub struct Pool {
    url: String,
    ca: Option<PathBuf>,
    idle: Mutex<Vec<Central>>,
}

impl Pool {
    pub fn new(url: &str, ca: Option<&Path>) -> Pool {
        Pool {
            url: url.to_owned(),
            ca: ca.map(Path::to_path_buf),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Run `f` on a connection (an idle one, or a new one); the connection
    /// is kept for reuse only when `f` succeeded (after an error it may be
    /// broken). Blocks: call it from a blocking thread.
    pub fn with<T>(
        &self,
        f: impl FnOnce(&mut Central) -> Result<T, CentralError>,
    ) -> Result<T, CentralError> {
        let reused = self.idle.lock().ok().and_then(|mut v| v.pop());
        let mut c = match reused.filter(|c| !c.is_closed()) {
            Some(c) => c,
            None => Central::connect(&self.url, self.ca.as_deref())?,
        };
        let out = f(&mut c)?;
        if let Ok(mut v) = self.idle.lock()
            && v.len() < IDLE
        {
            v.push(c);
        }
        Ok(out)
    }
}

/// The central could not answer: 503 with what it said (no password: the
/// errors show the URL without it).
pub fn unavailable(e: CentralError) -> Response {
    tracing::warn!("console: {e}");
    error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string())
}

/// The central's pages.
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/", get(views::nation))
        .route("/report", get(views::nation_report))
        .route("/p/{province}", get(views::province))
        .route("/p/{province}/report", get(views::province_report))
        .route("/p/{province}/u/{unit}", get(views::unit))
        .route("/p/{province}/u/{unit}/hosts.csv", get(views::unit_csv))
        .route("/h/{sensor}/{ip}", get(host::page).post(host::set_status))
        .route("/sensors", get(admin::sensors))
        .route("/audit", get(admin::audit))
}

/// A request with a live session (the account not re-read yet: that needs
/// the database, see [`run`]).
pub struct Caller {
    id: String,
    session: Session,
}

impl FromRequestParts<Shared> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Shared) -> Result<Caller, Response> {
        let to_login = || Redirect::to("/login").into_response();
        let id = session_id(parts).ok_or_else(to_login)?.to_owned();
        let session = app.auth.session(&id).ok_or_else(to_login)?;
        Ok(Caller { id, session })
    }
}

/// A session whose account was just read again from the central.
pub struct Who {
    pub session: Session,
}

impl Who {
    pub fn account(&self) -> &crate::store::accounts::Account {
        &self.session.account
    }

    /// A page of this session.
    pub fn page(&self, title: &str, body: Markup) -> Response {
        session_page(&self.session, false, title, body)
    }
}

/// Re-read the caller's account, then run `f` with it and a connection,
/// all on a blocking thread. A disabled or removed account is logged out.
pub async fn run(
    app: &Shared,
    caller: Caller,
    f: impl FnOnce(&mut Central, &Who) -> Result<Response, CentralError> + Send + 'static,
) -> Response {
    let app = app.clone();
    let done = tokio::task::spawn_blocking(move || {
        let Some(pool) = app.central.as_ref() else {
            return error(StatusCode::NOT_FOUND, "Không có trang này");
        };
        let name = caller.session.account.name.clone();
        let out = pool.with(|c| {
            let Some(account) = c.account(&name)?.filter(|a| !a.disabled) else {
                return Ok(None);
            };
            let mut session = caller.session;
            session.account = account;
            f(c, &Who { session }).map(Some)
        });
        match out {
            Ok(Some(r)) => r,
            Ok(None) => {
                app.auth.logout(&caller.id);
                Redirect::to("/login").into_response()
            }
            Err(e) => unavailable(e),
        }
    })
    .await;
    done.unwrap_or_else(super::internal)
}

/// What a path segment may keep unescaped.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_');

/// `s` as one URL path segment (province names have spaces and accents).
pub fn seg(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// 403 with a reason.
pub fn forbidden(why: &str) -> Response {
    error(StatusCode::FORBIDDEN, why)
}
