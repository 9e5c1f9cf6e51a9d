//! The console's pages, server-rendered with maud (every value escaped),
//! Vietnamese labels, no JavaScript, the style sheet inline.

use crate::store::Status;
use crate::store::query::{OffenderDetail, UnitRow};
use maud::{DOCTYPE, Markup, PreEscaped, html};

const STYLE: &str = "body{font-family:sans-serif;margin:0;color:#222}\
header{background:#0b3d6b;color:#fff;padding:.6em 1em;display:flex;gap:1em;align-items:center}\
header a{color:#fff}main{padding:1em}table{border-collapse:collapse}\
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left}th{background:#eef}\
.open{color:#b00}.cleaned{color:#070}.reinfected{color:#b60;font-weight:bold}\
form.inline{display:inline}";

/// Time as the console shows it: local date and time.
pub fn when(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns)
        .with_timezone(&chrono::Local)
        .format("%d/%m/%Y %H:%M:%S")
        .to_string()
}

/// The page frame; `who` and `csrf` give the logout form.
pub fn layout(title: &str, who: Option<(&str, &str)>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="vi" {
            head {
                meta charset="utf-8";
                title { (title) " — gatewatch" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    strong { "gatewatch" }
                    a href="/" { "Tổng quan" }
                    @if let Some((name, csrf)) = who {
                        span { "Tài khoản: " (name) }
                        form.inline method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(csrf);
                            button { "Đăng xuất" }
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

pub fn login(token: &str, message: Option<&str>) -> Markup {
    layout(
        "Đăng nhập",
        None,
        html! {
            @if let Some(m) = message { p.open { (m) } }
            form method="post" action="/login" {
                input type="hidden" name="csrf" value=(token);
                p { label { "Tên đăng nhập " input name="name" autocomplete="username"; } }
                p { label { "Mật khẩu " input type="password" name="password" autocomplete="current-password"; } }
                button { "Đăng nhập" }
            }
        },
    )
}

pub fn overview(units: &[UnitRow]) -> Markup {
    let total = |f: fn(&UnitRow) -> u64| units.iter().map(f).sum::<u64>();
    html! {
        p { "Số máy nhiễm: " (total(|u| u.hosts)) ", chưa xử lý: " (total(|u| u.open))
            ", đã xử lý: " (total(|u| u.cleaned)) ", tái nhiễm: " (total(|u| u.reinfected)) }
        table {
            tr { th { "Mã" } th { "Đơn vị" } th { "Số máy" } th { "Chưa xử lý" } th { "Đã xử lý" } th { "Tái nhiễm" } }
            @for u in units {
                tr {
                    td { a href={ "/unit/" (u.code) } { (u.code) } }
                    td { (u.name) } td { (u.hosts) } td { (u.open) } td { (u.cleaned) } td { (u.reinfected) }
                }
            }
        }
    }
}

pub fn unit(list: &[OffenderDetail], q: &str) -> Markup {
    html! {
        form method="get" {
            label { "Tìm (địa chỉ, tên máy) " input name="q" value=(q); }
            button { "Tìm" }
        }
        table {
            tr { th { "Địa chỉ IP" } th { "Tên máy" } th { "Trạng thái" } th { "Lần đầu" } th { "Lần cuối" } th { "Số lần" } th { "Chỉ dấu" } }
            @for o in list {
                tr {
                    td { a href={ "/host/" (o.ip) } { (o.ip) } }
                    td { (o.hostname.as_deref().unwrap_or("")) }
                    td class=(o.status) { (status_vi(o.status)) }
                    td { (when(o.first_seen_ns)) } td { (when(o.last_seen_ns)) } td { (o.hits) }
                    td { @for (i, (v, _)) in o.top_indicators.iter().enumerate() { @if i > 0 { ", " } (v) } }
                }
            }
        }
    }
}

/// A host: what it hit, its status history, and the form to change it.
pub fn host(
    o: &OffenderDetail,
    events: &[(i64, String, String, String)],
    csrf: Option<&str>,
) -> Markup {
    html! {
        p { "Đơn vị: " (o.unit_name) " (" (o.unit) "); tên máy: " (o.hostname.as_deref().unwrap_or("—")) }
        p { "Trạng thái: " span class=(o.status) { (status_vi(o.status)) } }
        h2 { "Chỉ dấu" }
        ul { @for (v, n) in &o.top_indicators { li { (v) " — " (n) " lần" } } }
        h2 { "Lịch sử xử lý" }
        table {
            tr { th { "Thời điểm" } th { "Trạng thái" } th { "Người thực hiện" } th { "Ghi chú" } }
            @for (at, st, by, note) in events { tr { td { (when(*at)) } td { (status_vi(st)) } td { (by) } td { (note) } } }
        }
        @if let Some(csrf) = csrf {
            form method="post" action={ "/host/" (o.ip) "/cleaned" } {
                input type="hidden" name="csrf" value=(csrf);
                label { "Ghi chú " input name="note"; }
                button { "Đánh dấu đã xử lý" }
            }
        }
    }
}

fn status_vi(s: &str) -> &'static str {
    Status::parse(s).map_or("?", Status::label_vi)
}
