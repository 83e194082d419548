//! The pages of SPEC §12 as a person uses them, in a real headless Chromium
//! (chromedriver and WebDriver), on SQLite and PostgreSQL: sign up, land on
//! the account, sign out, a wrong password (the alert next to the field),
//! the right one, back on the account; a TOTP user's second step (a wrong
//! code, then a recovery code); no token in `localStorage`,
//! `sessionStorage` or `document.cookie` at any point. Screenshots of
//! `/sign-in`, `/sign-up` and `/account`, light and dark, and of `/sign-in`
//! on a phone, go to `target/screenshots/`.
//!
//! Passkeys, with a WebDriver virtual authenticator on a server named
//! `localhost` (`WEBAUTHN_RP_ID=localhost`): added on `/account` (a wrong
//! password first), renamed, used by "Sign in with a passkey" (the token's
//! `amr` says `hwk`), removed (then refused); a TOTP user passes the second
//! step with a passkey. Screenshot: `account-passkeys`.
//!
//! Needs `chromium` and `chromedriver` (see tests/browser.rs); built with
//! `PORTCULLIS_SKIP_BROWSER=1` the tests are marked ignored.

mod browser_support;
#[macro_use]
mod common;

use browser_support::page::{click, fill, js, screenshot, wait_for_heading, wait_until};
use browser_support::{
    SessionCommand, add_authenticator, browser_phone, browser_with, run_then_close,
};
use common::{Backend, OTHER_PASSWORD, PASSWORD, TestApp, enroll_totp, unique_email};
use fantoccini::Client;
use reqwest::Method;
use serde_json::{Value, json};

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

/// The `amr` and `aal` of the page's session: a `/refresh` from inside the
/// page (the refresh cookie), the access token read there and dropped.
async fn session_claims(client: &Client) -> Value {
    client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(document.body.dataset.prefix + '/refresh',
                   { method: 'POST', credentials: 'same-origin', headers: { Accept: 'application/json' } })
               .then((r) => r.json())
               .then((answer) => {
                 const part = answer.data.access_token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
                 const claims = JSON.parse(atob(part));
                 done({ amr: claims.amr, aal: claims.aal });
               }, (e) => done({ error: String(e) }));",
            vec![],
        )
        .await
        .expect("refresh inside the page")
}

/// The names the account's passkey list shows, in order.
async fn passkey_names(client: &Client) -> Value {
    js(
        client,
        "return [...document.querySelectorAll('#passkey-list .passkey-name')].map((e) => e.textContent);",
    )
    .await
}

async fn wait_for_account(client: &Client, email: &str) {
    wait_for_heading(client, "Your account").await;
    wait_until(
        client,
        &format!(
            "document.querySelector('[data-field=email]').textContent === {} && \
             (document.querySelector('#passkey-list li') || !document.getElementById('passkeys-empty').hidden)",
            json!(email)
        ),
        "the account and its passkeys",
    )
    .await;
}

/// Adds a passkey named `name` on `/account` (the page is open).
async fn add_passkey(client: &Client, name: &str) {
    let before = passkey_names(client).await.as_array().map_or(0, Vec::len);
    fill(client, "#passkey_name", name).await;
    fill(client, "#passkey_password", PASSWORD).await;
    click(client, "#passkey-add-form button[type=submit]").await;
    wait_until(
        client,
        &format!(
            "document.querySelectorAll('#passkey-list li').length === {}",
            before + 1
        ),
        "the new passkey in the list",
    )
    .await;
}

/// Signs up, adds a passkey on /account (a wrong password first), renames
/// it, signs out, signs in with it, removes it; then it is refused.
async fn passkey_journey(client: &Client, app: &TestApp) {
    let email = unique_email("pages-pk");
    client
        .goto(&app.url("/sign-up"))
        .await
        .expect("open /sign-up");
    wait_for_heading(client, "Create an account").await;
    fill(client, "#email", &email).await;
    fill(client, "#password", PASSWORD).await;
    click(client, "#sign-up-form button[type=submit]").await;
    wait_for_account(client, &email).await;
    assert_eq!(passkey_names(client).await, json!([]));

    // A wrong password: its alert next to the field, no passkey made.
    fill(client, "#passkey_name", "Laptop").await;
    fill(client, "#passkey_password", OTHER_PASSWORD).await;
    click(client, "#passkey-add-form button[type=submit]").await;
    wait_until(
        client,
        "!document.getElementById('passkey_password-error').hidden",
        "the add form's password error",
    )
    .await;
    let alert = js(
        client,
        "const e = document.getElementById('passkey_password-error');
         return { role: e.getAttribute('role'), text: e.textContent, focused: document.activeElement.id };",
    )
    .await;
    assert_eq!(
        alert,
        json!({"role": "alert", "text": "This password is wrong.", "focused": "passkey_password"})
    );
    assert_eq!(passkey_names(client).await, json!([]));

    // The right one: listed, with its dates.
    fill(client, "#passkey_password", PASSWORD).await;
    click(client, "#passkey-add-form button[type=submit]").await;
    wait_until(
        client,
        "document.querySelectorAll('#passkey-list li').length === 1",
        "the passkey in the list",
    )
    .await;
    assert_eq!(passkey_names(client).await, json!(["Laptop"]));
    let listed = js(
        client,
        "return { meta: document.querySelector('#passkey-list .passkey-meta').textContent,
                  status: document.getElementById('passkeys-status').textContent,
                  empty: document.getElementById('passkeys-empty').hidden,
                  password: document.getElementById('passkey_password').value };",
    )
    .await;
    assert!(
        listed["meta"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Added ")
            && listed["meta"]
                .as_str()
                .unwrap_or_default()
                .ends_with("never used"),
        "{listed}"
    );
    assert_eq!(
        listed["status"],
        "The passkey \u{201c}Laptop\u{201d} was added."
    );
    assert_eq!(listed["empty"], true, "{listed}");
    assert_eq!(
        listed["password"], "",
        "the password stays in the form: {listed}"
    );
    expect_no_token_in_reach(client, PASSWORD).await;

    // Rename it.
    click(client, "#passkey-list [data-action=rename]").await;
    fill(client, "#passkey_new_name", "Work laptop").await;
    click(client, "#passkey-rename-form button[type=submit]").await;
    wait_until(
        client,
        "document.querySelector('#passkey-list .passkey-name').textContent === 'Work laptop'",
        "the new name",
    )
    .await;
    js(
        client,
        "document.getElementById('passkeys').scrollIntoView(); return null;",
    )
    .await;
    screenshot(&client.screenshot().await.unwrap(), "account-passkeys");

    // Sign out, then in with the passkey (no e-mail: discoverable), by
    // the autofill (conditional mediation, started on load of /sign-in):
    // the virtual authenticator answers it at once, as a person picking the
    // passkey, so /sign-in goes by fast. `window.before` marks the old page.
    js(client, "window.before = true; return null;").await;
    click(client, "#sign-out").await;
    wait_until(
        client,
        "!window.before && location.pathname === '/account'",
        "back on /account by the autofill",
    )
    .await;
    wait_for_account(client, &email).await;
    let claims = session_claims(client).await;
    assert_eq!(
        claims,
        json!({"amr": ["hwk", "user", "mfa"], "aal": "aal2"})
    );
    expect_no_token_in_reach(client, PASSWORD).await;

    // The button: from now on the autofill waits (as it does for a person
    // who does not pick), and the button must abort it first.
    hold_autofill(client).await;
    click(client, "#sign-out").await;
    wait_for_heading(client, "Sign in").await;
    wait_until(
        client,
        "window.autofill && window.autofill[0] === 'pending'",
        "the autofill request started on load",
    )
    .await;
    click(client, "#passkey-sign-in").await;
    wait_for_account(client, &email).await;
    let claims = session_claims(client).await;
    assert_eq!(
        claims,
        json!({"amr": ["hwk", "user", "mfa"], "aal": "aal2"})
    );
    expect_no_token_in_reach(client, PASSWORD).await;
    let meta = js(
        client,
        "return document.querySelector('#passkey-list .passkey-meta').textContent;",
    )
    .await;
    assert!(
        meta.as_str().unwrap_or_default().contains("last used"),
        "{meta}"
    );

    // Remove it: a wrong password first.
    click(client, "#passkey-list [data-action=remove]").await;
    fill(client, "#passkey_remove_password", OTHER_PASSWORD).await;
    click(client, "#passkey-remove-form button[type=submit]").await;
    wait_until(
        client,
        "!document.getElementById('passkey_remove_password-error').hidden",
        "the remove form's password error",
    )
    .await;
    screenshot(
        &client.screenshot().await.unwrap(),
        "account-passkey-remove",
    );
    assert_eq!(passkey_names(client).await, json!(["Work laptop"]));
    fill(client, "#passkey_remove_password", PASSWORD).await;
    click(client, "#passkey-remove-form button[type=submit]").await;
    wait_until(
        client,
        "!document.getElementById('passkeys-empty').hidden",
        "the list without the passkey",
    )
    .await;
    assert_eq!(passkey_names(client).await, json!([]));

    // The authenticator still holds it; the server refuses it.
    click(client, "#sign-out").await;
    wait_for_heading(client, "Sign in").await;
    wait_until(
        client,
        "!document.getElementById('passkey-slot').hidden",
        "the passkey button",
    )
    .await;
    click(client, "#passkey-sign-in").await;
    wait_until(
        client,
        "!document.getElementById('passkey-error').hidden",
        "the passkey's error",
    )
    .await;
    let refused = js(
        client,
        "const e = document.getElementById('passkey-error');
         return { role: e.getAttribute('role'), text: e.textContent, path: location.pathname };",
    )
    .await;
    assert_eq!(
        refused,
        json!({"role": "alert", "text": "This passkey could not be used.", "path": "/sign-in"})
    );

    // The person cancels: a gentle word, not an error.
    js(client, "window.cancelNext = true; return null;").await;
    click(client, "#passkey-sign-in").await;
    wait_until(
        client,
        "!document.getElementById('passkey-notice').hidden",
        "the cancelled notice",
    )
    .await;
    let cancelled = js(
        client,
        "return { notice: document.getElementById('passkey-notice').textContent,
                  error: document.getElementById('passkey-error').hidden };",
    )
    .await;
    screenshot(&client.screenshot().await.unwrap(), "sign-in-passkey");
    assert_eq!(
        cancelled,
        json!({"notice": "The passkey request was cancelled or timed out. You can try again, or use your password.", "error": true})
    );
}

/// From the next page on, `navigator.credentials.get` holds conditional
/// requests (recorded in `window.autofill`: pending, then aborted) instead
/// of letting the virtual authenticator answer them, refuses a modal one
/// while a conditional one is pending (as browsers refuse a second request),
/// and answers NotAllowedError (the person cancelled) once after
/// `window.cancelNext = true`.
async fn hold_autofill(client: &Client) {
    let source = "(() => {
      const real = navigator.credentials.get.bind(navigator.credentials);
      window.autofill = [];
      navigator.credentials.get = (options) => {
        if (options && options.mediation === 'conditional') {
          const i = window.autofill.push('pending') - 1;
          return new Promise((_, reject) => {
            options.signal.addEventListener('abort', () => {
              window.autofill[i] = 'aborted';
              reject(new DOMException('aborted', 'AbortError'));
            });
          });
        }
        if (window.autofill.includes('pending')) {
          return Promise.reject(new DOMException('A request is already pending.', 'NotAllowedError'));
        }
        if (window.cancelNext) {
          window.cancelNext = false;
          return Promise.reject(new DOMException('cancelled', 'NotAllowedError'));
        }
        return real(options);
      };
    })();";
    client
        .issue_cmd(SessionCommand {
            method: Method::POST,
            path: "goog/cdp/execute".into(),
            body: Some(json!({
                "cmd": "Page.addScriptToEvaluateOnNewDocument",
                "params": {"source": source},
            })),
        })
        .await
        .expect("install the autofill stand-in");
}

/// A TOTP user adds a passkey (after a second step with a recovery code),
/// then passes the second step with it.
async fn passkey_second_step(client: &Client, app: &TestApp) {
    let enrolled = enroll_totp(app, "pages-pk-totp").await;
    let email = enrolled.session.email.clone();
    client
        .goto(&app.url("/sign-in"))
        .await
        .expect("open /sign-in");
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
    // No passkey yet: no passkey choice.
    assert_eq!(
        js(
            client,
            "return document.getElementById('second-step-passkey').hidden;"
        )
        .await,
        true
    );
    fill(client, "#code", &enrolled.recovery[0]).await;
    click(client, "#second-step-form button[type=submit]").await;
    wait_for_account(client, &email).await;
    add_passkey(client, "Phone").await;
    click(client, "#sign-out").await;
    wait_for_heading(client, "Sign in").await;

    fill(client, "#email", &email).await;
    fill(client, "#password", PASSWORD).await;
    click(client, "#sign-in-form button[type=submit]").await;
    wait_until(
        client,
        "!document.getElementById('second-step-form').hidden && !document.getElementById('second-step-passkey').hidden",
        "the second step's passkey choice",
    )
    .await;
    screenshot(
        &client.screenshot().await.unwrap(),
        "sign-in-second-step-passkey",
    );
    click(client, "#use-passkey").await;
    wait_for_account(client, &email).await;
    assert_eq!(
        session_claims(client).await,
        json!({"amr": ["pwd", "hwk", "mfa"], "aal": "aal2"})
    );
    expect_no_token_in_reach(client, PASSWORD).await;
}

both_backends!(
    #[cfg_attr(skip_browser, ignore = "PORTCULLIS_SKIP_BROWSER is set")]
    passkeys_on_the_pages_in_a_real_browser,
    |backend: Backend| async move {
        let app = TestApp::builder(backend)
            .localhost()
            .vars(&[("PAGES_ENABLED", "true"), ("WEBAUTHN_RP_ID", "localhost")])
            .spawn()
            .await;
        let profile = tempfile::tempdir().expect("temporary directory");
        let (driver, client) = browser_with(profile.path(), (1000, 1100), &[]).await;
        run_then_close(driver, client.clone(), async {
            add_authenticator(&client, false).await;
            passkey_journey(&client, &app).await;
            passkey_second_step(&client, &app).await;
        })
        .await;
    }
);
