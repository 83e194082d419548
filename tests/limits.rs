//! Rate limits (SPEC §7) and the client IP behind trusted proxies (SPEC §2
//! `TRUSTED_PROXIES`), black-box over HTTP on SQLite and PostgreSQL.
//!
//! The harness turns limits off by default; every test here sets
//! `RATE_LIMIT_ENABLED` itself. The test server's TCP peer is 127.0.0.1, so
//! `TRUSTED_PROXIES=127.0.0.1` makes the test client a trusted proxy whose
//! `X-Forwarded-For` picks the client IP.
//!
//! The Redis tests use the server on 127.0.0.1:6379 (`REDIS_TEST_URL` to
//! change it), each under a `REDIS_KEY_PREFIX` of its own, so tests running
//! at once never share a counter and nothing needs flushing (the keys expire
//! by themselves). Redis going away and coming back is in
//! `tests/limits_outage.rs`.

#[macro_use]
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{PASSWORD, Reply, TestApp, unique_email};
use portcullis::Error;
use portcullis::domain::ClientInfo;
use portcullis::limits::Backend;
use portcullis::store::Store;
use reqwest::{Method, StatusCode};
use serde_json::json;

/// The Redis the sharing tests use.
fn redis_url() -> String {
    std::env::var("REDIS_TEST_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A key prefix no other test (in this or another process) uses.
fn redis_prefix() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "portcullis-test:{}:{}:",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// Checks a 429 `RATE_LIMITED` in the envelope with a `Retry-After` of 1 to
/// `max` seconds.
#[track_caller]
fn expect_limited(reply: &Reply, max: u64) {
    reply.expect_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    let retry_after: u64 = reply
        .header("retry-after")
        .unwrap_or_else(|| panic!("429 without Retry-After: {}", reply.text()))
        .parse()
        .expect("Retry-After is a number of seconds");
    assert!(
        (1..=max).contains(&retry_after),
        "Retry-After {retry_after} not within 1..={max}"
    );
}

/// `POST /login/json` as a proxy forwarding for `ip`.
async fn login_from(app: &TestApp, ip: &str, email: &str, password: &str) -> Reply {
    app.send(
        app.request(Method::POST, "/login/json")
            .header("x-forwarded-for", ip)
            .json(&json!({"email": email, "password": password})),
    )
    .await
}

/// `POST` a JSON body as a proxy forwarding for `ip`.
async fn post_from(app: &TestApp, ip: &str, path: &str, body: serde_json::Value) -> Reply {
    app.send(
        app.request(Method::POST, path)
            .header("x-forwarded-for", ip)
            .json(&body),
    )
    .await
}

/// The counter `portcullis_rate_limited_total{rule}`. It is process-wide:
/// only a rule that a single test of this file trips (`register_per_ip`) is
/// read, as an exact difference, under that test's own lock.
async fn limited_total(app: &TestApp, rule: &str) -> f64 {
    app.get_root("/metrics")
        .await
        .text()
        .lines()
        .filter(|l| l.starts_with("portcullis_rate_limited_total{"))
        .filter(|l| l.contains(&format!("rule=\"{rule}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The texts of the mail queued for `to`, with the app's store closed first
/// (after [`portcullis::Portcullis::shutdown`], so that the background work
/// of the requests has ended).
async fn mail_subjects_after_shutdown(app: &TestApp, to: &str) -> Vec<String> {
    assert!(
        app.portcullis.shutdown(Duration::from_secs(10)).await,
        "background work did not finish"
    );
    let store = Store::connect(&app.db.url).await.expect("reopen the store");
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

// ---- each limit ------------------------------------------------------------------

both_backends!(
    login_per_ip_applies_to_every_way_of_logging_in,
    vars[
        ("RATE_LIMIT_ENABLED", "true"),
        ("RATE_LIMIT_LOGIN_PER_IP", "4/minute"),
    ],
    |app| async move {
        // Four attempts on three routes and four addresses, all wrong.
        app.login_json(&unique_email("a"), PASSWORD)
            .await
            .expect_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
        app.login_form(&unique_email("b"), PASSWORD)
            .await
            .expect_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
        let token = |email: String| {
            let app = &app;
            async move {
                app.post_form(
                    "/token",
                    &[
                        ("grant_type", "password"),
                        ("username", &email),
                        ("password", PASSWORD),
                    ],
                )
                .await
            }
        };
        token(unique_email("c"))
            .await
            .expect_oauth_error("invalid_grant");
        app.login_json(&unique_email("d"), PASSWORD)
            .await
            .expect_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
        // The fifth, whatever the route: 429 in the envelope (also on /token),
        // at most one replenishment interval (60 s / 4) to wait.
        expect_limited(&app.login_json(&unique_email("e"), PASSWORD).await, 15);
        expect_limited(&app.login_form(&unique_email("f"), PASSWORD).await, 15);
        expect_limited(&token(unique_email("g")).await, 15);
    }
);

both_backends!(
    login_per_email_is_counted_per_client_so_the_owner_still_gets_in,
    vars[
        ("RATE_LIMIT_ENABLED", "true"),
        ("RATE_LIMIT_LOGIN_PER_EMAIL", "3/minute"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ],
    |app| async move {
        let owner = app.register(&unique_email("owner"), PASSWORD).await;
        let stranger = "203.0.113.66";
        for _ in 0..3 {
            login_from(&app, stranger, &owner.email, "guess-guess-guess")
                .await
                .expect_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
        }
        // The stranger is out of attempts on this address, even with the
        // right password...
        expect_limited(
            &login_from(&app, stranger, &owner.email, PASSWORD).await,
            20,
        );
        // ...but not on another address (this is not the per-IP limit)...
        login_from(&app, stranger, &unique_email("other"), PASSWORD)
            .await
            .expect_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
        // ...and the owner, elsewhere, logs in as usual, over and over.
        for _ in 0..3 {
            login_from(&app, "198.51.100.20", &owner.email, PASSWORD)
                .await
                .expect_ok(StatusCode::OK);
        }
        // The owner's own counter is theirs.
        expect_limited(
            &login_from(&app, "198.51.100.20", &owner.email, PASSWORD).await,
            20,
        );
    }
);

/// The only test here that trips `register_per_ip` takes this, so that each
/// of its two runs sees its own 429s in the process-wide counter.
static REGISTER_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

both_backends!(
    register_per_ip,
    vars[
        ("RATE_LIMIT_ENABLED", "true"),
        ("RATE_LIMIT_REGISTER_PER_IP", "2/hour"),
    ],
    |app| async move {
        let _turn = REGISTER_TURN.lock().await;
        let before = limited_total(&app, "register_per_ip").await;
        app.register(&unique_email("first"), PASSWORD).await;
        // A refused registration (weak password) counts too.
        app.register_raw(&unique_email("weak"), "short")
            .await
            .expect_invalid_field("password");
        let hashes = app.portcullis.flows().passwords.jobs_started();
        let third = unique_email("third");
        // One more every 30 minutes.
        expect_limited(&app.register_raw(&third, PASSWORD).await, 1800);
        assert_eq!(app.count_users_in_db(&third).await, 0);
        assert_eq!(
            app.portcullis.flows().passwords.jobs_started(),
            hashes,
            "a refused registration hashed its password"
        );
        let after = limited_total(&app, "register_per_ip").await;
        assert_eq!(after - before, 1.0, "429s counted: {before} → {after}");
    }
);

both_backends!(
    reset_and_resend_requests_share_a_per_ip_limit,
    vars[
        ("RATE_LIMIT_ENABLED", "true"),
        ("RATE_LIMIT_MAIL_REQUEST_PER_IP", "3/hour"),
    ],
    |app| async move {
        let email = unique_email("requests");
        let body = json!({"email": email});
        app.post_json("/forgot-password", &body)
            .await
            .expect_ok(StatusCode::OK);
        app.post_json("/verify-email/resend", &body)
            .await
            .expect_ok(StatusCode::OK);
        app.post_json("/forgot-password", &body)
            .await
            .expect_ok(StatusCode::OK);
        for path in ["/forgot-password", "/verify-email/resend", "/send-verification"] {
            expect_limited(&app.post_json(path, &body).await, 1200);
        }
    }
);

both_backends!(
    mail_past_the_per_email_limit_is_not_sent_but_the_answer_stays_200,
    vars[
        ("RATE_LIMIT_ENABLED", "true"),
        ("RATE_LIMIT_MAIL_PER_EMAIL", "2/hour"),
    ],
    |app| async move {
        let email = unique_email("inbox");
        app.register(&email, PASSWORD).await;
        let body = json!({"email": email});
        for _ in 0..4 {
            app.post_json("/forgot-password", &body)
                .await
                .expect_ok(StatusCode::OK);
        }
        // The resend shares the address's allowance (its work runs beside the
        // resets', so which of them got the two mails may vary).
        app.post_json("/verify-email/resend", &body)
            .await
            .expect_ok(StatusCode::OK);
        let subjects = mail_subjects_after_shutdown(&app, &email).await;
        let resets = subjects.iter().filter(|s| s.contains("Reset")).count();
        let verifications = subjects.iter().filter(|s| s.contains("Confirm")).count();
        assert!(resets >= 1, "{subjects:?}");
        // The registration's own verification mail is not a request: it
        // counts for nothing. Of the five requests, two got a mail.
        assert_eq!(resets + verifications - 1, 2, "{subjects:?}");
    }
);

both_backends!(
    already_registered_mails_count_under_the_per_email_limit,
    vars[
        ("RATE_LIMIT_ENABLED", "true"),
        ("RATE_LIMIT_MAIL_PER_EMAIL", "2/hour"),
        ("REQUIRE_EMAIL_VERIFICATION", "true"),
    ],
    |app| async move {
        // Someone registers a stranger's address again and again to flood
        // their inbox with "you already have an account".
        let email = unique_email("flooded");
        // The answer without its clock (`created_at` is "now" every time).
        let answer = |reply: Reply| {
            let mut data = reply.expect_ok(StatusCode::CREATED).clone();
            data["user"]["created_at"].take();
            data
        };
        let first = answer(app.register_raw(&email, PASSWORD).await);
        for _ in 0..5 {
            // The answer never changes, mail or no mail.
            assert_eq!(answer(app.register_raw(&email, PASSWORD).await), first);
        }
        let subjects = mail_subjects_after_shutdown(&app, &email).await;
        let notices = subjects
            .iter()
            .filter(|s| *s == "You already have an account")
            .count();
        assert_eq!(notices, 2, "{subjects:?}");
        // The registration's own verification mail went out as usual.
        assert_eq!(subjects.len(), 3, "{subjects:?}");
    }
);

both_backends!(
    rate_limit_enabled_false_turns_every_limit_off,
    vars[
        ("RATE_LIMIT_ENABLED", "false"),
        ("RATE_LIMIT_LOGIN_PER_IP", "1/hour"),
        ("RATE_LIMIT_LOGIN_PER_EMAIL", "1/hour"),
        ("RATE_LIMIT_REGISTER_PER_IP", "1/hour"),
        ("RATE_LIMIT_MAIL_REQUEST_PER_IP", "1/hour"),
        ("RATE_LIMIT_MAIL_PER_EMAIL", "1/hour"),
    ],
    |app| async move {
        let email = unique_email("free");
        for _ in 0..3 {
            app.register(&unique_email("many"), PASSWORD).await;
        }
        app.register(&email, PASSWORD).await;
        for _ in 0..3 {
            app.login_json(&email, "not-the-password")
                .await
                .expect_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
            app.post_json("/forgot-password", &json!({"email": email}))
                .await
                .expect_ok(StatusCode::OK);
        }
        let subjects = mail_subjects_after_shutdown(&app, &email).await;
        let resets = subjects.iter().filter(|s| s.contains("Reset")).count();
        assert_eq!(resets, 3, "{subjects:?}");
    }
);

// ---- a 429 costs no hashing ----------------------------------------------------

/// Exhausts the login limits of one client through the flows and checks
/// that further attempts are refused without hashing: the pool's count of
/// hashing jobs moves by one for each login let through, and not at all
/// for a refused one.
async fn refused_logins_do_no_hashing(app: &TestApp) {
    let flows = app.portcullis.flows();
    let client = ClientInfo {
        ip: Some("192.0.2.44".into()),
        user_agent: None,
    };
    let email = unique_email("fast");
    let before = flows.passwords.jobs_started();
    for _ in 0..2 {
        assert!(matches!(
            flows.login(&email, PASSWORD, &client).await,
            Err(Error::InvalidCredentials)
        ));
    }
    let hashes = flows.passwords.jobs_started();
    assert_eq!(hashes - before, 2, "each login let through hashes once");
    for _ in 0..9 {
        let outcome = flows.login(&email, PASSWORD, &client).await;
        assert!(
            matches!(outcome, Err(Error::RateLimited { .. })),
            "{outcome:?}"
        );
    }
    assert_eq!(
        flows.passwords.jobs_started(),
        hashes,
        "a refused login hashed"
    );
}

both_backends!(
    a_refused_login_does_no_hashing_in_memory,
    vars[
        ("RATE_LIMIT_ENABLED", "true"),
        ("RATE_LIMIT_LOGIN_PER_IP", "2/minute"),
    ],
    |app| async move {
        assert_eq!(
            app.portcullis.flows().limits.backend(),
            Backend::Memory
        );
        refused_logins_do_no_hashing(&app).await;
    }
);

both_backends!(
    a_refused_login_does_no_hashing_with_redis,
    |backend: Backend| async move {
        let prefix = redis_prefix();
        let url = redis_url();
        let app = TestApp::spawn(
            backend,
            &[
                ("RATE_LIMIT_ENABLED", "true"),
                ("RATE_LIMIT_LOGIN_PER_EMAIL", "2/minute"),
                ("REDIS_URL", &url),
                ("REDIS_KEY_PREFIX", &prefix),
            ],
        )
        .await;
        assert_eq!(
            app.portcullis.flows().limits.backend(),
            Backend::Redis,
            "is Redis running at {url}?"
        );
        refused_logins_do_no_hashing(&app).await;
    }
);

// ---- shared through Redis ------------------------------------------------------

both_backends!(
    two_instances_share_their_counters_through_redis,
    |backend: Backend| async move {
        let prefix = redis_prefix();
        let url = redis_url();
        let vars = [
            ("RATE_LIMIT_ENABLED", "true"),
            ("RATE_LIMIT_LOGIN_PER_IP", "3/minute"),
            ("REDIS_URL", url.as_str()),
            ("REDIS_KEY_PREFIX", prefix.as_str()),
        ];
        let a = TestApp::spawn(backend, &vars).await;
        let b = a.spawn_sharing(&vars).await;
        for app in [&a, &b] {
            assert_eq!(
                app.portcullis.flows().limits.backend(),
                Backend::Redis,
                "is Redis running at {url}?"
            );
        }
        for app in [&a, &b, &a] {
            app.login_json(&unique_email("shared"), PASSWORD)
                .await
                .expect_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
        }
        // Three attempts in all: the fourth is refused on either instance.
        expect_limited(&b.login_json(&unique_email("shared"), PASSWORD).await, 20);
        expect_limited(&a.login_json(&unique_email("shared"), PASSWORD).await, 20);

        // The counters are Redis keys under the prefix, which expire by
        // themselves (within the time the bucket takes to refill).
        let client = redis::Client::open(url.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(!keys.is_empty(), "no counter under {prefix}");
        for key in keys {
            assert!(key.starts_with(&format!("{prefix}rl:")), "{key}");
            let ttl: i64 = redis::cmd("PTTL")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .unwrap();
            // A per-minute rule's bucket refills within a minute; the
            // per-account budget of failed logins (50 an hour) within an hour.
            let refill = if key.contains(":login_per_account:") {
                3_600_000
            } else {
                60_000
            };
            assert!((1..=refill).contains(&ttl), "{key} expires in {ttl} ms");
        }
    }
);

// ---- the client IP behind a proxy -----------------------------------------------

/// The `ip` of the only session of a user registered through `app` while
/// forwarding for `forwarded`, and the IPs of the user's security events.
async fn recorded_ips(app: &TestApp, forwarded: &str) -> (String, Vec<String>) {
    let reply = post_from(
        app,
        forwarded,
        "/register",
        json!({"email": unique_email("proxied"), "password": PASSWORD}),
    )
    .await;
    let data = reply.expect_ok(StatusCode::CREATED);
    let token = data["access_token"].as_str().unwrap().to_string();
    let user_id = data["user"]["id"].as_i64().unwrap();
    let sessions = app.sessions(&token).await;
    assert_eq!(sessions.len(), 1);
    let session_ip = sessions[0]["ip"].as_str().unwrap_or_default().to_string();
    let event_ips = sqlx::query_scalar::<sqlx::Any, String>(
        "SELECT ip FROM security_events WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_all(app.store().pool())
    .await
    .expect("read security_events");
    assert!(!event_ips.is_empty());
    (session_ip, event_ips)
}

both_backends!(
    a_trusted_proxy_names_the_client_in_sessions_and_events,
    vars[("TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1")],
    |app| async move {
        // The rightmost address that is not a trusted proxy: not the forged
        // first entry, not the inner proxy.
        let (session, events) = recorded_ips(&app, "6.6.6.6, 198.51.100.7, 10.1.2.3").await;
        assert_eq!(session, "198.51.100.7");
        assert!(events.iter().all(|ip| ip == "198.51.100.7"), "{events:?}");
    }
);

both_backends!(
    a_forwarded_header_from_an_untrusted_peer_changes_nothing,
    |backend: Backend| async move {
        // No proxy trusted, or proxies that the test client is not.
        for proxies in ["", "10.0.0.0/8, 127.0.0.2"] {
            let app = TestApp::spawn(backend, &[("TRUSTED_PROXIES", proxies)]).await;
            let (session, events) = recorded_ips(&app, "198.51.100.7").await;
            assert_eq!(session, "127.0.0.1", "TRUSTED_PROXIES={proxies}");
            assert!(events.iter().all(|ip| ip == "127.0.0.1"), "{events:?}");
        }
    }
);

both_backends!(
    per_ip_limits_count_the_forwarded_client,
    vars[
        ("RATE_LIMIT_ENABLED", "true"),
        ("RATE_LIMIT_LOGIN_PER_IP", "2/minute"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ],
    |app| async move {
        let attempt = |ip: &'static str| {
            let app = &app;
            async move { login_from(app, ip, &unique_email("ip"), PASSWORD).await }
        };
        let wrong = |reply: Reply| reply.expect_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
        // The same forwarded client shares one counter...
        wrong(attempt("198.51.100.1").await);
        wrong(attempt("198.51.100.1").await);
        expect_limited(&attempt("198.51.100.1").await, 30);
        // ...another one has its own.
        wrong(attempt("198.51.100.2").await);
        // IPv6 clients are counted per /64.
        wrong(attempt("2001:db8:1:2::1").await);
        wrong(attempt("2001:db8:1:2:aaaa::9").await);
        expect_limited(&attempt("2001:db8:1:2::ffff").await, 30);
        wrong(attempt("2001:db8:1:3::1").await);
    }
);

both_backends!(
    forged_forwarded_addresses_do_not_escape_a_limit,
    vars[
        ("RATE_LIMIT_ENABLED", "true"),
        ("RATE_LIMIT_LOGIN_PER_IP", "2/minute"),
    ],
    |app| async move {
        // No trusted proxy: every request is 127.0.0.1's, whatever it claims.
        for ip in ["198.51.100.1", "198.51.100.2"] {
            login_from(&app, ip, &unique_email("forged"), PASSWORD)
                .await
                .expect_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
        }
        expect_limited(
            &login_from(&app, "198.51.100.3", &unique_email("forged"), PASSWORD).await,
            30,
        );
    }
);
