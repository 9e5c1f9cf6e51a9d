//! Shipping to a central that takes TLS connections only (rustls on the
//! sensor's side): with the CA that signed the server's certificate the
//! journal ships and the central holds it; without a CA, or with another
//! one, nothing is sent and the message says what to do.

use gatewatch::testkit::central::fill_journal;
use gatewatch::testkit::postgres::Postgres;
use gatewatch::testkit::{bin, text};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use std::path::Path;

/// A CA's PEM certificate and an issuer for it.
fn ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(rcgen::DnType::CommonName, name.to_owned());
    let key = KeyPair::generate().unwrap();
    let pem = p.self_signed(&key).unwrap().pem();
    (pem, Issuer::new(p, key))
}

fn ship(db: &Path, url: &str, ca: Option<&Path>) -> std::process::Output {
    let mut c = bin();
    c.args(["ship", "--store"])
        .arg(db)
        .args(["--central", url, "--province", "Huế"]);
    if let Some(ca) = ca {
        c.arg("--central-ca").arg(ca);
    }
    c.output().unwrap()
}

#[test]
fn the_journal_ships_over_tls_checked_against_the_given_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pg = Postgres::start(dir.path());
    let (ca_pem, issuer) = ca("gatewatch test CA");
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    pg.require_tls(&server.pem(), &server_key.serialize_pem());
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca_pem).unwrap();
    let (other_pem, _) = ca("another CA");
    let other = dir.path().join("other.pem");
    std::fs::write(&other, other_pem).unwrap();
    let db = dir.path().join("hue.db");
    fill_journal(&db, "hue-gw1", 500, 20, 1_795_132_800_000_000_000);
    let url = format!("{}?sslmode=require", pg.url());

    let o = ship(&db, &url, None);
    assert!(!o.status.success(), "no CA: refused before connecting");
    assert!(text(&o).contains("--central-ca"), "{}", text(&o));
    let o = ship(&db, &pg.url(), None);
    assert!(
        !o.status.success(),
        "plain TLS-less connections are refused by the server"
    );
    let o = ship(&db, &url, Some(&other));
    assert!(!o.status.success(), "a certificate of another CA");
    assert!(
        text(&o).to_lowercase().contains("certificate"),
        "{}",
        text(&o)
    );

    let o = ship(&db, &url, Some(&ca_file));
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("shipped 500 row(s)"), "{}", text(&o));
    assert!(
        !text(&o).contains("gatewatch@127.0.0.1:") || !text(&o).contains(":@"),
        "no secret"
    );
}
