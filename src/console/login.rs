//! Logging in and out. The login form is paired with a pre-login cookie
//! (double-submit), so a foreign page cannot log a browser in either.

use super::auth::{COOKIE, same};
use super::{App, Shared, central, forbidden_csrf, internal, page, pages, session_id};
use axum::extract::{Form, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

/// The pre-login cookie that pairs with the login form's hidden token.
const LOGIN_COOKIE: &str = "gw_login";

fn with_cookie(mut r: Response, cookie: String) -> Response {
    if let Ok(v) = cookie.parse() {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// `GET /login`.
pub async fn form(State(app): State<Shared>) -> Response {
    let token = match crate::store::accounts::random_hex() {
        Ok(t) => t,
        Err(e) => return internal(e),
    };
    let r = page(StatusCode::OK, pages::login(&token, None));
    with_cookie(r, app.cookie(LOGIN_COOKIE, &token, "/login"))
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

fn cookie_of<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(header::COOKIE)
        .and_then(|c| c.to_str().ok())
        .and_then(|c| super::auth::cookie_value(c, name))
}

/// `POST /login`: CSRF pair, throttle, then the password (argon2 off the
/// async workers).
pub async fn submit(State(app): State<Shared>, h: HeaderMap, Form(f): Form<LoginForm>) -> Response {
    let paired = cookie_of(&h, LOGIN_COOKIE).is_some_and(|t| same(t, &f.csrf));
    if !paired || f.csrf.is_empty() {
        return forbidden_csrf();
    }
    if app.auth.throttled(&f.name) {
        let m = pages::login(
            &f.csrf,
            Some("Sai mật khẩu quá nhiều lần; thử lại sau 15 phút"),
        );
        return page(StatusCode::TOO_MANY_REQUESTS, m);
    }
    let checked = {
        let (app, name, pw) = (app.clone(), f.name.clone(), f.password);
        tokio::task::spawn_blocking(move || verify(&app, &name, &pw)).await
    };
    let account = match checked {
        Ok(Ok(Some(a))) => a,
        Ok(Ok(None)) => {
            app.auth.failed(&f.name);
            tracing::info!("console: failed login for {:?}", f.name);
            let m = pages::login(&f.csrf, Some("Sai tên đăng nhập hoặc mật khẩu"));
            return page(StatusCode::UNAUTHORIZED, m);
        }
        Ok(Err(r)) => return r,
        Err(e) => return internal(e),
    };
    let id = match app.auth.login(account) {
        Ok((id, _)) => id,
        Err(e) => return internal(e),
    };
    tracing::info!("console: {:?} logged in", f.name);
    let r = with_cookie(
        Redirect::to("/").into_response(),
        app.cookie(COOKIE, &id, "/"),
    );
    with_cookie(r, app.cookie(LOGIN_COOKIE, "", "/login"))
}

fn verify(
    app: &App,
    name: &str,
    pw: &str,
) -> Result<Option<crate::store::accounts::Account>, Response> {
    if let Some(pool) = &app.central {
        return pool
            .with(|c| c.verify_password(name, pw))
            .map_err(central::unavailable);
    }
    let store = app.open()?;
    store.verify_password(name, pw).map_err(internal)
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// `POST /logout`: needs the session's CSRF token, like every change.
pub async fn logout(State(app): State<Shared>, parts: Parts, Form(f): Form<CsrfOnly>) -> Response {
    let Some(id) = session_id(&parts) else {
        return Redirect::to("/login").into_response();
    };
    match app.auth.session(id) {
        Some(s) if same(&s.csrf, &f.csrf) => {
            app.auth.logout(id);
            Redirect::to("/login").into_response()
        }
        Some(_) => forbidden_csrf(),
        None => Redirect::to("/login").into_response(),
    }
}
