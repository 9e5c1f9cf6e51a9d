//! Logins, sessions, CSRF tokens and login throttling for the console.
//!
//! Invariants:
//! - A session id and its CSRF token are 32 random bytes each (hex); the
//!   cookie is `HttpOnly; SameSite=Strict; Path=/` (and `Secure` behind
//!   TLS), and expires [`SESSION_TTL`] after login.
//! - Every state-changing form carries the session's CSRF token; a missing
//!   or wrong one is 403 before anything is read.
//! - [`MAX_FAILS`] wrong passwords for one name within [`THROTTLE`] lock
//!   that name out for the rest of the window (429), whatever the password.
//! - Sessions live in memory: a restart logs everyone out.

use crate::store::StoreError;
use crate::store::accounts::{Account, random_hex, same_secret};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
pub const MAX_FAILS: u32 = 5;
pub const THROTTLE: Duration = Duration::from_secs(15 * 60);
pub const COOKIE: &str = "gw_session";
/// Most names whose failed logins are remembered (about 100 bytes each).
pub const MAX_TRACKED: usize = 10_000;

/// A logged-in account.
#[derive(Clone, Debug)]
pub struct Session {
    pub account: Account,
    pub csrf: String,
    expires: Instant,
}

/// Sessions and failed logins.
#[derive(Default)]
pub struct Auth {
    sessions: Mutex<HashMap<String, Session>>,
    fails: Mutex<HashMap<String, (u32, Instant)>>,
}

impl Auth {
    /// Whether `name` is locked out by failed logins.
    pub fn throttled(&self, name: &str) -> bool {
        let Ok(f) = self.fails.lock() else {
            return true;
        };
        f.get(name)
            .is_some_and(|(n, since)| *n >= MAX_FAILS && since.elapsed() < THROTTLE)
    }

    /// Count a failed login of `name`.
    pub fn failed(&self, name: &str) {
        if let Ok(mut f) = self.fails.lock() {
            // Names tried with wrong passwords are attacker-chosen: windows
            // that ended are dropped, and past MAX_TRACKED the oldest go.
            if f.len() >= MAX_TRACKED && !f.contains_key(name) {
                f.retain(|_, (_, since)| since.elapsed() < THROTTLE);
                while f.len() >= MAX_TRACKED {
                    let oldest = f
                        .iter()
                        .min_by_key(|(_, (_, since))| *since)
                        .map(|(k, _)| k.clone());
                    match oldest {
                        Some(k) => f.remove(&k),
                        None => break,
                    };
                }
            }
            let e = f.entry(name.to_string()).or_insert((0, Instant::now()));
            if e.1.elapsed() >= THROTTLE {
                *e = (0, Instant::now());
            }
            e.0 += 1;
        }
    }

    /// A new session for `account`: (session id, its CSRF token).
    pub fn login(&self, account: Account) -> Result<(String, String), StoreError> {
        if let Ok(mut f) = self.fails.lock() {
            f.remove(&account.name);
        }
        let (id, csrf) = (random_hex()?, random_hex()?);
        let s = Session {
            account,
            csrf: csrf.clone(),
            expires: Instant::now() + SESSION_TTL,
        };
        if let Ok(mut m) = self.sessions.lock() {
            m.retain(|_, s| s.expires > Instant::now());
            m.insert(id.clone(), s);
        }
        Ok((id, csrf))
    }

    /// The live session of id `id`.
    pub fn session(&self, id: &str) -> Option<Session> {
        let m = self.sessions.lock().ok()?;
        m.get(id).filter(|s| s.expires > Instant::now()).cloned()
    }

    pub fn logout(&self, id: &str) {
        if let Ok(mut m) = self.sessions.lock() {
            m.remove(id);
        }
    }
}

/// The session cookie's value in a `Cookie` header.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Two secrets (tokens) compared in constant time.
pub fn same(a: &str, b: &str) -> bool {
    same_secret(a.as_bytes(), b.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::accounts::Role;

    fn account() -> Account {
        Account {
            name: "a".into(),
            role: Role::Viewer,
            units: Default::default(),
            disabled: false,
            province: None,
        }
    }

    #[test]
    fn five_failures_lock_a_name_and_a_login_clears_them() {
        let a = Auth::default();
        for _ in 0..MAX_FAILS - 1 {
            a.failed("a");
        }
        assert!(!a.throttled("a"));
        a.failed("a");
        assert!(a.throttled("a") && !a.throttled("b"));
        let (id, csrf) = a.login(account()).unwrap();
        assert!(!a.throttled("a"));
        assert_eq!(a.session(&id).map(|s| s.csrf), Some(csrf));
        a.logout(&id);
        assert!(a.session(&id).is_none());
    }

    #[test]
    fn failed_names_are_bounded() {
        let a = Auth::default();
        for _ in 0..MAX_FAILS {
            a.failed("target");
        }
        for i in 0..MAX_TRACKED + 50 {
            a.failed(&format!("spray{i}"));
        }
        assert!(a.fails.lock().unwrap().len() <= MAX_TRACKED);
    }

    #[test]
    fn cookies_are_found_by_name() {
        assert_eq!(cookie_value("x=1; gw_session=ab; y=2", COOKIE), Some("ab"));
        assert_eq!(cookie_value("gw_sessionx=ab", COOKIE), None);
    }
}
