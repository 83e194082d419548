//! Tokens (SPEC §5): payloads decoded outside Portcullis's token service,
//! forged and expired tokens, refresh rotation with reuse detection, and the
//! RFC 6749 `/token` endpoint, on SQLite and PostgreSQL.

#[macro_use]
mod common;

use common::*;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use portcullis::token::TokenType;
use reqwest::header::AUTHORIZATION;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const OTHER_SECRET: &str = "another-secret-of-a-stranger-0123456789-xyz-long-enough-for-HS512";

/// `GET /me` with a raw `Authorization` header value.
async fn me_with_header(app: &TestApp, value: &str) -> Reply {
    app.send(app.request(Method::GET, "/me").header(AUTHORIZATION, value))
        .await
}

// ---- payloads ----------------------------------------------------------------------

both_backends!(token_payloads_match_the_spec, |app| async move {
    let user = app.register("ann@example.com", PASSWORD).await;
    let t0 = now();

    let access = verify_independently(&user.access).expect("access token verifies with HS256");
    assert_eq!(
        keys(&access),
        [
            "aal",
            "amr",
            "email",
            "email_verified",
            "exp",
            "iat",
            "jti",
            "sid",
            "sub",
            "type"
        ],
        "{access}"
    );
    // SPEC §10: how the session was authenticated (a password alone here).
    assert_eq!(access["amr"], json!(["pwd"]));
    assert_eq!(access["aal"], json!("aal1"));
    assert_eq!(access["email_verified"], json!(false), "not verified yet");
    assert_eq!(
        access["sub"],
        json!(user.user_id.to_string()),
        "sub is the id as a string"
    );
    assert_eq!(access["email"], json!("ann@example.com"));
    assert_eq!(access["type"], json!("access"));
    let iat = access["iat"].as_i64().expect("iat is a number");
    let exp = access["exp"].as_i64().expect("exp is a number");
    assert!((iat - t0).abs() <= 5, "iat {iat} vs now {t0}");
    assert_eq!(exp - iat, 30 * 60);
    let jti = access["jti"].as_str().expect("jti is a string");
    let sid = access["sid"].as_str().expect("sid is a string");
    assert!(!jti.is_empty() && !sid.is_empty());

    let (header, _) = jwt_parts(&user.access);
    assert_eq!(header["alg"], json!("HS256"));
    assert!(
        header["kid"].as_str().is_some_and(|k| !k.is_empty()),
        "no kid: {header}"
    );
    assert!(!header.to_string().contains(SECRET));

    let refresh = verify_independently(&user.refresh).expect("refresh token verifies");
    assert_eq!(
        keys(&refresh),
        ["exp", "iat", "jti", "sid", "sub", "type"],
        "{refresh}"
    );
    assert_eq!(refresh["type"], json!("refresh"));
    assert_eq!(refresh["sub"], access["sub"]);
    assert_eq!(refresh["sid"], access["sid"]);
    assert_ne!(refresh["jti"], access["jti"]);
    let r_iat = refresh["iat"].as_i64().unwrap();
    assert_eq!(refresh["exp"].as_i64().unwrap() - r_iat, 7 * 86_400);
    assert_eq!(jwt_parts(&user.refresh).0["kid"], header["kid"]);

    // The check is real: another key does not verify them.
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_aud = false;
    assert!(
        jsonwebtoken::decode::<Value>(
            &user.access,
            &DecodingKey::from_secret(OTHER_SECRET.as_bytes()),
            &validation
        )
        .is_err()
    );

    // Refreshed and newly logged-in tokens have the same shape.
    let (a2, _) = app.refresh_ok(&user.refresh).await;
    let refreshed = verify_independently(&a2).expect("refreshed token verifies");
    assert_eq!(keys(&refreshed), keys(&access));
    assert_eq!(refreshed["sid"], access["sid"]);
    assert_ne!(refreshed["jti"], access["jti"]);
    let other = app.login(&user, PASSWORD).await;
    let other = verify_independently(&other.access).unwrap();
    assert_ne!(other["sid"], access["sid"], "a login is a new session");
});

// ---- forged tokens -----------------------------------------------------------------

both_backends!(forged_tokens_are_invalid, |app| async move {
    let user = app.register("ben@example.com", PASSWORD).await;
    let sid = user.sid();
    let (header, payload) = jwt_parts(&user.access);
    let kid = header["kid"].as_str().unwrap().to_string();

    let invalid = |what: &'static str, reply: Reply| {
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{what}: {}",
            reply.text()
        );
        reply.expect_error_message(StatusCode::UNAUTHORIZED, "INVALID_TOKEN", "Invalid token");
    };

    // Signed with another key (its own kid, then the server's kid).
    let stranger = token_service(&[("SECRET_KEY", OTHER_SECRET)]);
    let forged = stranger
        .issue(TokenType::Access, user.user_id, &user.email, &sid)
        .unwrap();
    invalid("another key", app.me(&forged.token).await);
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some(kid.clone());
    let same_kid = jsonwebtoken::encode(
        &h,
        &payload,
        &EncodingKey::from_secret(OTHER_SECRET.as_bytes()),
    )
    .unwrap();
    invalid("another key, server's kid", app.me(&same_kid).await);

    // alg: none, with and without the server's kid, with an empty signature.
    for hdr in [
        json!({"alg": "none", "typ": "JWT"}),
        json!({"alg": "none", "typ": "JWT", "kid": kid}),
        json!({"alg": "HS256", "typ": "JWT", "kid": kid}),
    ] {
        let token = format!("{}.{}.", b64(hdr.to_string()), b64(payload.to_string()));
        invalid("unsigned", app.me(&token).await);
    }

    // HS512 with the right secret while HS256 is configured.
    let hs512 = token_service(&[("ALGORITHM", "HS512")]);
    let token = hs512
        .issue(TokenType::Access, user.user_id, &user.email, &sid)
        .unwrap()
        .token;
    assert_eq!(jwt_parts(&token).0["alg"], json!("HS512"));
    let mut v512 = Validation::new(Algorithm::HS512);
    v512.validate_aud = false;
    assert!(
        jsonwebtoken::decode::<Value>(&token, &DecodingKey::from_secret(SECRET.as_bytes()), &v512)
            .is_ok(),
        "the HS512 token is well signed"
    );
    invalid("HS512", app.me(&token).await);

    // A tampered payload under the original signature.
    let mut tampered_payload = payload.clone();
    tampered_payload["email"] = json!("admin@example.com");
    let parts: Vec<&str> = user.access.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(tampered_payload.to_string()),
        parts[2]
    );
    invalid("tampered", app.me(&tampered).await);

    // Garbage.
    for junk in ["not-a-jwt", "abc.def.ghi", "a.b", &"x".repeat(10_000)] {
        invalid("garbage", app.me(junk).await);
    }

    // A well-signed token of the wrong type.
    invalid("refresh as access", app.me(&user.refresh).await);

    // The genuine token still works, with any letter case of the scheme.
    app.me(&user.access).await.expect_ok(StatusCode::OK);
    me_with_header(&app, &format!("bearer {}", user.access))
        .await
        .expect_ok(StatusCode::OK);
});

both_backends!(expired_tokens_are_token_expired, |app| async move {
    let user = app.register("cleo@example.com", PASSWORD).await;
    let sid = user.sid();
    let svc = token_service(&[]);
    let fresh = svc
        .issue(TokenType::Access, user.user_id, &user.email, &sid)
        .unwrap();
    // The forgery is otherwise accepted...
    app.me(&fresh.token).await.expect_ok(StatusCode::OK);
    // ...but not once expired.
    let mut claims = fresh.claims.clone();
    claims.iat = now() - 3600;
    claims.exp = now() - 60;
    let expired = svc.sign(claims).unwrap().token;
    assert!(verify_independently(&expired).is_err());
    app.me(&expired).await.expect_error_message(
        StatusCode::UNAUTHORIZED,
        "TOKEN_EXPIRED",
        "Token has expired",
    );

    // An expired refresh token at /refresh.
    let mut claims = svc
        .issue(TokenType::Refresh, user.user_id, "", &sid)
        .unwrap()
        .claims;
    claims.iat = now() - 8 * 86_400;
    claims.exp = now() - 1;
    let expired_refresh = svc.sign(claims).unwrap().token;
    app.refresh(&expired_refresh)
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "TOKEN_EXPIRED");
    // And an expired token signed with another key is merely invalid.
    let stranger = token_service(&[("SECRET_KEY", OTHER_SECRET)]);
    let mut claims = fresh.claims.clone();
    claims.exp = now() - 60;
    let token = stranger.sign(claims).unwrap().token;
    app.me(&token)
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "INVALID_TOKEN");
});

both_backends!(
    missing_or_malformed_authorization_is_unauthorized,
    |app| async move {
        let user = app.register("dina@example.com", PASSWORD).await;
        let none = app.get("/me").await;
        none.expect_error_message(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "Not authenticated",
        );
        assert_eq!(none.header("www-authenticate"), Some("Bearer"));
        for value in [
            "Basic xyz".to_string(),
            "Basic ZGluYUBleGFtcGxlLmNvbTpwdw==".to_string(),
            "Bearer".to_string(),
            "Bearer ".to_string(),
            user.access.clone(),
            format!("Token {}", user.access),
        ] {
            let reply = me_with_header(&app, &value).await;
            assert_eq!(reply.code(), "UNAUTHORIZED", "{value:?}: {}", reply.text());
            reply.expect_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
        }
        for path in ["/sessions", "/me"] {
            app.get(path)
                .await
                .expect_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
        }
        for (method, path) in [
            (Method::POST, "/logout"),
            (Method::POST, "/change-password"),
            (Method::PATCH, "/me"),
            (Method::DELETE, "/sessions/AAAAAAAAAAAAAAAAAAAAAA"),
        ] {
            let reply = app.send(app.request(method, path).json(&json!({}))).await;
            reply.expect_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
        }
    }
);

both_backends!(
    well_signed_tokens_for_unknown_sessions_are_refused,
    |app| async move {
        let ann = app.register("ann@example.com", PASSWORD).await;
        let bob = app.register("bob@example.com", PASSWORD).await;
        let tokens = app.tokens();
        // A session that never existed.
        let ghost = tokens
            .issue(
                TokenType::Access,
                ann.user_id,
                &ann.email,
                "AAAAAAAAAAAAAAAAAAAAAA",
            )
            .unwrap()
            .token;
        let reply = app.me(&ghost).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text());
        assert!(
            ["TOKEN_REVOKED", "INVALID_TOKEN"].contains(&reply.code()),
            "{}",
            reply.text()
        );
        reply.expect_error(StatusCode::UNAUTHORIZED, reply.code());
        // Bob's session under Ann's id.
        let mixed = tokens
            .issue(TokenType::Access, ann.user_id, &ann.email, &bob.sid())
            .unwrap()
            .token;
        let reply = app.me(&mixed).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text());
        assert!(
            ["TOKEN_REVOKED", "INVALID_TOKEN"].contains(&reply.code()),
            "{}",
            reply.text()
        );
    }
);

// ---- refresh -----------------------------------------------------------------------

both_backends!(refresh_rotates_within_the_session, |app| async move {
    let user = app.register("eva@example.com", PASSWORD).await;
    let reply = app.refresh(&user.refresh).await;
    let data = reply.expect_ok(StatusCode::OK);
    expect_token_pair(data);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let a2 = data["access_token"].as_str().unwrap().to_string();
    let r2 = data["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(a2, user.access);
    assert_ne!(r2, user.refresh);
    assert_eq!(sid_of(&a2), user.sid());
    assert_eq!(sid_of(&r2), user.sid());
    assert_eq!(
        app.me(&a2).await.expect_ok(StatusCode::OK)["id"],
        json!(user.user_id)
    );
    // The earlier access token of the session stays valid.
    app.me(&user.access).await.expect_ok(StatusCode::OK);
    // The new refresh token rotates again.
    let (a3, r3) = app.refresh_ok(&r2).await;
    assert_ne!(r3, r2);
    app.me(&a3).await.expect_ok(StatusCode::OK);
    assert_eq!(app.sessions(&a3).await.len(), 1);
    assert_eq!(app.count_sessions_in_db(user.user_id).await, 1);
});

both_backends!(
    refresh_reuse_within_grace_returns_a_working_pair,
    |app| async move {
        let user = app.register("fay@example.com", PASSWORD).await;
        let (a2, r2) = app.refresh_ok(&user.refresh).await;
        // A client retrying a lost answer presents the spent token again.
        let (ag, rg) = app.refresh_ok(&user.refresh).await;
        assert_eq!(sid_of(&ag), user.sid(), "same session");
        assert_eq!(sid_of(&rg), user.sid(), "same session");
        // SPEC §5: the retry gets the same successor, not a second one.
        assert_eq!(jwt_parts(&rg).1["jti"], jwt_parts(&r2).1["jti"]);
        app.me(&ag).await.expect_ok(StatusCode::OK);
        app.me(&a2).await.expect_ok(StatusCode::OK);
        app.me(&user.access).await.expect_ok(StatusCode::OK);
        // Both refresh tokens handed out stay usable.
        let (a4, _) = app.refresh_ok(&rg).await;
        let (a5, _) = app.refresh_ok(&r2).await;
        app.me(&a4).await.expect_ok(StatusCode::OK);
        app.me(&a5).await.expect_ok(StatusCode::OK);
        assert_eq!(app.sessions(&a5).await.len(), 1);
        assert_eq!(app.count_sessions_in_db(user.user_id).await, 1);
    }
);

both_backends!(
    refresh_reuse_without_grace_revokes_the_session,
    vars[("REFRESH_REUSE_GRACE_SECONDS", "0")],
    |app| async move {
        let user = app.register("gil@example.com", PASSWORD).await;
        let other = app.login(&user, PASSWORD).await;
        let (a2, r2) = app.refresh_ok(&user.refresh).await;
        app.me(&a2).await.expect_ok(StatusCode::OK);

        app.refresh(&user.refresh).await.expect_error_message(
            StatusCode::UNAUTHORIZED,
            "TOKEN_REVOKED",
            "Token has been revoked",
        );
        // The whole session is gone, access tokens included.
        for token in [&user.access, &a2] {
            app.me(token)
                .await
                .expect_error(StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");
        }
        app.refresh(&r2)
            .await
            .expect_error(StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");
        // Other sessions are untouched.
        app.me(&other.access).await.expect_ok(StatusCode::OK);
        let (a3, _) = app.refresh_ok(&other.refresh).await;
        let sessions = app.sessions(&a3).await;
        assert_eq!(sessions.len(), 1);
        assert_eq!(sessions[0]["current"], json!(true));
    }
);

both_backends!(
    refresh_reuse_after_the_grace_period_revokes_the_session,
    vars[("REFRESH_REUSE_GRACE_SECONDS", "1")],
    |app| async move {
        let user = app.register("hal@example.com", PASSWORD).await;
        let (a2, r2) = app.refresh_ok(&user.refresh).await;
        tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
        app.refresh(&user.refresh)
            .await
            .expect_error(StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");
        app.me(&a2)
            .await
            .expect_error(StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");
        app.refresh(&r2)
            .await
            .expect_error(StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");
    }
);

both_backends!(refresh_refuses_the_wrong_kind_of_token, |app| async move {
    let user = app.register("ivy@example.com", PASSWORD).await;
    app.refresh(&user.access).await.expect_error_message(
        StatusCode::UNAUTHORIZED,
        "INVALID_TOKEN",
        "Invalid token",
    );
    app.refresh("garbage")
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "INVALID_TOKEN");
    let stranger = token_service(&[("SECRET_KEY", OTHER_SECRET)]);
    let forged = stranger
        .issue(TokenType::Refresh, user.user_id, "", &user.sid())
        .unwrap()
        .token;
    app.refresh(&forged)
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "INVALID_TOKEN");
    // Well signed, right session, but never handed out: refused, and it
    // does not count as reuse of the session's token.
    let never_issued = app
        .tokens()
        .issue(TokenType::Refresh, user.user_id, "", &user.sid())
        .unwrap()
        .token;
    let reply = app.refresh(&never_issued).await;
    reply.expect_error(StatusCode::UNAUTHORIZED, "INVALID_TOKEN");
    app.post_json("/refresh", &json!({}))
        .await
        .expect_invalid_field("refresh_token");
    // None of this hurt the genuine session.
    app.me(&user.access).await.expect_ok(StatusCode::OK);
    app.refresh_ok(&user.refresh).await;
});

// ---- /token (RFC 6749) -------------------------------------------------------------

/// Which grant a `/token` answer is for.
#[derive(Clone, Copy)]
enum Grant {
    Password,
    Refresh,
}

/// Checks an RFC 6749 §5.1 success body; the access and refresh tokens.
#[track_caller]
fn expect_rfc_token(reply: &Reply, grant: Grant) -> (String, String) {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(reply.is_json());
    let expected: &[&str] = match grant {
        // A sign-in also hands out the device token (SPEC §7).
        Grant::Password => &[
            "access_token",
            "device_token",
            "expires_in",
            "refresh_token",
            "token_type",
        ],
        Grant::Refresh => &["access_token", "expires_in", "refresh_token", "token_type"],
    };
    assert_eq!(keys(&reply.body), expected, "{}", reply.text());
    assert!(
        reply.body["token_type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("bearer"))
    );
    assert_eq!(reply.body["expires_in"], json!(1800));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    (
        reply.body["access_token"].as_str().unwrap().to_string(),
        reply.body["refresh_token"].as_str().unwrap().to_string(),
    )
}

both_backends!(token_endpoint_password_grant, |app| async move {
    let user = app.register("jon@example.com", PASSWORD).await;
    let reply = app
        .post_form(
            "/token",
            &[
                ("grant_type", "password"),
                ("username", "jon@example.com"),
                ("password", PASSWORD),
                ("scope", ""),
            ],
        )
        .await;
    let (access, refresh) = expect_rfc_token(&reply, Grant::Password);
    assert_eq!(
        app.me(&access).await.expect_ok(StatusCode::OK)["id"],
        json!(user.user_id)
    );
    assert_ne!(sid_of(&access), user.sid());
    assert_eq!(sid_of(&refresh), sid_of(&access));

    // FastEdgy's JSON body without grant_type is a password grant.
    let reply = app
        .post_json(
            "/token",
            &json!({"username": "jon@example.com", "password": PASSWORD}),
        )
        .await;
    let (access, _) = expect_rfc_token(&reply, Grant::Password);
    app.me(&access).await.expect_ok(StatusCode::OK);

    // Errors per RFC 6749 §5.2.
    app.post_form(
        "/token",
        &[("username", "jon@example.com"), ("password", PASSWORD)],
    )
    .await
    .expect_oauth_error("invalid_request");
    app.post_form(
        "/token",
        &[("grant_type", "password"), ("username", "jon@example.com")],
    )
    .await
    .expect_oauth_error("invalid_request");
    app.post_form(
        "/token",
        &[
            ("grant_type", "password"),
            ("username", "jon@example.com"),
            ("password", OTHER_PASSWORD),
        ],
    )
    .await
    .expect_oauth_error("invalid_grant");
    app.post_form(
        "/token",
        &[
            ("grant_type", "password"),
            ("username", "nobody@example.com"),
            ("password", PASSWORD),
        ],
    )
    .await
    .expect_oauth_error("invalid_grant");
    app.post_json(
        "/token",
        &json!({"username": "jon@example.com", "password": OTHER_PASSWORD}),
    )
    .await
    .expect_oauth_error("invalid_grant");
    app.post_form(
        "/token",
        &[("grant_type", "client_credentials"), ("client_id", "x")],
    )
    .await
    .expect_oauth_error("unsupported_grant_type");
    app.post_raw("/token", "application/json", "{not json")
        .await
        .expect_oauth_error("invalid_request");
});

both_backends!(token_endpoint_refresh_grant, |app| async move {
    let user = app.register("kim@example.com", PASSWORD).await;
    let reply = app
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &user.refresh),
            ],
        )
        .await;
    let (access, refresh) = expect_rfc_token(&reply, Grant::Refresh);
    assert_eq!(sid_of(&access), user.sid());
    app.me(&access).await.expect_ok(StatusCode::OK);
    // The rotated token works at /refresh too: it is one rotation chain.
    let (_, r3) = app.refresh_ok(&refresh).await;
    // A JSON body works as well.
    let reply = app
        .post_json(
            "/token",
            &json!({"grant_type": "refresh_token", "refresh_token": r3}),
        )
        .await;
    let (access, _) = expect_rfc_token(&reply, Grant::Refresh);
    assert_eq!(sid_of(&access), user.sid());

    app.post_form(
        "/token",
        &[("grant_type", "refresh_token"), ("refresh_token", "junk")],
    )
    .await
    .expect_oauth_error("invalid_grant");
    app.post_form(
        "/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &user.access),
        ],
    )
    .await
    .expect_oauth_error("invalid_grant");
    app.post_form("/token", &[("grant_type", "refresh_token")])
        .await
        .expect_oauth_error("invalid_request");
});

both_backends!(
    token_endpoint_keeps_the_envelope_for_415_and_413,
    |app| async move {
        app.post_raw(
            "/token",
            "text/plain",
            "grant_type=password&username=a%40b.co&password=x",
        )
        .await
        .expect_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE");
        let reply = app
            .send(
                app.request(Method::POST, "/token")
                    .body("grant_type=password&username=a%40b.co&password=x"),
            )
            .await;
        reply.expect_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE");
        let huge = "p".repeat(70 * 1024);
        app.post_form(
            "/token",
            &[
                ("grant_type", "password"),
                ("username", "a@b.co"),
                ("password", &huge),
            ],
        )
        .await
        .expect_error(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
    }
);

// ---- configuration of tokens -------------------------------------------------------

both_backends!(
    issuer_audience_and_lifetimes_are_honoured,
    vars[
        ("JWT_ISSUER", "https://auth.example.com"),
        ("JWT_AUDIENCE", "example-api"),
        ("ACCESS_TOKEN_EXPIRE_MINUTES", "5"),
        ("REFRESH_TOKEN_EXPIRE_DAYS", "2"),
    ],
    |app| async move {
        let reply = app.register_raw("lou@example.com", PASSWORD).await;
        let data = reply.expect_ok(StatusCode::CREATED);
        assert_eq!(data["expires_in"], json!(300));
        let access = data["access_token"].as_str().unwrap().to_string();
        let refresh = data["refresh_token"].as_str().unwrap().to_string();
        let (_, claims) = jwt_parts(&access);
        assert_eq!(claims["iss"], json!("https://auth.example.com"));
        assert_eq!(claims["aud"], json!("example-api"));
        assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 300);
        let (_, r) = jwt_parts(&refresh);
        assert_eq!(r["exp"].as_i64().unwrap() - r["iat"].as_i64().unwrap(), 2 * 86_400);
        app.me(&access).await.expect_ok(StatusCode::OK);
        let reply = app.refresh(&refresh).await;
        assert_eq!(reply.expect_ok(StatusCode::OK)["expires_in"], json!(300));

        // Same key and session, but without or with the wrong issuer/audience.
        let user_id = claims["sub"].as_str().unwrap().parse::<i64>().unwrap();
        let sid = claims["sid"].as_str().unwrap();
        for vars in [
            vec![],
            vec![("JWT_ISSUER", "https://auth.example.com")],
            vec![("JWT_AUDIENCE", "example-api")],
            vec![("JWT_ISSUER", "https://evil.example.com"), ("JWT_AUDIENCE", "example-api")],
            vec![("JWT_ISSUER", "https://auth.example.com"), ("JWT_AUDIENCE", "other-api")],
        ] {
            let token = token_service(&vars)
                .issue(TokenType::Access, user_id, "lou@example.com", sid)
                .unwrap()
                .token;
            app.me(&token)
                .await
                .expect_error(StatusCode::UNAUTHORIZED, "INVALID_TOKEN");
        }
        let good = token_service(&[
            ("JWT_ISSUER", "https://auth.example.com"),
            ("JWT_AUDIENCE", "example-api"),
        ])
        .issue(TokenType::Access, user_id, "lou@example.com", sid)
        .unwrap()
        .token;
        app.me(&good).await.expect_ok(StatusCode::OK);
    }
);

both_backends!(
    previous_keys_keep_verifying_during_a_rotation,
    |backend: Backend| async move {
        const NEW_SECRET: &str = "the-rotated-secret-key-0123456789-abcdefgh-long-enough-for-HS512";
        let old = TestApp::spawn(backend, &[]).await;
        let user = old.register("max@example.com", PASSWORD).await;

        // Rotated: the old key still verifies, new tokens use the new key.
        let rotated = old
            .spawn_sharing(&[("SECRET_KEY", NEW_SECRET), ("SECRET_KEY_PREVIOUS", SECRET)])
            .await;
        rotated.me(&user.access).await.expect_ok(StatusCode::OK);
        let (a2, r2) = rotated.refresh_ok(&user.refresh).await;
        let old_kid = jwt_parts(&user.access).0["kid"].clone();
        assert_ne!(
            jwt_parts(&a2).0["kid"],
            old_kid,
            "new tokens carry the new key's kid"
        );
        assert!(
            verify_independently(&a2).is_err(),
            "signed with the new key"
        );
        rotated.me(&a2).await.expect_ok(StatusCode::OK);

        // Once the old key is dropped, its tokens are invalid; the new ones work.
        let done = old.spawn_sharing(&[("SECRET_KEY", NEW_SECRET)]).await;
        done.me(&user.access)
            .await
            .expect_error(StatusCode::UNAUTHORIZED, "INVALID_TOKEN");
        done.me(&a2).await.expect_ok(StatusCode::OK);
        done.refresh_ok(&r2).await;
    }
);

both_backends!(
    another_hmac_algorithm_is_the_only_one_accepted,
    vars[("ALGORITHM", "HS384")],
    |app| async move {
        let user = app.register("nia@example.com", PASSWORD).await;
        assert_eq!(jwt_parts(&user.access).0["alg"], json!("HS384"));
        app.me(&user.access).await.expect_ok(StatusCode::OK);
        let hs256 = token_service(&[])
            .issue(TokenType::Access, user.user_id, &user.email, &user.sid())
            .unwrap()
            .token;
        app.me(&hs256)
            .await
            .expect_error(StatusCode::UNAUTHORIZED, "INVALID_TOKEN");
    }
);

/// Asks `app` for `/me` with `token` until it answers 401 `TOKEN_REVOKED`;
/// fails if that takes more than a second (SPEC §9: another instance
/// follows a revocation within one second).
async fn revoked_within_a_second(app: &TestApp, token: &str) {
    let since = std::time::Instant::now();
    loop {
        let reply = app.me(token).await;
        if reply.status != StatusCode::OK {
            reply.expect_error(StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");
            return;
        }
        assert!(
            since.elapsed() < std::time::Duration::from_secs(1),
            "still accepted a second after the revocation"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

both_backends!(
    revocation_holds_at_once_here_and_within_a_second_on_every_instance,
    |backend: Backend| async move {
        let one = TestApp::spawn(backend, &[("REFRESH_REUSE_GRACE_SECONDS", "0")]).await;
        let two = one
            .spawn_sharing(&[("REFRESH_REUSE_GRACE_SECONDS", "0")])
            .await;
        let user = one.register("ora@example.com", PASSWORD).await;
        let other = two.login(&user, PASSWORD).await;
        // The other instance holds the session in memory: it must notice
        // the revocation, not merely read the database for the first time.
        two.warm(&user.access).await;

        // Logout on one instance: it refuses the token at once, the other
        // within a second.
        let reply = one.auth_post_empty("/logout", &user.access).await;
        reply.expect_ok(StatusCode::OK);
        one.me(&user.access)
            .await
            .expect_error(StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");
        revoked_within_a_second(&two, &user.access).await;

        // Refresh on one, replay on the other: theft detected across
        // instances (in the database, at once).
        let (a2, _) = one.refresh_ok(&other.refresh).await;
        one.warm(&a2).await;
        two.refresh(&other.refresh)
            .await
            .expect_error(StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");
        revoked_within_a_second(&one, &a2).await;
    }
);
