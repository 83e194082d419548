//! The attacks on the limits of the second security review (issue #17), in
//! the manner of `tests/attacks.rs` (whose checklist lists them): black-box
//! over HTTP against the real router, on SQLite and on PostgreSQL, each
//! refusal next to a control that passes.
//!
//! | attack | defence (SPEC §7) |
//! |---|---|
//! | a stolen access token guessing the password on `/change-password` and `/mfa/totp/setup` | limited per user and per IP, recorded, a 429 hashes nothing |
//! | one account filling the hashing queue | each caller holds at most its share of the queue |
//! | logins through a router served without connection info (no client IP) | still limited per e-mail |
//! | a botnet of many /64s guessing one account | a budget of failed logins per account; device tokens let the owner in |

#[macro_use]
mod common;

use common::*;
use portcullis::config::HasherKind;
use portcullis::password::{HashPolicy, hash_password};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// `POST` `body` to `path` with `token`, as a proxy forwarding for `ip`.
async fn auth_post_from(app: &TestApp, ip: &str, path: &str, token: &str, body: &Value) -> Reply {
    app.send(
        app.request(Method::POST, path)
            .bearer_auth(token)
            .header("x-forwarded-for", ip)
            .json(body),
    )
    .await
}

/// A change of password whose current password is `current`.
fn change(current: &str) -> Value {
    json!({"current_password": current, "new_password": "Quince-Badger-9081"})
}

/// The kinds of `token`'s user's own security events, newest first.
async fn event_kinds(app: &TestApp, token: &str) -> Vec<String> {
    let reply = app.auth_get("/events?per_page=100", token).await;
    reply.expect_ok(StatusCode::OK)["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["kind"].as_str().expect("kind").to_string())
        .collect()
}

/// How many hashes and verifications the server started so far.
fn hash_jobs(app: &TestApp) -> u64 {
    app.portcullis.flows().passwords.jobs_started()
}

// ---- a stolen token guessing the password ---------------------------------------

// The attacker holds a victim's access token, not the password, and guesses
// the current password on the routes that ask for it again. After
// `RATE_LIMIT_PASSWORD_CHECK` checks (5 a minute) for that user, from any
// route, every check is refused 429 without hashing, the right password
// too (no oracle); each wrong guess is in the owner's security events.
both_backends!(
    a_stolen_token_cannot_guess_the_password,
    vars[("RATE_LIMIT_ENABLED", "true")],
    |app| async move {
        let victim = app.register(&unique_email("victim"), PASSWORD).await;
        for guess in 0..4 {
            app.auth_post_json(
                "/change-password",
                &victim.access,
                &change(&format!("guess-{guess}-xyz")),
            )
            .await
            .expect_error(StatusCode::BAD_REQUEST, "INVALID_PASSWORD");
        }
        app.auth_post_json(
            "/mfa/totp/setup",
            &victim.access,
            &json!({"password": "guess-4-xyz"}),
        )
        .await
        .expect_error(StatusCode::BAD_REQUEST, "INVALID_PASSWORD");
        let jobs = hash_jobs(&app);
        for reply in [
            app.auth_post_json("/change-password", &victim.access, &change("guess-5-xyz"))
                .await,
            app.auth_post_json(
                "/mfa/totp/setup",
                &victim.access,
                &json!({"password": "guess-6-xyz"}),
            )
            .await,
            app.auth_post_json("/change-password", &victim.access, &change(PASSWORD))
                .await,
        ] {
            reply.expect_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
            assert!(
                reply.header("retry-after").is_some(),
                "429 without Retry-After"
            );
        }
        assert_eq!(hash_jobs(&app), jobs, "a refused check hashed");
        let kinds = event_kinds(&app, &victim.access).await;
        let failed = kinds
            .iter()
            .filter(|k| *k == "password_check_failed")
            .count();
        assert_eq!(failed, 5, "{kinds:?}");
        // Control: another user, same client, is not affected.
        let other = app.register(&unique_email("other"), PASSWORD).await;
        app.auth_post_json("/change-password", &other.access, &change(PASSWORD))
            .await
            .expect_ok(StatusCode::OK);
    }
);

// Many stolen tokens (many users) guessed from one client: past
// `RATE_LIMIT_PASSWORD_CHECK_PER_IP` checks from that IP, whoever the user,
// 429 without hashing; the same users from elsewhere are still served.
both_backends!(
    stolen_tokens_from_one_address_are_limited_together,
    vars[
        ("RATE_LIMIT_ENABLED", "true"),
        ("RATE_LIMIT_PASSWORD_CHECK_PER_IP", "3/minute"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ],
    |app| async move {
        let attacker_ip = "198.51.100.23";
        let users = [
            app.register(&unique_email("one"), PASSWORD).await,
            app.register(&unique_email("two"), PASSWORD).await,
            app.register(&unique_email("three"), PASSWORD).await,
        ];
        for user in &users {
            auth_post_from(&app, attacker_ip, "/change-password", &user.access, &change("wrong-guess-1"))
                .await
                .expect_error(StatusCode::BAD_REQUEST, "INVALID_PASSWORD");
        }
        let fourth = app.register(&unique_email("four"), PASSWORD).await;
        let jobs = hash_jobs(&app);
        auth_post_from(&app, attacker_ip, "/change-password", &fourth.access, &change("wrong-guess-2"))
            .await
            .expect_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
        assert_eq!(hash_jobs(&app), jobs, "a refused check hashed");
        // Control: the same user from another address.
        auth_post_from(&app, "203.0.113.5", "/change-password", &fourth.access, &change("wrong-guess-3"))
            .await
            .expect_error(StatusCode::BAD_REQUEST, "INVALID_PASSWORD");
    }
);

// ---- one account filling the hashing queue --------------------------------------

/// Requests of the flood.
const FLOOD: usize = 250;

// One account (a fresh registration is enough) sends 250 password checks at
// once, so many that the per-user rate limit is set out of the way here:
// the queue's fair share is the defence under test. Its stored hash is made
// slow (bcrypt, cost 15: about 2 s a check), so that without the share the
// account's checks hold the whole queue (1 thread, 64 places) for minutes.
// With it, the account holds one place and gets 429 for the rest, and a
// stranger's login, sent once the flood's refusals are in, is served.
both_backends!(
    one_account_cannot_fill_the_hashing_queue,
    vars[
        ("RATE_LIMIT_ENABLED", "true"),
        ("RATE_LIMIT_PASSWORD_CHECK", "100000/minute"),
        ("RATE_LIMIT_PASSWORD_CHECK_PER_IP", "100000/minute"),
        ("HASH_WORKERS", "1"),
        ("HASH_QUEUE", "64"),
        ("HASH_QUEUE_PER_CALLER", "1"),
    ],
    |app| async move {
        let stranger = unique_email("stranger");
        app.register(&stranger, PASSWORD).await;
        let flooder = app.register(&unique_email("flooder"), PASSWORD).await;
        let slow = tokio::task::spawn_blocking(|| {
            let policy = HashPolicy {
                kind: HasherKind::Bcrypt,
                bcrypt_rounds: 15,
            };
            hash_password("the-flooder-password", policy).expect("bcrypt")
        })
        .await
        .expect("hashing thread");
        let store = app.store();
        sqlx::query::<sqlx::Any>("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(slow)
            .bind(flooder.user_id)
            .execute(store.pool())
            .await
            .expect("slow the flooder's hash down");

        let (answers, mut answered) = tokio::sync::mpsc::unbounded_channel();
        for _ in 0..FLOOD {
            let request = app
                .request(Method::POST, "/change-password")
                .bearer_auth(&flooder.access)
                .json(&change("not-the-password"));
            let answers = answers.clone();
            tokio::spawn(async move {
                let status = request.send().await.map(|r| r.status()).ok();
                let _ = answers.send(status);
            });
        }
        // Without the share, all but 1 + 64 of the flood are refused (503)
        // once the queue is full; with it, all but 1 (429). Either way the
        // queue is as full as the flood can make it once this many are in.
        let mut statuses = Vec::new();
        while statuses.len() < FLOOD - 65 {
            statuses.push(answered.recv().await.expect("an answer"));
        }
        let login = app.login_json(&stranger, PASSWORD).await;
        login.expect_ok(StatusCode::OK);
        while statuses.len() < FLOOD {
            statuses.push(answered.recv().await.expect("an answer"));
        }
        let count = |s: StatusCode| statuses.iter().filter(|x| **x == Some(s)).count();
        assert_eq!(count(StatusCode::TOO_MANY_REQUESTS), FLOOD - 1, "{statuses:?}");
        assert_eq!(count(StatusCode::BAD_REQUEST), 1, "{statuses:?}");
    }
);

// ---- no client IP ---------------------------------------------------------------

// An application serves the router without connection info, so no request
// has a client IP. Guessing one account's password is still limited per
// e-mail address (`RATE_LIMIT_LOGIN_PER_EMAIL`), the 429 hashing nothing;
// another address is still served.
both_backends!(
    logins_without_a_client_ip_are_still_limited,
    |backend: Backend| async move {
        let app = TestApp::builder(backend)
            .vars(&[
                ("RATE_LIMIT_ENABLED", "true"),
                ("RATE_LIMIT_LOGIN_PER_EMAIL", "3/minute"),
            ])
            .without_connect_info()
            .spawn()
            .await;
        let victim = unique_email("no-ip");
        app.register(&victim, PASSWORD).await;
        for _ in 0..3 {
            app.login_json(&victim, OTHER_PASSWORD)
                .await
                .expect_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
        }
        let jobs = hash_jobs(&app);
        for password in [OTHER_PASSWORD, PASSWORD] {
            app.login_json(&victim, password)
                .await
                .expect_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
        }
        assert_eq!(hash_jobs(&app), jobs, "a refused login hashed");
        // Control: another account.
        let other = unique_email("no-ip-other");
        app.register(&other, PASSWORD).await;
        app.login_json(&other, PASSWORD)
            .await
            .expect_ok(StatusCode::OK);
    }
);

// ---- a botnet guessing one account ---------------------------------------------

/// `POST /login/json` as a proxy forwarding for `ip`, with a device token
/// in the `Portcullis-Device` header when given.
async fn login_from(
    app: &TestApp,
    ip: &str,
    email: &str,
    password: &str,
    device: Option<&str>,
) -> Reply {
    let mut request = app
        .request(Method::POST, "/login/json")
        .header("x-forwarded-for", ip)
        .json(&json!({"email": email, "password": password}));
    if let Some(device) = device {
        request = request.header("portcullis-device", device);
    }
    app.send(request).await
}

/// The subjects of the mail queued for `to`, once the server has shut down
/// (so that its background work has ended).
async fn subjects_after_shutdown(app: &TestApp, to: &str) -> Vec<String> {
    assert!(
        app.portcullis
            .shutdown(std::time::Duration::from_secs(10))
            .await,
        "background work did not finish"
    );
    let store = portcullis::store::Store::connect(&app.db.url)
        .await
        .expect("reopen the store");
    let subjects = sqlx::query_scalar::<sqlx::Any, String>(
        "SELECT subject FROM mail_queue WHERE recipient = $1 ORDER BY id",
    )
    .bind(to)
    .fetch_all(store.pool())
    .await
    .expect("read mail_queue");
    store.close().await;
    subjects
}

/// The subject of the mail telling an owner their account is held back.
const HELD_BACK: &str = "Sign-ins to your account are being held back";

// A botnet guesses one account's password from many /64s, each within its
// per-IP and per-(e-mail, IP) limits. Past `RATE_LIMIT_LOGIN_PER_ACCOUNT`
// failures (4 here) from anywhere, logins for the account are refused 429
// without hashing, even with the right password, even from a new address;
// the owner's device that signed in before still gets in (its device token,
// as header or cookie); the owner gets one mail, not one per refusal. An
// unregistered address behaves the same (no enumeration by the 429).
both_backends!(
    a_botnet_gets_at_most_the_account_budget,
    vars[
        ("RATE_LIMIT_ENABLED", "true"),
        ("RATE_LIMIT_LOGIN_PER_ACCOUNT", "4/hour"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ],
    |app| async move {
        let owner = unique_email("owner");
        app.register(&owner, PASSWORD).await;
        let signed_in = login_from(&app, "203.0.113.7", &owner, PASSWORD, None).await;
        let device = signed_in.expect_ok(StatusCode::OK)["device_token"]
            .as_str()
            .expect("a device token in the login answer")
            .to_string();
        let cookie = signed_in
            .header("set-cookie")
            .expect("a device cookie")
            .to_string();
        assert!(cookie.starts_with(&format!("portcullis_device={device};")), "{cookie}");
        for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Max-Age=31536000"] {
            assert!(cookie.contains(attribute), "{cookie}");
        }
        let stranger = unique_email("nobody");
        for target in [&owner, &stranger] {
            for n in 0..4 {
                let bot = format!("2001:db8:{n}:1::9");
                login_from(&app, &bot, target, OTHER_PASSWORD, None)
                    .await
                    .expect_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
            }
        }
        let jobs = hash_jobs(&app);
        for target in [&owner, &stranger] {
            for password in [OTHER_PASSWORD, PASSWORD] {
                login_from(&app, "2001:db8:99:1::9", target, password, None)
                    .await
                    .expect_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
            }
        }
        // The owner from a new address, without the device: refused too.
        login_from(&app, "198.51.100.70", &owner, PASSWORD, None)
            .await
            .expect_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
        // The owner's device token is no key to another account.
        login_from(&app, "198.51.100.70", &stranger, PASSWORD, Some(&device))
            .await
            .expect_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
        assert_eq!(hash_jobs(&app), jobs, "a refused login hashed");
        // The owner's known device, from anywhere: in, by header or cookie.
        login_from(&app, "198.51.100.71", &owner, PASSWORD, Some(&device))
            .await
            .expect_ok(StatusCode::OK);
        app.send(
            app.request(Method::POST, "/login/json")
                .header("x-forwarded-for", "198.51.100.72")
                .header("cookie", format!("portcullis_device={device}"))
                .json(&json!({"email": owner, "password": PASSWORD})),
        )
        .await
        .expect_ok(StatusCode::OK);
        let subjects = subjects_after_shutdown(&app, &owner).await;
        let notices = subjects.iter().filter(|s| *s == HELD_BACK).count();
        assert_eq!(notices, 1, "{subjects:?}");
    }
);

both_backends!(
    /// The second step hands out the device token too (SPEC §7: every
    /// sign-in that opens a session), so a TOTP user's known device still
    /// gets in while a botnet has spent the account's budget.
    a_second_factor_sign_in_remembers_the_device,
    vars[
        ("RATE_LIMIT_ENABLED", "true"),
        ("RATE_LIMIT_LOGIN_PER_ACCOUNT", "4/hour"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ],
    |app| async move {
        let enrolled = enroll_totp(&app, "totp-device").await;
        let owner = enrolled.session.email.clone();
        let first = login_from(&app, "203.0.113.8", &owner, PASSWORD, None).await;
        let mfa_token = first.expect_ok(StatusCode::OK)["mfa_token"]
            .as_str()
            .expect("mfa_token")
            .to_string();
        let passed = app
            .send(
                app.request(Method::POST, "/mfa/verify")
                    .header("x-forwarded-for", "203.0.113.8")
                    .json(&json!({
                        "mfa_token": mfa_token,
                        "method": "recovery_code",
                        "code": enrolled.recovery[0],
                    })),
            )
            .await;
        let cookie = passed
            .header("set-cookie")
            .expect("a device cookie")
            .to_string();
        let device = passed.expect_ok(StatusCode::OK)["device_token"]
            .as_str()
            .expect("a device token in the second step's answer")
            .to_string();
        assert!(cookie.starts_with(&format!("portcullis_device={device};")), "{cookie}");
        for n in 0..4 {
            let bot = format!("2001:db8:7{n}:1::9");
            login_from(&app, &bot, &owner, OTHER_PASSWORD, None)
                .await
                .expect_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
        }
        login_from(&app, "198.51.100.80", &owner, PASSWORD, None)
            .await
            .expect_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
        let known = login_from(&app, "198.51.100.81", &owner, PASSWORD, Some(&device)).await;
        assert_eq!(known.expect_ok(StatusCode::OK)["mfa_required"], json!(true));
    }
);
