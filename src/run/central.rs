//! `[central]`: ship this sensor's store to the central PostgreSQL.

use super::ship::ShipTarget;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CentralConfig {
    /// libpq URL, e.g. `postgres://gatewatch@central.example/gatewatch?sslmode=require`.
    /// Its password, if any, is never logged.
    pub url: String,
    /// PEM certificate of the CA that signed the central's certificate:
    /// ship over TLS (rustls).
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// The province (group of sensors) the central files this sensor under.
    pub province: String,
    /// Seconds between shipping passes.
    #[serde(default = "default_interval")]
    pub interval_s: u64,
    /// Seconds between asking the central for a newer feed snapshot (when
    /// the sensor runs from one: `snapshot`).
    #[serde(default = "default_snapshot_interval")]
    pub snapshot_interval_s: u64,
}

fn default_interval() -> u64 {
    5
}

fn default_snapshot_interval() -> u64 {
    300
}

impl CentralConfig {
    /// Every problem with the section, each naming the key and the fix.
    pub fn problems(&self, shown: &str, store: bool) -> Vec<String> {
        let mut errs = Vec::new();
        if !(self.url.starts_with("postgres://") || self.url.starts_with("postgresql://")) {
            errs.push(format!(
                "{shown}: [central] url must be a postgres:// URL (e.g. postgres://gatewatch@central.example/gatewatch?sslmode=require)"
            ));
        }
        if self.province.trim().is_empty() {
            errs.push(format!(
                "{shown}: [central] province is empty: name the province this sensor belongs to"
            ));
        }
        if let Some(ca) = &self.ca
            && !ca.is_file()
        {
            errs.push(format!(
                "{shown}: [central] ca = {:?}: no such file",
                ca.display()
            ));
        }
        if !(1..=3600).contains(&self.interval_s) {
            errs.push(format!("{shown}: [central] interval_s must be 1..=3600"));
        }
        if !(1..=86_400).contains(&self.snapshot_interval_s) {
            errs.push(format!(
                "{shown}: [central] snapshot_interval_s must be 1..=86400 (seconds between asking for a newer feed snapshot)"
            ));
        }
        if !store {
            errs.push(format!(
                "{shown}: [central] ships the offender store (its spool): set store or remove [central]"
            ));
        }
        errs
    }

    pub fn target(&self) -> ShipTarget {
        ShipTarget {
            url: self.url.clone(),
            ca: self.ca.clone(),
            province: self.province.clone(),
            batch: crate::store::central::BATCH_ROWS,
            max_rows: None,
        }
    }

    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.interval_s)
    }

    pub fn snapshot_interval(&self) -> Duration {
        Duration::from_secs(self.snapshot_interval_s)
    }

    pub fn fetch_source(&self) -> super::fetch::FetchSource {
        super::fetch::FetchSource {
            url: self.url.clone(),
            ca: self.ca.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::run::config::Config;

    #[test]
    fn a_central_section_is_checked_with_every_problem_listed() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("g.toml");
        let text = "store = \"\"\n[central]\nurl = \"mysql://x\"\nprovince = \" \"\nca = \"/nonexistent/ca.pem\"\ninterval_s = 0\nsnapshot_interval_s = 0\n";
        std::fs::write(&p, text).unwrap();
        let e = Config::load(&p).unwrap_err().to_string();
        for want in [
            "url must be a postgres:// URL",
            "province is empty",
            "ca = \"/nonexistent/ca.pem\": no such file",
            "interval_s must be 1..=3600",
            "snapshot_interval_s must be 1..=86400",
            "ships the offender store",
        ] {
            assert!(e.contains(want), "{want} missing in {e}");
        }
        std::fs::write(
            &p,
            "[central]\nurl = \"postgres://gw@db/gw\"\nprovince = \"hue\"\n",
        )
        .unwrap();
        let c = Config::load(&p).unwrap().central.unwrap();
        assert_eq!(
            (c.interval_s, c.target().batch, c.snapshot_interval_s),
            (5, crate::store::central::BATCH_ROWS, 300)
        );
    }
}
