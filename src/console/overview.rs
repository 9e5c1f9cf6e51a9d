//! The overview: the report's figures for the period over the units the
//! account sees, a row per unit, and the per-day chart; and the province
//! report as a download.

use super::{Ctx, Shared, chart, error, internal, pages};
use crate::reports::report::{self, Period, Report, ReportFormat, Request, figure_rows};
use crate::store::Store;
use crate::store::accounts::Account;
use crate::store::query::UnitFigures;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

/// The period (and, for downloads, the format) a page is asked for.
#[derive(Deserialize, Default)]
pub struct PeriodQuery {
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub format: String,
}

/// Days the overview shows when no period is given.
const DEFAULT_DAYS: u64 = 30;

/// The report for `p` over what `who` sees (`unit`: one unit only).
pub fn scoped_report(
    app: &Shared,
    store: &mut Store,
    p: &Period,
    unit: Option<&str>,
    who: &Account,
) -> Result<Report, Response> {
    let req = Request {
        period: p.clone(),
        unit,
        known_units: app.opts.units.clone(),
    };
    let mut r = Report::build(store, &req).map_err(internal)?;
    r.restrict(|code| who.sees(code));
    Ok(r)
}

/// Seconds east of UTC of the console's local time now.
pub fn local_offset() -> i64 {
    i64::from(chrono::Local::now().offset().local_minus_utc())
}

/// The local day (days since the epoch) of `ns`.
pub fn local_day(ns: i64, offset: i64) -> i64 {
    (ns.div_euclid(1_000_000_000) + offset).div_euclid(86_400)
}

/// `GET /`.
pub async fn page(
    State(app): State<Shared>,
    mut ctx: Ctx,
    Query(q): Query<PeriodQuery>,
) -> Response {
    let p = match pages::period(&q.from, &q.to, DEFAULT_DAYS) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    let who = ctx.account().clone();
    let r = match scoped_report(&app, &mut ctx.store, &p, None, &who) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let off = local_offset();
    let (from, to) = (local_day(p.from_ns, off), local_day(p.to_ns - 1, off));
    let days = match ctx.store.daily_counts(from, off) {
        Ok(d) => d,
        Err(e) => return internal(e),
    };
    let visible = days
        .iter()
        .filter(|(u, _)| who.sees(u))
        .map(|(_, d)| d.as_slice());
    let series = chart::fill(from, to, visible);
    let units = unit_lines(&app, &r, &who);
    let body = body(&r, &p, &units, &series, who.sees_all());
    ctx.page("Tổng quan", body)
}

/// Every unit the account sees: the report's, then the units file's with
/// nothing in the period (zeros), in order of code.
fn unit_lines(app: &Shared, r: &Report, who: &Account) -> Vec<UnitFigures> {
    let mut v = r.units.clone();
    for (code, name) in &app.opts.units {
        if who.sees(code) && !v.iter().any(|u| &u.code == code) {
            v.push(UnitFigures {
                code: code.clone(),
                name: name.clone(),
                ..Default::default()
            });
        }
    }
    v.sort_by(|a, b| a.code.cmp(&b.code));
    v
}

fn total(units: &[UnitFigures]) -> UnitFigures {
    let mut t = UnitFigures::default();
    for u in units {
        t.detected += u.detected;
        t.cleaned += u.cleaned;
        t.still_infected += u.still_infected;
        t.reinfected += u.reinfected;
    }
    t
}

fn body(
    r: &Report,
    p: &Period,
    units: &[UnitFigures],
    series: &[crate::store::console::DayCounts],
    province: bool,
) -> Markup {
    let t = r.rollup.clone().unwrap_or_else(|| total(units));
    let downloads = html! {
        button type="submit" { "Xem" }
        @if province {
            button type="submit" name="download" formaction="/report" value="1" { "Tải báo cáo (HTML)" }
        }
    };
    html! {
        (pages::period_form("/", p, downloads))
        p.muted { (r.period_line()) }
        div.figures {
            @for (label, n) in figure_rows(&t) { div.figure { b { (n) } (label) } }
        }
        @if province {
            p { a href={ "/report?format=xlsx&from=" (p.from_day) "&to=" (p.to_day) } { "Tải báo cáo toàn tỉnh (XLSX)" } }
        }
        h2 { "Theo ngày" }
        (chart::daily(series))
        h2 { "Theo đơn vị" }
        table {
            tr {
                th { (report::UNIT_CODE) } th { (report::UNIT_NAME) }
                @for (label, _) in figure_rows(&t) { th.n { (label) } }
            }
            @for u in units {
                tr {
                    td { a href={ "/unit/" (u.code) } { (u.code) } }
                    td { (report::unit_title(u)) }
                    @for (_, n) in figure_rows(u) { td.n { (n) } }
                }
            }
        }
    }
}

/// A report as a download: HTML or XLSX, named after what it covers.
pub fn download(r: &Report, format: ReportFormat, stem: &str) -> Response {
    let (bytes, ctype, ext) = match format {
        ReportFormat::Xlsx => match report::xlsx::bytes(r) {
            Ok(b) => (
                b,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "xlsx",
            ),
            Err(e) => return internal(e),
        },
        ReportFormat::Md => (
            report::markdown::render(r).into_bytes(),
            "text/markdown; charset=utf-8",
            "md",
        ),
        ReportFormat::Html => (
            report::html::render(r).into_bytes(),
            "text/html; charset=utf-8",
            "html",
        ),
    };
    let name = format!(
        "{stem}-{}-{}.{ext}",
        r.period.from_day.format("%Y%m%d"),
        r.period.to_day.format("%Y%m%d")
    );
    attachment(bytes, ctype, &name)
}

/// A file download; `name` is made ASCII-safe for the header.
pub fn attachment(bytes: Vec<u8>, ctype: &'static str, name: &str) -> Response {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    (
        [
            (header::CONTENT_TYPE, ctype.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{safe}\""),
            ),
        ],
        bytes,
    )
        .into_response()
}

pub fn format_of(s: &str) -> Result<ReportFormat, Response> {
    match s {
        "" | "html" => Ok(ReportFormat::Html),
        "xlsx" => Ok(ReportFormat::Xlsx),
        "md" => Ok(ReportFormat::Md),
        _ => Err(error(
            StatusCode::BAD_REQUEST,
            "Định dạng không hỗ trợ (html, xlsx, md)",
        )),
    }
}

/// `GET /report`: the province report, for accounts that see every unit.
pub async fn report(
    State(app): State<Shared>,
    mut ctx: Ctx,
    Query(q): Query<PeriodQuery>,
) -> Response {
    let who = ctx.account().clone();
    if !who.sees_all() {
        return error(
            StatusCode::FORBIDDEN,
            "Báo cáo toàn tỉnh chỉ dành cho cấp tỉnh",
        );
    }
    let (p, format) = match (
        pages::period(&q.from, &q.to, DEFAULT_DAYS),
        format_of(&q.format),
    ) {
        (Ok(p), Ok(f)) => (p, f),
        (Err(e), _) => return error(StatusCode::BAD_REQUEST, &e),
        (_, Err(r)) => return r,
    };
    match scoped_report(&app, &mut ctx.store, &p, None, &who) {
        Ok(r) => download(&r, format, "bao-cao-toan-tinh"),
        Err(resp) => resp,
    }
}
