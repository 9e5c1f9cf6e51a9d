//! `gatewatch feeds keygen` and `feeds compile` for the snapshot tests.

use super::{bin, text};
use std::path::{Path, PathBuf};

/// A key pair `dir/NAME.pem`, `dir/NAME.pub`, made by `feeds keygen`
/// (which must say the key id).
pub fn keygen(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (k, p) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.pub")),
    );
    let o = bin()
        .args(["feeds", "keygen", "--key"])
        .arg(&k)
        .arg("--pub")
        .arg(&p)
        .output()
        .expect("run gatewatch feeds keygen");
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("key id"), "{}", text(&o));
    (k, p)
}

/// `feeds compile` of `feeds` (at `version`, if given) into `out`; what it
/// printed.
pub fn compile(feeds: &Path, key: &Path, out: &Path, version: Option<u64>) -> String {
    let mut c = bin();
    c.args(["feeds", "compile", "--feeds"])
        .arg(feeds)
        .arg("--key")
        .arg(key)
        .arg("-o")
        .arg(out);
    if let Some(v) = version {
        c.args(["--version", &v.to_string()]);
    }
    let o = c.output().expect("run gatewatch feeds compile");
    assert!(o.status.success(), "{}", text(&o));
    text(&o)
}
