//! Signed, compiled feed snapshots: the tables a run builds from the feed
//! text, written once (`gatewatch feeds compile`) and loaded by `run` and
//! `replay` in a few milliseconds instead of parsing and sorting every feed.
//!
//! Invariants:
//! - Nothing in a file is used before it is verified, in this order: the
//!   magic, the format number, the ed25519 signature of the header (which
//!   holds the payload's length and SHA-256), the length, the checksum.
//!   Only then is the payload decoded, and decoding still checks every
//!   offset, length and table (`read.rs`).
//! - [`inspect`] without a key (`gatewatch feeds publish` where the
//!   publisher holds no public key) checks all of that but the signature;
//!   nothing it reads is ever matched: a sensor verifies what it fetches
//!   with its own key, through the same swap rules as a file.
//! - A file is read whole into memory ([`Buf`]), never mapped: a file
//!   rewritten or truncated after it was verified cannot change what the
//!   matcher reads or fault under it. The large arrays are then viewed in
//!   place in that memory, so loading costs one read, one SHA-256 pass and
//!   a scan of each table, with no parsing, hashing or sorting.
//! - A loaded snapshot matches exactly as the one it was compiled from: the
//!   same tables, filters and hash key (the header carries the key, and
//!   four hashes of fixed values under it, which a build whose hash
//!   function differs cannot reproduce: such a file is refused as of
//!   another format, never matched wrongly).
//! - Format 1 is what `format.rs` describes; any change to the layout or
//!   to what a table means (the meta word, ids, hashing) takes a new
//!   format number, and a build reads only its own.

mod format;
mod read;
pub mod sign;
pub mod swap;
#[cfg(test)]
mod tests;
mod write;

pub use format::FORMAT;
pub use sign::{PublicKey, SigningKey, keygen};

use super::Snapshot;
use super::arr::Buf;
use super::feeds::FeedReport;
use super::filter::HashKey;
use format::{HEADER_LEN, Header, MAGIC, PAYLOAD_AT, SIGNATURE_LEN};
use std::io::{Read as _, Write};
use std::path::Path;
use std::sync::Arc;

/// Files larger than this are refused unread (1.6M indicators take 19 MiB).
const MAX_FILE: u64 = 4 << 30;

/// What a snapshot file says about one of its feeds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedSummary {
    pub name: String,
    /// Entries its feed accepted when compiled (duplicates included).
    pub accepted: u64,
    /// Distinct indicators per kind: ip, cidr, ip_port, domain, url, keyword.
    pub kinds: [u64; 6],
    pub duplicates: u64,
}

impl FeedSummary {
    /// A load report for this feed, as if it had been loaded from text.
    pub fn report(&self) -> FeedReport {
        FeedReport {
            name: self.name.clone(),
            accepted: self.accepted as usize,
            ..Default::default()
        }
    }
}

/// The header of a verified file, in words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Info {
    pub version: u64,
    /// Unix seconds.
    pub created: u64,
    /// Distinct indicators, every kind together.
    pub indicators: u64,
    pub kinds: [u64; 6],
    /// Bytes of the whole file.
    pub bytes: u64,
    /// SHA-256 of the payload: the same file read again has the same one.
    pub checksum: [u8; 32],
}

impl Info {
    fn of(h: &Header, bytes: usize) -> Info {
        Info {
            version: h.version,
            created: h.created,
            indicators: h.indicators,
            kinds: h.kinds,
            bytes: bytes as u64,
            checksum: h.checksum,
        }
    }
}

/// A verified, decoded snapshot file.
pub struct Loaded {
    pub snapshot: Snapshot,
    pub info: Info,
    pub feeds: Vec<FeedSummary>,
}

/// Why a file was refused (a bounded metric label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    /// It could not be read.
    Unreadable,
    /// Not a snapshot, or one of another format.
    Format,
    /// The signature does not verify with the configured key.
    Signature,
    /// Truncated, or its bytes do not match its checksum or layout.
    Corrupt,
}

impl Problem {
    pub fn as_str(self) -> &'static str {
        match self {
            Problem::Unreadable => "unreadable",
            Problem::Format => "format",
            Problem::Signature => "signature",
            Problem::Corrupt => "corrupt",
        }
    }
}

/// A refused file: why, and a message naming the file and what to do.
#[derive(Debug)]
pub struct SnapError {
    pub problem: Problem,
    pub message: String,
}

impl std::fmt::Display for SnapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SnapError {}

fn refuse(problem: Problem, shown: &str, what: String) -> SnapError {
    SnapError {
        problem,
        message: format!("{shown}: {what}"),
    }
}

/// The signed file of `snap` (see `format.rs`); `reports` name its parts.
pub fn compile(
    snap: &Snapshot,
    reports: &[FeedReport],
    version: u64,
    created: u64,
    key: &SigningKey,
) -> Vec<u8> {
    write::encode(snap, reports, version, created, key)
}

/// Write `bytes` to `path` through a temporary file in the same directory
/// and a rename, so a sensor watching `path` never reads half a file.
pub fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map_or_else(|| "snapshot".into(), |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    match written.and_then(|()| std::fs::rename(&tmp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Read, verify and decode the snapshot file `path`.
pub fn load(path: &Path, key: &PublicKey) -> Result<Loaded, SnapError> {
    let (buf, h) = verify_file(path, key)?;
    decode(&buf, &h, &path.display().to_string())
}

/// What the snapshot in `bytes` (named `shown` in messages) holds, once
/// it verified as [`load`] verifies a file (the signature only when `key`
/// is given: a publisher may not hold the sensors' public key) and its
/// tables decoded.
pub fn inspect(bytes: &[u8], key: Option<&PublicKey>, shown: &str) -> Result<Info, SnapError> {
    let buf = Arc::new(Buf::copy_of(bytes));
    let h = verify_unsigned(&buf, key, shown)?;
    decode(&buf, &h, shown).map(|l| l.info)
}

/// Make `bytes` (a snapshot file whose payload was changed) consistent
/// again: its header's payload length and checksum recomputed, then signed
/// with `key`. What a compromised key or a compiler bug could produce: for
/// tests and fuzzing of what verification cannot catch. Shorter than a
/// header: left as it is.
pub fn resign(bytes: &mut [u8], key: &SigningKey) {
    if bytes.len() < PAYLOAD_AT {
        return;
    }
    let mut h = Header::decode(&bytes[..HEADER_LEN]);
    h.payload_len = (bytes.len() - PAYLOAD_AT) as u64;
    let sum = ring::digest::digest(&ring::digest::SHA256, &bytes[PAYLOAD_AT..]);
    h.checksum.copy_from_slice(sum.as_ref());
    let head = h.encode();
    bytes[..HEADER_LEN].copy_from_slice(&head);
    bytes[HEADER_LEN..HEADER_LEN + SIGNATURE_LEN].copy_from_slice(&key.sign(&head));
}

/// [`load`] of a file's bytes (tests, fuzzing).
pub fn load_bytes(bytes: &[u8], key: &PublicKey) -> Result<Loaded, SnapError> {
    let buf = Arc::new(Buf::copy_of(bytes));
    let h = verify(&buf, key, "snapshot")?;
    decode(&buf, &h, "snapshot")
}

/// Read `path` whole and verify it (see [`verify`]).
fn verify_file(path: &Path, key: &PublicKey) -> Result<(Arc<Buf>, Header), SnapError> {
    let shown = path.display().to_string();
    let unreadable = |e: std::io::Error| {
        refuse(
            Problem::Unreadable,
            &shown,
            format!("cannot read the snapshot: {e}"),
        )
    };
    let mut f = std::fs::File::open(path).map_err(unreadable)?;
    let len = f.metadata().map_err(unreadable)?.len();
    // The header first: a file that is no snapshot of ours, or is not the
    // length its signed header says, is refused before memory is taken
    // for it.
    let mut head = Vec::with_capacity(PAYLOAD_AT);
    std::io::Read::by_ref(&mut f)
        .take(PAYLOAD_AT as u64)
        .read_to_end(&mut head)
        .map_err(unreadable)?;
    verify_head(&head, len, Some(key), &shown)?;
    if len > MAX_FILE {
        let what = format!("{len} bytes is too large for a snapshot");
        return Err(refuse(Problem::Corrupt, &shown, what));
    }
    std::io::Seek::rewind(&mut f).map_err(unreadable)?;
    let buf = Buf::read_from(&mut f, len as usize).map_err(unreadable)?;
    let buf = Arc::new(buf);
    // Again on the bytes read: the file may have changed in between.
    let h = verify(&buf, key, &shown)?;
    Ok((buf, h))
}

/// Check magic, format, signature, length and checksum, in that order;
/// the verified header.
fn verify(buf: &Buf, key: &PublicKey, shown: &str) -> Result<Header, SnapError> {
    verify_unsigned(buf, Some(key), shown)
}

/// [`verify`], with the signature checked only when `key` is given.
fn verify_unsigned(buf: &Buf, key: Option<&PublicKey>, shown: &str) -> Result<Header, SnapError> {
    let b = buf.bytes();
    let h = verify_head(b, b.len() as u64, key, shown)?;
    let sum = ring::digest::digest(&ring::digest::SHA256, &b[PAYLOAD_AT..]);
    if sum.as_ref() != h.checksum {
        let what =
            "damaged: its contents do not match their SHA-256 checksum; copy or compile it again"
                .to_string();
        return Err(refuse(Problem::Corrupt, shown, what));
    }
    Ok(h)
}

/// Check magic, format, signature and length on `b`, the file's first
/// bytes (at least its header and signature, unless it is shorter), for a
/// file of `len` bytes.
fn verify_head(
    b: &[u8],
    len: u64,
    key: Option<&PublicKey>,
    shown: &str,
) -> Result<Header, SnapError> {
    if b.len() < MAGIC.len() || b[..MAGIC.len()] != MAGIC {
        let what = "not a gatewatch snapshot (no snapshot magic at its start); give the .snap file `gatewatch feeds compile` wrote".to_string();
        return Err(refuse(Problem::Format, shown, what));
    }
    if b.len() < PAYLOAD_AT {
        let what = format!(
            "truncated: {len} bytes, shorter than a snapshot's header; copy the file again"
        );
        return Err(refuse(Problem::Corrupt, shown, what));
    }
    let head = &b[..HEADER_LEN];
    let h = Header::decode(head);
    let (header_len, reserved) = Header::fixed_fields(head);
    if h.format != format::FORMAT || header_len != HEADER_LEN as u32 || reserved != 0 {
        let what = format!(
            "snapshot format {} that this gatewatch cannot read (it reads format {}); compile it again with this version's `gatewatch feeds compile`",
            h.format,
            format::FORMAT
        );
        return Err(refuse(Problem::Format, shown, what));
    }
    if let Some(key) = key
        && !key.verify(head, &b[HEADER_LEN..HEADER_LEN + SIGNATURE_LEN])
    {
        return Err(refuse(Problem::Signature, shown, bad_signature(&h, key)));
    }
    let want = (PAYLOAD_AT as u64).saturating_add(h.payload_len);
    if want != len {
        let what = format!(
            "truncated or damaged: its header says {want} bytes, the file has {len}; copy or compile it again"
        );
        return Err(refuse(Problem::Corrupt, shown, what));
    }
    Ok(h)
}

fn bad_signature(h: &Header, key: &PublicKey) -> String {
    if h.key_id != key.id() {
        format!(
            "signed by another key (id {}), not the configured public key (id {}); configure the public key of the key that compiled it",
            sign::hex(&h.key_id),
            key.id_hex()
        )
    } else {
        "its signature does not verify: the file was altered after it was signed; compile it again"
            .to_string()
    }
}

/// The snapshot in a verified buffer.
fn decode(buf: &Arc<Buf>, h: &Header, shown: &str) -> Result<Loaded, SnapError> {
    let key = HashKey::new(h.hash_seeds.0, h.hash_seeds.1);
    if write::hash_checks(&key) != h.hash_checks {
        let what = "compiled by a gatewatch that hashes names differently from this one; compile it again with this version".to_string();
        return Err(refuse(Problem::Format, shown, what));
    }
    let (snapshot, feeds) = read::decode(buf, h, key).map_err(|e| {
        let what = format!("signed, but its tables are inconsistent ({e}); compile it again");
        refuse(Problem::Corrupt, shown, what)
    })?;
    Ok(Loaded {
        snapshot,
        info: Info::of(h, buf.len()),
        feeds,
    })
}

/// Verify `path` and read its header only (for the swap rules, before
/// the tables are decoded).
pub(crate) fn verify_header(path: &Path, key: &PublicKey) -> Result<(Arc<Buf>, Info), SnapError> {
    let (buf, h) = verify_file(path, key)?;
    let info = Info::of(&h, buf.len());
    Ok((buf, info))
}

/// [`verify_header`] of bytes received whole (from the central), named
/// `shown` in messages.
pub(crate) fn verify_bytes(
    bytes: &[u8],
    key: &PublicKey,
    shown: &str,
) -> Result<(Arc<Buf>, Info), SnapError> {
    let buf = Arc::new(Buf::copy_of(bytes));
    let h = verify(&buf, key, shown)?;
    let info = Info::of(&h, buf.len());
    Ok((buf, info))
}

/// Decode a buffer [`verify_header`] or [`verify_bytes`] verified.
pub(crate) fn decode_verified(buf: &Arc<Buf>, shown: &str) -> Result<Loaded, SnapError> {
    let h = Header::decode(&buf.bytes()[..HEADER_LEN]);
    decode(buf, &h, shown)
}
