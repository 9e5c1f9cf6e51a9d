//! The sensors of what the account sees, with how fresh their shipping
//! is, and the audit log of its province (or of all, for the nation).

use super::{Caller, forbidden, run};
use crate::console::admin::action_vi;
use crate::console::{Shared, pages};
use axum::extract::State;
use axum::response::Response;
use maud::html;

/// A sensor that has not shipped for this long is shown as late (the
/// GatewatchShippingStalled alert's 5 minutes).
const LATE_S: i64 = 300;
const AUDIT_ROWS: usize = 500;

/// `GET /sensors`: for accounts that see a whole province, or the nation.
pub async fn sensors(State(app): State<Shared>, caller: Caller) -> Response {
    run(&app, caller, move |c, who| {
        let a = who.account();
        if !a.sees_all() {
            return Ok(forbidden("Trang cảm biến dành cho cấp tỉnh"));
        }
        let rows = c.sensor_rows(a.province.as_deref())?;
        let now = crate::run::status::now_ns();
        let body = html! {
            @if rows.is_empty() { p.muted { "Chưa có cảm biến nào gửi dữ liệu." } }
            table {
                tr { th { "Tỉnh" } th { "Cảm biến" } th.n { "Bản ghi đã nhận" } th.n { "Số máy" } th { "Gửi gần nhất" } }
                @for s in &rows {
                    @let late = s.shipped_ns.is_none_or(|t| (now - t) / 1_000_000_000 > LATE_S);
                    tr {
                        td { (s.province) } td { (s.sensor) } td.n { (s.acked) } td.n { (s.hosts) }
                        td class=[late.then_some("warn")] {
                            (s.shipped_ns.map_or("chưa".to_owned(), pages::when))
                            @if late { " — quá " (LATE_S / 60) " phút không gửi" }
                        }
                    }
                }
            }
        };
        Ok(who.page("Cảm biến", body))
    })
    .await
}

/// `GET /audit`: admins; a province admin reads its province's rows.
pub async fn audit(State(app): State<Shared>, caller: Caller) -> Response {
    run(&app, caller, move |c, who| {
        let a = who.account();
        if !a.is_admin() {
            return Ok(forbidden("Nhật ký chỉ dành cho quản trị"));
        }
        let rows = c.audit_log(a.province.as_deref(), AUDIT_ROWS)?;
        let body = html! {
            table {
                tr { th { "Thời điểm" } th { "Người thực hiện" } th { "Thao tác" } th { "Đối tượng" } th { "Ghi chú" } }
                @for (at, actor, action, target, note) in &rows {
                    tr { td { (pages::when(*at)) } td { (actor) } td { (action_vi(action)) } td { (target) } td { (note) } }
                }
            }
        };
        Ok(who.page("Nhật ký thao tác", body))
    })
    .await
}
