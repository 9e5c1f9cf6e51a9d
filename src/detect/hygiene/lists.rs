//! The hygiene domain lists: crack/keygen/activator download sites, and
//! antivirus vendors' update domains (`feeds/hygiene/`, shipped inside the
//! binary; `[hygiene] crack_list` / `antivirus_list` replace them).
//!
//! A listed domain matches itself and its subdomains. A look-up walks the
//! name's suffixes against one hash map (no allocation): a handful of
//! probes per name, and names are looked up only where the engine already
//! matches them against the feeds.

use rustc_hash::FxHashMap;
use std::path::Path;
use std::sync::Arc;

/// The shipped crack/keygen/activator list (see `feeds/hygiene/README.md`).
pub const SHIPPED_CRACK: &str = include_str!("../../../feeds/hygiene/crack-domains.txt");
/// The shipped antivirus update domains: `vendor,domain,source`.
pub const SHIPPED_ANTIVIRUS: &str = include_str!("../../../feeds/hygiene/antivirus-update.csv");

/// What a listed name means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listed {
    Crack,
    /// An antivirus vendor's update domain.
    Antivirus(Arc<str>),
}

/// Both lists, as one suffix map.
#[derive(Debug, Default)]
pub struct HygieneLists {
    domains: FxHashMap<Box<str>, Listed>,
    crack: usize,
    antivirus: usize,
}

impl HygieneLists {
    /// The lists from their texts; `origin` names them in problems.
    pub fn parse(
        crack: &str,
        crack_origin: &str,
        antivirus: &str,
        av_origin: &str,
    ) -> Result<HygieneLists, Vec<String>> {
        let mut l = HygieneLists::default();
        let mut problems = Vec::new();
        for (n, line) in crack.lines().enumerate() {
            let d = line.split('#').next().unwrap_or("").trim();
            if d.is_empty() {
                continue;
            }
            match domain(d) {
                Some(d) => {
                    l.crack += 1;
                    l.domains.insert(d.into(), Listed::Crack);
                }
                None => problems.push(format!(
                    "{crack_origin}:{}: {d:?} is not a domain name; write one domain per line",
                    n + 1
                )),
            }
        }
        for (n, line) in antivirus.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || (n == 0 && line.starts_with("vendor,")) {
                continue;
            }
            let mut cols = line.split(',').map(str::trim);
            match (
                cols.next().filter(|v| !v.is_empty()),
                cols.next().and_then(domain),
            ) {
                (Some(vendor), Some(d)) => {
                    l.antivirus += 1;
                    l.domains.insert(d.into(), Listed::Antivirus(vendor.into()));
                }
                _ => problems.push(format!(
                    "{av_origin}:{}: expected `vendor,domain,source` with a domain name",
                    n + 1
                )),
            }
        }
        if problems.is_empty() {
            Ok(l)
        } else {
            Err(problems)
        }
    }

    /// The shipped lists, or the files given instead.
    pub fn load(
        crack: Option<&Path>,
        antivirus: Option<&Path>,
    ) -> Result<HygieneLists, Vec<String>> {
        let read = |p: Option<&Path>, shipped: &'static str, what: &str| match p {
            None => Ok((shipped.to_string(), format!("shipped {what} list"))),
            Some(p) => std::fs::read_to_string(p)
                .map(|t| (t, p.display().to_string()))
                .map_err(|e| format!("{}: cannot read the {what} list: {e}", p.display())),
        };
        let c = read(crack, SHIPPED_CRACK, "crack-domain");
        let a = read(antivirus, SHIPPED_ANTIVIRUS, "antivirus-update");
        match (c, a) {
            (Ok((c, co)), Ok((a, ao))) => HygieneLists::parse(&c, &co, &a, &ao),
            (c, a) => Err([c.err(), a.err()].into_iter().flatten().collect()),
        }
    }

    /// The shipped lists (they are tested to parse).
    pub fn shipped() -> HygieneLists {
        HygieneLists::parse(SHIPPED_CRACK, "crack", SHIPPED_ANTIVIRUS, "antivirus")
            .unwrap_or_default()
    }

    /// The entry for `name` or its closest listed parent.
    pub fn find(&self, name: &str) -> Option<(&str, &Listed)> {
        if self.domains.is_empty() {
            return None;
        }
        let mut rest = name;
        loop {
            if let Some((k, v)) = self.domains.get_key_value(rest) {
                return Some((k, v));
            }
            rest = &rest[rest.find('.')? + 1..];
        }
    }

    /// Crack domains and antivirus domains listed.
    pub fn counts(&self) -> (usize, usize) {
        (self.crack, self.antivirus)
    }
}

/// `d` lower-cased without a trailing dot, if it looks like a domain name.
fn domain(d: &str) -> Option<String> {
    let d = d.trim_end_matches('.').to_ascii_lowercase();
    let ok = d.contains('.')
        && d.len() <= 253
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    ok.then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_lists_parse_and_match_subdomains() {
        let l = HygieneLists::parse(SHIPPED_CRACK, "c", SHIPPED_ANTIVIRUS, "a").unwrap();
        let (c, a) = l.counts();
        assert!(c > 0 && a > 0, "{c} {a}");
        let mut checked = 0;
        for (d, v) in &l.domains {
            let sub = format!("x1.{d}");
            assert_eq!(l.find(&sub).map(|(_, v)| v), Some(v), "{sub}");
            checked += 1;
        }
        assert_eq!(checked, l.domains.len());
        assert_eq!(l.find("example.org"), None);
        assert_eq!(l.find("org"), None);
    }

    #[test]
    fn bad_lines_are_named_with_their_line() {
        let e = HygieneLists::parse(
            "ok.example\nnot a domain\n",
            "c.txt",
            "vendor,domain,source\nx\n",
            "a.csv",
        )
        .unwrap_err();
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].starts_with("c.txt:2:"), "{e:?}");
        assert!(e[1].starts_with("a.csv:2:"), "{e:?}");
    }
}
