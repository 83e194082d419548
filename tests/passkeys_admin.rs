//! Superusers and other users' passkeys (SPEC §11 "Manage": `GET
//! /api/users/{id}/passkeys`, `DELETE /api/users/{id}/passkeys/{pid}`), on
//! SQLite and PostgreSQL, with the software authenticator: what the list
//! shows, that a removal stops the credential, the trail and the owner's
//! mail, and who may not.

#[macro_use]
mod common;
mod passkey_support;

use std::time::Duration;

use common::*;
use passkey_support::*;
use portcullis::store::{Actor, UserChanges};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The subject of the mail of a removed passkey.
const REMOVED_SUBJECT: &str = "A passkey was removed from your account";

/// Registers a user and makes them a superuser (behind the API's back).
async fn superuser(app: &TestApp, email: &str) -> Session {
    let session = app.register(email, PASSWORD).await;
    let changes = UserChanges {
        is_superuser: Some(true),
        ..UserChanges::default()
    };
    app.store()
        .update_user(session.user_id, &changes, &Actor::Cli)
        .await
        .unwrap()
        .expect("the user exists");
    session
}

/// A request to a root path (`/api/users…`) with a bearer token.
async fn admin(app: &TestApp, method: Method, path: &str, token: &str) -> Reply {
    app.send(
        app.client
            .request(method, app.url(path))
            .bearer_auth(token)
            .header("user-agent", "admin-console/1.0"),
    )
    .await
}

/// The mails about a removed passkey sent to `to` so far, as text.
fn removal_mails(app: &TestApp, to: &str) -> Vec<String> {
    read_mail_dir(&app.outbox(), "eml")
        .into_iter()
        .map(|(_, raw)| Mail::parse(&raw).expect("a message"))
        .filter(|m| {
            m.subject() == REMOVED_SUBJECT && m.header("To").is_some_and(|h| h.contains(to))
        })
        .map(|m| m.text().to_string())
        .collect()
}

/// Whether `device`'s latest credential signs in (a fresh ceremony); the
/// refusal's status and code otherwise.
async fn signs_in(app: &TestApp, device: &mut Device) -> Result<(), (StatusCode, Value)> {
    let options = sign_in_options(app, None).await;
    let assertion = device.get(ORIGIN, &options["options"]);
    let reply = finish_sign_in(app, &options, &assertion).await;
    if reply.status == StatusCode::OK {
        Ok(())
    } else {
        Err((reply.status, reply.body["error"]["code"].clone()))
    }
}

both_backends!(superusers_list_and_remove_a_users_passkeys, vars[VARS[0], VARS[1]], |app| async move {
    let root = superuser(&app, &unique_email("pk-root")).await;
    let alice = app.register(&unique_email("pk-alice"), PASSWORD).await;
    let bob = app.register(&unique_email("pk-bob"), PASSWORD).await;
    let (mut laptop, mut phone, mut bobs) = (Device::new(true), Device::new(true), Device::new(true));
    let first = add_passkey(&app, &alice, &mut laptop).await;
    let second = add_passkey(&app, &alice, &mut phone).await;
    let bobs_passkey = add_passkey(&app, &bob, &mut bobs).await;
    let (first_id, bobs_id) = (first["id"].as_str().unwrap(), bobs_passkey["id"].as_str().unwrap());

    // The list is the owner's, as the owner sees it.
    let path = format!("/api/users/{}/passkeys", alice.user_id);
    let listed = admin(&app, Method::GET, &path, &root.access).await.expect_ok(StatusCode::OK).clone();
    let owners = app.auth_get("/passkeys", &alice.access).await.expect_ok(StatusCode::OK).clone();
    assert_eq!(listed, owners);
    // Oldest first, by the second: two of one second come in any order.
    let mut ids: Vec<&Value> = listed.as_array().unwrap().iter().map(|p| &p["id"]).collect();
    let mut expected = vec![&first["id"], &second["id"]];
    ids.sort_by_key(|id| id.to_string());
    expected.sort_by_key(|id| id.to_string());
    assert_eq!(ids, expected);
    for unknown in ["999999999", "abc", "-1"] {
        admin(&app, Method::GET, &format!("/api/users/{unknown}/passkeys"), &root.access)
            .await
            .expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    }

    // Bob's passkey under Alice's id, unknown and malformed ids, an unknown
    // user: 404, and nothing is deleted.
    let alices = |pid: &str| format!("/api/users/{}/passkeys/{pid}", alice.user_id);
    for path in [
        alices(bobs_id),
        alices("unknown-passkey-id"),
        alices(&"x".repeat(65)),
        alices("a.b"),
        format!("/api/users/999999999/passkeys/{first_id}"),
        format!("/api/users/abc/passkeys/{first_id}"),
    ] {
        admin(&app, Method::DELETE, &path, &root.access)
            .await
            .expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    }
    let bobs_list = app.auth_get("/passkeys", &bob.access).await.expect_ok(StatusCode::OK).clone();
    assert_eq!(bobs_list.as_array().unwrap().len(), 1, "{bobs_list}");
    assert_eq!(signs_in(&app, &mut bobs).await, Ok(()));
    assert!(removal_mails(&app, &bob.email).is_empty());
    assert!(removal_mails(&app, &alice.email).is_empty());

    // Alice's first passkey: removed without a password.
    admin(&app, Method::DELETE, &alices(first_id), &root.access)
        .await
        .expect_ok(StatusCode::OK);
    let left = admin(&app, Method::GET, &path, &root.access).await.expect_ok(StatusCode::OK).clone();
    assert_eq!(left.as_array().unwrap().iter().map(|p| &p["id"]).collect::<Vec<_>>(), [&second["id"]]);
    assert_eq!(
        signs_in(&app, &mut laptop).await,
        Err((StatusCode::UNAUTHORIZED, json!("INVALID_PASSKEY")))
    );
    assert_eq!(signs_in(&app, &mut phone).await, Ok(()));
    admin(&app, Method::DELETE, &alices(first_id), &root.access)
        .await
        .expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");

    // On Alice's trail, naming the superuser and the passkey.
    let events = format!("/api/users/{}/events", alice.user_id);
    let trail = admin(&app, Method::GET, &events, &root.access).await.expect_ok(StatusCode::OK).clone();
    let removed: Vec<&Value> =
        trail["items"].as_array().unwrap().iter().filter(|e| e["kind"] == "passkey_removed").collect();
    assert_eq!(removed.len(), 1, "{trail}");
    assert_eq!(removed[0]["actor_id"], root.user_id);
    assert_eq!(removed[0]["user_agent"], "admin-console/1.0");
    assert_eq!(removed[0]["details"]["passkey"], json!({"id": first_id, "name": "Laptop"}));

    // Alice is mailed as for her own removal (the mail worker writes it
    // after the answer).
    let mut mails = Vec::new();
    for _ in 0..200 {
        mails = removal_mails(&app, &alice.email);
        if !mails.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("\"Laptop\""), "{}", mails[0]);
    assert!(removal_mails(&app, &bob.email).is_empty());

    // Her own removal stays hers: recorded with no actor.
    let second_id = second["id"].as_str().unwrap();
    remove_passkey(&app, &alice, second_id, PASSWORD).await.expect_ok(StatusCode::OK);
    let trail = admin(&app, Method::GET, &events, &root.access).await.expect_ok(StatusCode::OK).clone();
    assert_eq!(trail["items"][0]["kind"], "passkey_removed");
    assert_eq!(trail["items"][0]["actor_id"], Value::Null);
    assert_eq!(trail["items"][0]["details"], Value::Null);
});

both_backends!(only_superusers_reach_other_users_passkeys, vars[VARS[0], VARS[1]], |app| async move {
    let root = superuser(&app, &unique_email("pk-root2")).await;
    let alice = app.register(&unique_email("pk-alice2"), PASSWORD).await;
    let mallory = app.register(&unique_email("pk-mallory"), PASSWORD).await;
    let mut device = Device::new(true);
    let passkey = add_passkey(&app, &alice, &mut device).await;
    let list = format!("/api/users/{}/passkeys", alice.user_id);
    let one = format!("{list}/{}", passkey["id"].as_str().unwrap());
    for (method, path) in [(Method::GET, &list), (Method::DELETE, &one)] {
        admin(&app, method.clone(), path, &mallory.access)
            .await
            .expect_error(StatusCode::FORBIDDEN, "FORBIDDEN");
        app.send(app.client.request(method, app.url(path)))
            .await
            .expect_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    }
    let listed = admin(&app, Method::GET, &list, &root.access).await.expect_ok(StatusCode::OK).clone();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(signs_in(&app, &mut device).await, Ok(()));

    // A superuser's own passkey goes through DELETE /passkeys/{id} with the
    // password: a stolen superuser session cannot remove it here.
    let mut root_device = Device::new(true);
    let own = add_passkey(&app, &root, &mut root_device).await;
    let own_path = format!("/api/users/{}/passkeys/{}", root.user_id, own["id"].as_str().unwrap());
    admin(&app, Method::DELETE, &own_path, &root.access)
        .await
        .expect_error(StatusCode::CONFLICT, "CANNOT_MODIFY_SELF");
    assert_eq!(signs_in(&app, &mut root_device).await, Ok(()));
});

both_backends!(the_list_answers_with_passkeys_off, |app| async move {
    // No relying party (APP_URL is an IP address): the owner's routes answer
    // 503, a superuser still reads what is stored.
    let root = superuser(&app, &unique_email("pk-root3")).await;
    let alice = app.register(&unique_email("pk-alice3"), PASSWORD).await;
    let path = format!("/api/users/{}/passkeys", alice.user_id);
    let listed = admin(&app, Method::GET, &path, &root.access)
        .await
        .expect_ok(StatusCode::OK)
        .clone();
    assert_eq!(listed, json!([]));
    admin(
        &app,
        Method::DELETE,
        &format!("{path}/unknown"),
        &root.access,
    )
    .await
    .expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");
});
