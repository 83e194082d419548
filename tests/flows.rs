//! The account rules, tested against the flows directly (no HTTP), on SQLite
//! and PostgreSQL: no user enumeration, re-hash on login, refresh reuse
//! detection, reset revoking every session, and a shutdown that waits for
//! the background work before the database closes.

#[macro_use]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Mail, NO_SERVER_URL, OTHER_PASSWORD, PASSWORD, TestApp, TestDb, read_mail_dir};
use portcullis::domain::{ClientInfo, SecurityEvent};
use portcullis::flows::{Registered, Registration};
use portcullis::store::Store;
use portcullis::{Error, Flows};
use sqlx::Row;

fn client() -> ClientInfo {
    ClientInfo {
        ip: Some("192.0.2.7".into()),
        user_agent: Some("flows-test".into()),
    }
}

fn registration(email: &str, password: &str) -> Registration {
    Registration {
        email: email.into(),
        password: password.into(),
        ..Registration::default()
    }
}

/// Registers `email` (verification not required) and returns its user id.
async fn register(flows: &Flows, email: &str) -> i64 {
    match flows
        .register(registration(email, PASSWORD), &client())
        .await
        .expect("registration")
    {
        Registered::SignedIn { user, .. } => user.id,
        other => panic!("expected a signed-in registration, got {other:?}"),
    }
}

/// Waits until `n` messages have been delivered to `to`'s outbox; they,
/// oldest first.
async fn mails_to(db: &TestDb, to: &str, n: usize, what: &str) -> Vec<Mail> {
    eventually(what, || {
        let arrived = delivered_to(db, to).len();
        async move { arrived == n }
    })
    .await;
    delivered_to(db, to)
}

/// Waits (at most 10 s) until `check` holds.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The subjects of the messages queued for `to`, oldest first. (Not their
/// text: the outbox worker may deliver a message while a test looks, and a
/// delivered message's body is erased from the queue.)
async fn mail_to(store: &Store, to: &str) -> Vec<String> {
    sqlx::query("SELECT subject FROM mail_queue WHERE recipient = $1 ORDER BY id")
        .bind(to)
        .fetch_all(store.pool())
        .await
        .expect("read mail_queue")
        .iter()
        .map(|r| r.get::<String, _>("subject"))
        .collect()
}

/// The messages delivered to the outbox of `db` for `to`, oldest first.
fn delivered_to(db: &TestDb, to: &str) -> Vec<Mail> {
    read_mail_dir(&db.dir.path().join("outbox"), "eml")
        .into_iter()
        .map(|(_, raw)| Mail::parse(&raw).expect("a well-formed message"))
        .filter(|m| m.header("To").is_some_and(|h| h.contains(to)))
        .collect()
}

both_backends!(
    an_unknown_email_and_a_wrong_password_fail_alike,
    |backend: Backend| async move {
        let (_db, app) = TestApp::builder(backend).build().await;
        let flows = app.flows();
        let id = register(flows, "known@example.com").await;

        let unknown = flows.login("nobody@example.com", PASSWORD, &client()).await;
        let wrong = flows
            .login("known@example.com", OTHER_PASSWORD, &client())
            .await;
        let malformed = flows.login("not an address", PASSWORD, &client()).await;
        for (case, outcome) in [
            ("unknown", unknown),
            ("wrong", wrong),
            ("malformed", malformed),
        ] {
            assert!(
                matches!(outcome, Err(Error::InvalidCredentials)),
                "{case}: {outcome:?}"
            );
        }
        // The owner's trail shows the failed attempt on their account.
        let events = flows.store.recent_events(id, 5).await.unwrap();
        assert_eq!(events.first(), Some(&SecurityEvent::LoginFailed));
        assert!(
            flows
                .login("KNOWN@example.com ", PASSWORD, &client())
                .await
                .is_ok()
        );
        app.shutdown(Duration::from_secs(5)).await;
    }
);

both_backends!(
    login_rehashes_an_outdated_hash,
    |backend: Backend| async move {
        let (db, old) = TestApp::builder(backend)
            .vars(&[("PASSWORD_HASHER", "bcrypt"), ("BCRYPT_ROUNDS", "4")])
            .build()
            .await;
        let id = register(old.flows(), "legacy@example.com").await;
        let stored = |store: Store| async move {
            store.user_by_id(id).await.unwrap().unwrap().password_hash
        };
        assert!(stored(old.flows().store.clone()).await.starts_with("$2"));
        old.shutdown(Duration::from_secs(5)).await;

        let (_db, new) = TestApp::builder_on(db).build().await;
        new.flows()
            .login("legacy@example.com", PASSWORD, &client())
            .await
            .expect("the bcrypt password still logs in");
        let upgraded = stored(new.flows().store.clone()).await;
        assert!(
            upgraded.starts_with("$argon2id$"),
            "not re-hashed: {upgraded}"
        );
        assert!(
            new.flows()
                .login("legacy@example.com", PASSWORD, &client())
                .await
                .is_ok()
        );
        new.shutdown(Duration::from_secs(5)).await;
    }
);

both_backends!(
    a_reused_refresh_token_revokes_the_session,
    |backend: Backend| async move {
        let (_db, app) = TestApp::builder(backend)
            .vars(&[("REFRESH_REUSE_GRACE_SECONDS", "0")])
            .build()
            .await;
        let flows = app.flows();
        let id = register(flows, "rotate@example.com").await;
        let first = flows
            .login("rotate@example.com", PASSWORD, &client())
            .await
            .unwrap();
        let second = flows
            .refresh(&first.refresh_token, &client())
            .await
            .unwrap();
        assert!(flows.authenticate(&second.access_token).await.is_ok());

        let replay = flows.refresh(&first.refresh_token, &client()).await;
        assert!(matches!(replay, Err(Error::TokenRevoked)), "{replay:?}");
        // The whole session is gone: the thief's and the owner's tokens alike.
        assert!(matches!(
            flows.authenticate(&second.access_token).await,
            Err(Error::TokenRevoked)
        ));
        assert!(matches!(
            flows.refresh(&second.refresh_token, &client()).await,
            Err(Error::TokenRevoked)
        ));
        let events = flows.store.recent_events(id, 5).await.unwrap();
        assert_eq!(events.first(), Some(&SecurityEvent::RefreshReuseDetected));
        app.shutdown(Duration::from_secs(5)).await;
    }
);

both_backends!(
    a_reset_revokes_every_session_and_spends_the_link,
    |backend: Backend| async move {
        let (db, app) = TestApp::builder(backend).build().await;
        let flows = app.flows();
        let email = "reset@example.com";
        register(flows, email).await;
        let laptop = flows.login(email, PASSWORD, &client()).await.unwrap();
        let phone = flows.login(email, PASSWORD, &client()).await.unwrap();

        flows
            .request_password_reset(email, &client())
            .await
            .unwrap();
        let token = mails_to(&db, email, 2, "the reset mail").await[1]
            .token(NO_SERVER_URL, "/reset-password");
        assert!(flows.reset_link_is_live(&token).await.unwrap());

        flows
            .reset_password(&token, OTHER_PASSWORD, &client())
            .await
            .unwrap();
        for pair in [&laptop, &phone] {
            assert!(matches!(
                flows.authenticate(&pair.access_token).await,
                Err(Error::TokenRevoked)
            ));
        }
        assert!(!flows.reset_link_is_live(&token).await.unwrap());
        assert!(matches!(
            flows.reset_password(&token, PASSWORD, &client()).await,
            Err(Error::InvalidResetToken)
        ));
        assert!(matches!(
            flows.login(email, PASSWORD, &client()).await,
            Err(Error::InvalidCredentials)
        ));
        assert!(flows.login(email, OTHER_PASSWORD, &client()).await.is_ok());
        app.shutdown(Duration::from_secs(5)).await;
    }
);

both_backends!(
    reset_requests_reveal_nothing_and_mail_only_active_owners,
    |backend: Backend| async move {
        let (db, app) = TestApp::builder(backend).build().await;
        let flows = app.flows();
        let id = register(flows, "sleeper@example.com").await;
        flows.store.set_active(id, false).await.unwrap();

        for email in ["sleeper@example.com", "stranger@example.com"] {
            assert!(flows.request_password_reset(email, &client()).await.is_ok());
        }
        assert!(matches!(
            flows
                .request_password_reset("not-an-address", &client())
                .await,
            Err(Error::Validation(_))
        ));
        // Let the background work finish, then look: only the verification
        // mail of the registration is there.
        assert!(app.shutdown(Duration::from_secs(5)).await);
        let store = Store::connect(&db.url).await.unwrap();
        assert_eq!(mail_to(&store, "sleeper@example.com").await.len(), 1);
        assert!(mail_to(&store, "stranger@example.com").await.is_empty());
        store.close().await;
    }
);

both_backends!(
    registering_a_taken_address_reveals_nothing_when_verification_is_required,
    |backend: Backend| async move {
        let (_db, app) = TestApp::builder(backend)
            .vars(&[("REQUIRE_EMAIL_VERIFICATION", "true")])
            .build()
            .await;
        let flows = app.flows();
        let email = "twice@example.com";
        let first = flows
            .register(registration(email, PASSWORD), &client())
            .await
            .unwrap();
        let second = flows
            .register(
                registration(" TWICE@example.com", OTHER_PASSWORD),
                &client(),
            )
            .await
            .unwrap();
        let (
            Registered::AwaitingVerification { user: a },
            Registered::AwaitingVerification { user: b },
        ) = (first, second)
        else {
            panic!("both registrations must await verification");
        };
        assert_eq!((a.is_verified, b.is_verified), (false, false));
        let subjects: Vec<String> = mail_to(&flows.store, email).await;
        assert_eq!(
            subjects.len(),
            2,
            "a verification mail, then an already-registered mail"
        );
        assert_eq!(subjects[1], "You already have an account");
        // No second account; the first password stands.
        let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM users")
            .fetch_one(flows.store.pool())
            .await
            .unwrap()
            .get("n");
        assert_eq!(count, 1);
        assert!(matches!(
            flows.login(email, PASSWORD, &client()).await,
            Err(Error::EmailNotVerified)
        ));
        assert!(matches!(
            flows.login(email, OTHER_PASSWORD, &client()).await,
            Err(Error::InvalidCredentials)
        ));
        app.shutdown(Duration::from_secs(5)).await;
    }
);

both_backends!(
    change_password_keeps_only_the_calling_session,
    |backend: Backend| async move {
        let (_db, app) = TestApp::builder(backend).build().await;
        let flows = app.flows();
        let email = "change@example.com";
        register(flows, email).await;
        let here = flows.login(email, PASSWORD, &client()).await.unwrap();
        let there = flows.login(email, PASSWORD, &client()).await.unwrap();
        let session = flows.authenticate(&here.access_token).await.unwrap();

        assert!(matches!(
            flows
                .change_password(&session, OTHER_PASSWORD, OTHER_PASSWORD, &client())
                .await,
            Err(Error::InvalidPassword)
        ));
        flows
            .change_password(&session, PASSWORD, OTHER_PASSWORD, &client())
            .await
            .unwrap();
        assert!(flows.authenticate(&here.access_token).await.is_ok());
        assert!(matches!(
            flows.authenticate(&there.access_token).await,
            Err(Error::TokenRevoked)
        ));
        app.shutdown(Duration::from_secs(5)).await;
    }
);

both_backends!(
    shutdown_waits_for_background_work_before_closing_the_store,
    |backend: Backend| async move {
        let (db, app) = TestApp::builder(backend).build().await;
        let flows = Arc::clone(app.flows());
        let emails: Vec<String> = (0..12).map(|i| format!("drain{i}@example.com")).collect();
        for email in &emails {
            register(&flows, email).await;
        }
        // Each request queues its look-up, token and mail after the answer...
        for email in &emails {
            flows
                .request_password_reset(email, &client())
                .await
                .unwrap();
        }
        // ...and shutdown comes at once: it must let all of them finish first.
        assert!(app.shutdown(Duration::from_secs(10)).await);
        assert_eq!(flows.tasks.running(), 0);
        // Nothing can start once the store is closed.
        assert!(
            flows
                .request_password_reset(&emails[0], &client())
                .await
                .is_ok()
        );
        assert_eq!(flows.tasks.running(), 0, "work was admitted after shutdown");

        let store = Store::connect(&db.url).await.unwrap();
        for email in &emails {
            assert_eq!(
                mail_to(&store, email).await.len(),
                2,
                "{email}: the reset mail queued before shutdown is missing"
            );
        }
        let tokens: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM one_time_tokens WHERE purpose = 'reset'")
                .fetch_one(store.pool())
                .await
                .unwrap()
                .get("n");
        assert_eq!(tokens, emails.len() as i64);
        store.close().await;
    }
);

/// Logs in as `email` over and over until `stop`, keeping every pair it got.
async fn login_loop(
    flows: Arc<Flows>,
    email: &'static str,
    password: &'static str,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Vec<portcullis::flows::TokenPair> {
    let mut pairs = Vec::new();
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        if let Ok(pair) = flows.login(email, password, &client()).await {
            pairs.push(pair);
        }
    }
    pairs
}

both_backends!(
    logins_racing_a_reset_leave_nothing_usable,
    |backend: Backend| async move {
        // bcrypt-stored, so that every login with the old password also
        // re-hashes it: the re-hash must never write the old password back.
        let (db, legacy) = TestApp::builder(backend)
            .vars(&[("PASSWORD_HASHER", "bcrypt"), ("BCRYPT_ROUNDS", "4")])
            .build()
            .await;
        let email = "raced@example.com";
        register(legacy.flows(), email).await;
        legacy.shutdown(Duration::from_secs(5)).await;
        let (_db, app) = TestApp::builder_on(db.clone())
            .vars(&[("HASH_WORKERS", "2")])
            .build()
            .await;
        let flows = Arc::clone(app.flows());
        let id = flows
            .store
            .user_by_email(email)
            .await
            .unwrap()
            .unwrap()
            .user
            .id;

        // The owner asks for a reset while sixteen loops log in with the
        // old password.
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let loops: Vec<_> = (0..16)
            .map(|_| tokio::spawn(login_loop(flows.clone(), email, PASSWORD, stop.clone())))
            .collect();
        tokio::time::sleep(Duration::from_millis(150)).await;
        flows
            .request_password_reset(email, &client())
            .await
            .unwrap();
        let token = mails_to(&db, email, 2, "the reset mail").await[1]
            .token(NO_SERVER_URL, "/reset-password");
        flows
            .reset_password(&token, OTHER_PASSWORD, &client())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let mut pairs = Vec::new();
        for handle in loops {
            pairs.extend(handle.await.unwrap());
        }
        assert!(
            !pairs.is_empty(),
            "the loops never logged in: the race did not happen"
        );

        // Nothing from the run is usable, and the new password stands.
        for pair in &pairs {
            assert!(
                flows.authenticate(&pair.access_token).await.is_err(),
                "an access token from before the reset still works"
            );
            assert!(
                flows.refresh(&pair.refresh_token, &client()).await.is_err(),
                "a refresh token from before the reset still works"
            );
        }
        assert!(matches!(
            flows.login(email, PASSWORD, &client()).await,
            Err(Error::InvalidCredentials)
        ));
        assert!(flows.login(email, OTHER_PASSWORD, &client()).await.is_ok());
        let open: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM sessions WHERE user_id = $1 AND revoked_at IS NULL",
        )
        .bind(id)
        .fetch_one(flows.store.pool())
        .await
        .unwrap()
        .get("n");
        assert_eq!(open, 1, "only the login with the new password is open");
        app.shutdown(Duration::from_secs(5)).await;
    }
);

both_backends!(
    the_grace_returns_the_same_successor_and_never_forks,
    |backend: Backend| async move {
        let (_db, app) = TestApp::builder(backend).build().await;
        let flows = app.flows();
        let email = "fork@example.com";
        register(flows, email).await;
        let r0 = flows.login(email, PASSWORD, &client()).await.unwrap();
        let r1 = flows.refresh(&r0.refresh_token, &client()).await.unwrap();
        // A retry of r0 within the grace gets r1's refresh token again.
        let retry = flows.refresh(&r0.refresh_token, &client()).await.unwrap();
        let jti = |token: &str| {
            flows
                .tokens
                .decode(token, portcullis::token::TokenType::Refresh)
                .unwrap()
                .jti
        };
        assert_eq!(jti(&retry.refresh_token), jti(&r1.refresh_token));
        let r2 = flows.refresh(&r1.refresh_token, &client()).await.unwrap();
        // r0 is no longer the latest spent token: its replay is theft, even
        // inside the grace window, and ends the session.
        assert!(matches!(
            flows.refresh(&r0.refresh_token, &client()).await,
            Err(Error::TokenRevoked)
        ));
        assert!(matches!(
            flows.refresh(&r2.refresh_token, &client()).await,
            Err(Error::TokenRevoked)
        ));
        assert!(flows.authenticate(&r2.access_token).await.is_err());
        app.shutdown(Duration::from_secs(5)).await;
    }
);

both_backends!(
    a_session_ends_at_its_absolute_lifetime,
    |backend: Backend| async move {
        let (_db, app) = TestApp::builder(backend)
            .vars(&[
                ("SESSION_MAX_LIFETIME_DAYS", "30"),
                ("REFRESH_TOKEN_EXPIRE_DAYS", "7"),
            ])
            .build()
            .await;
        let flows = app.flows();
        let email = "ages@example.com";
        register(flows, email).await;
        let pair = flows.login(email, PASSWORD, &client()).await.unwrap();
        let sid = flows
            .authenticate(&pair.access_token)
            .await
            .unwrap()
            .claims
            .sid;
        let day = 86_400;
        let backdate = |age: i64| {
            let sid = sid.clone();
            async move {
                sqlx::query("UPDATE sessions SET created_at = created_at - $1 WHERE id = $2")
                    .bind(age)
                    .bind(&sid)
                    .execute(flows.store.pool())
                    .await
                    .unwrap();
            }
        };
        // 29 days in: the refresh token it gets lasts one day, not seven.
        backdate(29 * day).await;
        let next = flows.refresh(&pair.refresh_token, &client()).await.unwrap();
        let claims = flows
            .tokens
            .decode(&next.refresh_token, portcullis::token::TokenType::Refresh)
            .unwrap();
        let left = claims.exp - common::now();
        assert!(
            (day - 5..=day).contains(&left),
            "refresh token lasts {left} s"
        );
        // Past 30 days: no more refreshes, however fresh the token.
        backdate(2 * day).await;
        assert!(matches!(
            flows.refresh(&next.refresh_token, &client()).await,
            Err(Error::TokenExpired)
        ));
        app.shutdown(Duration::from_secs(5)).await;
    }
);

both_backends!(
    access_tokens_say_whether_the_email_is_verified,
    |backend: Backend| async move {
        let (db, app) = TestApp::builder(backend).build().await;
        let flows = app.flows();
        let email = "claims@example.com";
        register(flows, email).await;
        let pair = flows.login(email, PASSWORD, &client()).await.unwrap();
        let claims = |token: &str| {
            flows
                .tokens
                .decode(token, portcullis::token::TokenType::Access)
                .unwrap()
        };
        assert_eq!(claims(&pair.access_token).email_verified, Some(false));
        let token = mails_to(&db, email, 1, "the verification mail").await[0]
            .token(NO_SERVER_URL, "/verify-email");
        flows.verify_email(&token, &client()).await.unwrap();
        let next = flows.refresh(&pair.refresh_token, &client()).await.unwrap();
        assert_eq!(claims(&next.access_token).email_verified, Some(true));
        app.shutdown(Duration::from_secs(5)).await;
    }
);

both_backends!(
    the_owner_is_told_of_a_change_and_a_reset_and_deactivation_voids_links,
    |backend: Backend| async move {
        let (db, app) = TestApp::builder(backend).build().await;
        let flows = app.flows();
        let email = "told@example.com";
        let id = register(flows, email).await;
        let pair = flows.login(email, PASSWORD, &client()).await.unwrap();
        let session = flows.authenticate(&pair.access_token).await.unwrap();
        flows
            .change_password(&session, PASSWORD, OTHER_PASSWORD, &client())
            .await
            .unwrap();
        let changed = |n: usize| {
            let db = db.clone();
            move || {
                let mails = delivered_to(&db, email);
                async move {
                    mails
                        .iter()
                        .filter(|m| m.subject() == "Your password was changed")
                        .count()
                        == n
                }
            }
        };
        eventually("the change notice", changed(1)).await;
        flows
            .request_password_reset(email, &client())
            .await
            .unwrap();
        mails_to(&db, email, 3, "the reset mail").await;
        let token = delivered_to(&db, email)
            .iter()
            .find(|m| m.subject() == "Reset your password")
            .expect("a reset mail")
            .token(NO_SERVER_URL, "/reset-password");
        flows
            .reset_password(&token, PASSWORD, &client())
            .await
            .unwrap();
        eventually("the reset notice", changed(2)).await;
        let notice = delivered_to(&db, email).pop().unwrap();
        assert!(
            notice.text().contains("reset with a link"),
            "{}",
            notice.text()
        );

        // A deactivated account's outstanding links stop working.
        flows
            .request_password_reset(email, &client())
            .await
            .unwrap();
        mails_to(&db, email, 5, "another reset mail").await;
        let token = delivered_to(&db, email)
            .pop()
            .unwrap()
            .token(NO_SERVER_URL, "/reset-password");
        assert!(flows.reset_link_is_live(&token).await.unwrap());
        flows.store.set_active(id, false).await.unwrap();
        assert!(!flows.reset_link_is_live(&token).await.unwrap());
        assert!(matches!(
            flows
                .reset_password(&token, OTHER_PASSWORD, &client())
                .await,
            Err(Error::InvalidResetToken)
        ));
        app.shutdown(Duration::from_secs(5)).await;
    }
);

both_backends!(
    security_events_are_kept_for_the_retention_period,
    |backend: Backend| async move {
        let (db, first) = TestApp::builder(backend).build().await;
        let id = register(first.flows(), "kept@example.com").await;
        first
            .flows()
            .login("kept@example.com", OTHER_PASSWORD, &client())
            .await
            .unwrap_err();
        first.shutdown(Duration::from_secs(5)).await;
        let store = Store::connect(&db.url).await.unwrap();
        // The registration 91 days ago, the failed login 89 days ago.
        for (kind, age_days) in [("user_created", 91), ("login_failed", 89)] {
            sqlx::query("UPDATE security_events SET created_at = created_at - $1 WHERE kind = $2")
                .bind(age_days * 86_400_i64)
                .bind(kind)
                .execute(store.pool())
                .await
                .unwrap();
        }
        // A new start purges at once, then hourly.
        let (_db, second) = TestApp::builder_on(db.clone()).build().await;
        let events = || {
            let store = store.clone();
            async move { store.recent_events(id, 10).await.unwrap() }
        };
        eventually("the old event to go", || {
            let events = events();
            async move { !events.await.contains(&SecurityEvent::UserCreated) }
        })
        .await;
        assert_eq!(events().await, [SecurityEvent::LoginFailed]);
        second.shutdown(Duration::from_secs(5)).await;
        store.close().await;
    }
);

both_backends!(
    unicode_spellings_of_one_address_are_one_account,
    |backend: Backend| async move {
        let (db, app) = TestApp::builder(backend).build().await;
        let flows = app.flows();
        let composed = "j\u{fc}rgen@example.com";
        let decomposed = "ju\u{308}rgen@example.com";
        let full_width = "\u{ff2a}\u{dc}RGEN@example.com";
        register(flows, composed).await;
        for other in [decomposed, full_width] {
            assert!(
                matches!(
                    flows
                        .register(registration(other, PASSWORD), &client())
                        .await,
                    Err(Error::EmailAlreadyExists)
                ),
                "{other:?} registered a second account"
            );
            assert!(
                flows.login(other, PASSWORD, &client()).await.is_ok(),
                "{other:?}"
            );
        }
        app.shutdown(Duration::from_secs(5)).await;

        // An account stored with a key from before NFKC: the next start
        // recomputes it, once.
        let store = Store::connect(&db.url).await.unwrap();
        sqlx::query(
            "INSERT INTO users (email, email_key, password_hash, is_active, is_verified, is_superuser, extra, created_at, updated_at) \
             VALUES ($1, $2, 'x', TRUE, FALSE, FALSE, '{}', 0, 0)",
        )
        .bind("Ze\u{301}na@example.com")
        .bind("ze\u{301}na@example.com")
        .execute(store.pool())
        .await
        .unwrap();
        sqlx::query("DELETE FROM data_migrations")
            .execute(store.pool())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let key: String = sqlx::query("SELECT email_key FROM users WHERE email = $1")
            .bind("Ze\u{301}na@example.com")
            .fetch_one(store.pool())
            .await
            .unwrap()
            .get("email_key");
        assert_eq!(key, "z\u{e9}na@example.com");
        assert!(
            store
                .user_by_email("z\u{e9}na@example.com")
                .await
                .unwrap()
                .is_some()
        );
        store.close().await;
    }
);
