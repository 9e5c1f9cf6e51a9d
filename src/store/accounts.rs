//! Console accounts (issue 17): who may see and change what, kept in the
//! store beside what they act on.
//!
//! Invariants:
//! - A password is kept only as an argon2id PHC string (salted, from the
//!   system's random source); an API token only as its SHA-256 (tokens are
//!   32 random bytes, so a fast hash is enough), shown once when made.
//! - Roles: `province-admin` sees every unit and manages accounts;
//!   `unit-officer` sees and acts on its units only (at least one);
//!   `viewer` reads its units, or every unit when given none.
//! - A disabled account neither logs in nor uses its tokens.
//! - Every change to an account is a row of `audit`, with who did it.

use super::{Store, StoreError};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use ring::rand::{SecureRandom, SystemRandom};
use rusqlite::{OptionalExtension, params};
use std::collections::BTreeSet;

/// Schema step 4's tables (see `MIGRATIONS`).
pub(super) const SCHEMA: &str = "CREATE TABLE accounts (
        name       TEXT PRIMARY KEY,
        role       TEXT NOT NULL
                   CHECK (role IN ('province-admin', 'unit-officer', 'viewer')),
        password   TEXT NOT NULL,
        disabled   INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        changed_at INTEGER NOT NULL
    );
    CREATE TABLE account_units (
        name TEXT NOT NULL REFERENCES accounts (name),
        unit TEXT NOT NULL,
        PRIMARY KEY (name, unit)
    ) WITHOUT ROWID;
    CREATE TABLE api_tokens (
        hash       TEXT PRIMARY KEY,
        name       TEXT NOT NULL REFERENCES accounts (name),
        created_at INTEGER NOT NULL,
        last_used  INTEGER
    );
    CREATE TABLE audit (
        id     INTEGER PRIMARY KEY,
        at     INTEGER NOT NULL,
        actor  TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        note   TEXT NOT NULL
    );
    CREATE INDEX audit_at ON audit (at);";

/// One audit row: time, actor, action, target, note.
pub type AuditEntry = (i64, String, String, String, String);

/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 10;

/// What an account may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    ProvinceAdmin,
    UnitOfficer,
    Viewer,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::ProvinceAdmin, Role::UnitOfficer, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::ProvinceAdmin => "province-admin",
            Role::UnitOfficer => "unit-officer",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// An account as stored (never its password).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub role: Role,
    /// The units given; empty for a province admin.
    pub units: BTreeSet<String>,
    pub disabled: bool,
    /// The province it is limited to in the central view (`None`: the
    /// nation there; always `None` in a sensor's store, which is one
    /// province's already).
    pub province: Option<String>,
}

impl Account {
    /// Whether the account sees unit `code`.
    pub fn sees(&self, code: &str) -> bool {
        match self.role {
            Role::ProvinceAdmin => true,
            Role::Viewer if self.units.is_empty() => true,
            _ => self.units.contains(code),
        }
    }

    /// Whether it may change hosts of unit `code` (mark cleaned, reopen).
    pub fn acts_on(&self, code: &str) -> bool {
        self.role != Role::Viewer && self.sees(code)
    }

    /// Whether it sees every unit (the province's figures and pages).
    pub fn sees_all(&self) -> bool {
        self.role == Role::ProvinceAdmin || (self.role == Role::Viewer && self.units.is_empty())
    }

    /// Whether it manages accounts and reads the audit log.
    pub fn is_admin(&self) -> bool {
        self.role == Role::ProvinceAdmin
    }

    /// Whether it sees province `p` of the central view (its units there,
    /// as [`Account::sees`] says).
    pub fn sees_province(&self, p: &str) -> bool {
        self.province.as_deref().is_none_or(|mine| mine == p)
    }

    /// Whether it sees every province and every unit of the central view.
    pub fn sees_nation(&self) -> bool {
        self.province.is_none() && self.sees_all()
    }
}

/// Why an account request was refused, with what to do.
pub fn check_new(name: &str, role: Role, units: &[String]) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !ok {
        return Err(format!(
            "{name:?}: an account name is 1 to 64 letters, digits, '.', '_' or '-'"
        ));
    }
    match (role, units.is_empty()) {
        (Role::UnitOfficer, true) => Err(format!(
            "{name}: a unit-officer needs at least one --unit CODE"
        )),
        (Role::ProvinceAdmin, false) => Err(format!(
            "{name}: a province-admin sees every unit; give no --unit"
        )),
        _ => Ok(()),
    }
}

pub(crate) fn check_password(password: &str) -> Result<(), StoreError> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(StoreError::Invalid(format!(
            "the password is shorter than {MIN_PASSWORD} characters; choose a longer one"
        )));
    }
    Ok(())
}

/// `N` bytes from the system's random source.
fn random_bytes<const N: usize>() -> Result<[u8; N], StoreError> {
    let mut b = [0u8; N];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| StoreError::Invalid("the system's random source failed".into()))?;
    Ok(b)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// 32 random bytes as hex: API tokens, console sessions and CSRF tokens.
pub fn random_hex() -> Result<String, StoreError> {
    random_bytes::<32>().map(|b| hex(&b))
}

/// Equal in time that depends on the lengths only, so a wrong secret's
/// answer time tells nothing about how much of it was right.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The argon2id PHC string of `password`, with a fresh random salt.
pub(crate) fn hash_password(password: &str) -> Result<String, StoreError> {
    let salt = random_bytes::<16>()?;
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| StoreError::Invalid(format!("password salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Invalid(format!("password hashing failed: {e}")))
}

fn token_hash(token: &str) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref())
}

impl Store {
    /// Add account `name`; `actor` is who asks (for the audit log).
    pub fn add_account(
        &mut self,
        name: &str,
        role: Role,
        units: &[String],
        password: &str,
        actor: &str,
        at_ns: i64,
    ) -> Result<(), StoreError> {
        check_new(name, role, units).map_err(StoreError::Invalid)?;
        check_password(password)?;
        let hash = hash_password(password)?;
        let path = self.path.clone();
        let sql = |e| super::sql_error(&path, e);
        let tx = self.conn.transaction().map_err(sql)?;
        if account_exists(&tx, name).map_err(sql)? {
            return Err(StoreError::Invalid(format!(
                "{name}: the account exists; `gatewatch users passwd` changes its password"
            )));
        }
        tx.execute(
            "INSERT INTO accounts (name, role, password, created_at, changed_at)
             VALUES (?1, ?2, ?3, ?4, ?4)",
            params![name, role.as_str(), hash, at_ns],
        )
        .map_err(sql)?;
        for u in units {
            tx.execute(
                "INSERT OR IGNORE INTO account_units (name, unit) VALUES (?1, ?2)",
                params![name, u],
            )
            .map_err(sql)?;
        }
        let note = format!("role {}; units {}", role.as_str(), units.join(","));
        audit(&tx, at_ns, actor, "account-add", name, &note).map_err(sql)?;
        tx.commit().map_err(sql)
    }

    /// Set a new password for `name`.
    pub fn set_password(
        &mut self,
        name: &str,
        password: &str,
        actor: &str,
        at_ns: i64,
    ) -> Result<(), StoreError> {
        check_password(password)?;
        let hash = hash_password(password)?;
        self.change(name, actor, at_ns, "account-passwd", |tx| {
            tx.execute(
                "UPDATE accounts SET password = ?2, changed_at = ?3 WHERE name = ?1",
                params![name, hash, at_ns],
            )
        })
    }

    /// Disable `name`: no login, no token; kept for the audit log.
    pub fn disable_account(
        &mut self,
        name: &str,
        actor: &str,
        at_ns: i64,
    ) -> Result<(), StoreError> {
        self.change(name, actor, at_ns, "account-disable", |tx| {
            tx.execute(
                "UPDATE accounts SET disabled = 1, changed_at = ?2 WHERE name = ?1",
                params![name, at_ns],
            )
        })
    }

    /// A new API token for `name`, returned once; only its hash is kept.
    pub fn new_token(&mut self, name: &str, actor: &str, at_ns: i64) -> Result<String, StoreError> {
        let token = random_hex()?;
        let hash = token_hash(&token);
        self.change(name, actor, at_ns, "token-add", |tx| {
            tx.execute(
                "INSERT INTO api_tokens (hash, name, created_at) VALUES (?1, ?2, ?3)",
                params![hash, name, at_ns],
            )
        })?;
        Ok(token)
    }

    /// Run `f` on existing account `name` in one transaction with its
    /// audit row.
    fn change(
        &mut self,
        name: &str,
        actor: &str,
        at_ns: i64,
        action: &str,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<usize>,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let sql = |e| super::sql_error(&path, e);
        let tx = self.conn.transaction().map_err(sql)?;
        if !account_exists(&tx, name).map_err(sql)? {
            return Err(StoreError::Invalid(format!(
                "{name}: no such account (`gatewatch users list` shows them)"
            )));
        }
        f(&tx).map_err(sql)?;
        audit(&tx, at_ns, actor, action, name, "").map_err(sql)?;
        tx.commit().map_err(sql)
    }

    /// Whether any account exists: then every API request needs a token.
    pub fn has_accounts(&self) -> Result<bool, StoreError> {
        self.conn
            .query_row("SELECT EXISTS (SELECT 1 FROM accounts)", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// Every account, by name.
    pub fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT name FROM accounts ORDER BY name")
            .map_err(|e| self.err(e))?;
        let names = st
            .query_map([], |r| r.get::<_, String>(0))
            .and_then(|r| r.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.err(e))?;
        names
            .iter()
            .filter_map(|n| self.account(n).transpose())
            .collect()
    }

    /// Account `name`, if it exists.
    pub fn account(&self, name: &str) -> Result<Option<Account>, StoreError> {
        let row: Option<(String, bool)> = self
            .conn
            .query_row(
                "SELECT role, disabled FROM accounts WHERE name = ?1",
                params![name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let Some((role, disabled)) = row else {
            return Ok(None);
        };
        let role = Role::parse(&role).ok_or_else(|| StoreError::Corrupt {
            path: self.path.clone(),
            detail: format!("account {name}: role {role:?}"),
        })?;
        let mut st = self
            .conn
            .prepare_cached("SELECT unit FROM account_units WHERE name = ?1 ORDER BY unit")
            .map_err(|e| self.err(e))?;
        let units = st
            .query_map(params![name], |r| r.get::<_, String>(0))
            .and_then(|r| r.collect::<Result<BTreeSet<_>, _>>())
            .map_err(|e| self.err(e))?;
        Ok(Some(Account {
            name: name.to_string(),
            role,
            units,
            disabled,
            province: None,
        }))
    }

    /// The account `name` when `password` is its password and it is not
    /// disabled. Unknown names cost a hash too, so timing does not tell
    /// which names exist.
    pub fn verify_password(
        &self,
        name: &str,
        password: &str,
    ) -> Result<Option<Account>, StoreError> {
        let stored: Option<String> = self
            .conn
            .query_row(
                "SELECT password FROM accounts WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        if !password_matches(stored.as_deref(), password) {
            return Ok(None);
        }
        Ok(self.account(name)?.filter(|a| !a.disabled))
    }

    /// The account a bearer token belongs to, unless it is disabled.
    pub fn token_account(&self, token: &str) -> Result<Option<Account>, StoreError> {
        let name: Option<String> = self
            .conn
            .query_row(
                "SELECT name FROM api_tokens WHERE hash = ?1",
                params![token_hash(token)],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        match name {
            Some(n) => Ok(self.account(&n)?.filter(|a| !a.disabled)),
            None => Ok(None),
        }
    }

    /// The audit log, newest first.
    pub fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT at, actor, action, target, note FROM audit ORDER BY at DESC, id DESC LIMIT ?1")
            .map_err(|e| self.err(e))?;
        st.query_map(params![limit as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .and_then(|r| r.collect::<Result<Vec<_>, _>>())
        .map_err(|e| self.err(e))
    }
}

/// Whether `password` matches the PHC string `stored`; with none (an
/// unknown name) a dummy hash is verified, so timing does not tell which
/// names exist.
pub(crate) fn password_matches(stored: Option<&str>, password: &str) -> bool {
    PasswordHash::new(stored.unwrap_or(DUMMY_HASH))
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A valid argon2id hash of no one's password, verified against when the
/// name is unknown.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$8G2kR3H7yq9d5pQ3n2vK1z4mX6cB0aLwE9tF7uJ5rSo";

fn account_exists(tx: &rusqlite::Transaction<'_>, name: &str) -> rusqlite::Result<bool> {
    tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM accounts WHERE name = ?1)",
        params![name],
        |r| r.get(0),
    )
}

fn audit(
    tx: &rusqlite::Transaction<'_>,
    at: i64,
    actor: &str,
    action: &str,
    target: &str,
    note: &str,
) -> rusqlite::Result<usize> {
    tx.execute(
        "INSERT INTO audit (at, actor, action, target, note) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![at, actor, action, target, note],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dummy_hash_parses_so_unknown_names_cost_a_verification() {
        let h = PasswordHash::new(DUMMY_HASH).unwrap();
        assert!(Argon2::default().verify_password(b"x", &h).is_err());
    }

    #[test]
    fn scopes_follow_the_roles() {
        let a = |role, units: &[&str]| Account {
            name: "a".into(),
            role,
            units: units.iter().map(|u| u.to_string()).collect(),
            disabled: false,
            province: None,
        };
        let officer = a(Role::UnitOfficer, &["U1"]);
        assert!(officer.sees("U1") && officer.acts_on("U1"));
        assert!(!officer.sees("U2") && !officer.acts_on("U2"));
        let viewer = a(Role::Viewer, &[]);
        assert!(viewer.sees("U2") && !viewer.acts_on("U2"));
        let admin = a(Role::ProvinceAdmin, &[]);
        assert!(admin.sees("U9") && admin.acts_on("U9") && admin.is_admin());
        assert!(check_new("ok.name", Role::UnitOfficer, &[]).is_err());
        assert!(check_new("bad name", Role::Viewer, &[]).is_err());
        assert!(check_new("admin", Role::ProvinceAdmin, &["U1".into()]).is_err());
    }
}
