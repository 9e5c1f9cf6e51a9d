//! The report's network-based estimates (issue 16): per unit, machines with
//! signs of cracked software and machines not seen updating antivirus.
//! They are estimates with their basis stated, never infections, and sit
//! in tables of their own so the form's figures stay as they are.

use super::Period;
use crate::detect::hygiene::Signal;
use crate::detect::hygiene::lists::SHIPPED_ANTIVIRUS;
use crate::store::{Store, StoreError};
use std::collections::{BTreeMap, BTreeSet};

pub const HYGIENE_TITLE: &str = "Ước tính từ lưu lượng mạng (không phải số máy nhiễm mã độc)";
pub const HYGIENE_LINES: &str = "Ước tính theo đơn vị";
pub const BASIS: &str = "Cơ sở ước tính";
pub const ACTIVE: &str = "Số máy thấy hoạt động trên mạng";
pub const CRACKED: &str = "Số máy có dấu hiệu dùng phần mềm bẻ khóa (ước tính)";
pub const ANTIVIRUS: &str = "Số máy thấy cập nhật phần mềm diệt virus";
pub const NO_ANTIVIRUS: &str = "Số máy không thấy cập nhật phần mềm diệt virus (ước tính)";
/// Shown instead of a count the store cannot give.
pub const NOT_AVAILABLE: &str = "không có dữ liệu";

/// The estimates of one unit, or of the province.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hygiene {
    pub code: String,
    pub name: String,
    /// Hosts with a sign of cracked software (each counted once).
    pub cracked: u64,
    /// Hosts seen updating an antivirus product on the list.
    pub antivirus: u64,
    /// Hosts seen on the network; `None` when the history holds none for
    /// the unit in the period (turned off, older store, pruned).
    pub active: Option<u64>,
    /// Active hosts with no antivirus update seen; `None` with `active`.
    pub no_antivirus: Option<u64>,
    /// Roll-up only: units whose active hosts are unknown.
    pub no_history: Vec<String>,
}

impl Hygiene {
    /// The table rows in order: label and count (`None`: not available).
    pub fn rows(&self) -> [(&'static str, Option<u64>); 4] {
        [
            (ACTIVE, self.active),
            (CRACKED, Some(self.cracked)),
            (ANTIVIRUS, Some(self.antivirus)),
            (NO_ANTIVIRUS, self.no_antivirus),
        ]
    }

    /// "Đơn vị" name, else its code.
    pub fn title(&self) -> &str {
        if self.name.is_empty() {
            &self.code
        } else {
            &self.name
        }
    }
}

/// A count, or [`NOT_AVAILABLE`].
pub fn show(n: Option<u64>) -> String {
    n.map_or_else(|| NOT_AVAILABLE.to_owned(), |n| n.to_string())
}

/// Per-unit sets read from the store.
#[derive(Default)]
struct Hosts {
    cracked: BTreeSet<String>,
    antivirus: BTreeSet<String>,
    /// Every host with a hygiene row.
    signalled: BTreeSet<String>,
    active: BTreeSet<String>,
}

/// Estimates of `unit` (or of every unit with offenders, hygiene rows or
/// history in the period), by code; `known` (the units file) names units
/// the store has no name for.
pub fn build(
    store: &mut Store,
    unit: Option<&str>,
    p: &Period,
    offender_units: &[(String, String)],
    known: &[(String, String)],
) -> Result<Vec<Hygiene>, StoreError> {
    // The store's bounds are inclusive; the period is half-open.
    let last = p.to_ns.saturating_sub(1);
    let mut by_unit: BTreeMap<String, Hosts> = BTreeMap::new();
    for r in store.hygiene(unit, p.from_ns, last)? {
        let h = by_unit.entry(r.unit).or_default();
        let ip = r.ip.to_string();
        if r.signal == Signal::AntivirusUpdate.as_str() {
            h.antivirus.insert(ip.clone());
        } else if is_cracked(&r.signal) {
            h.cracked.insert(ip.clone());
        }
        h.signalled.insert(ip);
    }
    for (u, ip) in store.active_hosts(unit, p.from_ns, last)? {
        by_unit.entry(u).or_default().active.insert(ip);
    }
    match unit {
        Some(u) => {
            by_unit.entry(u.to_owned()).or_default();
        }
        None => {
            for (code, _) in offender_units {
                by_unit.entry(code.clone()).or_default();
            }
        }
    }
    let names = unit_names(store, offender_units, known)?;
    Ok(by_unit
        .into_iter()
        .map(|(code, h)| figures(code, &names, h))
        .collect())
}

fn is_cracked(signal: &str) -> bool {
    Signal::ALL
        .iter()
        .any(|s| s.cracked() && s.as_str() == signal)
}

fn figures(code: String, names: &BTreeMap<String, String>, h: Hosts) -> Hygiene {
    // A host with a hygiene row was on the network too; without any
    // history, though, the unit's other machines are unknown.
    let active: Option<BTreeSet<&String>> =
        (!h.active.is_empty()).then(|| h.active.iter().chain(&h.signalled).collect());
    let no_av = active
        .as_ref()
        .map(|a| a.iter().filter(|ip| !h.antivirus.contains(**ip)).count() as u64);
    Hygiene {
        name: names.get(&code).cloned().unwrap_or_default(),
        code,
        cracked: h.cracked.len() as u64,
        antivirus: h.antivirus.len() as u64,
        active: active.map(|a| a.len() as u64),
        no_antivirus: no_av,
        no_history: Vec::new(),
    }
}

/// Every unit of the store's units table (hits and hygiene rows write it,
/// history does not), offenders or not: `(code, name)`.
pub fn stored_units(store: &mut Store) -> Result<Vec<(String, String)>, StoreError> {
    let path = store.path().to_path_buf();
    let sql = |source| StoreError::Sql {
        path: path.clone(),
        source,
    };
    let mut st = store
        .conn_mut()
        .prepare("SELECT code, name FROM units ORDER BY code")
        .map_err(sql)?;
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .and_then(|r| r.collect())
        .map_err(sql)
}

/// Unit names: the store's units table first, then the offender figures,
/// then the units file.
fn unit_names(
    store: &mut Store,
    offender_units: &[(String, String)],
    known: &[(String, String)],
) -> Result<BTreeMap<String, String>, StoreError> {
    let stored = stored_units(store)?;
    let mut out = BTreeMap::new();
    for (c, n) in known.iter().chain(offender_units).chain(&stored) {
        if !n.is_empty() {
            out.insert(c.clone(), n.clone());
        }
    }
    Ok(out)
}

/// The province: counts add up (a host belongs to one unit); active hosts
/// only over the units that have them, the others named.
pub fn rollup(units: &[Hygiene]) -> Hygiene {
    let mut t = Hygiene {
        name: super::ROLLUP_TITLE.to_owned(),
        ..Default::default()
    };
    for u in units {
        t.cracked += u.cracked;
        t.antivirus += u.antivirus;
        match (u.active, u.no_antivirus) {
            (Some(a), Some(n)) => {
                t.active = Some(t.active.unwrap_or(0) + a);
                t.no_antivirus = Some(t.no_antivirus.unwrap_or(0) + n);
            }
            _ => t.no_history.push(u.code.clone()),
        }
    }
    t
}

/// The Vietnamese basis of the estimates, one sentence each; `rollup`
/// words the missing-history sentence for the province.
pub fn basis(h: &Hygiene, rollup: bool) -> Vec<String> {
    let vendors = vendors();
    let bkav = if vendors.iter().any(|v| v.contains("bkav")) {
        String::new()
    } else {
        "BKAV chưa có trong danh sách, nên máy dùng BKAV bị tính là \"không thấy cập nhật\"; "
            .to_owned()
    };
    let mut out = vec![
        "Đây là số liệu ước tính từ lưu lượng mạng quan sát tại cổng kết nối, không phải số máy \
         nhiễm mã độc, và không cộng vào các số liệu trên."
            .to_owned(),
        "Dấu hiệu dùng phần mềm bẻ khóa: máy kích hoạt bản quyền Windows/Office qua KMS (cổng 1688) \
         tới máy chủ trên địa chỉ công cộng (máy chủ KMS của cơ quan nằm trong mạng nội bộ), hoặc \
         truy cập, phân giải tên miền trong danh sách trang bẻ khóa, keygen, activator (máy có thể \
         chỉ truy cập mà không cài đặt); máy có nhiều dấu hiệu chỉ tính một lần."
            .to_owned(),
        format!(
            "Cập nhật phần mềm diệt virus: chỉ nhận biết lưu lượng cập nhật tới máy chủ của các hãng \
             trong danh sách có sẵn ({}); {bkav}máy dùng phần mềm khác ngoài danh sách hoặc cập nhật \
             qua máy chủ quản trị nội bộ cũng bị tính là \"không thấy cập nhật\".",
            vendors.join(", ")
        ),
        "Số máy thấy hoạt động: máy có lưu lượng trong lịch sử truy cập của cảm biến (lưu theo \
         ngày, giờ UTC) hoặc có dấu hiệu nêu trên; số máy không thấy cập nhật = số máy thấy hoạt \
         động − số máy thấy cập nhật."
            .to_owned(),
    ];
    let who = if rollup { "toàn tỉnh" } else { "đơn vị" };
    if h.active.is_none() {
        out.push(format!(
            "Không có dữ liệu về máy hoạt động của {who} trong kỳ (lịch sử truy cập [history] \
             bị tắt, kho dữ liệu tạo trước khi có tính năng này, hoặc dữ liệu đã quá thời hạn \
             lưu), nên không ước tính được số máy không thấy cập nhật phần mềm diệt virus."
        ));
    } else if !h.no_history.is_empty() {
        out.push(format!(
            "Các đơn vị không có dữ liệu về máy hoạt động: {}; số máy thấy hoạt động và số máy \
             không thấy cập nhật của toàn tỉnh chỉ tính các đơn vị còn lại.",
            h.no_history.join(", ")
        ));
    }
    out
}

/// Vendor ids of the shipped antivirus list, sorted.
fn vendors() -> Vec<String> {
    let v: BTreeSet<String> = SHIPPED_ANTIVIRUS
        .lines()
        .filter_map(|l| l.split(',').next())
        .map(str::trim)
        .filter(|v| !v.is_empty() && !v.starts_with('#') && *v != "vendor")
        .map(str::to_owned)
        .collect();
    v.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(cracked: &[&str], av: &[&str], active: &[&str]) -> Hosts {
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        Hosts {
            signalled: set(cracked).union(&set(av)).cloned().collect(),
            cracked: set(cracked),
            antivirus: set(av),
            active: set(active),
        }
    }

    #[test]
    fn active_hosts_without_an_update_are_counted_and_none_without_history() {
        let names = BTreeMap::new();
        let h = figures("A".into(), &names, hosts(&["1", "4"], &["1"], &["2", "3"]));
        // Active: 2, 3 from the history, 1 and 4 from their signals.
        assert_eq!(
            (h.cracked, h.antivirus, h.active, h.no_antivirus),
            (2, 1, Some(4), Some(3))
        );
        let off = figures("B".into(), &names, hosts(&["1"], &["1"], &[]));
        assert_eq!((off.active, off.no_antivirus), (None, None));
        let t = rollup(&[h, off]);
        assert_eq!(
            (t.cracked, t.antivirus, t.active, t.no_antivirus),
            (3, 2, Some(4), Some(3))
        );
        assert_eq!(t.no_history, ["B"]);
        let b = basis(&t, true).join(" ");
        assert!(
            b.contains("Các đơn vị không có dữ liệu về máy hoạt động: B"),
            "{b}"
        );
    }

    #[test]
    fn the_basis_names_the_vendors_and_says_why_a_figure_is_missing() {
        let b = basis(&Hygiene::default(), false).join(" ");
        for want in ["kaspersky", "KMS", "không phải số máy nhiễm", "[history]"] {
            assert!(b.contains(want), "{want:?} not in {b}");
        }
        if !vendors().iter().any(|v| v.contains("bkav")) {
            assert!(b.contains("BKAV chưa có trong danh sách"), "{b}");
        }
        assert_eq!(show(None), NOT_AVAILABLE);
        assert_eq!(show(Some(3)), "3");
    }
}
