//! A unit's page: its offenders (filter by status, search, sort), the
//! same list as CSV or XLSX, and the unit's report for a period.

use super::overview::{PeriodQuery, download, format_of, scoped_report};
use super::{Ctx, Shared, error, internal, pages};
use crate::reports::export::{ExportRow, Selection, select_offenders};
use crate::reports::export::{text, xlsx};
use crate::store::Status;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use std::net::IpAddr;

/// The list's filter, search and order, kept in the URL (and in the
/// download links, so a download is what the page shows).
#[derive(Deserialize, Default, Clone)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    sort: String,
}

const SORTS: [(&str, &str); 5] = [
    ("last", "Lần cuối (mới nhất trước)"),
    ("hits", "Số lần (nhiều nhất trước)"),
    ("first", "Lần đầu (cũ nhất trước)"),
    ("ip", "Địa chỉ IP"),
    ("name", "Tên máy"),
];

impl ListQuery {
    fn status(&self) -> Option<Status> {
        Status::parse(&self.status)
    }

    /// The query string of this filter, for links.
    fn link(&self) -> String {
        let enc = |s: &str| {
            s.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect::<String>()
        };
        format!(
            "q={}&status={}&sort={}",
            enc(&self.q),
            enc(&self.status),
            enc(&self.sort)
        )
    }

    fn keep(&self, r: &ExportRow) -> bool {
        let needle = self.q.trim().to_lowercase();
        let hit = needle.is_empty()
            || r.host_ip.contains(&needle)
            || r.hostname
                .as_deref()
                .is_some_and(|n| n.to_lowercase().contains(&needle))
            || r.top_indicators
                .iter()
                .any(|i| i.indicator.to_lowercase().contains(&needle));
        hit && self.status().is_none_or(|s| s.as_str() == r.status)
    }

    fn order(&self, rows: &mut [ExportRow]) {
        let ip = |r: &ExportRow| r.host_ip.parse::<IpAddr>().ok();
        match self.sort.as_str() {
            "hits" => rows.sort_by(|a, b| b.hits.cmp(&a.hits).then(ip(a).cmp(&ip(b)))),
            "first" => rows.sort_by_key(|r| r.first_seen_ns),
            "ip" => rows.sort_by_key(ip),
            "name" => rows.sort_by(|a, b| a.hostname.cmp(&b.hostname).then(ip(a).cmp(&ip(b)))),
            _ => rows.sort_by_key(|r| std::cmp::Reverse(r.last_seen_ns)),
        }
    }
}

/// The unit's offenders as filtered, or the refusal: 403 for a unit the
/// account does not see, 404 for a code no one knows.
fn selection(ctx: &Ctx, app: &Shared, code: &str, q: &ListQuery) -> Result<Selection, Response> {
    if !ctx.account().sees(code) {
        return Err(error(
            StatusCode::FORBIDDEN,
            "Đơn vị này không thuộc tài khoản",
        ));
    }
    let in_store = ctx.store.has_unit(code).map_err(internal)?;
    let in_file = app.opts.units.iter().find(|(c, _)| c == code);
    if !in_store {
        return match in_file {
            Some((c, name)) => Ok(Selection {
                all: false,
                since_ns: None,
                units: vec![(c.clone(), name.clone())],
                rows: Vec::new(),
            }),
            None => Err(error(StatusCode::NOT_FOUND, "Không có đơn vị này")),
        };
    }
    let mut sel = select_offenders(&ctx.store, Some(code), None).map_err(internal)?;
    if let (Some(u), Some((_, name))) = (sel.units.first_mut(), in_file)
        && u.1.is_empty()
    {
        u.1 = name.clone();
    }
    sel.rows.retain(|r| q.keep(r));
    q.order(&mut sel.rows);
    Ok(sel)
}

/// `GET /unit/{code}`.
pub async fn page(
    State(app): State<Shared>,
    ctx: Ctx,
    Path(code): Path<String>,
    Query(q): Query<ListQuery>,
) -> Response {
    let sel = match selection(&ctx, &app, &code, &q) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let name = sel.units.first().map(|u| u.1.clone()).unwrap_or_default();
    let title = if name.is_empty() {
        format!("Đơn vị {code}")
    } else {
        format!("{name} ({code})")
    };
    let p = match pages::period("", "", 30) {
        Ok(p) => p,
        Err(e) => return internal(e),
    };
    ctx.page(&title, body(&code, &sel, &q, &p))
}

fn filters(code: &str, q: &ListQuery) -> Markup {
    html! {
        form.bar method="get" action={ "/unit/" (code) } {
            label { "Tìm (địa chỉ, tên máy, chỉ dấu)" input name="q" value=(q.q); }
            label { "Trạng thái"
                select name="status" {
                    option value="" selected[q.status().is_none()] { "Tất cả" }
                    @for s in [Status::Open, Status::Reinfected, Status::Cleaned] {
                        option value=(s.as_str()) selected[q.status() == Some(s)] { (s.label_vi()) }
                    }
                }
            }
            label { "Sắp xếp"
                select name="sort" {
                    @for (v, l) in SORTS {
                        option value=(v) selected[q.sort == v || (q.sort.is_empty() && v == "last")] { (l) }
                    }
                }
            }
            button type="submit" { "Lọc" }
        }
    }
}

fn body(code: &str, sel: &Selection, q: &ListQuery, p: &crate::reports::report::Period) -> Markup {
    let counts = sel.unit_counts();
    let c = counts.first();
    let report_buttons = html! {
        button type="submit" name="format" value="html" { "Báo cáo (HTML)" }
        button type="submit" name="format" value="xlsx" { "Báo cáo (XLSX)" }
    };
    html! {
        p {
            "Đang hiển thị " (sel.rows.len()) " máy"
            @if let Some(c) = c {
                " — chưa xử lý " (c.open) ", tái nhiễm " (c.reinfected) ", đã xử lý " (c.cleaned)
            }
        }
        (filters(code, q))
        p {
            "Tải danh sách đang lọc: "
            a href={ "/unit/" (code) "/offenders.csv?" (q.link()) } { "CSV" } " · "
            a href={ "/unit/" (code) "/offenders.xlsx?" (q.link()) } { "XLSX" }
        }
        table {
            tr {
                th { "Địa chỉ IP" } th { "Tên máy" } th { "Trạng thái" } th { "Lần đầu" }
                th { "Lần cuối" } th.n { "Số lần" } th { "Chỉ dấu nhiều nhất" }
            }
            @for r in &sel.rows {
                tr {
                    td.nw { a href={ "/host/" (r.host_ip) } { (r.host_ip) } }
                    td.nw { (r.hostname.as_deref().unwrap_or("")) }
                    td class={ "nw " (r.status) } { (r.status_label) }
                    td.nw { (pages::when(r.first_seen_ns)) } td.nw { (pages::when(r.last_seen_ns)) } td.n { (r.hits) }
                    td { @for (i, t) in r.top_indicators.iter().enumerate() { @if i > 0 { ", " } (t.indicator) } }
                }
            }
        }
        h2 { "Báo cáo của đơn vị theo kỳ" }
        (pages::period_form(&format!("/unit/{code}/report"), p, report_buttons))
    }
}

/// `GET /unit/{code}/offenders.csv`.
pub async fn csv(
    State(app): State<Shared>,
    ctx: Ctx,
    Path(code): Path<String>,
    Query(q): Query<ListQuery>,
) -> Response {
    let sel = match selection(&ctx, &app, &code, &q) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let mut out = Vec::new();
    if let Err(e) = text::write_csv(&sel.rows, &mut out) {
        return internal(e);
    }
    let name = format!("may-nhiem-{code}.csv");
    super::overview::attachment(out, "text/csv; charset=utf-8", &name)
}

/// `GET /unit/{code}/offenders.xlsx`.
pub async fn xlsx(
    State(app): State<Shared>,
    ctx: Ctx,
    Path(code): Path<String>,
    Query(q): Query<ListQuery>,
) -> Response {
    let sel = match selection(&ctx, &app, &code, &q) {
        Ok(s) => s,
        Err(r) => return r,
    };
    match xlsx::xlsx_bytes(&sel) {
        Ok(b) => super::overview::attachment(
            b,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            &format!("may-nhiem-{code}.xlsx"),
        ),
        Err(e) => internal(e),
    }
}

/// `GET /unit/{code}/report`: the unit's report for a period.
pub async fn report(
    State(app): State<Shared>,
    mut ctx: Ctx,
    Path(code): Path<String>,
    Query(q): Query<PeriodQuery>,
) -> Response {
    let who = ctx.account().clone();
    if !who.sees(&code) {
        return error(StatusCode::FORBIDDEN, "Đơn vị này không thuộc tài khoản");
    }
    let (p, format) = match (pages::period(&q.from, &q.to, 30), format_of(&q.format)) {
        (Ok(p), Ok(f)) => (p, f),
        (Err(e), _) => return error(StatusCode::BAD_REQUEST, &e),
        (_, Err(r)) => return r,
    };
    match scoped_report(&app, &mut ctx.store, &p, Some(&code), &who) {
        Ok(r) => download(&r, format, &format!("bao-cao-{code}")),
        Err(resp) => resp,
    }
}
