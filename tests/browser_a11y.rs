//! Accessibility of the pages of SPEC §12 ("For people"), in a real headless
//! Chromium, on SQLite and PostgreSQL.
//!
//! axe-core (`PORTCULLIS_AXE_JS`, its `axe.min.js`; `scripts/test` installs
//! the version pinned in `tests/axe/package-lock.json`) runs on every page,
//! in the light and the dark scheme: `/sign-in`, `/sign-up`,
//! `/forgot-password`, `/reset-password`, `/verify-email`, `/sign-in` with
//! its error shown, the second step, and `/account` (signed in through the
//! page). A violation of impact "serious" or "critical" fails the test; the
//! others are printed.
//!
//! Keyboard only: Tab to the e-mail field, type, Tab, type the password,
//! Enter lands on `/account`; each focused field is visibly outlined.
//!
//! Needs `chromium` and `chromedriver` (see tests/browser.rs); built with
//! `PORTCULLIS_SKIP_BROWSER=1` the tests are marked ignored.

mod browser_support;
#[macro_use]
mod common;

use std::path::PathBuf;

use browser_support::page::{click, fill, js, wait_until};
use browser_support::{SessionCommand, browser_with, run_then_close};
use common::{PASSWORD, TestApp, enroll_totp, unique_email};
use fantoccini::Client;
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use reqwest::Method;
use serde_json::{Value, json};

/// Where axe-core is when `PORTCULLIS_AXE_JS` is not set: where
/// `scripts/test` installs it.
const AXE_DEFAULT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/target/test-axe/node_modules/axe-core/axe.min.js"
);

/// What to do when axe-core is missing.
const AXE_HINT: &str = "run the tests with `scripts/test`, which installs axe-core (the version \
     of tests/axe/package-lock.json, with `npm ci`) under target/test-axe and points \
     PORTCULLIS_AXE_JS at its axe.min.js; or install it yourself: `npm ci --prefix DIR` with \
     tests/axe/package*.json copied to DIR, then PORTCULLIS_AXE_JS=DIR/node_modules/axe-core/axe.min.js";

/// The source of axe-core's `axe.min.js`; panics with [`AXE_HINT`] when it
/// is missing.
fn axe_source() -> String {
    let path = std::env::var_os("PORTCULLIS_AXE_JS")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(AXE_DEFAULT));
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read axe-core at {}: {e}; {AXE_HINT}",
            path.display()
        )
    })
}

/// Opens `path` and waits until its script has run and an `h1` shows.
async fn open(client: &Client, app: &TestApp, path: &str) {
    client.goto(&app.url(path)).await.expect("open the page");
    wait_until(
        client,
        "document.readyState === 'complete' && document.querySelector('h1')",
        &format!("{path} loaded"),
    )
    .await;
}

/// Emulates `prefers-color-scheme: scheme` in this tab (the Chrome DevTools
/// Protocol through chromedriver); it holds across navigations.
async fn set_scheme(client: &Client, scheme: &str) {
    client
        .issue_cmd(SessionCommand {
            method: Method::POST,
            path: "goog/cdp/execute".into(),
            body: Some(json!({
                "cmd": "Emulation.setEmulatedMedia",
                "params": { "features": [{ "name": "prefers-color-scheme", "value": scheme }] },
            })),
        })
        .await
        .expect("emulate the colour scheme");
}

/// Runs axe-core on the page as it is now; the violations of impact
/// "serious" or "critical", each as one line (the others are printed).
async fn axe(client: &Client, axe_js: &str, what: &str, scheme: &str) -> Vec<String> {
    // A script injected over WebDriver is not subject to the page's CSP.
    if js(client, "return typeof window.axe;").await != json!("object") {
        js(client, axe_js).await;
    }
    let dark = js(
        client,
        "return matchMedia('(prefers-color-scheme: dark)').matches;",
    )
    .await;
    assert_eq!(
        dark,
        json!(scheme == "dark"),
        "{what}: not in the {scheme} scheme"
    );
    let result = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, { resultTypes: ['violations'] })
               .then(r => done({ ok: r.violations.map(v => ({
                   id: v.id, impact: v.impact, help: v.help,
                   nodes: v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary) })) }))
               .catch(e => done({ error: String(e) }));",
            vec![],
        )
        .await
        .unwrap_or_else(|e| panic!("{what}: axe.run failed: {e}"));
    let violations = result["ok"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: axe.run failed: {result}"));
    let mut serious = Vec::new();
    for v in violations {
        let line = format!(
            "{what} ({scheme}): [{}] {} — {}: {}",
            v["impact"].as_str().unwrap_or("?"),
            v["id"].as_str().unwrap_or("?"),
            v["help"].as_str().unwrap_or("?"),
            v["nodes"]
        );
        if matches!(v["impact"].as_str(), Some("serious" | "critical")) {
            serious.push(line);
        } else {
            eprintln!("axe, not failing: {line}");
        }
    }
    serious
}

/// Every page in `scheme`, through axe-core; the serious and critical
/// violations found.
async fn every_page(client: &Client, app: &TestApp, axe_js: &str, scheme: &str) -> Vec<String> {
    set_scheme(client, scheme).await;
    let mut found = Vec::new();
    for path in [
        "/sign-in",
        "/sign-up",
        "/forgot-password",
        "/reset-password?token=x",
        "/verify-email?token=x",
    ] {
        open(client, app, path).await;
        found.extend(axe(client, axe_js, path, scheme).await);
    }

    // Sign-in with its error shown.
    let user = app.register(&unique_email("a11y"), PASSWORD).await;
    open(client, app, "/sign-in").await;
    fill(client, "#email", &user.email).await;
    fill(client, "#password", "Not-The-Password-9").await;
    click(client, "#sign-in-form button[type=submit]").await;
    wait_until(
        client,
        "!document.getElementById('password-error').hidden",
        "the password's error",
    )
    .await;
    found.extend(axe(client, axe_js, "/sign-in with an error", scheme).await);

    // The second step of a TOTP user.
    let enrolled = enroll_totp(app, "a11y-totp").await;
    open(client, app, "/sign-in").await;
    fill(client, "#email", &enrolled.session.email).await;
    fill(client, "#password", PASSWORD).await;
    click(client, "#sign-in-form button[type=submit]").await;
    wait_until(
        client,
        "!document.getElementById('second-step-form').hidden",
        "the second step",
    )
    .await;
    found.extend(axe(client, axe_js, "/sign-in, the second step", scheme).await);

    // The account, signed in through the page; then signed out again.
    open(client, app, "/sign-in").await;
    fill(client, "#email", &user.email).await;
    fill(client, "#password", PASSWORD).await;
    click(client, "#sign-in-form button[type=submit]").await;
    wait_until(
        client,
        &format!(
            "location.pathname === '/account' && document.querySelector('[data-field=email]') \
             && document.querySelector('[data-field=email]').textContent === {}",
            json!(user.email)
        ),
        "the account",
    )
    .await;
    found.extend(axe(client, axe_js, "/account", scheme).await);
    click(client, "#sign-out").await;
    wait_until(
        client,
        "location.pathname === '/sign-in' && document.querySelector('h1')",
        "signed out",
    )
    .await;
    found
}

both_backends!(
    #[cfg_attr(skip_browser, ignore = "PORTCULLIS_SKIP_BROWSER is set")]
    axe_finds_nothing_serious_on_any_page_light_or_dark,
    |backend: Backend| async move {
        let axe_js = axe_source();
        let app = TestApp::builder(backend)
            .vars(&[("PAGES_ENABLED", "true")])
            .spawn()
            .await;
        let profile = tempfile::tempdir().expect("temporary directory");
        let (driver, client) = browser_with(profile.path(), (1000, 900), &[]).await;
        let found = run_then_close(driver, client.clone(), async {
            let mut found = every_page(&client, &app, &axe_js, "light").await;
            found.extend(every_page(&client, &app, &axe_js, "dark").await);
            found
        })
        .await;
        assert!(
            found.is_empty(),
            "axe-core found serious or critical violations:\n{}",
            found.join("\n")
        );
    }
);

/// Presses `keys` (characters, or [`Key`]s as `char`s) one after the other
/// on whatever has the focus.
async fn press(client: &Client, keys: &[char]) {
    let mut actions = KeyActions::new("keyboard".into());
    for &key in keys {
        actions = actions
            .then(KeyAction::Down { value: key })
            .then(KeyAction::Up { value: key });
    }
    client
        .perform_actions(actions)
        .await
        .expect("press the keys");
}

/// The focused element's id and whether it is visibly outlined.
async fn focused(client: &Client) -> Value {
    js(
        client,
        "const e = document.activeElement, s = getComputedStyle(e);
         return { id: e.id, outline: s.outlineStyle, width: parseFloat(s.outlineWidth),
                  color: s.outlineColor };",
    )
    .await
}

fn assert_outlined(state: &Value, id: &str) {
    assert_eq!(state["id"], id, "the focus is elsewhere: {state}");
    assert!(
        state["outline"] != "none"
            && state["width"].as_f64().unwrap_or(0.0) >= 2.0
            && state["color"] != "rgba(0, 0, 0, 0)",
        "the focused #{id} has no visible outline: {state}"
    );
}

both_backends!(
    #[cfg_attr(skip_browser, ignore = "PORTCULLIS_SKIP_BROWSER is set")]
    sign_in_with_the_keyboard_alone,
    |backend: Backend| async move {
        let app = TestApp::builder(backend)
            .vars(&[("PAGES_ENABLED", "true")])
            .spawn()
            .await;
        let user = app.register(&unique_email("a11y-keys"), PASSWORD).await;
        let profile = tempfile::tempdir().expect("temporary directory");
        let (driver, client) = browser_with(profile.path(), (1000, 900), &[]).await;
        run_then_close(driver, client.clone(), async {
            open(&client, &app, "/sign-in").await;
            // Nothing focused: the keyboard starts from the top of the page.
            js(&client, "document.activeElement && document.activeElement.blur(); return null;").await;
            let mut tabs = 0;
            loop {
                press(&client, &[Key::Tab.into()]).await;
                tabs += 1;
                if focused(&client).await["id"] == "email" {
                    break;
                }
                assert!(tabs < 10, "ten Tabs and the e-mail field has no focus");
            }
            assert_outlined(&focused(&client).await, "email");
            press(&client, &user.email.chars().collect::<Vec<_>>()).await;
            press(&client, &[Key::Tab.into()]).await;
            assert_outlined(&focused(&client).await, "password");
            press(&client, &PASSWORD.chars().collect::<Vec<_>>()).await;
            press(&client, &[Key::Enter.into()]).await;
            wait_until(
                &client,
                &format!(
                    "location.pathname === '/account' && document.querySelector('[data-field=email]') \
                     && document.querySelector('[data-field=email]').textContent === {}",
                    json!(user.email)
                ),
                "signed in with the keyboard",
            )
            .await;
        })
        .await;
    }
);
