//! `gatewatch feeds publish FILE.snap --central URL`: put a compiled
//! snapshot on the central, where sensors with `[central]` fetch it.

use crate::intel::snap::{self, PublicKey};
use crate::store::central::{Central, Published};
use anyhow::{Context as _, Result, anyhow};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct PublishArgs {
    /// The snapshot file (`gatewatch feeds compile`).
    #[arg(value_name = "FILE.snap")]
    pub file: PathBuf,
    /// The central: a postgres:// URL (its password is never printed).
    #[arg(long, env = "GATEWATCH_CENTRAL_URL", hide_env_values = true)]
    pub central: String,
    /// PEM certificate of the CA that signed the central's certificate (TLS).
    #[arg(long, value_name = "PEM")]
    pub central_ca: Option<PathBuf>,
    /// Check the signature with this public key (the one the sensors
    /// have) before publishing; without it, everything but the signature
    /// is checked (sensors always check it).
    #[arg(long, value_name = "KEY.pub")]
    pub key: Option<PathBuf>,
}

pub fn cmd_feeds_publish(a: PublishArgs) -> Result<ExitCode> {
    let shown = a.file.display().to_string();
    let bytes = std::fs::read(&a.file)
        .with_context(|| format!("{shown}: cannot read the snapshot file"))?;
    let key = match &a.key {
        Some(k) => Some(PublicKey::load(k).map_err(|e| anyhow!(e))?),
        None => None,
    };
    let info = snap::inspect(&bytes, key.as_ref(), &shown).map_err(|e| anyhow!(e.message))?;
    if info.indicators == 0 {
        anyhow::bail!(
            "{shown}: it lists no indicators; sensors would refuse it, so it is not published"
        );
    }
    let mut central = Central::connect(&a.central, a.central_ca.as_deref())?;
    let what = match central.publish_snapshot(info.version, info.indicators, &bytes)? {
        Published::Inserted => "published",
        Published::AlreadyThere => "already published (same version, same bytes): nothing to do",
    };
    println!(
        "{shown}: version {}, {} indicators, {} bytes{}: {what} on {}",
        info.version,
        info.indicators,
        info.bytes,
        if key.is_some() {
            ", signature verified"
        } else {
            ", signature not checked (no --key)"
        },
        central.shown()
    );
    Ok(ExitCode::SUCCESS)
}
