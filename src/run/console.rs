//! `[console]`: the sensor serves the web console itself (the same one as
//! `gatewatch serve`) over its offender store.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Where the console listens when `listen` is left out: loopback only.
pub const DEFAULT_CONSOLE: &str = "127.0.0.1:9480";

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    #[serde(default = "default_listen")]
    pub listen: String,
    /// PEM certificate chain and private key: serve HTTPS.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// Cookies marked `Secure` without TLS here: behind a TLS proxy.
    #[serde(default)]
    pub secure_cookies: bool,
}

fn default_listen() -> String {
    DEFAULT_CONSOLE.to_owned()
}

impl ConsoleConfig {
    /// Every problem with the section, each naming the key and the fix.
    pub fn problems(&self, shown: &str, store: bool) -> Vec<String> {
        let mut errs = Vec::new();
        if self.listen.parse::<SocketAddr>().is_err() {
            errs.push(format!(
                "{shown}: [console] listen = {:?} is not an address:port (e.g. {DEFAULT_CONSOLE})",
                self.listen
            ));
        }
        if !store {
            errs.push(format!(
                "{shown}: [console] needs the offender store (store = \"\" turns it off): set store or remove [console]"
            ));
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) | (None, Some(_)) => errs.push(format!(
                "{shown}: [console] tls_cert and tls_key go together: give both PEM files or neither"
            )),
            (Some(c), Some(k)) => {
                for (key, p) in [("tls_cert", c), ("tls_key", k)] {
                    if !p.is_file() {
                        errs.push(format!(
                            "{shown}: [console] {key} = {:?}: no such file",
                            p.display()
                        ));
                    }
                }
            }
            (None, None) => {}
        }
        errs
    }

    pub fn addr(&self) -> SocketAddr {
        self.listen
            .parse()
            .unwrap_or_else(|_| DEFAULT_CONSOLE.parse().expect("default address"))
    }

    pub fn tls(&self) -> Option<(PathBuf, PathBuf)> {
        self.tls_cert.clone().zip(self.tls_key.clone())
    }
}

#[cfg(test)]
mod tests {
    use crate::run::config::Config;

    fn load(text: &str) -> Result<Config, String> {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("g.toml");
        std::fs::write(&p, text).unwrap();
        Config::load(&p).map_err(|e| e.to_string())
    }

    #[test]
    fn a_console_section_is_checked_with_every_problem_listed() {
        let c = load("[console]\n").unwrap();
        let console = c.console.unwrap();
        assert!(console.addr().ip().is_loopback() && console.tls().is_none());
        let e = load(
            "store = \"\"\n[console]\nlisten = \"everywhere\"\ntls_cert = \"/nonexistent/c.pem\"\n",
        )
        .unwrap_err();
        for want in [
            "[console] listen = \"everywhere\"",
            "needs the offender store",
            "tls_cert and tls_key go together",
        ] {
            assert!(e.contains(want), "{want} missing in {e}");
        }
        let e = load(
            "[console]\ntls_cert = \"/nonexistent/c.pem\"\ntls_key = \"/nonexistent/k.pem\"\n",
        )
        .unwrap_err();
        assert!(
            e.contains("tls_cert = \"/nonexistent/c.pem\": no such file"),
            "{e}"
        );
        assert!(e.contains("tls_key"), "{e}");
        assert!(load("[console]\nport = 1\n").unwrap_err().contains("port"));
    }
}
