//! `gatewatch report`: the campaign report each unit files, after the
//! Vietnamese form (Phụ lục "Mẫu thống kê, báo cáo kết quả triển khai").
//!
//! This module builds the report's content from the store (per-unit
//! figures for the period, the province roll-up, the assessment sentences);
//! [`markdown`], [`html`] and [`xlsx`] only lay it out, so the three formats
//! always carry the same numbers and words. The roll-up comes first, then
//! the units in order of code.

pub mod html;
pub mod hygiene;
pub mod markdown;
pub mod period;
pub mod xlsx;

pub use hygiene::Hygiene;
pub use period::{DateArg, Period};

use crate::store::query::{TOP_INDICATORS, UnitFigures};
use crate::store::{Store, StoreError};
use std::collections::BTreeMap;

pub const TITLE: &str = "BÁO CÁO KẾT QUẢ TRIỂN KHAI CHIẾN DỊCH RÀ QUÉT, BÓC GỠ MÃ ĐỘC";
pub const FORM: &str = "Phụ lục: Mẫu thống kê, báo cáo kết quả triển khai";
pub const ROLLUP_TITLE: &str = "Tổng hợp toàn tỉnh";
pub const ASSESSMENT: &str = "Đánh giá";
pub const FIGURES: &str = "Số liệu";
pub const LINES: &str = "Số liệu theo đơn vị";
pub const PERIOD: &str = "Kỳ báo cáo";
pub const SOURCE: &str = "Nguồn dữ liệu";
pub const GENERATED: &str = "Thời điểm lập báo cáo";
pub const UNIT_CODE: &str = "Mã đơn vị";
pub const UNIT_NAME: &str = "Tên đơn vị";
pub const NO: &str = "STT";
pub const ITEM: &str = "Nội dung";
pub const COUNT: &str = "Số lượng";
pub const TOTAL: &str = "Tổng cộng";

pub const DETECTED: &str = "Tổng số máy tính phát hiện kết nối đến địa chỉ độc hại";
pub const CLEANED: &str = "Số máy đã xử lý";
pub const NOT_CLEANED: &str = "Số máy chưa xử lý";
pub const REINFECTED: &str = "Số máy tái nhiễm";

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Md,
    Html,
    Xlsx,
}

impl ReportFormat {
    /// The format a file name asks for, if its extension names one.
    pub fn from_path(p: &std::path::Path) -> Option<ReportFormat> {
        match p.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "md" | "markdown" => Some(ReportFormat::Md),
            "html" | "htm" => Some(ReportFormat::Html),
            "xlsx" => Some(ReportFormat::Xlsx),
            _ => None,
        }
    }
}

/// The form's figure rows of one unit (or the roll-up), in form order.
pub fn figure_rows(f: &UnitFigures) -> [(&'static str, u64); 4] {
    [
        (DETECTED, f.detected),
        (CLEANED, f.cleaned),
        (NOT_CLEANED, f.still_infected),
        (REINFECTED, f.reinfected),
    ]
}

/// Everything a report shows, independent of the layout.
#[derive(Clone, Debug)]
pub struct Report {
    pub period: Period,
    /// The store file, as given.
    pub store: String,
    /// Sensor ids found in the period's raw alerts.
    pub sensors: Vec<String>,
    pub generated: String,
    /// Units in order of code.
    pub units: Vec<UnitFigures>,
    /// The sum of all units; `None` for a one-unit report.
    pub rollup: Option<UnitFigures>,
    /// Network-based estimates by unit code: the units above and any other
    /// unit with hygiene rows or history in the period.
    pub hygiene: Vec<Hygiene>,
    /// The estimates' province roll-up; `None` for a one-unit report.
    pub rollup_hygiene: Option<Hygiene>,
    /// Whether the source has the network-based estimates at all (a
    /// sensor's store does; the central view does not receive them).
    pub estimates: bool,
}

/// What the report is asked for.
pub struct Request<'a> {
    pub period: Period,
    /// One unit only (no roll-up).
    pub unit: Option<&'a str>,
    /// Units the caller knows besides the store's (code, name), so a unit
    /// with no offenders yet still gets its (zero) report.
    pub known_units: Vec<(String, String)>,
}

/// Why no report was made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("--unit {code}: no such unit in the store or the units file; known units: {known}")]
    UnknownUnit { code: String, known: String },
}

impl Report {
    /// Read the period's figures from the store.
    pub fn build(store: &mut Store, req: &Request<'_>) -> Result<Report, ReportError> {
        let p = &req.period;
        let mut units = store.unit_figures(p.from_ns, p.to_ns)?;
        if let Some(code) = req.unit {
            units.retain(|f| f.code == code);
            if units.is_empty() {
                units.push(empty_unit(store, code, &req.known_units)?);
            }
        }
        let rollup = req.unit.is_none().then(|| rollup(&units));
        let named: Vec<(String, String)> = units
            .iter()
            .map(|u| (u.code.clone(), u.name.clone()))
            .collect();
        let hygiene = hygiene::build(store, req.unit, p, &named, &req.known_units)?;
        let rollup_hygiene = req.unit.is_none().then(|| hygiene::rollup(&hygiene));
        Ok(Report {
            period: p.clone(),
            store: store.path().display().to_string(),
            sensors: sensors(store, p)?,
            generated: period::now_label(),
            units,
            rollup,
            hygiene,
            rollup_hygiene,
            estimates: true,
        })
    }

    /// The report of the central view: `units` (codes as the central
    /// names them), from `source`, with no estimates (not shipped).
    pub fn from_figures(
        period: Period,
        units: Vec<UnitFigures>,
        source: String,
        sensors: Vec<String>,
        rollup_too: bool,
    ) -> Report {
        Report {
            period,
            store: source,
            sensors,
            generated: period::now_label(),
            rollup: rollup_too.then(|| rollup(&units)),
            units,
            hygiene: Vec::new(),
            rollup_hygiene: None,
            estimates: false,
        }
    }

    /// Keep only the units `keep` accepts (the console's scoping), with the
    /// roll-up recomputed over them.
    pub fn restrict(&mut self, keep: impl Fn(&str) -> bool) {
        self.units.retain(|u| keep(&u.code));
        self.hygiene.retain(|h| keep(&h.code));
        if self.rollup.is_some() {
            self.rollup = Some(rollup(&self.units));
        }
        if self.rollup_hygiene.is_some() {
            self.rollup_hygiene = Some(hygiene::rollup(&self.hygiene));
        }
    }

    /// The estimates of one unit (all zero, none available, if the store
    /// has nothing on it).
    pub fn hygiene_of(&self, code: &str) -> Hygiene {
        self.hygiene
            .iter()
            .find(|h| h.code == code)
            .cloned()
            .unwrap_or_else(|| Hygiene {
                code: code.to_owned(),
                ..Default::default()
            })
    }

    /// The header's period line.
    pub fn period_line(&self) -> String {
        format!(
            "từ ngày {} đến ngày {}",
            self.period.from_label(),
            self.period.to_label()
        )
    }

    /// The header's source line.
    pub fn source_line(&self) -> String {
        let sensors = if self.sensors.is_empty() {
            "không còn cảnh báo gốc trong kỳ".to_owned()
        } else {
            self.sensors.join(", ")
        };
        format!("cảm biến {sensors}; kho dữ liệu {}", self.store)
    }

    /// Assessment sentences of one unit.
    pub fn unit_assessment(&self, f: &UnitFigures) -> Vec<String> {
        assessment(f, &self.period_line(), "của đơn vị")
    }

    /// Assessment sentences of the roll-up, naming the unit that most
    /// needs to act.
    pub fn rollup_assessment(&self, total: &UnitFigures) -> Vec<String> {
        let who = match self.units.len() {
            0 => "tại các đơn vị".to_owned(),
            n => format!("tại {n} đơn vị"),
        };
        let mut out = assessment(total, &self.period_line(), &who);
        let worst = self
            .units
            .iter()
            .filter(|u| u.still_infected > 0)
            .max_by(|a, b| {
                a.still_infected
                    .cmp(&b.still_infected)
                    .then(b.code.cmp(&a.code))
            });
        if let Some(u) = worst {
            out.push(format!(
                "Đơn vị có nhiều máy chưa xử lý nhất: {} ({}): {} máy.",
                unit_title(u),
                u.code,
                u.still_infected
            ));
        }
        out
    }
}

/// "name" or, when the store has none, the code.
pub fn unit_title(f: &UnitFigures) -> &str {
    if f.name.is_empty() { &f.code } else { &f.name }
}

/// A named unit with nothing detected in the period: one the store knows
/// (offenders, hygiene rows, or only history) or the units file names.
fn empty_unit(
    store: &mut Store,
    code: &str,
    known: &[(String, String)],
) -> Result<UnitFigures, ReportError> {
    let stored = hygiene::stored_units(store)?;
    let mut name = stored
        .iter()
        .chain(known)
        .find(|(c, _)| c == code)
        .map(|(_, n)| n.clone());
    if name.is_none()
        && !store
            .active_hosts(Some(code), i64::MIN, i64::MAX)?
            .is_empty()
    {
        name = Some(String::new());
    }
    let Some(name) = name else {
        let mut all: Vec<&str> = stored
            .iter()
            .chain(known)
            .map(|(c, _)| c.as_str())
            .collect();
        all.sort_unstable();
        all.dedup();
        return Err(ReportError::UnknownUnit {
            code: code.to_owned(),
            known: if all.is_empty() {
                "none".into()
            } else {
                all.join(", ")
            },
        });
    };
    Ok(UnitFigures {
        code: code.to_owned(),
        name,
        ..Default::default()
    })
}

/// Sum of all units. A host belongs to one unit, so host counts add up
/// exactly; the top lists are merged from each unit's own top list.
fn rollup(units: &[UnitFigures]) -> UnitFigures {
    let mut t = UnitFigures {
        name: ROLLUP_TITLE.to_owned(),
        ..Default::default()
    };
    let (mut cats, mut inds) = (BTreeMap::new(), BTreeMap::new());
    for u in units {
        t.detected += u.detected;
        t.cleaned += u.cleaned;
        t.still_infected += u.still_infected;
        t.reinfected += u.reinfected;
        for (k, n) in &u.top_categories {
            *cats.entry(k.clone()).or_insert(0) += n;
        }
        for (k, n) in &u.top_indicators {
            *inds.entry(k.clone()).or_insert(0) += n;
        }
    }
    t.top_categories = top(cats);
    t.top_indicators = top(inds);
    t
}

fn top(m: BTreeMap<String, u64>) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = m.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(TOP_INDICATORS);
    v
}

/// Sensor ids of the period's raw alerts. The store keeps them only inside
/// each alert's JSON, hence `json_extract`; pruned alerts leave none.
fn sensors(store: &mut Store, p: &Period) -> Result<Vec<String>, StoreError> {
    let path = store.path().to_path_buf();
    let conn = store.conn_mut();
    let mut st = conn
        .prepare(
            "SELECT DISTINCT json_extract(json, '$.sensor_id') AS s FROM alerts
             WHERE ts >= ?1 AND ts < ?2 AND s IS NOT NULL ORDER BY s LIMIT 20",
        )
        .map_err(|source| StoreError::Sql {
            path: path.clone(),
            source,
        })?;
    st.query_map([p.from_ns, p.to_ns], |r| r.get::<_, String>(0))
        .and_then(|r| r.collect())
        .map_err(|source| StoreError::Sql { path, source })
}

/// The facts of one unit (or of the roll-up, `who` saying where).
fn assessment(f: &UnitFigures, period: &str, who: &str) -> Vec<String> {
    if f.detected == 0 {
        return vec![format!(
            "Trong kỳ báo cáo ({period}), hệ thống giám sát tại cổng kết nối mạng \
             không phát hiện máy tính nào {who} kết nối đến địa chỉ độc hại."
        )];
    }
    let mut out = vec![format!(
        "Trong kỳ báo cáo ({period}), hệ thống giám sát tại cổng kết nối mạng phát hiện \
         {} máy tính {who} kết nối đến địa chỉ độc hại.",
        f.detected
    )];
    out.push(if f.still_infected == 0 {
        format!("Đã xử lý toàn bộ {} máy phát hiện.", f.detected)
    } else {
        format!(
            "Đã xử lý {} máy ({}); còn {} máy chưa xử lý.",
            f.cleaned,
            percent(f.cleaned, f.detected),
            f.still_infected
        )
    });
    out.push(if f.reinfected == 0 {
        "Không có máy tái nhiễm.".to_owned()
    } else {
        format!(
            "Có {} máy tái nhiễm (lại kết nối đến địa chỉ độc hại sau khi đã xử lý); \
             cần rà soát lại biện pháp xử lý trên các máy này.",
            f.reinfected
        )
    });
    if !f.top_categories.is_empty() {
        let cats: Vec<(String, u64)> = f
            .top_categories
            .iter()
            .map(|(c, n)| (category_vi(c), *n))
            .collect();
        out.push(format!(
            "Nhóm mã độc phát hiện nhiều nhất: {}.",
            listing(&cats)
        ));
    }
    if !f.top_indicators.is_empty() {
        out.push(format!(
            "Địa chỉ độc hại được kết nối nhiều nhất: {}.",
            listing(&f.top_indicators)
        ));
    }
    if f.still_infected > 0 {
        out.push(format!(
            "Đề nghị khẩn trương xử lý {} máy chưa xử lý và báo cáo kết quả.",
            f.still_infected
        ));
    }
    out
}

/// "a: 2 máy; b: 1 máy".
fn listing(items: &[(String, u64)]) -> String {
    items
        .iter()
        .map(|(k, n)| format!("{k}: {n} máy"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Share with a Vietnamese decimal comma: "33,3%".
fn percent(part: u64, whole: u64) -> String {
    let p = if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    };
    format!("{p:.1}%").replace('.', ",")
}

/// Feed categories in Vietnamese, keeping the feed's own word.
fn category_vi(c: &str) -> String {
    let vi = match c {
        "botnet-c2" => "máy chủ điều khiển mạng botnet",
        "malware" => "mã độc",
        "malware-download" => "phát tán mã độc",
        "phishing" => "lừa đảo",
        "ransomware" => "mã độc tống tiền",
        "reputation" => "địa chỉ có uy tín xấu",
        // The heuristics' categories (`detect::Heuristic::category`).
        "scanning" => "dò quét, lây lan trong mạng",
        "dga" => "tên miền sinh tự động (DGA)",
        "sinkhole" => "phân giải tới địa chỉ sinkhole",
        "dns-tunnel" => "truyền dữ liệu qua DNS",
        "suspicious-beaconing" => "kết nối định kỳ đáng ngờ",
        _ => return c.to_owned(),
    };
    format!("{vi} ({c})")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(code: &str, d: u64, c: u64, r: u64, cats: &[(&str, u64)]) -> UnitFigures {
        UnitFigures {
            code: code.into(),
            name: format!("Phòng {code}"),
            detected: d,
            cleaned: c,
            still_infected: d - c,
            reinfected: r,
            top_categories: cats.iter().map(|(k, n)| (k.to_string(), *n)).collect(),
            top_indicators: vec![],
        }
    }

    #[test]
    fn rollup_sums_units_and_merges_top_lists() {
        let a = unit("A", 3, 1, 1, &[("malware", 2), ("botnet-c2", 1)]);
        let b = unit("B", 2, 2, 0, &[("botnet-c2", 2)]);
        let t = rollup(&[a, b]);
        assert_eq!(
            (t.detected, t.cleaned, t.still_infected, t.reinfected),
            (5, 3, 2, 1)
        );
        assert_eq!(
            t.top_categories,
            vec![("botnet-c2".into(), 3), ("malware".into(), 2)]
        );
    }

    #[test]
    fn assessment_states_the_facts_in_vietnamese() {
        let f = unit("A", 3, 1, 1, &[("botnet-c2", 3)]);
        let s = assessment(&f, "từ ngày 01/10/2026 đến ngày 31/10/2026", "của đơn vị").join(" ");
        for want in [
            "phát hiện 3 máy tính của đơn vị",
            "Đã xử lý 1 máy (33,3%); còn 2 máy chưa xử lý.",
            "Có 1 máy tái nhiễm",
            "máy chủ điều khiển mạng botnet (botnet-c2): 3 máy",
        ] {
            assert!(s.contains(want), "{want:?} not in {s}");
        }
        let none = assessment(&UnitFigures::default(), "p", "của đơn vị").join(" ");
        assert!(none.contains("không phát hiện máy tính nào"), "{none}");
    }
}
