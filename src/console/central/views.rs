//! The nation, a province and a unit as the central sees them: the
//! report's four figures for a period, a row per province or unit, a
//! unit's hosts across the province's sensors, and the reports to download.

use super::{Caller, Who, forbidden, run, seg};
use crate::console::overview::{
    PeriodQuery, attachment, download, format_of, local_day, local_offset,
};
use crate::console::{Shared, chart, error, pages};
use crate::reports::report::{self, Period, figure_rows};
use crate::store::Status;
use crate::store::central::{Central, CentralError, HostDetail, SensorRow};
use crate::store::query::UnitFigures;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

/// Days shown when no period is given.
const DEFAULT_DAYS: u64 = 30;

fn period(q: &PeriodQuery) -> Result<Period, Response> {
    pages::period(&q.from, &q.to, DEFAULT_DAYS).map_err(|e| error(StatusCode::BAD_REQUEST, &e))
}

fn add(t: &mut UnitFigures, u: &UnitFigures) {
    t.detected += u.detected;
    t.cleaned += u.cleaned;
    t.still_infected += u.still_infected;
    t.reinfected += u.reinfected;
}

/// The per-day chart of what `who` sees of `province` (`None`: all) in `p`.
fn days(
    c: &mut Central,
    who: &Who,
    p: &Period,
    province: Option<&str>,
) -> Result<Markup, CentralError> {
    let off = local_offset();
    let (from, to) = (local_day(p.from_ns, off), local_day(p.to_ns - 1, off));
    let rows = c.daily_counts(p.from_ns, off, province)?;
    let a = who.account();
    let visible = rows
        .iter()
        .filter(|(pr, u, _)| a.sees_province(pr) && a.sees(u))
        .map(|(_, _, d)| std::slice::from_ref(d));
    let series = chart::fill(from, to, visible);
    Ok(html! { h2 { "Theo ngày" } (chart::daily(&series)) })
}

fn figures(t: &UnitFigures) -> Markup {
    html! {
        div.figures {
            @for (label, n) in figure_rows(t) { div.figure { b { (n) } (label) } }
        }
    }
}

/// One row per province: its sensors and the sum of its units' figures.
fn by_province(
    units: &[(String, UnitFigures)],
    sensors: &[SensorRow],
) -> Vec<(String, usize, UnitFigures)> {
    let mut rows: Vec<(String, usize, UnitFigures)> = Vec::new();
    for s in sensors {
        match rows.iter_mut().find(|r| r.0 == s.province) {
            Some(r) => r.1 += 1,
            None => rows.push((s.province.clone(), 1, UnitFigures::default())),
        }
    }
    for (p, u) in units {
        if let Some(r) = rows.iter_mut().find(|r| &r.0 == p) {
            add(&mut r.2, u);
        }
    }
    rows
}

/// `GET /`: the nation, a row per province; a province's account goes to
/// its province.
pub async fn nation(
    State(app): State<Shared>,
    caller: Caller,
    Query(q): Query<PeriodQuery>,
) -> Response {
    let p = match period(&q) {
        Ok(p) => p,
        Err(r) => return r,
    };
    run(&app, caller, move |c, who| {
        if let Some(mine) = &who.account().province {
            return Ok(Redirect::to(&format!("/p/{}", seg(mine))).into_response());
        }
        let units = c.unit_figures(p.from_ns, p.to_ns, None)?;
        let rows = by_province(&units, &c.sensor_rows(None)?);
        let mut t = UnitFigures::default();
        rows.iter().for_each(|r| add(&mut t, &r.2));
        let extra = html! {
            button type="submit" { "Xem" }
            button type="submit" name="format" formaction="/report" value="html" { "Tải báo cáo (HTML)" }
            button type="submit" name="format" formaction="/report" value="xlsx" { "Tải báo cáo (XLSX)" }
        };
        let chart = days(c, who, &p, None)?;
        let body = html! {
            (pages::period_form("/", &p, extra))
            (figures(&t))
            (chart)
            h2 { "Theo tỉnh" }
            table {
                tr { th { "Tỉnh" } th.n { "Cảm biến" } @for (l, _) in figure_rows(&t) { th.n { (l) } } }
                @for (prov, n, f) in &rows {
                    tr {
                        td { a href={ "/p/" (seg(prov)) } { (prov) } }
                        td.n { (n) }
                        @for (_, v) in figure_rows(f) { td.n { (v) } }
                    }
                }
            }
        };
        Ok(who.page("Toàn quốc", body))
    })
    .await
}

/// Whether `who` sees province `p`: the refusal when not.
fn province_access(who: &Who, p: &str) -> Result<(), Response> {
    if who.account().sees_province(p) {
        Ok(())
    } else {
        Err(forbidden("Tỉnh này không thuộc tài khoản"))
    }
}

/// `GET /p/{province}`: its units the account sees, and its sensors.
pub async fn province(
    State(app): State<Shared>,
    caller: Caller,
    Path(prov): Path<String>,
    Query(q): Query<PeriodQuery>,
) -> Response {
    let p = match period(&q) {
        Ok(p) => p,
        Err(r) => return r,
    };
    run(&app, caller, move |c, who| {
        if let Err(r) = province_access(who, &prov) {
            return Ok(r);
        }
        let sensors = c.sensor_rows(Some(&prov))?;
        if sensors.is_empty() {
            return Ok(error(StatusCode::NOT_FOUND, "Không có tỉnh này"));
        }
        let units: Vec<UnitFigures> = c
            .unit_figures(p.from_ns, p.to_ns, Some(&prov))?
            .into_iter()
            .map(|(_, u)| u)
            .filter(|u| who.account().sees(&u.code))
            .collect();
        let chart = days(c, who, &p, Some(&prov))?;
        let body = province_body(who, &prov, &p, &units, &sensors, chart);
        Ok(who.page(&prov, body))
    })
    .await
}

fn province_body(
    who: &Who,
    prov: &str,
    p: &Period,
    units: &[UnitFigures],
    sensors: &[SensorRow],
    chart: Markup,
) -> Markup {
    let mut t = UnitFigures::default();
    units.iter().for_each(|u| add(&mut t, u));
    let base = format!("/p/{}", seg(prov));
    let report = format!("{base}/report");
    let whole = who.account().sees_all();
    let extra = html! {
        button type="submit" { "Xem" }
        @if whole {
            button type="submit" name="format" formaction=(report) value="html" { "Tải báo cáo (HTML)" }
            button type="submit" name="format" formaction=(report) value="xlsx" { "Tải báo cáo (XLSX)" }
        }
    };
    html! {
        (pages::period_form(&base, p, extra))
        (figures(&t))
        (chart)
        h2 { "Theo đơn vị" }
        table {
            tr {
                th { (report::UNIT_CODE) } th { (report::UNIT_NAME) }
                @for (l, _) in figure_rows(&t) { th.n { (l) } }
            }
            @for u in units {
                tr {
                    td { a href={ (base) "/u/" (seg(&u.code)) } { (u.code) } }
                    td { (report::unit_title(u)) }
                    @for (_, v) in figure_rows(u) { td.n { (v) } }
                }
            }
        }
        h2 { "Cảm biến" }
        ul { @for s in sensors { li { (s.sensor) } } }
    }
}

/// A unit's hosts: the status filter and the search.
#[derive(Deserialize, Default, Clone)]
pub struct HostQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    q: String,
}

impl HostQuery {
    fn keep(&self, h: &HostDetail) -> bool {
        let needle = self.q.trim().to_lowercase();
        let hit = needle.is_empty()
            || h.host.ip.contains(&needle)
            || h.host.sensor.to_lowercase().contains(&needle)
            || h.host
                .hostname
                .as_deref()
                .is_some_and(|n| n.to_lowercase().contains(&needle));
        hit && Status::parse(&self.status).is_none_or(|s| s.as_str() == h.host.status)
    }
}

/// The unit's hosts as filtered, or the refusal.
fn unit_hosts(
    c: &mut Central,
    who: &Who,
    prov: &str,
    unit: &str,
    q: &HostQuery,
) -> Result<Result<Vec<HostDetail>, Response>, CentralError> {
    if let Err(r) = province_access(who, prov) {
        return Ok(Err(r));
    }
    if !who.account().sees(unit) {
        return Ok(Err(forbidden("Đơn vị này không thuộc tài khoản")));
    }
    let mut hosts = c.unit_hosts(prov, unit)?;
    hosts.retain(|h| q.keep(h));
    Ok(Ok(hosts))
}

/// `GET /p/{province}/u/{unit}`.
pub async fn unit(
    State(app): State<Shared>,
    caller: Caller,
    Path((prov, code)): Path<(String, String)>,
    Query(q): Query<HostQuery>,
) -> Response {
    run(&app, caller, move |c, who| {
        let hosts = match unit_hosts(c, who, &prov, &code, &q)? {
            Ok(h) => h,
            Err(r) => return Ok(r),
        };
        let title = format!("{code} — {prov}");
        Ok(who.page(&title, unit_body(&prov, &code, &q, &hosts)))
    })
    .await
}

fn unit_body(prov: &str, code: &str, q: &HostQuery, hosts: &[HostDetail]) -> Markup {
    let base = format!("/p/{}/u/{}", seg(prov), seg(code));
    let csv = format!("{base}/hosts.csv?status={}&q={}", seg(&q.status), seg(&q.q));
    let name = hosts.first().map_or("", |h| h.unit_name.as_str());
    html! {
        p { a href={ "/p/" (seg(prov)) } { "← " (prov) } " · " (name) }
        form.bar method="get" action=(base) {
            label { "Trạng thái"
                select name="status" {
                    option value="" selected[q.status.is_empty()] { "Tất cả" }
                    @for s in [Status::Open, Status::Cleaned, Status::Reinfected] {
                        option value=(s.as_str()) selected[q.status == s.as_str()] { (s.label_vi()) }
                    }
                }
            }
            label { "Tìm" input name="q" value=(q.q); }
            button type="submit" { "Lọc" }
        }
        p { a href=(csv) { "Tải danh sách (CSV)" } " · " (hosts.len()) " máy" }
        @if hosts.is_empty() { p.muted { "Chưa có máy nào." } } @else {
            table {
                tr {
                    th { "Cảm biến" } th { "Địa chỉ IP" } th { "Tên máy" } th { "Trạng thái" }
                    th.n { "Số lần" } th { "Lần đầu" } th { "Lần cuối" }
                }
                @for h in hosts {
                    tr {
                        td { (h.host.sensor) }
                        td { a href={ "/h/" (seg(&h.host.sensor)) "/" (h.host.ip) } { (h.host.ip) } }
                        td { (h.host.hostname.as_deref().unwrap_or("")) }
                        td { (pages::status_vi(&h.host.status)) }
                        td.n { (h.host.hits) }
                        td { (pages::when(h.first_seen_ns)) }
                        td { (pages::when(h.last_seen_ns)) }
                    }
                }
            }
        }
    }
}

/// `GET /p/{province}/u/{unit}/hosts.csv`: the list as the page filters
/// it (UTF-8 with BOM, for spreadsheets).
pub async fn unit_csv(
    State(app): State<Shared>,
    caller: Caller,
    Path((prov, code)): Path<(String, String)>,
    Query(q): Query<HostQuery>,
) -> Response {
    run(&app, caller, move |c, who| {
        let hosts = match unit_hosts(c, who, &prov, &code, &q)? {
            Ok(h) => h,
            Err(r) => return Ok(r),
        };
        Ok(match hosts_csv(&hosts) {
            Ok(b) => attachment(
                b,
                "text/csv; charset=utf-8",
                &format!("may-nhiem-{code}.csv"),
            ),
            Err(e) => crate::console::internal(e),
        })
    })
    .await
}

fn hosts_csv(hosts: &[HostDetail]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
    w.write_record([
        "Cảm biến",
        "Địa chỉ IP",
        "Mã đơn vị",
        "Tên máy",
        "Trạng thái",
        "Số lần kết nối",
        "Lần đầu",
        "Lần cuối",
    ])?;
    for h in hosts {
        w.write_record([
            h.host.sensor.as_str(),
            &h.host.ip,
            &h.host.unit,
            h.host.hostname.as_deref().unwrap_or(""),
            pages::status_vi(&h.host.status),
            &h.host.hits.to_string(),
            &pages::when(h.first_seen_ns),
            &pages::when(h.last_seen_ns),
        ])?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

/// A report's period, format and (for a province) unit.
#[derive(Deserialize, Default)]
pub struct ReportQuery {
    #[serde(flatten)]
    period: PeriodQuery,
    #[serde(default)]
    unit: String,
}

/// `GET /report`: the nation's report, for accounts with no province.
pub async fn nation_report(
    State(app): State<Shared>,
    caller: Caller,
    Query(q): Query<ReportQuery>,
) -> Response {
    report_of(app, caller, None, q).await
}

/// `GET /p/{province}/report`: the province's report (accounts that see
/// all of it), or one unit's (`unit=`, accounts that see that unit).
pub async fn province_report(
    State(app): State<Shared>,
    caller: Caller,
    Path(prov): Path<String>,
    Query(q): Query<ReportQuery>,
) -> Response {
    report_of(app, caller, Some(prov), q).await
}

async fn report_of(app: Shared, caller: Caller, prov: Option<String>, q: ReportQuery) -> Response {
    let (p, format) = match (period(&q.period), format_of(&q.period.format)) {
        (Ok(p), Ok(f)) => (p, f),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    run(&app, caller, move |c, who| {
        let a = who.account();
        let unit = Some(q.unit.as_str()).filter(|u| !u.is_empty());
        let allowed = match (&prov, unit) {
            (None, _) => a.sees_nation(),
            (Some(pr), None) => a.sees_province(pr) && a.sees_all(),
            (Some(pr), Some(u)) => a.sees_province(pr) && a.sees(u),
        };
        if !allowed {
            return Ok(forbidden("Báo cáo này không thuộc tài khoản"));
        }
        let stem = match (&prov, unit) {
            (None, _) => "bao-cao-toan-quoc".to_owned(),
            (Some(pr), None) => format!("bao-cao-{pr}"),
            (Some(pr), Some(u)) => format!("bao-cao-{pr}-{u}"),
        };
        Ok(
            match crate::reports::central::report(c, p, prov.as_deref(), unit)? {
                Some(r) => download(&r, format, &stem),
                None => error(StatusCode::NOT_FOUND, "Đơn vị không có phát hiện trong kỳ"),
            },
        )
    })
    .await
}
