//! Console accounts (issue 17, first part): `gatewatch users` adds, lists,
//! re-passwords and disables accounts and makes API tokens; the store keeps
//! argon2 hashes and token digests only, checks roles and units, and audits
//! every change.

use gatewatch::store::Store;
use gatewatch::store::accounts::Role;
use gatewatch::testkit::{bin, text};
use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};

const PW: &str = "mật-khẩu-dài-đủ 1";

fn users(db: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut c = bin();
    c.args(["--log", "warn", "users"])
        .args(args)
        .arg("--store")
        .arg(db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut p = c.spawn().unwrap();
    if let Some(s) = stdin {
        // A command refused before it reads may have closed its input.
        let _ = p.stdin.take().unwrap().write_all(s.as_bytes());
    }
    drop(p.stdin.take());
    p.wait_with_output().unwrap()
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", text(o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn refused(o: &Output, why: &str) {
    assert!(!o.status.success(), "accepted: {}", text(o));
    assert!(text(o).contains(why), "{why:?} not in: {}", text(o));
}

/// `users add` with the password on standard input.
fn add(db: &Path, name: &str, role: &str, units: &[&str], password: &str) -> Output {
    let mut args = vec!["add", name, "--role", role, "--password-stdin"];
    for u in units {
        args.extend(["--unit", u]);
    }
    users(db, &args, Some(&format!("{password}\n")))
}

#[test]
fn accounts_are_added_with_their_role_units_and_password_checked() {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("g.db");
    ok(&add(&db, "officer.u1", "unit-officer", &["U1"], PW));
    ok(&add(&db, "admin", "province-admin", &[], PW));
    ok(&add(&db, "watch", "viewer", &[], PW));
    refused(
        &add(&db, "officer.u1", "viewer", &[], PW),
        "the account exists",
    );
    refused(
        &add(&db, "nounit", "unit-officer", &[], PW),
        "needs at least one --unit",
    );
    refused(
        &add(&db, "wide", "province-admin", &["U1"], PW),
        "give no --unit",
    );
    refused(
        &add(&db, "x", "root", &[], PW),
        "province-admin, unit-officer, viewer",
    );
    refused(&add(&db, "short", "viewer", &[], "ngắn"), "shorter than 10");
    refused(&add(&db, "a b", "viewer", &[], PW), "account name");
    let args = ["add", "empty", "--role", "viewer", "--password-stdin"];
    refused(&users(&db, &args, None), "no password on standard input");

    let list = ok(&users(&db, &["list"], None));
    assert!(
        list.contains("officer.u1") && list.contains("unit-officer"),
        "{list}"
    );
    assert!(list.contains("U1") && list.contains("(all)"), "{list}");
    let s = Store::open(&db).unwrap();
    assert_eq!(s.accounts().unwrap().len(), 3);
    let a = s
        .verify_password("officer.u1", PW)
        .unwrap()
        .expect("right password");
    assert_eq!(
        (a.role, a.sees("U1"), a.sees("U2")),
        (Role::UnitOfficer, true, false)
    );
    assert!(
        s.verify_password("officer.u1", "mật-khẩu-sai-rồi")
            .unwrap()
            .is_none()
    );
    assert!(s.verify_password("nobody", PW).unwrap().is_none());
}

#[test]
fn passwords_change_accounts_disable_and_every_change_is_audited() {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("g.db");
    ok(&add(&db, "officer.u1", "unit-officer", &["U1"], PW));
    ok(&add(&db, "watch", "viewer", &[], PW));
    let new_pw = Some("một-mật-khẩu-mới\n");
    ok(&users(
        &db,
        &["passwd", "officer.u1", "--password-stdin"],
        new_pw,
    ));
    ok(&users(&db, &["disable", "watch"], None));
    refused(&users(&db, &["disable", "ghost"], None), "no such account");
    let s = Store::open(&db).unwrap();
    assert!(s.verify_password("officer.u1", PW).unwrap().is_none());
    assert!(
        s.verify_password("officer.u1", "một-mật-khẩu-mới")
            .unwrap()
            .is_some()
    );
    assert!(
        s.verify_password("watch", PW).unwrap().is_none(),
        "disabled"
    );
    let log = s.audit_log(100).unwrap();
    let actions: Vec<&str> = log.iter().rev().map(|e| e.2.as_str()).collect();
    let want = [
        "account-add",
        "account-add",
        "account-passwd",
        "account-disable",
    ];
    assert_eq!(actions, want);
    assert!(log.iter().all(|e| e.1.starts_with("cli:")), "{log:?}");
    assert!(ok(&users(&db, &["list"], None)).contains("disabled"));
}

#[test]
fn tokens_are_shown_once_and_kept_as_digests_only() {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("g.db");
    let line = format!("{PW}\n");
    ok(&users(
        &db,
        &[
            "add",
            "script",
            "--role",
            "viewer",
            "--unit",
            "U2",
            "--password-stdin",
        ],
        Some(&line),
    ));
    let out = ok(&users(&db, &["token", "script"], None));
    let token = out.lines().last().unwrap().trim().to_string();
    assert_eq!(token.len(), 64, "{out}");
    let other = ok(&users(&db, &["token", "script"], None));
    assert_ne!(
        other.lines().last().unwrap().trim(),
        token,
        "each token is new"
    );
    let s = Store::open(&db).unwrap();
    let a = s
        .token_account(&token)
        .unwrap()
        .expect("token names its account");
    assert_eq!(
        (a.name.as_str(), a.sees("U2"), a.sees("U1")),
        ("script", true, false)
    );
    assert!(s.token_account(&"0".repeat(64)).unwrap().is_none());
    drop(s);
    refused(&users(&db, &["token", "ghost"], None), "no such account");
    ok(&users(&db, &["disable", "script"], None));
    assert!(
        Store::open(&db)
            .unwrap()
            .token_account(&token)
            .unwrap()
            .is_none()
    );
    // Neither the password nor the token is in the file, only hashes.
    let _ = std::fs::remove_file(db.with_extension("db-wal"));
    let bytes = std::fs::read(&db).unwrap();
    let has = |s: &str| bytes.windows(s.len()).any(|w| w == s.as_bytes());
    assert!(!has(PW) && !has(&token));
    assert!(has("$argon2id$"));
}
