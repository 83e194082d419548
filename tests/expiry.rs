//! Expiry of the short-lived tokens (SPEC §6, §10), black-box over HTTP on
//! SQLite and PostgreSQL: a password-reset token, an e-mail verification
//! token and an `mfa_token` are refused once their end has come, and the
//! same token still works just before it. No waiting: the test moves the
//! token's `expires_at` in the database, and checks that the server set it
//! at the configured lifetime.

#[macro_use]
mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::json;

/// Seconds a token is given to live when the test shows it works just
/// before its end (ample for one request on a loaded machine).
const JUST_BEFORE: i64 = 30;

/// Where a kind of token is stored, and which of its rows are the user's
/// pending tokens of that kind.
#[derive(Clone, Copy)]
enum Kind {
    Reset,
    Verify,
    Mfa,
}

impl Kind {
    fn set_expiry_sql(self) -> &'static str {
        match self {
            Kind::Reset => {
                "UPDATE one_time_tokens SET expires_at = $1 \
                 WHERE user_id = $2 AND purpose = 'reset' AND used_at IS NULL"
            }
            Kind::Verify => {
                "UPDATE one_time_tokens SET expires_at = $1 \
                 WHERE user_id = $2 AND purpose = 'verify' AND used_at IS NULL"
            }
            Kind::Mfa => {
                "UPDATE mfa_tokens SET expires_at = $1 WHERE user_id = $2 AND used_at IS NULL"
            }
        }
    }

    fn lifetime_sql(self) -> &'static str {
        match self {
            Kind::Reset => {
                "SELECT expires_at - created_at FROM one_time_tokens \
                 WHERE user_id = $1 AND purpose = 'reset' AND used_at IS NULL"
            }
            Kind::Verify => {
                "SELECT expires_at - created_at FROM one_time_tokens \
                 WHERE user_id = $1 AND purpose = 'verify' AND used_at IS NULL"
            }
            Kind::Mfa => {
                "SELECT expires_at - created_at FROM mfa_tokens \
                 WHERE user_id = $1 AND used_at IS NULL"
            }
        }
    }
}

/// Makes the one pending token of `kind` of `user_id` end at `at` (Unix
/// seconds), behind the server's back.
async fn expire_at(app: &TestApp, kind: Kind, user_id: i64, at: i64) {
    let moved = sqlx::query::<sqlx::Any>(kind.set_expiry_sql())
        .bind(at)
        .bind(user_id)
        .execute(app.store().pool())
        .await
        .expect("move expires_at")
        .rows_affected();
    assert_eq!(moved, 1, "one pending token of the user");
}

/// The lifetime (seconds) the server gave the one pending token of `kind`
/// of `user_id`.
async fn lifetime(app: &TestApp, kind: Kind, user_id: i64) -> i64 {
    sqlx::query_scalar::<sqlx::Any, i64>(kind.lifetime_sql())
        .bind(user_id)
        .fetch_one(app.store().pool())
        .await
        .expect("one pending token")
}

/// `POST /reset-password` with [`OTHER_PASSWORD`].
async fn reset(app: &TestApp, token: &str) -> Reply {
    app.post_json(
        "/reset-password",
        &json!({"token": token, "new_password": OTHER_PASSWORD}),
    )
    .await
}

/// `POST /mfa/verify` with a recovery code.
async fn recover(app: &TestApp, mfa_token: &str, code: &str) -> Reply {
    app.post_json(
        "/mfa/verify",
        &json!({"mfa_token": mfa_token, "method": "recovery_code", "code": code}),
    )
    .await
}

both_backends!(
    a_reset_token_is_refused_from_its_end_and_works_just_before,
    vars[("RESET_TOKEN_EXPIRE_MINUTES", "7")],
    |app| async move {
        let user = app.register(&unique_email("reset-end"), PASSWORD).await;
        let token = app.mailed_reset_token(&user.email).await;
        assert_eq!(lifetime(&app, Kind::Reset, user.user_id).await, 7 * 60);

        // Its end is this very second: refused, and nothing changed.
        expire_at(&app, Kind::Reset, user.user_id, now()).await;
        reset(&app, &token)
            .await
            .expect_error(StatusCode::BAD_REQUEST, "INVALID_RESET_TOKEN");
        app.login(&user, PASSWORD).await;

        // The same token with a little time left: it works.
        expire_at(&app, Kind::Reset, user.user_id, now() + JUST_BEFORE).await;
        reset(&app, &token).await.expect_ok(StatusCode::OK);
        app.login(&user, OTHER_PASSWORD).await;
    }
);

both_backends!(
    a_verification_token_is_refused_from_its_end_and_works_just_before,
    vars[("VERIFY_TOKEN_EXPIRE_HOURS", "3")],
    |app| async move {
        let user = app.register(&unique_email("verify-end"), PASSWORD).await;
        // Registration mails the link.
        let token = app
            .outbox_token(&user.email, VERIFY_SUBJECT, "/verify-email")
            .await;
        assert_eq!(lifetime(&app, Kind::Verify, user.user_id).await, 3 * 3600);
        let verified = |reply: Reply| reply.expect_ok(StatusCode::OK)["is_verified"].clone();

        expire_at(&app, Kind::Verify, user.user_id, now()).await;
        app.post_json("/verify-email", &json!({"token": token}))
            .await
            .expect_error(StatusCode::BAD_REQUEST, "INVALID_VERIFICATION_TOKEN");
        assert_eq!(verified(app.me(&user.access).await), json!(false));

        expire_at(&app, Kind::Verify, user.user_id, now() + JUST_BEFORE).await;
        app.post_json("/verify-email", &json!({"token": token}))
            .await
            .expect_ok(StatusCode::OK);
        assert_eq!(verified(app.me(&user.access).await), json!(true));
    }
);

both_backends!(
    an_mfa_token_is_refused_from_its_end_and_works_just_before,
    |app| async move {
        let user = enroll_totp(&app, "mfa-end").await;
        let id = user.session.user_id;
        let mfa_token = app.mfa_challenge(&user.session.email).await;
        assert_eq!(lifetime(&app, Kind::Mfa, id).await, 300);

        expire_at(&app, Kind::Mfa, id, now()).await;
        recover(&app, &mfa_token, &user.recovery[0])
            .await
            .expect_error(StatusCode::UNAUTHORIZED, "INVALID_MFA_TOKEN");

        expire_at(&app, Kind::Mfa, id, now() + JUST_BEFORE).await;
        let reply = recover(&app, &mfa_token, &user.recovery[0]).await;
        let access = reply.expect_ok(StatusCode::OK)["access_token"]
            .as_str()
            .expect("access_token");
        app.me(access).await.expect_ok(StatusCode::OK);
    }
);
