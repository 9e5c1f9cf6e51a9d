//! A host of the central view (`/h/{sensor}/{ip}`): its hits as shipped,
//! its status history (at the sensor and centrally), and the form that
//! marks it cleaned or reopens it centrally.

use super::{Caller, Who, run, seg};
use crate::console::auth::same;
use crate::console::host::{StatusForm, status_form};
use crate::console::{Shared, error, forbidden_csrf, pages};
use crate::store::central::{Central, CentralError, CentralEvent, CentralHit, HostDetail};
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use std::net::IpAddr;

/// Hits the page shows (newest first).
const TIMELINE: usize = 200;

/// Host `ip` of `sensor` if the account sees its province and unit; 404
/// otherwise, as if absent, so no one learns another unit's addresses.
fn visible(
    c: &mut Central,
    who: &Who,
    sensor: &str,
    ip: &str,
) -> Result<Result<(IpAddr, HostDetail), Response>, CentralError> {
    let not_found = || error(StatusCode::NOT_FOUND, "Không có máy này");
    let Ok(addr) = ip.parse::<IpAddr>() else {
        return Ok(Err(not_found()));
    };
    let a = who.account();
    Ok(match c.host(sensor, addr)? {
        Some(h) if a.sees_province(&h.host.province) && a.sees(&h.host.unit) => Ok((addr, h)),
        _ => Err(not_found()),
    })
}

/// `GET /h/{sensor}/{ip}`.
pub async fn page(
    State(app): State<Shared>,
    caller: Caller,
    Path((sensor, ip)): Path<(String, String)>,
) -> Response {
    run(&app, caller, move |c, who| {
        let (addr, h) = match visible(c, who, &sensor, &ip)? {
            Ok(x) => x,
            Err(r) => return Ok(r),
        };
        let hits = c.host_hits(&sensor, addr, TIMELINE)?;
        let events = c.host_events(&sensor, addr)?;
        let csrf = who
            .account()
            .acts_on(&h.host.unit)
            .then_some(who.session.csrf.as_str());
        let body = html! {
            (summary(&h))
            (status_form(&format!("/h/{}/{}", seg(&h.host.sensor), h.host.ip), &h.host.status, csrf))
            h2 { "Lịch sử xử lý" }
            (history(&events))
            h2 { "Các lần kết nối độc hại (mới nhất trước, tối đa " (TIMELINE) ")" }
            (timeline(&hits))
        };
        Ok(who.page(&format!("Máy {} ({})", h.host.ip, h.host.sensor), body))
    })
    .await
}

fn summary(h: &HostDetail) -> Markup {
    let x = &h.host;
    html! {
        p {
            "Tỉnh: " a href={ "/p/" (seg(&x.province)) } { (x.province) }
            "; đơn vị: " a href={ "/p/" (seg(&x.province)) "/u/" (seg(&x.unit)) } { (h.unit_name) " (" (x.unit) ")" }
            "; cảm biến: " (x.sensor)
            "; tên máy: " (x.hostname.as_deref().unwrap_or("—"))
        }
        p {
            "Trạng thái: " span class=(x.status) { (pages::status_vi(&x.status)) }
            "; lần đầu " (pages::when(h.first_seen_ns)) ", lần cuối " (pages::when(h.last_seen_ns))
            "; " (x.hits) " lần"
            @if let Some(at) = h.cleaned_at_ns { "; xử lý lúc " (pages::when(at)) }
        }
    }
}

fn history(events: &[CentralEvent]) -> Markup {
    html! {
        table {
            tr { th { "Thời điểm" } th { "Trạng thái" } th { "Người thực hiện" } th { "Nơi" } th { "Ghi chú" } }
            @for e in events {
                tr {
                    td { (pages::when(e.at_ns)) }
                    td class=(e.status) { (pages::status_vi(&e.status)) }
                    td { (e.actor) }
                    td { (if e.origin == "central" { "trung tâm" } else { "cảm biến" }) }
                    td { (e.note) }
                }
            }
        }
    }
}

fn timeline(hits: &[CentralHit]) -> Markup {
    html! {
        @if hits.is_empty() { p.muted { "Không còn bản ghi (đã quá thời hạn lưu)." } }
        @else {
            table {
                tr { th { "Thời điểm" } th { "Chỉ dấu" } th { "Thấy trong" } th { "Nguồn chỉ dấu" } }
                @for h in hits {
                    tr {
                        td.nw { (pages::when(h.ts_ns)) }
                        td { (h.indicator) " (" (h.kind) ")" }
                        td { (h.observed_in) }
                        td { (h.feed) " / " (h.category) " / " (h.severity) }
                    }
                }
            }
        }
    }
}

/// `POST /h/{sensor}/{ip}`: mark cleaned or reopen centrally, with a note;
/// the central is authoritative, and the next hit the sensor ships makes
/// the host reinfected.
pub async fn set_status(
    State(app): State<Shared>,
    caller: Caller,
    Path((sensor, ip)): Path<(String, String)>,
    Form(f): Form<StatusForm>,
) -> Response {
    if !same(&caller.session.csrf, &f.csrf) {
        return forbidden_csrf();
    }
    let (status, note) = match f.change() {
        Ok(x) => x,
        Err(r) => return r,
    };
    run(&app, caller, move |c, who| {
        let (addr, h) = match visible(c, who, &sensor, &ip)? {
            Ok(x) => x,
            Err(r) => return Ok(r),
        };
        if !who.account().acts_on(&h.host.unit) {
            return Ok(error(StatusCode::FORBIDDEN, "Tài khoản chỉ được xem"));
        }
        let actor = format!("console:{}", who.account().name);
        c.set_status(&sensor, addr, status, &actor, &note)?;
        tracing::info!(
            "console: {actor} set {sensor}/{addr} to {}",
            status.as_str()
        );
        let back = format!("/h/{}/{}", seg(&sensor), addr);
        Ok(Redirect::to(&back).into_response())
    })
    .await
}
