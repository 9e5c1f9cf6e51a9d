//! `gatewatch users`: console accounts in the store (issue 17). Passwords
//! come on standard input only (never on the command line, where `ps` shows
//! them); a token is printed once, on the last line, for scripts.

use crate::run::config::DEFAULT_STORE;
use crate::store::Store;
use crate::store::accounts::Role;
use crate::store::central::Central;
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
    /// The accounts of the central console (`gatewatch serve --central`)
    /// instead: a PostgreSQL URL.
    #[arg(long)]
    pub central: Option<String>,
    /// PEM certificate of the CA of the central's certificate (TLS).
    #[arg(long, value_name = "PEM", requires = "central")]
    pub central_ca: Option<PathBuf>,
}

impl StoreArg {
    fn central(&self) -> Result<Option<Central>> {
        match &self.central {
            Some(url) => Ok(Some(Central::connect(url, self.central_ca.as_deref())?)),
            None => Ok(None),
        }
    }
}

#[derive(Args, Debug)]
pub struct AddArgs {
    pub name: String,
    #[arg(long)]
    pub role: String,
    /// A unit the account sees (repeatable); none for a province-admin.
    #[arg(long = "unit", value_name = "CODE")]
    pub units: Vec<String>,
    /// With --central: the province it is limited to (none: the nation).
    #[arg(long)]
    pub province: Option<String>,
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
    let target = match &c {
        UsersCmd::Add(a) => &a.store,
        UsersCmd::Passwd(a) => &a.store,
        UsersCmd::Disable(a) | UsersCmd::Token(a) => &a.store,
        UsersCmd::List(a) => a,
    };
    if let Some(central) = target.central()? {
        return central_users(central, c);
    }
    if let UsersCmd::Add(a) = &c
        && a.province.is_some()
    {
        bail!("--province is for the central's accounts (with --central URL)");
    }
    match c {
        UsersCmd::Add(a) => {
            let role = role_of(&a.role)?;
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

fn role_of(s: &str) -> Result<Role> {
    Role::parse(s).ok_or_else(|| {
        let known: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        anyhow::anyhow!("--role {s:?}: use one of {}", known.join(", "))
    })
}

/// The same commands on the central's accounts.
fn central_users(mut c: Central, cmd: UsersCmd) -> Result<ExitCode> {
    match cmd {
        UsersCmd::Add(a) => {
            let role = role_of(&a.role)?;
            let pw = password()?;
            c.add_account(
                &a.name,
                role,
                a.province.as_deref(),
                &a.units,
                &pw,
                &actor(),
            )?;
            let scope = a.province.as_deref().unwrap_or("the nation");
            println!("{}: added as {} of {scope}", a.name, role.as_str());
        }
        UsersCmd::Passwd(a) => {
            let pw = password()?;
            c.set_password(&a.name, &pw, &actor())?;
            println!("{}: password changed", a.name);
        }
        UsersCmd::Disable(a) => {
            c.disable_account(&a.name, &actor())?;
            println!("{}: disabled", a.name);
        }
        UsersCmd::List(_) => print_accounts(&c.accounts()?),
        UsersCmd::Token(a) => bail!(
            "{}: API tokens are a sensor console's; the central console has pages and downloads only",
            a.name
        ),
    }
    Ok(ExitCode::SUCCESS)
}

fn list(s: &Store) -> Result<()> {
    print_accounts(&s.accounts()?);
    Ok(())
}

fn print_accounts(accounts: &[crate::store::accounts::Account]) {
    println!(
        "{:<24} {:<15} {:<9} {:<20} units",
        "name", "role", "state", "province"
    );
    for a in accounts {
        let units = if a.units.is_empty() {
            "(all)".to_string()
        } else {
            a.units.iter().cloned().collect::<Vec<_>>().join(",")
        };
        let state = if a.disabled { "disabled" } else { "active" };
        let province = a.province.as_deref().unwrap_or("-");
        println!(
            "{:<24} {:<15} {:<9} {province:<20} {units}",
            a.name,
            a.role.as_str(),
            state
        );
    }
}
