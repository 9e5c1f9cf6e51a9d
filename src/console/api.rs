//! The JSON API on the console's listener: the same routes and answers as
//! next to `/metrics` ([`crate::store::api`]), for a logged-in session or
//! an account's `Authorization: Bearer` token, scoped to the account's
//! units. Neither: 401. A disabled account's token: 401.

use super::{Shared, session_id};
use crate::store::accounts::Account;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

fn json(code: u16, body: String) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn unauthorized(msg: &str) -> Response {
    let mut r = json(401, serde_json::json!({ "error": msg }).to_string());
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer realm=\"gatewatch\""),
    );
    r
}

/// The account behind the request: a bearer token, else the session.
fn caller(app: &Shared, parts: &Parts) -> Result<Account, Response> {
    let store = app.open()?;
    let bearer = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.strip_prefix("Bearer ").unwrap_or(""));
    if let Some(token) = bearer {
        return match store.token_account(token.trim()) {
            Ok(Some(a)) => Ok(a),
            Ok(None) => Err(unauthorized("unknown or disabled token")),
            Err(e) => Err(json(
                503,
                serde_json::json!({ "error": e.to_string() }).to_string(),
            )),
        };
    }
    let session = session_id(parts).and_then(|id| app.auth.session(id));
    match session.and_then(|s| app.current(&store, &s.account.name)) {
        Some(a) => Ok(a),
        None => Err(unauthorized(
            "log in, or send Authorization: Bearer TOKEN (gatewatch users token NAME)",
        )),
    }
}

/// `GET /api/*`.
pub async fn get(State(app): State<Shared>, parts: Parts) -> Response {
    let who = match caller(&app, &parts) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let url = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let store = match app.store_path() {
        Ok(p) => p.to_path_buf(),
        Err(r) => return r,
    };
    let answer = tokio::task::spawn_blocking(move || {
        crate::store::api::handle(Some(&store), "GET", &url, Some(&who))
    })
    .await;
    match answer {
        Ok((code, body)) => json(code, body),
        Err(e) => json(
            500,
            serde_json::json!({ "error": e.to_string() }).to_string(),
        ),
    }
}
