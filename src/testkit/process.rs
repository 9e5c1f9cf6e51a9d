//! The repository and the `gatewatch` binary built from it, for tests that
//! run the binary as an operator does: where the checkout and its corpus
//! are, the binary as a [`Command`], and what it printed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The root of the checkout (where `Cargo.toml`, `samples/` and `feeds/`
/// are).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shared generator, `gen-gateway-pcap.py`, beside the checkout
/// (`../shared/tools`) or beside `$GATEWATCH_SHARED_DATA` (where it must
/// then be); `None` when neither has it (the caller says it skipped).
pub fn generator() -> Option<PathBuf> {
    let beside = root().join("../shared/tools/gen-gateway-pcap.py");
    if beside.is_file() {
        return Some(beside);
    }
    let shared = super::shared_data()?;
    let p = shared.join("../tools/gen-gateway-pcap.py");
    assert!(
        p.is_file(),
        "GATEWATCH_SHARED_DATA is set but {} is missing",
        p.display()
    );
    Some(p)
}

/// `tests/corpus/<rel>` in the checkout (`corpus("")` is the folder itself).
pub fn corpus(rel: &str) -> PathBuf {
    root().join("tests/corpus").join(rel)
}

/// The `gatewatch` binary cargo built for this test run.
///
/// `env!("CARGO_BIN_EXE_gatewatch")` exists only while cargo compiles an
/// integration test, not this library, so the binary is found from the
/// running test instead: cargo runs test executables from
/// `target/<profile>/deps/` and builds the binary into `target/<profile>/`
/// before it runs integration tests and benchmarks. A runner that names the
/// binary in `CARGO_BIN_EXE_gatewatch` at run time (cargo-nextest does) wins.
pub fn bin_path() -> PathBuf {
    if let Some(p) = std::env::var_os("CARGO_BIN_EXE_gatewatch") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe()
        .unwrap_or_else(|e| panic!("cannot find the running test executable: {e}"));
    let mut dir = exe
        .parent()
        .unwrap_or_else(|| panic!("{} has no parent folder", exe.display()))
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir.join(format!("gatewatch{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "the gatewatch binary is not at {} (looked next to the test executable {}): \
         cargo builds it for integration tests and benchmarks, not for `cargo test --lib`; \
         run `cargo build` or an integration test target",
        bin.display(),
        exe.display()
    );
    bin
}

/// The `gatewatch` binary, run from the root of the checkout (so relative
/// paths such as `samples/demo-feeds.toml` work).
pub fn bin() -> Command {
    let mut c = Command::new(bin_path());
    c.current_dir(root());
    c
}

/// The demo captures in `samples/`, relative to the root of the checkout:
/// a real TLS session to a listed C2 address, and synthetic gateway traffic
/// with known offenders in five units.
pub const DEMO_CAPTURES: [&str; 2] = [
    "samples/c2-tls-clienthello.pcap",
    "samples/gateway-synthetic.pcap",
];

/// `gatewatch replay` on the demo feeds (`samples/demo-feeds.toml`, the
/// shipped units) with its alert log at `alerts`; the caller adds options
/// and captures.
pub fn demo_replay(alerts: &Path) -> Command {
    let mut c = bin();
    c.args(["replay", "--feeds", "samples/demo-feeds.toml", "--alerts"])
        .arg(alerts);
    c
}

/// A store filled by [`demo_replay`] of the demo captures: `dir/g.db`
/// (alert log `dir/a.jsonl`).
pub fn demo_store(dir: &Path) -> std::path::PathBuf {
    let db = dir.join("g.db");
    let o = demo_replay(&dir.join("a.jsonl"))
        .arg("--store")
        .arg(&db)
        .args(super::DEMO_CAPTURES)
        .output()
        .expect("run gatewatch replay");
    assert!(o.status.success(), "{}", super::text(&o));
    db
}

/// Vietnam's offset, UTC+7, as a POSIX TZ string (it needs no tz database):
/// with it, local days in exports and reports do not depend on the machine.
pub const ICT: &str = "ICT-7";

/// As [`bin`], with the time zone `TZ` set to `tz` (e.g. [`ICT`]).
pub fn bin_tz(tz: &str) -> Command {
    let mut c = bin();
    c.env("TZ", tz);
    c
}

/// What a finished command printed: its stdout, then its stderr.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The `i`-th positional argument of a benchmark (`cargo bench --bench B
/// -- A0 A1 ...`; cargo's own `--bench` flag skipped), or `default` when
/// absent or unreadable.
pub fn bench_arg<T: std::str::FromStr>(i: usize, default: T) -> T {
    std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .nth(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}
