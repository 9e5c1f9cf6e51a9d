//! A real PostgreSQL server for tests: `initdb` and `pg_ctl` in a
//! temporary directory, as the unprivileged `postgres` user when the tests
//! run as root, listening on a free loopback port. Stopped when dropped.
//! Fails (never skips) when PostgreSQL is missing: scripts/setup-debian.sh
//! installs it.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    pub port: u16,
    /// The network namespace it listens in (its loopback), if not the
    /// test's own.
    netns: Option<String>,
}

/// The newest `/usr/lib/postgresql/*/bin`.
fn bin_dir() -> PathBuf {
    let mut v: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect(
            "PostgreSQL is not installed: run scripts/setup-debian.sh (apt-get install postgresql)",
        )
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").is_file())
        .collect();
    v.sort_by_key(|p| {
        p.parent()
            .and_then(|d| d.file_name())
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(0)
    });
    v.pop().expect("no initdb under /usr/lib/postgresql/*/bin")
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// `program args`, as `postgres` when root (initdb refuses root), inside
/// network namespace `netns` if given.
fn as_owner_in(program: &Path, netns: Option<&str>) -> Command {
    let mut words: Vec<std::ffi::OsString> = Vec::new();
    if let Some(ns) = netns {
        words.extend(["ip", "netns", "exec", ns].map(Into::into));
    }
    if is_root() {
        words.extend(["runuser", "-u", "postgres", "--"].map(Into::into));
    }
    words.push(program.into());
    let mut c = Command::new(&words[0]);
    c.args(&words[1..]);
    c
}

fn as_owner(program: &Path) -> Command {
    as_owner_in(program, None)
}

fn run(mut c: Command, what: &str) {
    let o = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        o.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

impl Postgres {
    /// A new cluster in `dir/pg` (user `gatewatch`, trust on loopback),
    /// started.
    pub fn start(dir: &Path) -> Postgres {
        Postgres::start_in(dir, None)
    }

    /// As [`Postgres::start`], listening on the loopback of network
    /// namespace `netns` (where a live test's sensor runs).
    pub fn start_in(dir: &Path, netns: Option<&str>) -> Postgres {
        let bin = bin_dir();
        let data = dir.join("pg");
        std::fs::create_dir_all(&data).expect("make the data directory");
        if is_root() {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
                .expect("open the test directory to postgres");
            run(
                {
                    let mut c = Command::new("chown");
                    c.args(["postgres:postgres"]).arg(&data);
                    c
                },
                "chown the data directory",
            );
        }
        let mut c = as_owner(&bin.join("initdb"));
        c.args([
            "-A",
            "trust",
            "-U",
            "gatewatch",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            "-D",
        ])
        .arg(&data);
        run(c, "initdb");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let pg = Postgres {
            bin,
            data,
            port,
            netns: netns.map(str::to_owned),
        };
        pg.up();
        pg
    }

    /// Start the server (again, after [`Postgres::stop`]) and wait for it.
    pub fn up(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.data.display()
        );
        let mut c = as_owner_in(&self.bin.join("pg_ctl"), self.netns.as_deref());
        c.args(["-w", "-t", "30", "-o", &opts, "-l"])
            .arg(self.data.join("log"))
            .arg("-D")
            .arg(&self.data)
            .arg("start");
        run(c, "pg_ctl start");
    }

    /// Stop the server (fast: open transactions are rolled back).
    pub fn stop(&self) {
        let mut c = as_owner_in(&self.bin.join("pg_ctl"), self.netns.as_deref());
        c.args(["-w", "-m", "fast", "-D"])
            .arg(&self.data)
            .arg("stop");
        run(c, "pg_ctl stop");
    }

    /// Accept TLS connections only (`hostssl` in pg_hba.conf), with the
    /// PEM certificate chain `cert` and key `key`; restarts the server.
    pub fn require_tls(&self, cert: &str, key: &str) {
        use std::os::unix::fs::PermissionsExt;
        let (crt, k) = (self.data.join("server.crt"), self.data.join("server.key"));
        std::fs::write(&crt, cert).expect("write the server certificate");
        std::fs::write(&k, key).expect("write the server key");
        // PostgreSQL refuses a key others can read.
        std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        std::fs::write(
            self.data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
        )
        .expect("write pg_hba.conf");
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(self.data.join("postgresql.conf"))
            .expect("open postgresql.conf");
        std::io::Write::write_all(&mut conf, b"ssl = on\n").expect("write postgresql.conf");
        if is_root() {
            let mut c = Command::new("chown");
            c.args(["postgres:postgres"]).arg(&crt).arg(&k);
            run(c, "chown the certificate and key");
        }
        self.stop();
        self.up();
    }

    /// The URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://gatewatch@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let mut c = as_owner_in(&self.bin.join("pg_ctl"), self.netns.as_deref());
        c.args(["-m", "immediate", "-D"])
            .arg(&self.data)
            .arg("stop");
        let _ = c.output();
    }
}
