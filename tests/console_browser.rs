//! The console in a real browser: headless Chromium driven over WebDriver
//! (`chromium-driver`, installed by scripts/setup-debian.sh). A unit officer
//! logs in, sees only its unit, is refused another unit's page and host by
//! URL, marks a host cleaned and sees the status change (and the audit row
//! the province admin then reads), and downloads the unit's XLSX, read back
//! with calamine. Every page is captured at 1366x768 into
//! `$GATEWATCH_SCREENSHOTS` (default `target/console-screenshots`; the
//! README's are made with `GATEWATCH_SCREENSHOTS=docs/console`).
//!
//! The central console (`serve --central`) too, on a real PostgreSQL: a
//! province admin is taken to its province, follows a unit to a host named
//! by sensor and address, and marks it cleaned through the form.
//!
//! Without chromium and chromedriver the test says it is skipped, unless
//! `GATEWATCH_REQUIRE_BROWSER=1` (CI), where that fails.

use calamine::{Data, Reader, Xlsx};
use fantoccini::{Client, ClientBuilder, Locator};
use gatewatch::store::Store;
use gatewatch::testkit::central::{HN, HOST, two_provinces};
use gatewatch::testkit::console::{
    ADMIN, CONSOLE_PW, OFFICER, console_store, serve, serve_central,
};
use gatewatch::testkit::root;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const DRIVER: &str = "/usr/bin/chromedriver";

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// chromedriver on a free port, once it answers.
fn driver() -> (Driver, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let child = Command::new(DRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let d = Driver(child);
    let until = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    (d, format!("http://127.0.0.1:{port}"))
}

fn capabilities(downloads: &Path) -> serde_json::Map<String, serde_json::Value> {
    let v = serde_json::json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1366,768", "--hide-scrollbars", "--lang=vi-VN"],
            "prefs": {
                "download.default_directory": downloads,
                "download.prompt_for_download": false,
            },
        },
    });
    v.as_object().unwrap().clone()
}

fn shots_dir() -> PathBuf {
    let d = std::env::var_os("GATEWATCH_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/console-screenshots"));
    let d = if d.is_absolute() { d } else { root().join(d) };
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(shots_dir().join(format!("{name}.png")), png).unwrap();
}

/// The page's text once it contains `needle` (a page being replaced
/// after a submit has no body for a moment); the last text seen otherwise.
async fn text_with(c: &Client, needle: &str) -> String {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let t = match c.find(Locator::Css("body")).await {
            Ok(b) => b.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if t.contains(needle) || Instant::now() > until {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn text(c: &Client) -> String {
    text_with(c, "").await
}

async fn log_in(c: &Client, base: &str, name: &str) {
    c.goto(&format!("{base}/login")).await.unwrap();
    let f = c.form(Locator::Css("form.login")).await.unwrap();
    f.set_by_name("name", name).await.unwrap();
    f.set_by_name("password", CONSOLE_PW).await.unwrap();
    f.submit().await.unwrap();
    let me = format!("Tài khoản: {name}");
    let t = text_with(c, &me).await;
    assert!(t.contains(&me), "{t}");
}

/// The file the browser downloaded into `dir`, once complete.
fn downloaded(dir: &Path, ext: &str) -> Vec<u8> {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let done = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == ext));
        if let Some(p) = done {
            return std::fs::read(p).unwrap();
        }
        assert!(
            Instant::now() < until,
            "no .{ext} download in {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn available() -> bool {
    let ok = Path::new(CHROMIUM).exists() && Path::new(DRIVER).exists();
    if !ok {
        let required = std::env::var("GATEWATCH_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "{CHROMIUM} or {DRIVER} missing: run scripts/setup-debian.sh"
        );
        eprintln!(
            "skipped: {CHROMIUM} or {DRIVER} missing (apt-get install chromium chromium-driver)"
        );
    }
    ok
}

/// A browser session against `driver_url`, its downloads into `downloads`.
async fn browser(driver_url: &str, downloads: &Path) -> Client {
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities(downloads))
        .connect(driver_url)
        .await
        .expect("a WebDriver session")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn an_officer_works_its_unit_in_a_real_browser() {
    if !available() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let f = console_store(d.path(), now);
    let downloads = d.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let console = serve(&f.db, Some(&f.units), &[]);
    let (_driver, url) = driver();
    runtime().block_on(async {
        let c = browser(&url, &downloads).await;
        let r = officer(&c, &console.url, &f, &downloads).await;
        let r2 = match r {
            Ok(()) => province(&c, &console.url).await,
            e => e,
        };
        let _ = c.close().await;
        r2.unwrap();
    });
}

#[test]
fn a_province_admin_works_the_central_console_in_a_real_browser() {
    if !available() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let (_pg, pg_url) = two_provinces(d.path(), CONSOLE_PW);
    let console = serve_central(&pg_url);
    let (_driver, url) = driver();
    runtime().block_on(async {
        let c = browser(&url, d.path()).await;
        let r = central_admin(&c, &console.url).await;
        let _ = c.close().await;
        r.unwrap();
    });
}

type Step = Result<(), fantoccini::error::CmdError>;

async fn officer(
    c: &Client,
    base: &str,
    f: &gatewatch::testkit::console::ConsoleStore,
    downloads: &Path,
) -> Step {
    c.goto(&format!("{base}/login")).await?;
    shot(c, "login").await;
    log_in(c, base, OFFICER).await;
    shot(c, "overview-unit").await;
    let links = c.find_all(Locator::Css("a[href^='/unit/']")).await?;
    assert_eq!(links.len(), 1, "the officer's unit only");
    let st = Store::open_read_only(&f.db).unwrap();
    let other = st.offender(f.other_host).unwrap().unwrap();
    c.goto(&format!("{base}/unit/{}", other.unit)).await?;
    assert!(text(c).await.contains("Đơn vị này không thuộc tài khoản"));
    c.goto(&format!("{base}/host/{}", f.other_host)).await?;
    assert!(text(c).await.contains("Không có máy này"));

    let open = st
        .offenders(Some(&f.unit), None, None)
        .unwrap()
        .into_iter()
        .find(|o| o.status != "cleaned")
        .expect("an uncleaned host in the unit");
    c.goto(&format!("{base}/unit/{}", f.unit)).await?;
    shot(c, "unit").await;
    c.find(Locator::LinkText("XLSX")).await?.click().await?;
    let mut got = sheet_ips(downloaded(downloads, "xlsx"));
    let mut want: Vec<String> = st
        .offenders(Some(&f.unit), None, None)
        .unwrap()
        .into_iter()
        .map(|o| o.ip)
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "the XLSX holds the unit's hosts");

    c.goto(&format!("{base}/host/{}", open.ip)).await?;
    shot(c, "host").await;
    let form = c.form(Locator::Css("form[action$='/status']")).await?;
    form.set_by_name("note", "Đã quét virus và cài lại").await?;
    form.submit().await?;
    let t = text_with(c, "Trạng thái: Đã xử lý").await;
    assert!(t.contains("Trạng thái: Đã xử lý"), "{t}");
    assert!(
        t.contains("Đã quét virus và cài lại") && t.contains(OFFICER),
        "{t}"
    );
    let audit = st.audit_log(1).unwrap();
    assert_eq!(
        (audit[0].1.as_str(), audit[0].3.as_str()),
        (OFFICER, open.ip.as_str())
    );
    shot(c, "host-cleaned").await;
    c.find(Locator::Css("header button")).await?.click().await?;
    assert!(
        text_with(c, "Mật khẩu").await.contains("Mật khẩu"),
        "logged out"
    );
    Ok(())
}

async fn province(c: &Client, base: &str) -> Step {
    log_in(c, base, ADMIN).await;
    shot(c, "overview-province").await;
    assert!(c.find_all(Locator::Css("a[href^='/unit/']")).await?.len() > 1);
    for (path, name, want) in [
        ("/feeds", "feeds", "Nguồn chỉ dấu"),
        ("/sensors", "sensors", "Cảm biến"),
        ("/audit", "audit", "Đánh dấu đã xử lý"),
    ] {
        c.goto(&format!("{base}{path}")).await?;
        assert!(text(c).await.contains(want), "{path}");
        shot(c, name).await;
    }
    Ok(())
}

async fn central_admin(c: &Client, base: &str) -> Step {
    log_in(c, base, "hn-admin").await;
    let t = text_with(c, "U001").await;
    assert!(t.contains(HN) && t.contains("Cảm biến"), "{t}");
    shot(c, "central-province").await;
    c.find(Locator::LinkText("U001")).await?.click().await?;
    let t = text_with(c, HOST).await;
    assert!(t.contains("hn-gw1") && !t.contains("hue-gw1"), "{t}");
    shot(c, "central-unit").await;
    c.find(Locator::LinkText(HOST)).await?.click().await?;
    let form = c.form(Locator::Css("form.bar[method='post']")).await?;
    form.set_by_name("note", "Đã cài lại máy").await?;
    form.submit().await?;
    let t = text_with(c, "Trạng thái: Đã xử lý").await;
    assert!(t.contains("Trạng thái: Đã xử lý"), "{t}");
    assert!(
        t.contains("console:hn-admin") && t.contains("trung tâm"),
        "{t}"
    );
    shot(c, "central-host").await;
    c.goto(&format!("{base}/sensors")).await?;
    assert!(text(c).await.contains("hn-gw1"));
    shot(c, "central-sensors").await;
    Ok(())
}

fn sheet_ips(bytes: Vec<u8>) -> Vec<String> {
    let mut wb: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes)).expect("an XLSX workbook");
    let mut out = Vec::new();
    for name in wb.sheet_names() {
        for row in wb.worksheet_range(&name).unwrap().rows().skip(1) {
            if let Some(Data::String(s)) = row.first()
                && s.parse::<std::net::IpAddr>().is_ok()
            {
                out.push(s.clone());
            }
        }
    }
    out
}
