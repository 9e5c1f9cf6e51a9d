//! Accounts of the central console (`gatewatch serve --central`): the
//! roles of a sensor's console, each limited to one province or to none
//! (the nation).
//!
//! Invariants:
//! - Passwords as in a sensor's store: argon2id PHC strings only, checked
//!   against a dummy hash for unknown names (same time either way).
//! - A unit officer, and any account given units, names its province: a
//!   unit code means something only within a province (two provinces may
//!   share one).
//! - Every change to an account or to a host's status is a row of
//!   `gw_audit` in the same transaction, with the province it concerns, so
//!   a province admin reads its own province's changes only.

use super::{Central, CentralError};
use crate::store::accounts::{
    Account, AuditEntry, Role, check_new, check_password, hash_password, password_matches,
};
use postgres::GenericClient;
use std::collections::BTreeSet;

/// The account tables, created with the rest of the schema.
pub(super) const SCHEMA: &str = "
BEGIN;
SELECT pg_advisory_xact_lock(7177611902);
CREATE TABLE IF NOT EXISTS gw_accounts (
    name       text PRIMARY KEY,
    role       text NOT NULL
               CHECK (role IN ('province-admin', 'unit-officer', 'viewer')),
    province   text,
    password   text NOT NULL,
    disabled   boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS gw_account_units (
    name text NOT NULL REFERENCES gw_accounts (name),
    unit text NOT NULL,
    PRIMARY KEY (name, unit)
);
CREATE TABLE IF NOT EXISTS gw_audit (
    id       bigserial PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    actor    text NOT NULL,
    action   text NOT NULL,
    target   text NOT NULL,
    province text,
    note     text NOT NULL
);
COMMIT;";

/// One audit row (`province`: the one it concerns, `None` for the nation).
pub(super) fn audit(
    c: &mut impl GenericClient,
    actor: &str,
    action: &str,
    target: &str,
    province: Option<&str>,
    note: &str,
) -> Result<u64, postgres::Error> {
    c.execute(
        "INSERT INTO gw_audit (actor, action, target, province, note) VALUES ($1, $2, $3, $4, $5)",
        &[&actor, &action, &target, &province, &note],
    )
}

impl Central {
    /// Add account `name`, limited to `province` (`None`: the nation);
    /// `actor` is who asks.
    pub fn add_account(
        &mut self,
        name: &str,
        role: Role,
        province: Option<&str>,
        units: &[String],
        password: &str,
        actor: &str,
    ) -> Result<(), CentralError> {
        check_new(name, role, units).map_err(CentralError::Invalid)?;
        if province.is_none() && !units.is_empty() {
            return Err(CentralError::Invalid(format!(
                "{name}: units are codes within a province; give --province too"
            )));
        }
        if province.is_some_and(|p| p.trim().is_empty()) {
            return Err(CentralError::Invalid(format!(
                "{name}: --province is empty"
            )));
        }
        check_password(password).map_err(|e| CentralError::Invalid(e.to_string()))?;
        let hash = hash_password(password).map_err(|e| CentralError::Invalid(e.to_string()))?;
        let shown = self.shown.clone();
        let sql = |source| CentralError::Sql {
            url: shown.clone(),
            source,
        };
        let mut tx = self.client.transaction().map_err(sql)?;
        let added = tx
            .execute(
                "INSERT INTO gw_accounts (name, role, province, password) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (name) DO NOTHING",
                &[&name, &role.as_str(), &province, &hash],
            )
            .map_err(sql)?;
        if added == 0 {
            return Err(CentralError::Invalid(format!(
                "{name}: the account exists; `gatewatch users passwd --central URL` changes its password"
            )));
        }
        for u in units {
            tx.execute(
                "INSERT INTO gw_account_units (name, unit) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&name, u],
            )
            .map_err(sql)?;
        }
        let note = format!(
            "role {}; province {}; units {}",
            role.as_str(),
            province.unwrap_or("(all)"),
            units.join(",")
        );
        audit(&mut tx, actor, "account-add", name, province, &note).map_err(sql)?;
        tx.commit().map_err(sql)
    }

    /// Set a new password for `name`.
    pub fn set_password(
        &mut self,
        name: &str,
        password: &str,
        actor: &str,
    ) -> Result<(), CentralError> {
        check_password(password).map_err(|e| CentralError::Invalid(e.to_string()))?;
        let hash = hash_password(password).map_err(|e| CentralError::Invalid(e.to_string()))?;
        self.change_account(name, actor, "account-passwd", |tx| {
            tx.execute(
                "UPDATE gw_accounts SET password = $2, changed_at = now() WHERE name = $1",
                &[&name, &hash],
            )
        })
    }

    /// Disable `name`: no login; its open sessions end at their next page.
    pub fn disable_account(&mut self, name: &str, actor: &str) -> Result<(), CentralError> {
        self.change_account(name, actor, "account-disable", |tx| {
            tx.execute(
                "UPDATE gw_accounts SET disabled = true, changed_at = now() WHERE name = $1",
                &[&name],
            )
        })
    }

    /// Run `update` on existing account `name` in one transaction with its
    /// audit row.
    fn change_account(
        &mut self,
        name: &str,
        actor: &str,
        action: &str,
        update: impl FnOnce(&mut postgres::Transaction<'_>) -> Result<u64, postgres::Error>,
    ) -> Result<(), CentralError> {
        let shown = self.shown.clone();
        let sql = |source| CentralError::Sql {
            url: shown.clone(),
            source,
        };
        let mut tx = self.client.transaction().map_err(sql)?;
        let province: Option<Option<String>> = tx
            .query_opt("SELECT province FROM gw_accounts WHERE name = $1", &[&name])
            .map_err(sql)?
            .map(|r| r.get(0));
        let Some(province) = province else {
            return Err(CentralError::Invalid(format!(
                "{name}: no such account (`gatewatch users list --central URL` shows them)"
            )));
        };
        update(&mut tx).map_err(sql)?;
        audit(&mut tx, actor, action, name, province.as_deref(), "").map_err(sql)?;
        tx.commit().map_err(sql)
    }

    /// Whether any account exists.
    pub fn has_accounts(&mut self) -> Result<bool, CentralError> {
        self.client
            .query_one("SELECT EXISTS (SELECT 1 FROM gw_accounts)", &[])
            .map(|r| r.get(0))
            .map_err(|e| self.sql(e))
    }

    /// Every account, by name.
    pub fn accounts(&mut self) -> Result<Vec<Account>, CentralError> {
        let names: Vec<String> = self
            .client
            .query("SELECT name FROM gw_accounts ORDER BY name", &[])
            .map_err(|e| self.sql(e))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            out.extend(self.account(&n)?);
        }
        Ok(out)
    }

    /// Account `name`, if it exists.
    pub fn account(&mut self, name: &str) -> Result<Option<Account>, CentralError> {
        let Some(r) = self
            .client
            .query_opt(
                "SELECT role, province, disabled,
                        ARRAY(SELECT unit FROM gw_account_units u WHERE u.name = a.name)
                 FROM gw_accounts a WHERE name = $1",
                &[&name],
            )
            .map_err(|e| self.sql(e))?
        else {
            return Ok(None);
        };
        let role: String = r.get(0);
        let role = Role::parse(&role).ok_or_else(|| {
            CentralError::Invalid(format!("account {name}: unknown role {role:?}"))
        })?;
        let units: Vec<String> = r.get(3);
        Ok(Some(Account {
            name: name.to_owned(),
            role,
            units: units.into_iter().collect::<BTreeSet<_>>(),
            disabled: r.get(2),
            province: r.get(1),
        }))
    }

    /// The account `name` when `password` is its password and it is not
    /// disabled.
    pub fn verify_password(
        &mut self,
        name: &str,
        password: &str,
    ) -> Result<Option<Account>, CentralError> {
        let stored: Option<String> = self
            .client
            .query_opt("SELECT password FROM gw_accounts WHERE name = $1", &[&name])
            .map_err(|e| self.sql(e))?
            .map(|r| r.get(0));
        if !password_matches(stored.as_deref(), password) {
            return Ok(None);
        }
        Ok(self.account(name)?.filter(|a| !a.disabled))
    }

    /// The audit log, newest first: one province's rows, or all (`None`).
    pub fn audit_log(
        &mut self,
        province: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, CentralError> {
        let rows = self
            .client
            .query(
                "SELECT (extract(epoch FROM at) * 1e9)::bigint, actor, action, target, note
                 FROM gw_audit WHERE $1::text IS NULL OR province = $1
                 ORDER BY at DESC, id DESC LIMIT $2",
                &[&province, &(limit as i64)],
            )
            .map_err(|e| self.sql(e))?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
            .collect())
    }
}
