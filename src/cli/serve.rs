//! `gatewatch serve`: the web console over an offender store, or over the
//! central PostgreSQL of many sensors (`--central URL`).

use crate::console::{ConsoleOptions, Source};
use crate::run::config::{Config, DEFAULT_STORE};
use crate::run::console::DEFAULT_CONSOLE;
use anyhow::{Result, bail};
use clap::Args;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Offender store (with its accounts: `gatewatch users add`).
    #[arg(long, default_value = DEFAULT_STORE)]
    pub store: PathBuf,
    /// Serve the central PostgreSQL of many sensors instead of a store:
    /// the nation -> province -> unit view, with the accounts kept there
    /// (`gatewatch users add ... --central URL`).
    #[arg(
        long,
        env = "GATEWATCH_CENTRAL_URL",
        hide_env_values = true,
        conflicts_with = "store"
    )]
    pub central: Option<String>,
    /// PEM certificate of the CA of the central's certificate (TLS).
    #[arg(long, value_name = "PEM", requires = "central")]
    pub central_ca: Option<PathBuf>,
    /// Units file: units with no offender yet are listed too.
    #[arg(long, default_value = "feeds/units.csv")]
    pub units: PathBuf,
    /// Where to listen; loopback unless you say otherwise (put a TLS
    /// reverse proxy in front, or give --tls-cert/--tls-key).
    #[arg(long, default_value = DEFAULT_CONSOLE)]
    pub listen: SocketAddr,
    /// PEM certificate chain: serve HTTPS (with --tls-key).
    #[arg(long, requires = "tls_key", value_name = "PEM")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert", value_name = "PEM")]
    pub tls_key: Option<PathBuf>,
    /// Mark cookies Secure although this listener is plain HTTP: behind a
    /// TLS-terminating reverse proxy (deploy/console/).
    #[arg(long)]
    pub secure_cookies: bool,
}

pub fn cmd_serve(a: ServeArgs) -> Result<ExitCode> {
    let source = match a.central {
        Some(url) => central_source(url, a.central_ca)?,
        None => store_source(a.store)?,
    };
    for p in [&a.tls_cert, &a.tls_key].into_iter().flatten() {
        if !p.is_file() {
            bail!("{}: no such file (a PEM certificate or key)", p.display());
        }
    }
    crate::console::serve(ConsoleOptions {
        source,
        listen: a.listen,
        units: unit_names(&a.units),
        tls: a.tls_cert.zip(a.tls_key),
        secure_cookies: a.secure_cookies,
    })?;
    Ok(ExitCode::SUCCESS)
}

/// A store with an account in it.
fn store_source(store: PathBuf) -> Result<Source> {
    let s = crate::store::Store::open_read_only(&store)?;
    if !s.has_accounts()? {
        bail!(
            "{}: no account yet; add one first: printf '%s\\n' \"$PW\" | gatewatch users add NAME --role province-admin --password-stdin --store {}",
            store.display(),
            store.display()
        );
    }
    Ok(Source::Store(store))
}

/// A central that answers, with an account in it.
fn central_source(url: String, ca: Option<PathBuf>) -> Result<Source> {
    let mut c = crate::store::central::Central::connect(&url, ca.as_deref())?;
    if !c.has_accounts()? {
        bail!(
            "{}: no account yet; add one first: printf '%s\\n' \"$PW\" | gatewatch users add NAME --role province-admin --password-stdin --central URL (no --province: the nation)",
            c.shown()
        );
    }
    Ok(Source::Central { url, ca })
}

/// Codes and names of the units file; a missing file only means units
/// with no offender are not listed, so it is said, not fatal.
pub fn unit_names(path: &Path) -> Vec<(String, String)> {
    super::unit_names(path).unwrap_or_else(|e| {
        tracing::warn!("units file not used (units with no offender are not listed): {e}");
        Vec::new()
    })
}

/// The console of `gatewatch run`, when the config has `[console]`.
pub fn console_of(cfg: &Config) -> Option<ConsoleOptions> {
    let c = cfg.console.as_ref()?;
    Some(ConsoleOptions {
        source: Source::Store(cfg.store_path()?),
        listen: c.addr(),
        units: unit_names(&cfg.units),
        tls: c.tls(),
        secure_cookies: c.secure_cookies,
    })
}
