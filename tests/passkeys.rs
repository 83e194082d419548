//! Passkeys (SPEC §11) through the API, with a software authenticator, on
//! SQLite and PostgreSQL: registration, sign-in with an e-mail and without
//! one, the tokens they give, and every refusal.

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

/// The member names of `v`, recursively, with array lengths and string
/// lengths of ids: what an observer compares to tell two answers apart.
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), shape(v))).collect(),
        Value::Array(items) => items.iter().map(shape).collect(),
        Value::String(s) => json!(s.len()),
        other => json!(other.is_number() || other.is_boolean()),
    }
}

both_backends!(passkeys_off_on_an_ip_host_answer_503, |app| async move {
    // The test server's APP_URL is http://127.0.0.1:port and no RP id is set.
    let reply = app.post_json("/login/passkey/options", &json!({})).await;
    reply.expect_error(StatusCode::SERVICE_UNAVAILABLE, "PASSKEYS_UNAVAILABLE");
    assert!(reply.header("retry-after").is_none());
    let user = app.register(&unique_email("pk-off"), PASSWORD).await;
    register_options_raw(&app, &user)
        .await
        .expect_error(StatusCode::SERVICE_UNAVAILABLE, "PASSKEYS_UNAVAILABLE");
});

both_backends!(register_list_sign_in_rename_remove, vars[VARS[0], VARS[1]], |app| async move {
    let user = app.register(&unique_email("pk"), PASSWORD).await;
    let ceremony = register_options(&app, &user).await;
    assert_eq!(ceremony["expires_in"], 300);
    let public_key = &ceremony["options"]["publicKey"];
    assert_eq!(public_key["rp"]["id"], RP_ID);
    assert_eq!(public_key["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(public_key["authenticatorSelection"]["userVerification"], "required");
    assert_eq!(public_key["pubKeyCredParams"][0]["alg"], -7, "ES256 first");
    assert!(public_key["pubKeyCredParams"].as_array().unwrap().iter().any(|p| p["alg"] == -257));
    let mut device = Device::new(true);
    let credential = device.create(ORIGIN, &ceremony["options"]);
    let reply = finish_registration(&app, &user, &ceremony, &credential).await;
    let passkey = reply.expect_ok(StatusCode::CREATED).clone();
    assert_eq!(keys(&passkey), ["backed_up", "created_at", "id", "last_used_at", "name"]);
    assert_eq!((passkey["name"].as_str(), passkey["last_used_at"].is_null()), (Some("Laptop"), true));
    assert!(event_kinds(&app, &user).await.contains(&"passkey_added".to_string()));

    // A second registration excludes the first credential.
    let again = register_options(&app, &user).await;
    assert_eq!(again["options"]["publicKey"]["excludeCredentials"][0]["id"], credential["id"]);

    // Sign in with the e-mail: the user's credentials are listed.
    let options = sign_in_options(&app, Some(&user.email)).await;
    assert_eq!(options["options"]["publicKey"]["allowCredentials"][0]["id"], credential["id"]);
    assert_eq!(options["options"]["publicKey"]["userVerification"], "required");
    assert_eq!(options["options"]["publicKey"]["rpId"], RP_ID);
    let assertion = device.get(ORIGIN, &options["options"]);
    let reply = finish_sign_in(&app, &options, &assertion).await;
    let tokens = reply.expect_ok(StatusCode::OK).clone();
    expect_login_pair(&tokens);
    assert_eq!(amr_aal(&tokens), (json!(["hwk", "user", "mfa"]), json!("aal2")));
    app.me(tokens["access_token"].as_str().unwrap()).await.expect_ok(StatusCode::OK);
    // The ceremony was spent.
    finish_sign_in(&app, &options, &assertion)
        .await
        .expect_error(StatusCode::BAD_REQUEST, "PASSKEY_CEREMONY_INVALID");

    // Without an e-mail: any discoverable credential, identified by its handle.
    let options = sign_in_options(&app, None).await;
    assert_eq!(options["options"]["publicKey"]["allowCredentials"], json!([]));
    let assertion = device.get(ORIGIN, &options["options"]);
    let tokens = finish_sign_in(&app, &options, &assertion).await.expect_ok(StatusCode::OK).clone();
    assert_eq!(amr_aal(&tokens).1, json!("aal2"));

    let listed = app.auth_get("/passkeys", &user.access).await;
    let listed = listed.expect_ok(StatusCode::OK).as_array().unwrap().clone();
    assert_eq!(listed.len(), 1);
    assert!(listed[0]["last_used_at"].is_string(), "{listed:?}");
    let id = listed[0]["id"].as_str().unwrap().to_string();

    let path = format!("/passkeys/{id}");
    let renamed = app.auth_patch_json(&path, &user.access, &json!({"name": " Phone "})).await;
    assert_eq!(renamed.expect_ok(StatusCode::OK)["name"], "Phone");
    app.auth_patch_json(&path, &user.access, &json!({"name": ""}))
        .await
        .expect_invalid_field("name");
    app.auth_patch_json("/passkeys/nope", &user.access, &json!({"name": "x"}))
        .await
        .expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    let stranger = app.register(&unique_email("pk-other"), PASSWORD).await;
    remove_passkey(&app, &stranger, &id, PASSWORD)
        .await
        .expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    remove_passkey(&app, &user, &id, OTHER_PASSWORD)
        .await
        .expect_error(StatusCode::BAD_REQUEST, "INVALID_PASSWORD");
    remove_passkey(&app, &user, &id, PASSWORD).await.expect_ok(StatusCode::OK);
    assert!(event_kinds(&app, &user).await.contains(&"passkey_removed".to_string()));
    // Its credential no longer signs in.
    let options = sign_in_options(&app, None).await;
    let assertion = device.get(ORIGIN, &options["options"]);
    finish_sign_in(&app, &options, &assertion)
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "INVALID_PASSKEY");
});

both_backends!(register_options_need_the_password_and_respect_the_limit,
    vars[VARS[0], VARS[1], ("PASSKEYS_PER_USER", "1")], |app| async move {
    let user = app.register(&unique_email("pk-limit"), PASSWORD).await;
    app.auth_post_json("/passkeys/register/options", &user.access, &json!({"password": OTHER_PASSWORD}))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "INVALID_PASSWORD");
    // Two ceremonies started under the limit: the second finish is refused.
    let first = register_options(&app, &user).await;
    let second = register_options(&app, &user).await;
    let mut device = Device::new(true);
    let one = device.create(ORIGIN, &first["options"]);
    let two = device.create(ORIGIN, &second["options"]);
    finish_registration(&app, &user, &first, &one).await.expect_ok(StatusCode::CREATED);
    finish_registration(&app, &user, &second, &two)
        .await
        .expect_error(StatusCode::CONFLICT, "PASSKEY_LIMIT_REACHED");
    register_options_raw(&app, &user)
        .await
        .expect_error(StatusCode::CONFLICT, "PASSKEY_LIMIT_REACHED");
});

both_backends!(registrations_that_do_not_verify_are_refused, vars[VARS[0], VARS[1]], |app| async move {
    let alice = app.register(&unique_email("pk-alice"), PASSWORD).await;
    let bob = app.register(&unique_email("pk-bob"), PASSWORD).await;
    let mut device = Device::new(true);

    // Another origin.
    let ceremony = register_options(&app, &alice).await;
    let credential = device.create("https://evil.localhost", &ceremony["options"]);
    finish_registration(&app, &alice, &ceremony, &credential)
        .await
        .expect_error(StatusCode::BAD_REQUEST, "INVALID_PASSKEY");
    // ...which spent the ceremony.
    finish_registration(&app, &alice, &ceremony, &credential)
        .await
        .expect_error(StatusCode::BAD_REQUEST, "PASSKEY_CEREMONY_INVALID");

    // No user verification.
    let ceremony = register_options(&app, &alice).await;
    let credential = Device::new(false).create(ORIGIN, &without_uv(&ceremony["options"]));
    finish_registration(&app, &alice, &ceremony, &credential)
        .await
        .expect_error(StatusCode::BAD_REQUEST, "INVALID_PASSKEY");

    // Another user's ceremony, and one of another purpose; neither spends
    // Alice's.
    let ceremony = register_options(&app, &alice).await;
    let credential = device.create(ORIGIN, &ceremony["options"]);
    finish_registration(&app, &bob, &ceremony, &credential)
        .await
        .expect_error(StatusCode::BAD_REQUEST, "PASSKEY_CEREMONY_INVALID");
    let sign_in = sign_in_options(&app, None).await;
    finish_registration(&app, &alice, &sign_in, &credential)
        .await
        .expect_error(StatusCode::BAD_REQUEST, "PASSKEY_CEREMONY_INVALID");
    finish_sign_in(&app, &ceremony, &device.get(ORIGIN, &sign_in["options"]))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "PASSKEY_CEREMONY_INVALID");
    finish_registration(&app, &alice, &ceremony, &credential)
        .await
        .expect_ok(StatusCode::CREATED);

    // Alice's credential id, claimed by Bob with a key of his own.
    let ceremony = register_options(&app, &bob).await;
    let own = device.create(ORIGIN, &ceremony["options"]);
    let stolen = claiming_credential_id(&own, credential["id"].as_str().unwrap());
    finish_registration(&app, &bob, &ceremony, &stolen)
        .await
        .expect_error(StatusCode::CONFLICT, "PASSKEY_ALREADY_REGISTERED");
    // The same forgery with a fresh id registers: the 409 is the id's.
    let ceremony = register_options(&app, &bob).await;
    let own = device.create(ORIGIN, &ceremony["options"]);
    let fresh = common::b64([7u8; 32]);
    let forged = claiming_credential_id(&own, &fresh);
    finish_registration(&app, &bob, &ceremony, &forged)
        .await
        .expect_ok(StatusCode::CREATED);
});

both_backends!(sign_ins_that_do_not_verify_are_refused, vars[VARS[0], VARS[1]], |app| async move {
    let user = app.register(&unique_email("pk-refuse"), PASSWORD).await;
    let mut device = Device::new(true);
    add_passkey(&app, &user, &mut device).await;

    for (what, origin, tamper) in [
        ("another origin", "https://evil.localhost", false),
        ("another RP id", SUB_ORIGIN, true),
        ("no user verification", ORIGIN, false),
    ] {
        let options = sign_in_options(&app, Some(&user.email)).await;
        let mut request = options["options"].clone();
        if tamper {
            request["publicKey"]["rpId"] = json!("sub.localhost");
        }
        if what == "no user verification" {
            request = without_uv(&request);
        }
        let assertion = device.get(origin, &request);
        finish_sign_in(&app, &options, &assertion)
            .await
            .expect_error(StatusCode::UNAUTHORIZED, "INVALID_PASSKEY");
        // A failed finish spends its ceremony.
        let retry = device.get(ORIGIN, &options["options"]);
        finish_sign_in(&app, &options, &retry)
            .await
            .expect_error(StatusCode::BAD_REQUEST, "PASSKEY_CEREMONY_INVALID");
    }

    // A credential the ceremony's user does not own.
    let other = app.register(&unique_email("pk-refuse2"), PASSWORD).await;
    let mut other_device = Device::new(true);
    add_passkey(&app, &other, &mut other_device).await;
    let options = sign_in_options(&app, Some(&user.email)).await;
    let mut request = options["options"].clone();
    request["publicKey"]["allowCredentials"] =
        json!([{"type": "public-key", "id": other_device.credentials[0].0}]);
    finish_sign_in(&app, &options, &other_device.get(ORIGIN, &request))
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "INVALID_PASSKEY");

    // A counter that goes backwards: two assertions, the later one first.
    let early = sign_in_options(&app, Some(&user.email)).await;
    let late = sign_in_options(&app, Some(&user.email)).await;
    let early_assertion = device.get(ORIGIN, &early["options"]);
    let late_assertion = device.get(ORIGIN, &late["options"]);
    finish_sign_in(&app, &late, &late_assertion).await.expect_ok(StatusCode::OK);
    finish_sign_in(&app, &early, &early_assertion)
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "INVALID_PASSKEY");
    assert!(event_kinds(&app, &user).await.contains(&"passkey_clone_suspected".to_string()));
    // The passkey stays and signs in with a fresh counter.
    let options = sign_in_options(&app, Some(&user.email)).await;
    finish_sign_in(&app, &options, &device.get(ORIGIN, &options["options"]))
        .await
        .expect_ok(StatusCode::OK);
});

both_backends!(unknown_addresses_get_options_of_the_same_shape, vars[VARS[0], VARS[1]], |app| async move {
    let user = app.register(&unique_email("pk-shape"), PASSWORD).await;
    let without = app.register(&unique_email("pk-none"), PASSWORD).await;
    add_passkey(&app, &user, &mut Device::new(true)).await;
    let known = sign_in_options(&app, Some(&user.email)).await;
    let unknown = sign_in_options(&app, Some("nobody-here@example.com")).await;
    let no_passkey = sign_in_options(&app, Some(&without.email)).await;
    assert_eq!(shape(&known), shape(&unknown));
    assert_eq!(shape(&known), shape(&no_passkey));
    // The decoy is the same on every call and every instance.
    let second = app.spawn_sharing(&VARS).await;
    let again = sign_in_options(&second, Some("NOBODY-HERE@example.com")).await;
    let id = |v: &Value| v["options"]["publicKey"]["allowCredentials"][0]["id"].clone();
    assert_eq!(id(&unknown), id(&again));
    assert_ne!(id(&unknown), id(&no_passkey));
});

both_backends!(one_instance_starts_another_finishes, vars[VARS[0], VARS[1]], |app| async move {
    let second = app.spawn_sharing(&VARS).await;
    let user = app.register(&unique_email("pk-shared"), PASSWORD).await;
    let mut device = Device::new(true);
    let ceremony = register_options(&app, &user).await;
    let credential = device.create(ORIGIN, &ceremony["options"]);
    finish_registration(&second, &user, &ceremony, &credential)
        .await
        .expect_ok(StatusCode::CREATED);
    let options = sign_in_options(&second, None).await;
    let assertion = device.get(ORIGIN, &options["options"]);
    let tokens = finish_sign_in(&app, &options, &assertion).await.expect_ok(StatusCode::OK).clone();
    assert_eq!(amr_aal(&tokens), (json!(["hwk", "user", "mfa"]), json!("aal2")));
    // Spent for both.
    finish_sign_in(&second, &options, &assertion)
        .await
        .expect_error(StatusCode::BAD_REQUEST, "PASSKEY_CEREMONY_INVALID");
});

both_backends!(deactivated_deleted_and_unverified_users_are_refused,
    vars[VARS[0], VARS[1]], |app| async move {
    use portcullis::store::{Actor, UserChanges};
    let user = app.register(&unique_email("pk-inactive"), PASSWORD).await;
    let mut device = Device::new(true);
    add_passkey(&app, &user, &mut device).await;
    let deactivate = |active: bool| UserChanges { is_active: Some(active), ..UserChanges::default() };
    app.store().update_user(user.user_id, &deactivate(false), &Actor::Cli).await.unwrap();
    let options = sign_in_options(&app, Some(&user.email)).await;
    finish_sign_in(&app, &options, &device.get(ORIGIN, &options["options"]))
        .await
        .expect_error(StatusCode::FORBIDDEN, "INACTIVE_USER");
    app.store().update_user(user.user_id, &deactivate(true), &Actor::Cli).await.unwrap();
    let options = sign_in_options(&app, None).await;
    finish_sign_in(&app, &options, &device.get(ORIGIN, &options["options"]))
        .await
        .expect_ok(StatusCode::OK);
    // Deleting the user deletes the passkey: its credential is unknown.
    app.store().delete_user(user.user_id, &Actor::Cli).await.unwrap();
    let options = sign_in_options(&app, None).await;
    finish_sign_in(&app, &options, &device.get(ORIGIN, &options["options"]))
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "INVALID_PASSKEY");

    // With verification required, an unverified user is refused as at /login.
    let strict = app
        .spawn_sharing(&[VARS[0], VARS[1], ("REQUIRE_EMAIL_VERIFICATION", "true")])
        .await;
    let other = app.register(&unique_email("pk-unverified"), PASSWORD).await;
    let mut device = Device::new(true);
    add_passkey(&app, &other, &mut device).await;
    let options = sign_in_options(&strict, Some(&other.email)).await;
    finish_sign_in(&strict, &options, &device.get(ORIGIN, &options["options"]))
        .await
        .expect_error(StatusCode::FORBIDDEN, "EMAIL_NOT_VERIFIED");
});

both_backends!(finishes_count_under_the_login_limit_per_ip,
    vars[VARS[0], VARS[1], ("RATE_LIMIT_ENABLED", "true"), ("RATE_LIMIT_LOGIN_PER_IP", "2/minute")],
    |app| async move {
    let user = app.register(&unique_email("pk-limit-ip"), PASSWORD).await;
    let mut device = Device::new(true);
    add_passkey(&app, &user, &mut device).await;
    // Options are not counted: five of them, then two finishes pass.
    let mut ceremonies = Vec::new();
    for _ in 0..5 {
        ceremonies.push(sign_in_options(&app, Some(&user.email)).await);
    }
    for ceremony in &ceremonies[..2] {
        finish_sign_in(&app, ceremony, &device.get(ORIGIN, &ceremony["options"]))
            .await
            .expect_ok(StatusCode::OK);
    }
    let third = &ceremonies[2];
    finish_sign_in(&app, third, &device.get(ORIGIN, &third["options"]))
        .await
        .expect_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    // The password login shares the bucket.
    app.login_json(&user.email, PASSWORD)
        .await
        .expect_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
});
