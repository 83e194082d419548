//! The signed-in user's endpoints (SPEC §6): `/me`, change-password, logout
//! and the session list, on SQLite and PostgreSQL.

#[macro_use]
mod common;

use common::*;
use portcullis::store::{Lifetimes, NewSession, SessionOpening, StillValid};
use reqwest::header::USER_AGENT;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Checks a `{"message": "…"}` acknowledgement.
#[track_caller]
fn expect_message(reply: &Reply) {
    let data = reply.expect_ok(StatusCode::OK);
    assert_eq!(keys(data), ["message"], "{}", reply.text());
    assert!(data["message"].as_str().is_some_and(|m| !m.is_empty()));
}

// ---- /me -----------------------------------------------------------------------------

both_backends!(me_shows_and_updates_the_profile, |app| async move {
    let user = app.register("mia@example.com", PASSWORD).await;
    let me = app.me(&user.access).await;
    let original = me.expect_ok(StatusCode::OK).clone();
    assert_eq!(original["email"], json!("mia@example.com"));
    assert_eq!(original["name"], Value::Null);

    let reply = app
        .auth_patch_json("/me", &user.access, &json!({"name": "Mia Wallace"}))
        .await;
    let updated = reply.expect_ok(StatusCode::OK);
    assert_eq!(updated["name"], json!("Mia Wallace"));
    assert_eq!(updated["email"], original["email"]);
    assert_eq!(updated["id"], original["id"]);
    assert_eq!(updated["created_at"], original["created_at"]);
    assert_eq!(keys(updated), keys(&original));
    assert_eq!(
        app.me(&user.access).await.expect_ok(StatusCode::OK)["name"],
        json!("Mia Wallace"),
        "the change is stored"
    );

    // An empty patch changes nothing.
    let reply = app.auth_patch_json("/me", &user.access, &json!({})).await;
    assert_eq!(
        reply.expect_ok(StatusCode::OK)["name"],
        json!("Mia Wallace")
    );

    // Locked or invalid fields are refused and change nothing.
    for (body, field) in [
        (json!({"email": "other@example.com"}), "email"),
        (
            json!({"name": "Mallory", "email": "other@example.com"}),
            "email",
        ),
        (json!({"is_superuser": true}), "is_superuser"),
        (json!({"is_active": false}), "is_active"),
        (json!({"is_verified": true}), "is_verified"),
        (json!({"password": OTHER_PASSWORD}), "password"),
        (json!({"name": "n".repeat(101)}), "name"),
        (json!({"name": 5}), "name"),
    ] {
        let reply = app.auth_patch_json("/me", &user.access, &body).await;
        reply.expect_invalid_field(field);
    }
    let after = app.me(&user.access).await;
    let after = after.expect_ok(StatusCode::OK);
    assert_eq!(after["email"], json!("mia@example.com"));
    assert_eq!(after["name"], json!("Mia Wallace"));
    assert_eq!(after["is_superuser"], json!(false));
    assert_eq!(after["is_verified"], json!(false));
    assert_eq!(after["is_active"], json!(true));
    // The old e-mail still logs in; the requested one does not exist.
    assert_eq!(app.count_users_in_db("other@example.com").await, 0);

    // null clears the name.
    let reply = app
        .auth_patch_json("/me", &user.access, &json!({"name": null}))
        .await;
    assert_eq!(reply.expect_ok(StatusCode::OK)["name"], Value::Null);
    assert_eq!(
        app.me(&user.access).await.expect_ok(StatusCode::OK)["name"],
        Value::Null
    );

    // A refresh token cannot be used here.
    app.auth_patch_json("/me", &user.refresh, &json!({"name": "x"}))
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "INVALID_TOKEN");
});

// ---- change password -----------------------------------------------------------------

both_backends!(
    change_password_keeps_this_session_and_revokes_others,
    |app| async move {
        let this = app.register("ned@example.com", PASSWORD).await;
        let other = app.login(&this, PASSWORD).await;

        let wrong = app
            .auth_post_json(
                "/change-password",
                &this.access,
                &json!({"current_password": "Not-The-Password-1", "new_password": OTHER_PASSWORD}),
            )
            .await;
        wrong.expect_error(StatusCode::BAD_REQUEST, "INVALID_PASSWORD");
        // Nothing changed.
        app.me(&other.access).await.expect_ok(StatusCode::OK);

        // The new password follows the policy.
        for weak in ["password123", "short", "ned@example.com"] {
            let reply = app
                .auth_post_json(
                    "/change-password",
                    &this.access,
                    &json!({"current_password": PASSWORD, "new_password": weak}),
                )
                .await;
            reply.expect_invalid_field("new_password");
        }
        app.auth_post_json(
            "/change-password",
            &this.access,
            &json!({"current_password": PASSWORD}),
        )
        .await
        .expect_invalid_field("new_password");
        app.me(&other.access).await.expect_ok(StatusCode::OK);

        let reply = app
            .auth_post_json(
                "/change-password",
                &this.access,
                &json!({"current_password": PASSWORD, "new_password": OTHER_PASSWORD}),
            )
            .await;
        expect_message(&reply);

        // This session stays valid, refresh included; the other one is revoked.
        app.me(&this.access).await.expect_ok(StatusCode::OK);
        app.me(&other.access).await.expect_error_message(
            StatusCode::UNAUTHORIZED,
            "TOKEN_REVOKED",
            "Token has been revoked",
        );
        app.refresh(&other.refresh)
            .await
            .expect_error(StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");
        let (a2, _) = app.refresh_ok(&this.refresh).await;
        let sessions = app.sessions(&a2).await;
        assert_eq!(sessions.len(), 1);
        assert_eq!(sessions[0]["current"], json!(true));

        // Only the new password logs in.
        app.login_json("ned@example.com", PASSWORD)
            .await
            .expect_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
        app.login_json("ned@example.com", OTHER_PASSWORD)
            .await
            .expect_ok(StatusCode::OK);
        // And the old one is no longer the current password.
        app.auth_post_json(
            "/change-password",
            &this.access,
            &json!({"current_password": PASSWORD, "new_password": "Third-Password-99"}),
        )
        .await
        .expect_error(StatusCode::BAD_REQUEST, "INVALID_PASSWORD");
    }
);

// ---- logout --------------------------------------------------------------------------

both_backends!(logout_revokes_this_session_or_all, |app| async move {
    let a = app.register("ola@example.com", PASSWORD).await;
    let b = app.login(&a, PASSWORD).await;
    let c = app.login(&a, PASSWORD).await;
    let d = app.login(&a, PASSWORD).await;

    // No body: this session only.
    expect_message(&app.auth_post_empty("/logout", &a.access).await);
    app.me(&a.access).await.expect_error_message(
        StatusCode::UNAUTHORIZED,
        "TOKEN_REVOKED",
        "Token has been revoked",
    );
    app.refresh(&a.refresh)
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");
    app.auth_post_empty("/logout", &a.access)
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");
    app.me(&b.access).await.expect_ok(StatusCode::OK);

    // {"all": false}: this session only.
    expect_message(
        &app.auth_post_json("/logout", &b.access, &json!({"all": false}))
            .await,
    );
    app.me(&b.access)
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");
    app.me(&c.access).await.expect_ok(StatusCode::OK);
    app.me(&d.access).await.expect_ok(StatusCode::OK);
    assert_eq!(app.sessions(&c.access).await.len(), 2);

    // {"all": true}: every session of the user.
    expect_message(
        &app.auth_post_json("/logout", &c.access, &json!({"all": true}))
            .await,
    );
    for s in [&c, &d] {
        app.me(&s.access)
            .await
            .expect_error(StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");
        app.refresh(&s.refresh)
            .await
            .expect_error(StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");
    }

    // Logging in again works.
    let e = app.login(&a, PASSWORD).await;
    assert_eq!(app.sessions(&e.access).await.len(), 1);
});

both_backends!(logout_all_leaves_other_users_alone, |app| async move {
    let a = app.register("pam@example.com", PASSWORD).await;
    let b = app.register("quinn@example.com", PASSWORD).await;
    expect_message(
        &app.auth_post_json("/logout", &a.access, &json!({"all": true}))
            .await,
    );
    app.me(&a.access)
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");
    app.me(&b.access).await.expect_ok(StatusCode::OK);
    app.refresh_ok(&b.refresh).await;
});

// ---- sessions -------------------------------------------------------------------------

both_backends!(sessions_list_the_users_open_sessions, |app| async move {
    let reply = app
        .send(
            app.request(Method::POST, "/register")
                .header(USER_AGENT, "agent-A")
                .json(&json!({"email": "rae@example.com", "password": PASSWORD})),
        )
        .await;
    let data = reply.expect_ok(StatusCode::CREATED);
    let a = data["access_token"].as_str().unwrap().to_string();
    let reply = app
        .send(
            app.request(Method::POST, "/login/json")
                .header(USER_AGENT, "agent-B")
                .json(&json!({"email": "rae@example.com", "password": PASSWORD})),
        )
        .await;
    let b = reply.expect_ok(StatusCode::OK)["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    // Someone else's session is not listed.
    let stranger = app.register("sam@example.com", PASSWORD).await;

    let t0 = now();
    let from_a = app.sessions(&a).await;
    assert_eq!(from_a.len(), 2, "{from_a:?}");
    for s in &from_a {
        assert_eq!(
            keys(s),
            [
                "created_at",
                "current",
                "id",
                "ip",
                "last_used_at",
                "user_agent"
            ],
            "{s}"
        );
        let id = s["id"].as_str().expect("id is a string");
        assert!(!id.is_empty());
        assert_ne!(id, stranger.sid());
        assert_eq!(s["ip"], json!("127.0.0.1"));
        let created = rfc3339(&s["created_at"]);
        let used = rfc3339(&s["last_used_at"]);
        assert!((created - t0).abs() <= 10, "created_at {created} vs {t0}");
        assert!(used >= created);
    }
    let current: Vec<&Value> = from_a
        .iter()
        .filter(|s| s["current"] == json!(true))
        .collect();
    assert_eq!(current.len(), 1, "exactly one current session: {from_a:?}");
    assert_eq!(current[0]["user_agent"], json!("agent-A"));
    let not_current: Vec<&Value> = from_a
        .iter()
        .filter(|s| s["current"] == json!(false))
        .collect();
    assert_eq!(not_current.len(), 1);
    assert_eq!(not_current[0]["user_agent"], json!("agent-B"));
    assert_ne!(current[0]["id"], not_current[0]["id"]);

    // Seen from B, the same sessions with the flag moved.
    let from_b = app.sessions(&b).await;
    assert_eq!(from_b.len(), 2);
    let b_current: Vec<&Value> = from_b
        .iter()
        .filter(|s| s["current"] == json!(true))
        .collect();
    assert_eq!(b_current.len(), 1);
    assert_eq!(b_current[0]["id"], not_current[0]["id"]);
    assert_eq!(b_current[0]["user_agent"], json!("agent-B"));
    let mut ids_a: Vec<&Value> = from_a.iter().map(|s| &s["id"]).collect();
    let mut ids_b: Vec<&Value> = from_b.iter().map(|s| &s["id"]).collect();
    ids_a.sort_by_key(|v| v.to_string());
    ids_b.sort_by_key(|v| v.to_string());
    assert_eq!(ids_a, ids_b);

    // A logged-out session leaves the list.
    expect_message(&app.auth_post_empty("/logout", &b).await);
    let after = app.sessions(&a).await;
    assert_eq!(after.len(), 1);
    assert_eq!(after[0]["current"], json!(true));
    assert_eq!(app.sessions(&stranger.access).await.len(), 1);
});

both_backends!(deleting_sessions, |app| async move {
    let a = app.register("tia@example.com", PASSWORD).await;
    let b = app.login(&a, PASSWORD).await;
    let stranger = app.register("uma@example.com", PASSWORD).await;

    let listed = app.sessions(&a.access).await;
    let b_id = listed
        .iter()
        .find(|s| s["current"] == json!(false))
        .and_then(|s| s["id"].as_str())
        .expect("B's session is listed")
        .to_string();
    let a_id = listed
        .iter()
        .find(|s| s["current"] == json!(true))
        .and_then(|s| s["id"].as_str())
        .expect("A's session is listed")
        .to_string();

    // Another user's session: 404, and it survives.
    app.auth_delete(&format!("/sessions/{b_id}"), &stranger.access)
        .await
        .expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    app.me(&b.access).await.expect_ok(StatusCode::OK);
    // Malformed and unknown ids: 404.
    for id in [
        "abc",
        "AAAAAAAAAAAAAAAAAAAAAA",
        "%27%20OR%201%3D1--",
        &"x".repeat(300),
        &stranger.sid()[..10],
    ] {
        app.auth_delete(&format!("/sessions/{id}"), &a.access)
            .await
            .expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    }
    app.me(&b.access).await.expect_ok(StatusCode::OK);
    app.me(&stranger.access).await.expect_ok(StatusCode::OK);

    // One's own other session: revoked.
    expect_message(
        &app.auth_delete(&format!("/sessions/{b_id}"), &a.access)
            .await,
    );
    app.me(&b.access).await.expect_error_message(
        StatusCode::UNAUTHORIZED,
        "TOKEN_REVOKED",
        "Token has been revoked",
    );
    app.refresh(&b.refresh)
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");
    app.me(&a.access).await.expect_ok(StatusCode::OK);
    let listed = app.sessions(&a.access).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], json!(a_id));
    // Gone now.
    app.auth_delete(&format!("/sessions/{b_id}"), &a.access)
        .await
        .expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");

    // The current session too: that is a logout.
    expect_message(
        &app.auth_delete(&format!("/sessions/{a_id}"), &a.access)
            .await,
    );
    app.me(&a.access)
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");
    app.me(&stranger.access).await.expect_ok(StatusCode::OK);
});

both_backends!(expired_sessions_and_tokens_are_purged, |app| async move {
    let user = app.register(&unique_email("purge"), PASSWORD).await;
    let store = app.store();
    let now = now();
    // A session whose refresh token expired a minute ago.
    let lifetimes = Lifetimes {
        refresh_secs: -60,
        session_max_secs: 86_400,
        grace_secs: 0,
    };
    let opened = store
        .open_session(
            &NewSession {
                session_id: "expiredsessionid000000",
                user_id: user.user_id,
                refresh_jti: "expired-jti",
                lifetimes: &lifetimes,
                client: &Default::default(),
                now,
            },
            &StillValid {
                password_hash: None,
                require_verified: false,
            },
        )
        .await
        .expect("create session");
    assert!(
        matches!(opened, SessionOpening::Opened { refresh_expires_at } if refresh_expires_at <= now - 60)
    );
    let sessions_before = app.count_sessions_in_db(user.user_id).await;
    assert_eq!(sessions_before, 2);
    let removed = store.purge_expired(now).await.expect("purge");
    assert_eq!(removed, 2, "the expired session and its refresh token");
    assert_eq!(app.count_sessions_in_db(user.user_id).await, 1);
    // The live session is untouched.
    app.me(&user.access).await.expect_ok(StatusCode::OK);
    app.refresh_ok(&user.refresh).await;
    assert_eq!(store.purge_expired(now).await.expect("purge"), 0);
});

both_backends!(
    /// A refresh two minutes before the session's absolute end
    /// (`SESSION_MAX_LIFETIME_DAYS`) gets an access token (and `expires_in`)
    /// that ends with the session, not a full hour past it.
    a_refresh_near_the_sessions_end_gets_no_access_past_it,
    |backend: Backend| async move {
        let app = TestApp::builder(backend)
            .vars(&[
                ("SESSION_MAX_LIFETIME_DAYS", "1"),
                ("REFRESH_TOKEN_EXPIRE_DAYS", "1"),
                ("ACCESS_TOKEN_EXPIRE_MINUTES", "60"),
            ])
            .spawn()
            .await;
        let user = app.register("ending@example.com", PASSWORD).await;
        let sid = jwt_parts(&user.access).1["sid"]
            .as_str()
            .expect("sid")
            .to_string();
        sqlx::query("UPDATE sessions SET created_at = created_at - $1 WHERE id = $2")
            .bind(86_400_i64 - 120)
            .bind(&sid)
            .execute(app.store().pool())
            .await
            .unwrap();
        let before = now();
        let reply = app.refresh(&user.refresh).await;
        let data = reply.expect_ok(StatusCode::OK);
        let access = data["access_token"].as_str().unwrap();
        let exp = jwt_parts(access).1["exp"].as_i64().unwrap();
        let refresh_exp = jwt_parts(data["refresh_token"].as_str().unwrap()).1["exp"]
            .as_i64()
            .unwrap();
        assert!(exp <= refresh_exp, "access {exp} past the session's end {refresh_exp}");
        assert!(exp <= before + 121, "the access token lasts {} s", exp - before);
        let expires_in = data["expires_in"].as_i64().unwrap();
        assert!((1..=121).contains(&expires_in), "expires_in {expires_in}");
        app.me(access).await.expect_ok(StatusCode::OK);
    }
);
