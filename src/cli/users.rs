//! `gatewatch users`: console accounts in the store (issue 17). Passwords
//! come on standard input only (never on the command line, where `ps` shows
//! them); a token is printed once, on the last line, for scripts.

use crate::run::config::DEFAULT_STORE;
use crate::store::Store;
use crate::store::accounts::Role;
use anyhow::{Result, bail};
use clap::Args;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Subcommand, Debug)]
pub enum UsersCmd {
    /// Add an account: `--role province-admin | unit-officer | viewer`.
    Add(AddArgs),
    /// Set an account's password (read from standard input).
    Passwd(PasswdArgs),
    /// Disable an account: no login, no API token.
    Disable(NameArgs),
    /// List the accounts with their roles and units.
    List(StoreArg),
    /// Make an API token for an account; printed once, on the last line.
    Token(NameArgs),
}

#[derive(Args, Debug)]
pub struct StoreArg {
    /// Offender store the console serves.
    #[arg(long, default_value = DEFAULT_STORE)]
    pub store: PathBuf,
}

#[derive(Args, Debug)]
pub struct AddArgs {
    pub name: String,
    #[arg(long)]
    pub role: String,
    /// A unit the account sees (repeatable); none for a province-admin.
    #[arg(long = "unit", value_name = "CODE")]
    pub units: Vec<String>,
    /// Read the password from the first line of standard input.
    #[arg(long, required = true)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub store: StoreArg,
}

#[derive(Args, Debug)]
pub struct PasswdArgs {
    pub name: String,
    /// Read the password from the first line of standard input.
    #[arg(long, required = true)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub store: StoreArg,
}

#[derive(Args, Debug)]
pub struct NameArgs {
    pub name: String,
    #[command(flatten)]
    pub store: StoreArg,
}

/// Who runs the command, for the audit log.
fn actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "operator".into())
    )
}

fn now() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// The first line of standard input, without its line end.
fn password() -> Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let p = line.trim_end_matches(['\r', '\n']).to_string();
    if p.is_empty() {
        bail!(
            "no password on standard input; pipe it in, e.g. `printf '%s\\n' \"$PW\" | gatewatch users ...`"
        );
    }
    Ok(p)
}

pub fn cmd_users(c: UsersCmd) -> Result<ExitCode> {
    match c {
        UsersCmd::Add(a) => {
            let Some(role) = Role::parse(&a.role) else {
                let known: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
                bail!("--role {:?}: use one of {}", a.role, known.join(", "));
            };
            let pw = password()?;
            let mut s = Store::open(&a.store.store)?;
            s.add_account(&a.name, role, &a.units, &pw, &actor(), now())?;
            println!("{}: added as {}", a.name, role.as_str());
        }
        UsersCmd::Passwd(a) => {
            let pw = password()?;
            Store::open(&a.store.store)?.set_password(&a.name, &pw, &actor(), now())?;
            println!("{}: password changed", a.name);
        }
        UsersCmd::Disable(a) => {
            Store::open(&a.store.store)?.disable_account(&a.name, &actor(), now())?;
            println!("{}: disabled", a.name);
        }
        UsersCmd::List(a) => list(&Store::open(&a.store)?)?,
        UsersCmd::Token(a) => {
            let t = Store::open(&a.store.store)?.new_token(&a.name, &actor(), now())?;
            println!("API token for {} (shown once; keep it secret):", a.name);
            println!("{t}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn list(s: &Store) -> Result<()> {
    println!("{:<24} {:<15} {:<9} units", "name", "role", "state");
    for a in s.accounts()? {
        let units = if a.units.is_empty() {
            "(all)".to_string()
        } else {
            a.units.iter().cloned().collect::<Vec<_>>().join(",")
        };
        let state = if a.disabled { "disabled" } else { "active" };
        println!(
            "{:<24} {:<15} {:<9} {units}",
            a.name,
            a.role.as_str(),
            state
        );
    }
    Ok(())
}
