//! `/account`'s sessions and second factor (SPEC §12) in a real headless
//! Chromium, on SQLite and PostgreSQL. Sign up; a second session (a sign-in
//! through the API) shows in the list beside "This device"
//! (`aria-current="true"`), is revoked with its button, and its refresh
//! then fails. TOTP turned on from the page: a wrong password first (the
//! alert next to the field), then the QR code (an image the browser
//! decoded) and the secret, from which the test computes the code; the ten
//! recovery codes shown once. Sign out; signing in asks for the second step;
//! a fresh code lands on `/account`. New recovery codes (a wrong code
//! first), then TOTP turned off with one of them. No token in storage at
//! any point. Screenshots: `account-sessions`, `account-mfa-setup` (the QR
//! code), `account-mfa-codes`.
//!
//! Needs `chromium` and `chromedriver` (see tests/browser.rs); built with
//! `PORTCULLIS_SKIP_BROWSER=1` the tests are marked ignored.

mod browser_support;
#[macro_use]
mod common;

use std::time::Duration;

use browser_support::page::{click, fill, js, screenshot, wait_for_heading, wait_until};
use browser_support::{browser_with, run_then_close};
use common::{PASSWORD, Session, TestApp, base32_decode, now, unique_email};
use fantoccini::Client;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Nothing a script can read holds a token or the password.
async fn expect_no_token_in_reach(client: &Client) {
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
    for secret in ["eyJ", "portcullis_refresh", PASSWORD] {
        assert!(
            !cookie.contains(secret),
            "document.cookie holds {secret}: {cookie}"
        );
    }
}

/// The rows of the sessions list: device, current, aria-current, buttons.
async fn session_rows(client: &Client) -> Value {
    js(
        client,
        "return [...document.querySelectorAll('#session-list > li')].map((li) => ({
           device: li.querySelector('.session-device').textContent,
           current: li.getAttribute('aria-current'),
           text: li.textContent,
           revoke: !!li.querySelector('button[data-action=revoke]'),
         }));",
    )
    .await
}

async fn wait_for_account(client: &Client, email: &str) {
    wait_for_heading(client, "Your account").await;
    wait_until(
        client,
        &format!(
            "document.querySelector('[data-field=email]').textContent === {} && \
             document.getElementById('session-list').dataset.loaded === 'true' && \
             document.getElementById('mfa').dataset.enabled",
            json!(email)
        ),
        "the account, its sessions and its second factor",
    )
    .await;
}

/// The TOTP step of `at` (30 s steps).
fn step(at: i64) -> i64 {
    at / 30
}

/// A code of `secret` for a step later than `used` (waits for it).
async fn code_after(secret: &[u8], used: i64) -> (String, i64) {
    while step(now()) <= used {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let at = now();
    let code = portcullis::mfa::totp_code(secret, at).expect("a code");
    (code, step(at))
}

async fn recovery_codes_shown(client: &Client) -> Vec<String> {
    wait_until(
        client,
        "!document.getElementById('mfa-codes').hidden",
        "the recovery codes",
    )
    .await;
    let codes = js(
        client,
        "return [...document.querySelectorAll('#mfa-code-list li')].map((li) => li.textContent);",
    )
    .await;
    let codes: Vec<String> = codes
        .as_array()
        .expect("a list")
        .iter()
        .map(|c| c.as_str().expect("text").to_string())
        .collect();
    assert_eq!(codes.len(), 10, "{codes:?}");
    codes
}

async fn account_journey(client: &Client, app: &TestApp) {
    let email = unique_email("account");
    client
        .goto(&app.url("/sign-up"))
        .await
        .expect("open /sign-up");
    wait_for_heading(client, "Create an account").await;
    fill(client, "#email", &email).await;
    fill(client, "#password", PASSWORD).await;
    click(client, "#sign-up-form button[type=submit]").await;
    wait_for_account(client, &email).await;

    // ---- sessions: this device, and another one revoked ----
    let rows = session_rows(client).await;
    assert_eq!(rows.as_array().map(Vec::len), Some(1), "{rows}");
    assert_eq!(rows[0]["current"], "true", "{rows}");
    assert!(
        rows[0]["text"].as_str().unwrap().contains("This device"),
        "{rows}"
    );
    assert_eq!(
        rows[0]["device"], "Chrome on Linux",
        "the browser's user agent, shortened: {rows}"
    );
    assert_eq!(rows[0]["revoke"], false, "{rows}");

    let user_id = 0; // not needed by `login`
    let other = app
        .login(
            &Session {
                user_id,
                email: email.clone(),
                access: String::new(),
                refresh: String::new(),
            },
            PASSWORD,
        )
        .await;
    client.refresh().await.expect("reload /account");
    wait_for_account(client, &email).await;
    wait_until(
        client,
        "document.querySelectorAll('#session-list > li').length === 2",
        "two sessions",
    )
    .await;
    let rows = session_rows(client).await;
    assert_eq!(rows[0]["current"], "true", "the current one first: {rows}");
    assert_eq!(rows[1]["current"], Value::Null, "{rows}");
    assert_eq!(rows[1]["revoke"], true, "{rows}");
    assert_eq!(rows[1]["device"], "Unknown device", "no user agent: {rows}");
    assert_eq!(
        js(
            client,
            "return document.querySelectorAll('#session-list [aria-current=true]').length;"
        )
        .await,
        1
    );
    screenshot(&client.screenshot().await.unwrap(), "account-sessions");
    click(client, "#session-list button[data-action=revoke]").await;
    wait_until(
        client,
        "document.querySelectorAll('#session-list > li').length === 1 && \
         !document.getElementById('sessions-status').hidden",
        "the other session gone from the list",
    )
    .await;
    assert_eq!(session_rows(client).await[0]["current"], "true");
    let refused = app.refresh(&other.refresh).await;
    assert_eq!(
        refused.status,
        StatusCode::UNAUTHORIZED,
        "the revoked session still refreshes: {}",
        refused.text()
    );
    expect_no_token_in_reach(client).await;

    // ---- the second factor: turn TOTP on ----
    assert_eq!(
        js(
            client,
            "return document.getElementById('mfa-state').textContent;"
        )
        .await,
        "Off. Only your password protects your account."
    );
    click(client, "#mfa-turn-on").await;
    fill(client, "#mfa_password", "Not-The-Password-9").await;
    click(client, "#mfa-setup-form button[type=submit]").await;
    wait_until(
        client,
        "!document.getElementById('mfa_password-error').hidden",
        "the password's error",
    )
    .await;
    assert_eq!(
        js(
            client,
            "const e = document.getElementById('mfa_password-error'); return [e.getAttribute('role'), e.textContent];"
        )
        .await,
        json!(["alert", "This password is wrong."])
    );
    fill(client, "#mfa_password", PASSWORD).await;
    click(client, "#mfa-setup-form button[type=submit]").await;
    wait_until(
        client,
        "!document.getElementById('mfa-confirm-form').hidden && \
         document.getElementById('mfa-qr').complete && document.getElementById('mfa-qr').naturalWidth > 0",
        "the QR code, decoded",
    )
    .await;
    let shown = js(
        client,
        "return { src: document.getElementById('mfa-qr').getAttribute('src').slice(0, 26),
                  secret: document.getElementById('mfa-secret').textContent,
                  focused: document.activeElement.id,
                  turnOnHidden: document.getElementById('mfa-off').hidden,
                  autocomplete: document.getElementById('mfa_code').getAttribute('autocomplete') };",
    )
    .await;
    assert_eq!(shown["src"], "data:image/svg+xml;base64,", "{shown}");
    assert_eq!(shown["focused"], "mfa_code", "{shown}");
    assert_eq!(shown["turnOnHidden"], true, "one way on at a time: {shown}");
    assert_eq!(shown["autocomplete"], "one-time-code", "{shown}");
    screenshot(&client.screenshot().await.unwrap(), "account-mfa-setup");
    let secret = base32_decode(&shown["secret"].as_str().unwrap().replace(' ', ""));
    let (code, used) = code_after(&secret, 0).await;
    fill(client, "#mfa_code", &code).await;
    click(client, "#mfa-confirm-form button[type=submit]").await;
    let codes = recovery_codes_shown(client).await;
    screenshot(&client.screenshot().await.unwrap(), "account-mfa-codes");
    assert_eq!(
        js(client, "return [document.getElementById('mfa').dataset.enabled, document.getElementById('mfa-qr').hasAttribute('src'), document.getElementById('mfa-secret').textContent];").await,
        json!(["true", false, ""]),
        "TOTP on, the secret no longer shown"
    );
    assert!(
        js(
            client,
            "return document.getElementById('mfa-state').textContent;"
        )
        .await
        .as_str()
        .unwrap()
        .contains("Recovery codes left: 10"),
    );
    click(client, "#mfa-codes-done").await;
    assert_eq!(
        js(client, "return [document.getElementById('mfa-codes').hidden, document.querySelectorAll('#mfa-code-list li').length];").await,
        json!([true, 0]),
        "the codes are shown once"
    );
    // The page goes on with the confirmation's new session.
    client.refresh().await.expect("reload /account");
    wait_for_account(client, &email).await;
    assert_eq!(session_rows(client).await.as_array().map(Vec::len), Some(1));
    expect_no_token_in_reach(client).await;

    // ---- sign out, sign in: the second step, then /account ----
    click(client, "#sign-out").await;
    wait_for_heading(client, "Sign in").await;
    fill(client, "#email", &email).await;
    fill(client, "#password", PASSWORD).await;
    click(client, "#sign-in-form button[type=submit]").await;
    wait_until(
        client,
        "!document.getElementById('second-step-form').hidden",
        "the second step",
    )
    .await;
    let (code, used) = code_after(&secret, used).await;
    fill(client, "#code", &code).await;
    click(client, "#second-step-form button[type=submit]").await;
    wait_for_account(client, &email).await;
    assert_eq!(
        js(
            client,
            "return document.getElementById('mfa').dataset.enabled;"
        )
        .await,
        "true"
    );

    // ---- new recovery codes: a wrong code, then a fresh one ----
    click(client, "#mfa-new-codes").await;
    fill(client, "#mfa_regenerate_code", "000000").await;
    click(client, "#mfa-regenerate-form button[type=submit]").await;
    wait_until(
        client,
        "!document.getElementById('mfa_regenerate_code-error').hidden",
        "the code's error",
    )
    .await;
    assert_eq!(
        js(
            client,
            "return document.getElementById('mfa_regenerate_code-error').textContent;"
        )
        .await,
        "This code is wrong or was already used."
    );
    let (code, _) = code_after(&secret, used).await;
    fill(client, "#mfa_regenerate_code", &code).await;
    click(client, "#mfa-regenerate-form button[type=submit]").await;
    let fresh = recovery_codes_shown(client).await;
    assert!(fresh.iter().all(|c| !codes.contains(c)), "a new set");
    click(client, "#mfa-codes-done").await;

    // ---- turn it off with one of the new recovery codes ----
    click(client, "#mfa-turn-off").await;
    fill(client, "#mfa_disable_code", &codes[0]).await;
    click(client, "#mfa-disable-form button[type=submit]").await;
    wait_until(
        client,
        "!document.getElementById('mfa_disable_code-error').hidden",
        "the old code refused",
    )
    .await;
    fill(client, "#mfa_disable_code", &fresh[0]).await;
    click(client, "#mfa-disable-form button[type=submit]").await;
    wait_until(
        client,
        "document.getElementById('mfa').dataset.enabled === 'false' && !document.getElementById('mfa-status').hidden",
        "TOTP off",
    )
    .await;
    expect_no_token_in_reach(client).await;
}

both_backends!(
    #[cfg_attr(skip_browser, ignore = "PORTCULLIS_SKIP_BROWSER is set")]
    sessions_and_second_factor_on_the_account_page,
    |backend: Backend| async move {
        let app = TestApp::builder(backend)
            .vars(&[("PAGES_ENABLED", "true")])
            .spawn()
            .await;
        let profile = tempfile::tempdir().expect("temporary directory");
        let (driver, client) = browser_with(profile.path(), (1000, 1400), &[]).await;
        run_then_close(driver, client.clone(), async {
            account_journey(&client, &app).await;
        })
        .await;
    }
);
