//! A passkey as a login's second step (SPEC §11 "As the second step", §10's
//! limits), through the API and the library, with a software
//! authenticator, on SQLite and PostgreSQL.

#[macro_use]
mod common;
mod passkey_support;

use common::*;
use passkey_support::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The access token's `amr` and `aal`.
fn amr_aal(data: &Value) -> (Value, Value) {
    let (_, claims) = jwt_parts(data["access_token"].as_str().expect("access_token"));
    (claims["amr"].clone(), claims["aal"].clone())
}

/// A user with TOTP on: their session after confirming and the secret.
async fn with_totp(app: &TestApp, tag: &str) -> (Session, Vec<u8>) {
    let user = app.register(&unique_email(tag), PASSWORD).await;
    let setup = app
        .auth_post_json(
            "/mfa/totp/setup",
            &user.access,
            &json!({"password": PASSWORD}),
        )
        .await;
    let secret = base32_decode(setup.expect_ok(StatusCode::OK)["secret"].as_str().unwrap());
    let code = portcullis::mfa::totp_code(&secret, now()).unwrap();
    let confirmed = app
        .auth_post_json("/mfa/totp/confirm", &user.access, &json!({"code": code}))
        .await;
    let data = confirmed.expect_ok(StatusCode::OK).clone();
    let session = Session {
        access: data["access_token"].as_str().unwrap().into(),
        refresh: data["refresh_token"].as_str().unwrap().into(),
        ..user
    };
    (session, secret)
}

/// `POST /login/json` with the password: the second step's challenge.
async fn challenge(app: &TestApp, email: &str) -> Value {
    let reply = app.login_json(email, PASSWORD).await;
    let data = reply.expect_ok(StatusCode::OK).clone();
    assert_eq!(data["mfa_required"], true, "{data}");
    data
}

/// `POST /mfa/passkey/options`; the raw answer.
async fn options_raw(app: &TestApp, mfa_token: &Value) -> Reply {
    app.post_json("/mfa/passkey/options", &json!({"mfa_token": mfa_token}))
        .await
}

/// `POST /mfa/passkey/options`, checked: its `data`.
async fn options(app: &TestApp, mfa_token: &Value) -> Value {
    options_raw(app, mfa_token)
        .await
        .expect_ok(StatusCode::OK)
        .clone()
}

/// `POST /mfa/verify` with a passkey; the raw answer.
async fn verify(app: &TestApp, mfa_token: &Value, ceremony: &Value, credential: &Value) -> Reply {
    app.post_json(
        "/mfa/verify",
        &json!({"mfa_token": mfa_token, "method": "passkey",
                "ceremony_id": ceremony["ceremony_id"], "credential": credential}),
    )
    .await
}

both_backends!(a_passkey_passes_the_second_step, vars[VARS[0], VARS[1]], |app| async move {
    let (user, secret) = with_totp(&app, "pk2-pass").await;
    // Without a passkey, no passkey method, and no options.
    let data = challenge(&app, &user.email).await;
    assert_eq!(data["methods"], json!(["totp", "recovery_code"]));
    options_raw(&app, &data["mfa_token"])
        .await
        .expect_error(StatusCode::BAD_REQUEST, "PASSKEY_CEREMONY_INVALID");

    let mut device = Device::new(true);
    add_passkey(&app, &user, &mut device).await;
    let data = challenge(&app, &user.email).await;
    assert_eq!(data["methods"], json!(["totp", "recovery_code", "passkey"]));
    // An mfa_token that is not one: the answer /mfa/verify gives.
    options_raw(&app, &json!("not-a-token"))
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "INVALID_MFA_TOKEN");
    app.post_json("/mfa/verify", &json!({"mfa_token": "not-a-token", "method": "totp", "code": "123456"}))
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "INVALID_MFA_TOKEN");

    let ceremony = options(&app, &data["mfa_token"]).await;
    assert_eq!(keys(&ceremony), ["ceremony_id", "expires_in", "options"]);
    assert_eq!(ceremony["expires_in"], 300);
    let public_key = &ceremony["options"]["publicKey"];
    assert_eq!(public_key["allowCredentials"], json!([{"type": "public-key", "id": device.credentials[0].0}]));
    assert_eq!(public_key["userVerification"], "required");
    assert_eq!(public_key["rpId"], RP_ID);
    assert!(ceremony["options"].get("mediation").is_none());
    let assertion = device.get(ORIGIN, &ceremony["options"]);
    let reply = verify(&app, &data["mfa_token"], &ceremony, &assertion).await;
    let tokens = reply.expect_ok(StatusCode::OK).clone();
    expect_login_pair(&tokens);
    assert_eq!(amr_aal(&tokens), (json!(["pwd", "hwk", "mfa"]), json!("aal2")));
    app.me(tokens["access_token"].as_str().unwrap()).await.expect_ok(StatusCode::OK);
    // The mfa_token is spent; the passkey's use is recorded.
    app.post_json("/mfa/verify", &json!({"mfa_token": data["mfa_token"], "method": "totp", "code": "123456"}))
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "INVALID_MFA_TOKEN");
    let listed = app.auth_get("/passkeys", &user.access).await;
    assert!(listed.expect_ok(StatusCode::OK)[0]["last_used_at"].is_string());
    // A refresh keeps the amr.
    let refreshed = app.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(amr_aal(refreshed.expect_ok(StatusCode::OK)).0, json!(["pwd", "hwk", "mfa"]));

    // A counter that goes backwards: two ceremonies of two logins, the
    // later assertion finished first.
    let (first, second) = (challenge(&app, &user.email).await, challenge(&app, &user.email).await);
    let (early, late) = (options(&app, &first["mfa_token"]).await, options(&app, &second["mfa_token"]).await);
    let early_assertion = device.get(ORIGIN, &early["options"]);
    let late_assertion = device.get(ORIGIN, &late["options"]);
    verify(&app, &second["mfa_token"], &late, &late_assertion).await.expect_ok(StatusCode::OK);
    verify(&app, &first["mfa_token"], &early, &early_assertion)
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "INVALID_MFA_CODE");
    let events = event_kinds(&app, &user).await;
    assert!(events.contains(&"passkey_clone_suspected".to_string()), "{events:?}");
    assert!(events.contains(&"mfa_failed".to_string()), "{events:?}");

    // TOTP still passes it, with the passkey listed.
    let data = challenge(&app, &user.email).await;
    let code = portcullis::mfa::totp_code(&secret, now() + 30).unwrap();
    let reply = app
        .post_json("/mfa/verify", &json!({"mfa_token": data["mfa_token"], "method": "totp", "code": code}))
        .await;
    assert_eq!(amr_aal(reply.expect_ok(StatusCode::OK)), (json!(["pwd", "otp", "mfa"]), json!("aal2")));
    // A passkey method without its fields is a validation error.
    let data = challenge(&app, &user.email).await;
    app.post_json("/mfa/verify", &json!({"mfa_token": data["mfa_token"], "method": "passkey"}))
        .await
        .expect_invalid_field("ceremony_id");

    // The library: the same flows without HTTP.
    let flows = app.portcullis.flows();
    let client = Default::default();
    let token = data["mfa_token"].as_str().unwrap();
    let ceremony = flows.passkey_second_step_options(token).await.unwrap();
    let ceremony = serde_json::to_value(&ceremony).unwrap();
    let assertion = device.get(ORIGIN, &ceremony["options"]);
    let passed = flows
        .verify_second_factor_with_passkey(token, ceremony["ceremony_id"].as_str().unwrap(), assertion, &client)
        .await
        .unwrap();
    let passed = serde_json::to_value(&passed).unwrap();
    assert_eq!(amr_aal(&passed), (json!(["pwd", "hwk", "mfa"]), json!("aal2")));
});

both_backends!(failed_passkeys_are_wrong_codes, vars[VARS[0], VARS[1]], |app| async move {
    let (alice, secret) = with_totp(&app, "pk2-alice").await;
    let (bob, _) = with_totp(&app, "pk2-bob").await;
    let mut device = Device::new(true);
    add_passkey(&app, &alice, &mut device).await;
    let mut bob_device = Device::new(true);
    add_passkey(&app, &bob, &mut bob_device).await;
    let wrong = |reply: Reply| reply.expect_error(StatusCode::UNAUTHORIZED, "INVALID_MFA_CODE");

    let data = challenge(&app, &alice.email).await;
    let token = &data["mfa_token"];
    // A wrong origin...
    let ceremony = options(&app, token).await;
    wrong(verify(&app, token, &ceremony, &device.get("https://evil.localhost", &ceremony["options"])).await);
    // ...spent the ceremony: replaying it with a right assertion fails.
    wrong(verify(&app, token, &ceremony, &device.get(ORIGIN, &ceremony["options"])).await);
    // Another user's ceremony (which stays Bob's).
    let bob_data = challenge(&app, &bob.email).await;
    let bob_ceremony = options(&app, &bob_data["mfa_token"]).await;
    let bob_assertion = bob_device.get(ORIGIN, &bob_ceremony["options"]);
    wrong(verify(&app, token, &bob_ceremony, &bob_assertion).await);
    let bob_tokens = verify(&app, &bob_data["mfa_token"], &bob_ceremony, &bob_assertion).await;
    bob_tokens.expect_ok(StatusCode::OK);
    // A first-factor sign-in ceremony.
    let sign_in = sign_in_options(&app, Some(&alice.email)).await;
    wrong(verify(&app, token, &sign_in, &device.get(ORIGIN, &sign_in["options"])).await);
    // A credential of another account, on Alice's ceremony.
    let ceremony = options(&app, token).await;
    let mut request = ceremony["options"].clone();
    request["publicKey"]["allowCredentials"] = json!([{"type": "public-key", "id": bob_device.credentials[0].0}]);
    wrong(verify(&app, token, &ceremony, &bob_device.get(ORIGIN, &request)).await);
    // Five wrong answers burnt the mfa_token, as five wrong codes do.
    options_raw(&app, token)
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "INVALID_MFA_TOKEN");

    // Another login, and a ceremony kept for a third. A ceremony of
    // another mfa_token of the same user fails, and so do four without
    // user verification: the tenth failure in the window throttles the
    // second step, so even a right passkey is refused, as TOTP is.
    let kept_for = challenge(&app, &alice.email).await;
    let kept = options(&app, &kept_for["mfa_token"]).await;
    let misfit = options(&app, &kept_for["mfa_token"]).await;
    let data = challenge(&app, &alice.email).await;
    let token = &data["mfa_token"];
    wrong(verify(&app, token, &misfit, &device.get(ORIGIN, &misfit["options"])).await);
    for _ in 0..4 {
        let ceremony = options(&app, token).await;
        let assertion = device.get(ORIGIN, &without_uv(&ceremony["options"]));
        wrong(verify(&app, token, &ceremony, &assertion).await);
    }
    let right = device.get(ORIGIN, &kept["options"]);
    verify(&app, &kept_for["mfa_token"], &kept, &right)
        .await
        .expect_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    let fresh = challenge(&app, &alice.email).await;
    options_raw(&app, &fresh["mfa_token"])
        .await
        .expect_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    let code = portcullis::mfa::totp_code(&secret, now() + 30).unwrap();
    app.post_json("/mfa/verify", &json!({"mfa_token": fresh["mfa_token"], "method": "totp", "code": code}))
        .await
        .expect_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
});

/// A route of the embedding application that needs `aal2`.
async fn sensitive(portcullis::Aal2User(user): portcullis::Aal2User) -> String {
    user.email
}

both_backends!(
    the_aal2_extractor_accepts_a_passkey_second_step,
    |backend: Backend| async move {
        let routes = axum::Router::new().route("/sensitive", axum::routing::get(sensitive));
        let app = TestApp::builder(backend)
            .vars(&VARS)
            .routes(routes)
            .spawn()
            .await;
        let (user, _) = with_totp(&app, "pk2-aal2").await;
        let mut device = Device::new(true);
        add_passkey(&app, &user, &mut device).await;
        let sensitive = |access: String| {
            let app = &app;
            async move {
                app.send(app.client.get(app.url("/sensitive")).bearer_auth(access))
                    .await
            }
        };
        let data = challenge(&app, &user.email).await;
        let ceremony = options(&app, &data["mfa_token"]).await;
        let assertion = device.get(ORIGIN, &ceremony["options"]);
        let tokens = verify(&app, &data["mfa_token"], &ceremony, &assertion).await;
        let access = tokens.expect_ok(StatusCode::OK)["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        let reply = sensitive(access).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        assert_eq!(reply.text(), user.email);
        let plain = app.register(&unique_email("pk2-aal1"), PASSWORD).await;
        sensitive(plain.access)
            .await
            .expect_error(StatusCode::FORBIDDEN, "INSUFFICIENT_AAL");
    }
);
