//! The web console (issue 17, in progress): `gatewatch serve`. Officials
//! log in with their account and see their units only; every page reads
//! the store read-only and filters on the server (another unit's page is
//! 403, its host 404); marking a host cleaned needs the session's CSRF
//! token and a role that acts on the unit, and is kept in the host's
//! status history with the account's name.

mod auth;
mod pages;

use crate::store::Store;
use crate::store::accounts::Account;
use auth::{Auth, COOKIE, Session, cookie_value, same};
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::Markup;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

/// The pre-login cookie that pairs with the login form's hidden token.
const LOGIN_COOKIE: &str = "gw_login";

struct App {
    store: PathBuf,
    auth: Auth,
}

type Shared = Arc<App>;
/// A response that ends a request early (boxed: a `Response` is large).
type Refused = Box<Response>;

/// Serve the console for `store` on `listen` until the process ends.
pub fn serve(store: PathBuf, listen: SocketAddr) -> anyhow::Result<()> {
    let app = Arc::new(App {
        store,
        auth: Auth::default(),
    });
    let router = router(app);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_io()
        .enable_time()
        .build()?;
    rt.block_on(async move {
        let l = tokio::net::TcpListener::bind(listen).await?;
        tracing::info!("console on http://{}", l.local_addr()?);
        axum::serve(l, router).await?;
        Ok(())
    })
}

fn router(app: Shared) -> Router {
    Router::new()
        .route("/", get(overview))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/unit/{code}", get(unit))
        .route("/host/{ip}", get(host))
        .route("/host/{ip}/cleaned", post(mark_cleaned))
        .with_state(app)
}

fn page(status: StatusCode, m: Markup) -> Response {
    (status, Html(m.into_string())).into_response()
}

fn error(status: StatusCode, msg: &str) -> Response {
    page(status, pages::layout(msg, None, maud::html! {}))
}

/// The request's live session, or a redirect to the login page.
fn session(app: &App, h: &HeaderMap) -> Result<Session, Refused> {
    h.get(header::COOKIE)
        .and_then(|c| c.to_str().ok())
        .and_then(|c| cookie_value(c, COOKIE))
        .and_then(|id| app.auth.session(id))
        .ok_or_else(|| Box::new(Redirect::to("/login").into_response()))
}

fn open(app: &App) -> Result<Store, Refused> {
    Store::open_read_only(&app.store)
        .map_err(|e| Box::new(error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string())))
}

async fn login_form() -> Response {
    let token = match crate::store::accounts::random_hex() {
        Ok(t) => t,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let cookie = format!("{LOGIN_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/login");
    let mut r = page(StatusCode::OK, pages::login(&token, None));
    if let Ok(v) = cookie.parse() {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    csrf: String,
    name: String,
    password: String,
}

async fn login(State(app): State<Shared>, h: HeaderMap, Form(f): Form<LoginForm>) -> Response {
    let paired = h
        .get(header::COOKIE)
        .and_then(|c| c.to_str().ok())
        .and_then(|c| cookie_value(c, LOGIN_COOKIE))
        .is_some_and(|t| same(t, &f.csrf));
    if !paired {
        return error(StatusCode::FORBIDDEN, "Thiếu mã chống giả mạo (CSRF)");
    }
    if app.auth.throttled(&f.name) {
        let m = pages::login(
            &f.csrf,
            Some("Sai mật khẩu quá nhiều lần; thử lại sau 15 phút"),
        );
        return page(StatusCode::TOO_MANY_REQUESTS, m);
    }
    let found = open(&app).map(|s| s.verify_password(&f.name, &f.password));
    let Ok(Ok(Some(account))) = found else {
        app.auth.failed(&f.name);
        let m = pages::login(&f.csrf, Some("Sai tên đăng nhập hoặc mật khẩu"));
        return page(StatusCode::UNAUTHORIZED, m);
    };
    let id = match app.auth.login(account) {
        Ok((id, _)) => id,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let cookie = format!("{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/");
    let mut r = Redirect::to("/").into_response();
    if let Ok(v) = cookie.parse() {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    note: String,
}

async fn logout(State(app): State<Shared>, h: HeaderMap, Form(f): Form<CsrfForm>) -> Response {
    let s = match session(&app, &h) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    if !same(&s.csrf, &f.csrf) {
        return error(StatusCode::FORBIDDEN, "Thiếu mã chống giả mạo (CSRF)");
    }
    if let Some(id) = h
        .get(header::COOKIE)
        .and_then(|c| c.to_str().ok())
        .and_then(|c| cookie_value(c, COOKIE))
    {
        app.auth.logout(id);
    }
    Redirect::to("/login").into_response()
}

fn who(s: &Session) -> Option<(&str, &str)> {
    Some((s.account.name.as_str(), s.csrf.as_str()))
}

async fn overview(State(app): State<Shared>, h: HeaderMap) -> Response {
    let (s, store) = match session(&app, &h).and_then(|s| open(&app).map(|st| (s, st))) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    match store.units() {
        Ok(mut units) => {
            units.retain(|u| s.account.sees(&u.code));
            let body = pages::overview(&units);
            page(StatusCode::OK, pages::layout("Tổng quan", who(&s), body))
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

#[derive(Deserialize)]
struct Search {
    #[serde(default)]
    q: String,
}

async fn unit(
    State(app): State<Shared>,
    h: HeaderMap,
    Path(code): Path<String>,
    Query(q): Query<Search>,
) -> Response {
    let (s, store) = match session(&app, &h).and_then(|s| open(&app).map(|st| (s, st))) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    if !s.account.sees(&code) {
        return error(StatusCode::FORBIDDEN, "Đơn vị này không thuộc tài khoản");
    }
    match store.offenders(Some(&code), None, None) {
        Ok(mut list) => {
            let needle = q.q.to_lowercase();
            list.retain(|o| {
                needle.is_empty()
                    || o.ip.contains(&needle)
                    || o.hostname
                        .as_deref()
                        .is_some_and(|n| n.to_lowercase().contains(&needle))
            });
            let title = format!("Đơn vị {code}");
            page(
                StatusCode::OK,
                pages::layout(&title, who(&s), pages::unit(&list, &q.q)),
            )
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// The offender `ip` if the account sees its unit (else 404, as if absent).
fn visible(
    store: &Store,
    account: &Account,
    ip: &str,
) -> Result<crate::store::query::OffenderDetail, Refused> {
    let not_found = || Box::new(error(StatusCode::NOT_FOUND, "Không có máy này"));
    let ip: IpAddr = ip.parse().map_err(|_| not_found())?;
    match store.offender(ip) {
        Ok(Some(o)) if account.sees(&o.unit) => Ok(o),
        Ok(_) => Err(not_found()),
        Err(e) => Err(Box::new(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &e.to_string(),
        ))),
    }
}

async fn host(State(app): State<Shared>, h: HeaderMap, Path(ip): Path<String>) -> Response {
    let (s, store) = match session(&app, &h).and_then(|s| open(&app).map(|st| (s, st))) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let o = match visible(&store, &s.account, &ip) {
        Ok(o) => o,
        Err(r) => return *r,
    };
    let events = store.host_events(o.ip.parse().unwrap_or(IpAddr::from([0, 0, 0, 0])));
    let events = events.unwrap_or_default();
    let csrf = s.account.acts_on(&o.unit).then_some(s.csrf.as_str());
    let body = pages::host(&o, &events, csrf);
    page(
        StatusCode::OK,
        pages::layout(&format!("Máy {}", o.ip), who(&s), body),
    )
}

async fn mark_cleaned(
    State(app): State<Shared>,
    h: HeaderMap,
    Path(ip): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    let s = match session(&app, &h) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    if !same(&s.csrf, &f.csrf) {
        return error(StatusCode::FORBIDDEN, "Thiếu mã chống giả mạo (CSRF)");
    }
    let o = match open(&app).and_then(|st| visible(&st, &s.account, &ip)) {
        Ok(o) => o,
        Err(r) => return *r,
    };
    if !s.account.acts_on(&o.unit) {
        return error(StatusCode::FORBIDDEN, "Tài khoản chỉ được xem");
    }
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
    let done = Store::open(&app.store).and_then(|mut st| {
        let ip: IpAddr =
            o.ip.parse()
                .map_err(|_| crate::store::StoreError::Invalid(o.ip.clone()))?;
        st.mark_cleaned(ip, &s.account.name, &f.note, now)
    });
    match done {
        Ok(_) => Redirect::to(&format!("/host/{}", o.ip)).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}
