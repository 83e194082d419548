//! The e-mailed links, followed in a real headless Chromium (through
//! chromedriver and WebDriver), on SQLite and PostgreSQL: the password-reset
//! form and the verification button.
//!
//! Needs `chromium` and `chromedriver` (Debian: `apt-get install chromium
//! chromium-driver`); without them the tests fail, unless
//! `PORTCULLIS_SKIP_BROWSER=1` is set. `CHROME_BIN` and `CHROMEDRIVER`
//! override the programs' paths. A screenshot of the reset form is written
//! to `/tmp/portcullis-reset.png`.

mod common;
mod mail_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use mail_support::{Backend, MailTo, NEW_PASSWORD, PASSWORD, SmtpServer, TestApp, TestDb};
use serde_json::json;

const SCREENSHOT: &str = "/tmp/portcullis-reset.png";

/// `name` as given by `env_var`, at one of `candidates`, or on the `PATH`.
fn find_program(env_var: &str, candidates: &[&str]) -> Option<PathBuf> {
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
struct Chromedriver {
    child: Child,
    port: u16,
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A headless Chromium driven over WebDriver, or `None` when the browser is
/// missing and `PORTCULLIS_SKIP_BROWSER=1` says that is fine.
async fn browser(profile: &Path) -> Option<(Chromedriver, Client)> {
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
        if std::env::var("PORTCULLIS_SKIP_BROWSER").as_deref() == Ok("1") {
            eprintln!("{missing} not found: browser test skipped (PORTCULLIS_SKIP_BROWSER=1)");
            return None;
        }
        panic!(
            "{missing} not found: the browser test needs chromium and chromedriver \
             (Debian: `apt-get install -y chromium chromium-driver`; or set CHROME_BIN and \
             CHROMEDRIVER); set PORTCULLIS_SKIP_BROWSER=1 to skip it"
        );
    };

    let port = mail_support::free_port();
    let child = Command::new(&driver)
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver.display()));
    let driver = Chromedriver { child, port };
    assert!(
        mail_support::wait_for_port(port, Duration::from_secs(20)).await,
        "chromedriver does not listen on port {port}"
    );

    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--window-size=1000,800",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let client = ClientBuilder::native()
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .unwrap_or_else(|e| panic!("cannot open a Chromium session through chromedriver: {e}"));
    Some((driver, client))
}

/// Waits until the page's `h1` reads `title`; the page's text.
async fn wait_for_heading(client: &Client, title: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(h1) = client.find(Locator::Css("h1")).await
            && h1.text().await.is_ok_and(|t| t.trim() == title)
        {
            let body = client.find(Locator::Css("body")).await.expect("body");
            return body.text().await.expect("page text");
        }
        if Instant::now() >= deadline {
            let source = client.source().await.unwrap_or_default();
            panic!("the page never showed the heading {title:?}; it is:\n{source}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn fill(client: &Client, css: &str, text: &str) {
    let field = client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css} on the page: {e}"));
    field.clear().await.expect("clear");
    field.send_keys(text).await.expect("type");
}

async fn reset_flow(client: Client, app: &TestApp, smtp: &SmtpServer, screenshot: bool) {
    let email = "alice@example.com";
    app.register(email).await;
    let forgot = app
        .post("/forgot-password", json!({ "email": email }))
        .await;
    assert_eq!(forgot.status, 200, "{}", forgot.text);
    let mail = smtp.wait_for(email, "Reset your password", 1).await;
    let link = mail[0].link(&app.base, "/reset-password");

    client.goto(&link).await.expect("open the reset link");
    assert_eq!(client.title().await.unwrap(), "Choose a new password");
    if screenshot {
        let png = client.screenshot().await.expect("screenshot");
        let tmp = format!("{SCREENSHOT}.{}.tmp", std::process::id());
        std::fs::write(&tmp, &png).expect("write the screenshot");
        std::fs::rename(&tmp, SCREENSHOT).expect("write the screenshot");
    }

    // Two different passwords: the form comes back with an error.
    fill(&client, "#new_password", NEW_PASSWORD).await;
    fill(&client, "#confirm_password", "Something-Else-Entirely-3").await;
    client
        .find(Locator::Css("button[type=submit]"))
        .await
        .expect("submit button")
        .click()
        .await
        .expect("submit");
    let text = wait_for_heading(&client, "Choose a new password").await;
    assert!(text.contains("do not match"), "{text}");

    // Then the same password twice.
    fill(&client, "#new_password", NEW_PASSWORD).await;
    fill(&client, "#confirm_password", NEW_PASSWORD).await;
    client
        .find(Locator::Css("button[type=submit]"))
        .await
        .expect("submit button")
        .click()
        .await
        .expect("submit");
    let text = wait_for_heading(&client, "Password changed").await;
    assert!(
        text.contains("Your password has been changed"),
        "unexpected success page: {text}"
    );

    assert_eq!(app.login(email, NEW_PASSWORD).await.status, 200);
    let old = app.login(email, PASSWORD).await;
    assert_eq!(old.status, 401, "{}", old.text);
    assert_eq!(old.code(), "INVALID_CREDENTIALS");

    // The link is spent now: opening it again explains so.
    client.goto(&link).await.expect("open the spent link");
    let text = wait_for_heading(&client, "This link cannot be used").await;
    assert!(text.contains("already been used"), "{text}");
}

async fn verify_flow(client: Client, app: &TestApp, smtp: &SmtpServer) {
    let email = "bob@example.com";
    let registered = app.register(email).await;
    let access = registered.body["data"]["access_token"]
        .as_str()
        .expect("access_token")
        .to_string();
    let mail = smtp.wait_for(email, "Confirm your email address", 1).await;
    let link = mail[0].link(&app.base, "/verify-email");

    client
        .goto(&link)
        .await
        .expect("open the verification link");
    let text = wait_for_heading(&client, "Confirm your email address").await;
    assert!(text.contains("confirm"), "{text}");
    // Opening the page did not verify anything.
    assert_eq!(app.me(&access).await.body["data"]["is_verified"], false);

    client
        .find(Locator::Css("button[type=submit]"))
        .await
        .expect("confirm button")
        .click()
        .await
        .expect("confirm");
    let text = wait_for_heading(&client, "Email address confirmed").await;
    assert!(text.contains("confirmed"), "{text}");

    let me = app.me(&access).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["data"]["is_verified"], true, "{}", me.text);
}

async fn browser_flows(backend: Backend) {
    let profile = tempfile::tempdir().expect("temporary directory");
    let Some((driver, client)) = browser(profile.path()).await else {
        return;
    };
    let db = TestDb::create(backend).await;
    let smtp = SmtpServer::start().await;
    let app = TestApp::start(&db, MailTo::Smtp(smtp.port), &[]).await;

    // Run the flows, then always end the browser session, even after a
    // failed assertion, so that no Chromium is left behind.
    let outcome = async {
        let flows = async {
            reset_flow(client.clone(), &app, &smtp, backend == Backend::Sqlite).await;
            verify_flow(client.clone(), &app, &smtp).await;
        };
        std::panic::AssertUnwindSafe(flows).catch_unwind().await
    }
    .await;
    let _ = client.close().await;
    drop(driver);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// `catch_unwind` for futures, without a futures dependency.
trait CatchUnwind: std::future::Future + Sized {
    fn catch_unwind(self) -> CatchUnwindFuture<Self> {
        CatchUnwindFuture(Box::pin(self))
    }
}

impl<F: std::future::Future> CatchUnwind for std::panic::AssertUnwindSafe<F> {}

struct CatchUnwindFuture<F>(std::pin::Pin<Box<F>>);

impl<F: std::future::Future> std::future::Future for CatchUnwindFuture<F> {
    type Output = std::thread::Result<F::Output>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Ok(std::task::Poll::Ready(v)) => std::task::Poll::Ready(Ok(v)),
            Err(panic) => std::task::Poll::Ready(Err(panic)),
        }
    }
}

#[tokio::test]
async fn reset_and_verify_in_a_real_browser_sqlite() {
    browser_flows(Backend::Sqlite).await;
}

#[tokio::test]
async fn reset_and_verify_in_a_real_browser_postgres() {
    browser_flows(Backend::Postgres).await;
}
