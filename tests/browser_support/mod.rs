//! Harness for the browser tests: a headless Chromium driven over WebDriver
//! (fantoccini and chromedriver), one per test.
//!
//! Needs `chromium` and `chromedriver` (`scripts/test` installs them as
//! root; Debian: `apt-get install chromium chromium-driver`); without them
//! a test fails. Built with `PORTCULLIS_SKIP_BROWSER=1`, the browser tests
//! are marked ignored (`build.rs` sets the cfg `skip_browser`; each test has
//! `#[cfg_attr(skip_browser, ignore = "…")]`), so the report shows them as
//! not run. `CHROME_BIN` and `CHROMEDRIVER` override the programs' paths.
//!
//! A test binary using it declares `mod common; mod browser_support;`.

#![allow(dead_code)]

pub mod page;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::task::{Context, Poll};
use std::time::Duration;

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder};
use reqwest::{Method, Url};
use serde_json::{Value, json};

use crate::common;

/// `name` as given by `env_var`, at one of `candidates`, or on the `PATH`.
pub fn find_program(env_var: &str, candidates: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env_var).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for candidate in candidates {
        if candidate.contains('/') {
            if Path::new(candidate).is_file() {
                return Some(PathBuf::from(candidate));
            }
            continue;
        }
        for dir in std::env::split_paths(&path) {
            let full = dir.join(candidate);
            if full.is_file() {
                return Some(full);
            }
        }
    }
    None
}

/// A chromedriver process for one test; killed when dropped.
pub struct Chromedriver {
    child: Child,
    port: u16,
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A headless Chromium driven over WebDriver; panics when the browser or
/// its driver is missing.
pub async fn browser(profile: &Path) -> (Chromedriver, Client) {
    browser_sized(profile, (1000, 800)).await
}

/// [`browser`] with a window of `width` × `height` pixels.
pub async fn browser_sized(profile: &Path, size: (u32, u32)) -> (Chromedriver, Client) {
    browser_with(profile, size, &[]).await
}

/// [`browser_sized`] with more command-line switches for Chromium (e.g.
/// `--force-dark-mode`).
pub async fn browser_with(
    profile: &Path,
    size: (u32, u32),
    extra_args: &[&str],
) -> (Chromedriver, Client) {
    browser_options(profile, size, extra_args, None).await
}

/// A headless Chromium that emulates a phone's screen of `width` ×
/// `height` CSS pixels (a desktop window cannot be narrower than 500).
pub async fn browser_phone(profile: &Path, (width, height): (u32, u32)) -> (Chromedriver, Client) {
    let metrics = json!({ "deviceMetrics": { "width": width, "height": height, "pixelRatio": 2 } });
    browser_options(profile, (width, height), &[], Some(metrics)).await
}

async fn browser_options(
    profile: &Path,
    (width, height): (u32, u32),
    extra_args: &[&str],
    mobile_emulation: Option<serde_json::Value>,
) -> (Chromedriver, Client) {
    let chromium = find_program(
        "CHROME_BIN",
        &[
            "/usr/bin/chromium",
            "chromium",
            "chromium-browser",
            "google-chrome",
        ],
    );
    let driver = find_program("CHROMEDRIVER", &["chromedriver", "/usr/bin/chromedriver"]);
    let missing = [
        ("chromium", chromium.is_none()),
        ("chromedriver", driver.is_none()),
    ]
    .iter()
    .filter(|(_, gone)| *gone)
    .map(|(name, _)| *name)
    .collect::<Vec<_>>()
    .join(" and ");
    let (Some(chromium), Some(driver)) = (chromium, driver) else {
        panic!(
            "{missing} not found: the browser test needs chromium and chromedriver \
             (run the tests with scripts/test, which installs them as root; or Debian: \
             `apt-get install -y chromium chromium-driver`; or set CHROME_BIN and \
             CHROMEDRIVER); build with PORTCULLIS_SKIP_BROWSER=1 to mark it ignored"
        );
    };

    let port = common::free_port();
    let child = Command::new(&driver)
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver.display()));
    let driver = Chromedriver { child, port };
    assert!(
        common::wait_for_port(port, Duration::from_secs(20)).await,
        "chromedriver does not listen on port {port}"
    );

    let mut args = vec![
        "--headless=new".to_string(),
        "--no-sandbox".to_string(),
        "--disable-gpu".to_string(),
        "--disable-dev-shm-usage".to_string(),
        "--disable-background-networking".to_string(),
        "--disable-component-update".to_string(),
        "--disable-sync".to_string(),
        "--no-first-run".to_string(),
        format!("--window-size={width},{height}"),
        format!("--user-data-dir={}", profile.display()),
    ];
    args.extend(extra_args.iter().map(|a| a.to_string()));
    let mut options = json!({
        "binary": chromium,
        "args": args,
    });
    if let Some(metrics) = mobile_emulation {
        options["mobileEmulation"] = metrics;
    }
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert("goog:chromeOptions".into(), options);
    let client = ClientBuilder::native()
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .unwrap_or_else(|e| panic!("cannot open a Chromium session through chromedriver: {e}"));
    (driver, client)
}

/// Runs `flows` with `client`, then always ends the browser session, even
/// after a failed assertion, so that no Chromium is left behind; a panic in
/// `flows` is raised again afterwards.
pub async fn run_then_close<F: Future>(
    driver: Chromedriver,
    client: Client,
    flows: F,
) -> F::Output {
    let outcome = std::panic::AssertUnwindSafe(flows).catch_unwind().await;
    let _ = client.close().await;
    drop(driver);
    match outcome {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Writes `png` to `path` atomically (a temporary file, then a rename). The
/// temporary name is unique per call: the tests of both databases run in one
/// process at once and may write the same screenshot.
pub fn write_screenshot(path: &str, png: &[u8]) {
    static WRITES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = format!("{path}.{}.{n}.tmp", std::process::id());
    std::fs::write(&tmp, png).expect("write the screenshot");
    std::fs::rename(&tmp, path).expect("write the screenshot");
}

/// `catch_unwind` for futures, without a futures dependency.
pub trait CatchUnwind: Future + Sized {
    fn catch_unwind(self) -> CatchUnwindFuture<Self> {
        CatchUnwindFuture(Box::pin(self))
    }
}

impl<F: Future> CatchUnwind for std::panic::AssertUnwindSafe<F> {}

pub struct CatchUnwindFuture<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwindFuture<F> {
    type Output = std::thread::Result<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

/// A WebDriver extension command on the session:
/// `method /session/{id}/{path}` with `body`.
#[derive(Debug)]
pub struct SessionCommand {
    /// The HTTP method.
    pub method: Method,
    /// The path under `/session/{id}/`.
    pub path: String,
    /// The JSON body, if any.
    pub body: Option<Value>,
}

impl WebDriverCompatibleCommand for SessionCommand {
    fn endpoint(
        &self,
        base_url: &Url,
        session_id: Option<&str>,
    ) -> Result<Url, <Url as FromStr>::Err> {
        let session = session_id.expect("a WebDriver session");
        base_url.join(&format!("session/{session}/{}", self.path))
    }

    fn method_and_body(&self, _: &Url) -> (Method, Option<String>) {
        (
            self.method.clone(),
            self.body.as_ref().map(Value::to_string),
        )
    }
}

/// Adds a virtual CTAP2 authenticator built into the device ("internal"),
/// keeping discoverable credentials and verifying its user, whose
/// credentials are backup-eligible and backed up when `synced`; its id.
pub async fn add_authenticator(client: &Client, synced: bool) -> String {
    let id = client
        .issue_cmd(SessionCommand {
            method: Method::POST,
            path: "webauthn/authenticator".into(),
            body: Some(json!({
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": true,
                "hasUserVerification": true,
                "isUserVerified": true,
                "defaultBackupEligibility": synced,
                "defaultBackupState": synced,
            })),
        })
        .await
        .expect("add a virtual authenticator");
    id.as_str().expect("the authenticator's id").to_string()
}
