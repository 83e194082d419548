//! Concurrency (SPEC §4, §5, §6, §10): one e-mail registered at once from
//! many clients, one refresh token presented by many tabs at once, and the
//! single-use secrets (a reset token, a recovery code) sent to two instances
//! on one database at once, on SQLite and PostgreSQL.

#[macro_use]
mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::*;
use reqwest::StatusCode;
use serde_json::json;
use tokio::task::JoinSet;

/// Concurrent attempts with one single-use secret.
const ATTEMPTS: usize = 20;

/// Two instances on one fresh database of `backend`.
async fn two_instances(backend: Backend) -> (Arc<TestApp>, Arc<TestApp>) {
    let a = TestApp::spawn(backend, &[]).await;
    let b = a.spawn_sharing(&[]).await;
    (Arc::new(a), Arc::new(b))
}

both_backends!(
    concurrent_registrations_of_one_email_create_one_user,
    |app| async move {
        let app = Arc::new(app);
        let mut tasks = JoinSet::new();
        for i in 0..30 {
            let app = app.clone();
            // The same address in varying letter case.
            let email = if i % 2 == 0 {
                "race@example.com".to_string()
            } else {
                "Race@Example.com".to_string()
            };
            tasks.spawn(async move { app.register_raw(&email, PASSWORD).await });
        }
        let mut created = 0;
        let mut conflicts = 0;
        while let Some(reply) = tasks.join_next().await {
            let reply = reply.expect("task");
            match reply.status {
                StatusCode::CREATED => {
                    reply.expect_ok(StatusCode::CREATED);
                    created += 1;
                }
                _ => {
                    reply.expect_error(StatusCode::CONFLICT, "EMAIL_ALREADY_EXISTS");
                    conflicts += 1;
                }
            }
        }
        assert_eq!((created, conflicts), (1, 29));
        assert_eq!(app.count_users_in_db("race@example.com").await, 1);
        app.login_json("RACE@example.com", PASSWORD)
            .await
            .expect_ok(StatusCode::OK);
    }
);

both_backends!(
    concurrent_refreshes_with_one_token_share_one_session,
    |app| async move {
        let user = app.register("tabs@example.com", PASSWORD).await;
        let app = Arc::new(app);
        let mut tasks = JoinSet::new();
        for _ in 0..20 {
            let app = app.clone();
            let token = user.refresh.clone();
            tasks.spawn(async move { app.refresh(&token).await });
        }
        let mut pairs = Vec::new();
        while let Some(reply) = tasks.join_next().await {
            let reply = reply.expect("task");
            let data = reply.expect_ok(StatusCode::OK);
            expect_token_pair(data);
            pairs.push((
                data["access_token"].as_str().unwrap().to_string(),
                data["refresh_token"].as_str().unwrap().to_string(),
            ));
        }
        assert_eq!(pairs.len(), 20);
        for (access, refresh) in &pairs {
            assert_eq!(sid_of(access), user.sid());
            assert_eq!(sid_of(refresh), user.sid());
        }
        // SPEC §5: a replay within the grace gets the *same* successor, so
        // the session never has two live refresh tokens (no forks).
        let successors: HashSet<String> = pairs
            .iter()
            .map(|(_, r)| jwt_parts(r).1["jti"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            successors.len(),
            1,
            "every answer carries the one successor refresh token"
        );

        // One session, seen through the API and in the database.
        let sessions = app.sessions(&pairs[0].0).await;
        assert_eq!(sessions.len(), 1, "{sessions:?}");
        assert_eq!(sessions[0]["current"], json!(true));
        assert_eq!(app.count_sessions_in_db(user.user_id).await, 1);

        // Every pair handed out works: the access tokens, and each refresh token.
        let mut tasks = JoinSet::new();
        for (access, refresh) in pairs {
            let app = app.clone();
            tasks.spawn(async move {
                app.me(&access).await.expect_ok(StatusCode::OK);
                app.refresh_ok(&refresh).await
            });
        }
        while let Some(result) = tasks.join_next().await {
            let (access, _) = result.expect("task");
            assert_eq!(sid_of(&access), user.sid());
        }
        assert_eq!(app.count_sessions_in_db(user.user_id).await, 1);
        app.me(&user.access).await.expect_ok(StatusCode::OK);
    }
);

both_backends!(
    one_reset_token_sent_to_two_instances_at_once_resets_once,
    |backend: Backend| async move {
        let (a, b) = two_instances(backend).await;
        let user = a.register(&unique_email("reset-race"), PASSWORD).await;
        let token = a.mailed_reset_token(&user.email).await;
        let mut tasks = JoinSet::new();
        for i in 0..ATTEMPTS {
            let app = if i % 2 == 0 { a.clone() } else { b.clone() };
            let token = token.clone();
            // Each attempt sets a password of its own, so the winner shows.
            let password = format!("{OTHER_PASSWORD}-{i}");
            tasks.spawn(async move {
                let body = json!({"token": token, "new_password": password});
                (password, app.post_json("/reset-password", &body).await)
            });
        }
        let mut winners = Vec::new();
        while let Some(result) = tasks.join_next().await {
            let (password, reply) = result.expect("task");
            if reply.status == StatusCode::OK {
                reply.expect_ok(StatusCode::OK);
                winners.push(password);
            } else {
                reply.expect_error(StatusCode::BAD_REQUEST, "INVALID_RESET_TOKEN");
            }
        }
        assert_eq!(winners.len(), 1, "exactly one reset: {winners:?}");
        // The winner's password is the password, on both instances.
        a.login(&user, &winners[0]).await;
        b.login(&user, &winners[0]).await;
        a.login_json(&user.email, PASSWORD)
            .await
            .expect_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    }
);

both_backends!(
    one_recovery_code_sent_to_two_instances_at_once_passes_once,
    |backend: Backend| async move {
        let (a, b) = two_instances(backend).await;
        let user = enroll_totp(&a, "recovery-race").await;
        let email = user.session.email.clone();
        // Half the attempts: fewer wrong codes than the login's window
        // allows, so every loser is told its code is wrong.
        let attempts = ATTEMPTS / 2;
        let mut tokens = Vec::new();
        for i in 0..attempts {
            let app = if i % 2 == 0 { &a } else { &b };
            tokens.push(app.mfa_challenge(&email).await);
        }
        let code = user.recovery[0].clone();
        let mut tasks = JoinSet::new();
        for (i, mfa_token) in tokens.into_iter().enumerate() {
            // Each token to the instance that did not issue it.
            let app = if i % 2 == 0 { b.clone() } else { a.clone() };
            let code = code.clone();
            tasks.spawn(async move {
                let body = json!({"mfa_token": mfa_token, "method": "recovery_code", "code": code});
                app.post_json("/mfa/verify", &body).await
            });
        }
        let mut passed = Vec::new();
        while let Some(reply) = tasks.join_next().await {
            let reply = reply.expect("task");
            if reply.status == StatusCode::OK {
                passed.push(reply.expect_ok(StatusCode::OK).clone());
            } else {
                reply.expect_error(StatusCode::UNAUTHORIZED, "INVALID_MFA_CODE");
            }
        }
        assert_eq!(passed.len(), 1, "exactly one second step: {passed:?}");
        assert_eq!(passed[0]["recovery_codes_remaining"], json!(9));
        let access = passed[0]["access_token"].as_str().expect("access_token");
        a.me(access).await.expect_ok(StatusCode::OK);
        let left = sqlx::query_scalar::<sqlx::Any, i64>(
            "SELECT COUNT(*) FROM mfa_recovery_codes WHERE user_id = $1 AND used_at IS NULL",
        )
        .bind(user.session.user_id)
        .fetch_one(a.store().pool())
        .await
        .expect("count recovery codes");
        assert_eq!(left, 9);
    }
);
