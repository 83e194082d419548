//! The e-mailed links, followed in a real headless Chromium (through
//! chromedriver and WebDriver), on SQLite and PostgreSQL: the password-reset
//! form and the verification button.
//!
//! Needs `chromium` and `chromedriver` (`scripts/test` installs them as
//! root; Debian: `apt-get install chromium chromium-driver`); without them
//! the tests fail, unless `PORTCULLIS_SKIP_BROWSER=1` is set. `CHROME_BIN`
//! and `CHROMEDRIVER` override the programs' paths. A screenshot of the reset form is written
//! to `/tmp/portcullis-reset.png`.

mod browser_support;
#[macro_use]
mod common;

use std::time::{Duration, Instant};

use browser_support::{browser, run_then_close, write_screenshot};
use common::{Backend, OTHER_PASSWORD, PASSWORD, TestApp};
use fantoccini::{Client, Locator};
use serde_json::json;

const SCREENSHOT: &str = "/tmp/portcullis-reset.png";

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

async fn reset_flow(client: Client, app: &TestApp, screenshot: bool) {
    let email = "alice@example.com";
    app.register(email, PASSWORD).await;
    let forgot = app
        .post_json("/forgot-password", &json!({ "email": email }))
        .await;
    assert_eq!(forgot.status, 200, "{}", forgot.text());
    let mail = app.smtp().wait_for(email, "Reset your password", 1).await;
    let link = mail[0].link(&app.base_url, "/reset-password");

    client.goto(&link).await.expect("open the reset link");
    assert_eq!(client.title().await.unwrap(), "Choose a new password");
    if screenshot {
        let png = client.screenshot().await.expect("screenshot");
        write_screenshot(SCREENSHOT, &png);
    }

    // Two different passwords: the form comes back with an error.
    fill(&client, "#new_password", OTHER_PASSWORD).await;
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
    fill(&client, "#new_password", OTHER_PASSWORD).await;
    fill(&client, "#confirm_password", OTHER_PASSWORD).await;
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

    assert_eq!(app.login_form(email, OTHER_PASSWORD).await.status, 200);
    let old = app.login_form(email, PASSWORD).await;
    assert_eq!(old.status, 401, "{}", old.text());
    assert_eq!(old.code(), "INVALID_CREDENTIALS");

    // The link is spent now: opening it again explains so.
    client.goto(&link).await.expect("open the spent link");
    let text = wait_for_heading(&client, "This link cannot be used").await;
    assert!(text.contains("already been used"), "{text}");
}

async fn verify_flow(client: Client, app: &TestApp) {
    let email = "bob@example.com";
    let access = app.register(email, PASSWORD).await.access;
    let mail = app
        .smtp()
        .wait_for(email, "Confirm your email address", 1)
        .await;
    let link = mail[0].link(&app.base_url, "/verify-email");

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
    assert_eq!(me.status, 200, "{}", me.text());
    assert_eq!(me.body["data"]["is_verified"], true, "{}", me.text());
}

both_backends!(reset_and_verify_in_a_real_browser, smtp, |app| async move {
    let profile = tempfile::tempdir().expect("temporary directory");
    let Some((driver, client)) = browser(profile.path()).await else {
        return;
    };

    // Run the flows, then always end the browser session, even after a
    // failed assertion, so that no Chromium is left behind.
    run_then_close(driver, client.clone(), async {
        reset_flow(client.clone(), &app, app.backend == Backend::Sqlite).await;
        verify_flow(client.clone(), &app).await;
    })
    .await;
});
