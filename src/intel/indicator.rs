//! Turning one feed entry into a typed, normalised indicator, or a named
//! rejection. Every feed format funnels its entries through [`classify`].

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// What an indicator is matched against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IndicatorKind {
    Ip,
    Cidr,
    /// An address that is malicious on one port only (`1.2.3.4:8080`).
    IpPort,
    /// A domain and all its subdomains.
    Domain,
    /// `host/path` fragment, searched in HTTP Host + request target.
    Url,
    /// Free text, searched in HTTP Host + request target.
    Keyword,
    /// What a heuristic names (`tcp/445`, `nxdomain`, a zone, `ip:port`):
    /// behaviour, not a listed value.
    Behaviour,
}

impl IndicatorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IndicatorKind::Ip => "ip",
            IndicatorKind::Cidr => "cidr",
            IndicatorKind::IpPort => "ip_port",
            IndicatorKind::Domain => "domain",
            IndicatorKind::Url => "url",
            IndicatorKind::Keyword => "keyword",
            IndicatorKind::Behaviour => "behaviour",
        }
    }
}

/// How a feed wants its entries read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryType {
    /// Decide per entry: address, network, `ip:port`, URL or domain.
    #[default]
    Auto,
    Ip,
    Domain,
    Url,
    Keyword,
}

/// A parsed entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Entry {
    Ip(IpAddr),
    Net(IpNet),
    IpPort(IpAddr, u16),
    Domain(String),
    Url(String),
    Keyword(String),
}

impl Entry {
    pub fn kind(&self) -> IndicatorKind {
        match self {
            Entry::Ip(_) => IndicatorKind::Ip,
            Entry::Net(_) => IndicatorKind::Cidr,
            Entry::IpPort(..) => IndicatorKind::IpPort,
            Entry::Domain(_) => IndicatorKind::Domain,
            Entry::Url(_) => IndicatorKind::Url,
            Entry::Keyword(_) => IndicatorKind::Keyword,
        }
    }
}

/// Why an entry was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reject {
    Empty,
    Whitespace,
    NonRoutable(IpAddr),
    TooBroad(IpNet),
    BadDomain(&'static str),
    BadIdn,
    BadUrl,
    /// A file hash (md5, sha1, sha256): it never appears on the wire.
    FileHash(&'static str),
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reject::Empty => f.write_str("empty entry"),
            Reject::Whitespace => f.write_str("entry contains whitespace"),
            Reject::NonRoutable(ip) => write!(
                f,
                "{ip} is not a routable address (loopback, unspecified, multicast or broadcast)"
            ),
            Reject::TooBroad(n) => write!(
                f,
                "{n} is implausibly broad for a blocklist (shorter than /8 for IPv4 or /16 for IPv6)"
            ),
            Reject::BadDomain(why) => write!(f, "not a domain name: {why}"),
            Reject::BadIdn => f.write_str(
                "not a valid internationalised domain name (IDNA conversion to punycode failed)",
            ),
            Reject::BadUrl => f.write_str("URL without a host"),
            Reject::FileHash(kind) => write!(
                f,
                "{kind} file hash: hashes cannot be seen in network traffic, skipped"
            ),
        }
    }
}

fn routable(ip: IpAddr) -> Result<IpAddr, Reject> {
    let bad = match ip {
        IpAddr::V4(a) => {
            a.is_unspecified() || a.is_loopback() || a.is_multicast() || a.is_broadcast()
        }
        IpAddr::V6(a) => a.is_unspecified() || a.is_loopback() || a.is_multicast(),
    };
    if bad {
        Err(Reject::NonRoutable(ip))
    } else {
        Ok(ip)
    }
}

/// Validate and normalise a domain: lower case, no trailing dot, a leading
/// `*.` or `.` dropped (suffix matching already covers subdomains).
pub fn domain(raw: &str) -> Result<String, Reject> {
    domain_ref(raw).map(Cow::into_owned)
}

/// [`domain`], borrowing `raw` when it is already lower case (most feeds):
/// loading 800k domains then allocates nothing per entry.
pub fn domain_ref(raw: &str) -> Result<Cow<'_, str>, Reject> {
    let d = raw.trim_end_matches('.');
    let d = d
        .strip_prefix("*.")
        .or_else(|| d.strip_prefix('.'))
        .unwrap_or(d);
    if d.is_empty() {
        return Err(Reject::Empty);
    }
    if !d.is_ascii() {
        // Unicode (IDN) names are matched as the punycode that travels in
        // DNS, TLS and HTTP.
        let ascii = idna::domain_to_ascii(d).map_err(|_| Reject::BadIdn)?;
        if !ascii.is_ascii() || ascii == d {
            return Err(Reject::BadIdn);
        }
        return domain_ref(&ascii).map(|c| Cow::Owned(c.into_owned()));
    }
    if d.len() > 253 {
        return Err(Reject::BadDomain("longer than 253 characters"));
    }
    // One pass over the bytes validates every label; lower-casing is one
    // more (vectorised) pass.
    let (mut labels, mut label_len, mut numeric) = (1, 0usize, true);
    for b in d.bytes() {
        if b == b'.' {
            if label_len == 0 {
                return Err(Reject::BadDomain("empty label"));
            }
            labels += 1;
            label_len = 0;
            numeric = true;
        } else {
            if !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                return Err(Reject::BadDomain("character not allowed in a host name"));
            }
            label_len += 1;
            if label_len > 63 {
                return Err(Reject::BadDomain("label longer than 63 characters"));
            }
            numeric &= b.is_ascii_digit();
        }
    }
    if label_len == 0 {
        return Err(Reject::BadDomain("empty label"));
    }
    if labels < 2 {
        return Err(Reject::BadDomain(
            "single label: it would match a whole top-level domain",
        ));
    }
    if numeric {
        return Err(Reject::BadDomain(
            "numeric top-level label (a malformed address?)",
        ));
    }
    if d.bytes().any(|b| b.is_ascii_uppercase()) {
        Ok(Cow::Owned(d.to_ascii_lowercase()))
    } else {
        Ok(Cow::Borrowed(d))
    }
}

fn net(n: IpNet) -> Result<Entry, Reject> {
    let n = n.trunc();
    let too_broad = match n {
        IpNet::V4(v) => v.prefix_len() < 8,
        IpNet::V6(v) => v.prefix_len() < 16,
    };
    if too_broad {
        return Err(Reject::TooBroad(n));
    }
    if n.prefix_len() == n.max_prefix_len() {
        return routable(n.addr()).map(Entry::Ip);
    }
    Ok(Entry::Net(n))
}

/// Classify a URL-ish entry: scheme dropped, host lower-cased; a URL that is
/// only a host becomes a domain or address.
fn url(raw: &str) -> Result<Entry, Reject> {
    let lower = raw.to_ascii_lowercase();
    let rest = ["http://", "https://", "hxxp://", "hxxps://"]
        .iter()
        .find_map(|s| lower.strip_prefix(s).map(|_| &raw[s.len()..]))
        .unwrap_or(raw);
    if rest.starts_with('/') {
        return Ok(Entry::Url(rest.to_owned()));
    }
    let (host, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if host.is_empty() {
        return Err(Reject::BadUrl);
    }
    if path.is_empty() || path == "/" {
        return auto(host);
    }
    Ok(Entry::Url(format!("{}{}", host.to_ascii_lowercase(), path)))
}

fn auto(s: &str) -> Result<Entry, Reject> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return routable(ip).map(Entry::Ip);
    }
    if s.contains('/') || s.contains("://") {
        if let Ok(n) = s.parse::<IpNet>() {
            return net(n);
        }
        return url(s);
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return routable(sa.ip()).map(|ip| Entry::IpPort(ip, sa.port()));
    }
    domain_ref(s).map(|d| Entry::Domain(d.into_owned()))
}

/// [`classify`] for a feed of `entry_type = "domain"`, borrowing the name
/// when it needs no change.
pub fn classify_domain(raw: &str) -> Result<Cow<'_, str>, Reject> {
    let s = trimmed(raw, EntryType::Domain)?;
    if let Some(kind) = file_hash_kind(s) {
        return Err(Reject::FileHash(kind));
    }
    match refang(s) {
        Cow::Borrowed(s) => domain_ref(url_host(s)?),
        Cow::Owned(s) => domain_ref(url_host(&s)?).map(|d| Cow::Owned(d.into_owned())),
    }
}

/// The host of a URL-shaped entry in a domain list (`http://bad.example/x`
/// -> `bad.example`); other entries unchanged. The loader warns when this
/// changed the entry.
pub fn url_host(s: &str) -> Result<&str, Reject> {
    if !s.contains('/') {
        return Ok(s);
    }
    let rest = s.split_once("://").map_or(s, |(_, r)| r);
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    // user@host:port -> host
    let host = host.rsplit('@').next().unwrap_or(host);
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    if host.is_empty() {
        Err(Reject::BadUrl)
    } else {
        Ok(host)
    }
}

/// The entry without surrounding blanks; empty or inner-whitespace entries
/// refused (keywords may contain spaces).
/// The kind of file hash `s` is (by length of an all-hex string), if any.
pub fn file_hash_kind(s: &str) -> Option<&'static str> {
    let kind = match s.len() {
        32 => "md5",
        40 => "sha1",
        64 => "sha256",
        128 => "sha512",
        _ => return None,
    };
    s.bytes().all(|b| b.is_ascii_hexdigit()).then_some(kind)
}

/// Undo the usual defanging of shared indicators (`hxxp://`, `bad[.]example`,
/// `1.2.3[.]4`, `[:]`, `[dot]`); untouched entries are borrowed.
pub fn refang(raw: &str) -> Cow<'_, str> {
    const SWAPS: [(&str, &str); 10] = [
        ("[.]", "."),
        ("(.)", "."),
        ("{.}", "."),
        ("[dot]", "."),
        ("[DOT]", "."),
        ("(dot)", "."),
        ("[:]", ":"),
        ("[://]", "://"),
        ("[/]", "/"),
        ("[@]", "@"),
    ];
    let scheme = |p: &str| {
        raw.get(..p.len())
            .is_some_and(|h| h.eq_ignore_ascii_case(p))
    };
    let defanged_scheme = scheme("hxxp") || scheme("fxp:");
    if !defanged_scheme && !raw.contains(['[', '(', '{']) {
        return Cow::Borrowed(raw);
    }
    let mut out = raw.to_owned();
    for (from, to) in SWAPS {
        if out.contains(from) {
            out = out.replace(from, to);
        }
    }
    if defanged_scheme {
        let n = if scheme("fxp:") { 3 } else { 4 };
        out.replace_range(..n, if n == 3 { "ftp" } else { "http" });
    }
    if out == raw {
        Cow::Borrowed(raw)
    } else {
        Cow::Owned(out)
    }
}

fn trimmed(raw: &str, as_type: EntryType) -> Result<&str, Reject> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(Reject::Empty);
    }
    let has_space = if s.is_ascii() {
        s.bytes().any(|b| b.is_ascii_whitespace())
    } else {
        s.contains(char::is_whitespace)
    };
    if as_type != EntryType::Keyword && has_space {
        return Err(Reject::Whitespace);
    }
    Ok(s)
}

/// Classify one entry as the feed's [`EntryType`] says.
pub fn classify(raw: &str, as_type: EntryType) -> Result<Entry, Reject> {
    let s = trimmed(raw, as_type)?;
    let refanged = if as_type == EntryType::Keyword {
        Cow::Borrowed(s)
    } else {
        refang(s)
    };
    let s: &str = &refanged;
    if let Some(kind) = file_hash_kind(s) {
        return Err(Reject::FileHash(kind));
    }
    match as_type {
        EntryType::Auto => auto(s),
        EntryType::Ip => match s.parse::<IpAddr>() {
            Ok(ip) => routable(ip).map(Entry::Ip),
            Err(_) => match s.parse::<IpNet>() {
                Ok(n) => net(n),
                Err(_) => auto(s).and_then(|e| match e {
                    Entry::IpPort(..) => Ok(e),
                    _ => Err(Reject::BadDomain("expected an IP address or network")),
                }),
            },
        },
        EntryType::Domain => domain_ref(url_host(s)?).map(|d| Entry::Domain(d.into_owned())),
        EntryType::Url => url(s),
        EntryType::Keyword => Ok(Entry::Keyword(s.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Result<Entry, Reject> {
        classify(s, EntryType::Auto)
    }

    #[test]
    fn auto_kinds() {
        assert_eq!(
            a("91.254.215.167"),
            Ok(Entry::Ip("91.254.215.167".parse().unwrap()))
        );
        assert_eq!(
            a("2001:db8::5"),
            Ok(Entry::Ip("2001:db8::5".parse().unwrap()))
        );
        assert_eq!(
            a("192.168.0.13/24"),
            Ok(Entry::Net("192.168.0.0/24".parse().unwrap()))
        );
        assert_eq!(a("5.6.7.8/32"), Ok(Entry::Ip("5.6.7.8".parse().unwrap())));
        assert_eq!(
            a("1.2.3.4:8080"),
            Ok(Entry::IpPort("1.2.3.4".parse().unwrap(), 8080))
        );
        assert_eq!(a("*.Bad.Example."), Ok(Entry::Domain("bad.example".into())));
        assert_eq!(
            a("bad.example/gate.php"),
            Ok(Entry::Url("bad.example/gate.php".into()))
        );
        assert_eq!(
            a("http://BAD.example/x"),
            Ok(Entry::Url("bad.example/x".into()))
        );
        assert_eq!(
            a("http://5.6.7.8"),
            Ok(Entry::Ip("5.6.7.8".parse().unwrap()))
        );
        assert_eq!(
            a("/wp-admin/x.php"),
            Ok(Entry::Url("/wp-admin/x.php".into()))
        );
    }

    #[test]
    fn defanged_entries_are_refanged() {
        assert_eq!(a("bad[.]example"), Ok(Entry::Domain("bad.example".into())));
        assert_eq!(
            a("Bad(.)Example[dot]org"),
            Ok(Entry::Domain("bad.example.org".into()))
        );
        assert_eq!(a("1.2.3[.]4"), Ok(Entry::Ip("1.2.3.4".parse().unwrap())));
        assert_eq!(
            a("1.2.3.4[:]8080"),
            Ok(Entry::IpPort("1.2.3.4".parse().unwrap(), 8080))
        );
        assert_eq!(
            a("hxxps://evil[.]example/gate.php"),
            Ok(Entry::Url("evil.example/gate.php".into()))
        );
        assert_eq!(
            a("hXXp://5.6.7[.]8"),
            Ok(Entry::Ip("5.6.7.8".parse().unwrap()))
        );
        assert_eq!(classify_domain("c2[.]example").as_deref(), Ok("c2.example"));
        // Brackets that are not defanging stay as they were.
        assert_eq!(
            a("[2001:db8::1]:443"),
            Ok(Entry::IpPort("2001:db8::1".parse().unwrap(), 443))
        );
        assert!(matches!(refang("plain.example"), Cow::Borrowed(_)));
    }

    #[test]
    fn urls_in_domain_lists_give_their_host() {
        let d = |s| classify(s, EntryType::Domain);
        assert_eq!(
            d("http://Bad.example/x"),
            Ok(Entry::Domain("bad.example".into()))
        );
        assert_eq!(
            d("hxxps://u@bad[.]example:8443/p?q"),
            Ok(Entry::Domain("bad.example".into()))
        );
        assert_eq!(
            classify_domain("bad.example/path").as_deref(),
            Ok("bad.example")
        );
        assert_eq!(d("http:///x"), Err(Reject::BadUrl));
        assert_eq!(d("bad example"), Err(Reject::Whitespace));
    }

    #[test]
    fn file_hashes_are_named_and_skipped() {
        let md5 = "d41d8cd98f00b204e9800998ecf8427e";
        assert_eq!(a(md5), Err(Reject::FileHash("md5")));
        assert_eq!(
            classify(&"ab".repeat(32), EntryType::Ip),
            Err(Reject::FileHash("sha256"))
        );
        assert_eq!(a(&"0".repeat(40)), Err(Reject::FileHash("sha1")));
        // 32 characters that are not all hex: an ordinary (bad) entry.
        assert!(!matches!(a(&"g".repeat(32)), Err(Reject::FileHash(_))));
    }

    #[test]
    fn unicode_domains_become_punycode() {
        assert_eq!(a("bücher.de"), Ok(Entry::Domain("xn--bcher-kva.de".into())));
        assert_eq!(
            a("*.Bücher.DE."),
            Ok(Entry::Domain("xn--bcher-kva.de".into()))
        );
        assert_eq!(
            classify_domain("ví-dụ.vn").as_deref(),
            Ok(idna::domain_to_ascii("ví-dụ.vn").unwrap().as_str())
        );
        assert!(a("xn--ví.vn").is_err());
    }

    #[test]
    fn rejections() {
        assert_eq!(
            a("127.0.0.1"),
            Err(Reject::NonRoutable("127.0.0.1".parse().unwrap()))
        );
        assert!(matches!(a("0.0.0.0/0"), Err(Reject::TooBroad(_))));
        assert!(matches!(a("com"), Err(Reject::BadDomain(_))));
        assert!(matches!(a("bad..example"), Err(Reject::BadDomain(_))));
        assert_eq!(a("bad example"), Err(Reject::Whitespace));
        assert_eq!(a("ví-dụ..vn"), Err(Reject::BadDomain("empty label")));
        assert!(matches!(a("1.2.3.999"), Err(Reject::BadDomain(_))));
        assert_eq!(a("   "), Err(Reject::Empty));
    }
}
