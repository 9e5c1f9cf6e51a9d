//! `gatewatch hosts`: the cleaning status of offender hosts in the store.

use crate::run::config::DEFAULT_STORE;
use crate::store::Store;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Subcommand, Debug)]
pub enum HostsCmd {
    /// Mark a host cleaned (a later hit marks it reinfected).
    MarkCleaned(MarkArgs),
}

#[derive(Args, Debug)]
pub struct MarkArgs {
    /// The host's address.
    pub ip: std::net::IpAddr,
    /// What was done (kept with the status change).
    #[arg(long, default_value = "")]
    pub note: String,
    /// Who did it (default: $USER).
    #[arg(long)]
    pub by: Option<String>,
    /// Offender store.
    #[arg(long, default_value = DEFAULT_STORE)]
    pub store: PathBuf,
}

pub fn cmd_mark_cleaned(a: MarkArgs) -> Result<ExitCode> {
    let mut s = Store::open(&a.store)?;
    let by =
        a.by.or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "operator".into());
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
    let h = s.mark_cleaned(a.ip, &by, &a.note, now)?;
    println!(
        "{} [{}] marked {} ({}) by {by}",
        h.ip,
        h.unit,
        h.status.as_str(),
        h.status.label_vi()
    );
    Ok(ExitCode::SUCCESS)
}
