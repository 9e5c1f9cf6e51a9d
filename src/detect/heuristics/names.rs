//! What the DNS heuristics ask of a name: its registered domain (the
//! Public Suffix List, through the `psl` crate), whether a label looks
//! machine-made, and whether a zone is one whose look-ups legitimately
//! encode data in names (antivirus and reputation services, reverse DNS,
//! DNS blocklists).

/// Registered domains whose names carry hashes or addresses by design:
/// `x.avqs.mcafee.com` is under `mcafee.com`. Reverse DNS (`.arpa`) too.
const EXEMPT: &[&str] = &[
    // Antivirus and file-reputation look-ups.
    "mcafee.com",
    "sophosxl.net",
    "sophos.com",
    "trendmicro.com",
    "trendmicro.co.jp",
    "eset.com",
    "e5.sk",
    "kaspersky.com",
    "kaspersky-labs.com",
    "avast.com",
    "avcdn.net",
    "avg.com",
    "bitdefender.net",
    "bitdefender.com",
    "norton.com",
    "symantec.com",
    "symantecliveupdate.com",
    "f-secure.com",
    "fsapi.com",
    "webroot.com",
    "brightcloud.com",
    "malwarebytes.com",
    "bkav.com",
    "bkav.com.vn",
    "cymru.com",
    // DNS blocklists and mail reputation.
    "spamhaus.org",
    "spamhaus.net",
    "spamcop.net",
    "sorbs.net",
    "surbl.org",
    "uribl.com",
    "barracudacentral.org",
    "dnswl.org",
    "mailspike.net",
    "senderscore.com",
    "abuseat.org",
    "senderbase.org",
    "spameatingmonkey.net",
    "dnsbl.info",
];

/// The registered domain of a lower-case name (`a.b.example.co.uk` ->
/// `example.co.uk`), or `None` for a single label or a bare suffix.
pub(super) fn registered(name: &str) -> Option<&str> {
    psl::domain_str(name)
}

fn under(name: &str, zone: &str) -> bool {
    name.len() >= zone.len()
        && name.ends_with(zone)
        && (name.len() == zone.len() || name.as_bytes()[name.len() - zone.len() - 1] == b'.')
}

static EXEMPT_SET: std::sync::LazyLock<rustc_hash::FxHashSet<&'static str>> =
    std::sync::LazyLock::new(|| EXEMPT.iter().copied().collect());

/// True when `name`, whose registered domain is `reg`, is in a built-in
/// exempt zone (one hash look-up) or under one of `extra`.
pub(super) fn exempt(name: &str, reg: &str, extra: &[String]) -> bool {
    EXEMPT_SET.contains(reg)
        || under(name, "arpa")
        || (!extra.is_empty() && extra.iter().any(|z| under(name, z)))
}

/// True when `name` is `d` or under it, for any `d` in `domains`.
pub(super) fn under_any(name: &str, domains: &[String]) -> bool {
    domains.iter().any(|d| under(name, d))
}

/// Shannon entropy of the bytes, in bits per character.
pub(super) fn entropy(s: &[u8]) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    let mut counts = [0u8; 64];
    for &b in s.iter().take(255) {
        let c = &mut counts[usize::from(CLASS[usize::from(b)])];
        *c = c.saturating_add(1);
    }
    // H = log2(n) - (1/n) Σ c·log2(c), from a table: no logarithm per
    // character class on the DNS path.
    let n = s.len().min(255);
    let sum: f64 = counts.iter().map(|&c| C_LOG2_C[usize::from(c)]).sum();
    C_LOG2_C[n] / n as f64 - sum / n as f64
}

/// A byte's character class, by table (a branch per byte cost more than
/// the rest of the count): letters (either case), digits, `-`, `.` and `_`
/// each their own; anything else by its low bits. 64 classes keep the
/// counts small.
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = match c {
            b'a'..=b'z' => c - b'a',
            b'A'..=b'Z' => c - b'A',
            b'0'..=b'9' => 26 + c - b'0',
            b'-' => 36,
            b'.' => 37,
            b'_' => 38,
            _ => 40 + (c & 15),
        };
        b += 1;
    }
    t
};

/// `c * log2(c)` for every count a name can have.
static C_LOG2_C: std::sync::LazyLock<[f64; 256]> = std::sync::LazyLock::new(|| {
    let mut t = [0.0; 256];
    for (c, v) in t.iter_mut().enumerate().skip(1) {
        *v = c as f64 * (c as f64).log2();
    }
    t
});

/// Whether a label looks machine-made: long enough, its characters nearly
/// all different (entropy close to the most its length allows), and
/// unlike words (few vowels, or digits mixed in). Words and typos of them
/// fail the last test; hex and base32 strings pass it.
pub(super) fn random_label(label: &[u8], min_len: usize) -> bool {
    if label.len() < min_len {
        return false;
    }
    let n = label.len() as f64;
    let max = n.log2().min(36f64.log2());
    if entropy(label) < max - 0.6 {
        return false;
    }
    let vowels = label
        .iter()
        .filter(|b| b"aeiouy".contains(&b.to_ascii_lowercase()))
        .count() as f64;
    let digits = label.iter().filter(|b| b.is_ascii_digit()).count() as f64;
    vowels / n < 0.3 || digits / n >= 0.2
}

/// The part of `name` left of its registered domain, without the dot
/// (`""` when there is none).
pub(super) fn below<'a>(name: &'a str, registered: &str) -> &'a str {
    name.len()
        .checked_sub(registered.len() + 1)
        .map_or("", |n| &name[..n])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_domains() {
        assert_eq!(registered("a.b.example.co.uk"), Some("example.co.uk"));
        assert_eq!(registered("x7k2q.com"), Some("x7k2q.com"));
        assert_eq!(registered("localhost"), None);
        assert_eq!(below("a.b.example.com", "example.com"), "a.b");
        assert_eq!(below("example.com", "example.com"), "");
    }

    #[test]
    fn random_labels_and_words() {
        for r in [
            "x7fk2mq9zt4p",
            "qzvbnhtrkwpl",
            "3f9a0c7be21d",
            "k2j4h6g8f0d1s3",
        ] {
            assert!(random_label(r.as_bytes(), 8), "{r}");
        }
        for w in [
            "wwgoogle",
            "facebook",
            "microsoft",
            "wikipedia",
            "microsoftonline",
            "googleapis",
            "thegioididong",
            "dichvucong",
            "short",
        ] {
            assert!(!random_label(w.as_bytes(), 8), "{w}");
        }
    }

    #[test]
    fn exempt_zones_match_on_label_boundaries() {
        assert!(exempt("abc.avqs.mcafee.com", "mcafee.com", &[]));
        assert!(exempt("4.3.2.1.in-addr.arpa", "in-addr.arpa", &[]));
        assert!(!exempt("x.notmcafee.com", "notmcafee.com", &[]));
        assert!(exempt(
            "x.corp.example",
            "corp.example",
            &["corp.example".into()]
        ));
    }
}
