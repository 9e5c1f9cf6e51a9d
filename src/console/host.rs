//! A host's page: what it hit (the timeline of its alerts with their
//! evidence), the names its address went by, its status history, and the
//! form that marks it cleaned or reopens it.

use super::auth::same;
use super::{Ctx, Shared, error, forbidden_csrf, internal, pages};
use crate::store::query::{NameSeen, OffenderDetail};
use crate::store::{Status, Store};
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;
use std::net::IpAddr;

/// Alerts the timeline shows (newest first).
const TIMELINE: usize = 200;
/// Longest note kept with a status change.
const MAX_NOTE: usize = 500;

/// The offender `ip` if the account sees its unit; 404 otherwise, as if
/// absent, so a unit cannot learn which addresses another unit has.
fn visible(ctx: &Ctx, ip: &str) -> Result<(IpAddr, OffenderDetail), Response> {
    let not_found = || error(StatusCode::NOT_FOUND, "Không có máy này");
    let addr: IpAddr = ip.parse().map_err(|_| not_found())?;
    match ctx.store.offender(addr) {
        Ok(Some(o)) if ctx.account().sees(&o.unit) => Ok((addr, o)),
        Ok(_) => Err(not_found()),
        Err(e) => Err(internal(e)),
    }
}

/// `GET /host/{ip}`.
pub async fn page(ctx: Ctx, Path(ip): Path<String>) -> Response {
    let (addr, o) = match visible(&ctx, &ip) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let read = || -> Result<_, crate::store::StoreError> {
        Ok((
            ctx.store.host_events(addr)?,
            ctx.store.host_names(addr)?,
            ctx.store.host_alerts(addr, TIMELINE)?,
        ))
    };
    let (events, names, alerts) = match read() {
        Ok(x) => x,
        Err(e) => return internal(e),
    };
    let csrf = ctx
        .account()
        .acts_on(&o.unit)
        .then_some(ctx.session.csrf.as_str());
    let body = html! {
        (summary(&o))
        (status_form(&format!("/host/{}/status", o.ip), o.status, csrf))
        h2 { "Lịch sử xử lý" }
        (history(&events))
        h2 { "Tên máy đã thấy" }
        (names_table(&names))
        h2 { "Các lần kết nối độc hại (mới nhất trước, tối đa " (TIMELINE) ")" }
        (timeline(&alerts))
    };
    ctx.page(&format!("Máy {}", o.ip), body)
}

fn summary(o: &OffenderDetail) -> Markup {
    html! {
        p {
            "Đơn vị: " a href={ "/unit/" (o.unit) } { (o.unit_name) " (" (o.unit) ")" }
            "; tên máy: " (o.hostname.as_deref().unwrap_or("—"))
        }
        p {
            "Trạng thái: " span class=(o.status) { (pages::status_vi(o.status)) }
            "; lần đầu " (pages::when(o.first_seen_ns)) ", lần cuối " (pages::when(o.last_seen_ns))
            "; " (o.hits) " lần, " (o.indicator_count) " chỉ dấu; mức độ " (o.severity)
        }
        @if !o.categories.is_empty() { p { "Loại: " (o.categories.join(", ")) } }
        h2 { "Chỉ dấu nhiều nhất" }
        ul { @for (v, n) in &o.top_indicators { li { (v) " — " (n) " lần" } } }
    }
}

/// The mark-cleaned or reopen form of a host whose status is `status`,
/// posting to `to`; a read-only line without `csrf` (the account may not
/// act). The sensor's and the central console's host pages share it.
pub fn status_form(to: &str, status: &str, csrf: Option<&str>) -> Markup {
    let Some(csrf) = csrf else {
        return html! { p.muted { "Tài khoản này chỉ được xem." } };
    };
    let (action, label) = if status == Status::Cleaned.as_str() {
        ("reopen", "Mở lại (chưa xử lý)")
    } else {
        ("cleaned", "Đánh dấu đã xử lý")
    };
    html! {
        form.bar method="post" action=(to) {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="action" value=(action);
            label { "Ghi chú" input name="note" size="50" maxlength=(MAX_NOTE); }
            button type="submit" { (label) }
        }
    }
}

fn history(events: &[(i64, String, String, String)]) -> Markup {
    html! {
        table {
            tr { th { "Thời điểm" } th { "Trạng thái" } th { "Người thực hiện" } th { "Ghi chú" } }
            @for (at, st, by, note) in events {
                tr { td { (pages::when(*at)) } td class=(st) { (pages::status_vi(st)) } td { (by) } td { (note) } }
            }
        }
    }
}

fn names_table(names: &[NameSeen]) -> Markup {
    html! {
        @if names.is_empty() { p.muted { "Chưa thấy tên nào (DHCP, NetBIOS, mDNS)." } }
        @else {
            table {
                tr { th { "Tên" } th { "Nguồn" } th { "MAC" } th { "Lần đầu" } th { "Lần cuối" } }
                @for n in names {
                    tr {
                        td { (n.name) } td { (n.source) } td { (n.mac.as_deref().unwrap_or("")) }
                        td { (pages::when(n.first_seen_ns)) } td { (pages::when(n.last_seen_ns)) }
                    }
                }
            }
        }
    }
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn timeline(alerts: &[(i64, String)]) -> Markup {
    html! {
        @if alerts.is_empty() { p.muted { "Không còn cảnh báo gốc (đã quá thời hạn lưu)." } }
        @else {
            table {
                tr { th { "Thời điểm" } th { "Chỉ dấu" } th { "Thấy trong" } th { "Đích" } th { "Nguồn chỉ dấu" } th { "Bằng chứng" } }
                @for (ts, json) in alerts {
                    @let v: Value = serde_json::from_str(json).unwrap_or(Value::Null);
                    tr {
                        td.nw { (pages::when(*ts)) @if v.get("retro").is_some() { br; span.muted { "(dò lại)" } } }
                        td { (text(&v, "indicator")) }
                        td { (text(&v, "observed_in")) ": " (text(&v, "observed")) }
                        td { (text(&v, "dest_ip")) ":" (v.get("dest_port").and_then(Value::as_u64).unwrap_or(0)) " " (text(&v, "proto")) }
                        td { (text(&v, "feed")) " / " (text(&v, "category")) " / " (text(&v, "severity")) }
                        td.evidence { (evidence(&v)) }
                    }
                }
            }
        }
    }
}

/// What made the alert: the heuristic's evidence, or the app-layer record.
fn evidence(v: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(h) = v.get("heuristic").and_then(Value::as_str) {
        parts.push(format!("heuristic: {h}"));
    }
    for k in ["evidence", "dns", "tls", "quic", "http", "correlated_from"] {
        if let Some(x) = v.get(k) {
            parts.push(format!("{k}: {x}"));
        }
    }
    parts.join("\n")
}

/// What [`status_form`] posts.
#[derive(Deserialize)]
pub struct StatusForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    note: String,
}

impl StatusForm {
    /// The status asked for and the note (trimmed, at most [`MAX_NOTE`]
    /// characters); 400 for an action the form never sends.
    pub fn change(&self) -> Result<(Status, String), Response> {
        let status = match self.action.as_str() {
            "cleaned" => Status::Cleaned,
            "reopen" => Status::Open,
            _ => return Err(error(StatusCode::BAD_REQUEST, "Thao tác không hợp lệ")),
        };
        Ok((status, self.note.trim().chars().take(MAX_NOTE).collect()))
    }
}

/// `POST /host/{ip}/status`: mark cleaned or reopen, with a note.
pub async fn set_status(
    State(app): State<Shared>,
    ctx: Ctx,
    Path(ip): Path<String>,
    Form(f): Form<StatusForm>,
) -> Response {
    if !same(&ctx.session.csrf, &f.csrf) {
        return forbidden_csrf();
    }
    let (addr, o) = match visible(&ctx, &ip) {
        Ok(x) => x,
        Err(r) => return r,
    };
    if !ctx.account().acts_on(&o.unit) {
        return error(StatusCode::FORBIDDEN, "Tài khoản chỉ được xem");
    }
    let (status, note) = match f.change() {
        Ok(x) => x,
        Err(r) => return r,
    };
    let now = crate::run::status::now_ns();
    let actor = ctx.account().name.clone();
    drop(ctx);
    let path = match app.store_path() {
        Ok(p) => p,
        Err(r) => return r,
    };
    let done = Store::open(path).and_then(|mut st| st.set_status(addr, status, &actor, &note, now));
    match done {
        Ok(_) => {
            tracing::info!("console: {actor} set {addr} to {}", status.as_str());
            Redirect::to(&format!("/host/{addr}")).into_response()
        }
        Err(e) => internal(e),
    }
}
