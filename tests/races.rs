//! Concurrency (SPEC §4, §5): one e-mail registered at once from many
//! clients, and one refresh token presented by many tabs at once, on SQLite
//! and PostgreSQL.

#[macro_use]
mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::*;
use reqwest::StatusCode;
use serde_json::json;
use tokio::task::JoinSet;

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
