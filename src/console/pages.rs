//! What every console page shares: the frame with its menu, the login
//! form, the style sheet, times and status labels. Server-rendered with
//! maud (every value escaped), Vietnamese labels, no JavaScript.

use crate::reports::report::{DateArg, Period};
use crate::store::Status;
use axum::http::header;
use axum::response::IntoResponse;
use maud::{DOCTYPE, Markup, html};

const CSS: &str = include_str!("assets/console.css");

/// `GET /assets/console.css`.
pub async fn css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS)
}

/// The logged-in account as the header shows it.
pub struct Nav<'a> {
    pub name: &'a str,
    pub csrf: &'a str,
    /// Sees every unit: the feeds and sensor pages.
    pub province: bool,
    /// Province admin: the audit log.
    pub admin: bool,
    /// The feeds page exists (a sensor's console; the central has none).
    pub feeds: bool,
}

/// Time as the console shows it: local date and time.
pub fn when(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns)
        .with_timezone(&chrono::Local)
        .format("%d/%m/%Y %H:%M:%S")
        .to_string()
}

/// The page frame.
pub fn layout(title: &str, nav: Option<&Nav<'_>>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="vi" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — gatewatch" }
                link rel="stylesheet" href="/assets/console.css";
            }
            body {
                header {
                    strong { "gatewatch" }
                    @if let Some(n) = nav {
                        a href="/" { "Tổng quan" }
                        @if n.province {
                            @if n.feeds { a href="/feeds" { "Nguồn chỉ dấu" } }
                            a href="/sensors" { "Cảm biến" }
                        }
                        @if n.admin { a href="/audit" { "Nhật ký thao tác" } }
                        span.me { "Tài khoản: " (n.name) }
                        form.inline method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(n.csrf);
                            button type="submit" { "Đăng xuất" }
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
            form.login method="post" action="/login" {
                @if let Some(m) = message { p.warn { (m) } }
                input type="hidden" name="csrf" value=(token);
                p { label { "Tên đăng nhập" input name="name" autocomplete="username" required; } }
                p { label { "Mật khẩu" input type="password" name="password" autocomplete="current-password" required; } }
                button type="submit" { "Đăng nhập" }
            }
        },
    )
}

pub fn status_vi(s: &str) -> &'static str {
    Status::parse(s).map_or("?", Status::label_vi)
}

/// A period from a form's `from`/`to` (YYYY-MM-DD), else the last `days`
/// days to today; an unreadable date is an error to show.
pub fn period(from: &str, to: &str, days: u64) -> Result<Period, String> {
    let today = chrono::Local::now().date_naive();
    let day = |s: &str, default: chrono::NaiveDate| {
        if s.trim().is_empty() {
            Ok(DateArg::Day(default))
        } else {
            DateArg::parse(s)
        }
    };
    let start = today - chrono::Days::new(days.saturating_sub(1));
    Period::new(day(from, start)?, day(to, today)?)
}

/// The period chooser (GET): from, to, and what the button says.
pub fn period_form(action: &str, p: &Period, extra: Markup) -> Markup {
    html! {
        form.bar method="get" action=(action) {
            label { "Từ ngày" input type="date" name="from" value=(p.from_day.format("%Y-%m-%d")); }
            label { "Đến ngày" input type="date" name="to" value=(p.to_day.format("%Y-%m-%d")); }
            (extra)
        }
    }
}
