//! The README's passkey snippet ("Passkeys", "From a page"), exactly as
//! written there, in a real headless Chromium with a WebDriver virtual
//! authenticator, on SQLite and PostgreSQL: a password sign-in, registering
//! a passkey, logging out, signing in with the passkey (with the e-mail and
//! without: discoverable), and the tokens that gives; and that the same
//! snippet fails where it must (a wrong password, an RP id the page's origin
//! cannot use, an origin the server does not accept, an altered snippet).
//!
//! Needs `chromium` and `chromedriver` (see `tests/browser.rs`); built with
//! `PORTCULLIS_SKIP_BROWSER=1` the test is marked ignored. A screenshot of
//! the page after the sign-ins is written to `/tmp/portcullis-passkeys.png`.
//!
//! WebAuthn needs a secure context and a relying party the origin may use:
//! the servers here are named `localhost` (`http://localhost` is secure, an
//! IP address is no RP id), with `WEBAUTHN_RP_ID=localhost` and `APP_URL`
//! (so the accepted origin) `http://localhost:<port>`.

mod browser_support;
#[macro_use]
mod common;

use axum::response::Html;
use axum::routing::get;
use browser_support::{
    SessionCommand, add_authenticator, browser, run_then_close, write_screenshot,
};
use common::{Backend, OTHER_PASSWORD, PASSWORD, TestApp, jwt_parts, unique_email};
use fantoccini::Client;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SCREENSHOT: &str = "/tmp/portcullis-passkeys.png";

/// The line of README.md right before the snippet's code block.
const MARKER: &str = "<!-- passkey-snippet:";

/// The front end's page. The test server serves it itself, at `/app`, so it
/// is of the API's origin (the origin `WEBAUTHN_ORIGINS` accepts) and has no
/// Content-Security-Policy. The server's own pages would not do:
/// `/reset-password` and `/verify-email` send `default-src 'none'`, which
/// forbids `fetch()` to the API (the sign-in page of the next issue will be
/// the real one). The driver logs each step into `#log`, for the screenshot.
const APP_PAGE: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
    <title>Passkeys</title></head><body><h1>Passkeys</h1><pre id=\"log\"></pre></body></html>";

/// Appended to the snippet: runs one step (`arguments[0]`) with its input
/// (`arguments[1]`) through the snippet's functions, logs it into the page,
/// and answers `{ok: data}` or `{error: {name, code, status, message}}`.
const DRIVER: &str = r#"
const done = arguments[arguments.length - 1];
const [step, input] = arguments;
const log = (line) => { document.getElementById("log").textContent += line + "\n"; };
const claims = (jwt) => JSON.parse(atob(jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
const steps = {
  login: () => api("/login/json", { email: input.email, password: input.password }),
  register: () => registerPasskey(input.access, input.password, input.name),
  logout: () => api("/logout", {}, input.access),
  signIn: () => signInWithPasskey(input.email),
};
steps[step]().then(
  (data) => {
    const token = data && data.access_token ? claims(data.access_token) : null;
    const who = input.email ? ` ${input.email}` : step === "signIn" ? " (no e-mail: discoverable)" : "";
    log(`${step}${who}: ok` +
      (token ? ` (amr ${JSON.stringify(token.amr)}, aal ${token.aal})` : ""));
    done({ ok: data });
  },
  (e) => {
    log(`${step}: ${e.name} ${e.code ?? ""} ${e.message}`);
    done({ error: { name: e.name, code: e.code ?? null, status: e.status ?? null, message: String(e.message) } });
  },
);
"#;

/// The README's marked code block, read now (not at build time), so that
/// the test runs what the README says today.
fn readme_snippet() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = std::fs::read_to_string(path).expect("read README.md");
    let after = readme
        .split_once(MARKER)
        .expect("README.md has the passkey snippet's marker")
        .1;
    let block = after
        .split_once('\n')
        .expect("a line after the marker")
        .1
        .strip_prefix("```js\n")
        .expect("a ```js block right after the marker");
    block
        .split_once("\n```")
        .expect("the ```js block is closed")
        .0
        .to_string()
}

/// Runs `step` of [`DRIVER`] with `snippet` in the current page.
async fn run(client: &Client, snippet: &str, step: &str, input: Value) -> Result<Value, Value> {
    let answer = client
        .execute_async(&format!("{snippet}\n{DRIVER}"), vec![json!(step), input])
        .await
        .unwrap_or_else(|e| panic!("the page could not run {step}: {e}"));
    match answer.get("ok") {
        Some(data) => Ok(data.clone()),
        None => Err(answer["error"].clone()),
    }
}

/// The credentials the virtual authenticator `id` holds.
async fn authenticator_credentials(client: &Client, id: &str) -> Vec<Value> {
    let list = client
        .issue_cmd(SessionCommand {
            method: Method::GET,
            path: format!("webauthn/authenticator/{id}/credentials"),
            body: None,
        })
        .await
        .expect("the authenticator's credentials");
    list.as_array().expect("a list of credentials").clone()
}

/// A server named `localhost` serving [`APP_PAGE`] at `/app`, with `vars`.
async fn spawn(backend: Backend, vars: &[(&str, &str)]) -> TestApp {
    TestApp::builder(backend)
        .localhost()
        .vars(vars)
        .routes(axum::Router::new().route("/app", get(|| async { Html(APP_PAGE) })))
        .spawn()
        .await
}

/// Opens `app`'s page, registers an account through the API and signs in
/// with its password through the snippet; the e-mail and access token.
async fn open_and_sign_in(client: &Client, snippet: &str, app: &TestApp) -> (String, String) {
    client.goto(&app.url("/app")).await.expect("open the page");
    assert_eq!(
        client
            .current_url()
            .await
            .expect("URL")
            .origin()
            .ascii_serialization(),
        app.base_url,
        "the page is not of the server's origin"
    );
    let email = unique_email("browser-pk");
    app.register(&email, PASSWORD).await;
    let input = json!({"email": email, "password": PASSWORD});
    let pair = run(client, snippet, "login", input)
        .await
        .unwrap_or_else(|e| panic!("password sign-in: {e}"));
    let access = pair["access_token"].as_str().expect("access_token");
    (email, access.to_string())
}

/// The `amr` and `aal` of a token pair's access token.
fn amr_aal(pair: &Value) -> (Value, Value) {
    let token = pair["access_token"].as_str().expect("access_token");
    let (_, claims) = jwt_parts(token);
    (claims["amr"].clone(), claims["aal"].clone())
}

async fn passkey_journey(client: &Client, backend: Backend, synced: bool) {
    let snippet = readme_snippet();
    let app = spawn(backend, &[("WEBAUTHN_RP_ID", "localhost")]).await;
    let authenticator = add_authenticator(client, synced).await;
    let (email, access) = open_and_sign_in(client, &snippet, &app).await;

    // A wrong password: the envelope's error reaches the caller.
    let input = json!({"access": access, "password": OTHER_PASSWORD, "name": "Laptop"});
    let refused = run(client, &snippet, "register", input).await.unwrap_err();
    assert_eq!(
        (&refused["code"], &refused["status"]),
        (&json!("INVALID_PASSWORD"), &json!(400)),
        "{refused}"
    );

    let input = json!({"access": access, "password": PASSWORD, "name": "Laptop"});
    let passkey = run(client, &snippet, "register", input)
        .await
        .unwrap_or_else(|e| panic!("registerPasskey: {e}"));
    assert_eq!(passkey["name"], "Laptop", "{passkey}");
    assert_eq!(passkey["backed_up"], synced, "{passkey}");
    // The browser made a discoverable credential for the RP id localhost.
    let held = authenticator_credentials(client, &authenticator).await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["rpId"], "localhost");
    assert_eq!(held[0]["isResidentCredential"], true);

    // Log out: the session is gone.
    run(client, &snippet, "logout", json!({"access": access}))
        .await
        .unwrap_or_else(|e| panic!("logout: {e}"));
    app.me(&access)
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");

    let factor = if synced { "swk" } else { "hwk" };
    let expected = (json!([factor, "user", "mfa"]), json!("aal2"));
    // With the e-mail, then without one (discoverable).
    for input in [json!({"email": email}), json!({})] {
        let pair = run(client, &snippet, "signIn", input.clone())
            .await
            .unwrap_or_else(|e| panic!("signInWithPasskey({input}): {e}"));
        assert_eq!(amr_aal(&pair), expected, "{input}");
        assert!(pair["refresh_token"].is_string(), "{pair}");
        let me = app.me(pair["access_token"].as_str().unwrap()).await;
        assert_eq!(me.expect_ok(StatusCode::OK)["email"], email.as_str());
    }
    // Another account's e-mail (without passkeys): the options list none of
    // this device's credentials, so the browser finds nothing to sign with.
    let stranger = unique_email("browser-pk-other");
    app.register(&stranger, PASSWORD).await;
    let refused = run(client, &snippet, "signIn", json!({"email": stranger}))
        .await
        .unwrap_err();
    assert_eq!(refused["name"], "NotAllowedError", "{refused}");
    if backend == Backend::Sqlite {
        let png = client.screenshot().await.expect("screenshot");
        write_screenshot(SCREENSHOT, &png);
    }

    // The same snippet, altered (the options object instead of its
    // `publicKey`): it fails, so what runs above is the README's text.
    let altered = snippet.replace(
        "parseRequestOptionsFromJSON(options.publicKey)",
        "parseRequestOptionsFromJSON(options)",
    );
    assert_ne!(altered, snippet, "the snippet no longer has that call");
    let failed = run(client, &altered, "signIn", json!({"email": email}))
        .await
        .unwrap_err();
    assert_eq!(failed["name"], "TypeError", "{failed}");
}

/// A server whose relying party the page's origin may not use: the browser
/// refuses before the authenticator is asked. (The server insists that its
/// origins lie under its RP id, so it gets one that does.)
async fn foreign_rp_id(client: &Client, backend: Backend) {
    let snippet = readme_snippet();
    let vars = [
        ("WEBAUTHN_RP_ID", "example.com"),
        ("WEBAUTHN_ORIGINS", "https://example.com"),
    ];
    let app = spawn(backend, &vars).await;
    let (_, access) = open_and_sign_in(client, &snippet, &app).await;
    let input = json!({"access": access, "password": PASSWORD, "name": "Laptop"});
    let refused = run(client, &snippet, "register", input).await.unwrap_err();
    assert_eq!(refused["name"], "SecurityError", "{refused}");
}

/// A server that accepts another origin than the page's: the browser makes
/// the credential, the server refuses it, and the snippet throws its code.
async fn foreign_origin(client: &Client, backend: Backend) {
    let snippet = readme_snippet();
    let vars = [
        ("WEBAUTHN_RP_ID", "localhost"),
        ("WEBAUTHN_ORIGINS", "http://localhost:1"),
    ];
    let app = spawn(backend, &vars).await;
    let (_, access) = open_and_sign_in(client, &snippet, &app).await;
    let input = json!({"access": access, "password": PASSWORD, "name": "Laptop"});
    let refused = run(client, &snippet, "register", input).await.unwrap_err();
    assert_eq!(
        (&refused["code"], &refused["status"]),
        (&json!("INVALID_PASSKEY"), &json!(400)),
        "{refused}"
    );
}

both_backends!(
    #[cfg_attr(skip_browser, ignore = "PORTCULLIS_SKIP_BROWSER is set")]
    readme_passkey_snippet_in_a_real_browser,
    |backend: Backend| async move {
        let profile = tempfile::tempdir().expect("temporary directory");
        let (driver, client) = browser(profile.path()).await;
        // SQLite's authenticator is a device-bound one (amr hwk),
        // PostgreSQL's a synced one (swk, backed up).
        let synced = backend == Backend::Postgres;
        run_then_close(driver, client.clone(), async {
            passkey_journey(&client, backend, synced).await;
            foreign_rp_id(&client, backend).await;
            foreign_origin(&client, backend).await;
        })
        .await;
    }
);
