//! `gatewatch serve`: the web console over an offender store.

use crate::run::config::DEFAULT_STORE;
use anyhow::{Result, bail};
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Offender store (with its accounts: `gatewatch users add`).
    #[arg(long, default_value = DEFAULT_STORE)]
    pub store: PathBuf,
    /// Where to listen; loopback unless you say otherwise (put a TLS
    /// reverse proxy in front to serve other machines).
    #[arg(long, default_value = "127.0.0.1:9480")]
    pub listen: SocketAddr,
}

pub fn cmd_serve(a: ServeArgs) -> Result<ExitCode> {
    let s = crate::store::Store::open_read_only(&a.store)?;
    if !s.has_accounts()? {
        bail!(
            "{}: no account yet; add one first: printf '%s\\n' \"$PW\" | gatewatch users add NAME --role province-admin --password-stdin --store {}",
            a.store.display(),
            a.store.display()
        );
    }
    drop(s);
    crate::console::serve(a.store, a.listen)?;
    Ok(ExitCode::SUCCESS)
}
