//! The account rules, tested against the flows directly (no HTTP), on SQLite
//! and PostgreSQL: no user enumeration, re-hash on login, refresh reuse
//! detection, reset revoking every session, and a shutdown that waits for
//! the background work before the database closes.

#[macro_use]
mod common;
#[allow(unused_imports)]
mod mail_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{OTHER_PASSWORD, PASSWORD, SECRET, TestDb};
use mail_support::{Mail, read_mail_dir};
use portcullis::domain::{ClientInfo, SecurityEvent};
use portcullis::flows::{Registered, Registration};
use portcullis::store::Store;
use portcullis::{Config, Error, Flows, Portcullis};
use sqlx::Row;

/// Where the mailed links point.
const APP_URL: &str = "http://app.test";

/// A Portcullis on `db` without any HTTP server, configured by `vars` over
/// the test defaults.
async fn portcullis_on(db: &TestDb, vars: &[(&str, &str)]) -> Portcullis {
    let dir = db.dir.path();
    let mut all = vec![
        ("SECRET_KEY".to_string(), SECRET.to_string()),
        ("DATABASE_URL".to_string(), db.url.clone()),
        ("APP_URL".to_string(), APP_URL.to_string()),
        (
            "DATA_DIR".to_string(),
            dir.join("data").display().to_string(),
        ),
        (
            "MAIL_OUTBOX_DIR".to_string(),
            dir.join("outbox").display().to_string(),
        ),
    ];
    all.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let config = Config::from_vars(all).expect("test configuration");
    Portcullis::builder(config)
        .build()
        .await
        .expect("build Portcullis")
}

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

/// The text of the messages queued for `to`, oldest first.
async fn mail_to(store: &Store, to: &str) -> Vec<String> {
    sqlx::query("SELECT text_body FROM mail_queue WHERE recipient = $1 ORDER BY id")
        .bind(to)
        .fetch_all(store.pool())
        .await
        .expect("read mail_queue")
        .iter()
        .map(|r| r.get::<String, _>("text_body"))
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
    backend
        | backend
        | async move {
            let db = TestDb::create(backend).await;
            let app = portcullis_on(&db, &[]).await;
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
    backend
        | backend
        | async move {
            let db = TestDb::create(backend).await;
            let old = portcullis_on(
                &db,
                &[("PASSWORD_HASHER", "bcrypt"), ("BCRYPT_ROUNDS", "4")],
            )
            .await;
            let id = register(old.flows(), "legacy@example.com").await;
            let stored = |store: Store| async move {
                store.user_by_id(id).await.unwrap().unwrap().password_hash
            };
            assert!(stored(old.flows().store.clone()).await.starts_with("$2"));
            old.shutdown(Duration::from_secs(5)).await;

            let new = portcullis_on(&db, &[]).await;
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
    backend
        | backend
        | async move {
            let db = TestDb::create(backend).await;
            let app = portcullis_on(&db, &[("REFRESH_REUSE_GRACE_SECONDS", "0")]).await;
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
    backend
        | backend
        | async move {
            let db = TestDb::create(backend).await;
            let app = portcullis_on(&db, &[]).await;
            let flows = app.flows();
            let email = "reset@example.com";
            register(flows, email).await;
            let laptop = flows.login(email, PASSWORD, &client()).await.unwrap();
            let phone = flows.login(email, PASSWORD, &client()).await.unwrap();

            flows
                .request_password_reset(email, &client())
                .await
                .unwrap();
            eventually("the reset mail", || {
                let n = delivered_to(&db, email).len();
                async move { n == 2 }
            })
            .await;
            let token = delivered_to(&db, email)[1].token(APP_URL, "/reset-password");
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
    backend
        | backend
        | async move {
            let db = TestDb::create(backend).await;
            let app = portcullis_on(&db, &[]).await;
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
    backend
        | backend
        | async move {
            let db = TestDb::create(backend).await;
            let app = portcullis_on(&db, &[("REQUIRE_EMAIL_VERIFICATION", "true")]).await;
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
            assert!(
                subjects[1].contains("you already have one"),
                "{}",
                subjects[1]
            );
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
    backend
        | backend
        | async move {
            let db = TestDb::create(backend).await;
            let app = portcullis_on(&db, &[]).await;
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
    backend
        | backend
        | async move {
            let db = TestDb::create(backend).await;
            let app = portcullis_on(&db, &[]).await;
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
