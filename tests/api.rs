//! Registration, login, deactivation, the envelope on framework rejections,
//! and the operations endpoints (SPEC §3, §4, §6), on SQLite and PostgreSQL.

#[macro_use]
mod common;

use common::*;
use reqwest::header::{CONTENT_TYPE, USER_AGENT};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

// ---- register ----------------------------------------------------------------------

both_backends!(register_returns_user_and_token_pair, |app| async move {
    let before = now();
    let reply = app
        .post_json(
            "/register",
            &json!({"email": "  Ada.Lovelace+Tag@Example.COM ", "password": PASSWORD, "name": "Ada"}),
        )
        .await;
    let data = reply.expect_ok(StatusCode::CREATED);
    assert_eq!(
        keys(data),
        [
            "access_token",
            "expires_in",
            "refresh_token",
            "token_type",
            "user"
        ]
    );
    assert_eq!(data["token_type"], json!("bearer"));
    assert_eq!(data["expires_in"], json!(1800));
    let user = &data["user"];
    assert_eq!(
        keys(user),
        [
            "created_at",
            "email",
            "id",
            "is_active",
            "is_superuser",
            "is_verified",
            "name"
        ]
    );
    let id = user["id"].as_i64().expect("integer id");
    assert!(id > 0);
    assert_eq!(user["email"], json!("Ada.Lovelace+Tag@Example.COM"));
    assert_eq!(user["name"], json!("Ada"));
    assert_eq!(user["is_active"], json!(true));
    assert_eq!(user["is_verified"], json!(false));
    assert_eq!(user["is_superuser"], json!(false));
    let created = rfc3339(&user["created_at"]);
    assert!(
        created >= before - 2 && created <= now() + 2,
        "created_at {created}"
    );

    let text = reply.text();
    assert!(!text.contains("$argon2"), "a hash leaked: {text}");
    assert!(
        !text.contains("password"),
        "a password field leaked: {text}"
    );

    // The tokens work, and /me shows the same user.
    let access = data["access_token"].as_str().unwrap();
    let me = app.me(access).await;
    assert_eq!(me.expect_ok(StatusCode::OK), user);
    assert!(!me.text().contains("$argon2"));

    // Stored trimmed, as typed, found regardless of case, hashed with argon2id.
    let record = app
        .store()
        .user_by_email("ada.lovelace+tag@example.com")
        .await
        .unwrap()
        .expect("user stored");
    assert_eq!(record.user.id, id);
    assert_eq!(record.user.email, "Ada.Lovelace+Tag@Example.COM");
    assert!(
        record.password_hash.starts_with("$argon2id$"),
        "{}",
        record.password_hash
    );
    assert!(!record.password_hash.contains(PASSWORD));
});

both_backends!(register_same_email_in_any_case_is_409, |app| async move {
    let first = app
        .post_json(
            "/register",
            &json!({"email": "bob@example.com", "password": PASSWORD}),
        )
        .await;
    let data = first.expect_ok(StatusCode::CREATED);
    assert_eq!(data["user"]["name"], Value::Null, "name defaults to null");

    for email in ["bob@example.com", "BOB@Example.com", "  Bob@EXAMPLE.com  "] {
        let reply = app.register_raw(email, OTHER_PASSWORD).await;
        reply.expect_error(StatusCode::CONFLICT, "EMAIL_ALREADY_EXISTS");
    }
    assert_eq!(app.count_users_in_db("bob@example.com").await, 1);
    // The first owner's password still works; the intruder's does not.
    app.login_json("bob@example.com", PASSWORD)
        .await
        .expect_ok(StatusCode::OK);
    app.login_json("bob@example.com", OTHER_PASSWORD)
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
});

both_backends!(
    register_validation_errors_name_the_field,
    |app| async move {
        let long_name = "n".repeat(101);
        let long_password = "é".repeat(129);
        let long_email = format!("{}@example.com", "a".repeat(243)); // 255 characters
        let cases: Vec<(Value, &str)> = vec![
            (
                json!({"email": "not-an-email", "password": PASSWORD}),
                "email",
            ),
            (
                json!({"email": "carol@example", "password": PASSWORD}),
                "email",
            ),
            (
                json!({"email": "carol@@example.com", "password": PASSWORD}),
                "email",
            ),
            (json!({"email": long_email, "password": PASSWORD}), "email"),
            (json!({"email": 5, "password": PASSWORD}), "email"),
            (json!({"password": PASSWORD}), "email"),
            (
                json!({"email": "carol@example.com", "password": "Sh0rt!x"}),
                "password",
            ),
            (
                json!({"email": "carol@example.com", "password": "password123"}),
                "password",
            ),
            (
                json!({"email": "carol@example.com", "password": "qwerty123"}),
                "password",
            ),
            (
                json!({"email": "carol@example.com", "password": "PassWord123"}),
                "password",
            ),
            (
                json!({"email": "carol.jones@example.com", "password": "Carol.Jones@Example.com"}),
                "password",
            ),
            (
                json!({"email": "carol@example.com", "password": long_password}),
                "password",
            ),
            (json!({"email": "carol@example.com"}), "password"),
            (
                json!({"email": "carol@example.com", "password": null}),
                "password",
            ),
            (
                json!({"email": "carol@example.com", "password": PASSWORD, "name": long_name}),
                "name",
            ),
        ];
        for (body, field) in &cases {
            let reply = app.post_json("/register", body).await;
            assert_eq!(
                reply.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{body} -> {}",
                reply.text()
            );
            reply.expect_invalid_field(field);
        }

        // Several problems at once are all reported.
        let reply = app
            .post_json("/register", &json!({"email": "nope", "password": "short"}))
            .await;
        reply.expect_invalid_field("email");
        reply.expect_invalid_field("password");

        // Not an object at all.
        app.post_json("/register", &json!(["carol@example.com", PASSWORD]))
            .await
            .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");

        // Nothing was stored.
        assert_eq!(app.count_users_in_db("carol@example.com").await, 0);
        assert_eq!(app.count_users_in_db("carol.jones@example.com").await, 0);

        // The limits themselves are accepted: 128 characters (256 bytes), a
        // 100-character name, and an 8-character password.
        let reply = app
        .post_json(
            "/register",
            &json!({"email": "carol@example.com", "password": "é".repeat(128), "name": "n".repeat(100)}),
        )
        .await;
        let data = reply.expect_ok(StatusCode::CREATED);
        assert_eq!(data["user"]["name"], json!("n".repeat(100)));
        app.login_json("carol@example.com", &"é".repeat(128))
            .await
            .expect_ok(StatusCode::OK);
        app.register("dave@example.com", "Zq7#mK2p").await;
    }
);

both_backends!(
    register_with_bcrypt_refuses_more_than_72_bytes,
    vars[("PASSWORD_HASHER", "bcrypt"), ("BCRYPT_ROUNDS", "4")],
    |app| async move {
        // 40 characters but 80 bytes: fine for the length rule, too long for bcrypt.
        app.register_raw("erin@example.com", &"é".repeat(40))
            .await
            .expect_invalid_field("password");
        let pw73 = format!("{}x", "Zq7#mK2p".repeat(9));
        assert_eq!(pw73.len(), 73);
        app.register_raw("erin@example.com", &pw73)
            .await
            .expect_invalid_field("password");
        assert_eq!(app.count_users_in_db("erin@example.com").await, 0);

        // A long password under the limit is hashed with bcrypt, whole.
        let pw71 = &pw73[..71];
        app.register("erin@example.com", pw71).await;
        let record = app
            .store()
            .user_by_email("erin@example.com")
            .await
            .unwrap()
            .unwrap();
        assert!(record.password_hash.starts_with("$2"), "{}", record.password_hash);
        app.login_json("erin@example.com", pw71)
            .await
            .expect_ok(StatusCode::OK);
        let other71 = format!("{}y", &pw71[..70]);
        app.login_json("erin@example.com", &other71)
            .await
            .expect_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    }
);

both_backends!(
    register_with_bcrypt_accepts_exactly_72_bytes,
    vars[("PASSWORD_HASHER", "bcrypt"), ("BCRYPT_ROUNDS", "4")],
    |app| async move {
        // SPEC §4: with bcrypt, *more than* 72 bytes is rejected; 72 is fine.
        let pw72 = "Zq7#mK2p".repeat(9);
        assert_eq!(pw72.len(), 72);
        let reply = app.register_raw("erin@example.com", &pw72).await;
        reply.expect_ok(StatusCode::CREATED);
        app.login_json("erin@example.com", &pw72)
            .await
            .expect_ok(StatusCode::OK);
    }
);

both_backends!(
    an_imported_bcrypt_hash_of_a_72_byte_password_verifies,
    |app| async move {
        // A Fastpy user whose 72-byte password was hashed by another bcrypt
        // implementation (72 bytes is bcrypt's whole input: nothing is lost).
        let user = app.register("fern@example.com", PASSWORD).await;
        let pw72 = "Zq7#mK2p".repeat(9);
        let imported = bcrypt::hash(&pw72, 4).unwrap();
        app.store()
            .set_password_hash(user.user_id, &imported)
            .await
            .unwrap();
        app.login_json("fern@example.com", &format!("{}x", &pw72[..71]))
            .await
            .expect_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
        app.login_json("fern@example.com", &pw72)
            .await
            .expect_ok(StatusCode::OK);
    }
);

// ---- login -------------------------------------------------------------------------

both_backends!(
    login_form_answers_envelope_and_top_level_token,
    |app| async move {
        let user = app.register("frank@example.com", PASSWORD).await;
        let reply = app
            .post_form(
                "/login",
                &[
                    ("grant_type", "password"),
                    ("username", "frank@example.com"),
                    ("password", PASSWORD),
                    ("scope", "read write"),
                    ("client_id", "swagger-ui"),
                ],
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        assert!(reply.is_json());
        assert_eq!(
            keys(&reply.body),
            ["access_token", "data", "success", "token_type"]
        );
        assert_eq!(reply.body["success"], json!(true));
        expect_login_pair(&reply.body["data"]);
        assert_eq!(
            reply.body["access_token"],
            reply.body["data"]["access_token"]
        );
        assert_eq!(reply.body["token_type"], json!("bearer"));
        assert_eq!(reply.header("cache-control"), Some("no-store"));

        let access = reply.body["access_token"].as_str().unwrap();
        let me = app.me(access).await;
        assert_eq!(me.expect_ok(StatusCode::OK)["id"], json!(user.user_id));
        assert_ne!(sid_of(access), user.sid(), "a login opens a new session");

        // The e-mail is looked up regardless of case and surrounding spaces.
        let reply = app.login_form("  FRANK@Example.COM ", PASSWORD).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());

        // A charset parameter on the form content type is fine (some clients send it).
        let reply = app
            .post_raw(
                "/login",
                "application/x-www-form-urlencoded; charset=UTF-8",
                format!("username=frank%40example.com&password={PASSWORD}"),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());

        // A missing field names it; the wrong content type is 415.
        app.post_form("/login", &[("username", "frank@example.com")])
            .await
            .expect_invalid_field("password");
        app.post_json(
            "/login",
            &json!({"username": "frank@example.com", "password": PASSWORD}),
        )
        .await
        .expect_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE");
    }
);

both_backends!(login_json_answers_the_envelope_only, |app| async move {
    let user = app.register("gina@example.com", PASSWORD).await;
    let reply = app.login_json("Gina@Example.com", PASSWORD).await;
    let data = reply.expect_ok(StatusCode::OK);
    expect_login_pair(data);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let me = app.me(data["access_token"].as_str().unwrap()).await;
    assert_eq!(me.expect_ok(StatusCode::OK)["email"], json!(user.email));

    app.post_form(
        "/login/json",
        &[("email", "gina@example.com"), ("password", PASSWORD)],
    )
    .await
    .expect_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE");
    app.post_json("/login/json", &json!({"email": "gina@example.com"}))
        .await
        .expect_invalid_field("password");
});

both_backends!(
    login_failures_are_identical_for_wrong_password_and_unknown_email,
    |app| async move {
        app.register("hank@example.com", PASSWORD).await;

        let wrong = app.login_form("hank@example.com", OTHER_PASSWORD).await;
        wrong.expect_error_message(
            StatusCode::UNAUTHORIZED,
            "INVALID_CREDENTIALS",
            "Invalid email or password",
        );
        for (what, reply) in [
            (
                "unknown e-mail",
                app.login_form("nobody@example.com", PASSWORD).await,
            ),
            (
                "wrong letter case of the password",
                app.login_form("hank@example.com", &PASSWORD.to_uppercase())
                    .await,
            ),
            ("not an e-mail", app.login_form("hank", PASSWORD).await),
        ] {
            assert_eq!(reply.status, wrong.status, "{what}");
            assert_eq!(reply.bytes, wrong.bytes, "{what}: bodies differ");
            assert_eq!(
                reply.header("www-authenticate"),
                wrong.header("www-authenticate"),
                "{what}"
            );
        }

        let wrong_json = app.login_json("hank@example.com", OTHER_PASSWORD).await;
        wrong_json.expect_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
        let unknown_json = app.login_json("nobody@example.com", PASSWORD).await;
        assert_eq!(unknown_json.status, StatusCode::UNAUTHORIZED);
        assert_eq!(unknown_json.bytes, wrong_json.bytes);
        assert_eq!(
            wrong_json.bytes, wrong.bytes,
            "form and JSON logins answer alike"
        );
    }
);

both_backends!(
    login_upgrades_a_bcrypt_hash_to_argon2id,
    |backend: Backend| async move {
        let bcrypt_app = TestApp::spawn(
            backend,
            &[("PASSWORD_HASHER", "bcrypt"), ("BCRYPT_ROUNDS", "4")],
        )
        .await;
        let user = bcrypt_app.register("iris@example.com", PASSWORD).await;
        let hash_of = |app: &TestApp| {
            let store = app.store();
            async move {
                store
                    .user_by_email("iris@example.com")
                    .await
                    .unwrap()
                    .expect("user")
                    .password_hash
            }
        };
        let before = hash_of(&bcrypt_app).await;
        assert!(before.starts_with("$2"), "{before}");

        let argon_app = bcrypt_app.spawn_sharing(&[]).await;
        // A wrong password changes nothing.
        argon_app
            .login_form("iris@example.com", OTHER_PASSWORD)
            .await
            .expect_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
        assert_eq!(hash_of(&argon_app).await, before);

        let reply = argon_app.login_form("iris@example.com", PASSWORD).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        let after = hash_of(&argon_app).await;
        assert!(after.starts_with("$argon2id$"), "not upgraded: {after}");

        // The new hash verifies the same password, and nothing else; the
        // upgrade did not touch existing sessions.
        argon_app
            .login_json("iris@example.com", PASSWORD)
            .await
            .expect_ok(StatusCode::OK);
        argon_app
            .login_json("iris@example.com", OTHER_PASSWORD)
            .await
            .expect_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
        argon_app.me(&user.access).await.expect_ok(StatusCode::OK);
        assert_eq!(hash_of(&argon_app).await, after, "an argon2id hash is kept");
    }
);

// ---- deactivation ------------------------------------------------------------------

both_backends!(
    deactivation_revokes_sessions_and_blocks_login,
    |app| async move {
        let a = app.register("jane@example.com", PASSWORD).await;
        let b = app.login(&a, PASSWORD).await;
        app.me(&a.access).await.expect_ok(StatusCode::OK);

        assert!(app.store().set_active(a.user_id, false).await.unwrap());
        for token in [&a.access, &b.access] {
            app.me(token).await.expect_error_message(
                StatusCode::UNAUTHORIZED,
                "TOKEN_REVOKED",
                "Token has been revoked",
            );
        }
        app.refresh(&a.refresh)
            .await
            .expect_error(StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");
        app.login_json("jane@example.com", PASSWORD)
            .await
            .expect_error_message(StatusCode::FORBIDDEN, "INACTIVE_USER", "Inactive user");
        app.login_form("jane@example.com", PASSWORD)
            .await
            .expect_error(StatusCode::FORBIDDEN, "INACTIVE_USER");
        // A wrong password reveals nothing about the account's state.
        app.login_json("jane@example.com", OTHER_PASSWORD)
            .await
            .expect_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
        app.post_form(
            "/token",
            &[
                ("grant_type", "password"),
                ("username", "jane@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await
        .expect_oauth_error("invalid_grant");

        // Reactivation does not bring the old sessions back.
        assert!(app.store().set_active(a.user_id, true).await.unwrap());
        for token in [&a.access, &b.access] {
            app.me(token)
                .await
                .expect_error(StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");
        }
        for token in [&a.refresh, &b.refresh] {
            app.refresh(token)
                .await
                .expect_error(StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");
        }
        let c = app.login(&a, PASSWORD).await;
        app.me(&c.access).await.expect_ok(StatusCode::OK);
        assert_eq!(app.sessions(&c.access).await.len(), 1);
    }
);

// ---- the envelope on framework rejections ------------------------------------------

both_backends!(
    unknown_paths_and_methods_answer_in_the_envelope,
    |app| async move {
        for path in ["/nope", "/api/auth/nope", "/api/auth", "/api/auth/me/extra"] {
            let reply = app.get_root(path).await;
            reply.expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");
        }
        let reply = app
            .send(app.client.post(app.url("/api/nope")).json(&json!({})))
            .await;
        reply.expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");

        for (method, path) in [
            (Method::GET, "/login"),
            (Method::GET, "/register"),
            (Method::PUT, "/register"),
            (Method::DELETE, "/me"),
            (Method::GET, "/logout"),
            (Method::GET, "/sessions/abc"),
        ] {
            let reply = app.send(app.request(method.clone(), path)).await;
            reply.expect_error(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
        }
        let reply = app.send(app.client.post(app.url("/healthz"))).await;
        reply.expect_error(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
    }
);

both_backends!(bad_bodies_answer_in_the_envelope, |app| async move {
    let user = app.register("kate@example.com", PASSWORD).await;

    // Malformed JSON.
    for path in ["/register", "/login/json", "/refresh"] {
        app.post_raw(
            path,
            "application/json",
            r#"{"email": "kate@example.com", "#,
        )
        .await
        .expect_error(StatusCode::BAD_REQUEST, "INVALID_JSON");
    }
    let reply = app
        .send(
            app.request(Method::PATCH, "/me")
                .bearer_auth(&user.access)
                .header(CONTENT_TYPE, "application/json")
                .body("{not json"),
        )
        .await;
    reply.expect_error(StatusCode::BAD_REQUEST, "INVALID_JSON");

    // Not JSON at all, or no content type.
    let body = format!(r#"{{"email": "kate2@example.com", "password": "{PASSWORD}"}}"#);
    app.post_raw("/register", "text/plain", body.clone())
        .await
        .expect_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE");
    let reply = app
        .send(app.request(Method::POST, "/register").body(body.clone()))
        .await;
    reply.expect_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE");
    app.post_raw(
        "/register",
        "application/x-www-form-urlencoded",
        "email=kate2%40example.com",
    )
    .await
    .expect_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE");
    assert_eq!(app.count_users_in_db("kate2@example.com").await, 0);
    // A charset parameter is fine.
    let reply = app
        .post_raw(
            "/login/json",
            "application/json; charset=utf-8",
            format!(r#"{{"email": "kate@example.com", "password": "{PASSWORD}"}}"#),
        )
        .await;
    reply.expect_ok(StatusCode::OK);

    // Over 64 KiB.
    let huge = json!({"email": "kate3@example.com", "password": "x".repeat(70 * 1024)});
    app.post_json("/register", &huge)
        .await
        .expect_error(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
    let huge_password = "y".repeat(70 * 1024);
    app.post_form(
        "/login",
        &[
            ("username", "kate@example.com"),
            ("password", &huge_password),
        ],
    )
    .await
    .expect_error(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
    let reply = app
        .send(
            app.request(Method::PATCH, "/me")
                .bearer_auth(&user.access)
                .json(&json!({"name": "z".repeat(70 * 1024)})),
        )
        .await;
    reply.expect_error(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
    assert_eq!(app.count_users_in_db("kate3@example.com").await, 0);
    // Just under the limit is read (and then judged on its merits).
    let big = json!({"email": "kate3@example.com", "password": "x".repeat(60 * 1024)});
    app.post_json("/register", &big)
        .await
        .expect_invalid_field("password");
});

both_backends!(every_answer_carries_a_request_id, |app| async move {
    let caller_id = "it-request-42";
    for rb in [
        app.client.get(app.url("/healthz")),
        app.client.get(app.url("/nope")),
        app.request(Method::GET, "/me"),
        app.request(Method::POST, "/login/json").json(&json!({})),
    ] {
        let reply = app.send(rb.header("x-request-id", caller_id)).await;
        assert_eq!(
            reply.header("x-request-id"),
            Some(caller_id),
            "{}",
            reply.text()
        );
        // Per-request facts stay out of the body.
        assert!(!reply.text().contains(caller_id));
    }
    let first = app.get_root("/healthz").await;
    let second = app.get_root("/healthz").await;
    let (a, b) = (
        first.header("x-request-id").unwrap(),
        second.header("x-request-id").unwrap(),
    );
    assert_ne!(a, b, "generated request ids repeat");
    assert_ne!(a, caller_id);
    // Two answers to the same situation are equal, byte for byte.
    let x = app.get("/me").await;
    let y = app.get("/me").await;
    x.expect_error_message(
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
        "Not authenticated",
    );
    assert_eq!(x.bytes, y.bytes);
});

// ---- operations --------------------------------------------------------------------

both_backends!(operations_endpoints, |app| async move {
    let health = app.get_root("/healthz").await;
    health.expect_ok(StatusCode::OK);
    let ready = app.get_root("/readyz").await;
    ready.expect_ok(StatusCode::OK);

    let jwks = app.get_root("/.well-known/jwks.json").await;
    assert_eq!(jwks.status, StatusCode::OK);
    assert!(jwks.is_json());
    // The envelope, and at the same time a JWK Set for JWKS clients.
    assert_eq!(
        jwks.body,
        json!({"success": true, "data": {"keys": []}, "keys": []})
    );
    // Not under the prefix.
    app.get("/.well-known/jwks.json")
        .await
        .expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");

    // The first scrape may install the recorder; requests after it are counted.
    app.get_root("/metrics").await;
    app.get_root("/healthz").await;
    let metrics = app.get_root("/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(
        metrics
            .header("content-type")
            .is_some_and(|ct| ct.starts_with("text/plain")),
        "{:?}",
        metrics.header("content-type")
    );
    let text = metrics.text();
    assert!(
        text.lines()
            .any(|l| l.starts_with("portcullis_http_requests_total")
                && l.contains("/healthz")
                && l.contains("200")),
        "no request counter for /healthz:\n{text}"
    );
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        assert!(line.starts_with("portcullis_"), "unprefixed metric: {line}");
    }
});

both_backends!(
    sessions_record_ip_and_user_agent_at_registration,
    |app| async move {
        let reply = app
            .send(
                app.request(Method::POST, "/register")
                    .header(USER_AGENT, "integration-test/1.0")
                    .json(&json!({"email": "lena@example.com", "password": PASSWORD})),
            )
            .await;
        let data = reply.expect_ok(StatusCode::CREATED);
        let sessions = app.sessions(data["access_token"].as_str().unwrap()).await;
        assert_eq!(sessions.len(), 1);
        assert_eq!(sessions[0]["ip"], json!("127.0.0.1"));
        assert_eq!(sessions[0]["user_agent"], json!("integration-test/1.0"));
        assert_eq!(sessions[0]["current"], json!(true));
    }
);

both_backends!(
    non_ascii_emails_are_unique_regardless_of_case,
    |app| async move {
        app.register("Jürgen.Öberg@example.de", PASSWORD).await;
        app.register_raw("JÜRGEN.ÖBERG@example.de", PASSWORD)
            .await
            .expect_error(StatusCode::CONFLICT, "EMAIL_ALREADY_EXISTS");
        app.login_json("jürgen.öberg@example.de", PASSWORD)
            .await
            .expect_ok(StatusCode::OK);
    }
);

both_backends!(registration_ignores_privileged_fields, |app| async move {
    let reply = app
        .post_json(
            "/register",
            &json!({
                "email": "pat@example.com",
                "password": PASSWORD,
                "is_superuser": true,
                "is_verified": true,
                "is_active": false,
                "id": 4242,
                "created_at": "2000-01-01T00:00:00Z",
            }),
        )
        .await;
    // Unknown JSON fields are ignored (README): accepted, with none of the
    // privileges.
    let user = &reply.expect_ok(StatusCode::CREATED)["user"];
    assert_eq!(user["is_superuser"], json!(false));
    assert_eq!(user["is_verified"], json!(false));
    assert_eq!(user["is_active"], json!(true));
    assert_ne!(user["id"], json!(4242));
    assert_ne!(user["created_at"], json!("2000-01-01T00:00:00Z"));
    let record = app
        .store()
        .user_by_email("pat@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(!record.user.is_superuser && !record.user.is_verified && record.user.is_active);
});

both_backends!(
    fastedgy_names_and_route_prefix,
    vars[
        ("AUTH_ROUTE_PREFIX", "/auth"),
        ("AUTH_ACCESS_TOKEN_EXPIRE_MINUTES", "15"),
    ],
    |app| async move {
        let reply = app
            .send(
                app.client
                    .post(app.url("/auth/register"))
                    .json(&json!({"email": "quin@example.com", "password": PASSWORD})),
            )
            .await;
        let data = reply.expect_ok(StatusCode::CREATED);
        assert_eq!(data["expires_in"], json!(900));
        let access = data["access_token"].as_str().unwrap();
        let me = app
            .send(app.client.get(app.url("/auth/me")).bearer_auth(access))
            .await;
        me.expect_ok(StatusCode::OK);
        // Nothing is left at the default prefix.
        app.get("/me")
            .await
            .expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");
        // The operations endpoints stay at the root.
        app.get_root("/healthz").await.expect_ok(StatusCode::OK);
    }
);

/// A CORS preflight for `POST /login/json` from `origin`.
fn cors_preflight(app: &TestApp, origin: &str) -> reqwest::RequestBuilder {
    app.request(Method::OPTIONS, "/login/json")
        .header("origin", origin)
        .header("access-control-request-method", "POST")
}

both_backends!(
    cors_allows_the_configured_origins_only,
    vars[(
        "CORS_ORIGINS",
        "https://app.example.com, https://admin.example.com"
    )],
    |app| async move {
        let preflight = |origin: &'static str| {
            cors_preflight(&app, origin).header(
                "access-control-request-headers",
                "content-type,authorization",
            )
        };
        let reply = app.send(preflight("https://app.example.com")).await;
        assert!(reply.status.is_success(), "{}", reply.status);
        assert_eq!(
            reply.header("access-control-allow-origin"),
            Some("https://app.example.com")
        );
        let methods = reply
            .header("access-control-allow-methods")
            .unwrap_or("")
            .to_ascii_uppercase();
        assert!(methods.contains("POST"), "{methods}");
        let reply = app
            .send_unchecked(preflight("https://evil.example.com"))
            .await;
        assert_eq!(reply.header("access-control-allow-origin"), None);

        // Actual requests get the header for allowed origins only.
        let reply = app
            .send(
                app.client
                    .get(app.url("/healthz"))
                    .header("origin", "https://admin.example.com"),
            )
            .await;
        reply.expect_ok(StatusCode::OK);
        assert_eq!(
            reply.header("access-control-allow-origin"),
            Some("https://admin.example.com")
        );
        let reply = app
            .send(
                app.client
                    .get(app.url("/healthz"))
                    .header("origin", "https://evil.example.com"),
            )
            .await;
        assert_eq!(reply.header("access-control-allow-origin"), None);
    }
);

both_backends!(
    cors_preflight_answers_carry_a_request_id,
    vars[("CORS_ORIGINS", "https://app.example.com")],
    |app| async move {
        let reply = app
            .send(
                cors_preflight(&app, "https://app.example.com")
                    .header("x-request-id", "preflight-1"),
            )
            .await;
        assert!(reply.status.is_success(), "{}", reply.status);
        assert_eq!(reply.header("x-request-id"), Some("preflight-1"));
    }
);

both_backends!(
    malformed_percent_encoding_gets_clear_answers,
    |app| async move {
        let user = app.register(&unique_email("pct"), PASSWORD).await;
        // A session id that is not even UTF-8 is just an unknown session.
        app.auth_delete("/sessions/%ff%fe", &user.access)
            .await
            .expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");
        // A link with a mangled query string gets the explanation page, not JSON.
        for path in ["/reset-password?token=%ff%fe", "/verify-email?token=%zz"] {
            let page = app.send_unchecked(app.client.get(app.url(path))).await;
            assert_eq!(page.status, StatusCode::BAD_REQUEST, "{path}");
            assert!(
                page.header("content-type")
                    .is_some_and(|ct| ct.starts_with("text/html")),
                "{path}: {:?}",
                page.header("content-type")
            );
            assert!(page.text().contains("cannot be used"), "{path}");
        }
    }
);

both_backends!(
    cors_wildcard_allows_any_origin_without_credentials,
    vars[("CORS_ORIGINS", "*")],
    |app| async move {
        let reply = app
            .send(cors_preflight(&app, "https://anywhere.example.net"))
            .await;
        assert!(reply.status.is_success(), "{}", reply.status);
        assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
        assert_eq!(reply.header("access-control-allow-credentials"), None);
    }
);

both_backends!(account_data_is_never_cached, |app| async move {
    let user = app.register(&unique_email("cache"), PASSWORD).await;
    let me = app.me(&user.access).await;
    me.expect_ok(StatusCode::OK);
    assert_eq!(me.header("cache-control"), Some("no-store"));
    let sessions = app
        .send(
            app.request(Method::GET, "/sessions")
                .bearer_auth(&user.access),
        )
        .await;
    assert_eq!(sessions.header("cache-control"), Some("no-store"));
    let refused = app.get("/me").await;
    refused.expect_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    assert_eq!(refused.header("cache-control"), Some("no-store"));
    // Public keys may be cached.
    let jwks = app.get_root("/.well-known/jwks.json").await;
    assert_eq!(jwks.header("cache-control"), Some("public, max-age=300"));
});

/// A route of the embedding application that panics after it has yielded
/// once, so that the panic happens while the middleware polls its future.
async fn panicking_route() -> &'static str {
    tokio::task::yield_now().await;
    panic!("a bug in an application route");
}

both_backends!(
    a_panicking_handler_gets_500_in_the_envelope_and_the_server_stays_up,
    |backend: Backend| async move {
        let routes = axum::Router::new().route("/boom", axum::routing::get(panicking_route));
        let app = TestApp::builder(backend).routes(routes).spawn().await;
        for _ in 0..2 {
            let reply = app
                .send(
                    app.client
                        .get(app.url("/boom"))
                        .header("x-request-id", "it-panic-1"),
                )
                .await;
            reply.expect_error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR");
            assert_eq!(reply.header("x-request-id"), Some("it-panic-1"));
            assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
            assert!(!reply.text().contains("a bug in"), "{}", reply.text());
        }
        let alive = app.get_root("/healthz").await;
        assert_eq!(alive.status, StatusCode::OK, "{}", alive.text());
    }
);
