//! Units (đơn vị) and internal networks: who owns an address.
//!
//! The units file is CSV with a header `code,name,cidrs` (CIDRs separated by
//! spaces), the shape NCSC campaign spreadsheets and `gen-gateway-pcap.py`
//! use. A units file with any invalid or overlapping CIDR is refused, with
//! every problem listed, because a wrong attribution sends the cleanup order
//! to the wrong office.

use crate::intel::feeds::ConfigErrors;
use crate::intel::netrange::{RangeMap, RangeSet, bounds};
use ipnet::IpNet;
use serde::Serialize;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

/// Code of the pseudo-unit for internal addresses that no unit claims.
pub const UNASSIGNED: &str = "unassigned";

/// Networks treated as internal when the configuration names none: RFC 1918,
/// shared address space (RFC 6598), link-local, and IPv6 ULA/link-local.
pub const DEFAULT_INTERNAL: [&str; 7] = [
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "169.254.0.0/16",
    "fc00::/7",
    "fe80::/10",
];

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Unit {
    pub code: String,
    pub name: String,
    pub nets: Vec<IpNet>,
}

/// All units plus the internal-network set.
#[derive(Debug)]
pub struct Units {
    units: Vec<Arc<Unit>>,
    unassigned: Arc<Unit>,
    map: RangeMap<u32>,
    internal: RangeSet,
}

impl Units {
    /// Build from units and extra internal networks (unit networks are always
    /// internal). Overlaps between units are errors.
    pub fn new(units: Vec<Unit>, internal: &[IpNet]) -> Result<Units, ConfigErrors> {
        let mut items = Vec::new();
        let mut owner = Vec::new();
        for (ui, u) in units.iter().enumerate() {
            for n in &u.nets {
                let (a, b) = bounds(n);
                items.push((a, b, ui as u32));
                owner.push((ui, *n));
            }
        }
        let (map, overlaps) = RangeMap::build(items);
        if !overlaps.is_empty() {
            return Err(ConfigErrors(
                overlaps
                    .iter()
                    .map(|&(a, b)| {
                        let (ua, na) = owner[a];
                        let (ub, nb) = owner[b];
                        format!(
                            "{na} (unit {}) overlaps {nb} (unit {})",
                            units[ua].code, units[ub].code
                        )
                    })
                    .collect(),
            ));
        }
        let all: Vec<IpNet> = internal
            .iter()
            .copied()
            .chain(units.iter().flat_map(|u| u.nets.iter().copied()))
            .collect();
        Ok(Units {
            units: units.into_iter().map(Arc::new).collect(),
            unassigned: Arc::new(Unit {
                code: UNASSIGNED.into(),
                name: "Chưa xác định đơn vị".into(),
                nets: Vec::new(),
            }),
            map,
            internal: RangeSet::new(&all),
        })
    }

    /// Parse a units CSV file.
    pub fn load(path: &Path, internal: &[IpNet]) -> Result<Units, ConfigErrors> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![format!(
                "{shown}: cannot read units file: {e}; pass --units with the path of your units CSV"
            )])
        })?;
        Self::parse(&shown, &text, internal)
    }

    /// Parse the text of a units CSV file (`shown` names it in messages);
    /// every problem is listed, overlaps included.
    pub fn parse(shown: &str, text: &str, internal: &[IpNet]) -> Result<Units, ConfigErrors> {
        let mut errs = Vec::new();
        let mut units: Vec<Unit> = Vec::new();
        let mut lines: Vec<u64> = Vec::new();
        let mut r = csv::ReaderBuilder::new()
            .comment(Some(b'#'))
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(text.trim_start_matches('\u{feff}').as_bytes());
        let cols = header_columns(shown, &mut r)?;
        for rec in r.records() {
            let rec = match rec {
                Ok(r) => r,
                Err(e) => {
                    let line = e.position().map_or(0, |p| p.line());
                    errs.push(format!("{shown}:{line}: {e}"));
                    continue;
                }
            };
            let line = rec.position().map_or(0, |p| p.line());
            let at = format!("{shown}:{line}");
            let unit = parse_unit(&at, &rec, cols, &units, &lines, &mut errs);
            units.push(unit);
            lines.push(line);
        }
        if errs.is_empty() {
            Units::new(units, internal).map_err(|e| {
                ConfigErrors(e.0.into_iter().map(|m| format!("{shown}: {m}")).collect())
            })
        } else {
            // Overlaps are checked too, so one run lists everything.
            if let Err(e) = Units::new(units, internal) {
                errs.extend(e.0.into_iter().map(|m| format!("{shown}: {m}")));
            }
            Err(ConfigErrors(errs))
        }
    }

    /// Whether `ip` belongs to our side of the gateway.
    #[inline]
    pub fn is_internal(&self, ip: IpAddr) -> bool {
        self.internal.contains(ip)
    }

    /// The unit owning `ip`, or the `unassigned` pseudo-unit.
    #[inline]
    pub fn unit_of(&self, ip: IpAddr) -> &Arc<Unit> {
        match self.map.get(ip) {
            Some(i) => &self.units[i as usize],
            None => &self.unassigned,
        }
    }

    pub fn units(&self) -> &[Arc<Unit>] {
        &self.units
    }

    pub fn find(&self, code: &str) -> Option<&Arc<Unit>> {
        if code == UNASSIGNED {
            return Some(&self.unassigned);
        }
        self.units.iter().find(|u| u.code == code)
    }
}

/// Positions of the `code`, `name` and `cidrs` columns.
type Columns = (usize, usize, usize);

/// The columns of a units file, from its header row (names in any case).
fn header_columns(shown: &str, r: &mut csv::Reader<&[u8]>) -> Result<Columns, ConfigErrors> {
    let hdr: Vec<String> = match r.headers() {
        Ok(h) => h.iter().map(|s| s.to_ascii_lowercase()).collect(),
        Err(e) => return Err(ConfigErrors(vec![format!("{shown}:1: {e}")])),
    };
    let col = |n: &str| hdr.iter().position(|h| h == n);
    let (Some(ci), Some(ni), Some(ni2)) = (col("code"), col("name"), col("cidrs")) else {
        return Err(ConfigErrors(vec![format!(
            "{shown}:1: header must have columns code,name,cidrs (found: {})",
            hdr.join(",")
        )]));
    };
    Ok((ci, ni, ni2))
}

/// The unit of one row, with every problem of it (`at` names the row) in
/// `errs`; `units` and `lines` are the rows before it and their lines.
fn parse_unit(
    at: &str,
    rec: &csv::StringRecord,
    (ci, ni, ni2): Columns,
    units: &[Unit],
    lines: &[u64],
    errs: &mut Vec<String>,
) -> Unit {
    let code = rec.get(ci).unwrap_or("").to_owned();
    let name = rec.get(ni).unwrap_or("").to_owned();
    check_code(at, &code, units, lines, errs);
    if name.is_empty() {
        errs.push(format!("{at}: unit {code:?} has no name"));
    }
    let nets = parse_cidrs(at, rec.get(ni2).unwrap_or(""), errs);
    if nets.is_empty() && !code.is_empty() {
        errs.push(format!("{at}: unit {code:?} has no valid CIDR"));
    }
    Unit { code, name, nets }
}

/// The problem with a unit code, if any: empty, a character other than
/// letters, digits, `-`, `_` and `.`, the reserved code, or a code an
/// earlier row used.
fn check_code(at: &str, code: &str, units: &[Unit], lines: &[u64], errs: &mut Vec<String>) {
    if code.is_empty() {
        errs.push(format!("{at}: unit code is empty"));
    } else if !code
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        errs.push(format!(
            "{at}: unit code {code:?} may use only letters, digits, '-', '_' and '.'"
        ));
    } else if code == UNASSIGNED {
        errs.push(format!("{at}: unit code {UNASSIGNED:?} is reserved"));
    } else if let Some(i) = units.iter().position(|u| u.code == code) {
        errs.push(format!(
            "{at}: unit code {code:?} already used on line {}",
            lines[i]
        ));
    }
}

/// The networks of a `cidrs` cell (separated by spaces, `;` or tabs; a
/// bare address is a host network); each bad one reported in `errs`.
fn parse_cidrs(at: &str, cell: &str, errs: &mut Vec<String>) -> Vec<IpNet> {
    let mut nets = Vec::new();
    for tok in cell.split([' ', ';', '\t']).filter(|t| !t.is_empty()) {
        match tok
            .parse::<IpNet>()
            .or_else(|_| tok.parse::<IpAddr>().map(IpNet::from))
        {
            Ok(n) if n.trunc() != n => errs.push(format!(
                "{at}: {tok} has host bits set; did you mean {}?",
                n.trunc()
            )),
            Ok(n) => nets.push(n),
            Err(_) => errs.push(format!("{at}: {tok:?} is not a CIDR (e.g. 10.20.0.0/24)")),
        }
    }
    nets
}

/// Parse the default internal networks.
pub fn default_internal() -> Vec<IpNet> {
    DEFAULT_INTERNAL
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "code,name,cidrs\nU001,\"Văn phòng HĐND và UBND\",10.20.0.0/24\nU002,Phòng Y tế,10.20.1.0/24 2001:db8:1::/48\n";

    #[test]
    fn lookup_and_unassigned() {
        let u = Units::parse("u.csv", GOOD, &default_internal()).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(u.unit_of(ip("10.20.0.7")).code, "U001");
        assert_eq!(u.unit_of(ip("10.20.0.7")).name, "Văn phòng HĐND và UBND");
        assert_eq!(u.unit_of(ip("2001:db8:1:2::9")).code, "U002");
        assert_eq!(u.unit_of(ip("10.99.0.1")).code, UNASSIGNED);
        assert!(u.is_internal(ip("10.99.0.1")));
        assert!(u.is_internal(ip("2001:db8:1::1")));
        assert!(!u.is_internal(ip("8.8.8.8")));
    }

    #[test]
    fn every_problem_listed_at_once() {
        let bad = "code,name,cidrs\nU1,A,10.0.0.0/16\nU1,,10.0.0.0/24\nU3,C,10.1.2.3/24 nonsense\nU4,D,\n";
        let e = Units::parse("u.csv", bad, &[]).unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("u.csv:3: unit code \"U1\" already used on line 2"),
            "{s}"
        );
        assert!(s.contains("u.csv:3: unit \"U1\" has no name"), "{s}");
        assert!(
            s.contains("u.csv:4: 10.1.2.3/24 has host bits set; did you mean 10.1.2.0/24?"),
            "{s}"
        );
        assert!(s.contains("\"nonsense\" is not a CIDR"), "{s}");
        assert!(s.contains("u.csv:5: unit \"U4\" has no valid CIDR"), "{s}");
        assert!(
            s.contains("10.0.0.0/24 (unit U1) overlaps") || s.contains("overlaps 10.0.0.0/24"),
            "{s}"
        );
    }

    #[test]
    fn header_is_checked() {
        let e = Units::parse("u.csv", "a,b\n1,2\n", &[]).unwrap_err();
        assert!(e.to_string().contains("code,name,cidrs"));
    }
}
