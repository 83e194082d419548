//! The e-mailed links, followed in a real headless Chromium (through
//! chromedriver and WebDriver), on SQLite and PostgreSQL: the password-reset
//! form and the verification button; and the refresh cookie
//! (`REFRESH_COOKIE=true`) as a browser app uses it.
//!
//! Needs `chromium` and `chromedriver` (`scripts/test` installs them as
//! root; Debian: `apt-get install chromium chromium-driver`); without them
//! the tests fail; built with `PORTCULLIS_SKIP_BROWSER=1` they are marked
//! ignored. `CHROME_BIN`
//! and `CHROMEDRIVER` override the programs' paths. A screenshot of the reset form is written
//! to `/tmp/portcullis-reset.png`.

mod browser_support;
#[macro_use]
mod common;

use std::time::{Duration, Instant};

use axum::response::Html;
use axum::routing::get;
use browser_support::{browser, run_then_close, write_screenshot};
use common::{Backend, OTHER_PASSWORD, PASSWORD, PREFIX, TestApp, unique_email};
use fantoccini::{Client, Locator};
use serde_json::{Value, json};

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
    // The page's title, then the site's (`PAGES_TITLE`).
    let title = client.title().await.unwrap();
    assert!(title.starts_with("Choose a new password – "), "{title}");
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

both_backends!(
    #[cfg_attr(skip_browser, ignore = "PORTCULLIS_SKIP_BROWSER is set")]
    reset_and_verify_in_a_real_browser,
    smtp,
    |app| async move {
        let profile = tempfile::tempdir().expect("temporary directory");
        let (driver, client) = browser(profile.path()).await;

        // Run the flows, then always end the browser session, even after a
        // failed assertion, so that no Chromium is left behind.
        run_then_close(driver, client.clone(), async {
            reset_flow(client.clone(), &app, app.backend == Backend::Sqlite).await;
            verify_flow(client.clone(), &app).await;
        })
        .await;
    }
);

// ---- the refresh cookie ------------------------------------------------------------

/// The page of the browser app: a blank page whose scripts the test runs.
const APP_PAGE: &str =
    "<!doctype html><html><head><title>App</title></head><body><h1>App</h1></body></html>";

/// Runs `fetch(url, init)` in the page (`init.headers` and a JSON `body`
/// as given) and answers what the page saw: the status and body (`null`
/// when the answer is opaque), the answer's type, or the error a failed
/// fetch throws; and `document.cookie`.
const FETCH: &str = r#"
const [url, init, done] = arguments;
fetch(url, init)
  .then(async (r) => {
    let body = null;
    try { body = await r.json(); } catch (e) {}
    done({ status: r.status, type: r.type, body, cookie: document.cookie });
  })
  .catch((e) => done({ error: String(e), cookie: document.cookie }));
"#;

/// `fetch` in the page (see [`FETCH`]).
async fn page_fetch(client: &Client, url: &str, init: Value) -> Value {
    client
        .execute_async(FETCH, vec![json!(url), init])
        .await
        .expect("the page's fetch")
}

/// The browser's refresh cookie for `app`, with the attributes WebDriver
/// sees (scripts do not). WebDriver shows the cookies of the current page
/// only, and this one is scoped to the auth path: the browser visits a path
/// under it (a 404), then goes back where it was.
async fn browser_cookie(client: &Client, app: &TestApp) -> Option<(String, Value)> {
    let back = client.current_url().await.expect("the current URL");
    client
        .goto(&app.auth_url("/cookie-jar"))
        .await
        .expect("visit the auth path");
    let cookies = client
        .get_all_cookies()
        .await
        .expect("the browser's cookies");
    client.goto(back.as_str()).await.expect("go back");
    cookies
        .into_iter()
        .find(|c| c.name() == "portcullis_refresh")
        .map(|c| {
            let attrs = json!({
                "http_only": c.http_only(),
                "secure": c.secure(),
                "same_site": c.same_site().map(|s| s.to_string()),
                "path": c.path(),
            });
            (c.value().to_string(), attrs)
        })
}

async fn refresh_cookie_flow(client: Client, app: &TestApp, foreign_origin: &str) {
    let email = unique_email("browser");
    app.register(&email, PASSWORD).await;

    // A page of the app's own origin logs in with credentials included.
    client.goto(&app.url("/app")).await.expect("open the app");
    let login = page_fetch(
        &client,
        &format!("{PREFIX}/login/json"),
        json!({
            "method": "POST",
            "credentials": "include",
            "headers": { "Content-Type": "application/json" },
            "body": serde_json::to_string(&json!({"email": email, "password": PASSWORD})).unwrap(),
        }),
    )
    .await;
    assert_eq!(login["status"], 200, "{login}");
    let first = login["body"]["data"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    // The browser keeps the cookie, as HttpOnly, Secure and SameSite=Strict
    // on the auth path; scripts cannot read it.
    let (value, attrs) = browser_cookie(&client, app)
        .await
        .unwrap_or_else(|| panic!("the browser kept no refresh cookie ({login})"));
    assert_eq!(value, first);
    assert_eq!(
        attrs,
        json!({"http_only": true, "secure": true, "same_site": "Strict", "path": PREFIX})
    );
    assert!(
        !login["cookie"]
            .as_str()
            .unwrap()
            .contains("portcullis_refresh"),
        "{login}"
    );

    // A reload, and the cookie alone refreshes: no body, no token in the script.
    client.refresh().await.expect("reload");
    let script_sees = client
        .execute("return document.cookie", vec![])
        .await
        .unwrap();
    assert!(!script_sees.as_str().unwrap_or_default().contains(&first));
    let refreshed = page_fetch(
        &client,
        &format!("{PREFIX}/refresh"),
        json!({ "method": "POST", "credentials": "include" }),
    )
    .await;
    assert_eq!(refreshed["status"], 200, "{refreshed}");
    let access = refreshed["body"]["data"]["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let second = refreshed["body"]["data"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(second, first);
    assert_eq!(
        browser_cookie(&client, app).await.unwrap().0,
        second,
        "the cookie rotated"
    );
    let me = page_fetch(
        &client,
        &format!("{PREFIX}/me"),
        json!({ "headers": { "Authorization": format!("Bearer {access}") } }),
    )
    .await;
    assert_eq!(me["status"], 200, "{me}");
    assert_eq!(me["body"]["data"]["email"], email.as_str());

    // A page of another origin (another port of the same host: the browser
    // sends it the cookie, SameSite=Strict notwithstanding) cannot refresh.
    client
        .goto(&format!("{foreign_origin}/foreign"))
        .await
        .expect("open the foreign page");
    let refresh_url = app.auth_url("/refresh");
    let cors = page_fetch(
        &client,
        &refresh_url,
        json!({ "method": "POST", "credentials": "include" }),
    )
    .await;
    assert!(
        cors["error"].is_string(),
        "the foreign page read an answer: {cors}"
    );
    let blind = page_fetch(
        &client,
        &refresh_url,
        json!({ "method": "POST", "credentials": "include", "mode": "no-cors" }),
    )
    .await;
    assert_eq!(
        blind["type"], "opaque",
        "the request reached the server: {blind}"
    );
    assert!(
        !blind["cookie"]
            .as_str()
            .unwrap()
            .contains("portcullis_refresh")
    );
    let (value, _) = browser_cookie(&client, app)
        .await
        .expect("the cookie is still there");
    assert_eq!(value, second, "a foreign page rotated the cookie");

    // Back on the app: the cookie still refreshes (the grace is off, so a
    // token spent by the foreign page would have revoked the session).
    client.goto(&app.url("/app")).await.expect("open the app");
    let again = page_fetch(
        &client,
        &format!("{PREFIX}/refresh"),
        json!({ "method": "POST", "credentials": "include" }),
    )
    .await;
    assert_eq!(again["status"], 200, "{again}");
    let third = again["body"]["data"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();

    // Logout clears it.
    let access = again["body"]["data"]["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let logout = page_fetch(
        &client,
        &format!("{PREFIX}/logout"),
        json!({
            "method": "POST",
            "credentials": "include",
            "headers": { "Authorization": format!("Bearer {access}") },
        }),
    )
    .await;
    assert_eq!(logout["status"], 200, "{logout}");
    assert!(
        browser_cookie(&client, app).await.is_none(),
        "logout left the cookie"
    );
    let after = page_fetch(
        &client,
        &format!("{PREFIX}/refresh"),
        json!({ "method": "POST", "credentials": "include" }),
    )
    .await;
    assert_eq!(after["status"], 422, "no cookie, no token: {after}");
    // The token itself is dead too.
    app.refresh(&third)
        .await
        .expect_error(reqwest::StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");
}

both_backends!(
    #[cfg_attr(skip_browser, ignore = "PORTCULLIS_SKIP_BROWSER is set")]
    refresh_cookie_in_a_real_browser,
    |backend: Backend| async move {
        let app = TestApp::builder(backend)
            .vars(&[
                ("REFRESH_COOKIE", "true"),
                ("REFRESH_REUSE_GRACE_SECONDS", "0"),
            ])
            .routes(axum::Router::new().route("/app", get(|| async { Html(APP_PAGE) })))
            .spawn()
            .await;
        // The other origin: the same host, another port.
        let foreign = axum::Router::new().route("/foreign", get(|| async { Html(APP_PAGE) }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let foreign_origin = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, foreign).await.unwrap() });

        let profile = tempfile::tempdir().expect("temporary directory");
        let (driver, client) = browser(profile.path()).await;
        run_then_close(driver, client.clone(), async {
            refresh_cookie_flow(client.clone(), &app, &foreign_origin).await;
        })
        .await;
    }
);
