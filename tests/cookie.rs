//! The refresh cookie (`REFRESH_COOKIE=true`, SPEC §2, §6) over HTTP, on
//! SQLite and on PostgreSQL: which answers set it and with which
//! attributes, `/refresh` with the cookie alone, the body token winning,
//! the cross-site refusal before any token is looked at, logout clearing
//! it, and nothing of it while the setting is off. `tests/browser.rs` has
//! a real Chromium use it.

#[macro_use]
mod common;

use std::collections::BTreeMap;

use common::*;
use reqwest::header::{CONTENT_TYPE, COOKIE, ORIGIN};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const COOKIE_NAME: &str = "portcullis_refresh";

/// One `Set-Cookie`: its value and its attributes (names lower-cased).
#[derive(Debug)]
struct SetCookie {
    value: String,
    attributes: BTreeMap<String, String>,
}

/// The refresh cookies a reply sets.
fn set_cookies(reply: &Reply) -> Vec<SetCookie> {
    reply
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ASCII Set-Cookie"))
        .filter_map(|line| {
            let mut parts = line.split(';');
            let (name, value) = parts.next()?.trim().split_once('=')?;
            (name == COOKIE_NAME).then(|| SetCookie {
                value: value.to_string(),
                attributes: parts
                    .map(|p| {
                        let (k, v) = p.trim().split_once('=').unwrap_or((p.trim(), ""));
                        (k.to_ascii_lowercase(), v.to_string())
                    })
                    .collect(),
            })
        })
        .collect()
}

/// The one refresh cookie `reply` sets, checked: `HttpOnly; Secure;
/// SameSite=Strict; Path=/api/auth` and a `Max-Age` within a few seconds of
/// `max_age`, carrying the refresh token of the body (`refresh`).
#[track_caller]
fn expect_refresh_cookie(reply: &Reply, refresh: &str, max_age: i64) -> String {
    let cookies = set_cookies(reply);
    assert_eq!(cookies.len(), 1, "one refresh cookie: {:?}", reply.headers);
    let cookie = &cookies[0];
    assert_eq!(cookie.value, refresh, "the cookie carries the body's token");
    let attrs = &cookie.attributes;
    assert!(attrs.contains_key("httponly"), "{attrs:?}");
    assert!(attrs.contains_key("secure"), "{attrs:?}");
    assert_eq!(attrs.get("samesite").map(String::as_str), Some("Strict"));
    assert_eq!(attrs.get("path").map(String::as_str), Some(PREFIX));
    let seconds: i64 = attrs["max-age"].parse().expect("Max-Age in seconds");
    assert!(
        (max_age - 5..=max_age).contains(&seconds),
        "Max-Age {seconds}, expected about {max_age}"
    );
    cookie.value.clone()
}

/// The cookie `reply` sets is the clearing one: empty, `Max-Age=0`, the
/// same path.
#[track_caller]
fn expect_cleared(reply: &Reply) {
    let cookies = set_cookies(reply);
    assert_eq!(cookies.len(), 1, "{:?}", reply.headers);
    assert_eq!(cookies[0].value, "");
    assert_eq!(cookies[0].attributes["max-age"], "0");
    assert_eq!(cookies[0].attributes["path"], PREFIX);
}

/// `POST /refresh` with `cookie` and no body.
async fn refresh_with_cookie(app: &TestApp, cookie: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = app
        .request(Method::POST, "/refresh")
        .header(COOKIE, format!("other=1; {COOKIE_NAME}={cookie}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    app.send(request).await
}

/// The refresh token of a token-pair answer.
fn refresh_of(data: &Value) -> String {
    data["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_string()
}

/// The session lifetime of the tests' servers, in days.
const DAYS: i64 = 2;

both_backends!(
    /// Register, both logins, `/token` (both grants) and `/refresh` set the
    /// refresh token as an `HttpOnly; Secure; SameSite=Strict` cookie on
    /// the auth path whose `Max-Age` is what is left of the session (here
    /// the absolute lifetime, 2 days, shorter than a refresh token's 7);
    /// `/refresh` then works with the cookie alone, a body token wins over
    /// the cookie, and logout clears it.
    the_refresh_cookie_follows_the_session,
    vars[
        ("REFRESH_COOKIE", "true"),
        ("SESSION_MAX_LIFETIME_DAYS", "2"),
        ("REFRESH_REUSE_GRACE_SECONDS", "0"),
    ],
    |app| async move {
        let lifetime = DAYS * 86_400;
        let email = unique_email("cookie");
        let registered = app.register_raw(&email, PASSWORD).await;
        let data = registered.expect_ok(StatusCode::CREATED).clone();
        expect_refresh_cookie(&registered, &refresh_of(&data), lifetime);

        let login = app.login_json(&email, PASSWORD).await;
        let data = login.expect_ok(StatusCode::OK).clone();
        expect_refresh_cookie(&login, &refresh_of(&data), lifetime);

        let form = app.login_form(&email, PASSWORD).await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.text());
        expect_refresh_cookie(&form, &refresh_of(&form.body["data"]), lifetime);

        let grant = [
            ("grant_type", "password"),
            ("username", email.as_str()),
            ("password", PASSWORD),
        ];
        let token = app.post_form("/token", &grant).await;
        assert_eq!(token.status, StatusCode::OK, "{}", token.text());
        let cookie = expect_refresh_cookie(&token, &refresh_of(&token.body), lifetime);
        let grant = app
            .post_form("/token", &[("grant_type", "refresh_token"), ("refresh_token", &cookie)])
            .await;
        assert_eq!(grant.status, StatusCode::OK, "{}", grant.text());
        let cookie = expect_refresh_cookie(&grant, &refresh_of(&grant.body), lifetime);

        // The cookie alone refreshes (no body, no Content-Type), and the
        // answer carries the next one.
        let refreshed = refresh_with_cookie(&app, &cookie, &[]).await;
        let data = refreshed.expect_ok(StatusCode::OK).clone();
        expect_token_pair(&data);
        let next = expect_refresh_cookie(&refreshed, &refresh_of(&data), lifetime);
        assert_ne!(next, cookie);
        app.me(data["access_token"].as_str().unwrap())
            .await
            .expect_ok(StatusCode::OK);
        // An empty JSON object counts as no token too.
        let refreshed = app
            .send(
                app.request(Method::POST, "/refresh")
                    .header(COOKIE, format!("{COOKIE_NAME}={next}"))
                    .json(&json!({})),
            )
            .await;
        let cookie = refresh_of(refreshed.expect_ok(StatusCode::OK));

        // A body token wins: a bad one in the body is refused even with a
        // good cookie, which stays unspent...
        let reply = app
            .send(
                app.request(Method::POST, "/refresh")
                    .header(COOKIE, format!("{COOKIE_NAME}={cookie}"))
                    .json(&json!({"refresh_token": "not-a-token"})),
            )
            .await;
        reply.expect_error(StatusCode::UNAUTHORIZED, "INVALID_TOKEN");
        assert!(set_cookies(&reply).is_empty(), "the cookie was not used");
        // ... and a good one in the body works beside a bad cookie.
        let reply = app
            .send(
                app.request(Method::POST, "/refresh")
                    .header(COOKIE, format!("{COOKIE_NAME}=not-a-token"))
                    .json(&json!({"refresh_token": cookie})),
            )
            .await;
        let data = reply.expect_ok(StatusCode::OK).clone();
        let cookie = expect_refresh_cookie(&reply, &refresh_of(&data), lifetime);
        let access = data["access_token"].as_str().unwrap().to_string();

        // Neither cookie nor body token: the field is named.
        app.send(app.request(Method::POST, "/refresh"))
            .await
            .expect_invalid_field("refresh_token");

        // Logout clears the cookie; the cookie of the revoked session is
        // refused, and cleared again.
        let logout = app.auth_post_empty("/logout", &access).await;
        logout.expect_ok(StatusCode::OK);
        expect_cleared(&logout);
        let refused = refresh_with_cookie(&app, &cookie, &[]).await;
        refused.expect_error(StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");
        expect_cleared(&refused);
    }
);

both_backends!(
    /// A request a page of another site makes (`Sec-Fetch-Site:
    /// cross-site`, or an `Origin` that is not the server's own: another
    /// host, another port, `null`) is refused 403 `FORBIDDEN` before any
    /// token is looked at: the cookie's token is not spent (the grace is off,
    /// so a spent one would revoke the session), and even a malformed body
    /// gets the 403. The same-origin request, an origin of `CORS_ORIGINS`
    /// and an API client sending neither header are served. The logins and
    /// registration refuse foreign pages too (they would plant a session).
    cross_site_requests_are_refused_before_any_token_is_looked_at,
    vars[
        ("REFRESH_COOKIE", "true"),
        ("REFRESH_REUSE_GRACE_SECONDS", "0"),
        ("CORS_ORIGINS", "https://app.example.com"),
    ],
    |app| async move {
        let email = unique_email("csrf");
        let registered = app.register_raw(&email, PASSWORD).await;
        let mut cookie = refresh_of(registered.expect_ok(StatusCode::CREATED));
        let own = app.base_url.clone();
        let other_port = {
            let (host, port) = own.rsplit_once(':').unwrap();
            format!("{host}:{}", port.parse::<u16>().unwrap() + 1)
        };
        let foreign: Vec<Vec<(&str, &str)>> = vec![
            vec![("origin", "https://evil.example")],
            vec![("origin", &other_port)],
            vec![("origin", "null")],
            vec![("sec-fetch-site", "cross-site")],
            vec![("origin", &own), ("sec-fetch-site", "cross-site")],
            vec![("origin", "https://evil.example"), ("sec-fetch-site", "same-site")],
        ];
        for headers in &foreign {
            let reply = refresh_with_cookie(&app, &cookie, headers).await;
            reply.expect_error(StatusCode::FORBIDDEN, "FORBIDDEN");
            assert!(set_cookies(&reply).is_empty(), "{headers:?}");
        }
        // Before the body, too.
        let mut malformed = app
            .request(Method::POST, "/refresh")
            .header(CONTENT_TYPE, "application/json")
            .header(COOKIE, format!("{COOKIE_NAME}={cookie}"))
            .body("{not json");
        malformed = malformed.header(ORIGIN, "https://evil.example");
        app.send(malformed)
            .await
            .expect_error(StatusCode::FORBIDDEN, "FORBIDDEN");

        // The cookie was never spent: the same-origin request refreshes with it.
        for headers in [
            vec![("origin", own.as_str()), ("sec-fetch-site", "same-origin")],
            vec![("origin", "https://app.example.com"), ("sec-fetch-site", "same-site")],
            vec![],
        ] {
            let reply = refresh_with_cookie(&app, &cookie, &headers).await;
            let data = reply.expect_ok(StatusCode::OK);
            cookie = refresh_of(data);
        }

        // Logins and registration from a foreign page.
        for (path, body) in [
            ("/login/json", json!({"email": email, "password": PASSWORD})),
            ("/register", json!({"email": unique_email("planted"), "password": PASSWORD})),
        ] {
            let reply = app
                .send(
                    app.request(Method::POST, path)
                        .header(ORIGIN, "https://evil.example")
                        .json(&body),
                )
                .await;
            reply.expect_error(StatusCode::FORBIDDEN, "FORBIDDEN");
            assert!(set_cookies(&reply).is_empty());
        }
        let reply = app
            .send(
                app.request(Method::POST, "/login")
                    .header("sec-fetch-site", "cross-site")
                    .form(&[("username", email.as_str()), ("password", PASSWORD)]),
            )
            .await;
        reply.expect_error(StatusCode::FORBIDDEN, "FORBIDDEN");
    }
);

both_backends!(
    /// With `REFRESH_COOKIE` off (the default) nothing of it happens: no
    /// refresh `Set-Cookie` (a sign-in sets only the device cookie), the cookie is not read (`/refresh` wants its body),
    /// and no origin is refused.
    without_the_setting_there_is_no_cookie,
    vars[("REFRESH_REUSE_GRACE_SECONDS", "0")],
    |app| async move {
        let email = unique_email("nocookie");
        let registered = app.register_raw(&email, PASSWORD).await;
        let refresh = refresh_of(registered.expect_ok(StatusCode::CREATED));
        assert!(registered.headers.get("set-cookie").is_none());
        let login = app.login_json(&email, PASSWORD).await;
        login.expect_ok(StatusCode::OK);
        // The only cookie a sign-in sets is the device token (SPEC §7).
        let set: Vec<&str> = login
            .headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        assert_eq!(set.len(), 1, "{set:?}");
        assert!(set[0].starts_with("portcullis_device="), "{set:?}");

        let reply = refresh_with_cookie(&app, &refresh, &[]).await;
        reply.expect_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE");
        let reply = app
            .send(
                app.request(Method::POST, "/refresh")
                    .header(COOKIE, format!("{COOKIE_NAME}={refresh}"))
                    .json(&json!({})),
            )
            .await;
        reply.expect_invalid_field("refresh_token");
        // The token was not spent, and a foreign origin is not refused.
        let reply = app
            .send(
                app.request(Method::POST, "/refresh")
                    .header(ORIGIN, "https://evil.example")
                    .json(&json!({"refresh_token": refresh})),
            )
            .await;
        reply.expect_ok(StatusCode::OK);
        assert!(reply.headers.get("set-cookie").is_none());
    }
);

both_backends!(
    /// `/openapi.json` describes the cookie on `/refresh` (a cookie
    /// parameter, the `Set-Cookie` of its answer, the cross-site 403), and
    /// with the setting on the body becomes optional and every endpoint
    /// that sets or clears the cookie says so.
    openapi_describes_the_refresh_cookie,
    vars[("REFRESH_COOKIE", "true")],
    |app| async move {
        let doc = app.get_root("/openapi.json").await.body;
        let refresh = &doc["paths"][format!("{PREFIX}/refresh")]["post"];
        let cookie = refresh["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == COOKIE_NAME)
            .unwrap_or_else(|| panic!("no cookie parameter: {refresh}"));
        assert_eq!(cookie["in"], "cookie");
        assert_eq!(cookie["required"], false);
        assert_eq!(cookie["schema"]["type"], "string");
        assert!(cookie["description"].as_str().unwrap().contains("HttpOnly"));
        assert_eq!(refresh["requestBody"]["required"], false);
        assert!(
            refresh["responses"]["403"]["description"]
                .as_str()
                .unwrap()
                .contains("FORBIDDEN")
        );
        for (path, status) in [
            ("/register", "201"),
            ("/login", "200"),
            ("/login/json", "200"),
            ("/token", "200"),
            ("/refresh", "200"),
            ("/logout", "200"),
        ] {
            let op = &doc["paths"][format!("{PREFIX}{path}")]["post"];
            assert!(
                op["responses"][status]["headers"]["Set-Cookie"].is_object(),
                "{path}: {}",
                op["responses"][status]
            );
            assert!(
                op["responses"]["403"]["description"]
                    .as_str()
                    .is_some_and(|d| d.contains("FORBIDDEN")),
                "{path}: {}",
                op["responses"]["403"]
            );
        }

        // Without the setting the body's token is required.
        let plain = app.spawn_sharing(&[]).await;
        let doc = plain.get_root("/openapi.json").await.body;
        assert_eq!(
            doc["paths"][format!("{PREFIX}/refresh")]["post"]["requestBody"]["required"],
            true
        );
        assert_eq!(
            doc["components"]["schemas"]["RefreshRequest"]["required"],
            json!(["refresh_token"])
        );
    }
);
