//! The feeds file (`feeds/feeds.toml`) and the loaders for each feed format.
//!
//! Loading never stops at a bad line: each rejected entry is reported with
//! `file:line` and a reason, and the rest of the feed loads. A feeds file that
//! is itself wrong (unknown format, missing file, CSV without a column) is
//! refused with every problem listed at once.

use super::Severity;
use super::indicator::EntryType;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One entry per line; `#` starts a comment.
    Plain,
    /// `address name [name...]`: the names are the indicators.
    Hosts,
    /// One column of a CSV (or TSV) file.
    Csv,
    /// Zeek intel framework TSV (`#fields indicator indicator_type ...`).
    Zeek,
    /// STIX 2.0/2.1 bundle of indicator objects.
    Stix,
    /// MISP event JSON.
    Misp,
    /// Maltrail `trails.csv` (`trail,info,reference`).
    Maltrail,
    /// Suricata IP reputation (`ip-or-cidr,category,score`).
    Iprep,
    /// A CERT annex table (XLSX or CSV): row number, indicator, type,
    /// description under a header row.
    Annex,
}

impl Format {
    /// Formats read line by line (big files are split over the cores).
    pub fn is_line_based(self) -> bool {
        matches!(self, Format::Plain | Format::Hosts)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeedKind {
    #[default]
    Block,
    /// Entries that cancel matches (domains, addresses, networks).
    Allow,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Column {
    Index(usize),
    Name(String),
}

/// One `[[feed]]` table.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedSpec {
    pub name: String,
    /// Relative paths are relative to the feeds file.
    pub path: PathBuf,
    pub format: Format,
    #[serde(default)]
    pub kind: FeedKind,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub severity: Severity,
    /// How entries are read; `auto` decides per entry.
    #[serde(default)]
    pub entry_type: EntryType,
    /// CSV only: column name (needs a header row) or 0-based index.
    #[serde(default)]
    pub column: Option<Column>,
    /// CSV only: one-character delimiter, `","` by default; `"\t"` for TSV.
    #[serde(default)]
    pub delimiter: Option<String>,
    /// CSV only: whether the first row is a header (default true).
    #[serde(default)]
    pub has_headers: Option<bool>,
    /// CSV only: lines starting with this character are skipped.
    #[serde(default)]
    pub comment: Option<String>,
    /// iprep only: the categories file (`id,short,description`).
    #[serde(default)]
    pub categories: Option<PathBuf>,
    /// iprep only: entries scoring below this are skipped.
    #[serde(default)]
    pub min_score: Option<u32>,
    /// annex only: the XLSX sheet to read (default: every sheet).
    #[serde(default)]
    pub sheet: Option<String>,
    /// misp only: load only attributes marked `to_ids` (default true).
    #[serde(default)]
    pub to_ids_only: Option<bool>,
}

impl FeedSpec {
    /// A blocklist of `format` at `path` with every option at its default
    /// (category "malware"); for tools and tests.
    pub fn new(name: &str, path: impl Into<PathBuf>, format: Format) -> FeedSpec {
        FeedSpec {
            name: name.into(),
            path: path.into(),
            format,
            kind: FeedKind::Block,
            category: Some("malware".into()),
            severity: Severity::default(),
            entry_type: EntryType::Auto,
            column: None,
            delimiter: None,
            has_headers: None,
            comment: None,
            categories: None,
            min_score: None,
            sheet: None,
            to_ids_only: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedsFile {
    #[serde(default)]
    feed: Vec<FeedSpec>,
}

/// The feeds file, validated.
#[derive(Clone, Debug)]
pub struct FeedsConfig {
    pub path: PathBuf,
    pub feeds: Vec<FeedSpec>,
}

/// Every problem found in a feeds file, for one error message.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<String>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl FeedsConfig {
    pub fn load(path: &Path) -> Result<FeedsConfig, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![format!(
                "{}: cannot read feeds file: {e}; pass --feeds with the path of your feeds.toml",
                path.display()
            )])
        })?;
        Self::parse(path, &text)
    }

    /// As [`load`](Self::load), but a missing feed file is not an error of
    /// the feeds file: at reload it fails that feed alone, which keeps its
    /// previous version.
    pub fn load_for_reload(path: &Path) -> Result<FeedsConfig, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![format!(
                "{}: cannot read feeds file: {e}",
                path.display()
            )])
        })?;
        Self::parse_with(path, &text, false)
    }

    pub fn parse(path: &Path, text: &str) -> Result<FeedsConfig, ConfigErrors> {
        Self::parse_with(path, text, true)
    }

    fn parse_with(path: &Path, text: &str, check_files: bool) -> Result<FeedsConfig, ConfigErrors> {
        let shown = path.display();
        let file: FeedsFile =
            toml::from_str(text).map_err(|e| toml_error(&shown.to_string(), text, &e))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut errs = Vec::new();
        let mut names = BTreeMap::new();
        for (i, f) in file.feed.iter().enumerate() {
            let at = format!("{shown}: feed #{} ({:?})", i + 1, f.name);
            if f.name.trim().is_empty() {
                errs.push(format!("{at}: `name` is empty"));
            }
            if let Some(prev) = names.insert(f.name.clone(), i + 1) {
                errs.push(format!("{at}: name already used by feed #{prev}"));
            }
            check_feed(&at, f, base, check_files, &mut errs);
        }
        if !errs.is_empty() {
            return Err(ConfigErrors(errs));
        }
        Ok(FeedsConfig {
            path: path.to_path_buf(),
            feeds: file
                .feed
                .into_iter()
                .map(|mut f| {
                    f.path = base.join(&f.path);
                    f.categories = f.categories.map(|c| base.join(c));
                    f
                })
                .collect(),
        })
    }
}

/// The problems of one feed's settings (`at` names it): missing files,
/// options of another format, a blocklist without a category.
fn check_feed(at: &str, f: &FeedSpec, base: &Path, check_files: bool, errs: &mut Vec<String>) {
    let p = base.join(&f.path);
    if check_files && !p.exists() {
        errs.push(format!(
            "{at}: {} does not exist (paths are relative to the feeds file; a directory loads every file in it)",
            p.display()
        ));
    }
    if let Some(c) = &f.categories
        && !base.join(c).is_file()
    {
        errs.push(format!(
            "{at}: categories file {} does not exist",
            base.join(c).display()
        ));
    }
    let only = |set: bool, opt: &str, fmt: Format| {
        (set && f.format != fmt).then(|| {
            format!(
                "{at}: `{opt}` applies to format \"{}\" only",
                format!("{fmt:?}").to_lowercase()
            )
        })
    };
    errs.extend(only(f.categories.is_some(), "categories", Format::Iprep));
    errs.extend(only(f.min_score.is_some(), "min_score", Format::Iprep));
    errs.extend(only(f.sheet.is_some(), "sheet", Format::Annex));
    errs.extend(only(f.to_ids_only.is_some(), "to_ids_only", Format::Misp));
    if f.kind == FeedKind::Block && f.category.as_deref().is_none_or(str::is_empty) {
        errs.push(format!("{at}: `category` is required for a blocklist (e.g. \"botnet-c2\", \"malware\", \"phishing\")"));
    }
    check_csv_options(at, f, errs);
}

/// The problems of a feed's CSV options: a CSV feed needs a usable column
/// and one-character delimiter and comment; other formats take none.
fn check_csv_options(at: &str, f: &FeedSpec, errs: &mut Vec<String>) {
    let csv_opts = (f.column.is_some() && f.format != Format::Annex)
        || f.delimiter.is_some()
        || f.has_headers.is_some()
        || f.comment.is_some();
    if f.format == Format::Csv {
        match &f.column {
            None => errs.push(format!(
                "{at}: format \"csv\" needs `column` (a header name or a 0-based index)"
            )),
            Some(Column::Name(_)) if f.has_headers == Some(false) => errs.push(format!(
                "{at}: `column` is a name but `has_headers = false`; use an index"
            )),
            _ => {}
        }
        for (k, v) in [("delimiter", &f.delimiter), ("comment", &f.comment)] {
            if let Some(v) = v
                && v.len() != 1
            {
                errs.push(format!(
                    "{at}: `{k}` must be one ASCII character, got {v:?}"
                ));
            }
        }
    } else if csv_opts {
        errs.push(format!(
            "{at}: `column`, `delimiter`, `has_headers` and `comment` apply to format \"csv\" only"
        ));
    }
}

/// A TOML parse error as `file:line: message`, for every TOML file we read.
pub fn toml_error(shown: &str, text: &str, e: &toml::de::Error) -> ConfigErrors {
    let line = e
        .span()
        .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
    ConfigErrors(vec![match line {
        Some(l) => format!("{shown}:{l}: {}", e.message()),
        None => format!("{shown}: {}", e.message()),
    }])
}

/// A rejected entry.
#[derive(Clone, Debug)]
pub struct Rejected {
    pub file: PathBuf,
    pub line: u64,
    pub entry: String,
    pub reason: String,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {:?} skipped: {}",
            self.file.display(),
            self.line,
            self.entry,
            self.reason
        )
    }
}

/// What loading one feed produced.
#[derive(Clone, Debug, Default)]
pub struct FeedReport {
    pub name: String,
    pub accepted: usize,
    pub rejected: Vec<Rejected>,
    /// Entries deliberately not loaded: file hashes, expired or revoked
    /// indicators, types that never appear on the wire.
    pub skipped: Vec<Rejected>,
    /// Files read (a directory feed has several).
    pub files: usize,
    /// Entries taken with a change the operator should know about (a URL in
    /// a domain list: its host was taken); `reason` says what was done.
    pub warnings: Vec<Rejected>,
    /// A feed whose file could not be read at all.
    pub failed: Option<String>,
}

impl FeedReport {
    /// Log a failure, and the first of the rejected entries and warnings.
    pub fn log_problems(&self) {
        let r = self;
        const SHOWN: usize = 10;
        if let Some(f) = &r.failed {
            tracing::error!("feed {:?} not loaded: {f}", r.name);
        }
        for rej in r.rejected.iter().take(SHOWN) {
            tracing::warn!("{rej}");
        }
        for w in r.warnings.iter().take(SHOWN) {
            tracing::warn!(
                "{}:{}: {:?}: {}",
                w.file.display(),
                w.line,
                w.entry,
                w.reason
            );
        }
        if r.rejected.len() > SHOWN {
            tracing::warn!(
                "feed {:?}: {} more rejected entries",
                r.name,
                r.rejected.len() - SHOWN
            );
        }
    }
}

pub use super::load::{build_snapshot, build_snapshot_on, feed_files, load_feed, load_parts};

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::File::create(dir.join(name))
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }

    #[test]
    fn config_lists_every_problem() {
        let d = tempfile::tempdir().unwrap();
        let toml = r#"
[[feed]]
name = "a"
path = "missing.txt"
format = "plain"

[[feed]]
name = "a"
path = "x.csv"
format = "csv"
category = "malware"
delimiter = "::"
"#;
        let e = FeedsConfig::parse(&d.path().join("feeds.toml"), toml).unwrap_err();
        let all = e.to_string();
        assert!(all.contains("does not exist"), "{all}");
        assert!(all.contains("`category` is required"), "{all}");
        assert!(all.contains("name already used"), "{all}");
        assert!(all.contains("needs `column`"), "{all}");
        assert!(all.contains("`delimiter` must be one"), "{all}");
    }

    #[test]
    fn toml_syntax_error_names_line() {
        let e = FeedsConfig::parse(Path::new("f.toml"), "[[feed]]\nname = \n").unwrap_err();
        assert!(e.0[0].starts_with("f.toml:2:"), "{}", e.0[0]);
    }

    #[test]
    fn formats_and_bad_lines() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "p.txt",
            "# header\nbad.example\n1.2.3.4 # trailing comment\n\nnot a domain\n127.0.0.1\n",
        );
        write(
            d.path(),
            "h.txt",
            "0.0.0.0 localhost\n0.0.0.0 ads.example tracker.example\n",
        );
        write(
            d.path(),
            "c.csv",
            "ip,category,score\n5.6.7.8,10,50\n9.9.9.0/24,1,2\nnope,1,1\n",
        );
        write(d.path(), "t.tsv", "#comment\n203.0.113.9\t3\n");
        write(d.path(), "a.txt", "good.bad.example\n");
        let toml = r##"
[[feed]]
name = "p"
path = "p.txt"
format = "plain"
category = "malware"
severity = "high"
[[feed]]
name = "h"
path = "h.txt"
format = "hosts"
category = "ads"
[[feed]]
name = "c"
path = "c.csv"
format = "csv"
column = "ip"
category = "scanner"
[[feed]]
name = "t"
path = "t.tsv"
format = "csv"
column = 0
has_headers = false
delimiter = "\t"
comment = "#"
category = "scanner"
[[feed]]
name = "allow"
path = "a.txt"
format = "plain"
kind = "allow"
"##;
        let p = d.path().join("feeds.toml");
        write(d.path(), "feeds.toml", toml);
        let cfg = FeedsConfig::load(&p).unwrap();
        let (s, reps, _) = build_snapshot(&cfg);
        let by: BTreeMap<_, _> = reps.iter().map(|r| (r.name.as_str(), r)).collect();
        assert_eq!(by["p"].accepted, 2);
        let lines: Vec<u64> = by["p"].rejected.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![5, 6]);
        assert_eq!(by["h"].accepted, 2);
        assert_eq!(by["c"].accepted, 2);
        assert_eq!(by["c"].rejected[0].line, 4);
        assert_eq!(by["t"].accepted, 1);
        assert!(s.match_domain("x.bad.example").is_some());
        assert!(s.match_domain("tracker.example").is_some());
        assert!(s.match_ip("9.9.9.77".parse().unwrap(), None).is_some());
        assert!(s.match_ip("203.0.113.9".parse().unwrap(), None).is_some());
        assert!(s.allow_domain("good.bad.example"));
    }

    #[test]
    fn url_in_a_domain_list_takes_its_host_and_warns() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "d.txt",
            "ok.example\nhxxp://bad[.]example/gate.php\n",
        );
        let toml = "[[feed]]\nname=\"d\"\npath=\"d.txt\"\nformat=\"plain\"\nentry_type=\"domain\"\ncategory=\"x\"\n";
        write(d.path(), "feeds.toml", toml);
        let cfg = FeedsConfig::load(&d.path().join("feeds.toml")).unwrap();
        let (s, reps, _) = build_snapshot(&cfg);
        assert_eq!(reps[0].accepted, 2);
        assert_eq!(reps[0].warnings.len(), 1);
        assert_eq!(reps[0].warnings[0].line, 2);
        assert!(reps[0].warnings[0].reason.contains("bad.example"));
        assert!(s.match_domain("www.bad.example").is_some());
    }

    #[test]
    fn csv_missing_column_is_a_feed_failure_not_a_panic() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "c.csv", "a,b\n1,2\n");
        let toml =
            "[[feed]]\nname=\"c\"\npath=\"c.csv\"\nformat=\"csv\"\ncolumn=\"ip\"\ncategory=\"x\"\n";
        write(d.path(), "feeds.toml", toml);
        let cfg = FeedsConfig::load(&d.path().join("feeds.toml")).unwrap();
        let (_, reps, _) = build_snapshot(&cfg);
        assert!(reps[0].failed.as_ref().unwrap().contains("no column named"));
    }
}
