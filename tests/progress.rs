//! The replay progress bar (issue 17): drawn on standard error when it is a
//! terminal and the replay runs past the delay, never in a pipe.

use gatewatch::testkit::{bin, bin_path, root, text};

const CAPTURE: &str = "samples/gateway-synthetic.pcap";

#[test]
fn a_pipe_gets_no_progress_bar() {
    let d = tempfile::tempdir().unwrap();
    let o = bin()
        .current_dir(root())
        .env("GATEWATCH_PROGRESS_AFTER_MS", "0")
        .args([
            "replay",
            "--log",
            "warn",
            "--feeds",
            "samples/demo-feeds.toml",
            "--alerts",
        ])
        .arg(d.path().join("a.jsonl"))
        .arg(CAPTURE)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(o.stderr.is_empty(), "{}", text(&o));
}

#[test]
fn a_terminal_gets_the_bar() {
    // util-linux `script` gives the command a pseudo-terminal.
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("`script` (util-linux, Debian bsdutils) is needed for this test");
    }
    let d = tempfile::tempdir().unwrap();
    let typescript = d.path().join("pty.out");
    let cmd = format!(
        "{} replay --log warn --feeds samples/demo-feeds.toml --alerts {} {CAPTURE} {CAPTURE}",
        bin_path().display(),
        d.path().join("a.jsonl").display()
    );
    let o = std::process::Command::new("script")
        .current_dir(root())
        .env("GATEWATCH_PROGRESS_AFTER_MS", "0")
        .args(["-qec", &cmd])
        .arg(&typescript)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let seen = String::from_utf8_lossy(&std::fs::read(&typescript).unwrap()).into_owned();
    assert!(seen.contains("ETA"), "no bar in the terminal:\n{seen}");
}
