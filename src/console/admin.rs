//! The province's pages: feeds and sensors (as each sensor last reported
//! them to the store) for accounts that see every unit, and the audit log
//! for province admins.

use super::{Ctx, error, internal, pages};
use crate::store::console::SensorStatus;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};

/// Rows of the audit log shown.
const AUDIT_ROWS: usize = 500;
/// A sensor silent longer than this is flagged (it reports every 15 s).
const STALE_S: i64 = 120;

/// Every sensor's status, for an account that sees every unit (403 else).
fn province_statuses(ctx: &Ctx) -> Result<Vec<Result<SensorStatus, String>>, Response> {
    if !ctx.account().sees_all() {
        return Err(error(
            StatusCode::FORBIDDEN,
            "Trang này chỉ dành cho cấp tỉnh",
        ));
    }
    ctx.store.sensor_statuses().map_err(internal)
}

fn unix(s: f64) -> String {
    pages::when((s * 1e9) as i64)
}

fn none_yet() -> Markup {
    html! { p.muted { "Chưa có cảm biến nào ghi trạng thái vào kho dữ liệu này." } }
}

/// `GET /feeds`.
pub async fn feeds(ctx: Ctx) -> Response {
    let all = match province_statuses(&ctx) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let body = html! {
        @if all.is_empty() { (none_yet()) }
        @for s in &all {
            @match s {
                Err(e) => p.warn { (e) },
                Ok(s) => {
                    h2 { "Cảm biến " (s.sensor) }
                    p.muted { "Cập nhật lúc " (pages::when(s.at_ns)) }
                    table {
                        tr { th { "Nguồn" } th.n { "Số chỉ dấu" } th { "Theo loại" } th { "Nạp thành công gần nhất" } th { "Lần bị từ chối gần nhất" } th { "Số lần nạp lại bị từ chối" } }
                        @for f in &s.feeds {
                            tr {
                                td { (f.name) }
                                td.n { (f.indicators.values().sum::<u64>()) }
                                td { @for (i, (k, n)) in f.indicators.iter().filter(|(_, n)| **n > 0).enumerate() { @if i > 0 { ", " } (k) ": " (n) } }
                                td { (f.last_load_s.map(unix).unwrap_or_default()) }
                                td class=[f.last_failure_s.map(|_| "warn")] { (f.last_failure_s.map(unix).unwrap_or_default()) }
                                td { @for (i, (k, n)) in f.refused.iter().enumerate() { @if i > 0 { ", " } (k) ": " (n) } }
                            }
                        }
                    }
                }
            }
        }
    };
    ctx.page("Nguồn chỉ dấu", body)
}

/// `GET /sensors`.
pub async fn sensors(ctx: Ctx) -> Response {
    let all = match province_statuses(&ctx) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let now = crate::run::status::now_ns();
    let body = html! {
        @if all.is_empty() { (none_yet()) }
        @for s in &all {
            @match s {
                Err(e) => p.warn { (e) },
                Ok(s) => {
                    @let stale = s.mode == "live" && (now - s.at_ns) / 1_000_000_000 > STALE_S;
                    h2 { "Cảm biến " (s.sensor) " (" (if s.mode == "live" { "trực tiếp" } else { "phát lại pcap" }) ")" }
                    p class=[stale.then_some("warn")] {
                        "Báo cáo gần nhất: " (pages::when(s.at_ns))
                        @if stale { " — quá " (STALE_S) " giây không có tin: cảm biến có thể đã dừng" }
                    }
                    table {
                        tr { th { "Giao diện" } th { "Hoạt động" } th.n { "Gói tin" } th.n { "Lỗi" } }
                        @for c in &s.captures {
                            tr {
                                td { (c.interface) }
                                td class=(if c.up || s.mode != "live" { "cleaned" } else { "open" }) {
                                    (if s.mode != "live" { "—" } else if c.up { "Có" } else { "Không" })
                                }
                                td.n { (c.packets) } td.n { (c.errors) }
                            }
                        }
                    }
                    h2 { "Gói tin bị bỏ" }
                    table {
                        tr { th { "Khâu" } th.n { "Số gói" } }
                        @for (stage, n) in &s.drops { tr { td { (stage) } td.n class=[(*n > 0).then_some("warn")] { (n) } } }
                    }
                }
            }
        }
    };
    ctx.page("Cảm biến", body)
}

/// `GET /audit`: every change, newest first.
pub async fn audit(ctx: Ctx) -> Response {
    if !ctx.account().is_admin() {
        return error(
            StatusCode::FORBIDDEN,
            "Nhật ký chỉ dành cho quản trị cấp tỉnh",
        );
    }
    let rows = match ctx.store.audit_log(AUDIT_ROWS) {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let body = html! {
        table {
            tr { th { "Thời điểm" } th { "Người thực hiện" } th { "Thao tác" } th { "Đối tượng" } th { "Ghi chú" } }
            @for (at, actor, action, target, note) in &rows {
                tr { td { (pages::when(*at)) } td { (actor) } td { (action_vi(action)) } td { (target) } td { (note) } }
            }
        }
    };
    ctx.page("Nhật ký thao tác", body)
}

pub(super) fn action_vi(a: &str) -> String {
    let vi = match a {
        "host-cleaned" => "Đánh dấu đã xử lý",
        "host-reopened" => "Mở lại",
        "account-add" => "Tạo tài khoản",
        "account-passwd" => "Đổi mật khẩu",
        "account-disable" => "Khóa tài khoản",
        "token-add" => "Cấp mã API",
        _ => return a.to_owned(),
    };
    format!("{vi} ({a})")
}
