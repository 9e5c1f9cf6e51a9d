//! Ed25519 keys for snapshot files (ring): generating a pair, the private
//! key as PKCS#8 PEM ("PRIVATE KEY", mode 0600), the public key as
//! SubjectPublicKeyInfo PEM ("PUBLIC KEY", what `openssl pkey -pubout`
//! writes), signing and verifying.
//!
//! Invariants:
//! - A private key file is created with mode 0600 and never overwritten;
//!   one readable by group or others is refused when loaded.
//! - A key id is the first 8 bytes of SHA-256 of the raw public key: a
//!   snapshot names the key that signed it, so a refusal can say "another
//!   key" rather than "corrupt".

use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use std::io::Write;
use std::path::Path;

/// DER of an ed25519 SubjectPublicKeyInfo up to the 32 key bytes.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// A public key that verifies snapshot signatures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    pub fn from_bytes(b: [u8; 32]) -> PublicKey {
        PublicKey(b)
    }

    pub fn id(&self) -> [u8; 8] {
        let d = ring::digest::digest(&ring::digest::SHA256, &self.0);
        let mut id = [0u8; 8];
        id.copy_from_slice(&d.as_ref()[..8]);
        id
    }

    /// The id as hex, for messages.
    pub fn id_hex(&self) -> String {
        hex(&self.id())
    }

    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(msg, sig)
            .is_ok()
    }

    pub fn to_pem(&self) -> String {
        let mut der = SPKI_PREFIX.to_vec();
        der.extend_from_slice(&self.0);
        format!(
            "# gatewatch snapshot signing key, id {}\n{}",
            self.id_hex(),
            pem("PUBLIC KEY", &der)
        )
    }

    /// Read a public key file (PEM, as [`PublicKey::to_pem`] writes it).
    pub fn load(path: &Path) -> Result<PublicKey, String> {
        let shown = path.display();
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{shown}: cannot read the snapshot public key: {e}"))?;
        let der = unpem(&text, "PUBLIC KEY").ok_or_else(|| {
            format!("{shown}: not a PEM public key (\"-----BEGIN PUBLIC KEY-----\"); use the .pub file `gatewatch feeds keygen` wrote")
        })?;
        match der.strip_prefix(&SPKI_PREFIX[..]) {
            Some(k) if k.len() == 32 => {
                let mut b = [0u8; 32];
                b.copy_from_slice(k);
                Ok(PublicKey(b))
            }
            _ => Err(format!("{shown}: not an ed25519 public key")),
        }
    }
}

/// A private key that signs snapshot files.
pub struct SigningKey(Ed25519KeyPair);

/// Shows the key's id only, never the key.
impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey(id {})", self.public().id_hex())
    }
}

impl SigningKey {
    /// Read a private key file (PKCS#8 PEM, v1 as `openssl genpkey
    /// -algorithm ed25519` writes or v2 as `gatewatch feeds keygen` does).
    pub fn load(path: &Path) -> Result<SigningKey, String> {
        let shown = path.display();
        let meta =
            std::fs::metadata(path).map_err(|e| format!("{shown}: cannot read the key: {e}"))?;
        let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions());
        if mode & 0o077 != 0 {
            return Err(format!(
                "{shown}: the private key is readable by others (mode {:04o}); chmod 600 {shown}",
                mode & 0o7777
            ));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{shown}: cannot read the key: {e}"))?;
        let der = unpem(&text, "PRIVATE KEY").ok_or_else(|| {
            format!("{shown}: not a PEM private key (\"-----BEGIN PRIVATE KEY-----\")")
        })?;
        Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
            .map(SigningKey)
            .map_err(|e| format!("{shown}: not an ed25519 PKCS#8 private key ({e})"))
    }

    pub fn from_pkcs8(der: &[u8]) -> Option<SigningKey> {
        Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .ok()
            .map(SigningKey)
    }

    pub fn public(&self) -> PublicKey {
        let mut b = [0u8; 32];
        b.copy_from_slice(self.0.public_key().as_ref());
        PublicKey(b)
    }

    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        let mut s = [0u8; 64];
        s.copy_from_slice(self.0.sign(msg).as_ref());
        s
    }
}

/// ring's PKCS#8 v2 document of an ed25519 key up to the 32-byte seed.
const V2_PREFIX: [u8; 16] = [
    0x30, 0x51, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// PKCS#8 v1 (RFC 8410) of an ed25519 key up to the seed: what OpenSSL
/// writes and reads.
const V1_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// A new key pair as PKCS#8 DER: v1 (the seed alone, which OpenSSL reads
/// too) when ring's v2 document has the expected layout, else that v2.
pub fn generate() -> Result<Vec<u8>, String> {
    let rng = ring::rand::SystemRandom::new();
    let v2 = Ed25519KeyPair::generate_pkcs8(&rng)
        .map(|d| d.as_ref().to_vec())
        .map_err(|_| "the system's random source failed: no key generated".to_string())?;
    let v1 = v2
        .strip_prefix(&V2_PREFIX[..])
        .map(|rest| [&V1_PREFIX[..], &rest[..32.min(rest.len())]].concat());
    let public = |der: &[u8]| SigningKey::from_pkcs8(der).map(|k| k.public());
    match v1 {
        Some(v1) if public(&v1).is_some() && public(&v1) == public(&v2) => Ok(v1),
        _ => Ok(v2),
    }
}

/// Generate a key pair and write the private key to `key` (mode 0600) and
/// the public key to `public`; neither file may exist.
pub fn keygen(key: &Path, public: &Path) -> Result<PublicKey, String> {
    for p in [key, public] {
        if p.exists() {
            return Err(format!(
                "{}: already exists; not overwritten (move it away or choose another name)",
                p.display()
            ));
        }
    }
    let der = generate()?;
    let pair = SigningKey::from_pkcs8(&der).ok_or("generated key does not parse (a bug)")?;
    write_new(key, pem("PRIVATE KEY", &der).as_bytes(), 0o600)?;
    let pk = pair.public();
    write_new(public, pk.to_pem().as_bytes(), 0o644)?;
    Ok(pk)
}

/// Create `path` (which must not exist) with `mode` and write `bytes`.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| format!("{}: cannot create: {e}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("{}: cannot write: {e}", path.display()))
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn unbase64(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace()) {
        if c == b'=' {
            break;
        }
        let v = B64.iter().position(|&x| x == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn pem(label: &str, der: &[u8]) -> String {
    let b = base64(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The DER inside the first `label` block of `text` (text around it, such
/// as a comment line, is ignored).
fn unpem(text: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    unbase64(&text[start..stop])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_every_length() {
        for n in 0..70u8 {
            let b: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(unbase64(&base64(&b)).unwrap(), b);
        }
        assert_eq!(base64(b"any carnal pleas"), "YW55IGNhcm5hbCBwbGVhcw==");
        assert!(unbase64("a$b=").is_none());
    }

    #[test]
    fn keygen_writes_private_0600_refuses_overwrite_and_signs() {
        let d = std::env::temp_dir().join(format!("gw-sign-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let (k, p) = (d.join("k.pem"), d.join("k.pub"));
        let pk = keygen(&k, &p).unwrap();
        let mode = std::fs::metadata(&k).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        assert!(
            keygen(&k, &d.join("other.pub"))
                .unwrap_err()
                .contains("already exists")
        );
        // PKCS#8 v1, as OpenSSL writes it.
        assert!(std::fs::read_to_string(&k).unwrap().contains("\nMC4CAQAw"));
        let sk = SigningKey::load(&k).unwrap();
        assert_eq!(PublicKey::load(&p).unwrap(), pk);
        assert_eq!(sk.public(), pk);
        let sig = sk.sign(b"header");
        assert!(pk.verify(b"header", &sig));
        assert!(!pk.verify(b"headex", &sig));
        std::fs::set_permissions(&k, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        assert!(SigningKey::load(&k).unwrap_err().contains("chmod 600"));
        assert!(
            PublicKey::load(&k)
                .unwrap_err()
                .contains("not a PEM public key")
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
