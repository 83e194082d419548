//! The pages of SPEC §12 as a person uses them, in a real headless Chromium
//! (chromedriver and WebDriver), on SQLite and PostgreSQL: sign up, land on
//! the account, sign out, a wrong password (the alert next to the field),
//! the right one, back on the account; a TOTP user's second step (a wrong
//! code, then a recovery code); no token in `localStorage`,
//! `sessionStorage` or `document.cookie` at any point. Screenshots of
//! `/sign-in`, `/sign-up` and `/account`, light and dark, and of `/sign-in`
//! on a phone, go to `target/screenshots/`.
//!
//! Needs `chromium` and `chromedriver` (see tests/browser.rs); built with
//! `PORTCULLIS_SKIP_BROWSER=1` the tests are marked ignored.

mod browser_support;
#[macro_use]
mod common;

use std::time::{Duration, Instant};

use browser_support::{browser_phone, browser_with, run_then_close, write_screenshot};
use common::{Backend, PASSWORD, TestApp, enroll_totp, unique_email};
use fantoccini::{Client, Locator};
use serde_json::{Value, json};

const SCREENSHOTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/screenshots");

fn screenshot(png: &[u8], name: &str) {
    std::fs::create_dir_all(SCREENSHOTS).expect("create target/screenshots");
    write_screenshot(&format!("{SCREENSHOTS}/{name}.png"), png);
}

/// Runs `script` (a function body) in the page; its return value.
async fn js(client: &Client, script: &str) -> Value {
    client
        .execute(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
}

/// Waits (15 s at most) until `condition` (a JS expression) is truthy.
async fn wait_until(client: &Client, condition: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if js(client, &format!("return !!({condition});")).await == json!(true) {
            return;
        }
        if Instant::now() >= deadline {
            let url = client
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            let source = client.source().await.unwrap_or_default();
            panic!("{what}: never happened at {url}; the page is:\n{source}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_for_heading(client: &Client, heading: &str) {
    wait_until(
        client,
        &format!(
            "document.querySelector('h1') && document.querySelector('h1').textContent.trim() === {}",
            json!(heading)
        ),
        &format!("the heading {heading:?}"),
    )
    .await;
}

async fn fill(client: &Client, css: &str, text: &str) {
    let field = client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css} on the page: {e}"));
    field.clear().await.expect("clear");
    field.send_keys(text).await.expect("type");
}

async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

/// Nothing a script can read holds a token or the password.
async fn expect_no_token_in_reach(client: &Client, password: &str) {
    let seen = js(
        client,
        "const all = [];
         for (const store of [localStorage, sessionStorage]) {
           for (let i = 0; i < store.length; i++) { all.push(store.key(i) + '=' + store.getItem(store.key(i))); }
         }
         return { storage: all, cookie: document.cookie };",
    )
    .await;
    assert_eq!(seen["storage"], json!([]), "storage holds {seen}");
    let cookie = seen["cookie"].as_str().unwrap_or_default();
    for secret in ["eyJ", "portcullis_refresh", password] {
        assert!(
            !cookie.contains(secret),
            "document.cookie holds {secret}: {cookie}"
        );
    }
}

async fn journey(client: Client, app: &TestApp) {
    let email = unique_email("pages");
    let wrong = "Not-The-Password-9";

    // Sign up: lands on the account, which shows the address.
    client
        .goto(&app.url("/sign-up"))
        .await
        .expect("open /sign-up");
    wait_for_heading(&client, "Create an account").await;
    screenshot(&client.screenshot().await.unwrap(), "sign-up");
    fill(&client, "#email", &email).await;
    fill(&client, "#name", "Ada Lovelace").await;
    fill(&client, "#password", PASSWORD).await;
    click(&client, "#sign-up-form button[type=submit]").await;
    wait_for_heading(&client, "Your account").await;
    wait_until(
        &client,
        &format!(
            "document.querySelector('[data-field=email]').textContent === {}",
            json!(email)
        ),
        "the account shows the e-mail",
    )
    .await;
    assert_eq!(
        js(
            &client,
            "return document.querySelector('[data-field=name]').textContent;"
        )
        .await,
        "Ada Lovelace"
    );
    screenshot(&client.screenshot().await.unwrap(), "account");
    expect_no_token_in_reach(&client, PASSWORD).await;

    // Sign out: this session ends, the person is on /sign-in.
    click(&client, "#sign-out").await;
    wait_for_heading(&client, "Sign in").await;
    assert!(client.current_url().await.unwrap().path() == "/sign-in");
    screenshot(&client.screenshot().await.unwrap(), "sign-in");
    // Without a session the account sends the person to sign in.
    client
        .goto(&app.url("/account"))
        .await
        .expect("open /account");
    wait_until(
        &client,
        "location.pathname === '/sign-in'",
        "sent to /sign-in",
    )
    .await;
    wait_for_heading(&client, "Sign in").await;

    // A wrong password: the alert next to the password field, and the summary.
    fill(&client, "#email", &email).await;
    fill(&client, "#password", wrong).await;
    click(&client, "#sign-in-form button[type=submit]").await;
    wait_until(
        &client,
        "!document.getElementById('password-error').hidden",
        "the password's error",
    )
    .await;
    let alert = js(
        &client,
        "const e = document.getElementById('password-error');
         return { role: e.getAttribute('role'), text: e.textContent,
                  invalid: document.getElementById('password').getAttribute('aria-invalid'),
                  summary: !document.getElementById('error-summary').hidden,
                  focused: document.activeElement.id };",
    )
    .await;
    assert_eq!(alert["role"], "alert", "{alert}");
    assert_eq!(
        alert["text"], "The email address or the password is wrong.",
        "{alert}"
    );
    assert_eq!(alert["invalid"], "true", "{alert}");
    assert_eq!(alert["summary"], true, "{alert}");
    assert_eq!(alert["focused"], "error-summary", "{alert}");
    screenshot(&client.screenshot().await.unwrap(), "sign-in-error");
    expect_no_token_in_reach(&client, wrong).await;

    // The right one: back on the account.
    fill(&client, "#password", PASSWORD).await;
    click(&client, "#sign-in-form button[type=submit]").await;
    wait_for_heading(&client, "Your account").await;
    wait_until(
        &client,
        &format!(
            "document.querySelector('[data-field=email]').textContent === {}",
            json!(email)
        ),
        "the account shows the e-mail again",
    )
    .await;
    expect_no_token_in_reach(&client, PASSWORD).await;
    click(&client, "#sign-out").await;
    wait_for_heading(&client, "Sign in").await;
}

/// A user with TOTP signs in: the second step replaces the form, a wrong
/// code shows its alert, a recovery code passes.
async fn second_step(client: Client, app: &TestApp) {
    let enrolled = enroll_totp(app, "pages-totp").await;
    client
        .goto(&app.url("/sign-in"))
        .await
        .expect("open /sign-in");
    wait_for_heading(&client, "Sign in").await;
    fill(&client, "#email", &enrolled.session.email).await;
    fill(&client, "#password", PASSWORD).await;
    click(&client, "#sign-in-form button[type=submit]").await;
    wait_until(
        &client,
        "!document.getElementById('second-step-form').hidden",
        "the second step",
    )
    .await;
    let state = js(
        &client,
        "return { first: document.getElementById('sign-in-form').hidden,
                  focused: document.activeElement.id,
                  autocomplete: document.getElementById('code').getAttribute('autocomplete') };",
    )
    .await;
    assert_eq!(
        state,
        json!({"first": true, "focused": "code", "autocomplete": "one-time-code"})
    );
    screenshot(&client.screenshot().await.unwrap(), "sign-in-second-step");
    fill(&client, "#code", "aaaaa-aaaaa-aaaaa-aaaaa").await;
    click(&client, "#second-step-form button[type=submit]").await;
    wait_until(
        &client,
        "!document.getElementById('code-error').hidden",
        "the code's error",
    )
    .await;
    assert_eq!(
        js(
            &client,
            "return document.getElementById('code-error').textContent;"
        )
        .await,
        "This code is wrong or was already used."
    );
    fill(&client, "#code", &enrolled.recovery[0]).await;
    click(&client, "#second-step-form button[type=submit]").await;
    wait_for_heading(&client, "Your account").await;
    wait_until(
        &client,
        &format!(
            "document.querySelector('[data-field=email]').textContent === {}",
            json!(enrolled.session.email)
        ),
        "the account of the TOTP user",
    )
    .await;
    expect_no_token_in_reach(&client, PASSWORD).await;
}

/// The pages in the dark scheme and on a phone, for the screenshots.
async fn dark_and_phone(app: &TestApp) {
    let profile = tempfile::tempdir().expect("temporary directory");
    let (driver, client) = browser_with(
        profile.path(),
        (1000, 800),
        &[
            "--force-dark-mode",
            "--blink-settings=preferredColorScheme=0",
        ],
    )
    .await;
    run_then_close(driver, client.clone(), async {
        for (path, heading, name) in [
            ("/sign-in", "Sign in", "sign-in-dark"),
            ("/sign-up", "Create an account", "sign-up-dark"),
        ] {
            client.goto(&app.url(path)).await.expect("open the page");
            wait_for_heading(&client, heading).await;
            assert_eq!(
                js(
                    &client,
                    "return matchMedia('(prefers-color-scheme: dark)').matches;"
                )
                .await,
                true,
                "the browser is not in the dark scheme"
            );
            let background = js(
                &client,
                "return getComputedStyle(document.body).backgroundColor;",
            )
            .await;
            assert_eq!(
                background, "rgb(18, 20, 23)",
                "the dark colours do not apply"
            );
            screenshot(&client.screenshot().await.unwrap(), name);
        }
    })
    .await;

    let profile = tempfile::tempdir().expect("temporary directory");
    let (driver, client) = browser_phone(profile.path(), (390, 844)).await;
    run_then_close(driver, client.clone(), async {
        client
            .goto(&app.url("/sign-in"))
            .await
            .expect("open the page");
        wait_for_heading(&client, "Sign in").await;
        // Nothing wider than the phone's screen.
        let overflow = js(
            &client,
            "return document.documentElement.scrollWidth > window.innerWidth;",
        )
        .await;
        assert_eq!(overflow, false, "the page scrolls sideways on a phone");
        assert_eq!(js(&client, "return window.innerWidth;").await, 390);
        screenshot(&client.screenshot().await.unwrap(), "sign-in-phone");
    })
    .await;
}

both_backends!(
    #[cfg_attr(skip_browser, ignore = "PORTCULLIS_SKIP_BROWSER is set")]
    sign_up_sign_out_and_sign_in_in_a_real_browser,
    |backend: Backend| async move {
        let app = TestApp::builder(backend)
            .vars(&[("PAGES_ENABLED", "true")])
            .spawn()
            .await;
        let profile = tempfile::tempdir().expect("temporary directory");
        let (driver, client) = browser_with(profile.path(), (1000, 900), &[]).await;
        run_then_close(driver, client.clone(), async {
            journey(client.clone(), &app).await;
            second_step(client.clone(), &app).await;
        })
        .await;
        if backend == Backend::Sqlite {
            dark_and_phone(&app).await;
        }
    }
);
