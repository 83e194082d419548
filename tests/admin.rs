//! The admin API (SPEC §6, superusers) and the security-event trail, black
//! box against the real router on SQLite and PostgreSQL: who may use it,
//! pagination and search, changing and deleting users (and what that does
//! to their tokens), the self-protection rule, sessions, and the events that
//! every admin action leaves.

#[macro_use]
mod common;

use common::{OTHER_PASSWORD, PASSWORD, Reply, Session, TestApp};
use portcullis::password::{HashPolicy, hash_password};
use portcullis::store::{Actor, ImportedUser, UserChanges};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A request to a root path (`/api/users…`) with a bearer token.
async fn admin(app: &TestApp, method: Method, path: &str, token: &str) -> Reply {
    app.send(app.client.request(method, app.url(path)).bearer_auth(token))
        .await
}

/// `PATCH` a root path with a JSON body and a bearer token.
async fn admin_patch(app: &TestApp, path: &str, token: &str, body: &Value) -> Reply {
    app.send(
        app.client
            .patch(app.url(path))
            .bearer_auth(token)
            .header("user-agent", "admin-console/1.0")
            .json(body),
    )
    .await
}

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

/// Imports `emails` with a cheap bcrypt hash of [`PASSWORD`]; their ids.
async fn import(app: &TestApp, emails: &[String]) -> Vec<i64> {
    let hash = hash_password(
        PASSWORD,
        HashPolicy {
            kind: portcullis::config::HasherKind::Bcrypt,
            bcrypt_rounds: 4,
        },
    )
    .unwrap();
    let users: Vec<ImportedUser> = emails
        .iter()
        .map(|email| ImportedUser {
            email: email.clone(),
            email_key: portcullis::store::email_key(email),
            name: None,
            password_hash: hash.clone(),
            is_active: true,
            is_verified: false,
            is_superuser: false,
            created_at: None,
        })
        .collect();
    app.store().import_users(&users, |_| {}).await.unwrap();
    let mut ids = Vec::new();
    for email in emails {
        ids.push(
            app.store()
                .user_by_email(email)
                .await
                .unwrap()
                .unwrap()
                .user
                .id,
        );
    }
    ids
}

/// The `kind`s of a page of events.
fn kinds(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["kind"].as_str().expect("kind"))
        .collect()
}

/// The ids of a page of users.
fn ids(page: &Value) -> Vec<i64> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|u| u["id"].as_i64().expect("id"))
        .collect()
}

const ROUTES: [(&str, &str); 7] = [
    ("GET", "/api/users"),
    ("GET", "/api/users/1"),
    ("PATCH", "/api/users/1"),
    ("DELETE", "/api/users/1"),
    ("GET", "/api/users/1/sessions"),
    ("DELETE", "/api/users/1/sessions"),
    ("GET", "/api/users/1/events"),
];

both_backends!(only_active_superusers_get_in, |app| async move {
    let user = app.register("pat@example.com", PASSWORD).await;
    for (method, path) in ROUTES {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let anonymous = app
            .send(
                app.client
                    .request(method.clone(), app.url(path))
                    .json(&json!({})),
            )
            .await;
        anonymous.expect_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
        let plain = app
            .send(
                app.client
                    .request(method.clone(), app.url(path))
                    .bearer_auth(&user.access)
                    .json(&json!({})),
            )
            .await;
        plain.expect_error(StatusCode::FORBIDDEN, "FORBIDDEN");
    }
    // The same user made a superuser gets in with the same token ...
    let changes = UserChanges {
        is_superuser: Some(true),
        ..UserChanges::default()
    };
    app.store()
        .update_user(user.user_id, &changes, &Actor::Cli)
        .await
        .unwrap();
    admin(&app, Method::GET, "/api/users", &user.access)
        .await
        .expect_ok(StatusCode::OK);
    // ... and demoted, is out again at once.
    let changes = UserChanges {
        is_superuser: Some(false),
        ..UserChanges::default()
    };
    app.store()
        .update_user(user.user_id, &changes, &Actor::Cli)
        .await
        .unwrap();
    admin(&app, Method::GET, "/api/users", &user.access)
        .await
        .expect_error(StatusCode::FORBIDDEN, "FORBIDDEN");
});

both_backends!(
    users_are_listed_page_by_page_and_searched,
    |app| async move {
        let root = superuser(&app, "root@example.com").await;
        let mut emails: Vec<String> = (0..24).map(|i| format!("user{i:02}@example.org")).collect();
        emails.push("Alice.Smith@Example.NET".into());
        emails.push("bob_x@example.net".into());
        let imported = import(&app, &emails).await;
        let mut all = vec![root.user_id];
        all.extend(&imported);

        let first = admin(&app, Method::GET, "/api/users", &root.access).await;
        let page = first.expect_ok(StatusCode::OK);
        let mut keys: Vec<&str> = page
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort();
        assert_eq!(keys, ["items", "page", "per_page", "total"]);
        assert_eq!(page["total"], 27);
        assert_eq!(page["page"], 1);
        assert_eq!(page["per_page"], 20);
        assert_eq!(ids(page), all[..20]);
        let item = &page["items"][0];
        assert_eq!(item["email"], "root@example.com");
        assert!(item.get("password_hash").is_none(), "{item}");

        let second = admin(&app, Method::GET, "/api/users?page=2", &root.access).await;
        assert_eq!(ids(second.expect_ok(StatusCode::OK)), all[20..]);
        let small = admin(
            &app,
            Method::GET,
            "/api/users?page=3&per_page=5",
            &root.access,
        )
        .await;
        let small = small.expect_ok(StatusCode::OK);
        assert_eq!(ids(small), all[10..15]);
        assert_eq!(
            (small["page"].as_i64(), small["per_page"].as_i64()),
            (Some(3), Some(5))
        );
        let beyond = admin(&app, Method::GET, "/api/users?page=99", &root.access).await;
        let beyond = beyond.expect_ok(StatusCode::OK);
        assert_eq!(ids(beyond), Vec::<i64>::new());
        assert_eq!(beyond["total"], 27);
        let hundred = admin(&app, Method::GET, "/api/users?per_page=100", &root.access).await;
        assert_eq!(ids(hundred.expect_ok(StatusCode::OK)).len(), 27);

        // `email` is a case-insensitive substring; `_` and `%` are literal.
        for (query, expected) in [
            ("alice", vec!["Alice.Smith@Example.NET"]),
            ("SMITH@example", vec!["Alice.Smith@Example.NET"]),
            (
                "example.net",
                vec!["Alice.Smith@Example.NET", "bob_x@example.net"],
            ),
            ("b_x", vec!["bob_x@example.net"]),
            ("_", vec!["bob_x@example.net"]),
            ("%", vec![]),
            ("nobody", vec![]),
        ] {
            let path = format!("/api/users?email={}", urlencode(query));
            let reply = admin(&app, Method::GET, &path, &root.access).await;
            let page = reply.expect_ok(StatusCode::OK);
            let found: Vec<&str> = page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["email"].as_str().unwrap())
                .collect();
            assert_eq!(found, expected, "email={query}");
            assert_eq!(page["total"], expected.len(), "email={query}");
        }
        let matches = admin(
            &app,
            Method::GET,
            "/api/users?email=USER1&per_page=3&page=2",
            &root.access,
        )
        .await;
        let matches = matches.expect_ok(StatusCode::OK);
        assert_eq!(matches["total"], 10);
        assert_eq!(ids(matches), imported[13..16]);

        // Out of range is refused, not clamped (documented).
        for (query, field) in [
            ("per_page=1000", "per_page"),
            ("per_page=101", "per_page"),
            ("per_page=0", "per_page"),
            ("per_page=ten", "per_page"),
            ("page=0", "page"),
            ("page=-1", "page"),
            ("page=1.5", "page"),
            ("page=10000001", "page"),
            // Sent empty is not left out: refused, not taken as the default.
            ("page=", "page"),
            ("per_page=", "per_page"),
        ] {
            admin(
                &app,
                Method::GET,
                &format!("/api/users?{query}"),
                &root.access,
            )
            .await
            .expect_invalid_field(field);
        }
    }
);

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

both_backends!(a_user_is_read_changed_and_deleted, |app| async move {
    let root = superuser(&app, "root@example.com").await;
    let jane = app.register("jane@example.com", PASSWORD).await;
    let jane_too = app.login(&jane, PASSWORD).await;
    let path = format!("/api/users/{}", jane.user_id);

    let read = admin(&app, Method::GET, &path, &root.access).await;
    let user = read.expect_ok(StatusCode::OK);
    assert_eq!(user["email"], "jane@example.com");
    assert_eq!(user["id"], jane.user_id);
    for missing in [
        "/api/users/999999",
        "/api/users/abc",
        "/api/users/-1",
        "/api/users/0",
        "/api/users/1e3",
    ] {
        for method in [Method::GET, Method::DELETE] {
            admin(&app, method, missing, &root.access)
                .await
                .expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");
        }
        admin_patch(&app, missing, &root.access, &json!({"name": "x"}))
            .await
            .expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");
        for sub in ["sessions", "events"] {
            admin(&app, Method::GET, &format!("{missing}/{sub}"), &root.access)
                .await
                .expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");
        }
        admin(
            &app,
            Method::DELETE,
            &format!("{missing}/sessions"),
            &root.access,
        )
        .await
        .expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    }

    // Bad bodies: unknown fields, wrong types, each named.
    admin_patch(
        &app,
        &path,
        &root.access,
        &json!({"email": "x@example.com"}),
    )
    .await
    .expect_invalid_field("email");
    admin_patch(&app, &path, &root.access, &json!({"password": "x"}))
        .await
        .expect_invalid_field("password");
    admin_patch(
        &app,
        &path,
        &root.access,
        &json!({"is_active": "no", "name": 5}),
    )
    .await
    .expect_invalid_field("is_active");
    admin_patch(&app, &path, &root.access, &json!({"name": "x".repeat(101)}))
        .await
        .expect_invalid_field("name");
    app.send(
        app.client
            .patch(app.url(&path))
            .bearer_auth(&root.access)
            .header("content-type", "application/json")
            .body("{"),
    )
    .await
    .expect_error(StatusCode::BAD_REQUEST, "INVALID_JSON");
    app.send(
        app.client
            .patch(app.url(&path))
            .bearer_auth(&root.access)
            .body("name=x"),
    )
    .await
    .expect_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE");
    assert!(
        kinds(&events_of(&app, &root, jane.user_id).await)
            .iter()
            .all(|k| !k.starts_with("user_updated"))
    );

    // Name and flags change; the answer is the user as changed.
    let changed = admin_patch(
        &app,
        &path,
        &root.access,
        &json!({"name": "Jane Q", "is_verified": true, "is_superuser": true}),
    )
    .await;
    let user = changed.expect_ok(StatusCode::OK);
    assert_eq!(
        (
            &user["name"],
            &user["is_verified"],
            &user["is_superuser"],
            &user["is_active"]
        ),
        (&json!("Jane Q"), &json!(true), &json!(true), &json!(true))
    );
    // Jane is a superuser now, with the token she had.
    admin(&app, Method::GET, "/api/users", &jane.access)
        .await
        .expect_ok(StatusCode::OK);
    let page = events_of(&app, &root, jane.user_id).await;
    let event = &page["items"][0];
    assert_eq!(event["kind"], "user_updated");
    assert_eq!(event["user_id"], jane.user_id);
    assert_eq!(
        event["actor_id"], root.user_id,
        "the event names the admin: {event}"
    );
    assert_eq!(event["ip"], "127.0.0.1");
    assert_eq!(event["user_agent"], "admin-console/1.0");
    assert_eq!(
        event["details"]["changes"]["is_superuser"],
        json!({"from": false, "to": true})
    );
    assert_eq!(
        event["details"]["changes"]["name"],
        json!({"from": null, "to": "Jane Q"})
    );
    // `null` clears the name; nothing changed records nothing.
    let cleared = admin_patch(
        &app,
        &path,
        &root.access,
        &json!({"name": null, "is_superuser": false}),
    )
    .await;
    assert_eq!(cleared.expect_ok(StatusCode::OK)["name"], Value::Null);
    let before = events_of(&app, &root, jane.user_id).await["total"].clone();
    admin_patch(&app, &path, &root.access, &json!({"is_verified": true}))
        .await
        .expect_ok(StatusCode::OK);
    admin_patch(&app, &path, &root.access, &json!({}))
        .await
        .expect_ok(StatusCode::OK);
    assert_eq!(events_of(&app, &root, jane.user_id).await["total"], before);

    // Deactivation revokes every session of hers at once; login is refused.
    let off = admin_patch(&app, &path, &root.access, &json!({"is_active": false})).await;
    assert_eq!(off.expect_ok(StatusCode::OK)["is_active"], false);
    for token in [&jane.access, &jane_too.access] {
        app.me(token)
            .await
            .expect_error(StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");
    }
    app.refresh(&jane.refresh)
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");
    app.login_json("jane@example.com", PASSWORD)
        .await
        .expect_error(StatusCode::FORBIDDEN, "INACTIVE_USER");
    let page = events_of(&app, &root, jane.user_id).await;
    assert_eq!(page["items"][0]["kind"], "user_deactivated");
    assert_eq!(page["items"][0]["actor_id"], root.user_id);
    assert_eq!(page["items"][0]["details"]["sessions_revoked"], 2);
    // Reactivation lets her log in again, but not with the old tokens.
    admin_patch(&app, &path, &root.access, &json!({"is_active": true}))
        .await
        .expect_ok(StatusCode::OK);
    app.me(&jane.access)
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");
    let jane_again = app.login(&jane, PASSWORD).await;
    assert_eq!(
        events_of(&app, &root, jane.user_id).await["items"][1]["kind"],
        "user_activated"
    );

    // Deletion revokes her tokens; the account is gone, its trail is not.
    let deleted = admin(&app, Method::DELETE, &path, &root.access).await;
    deleted.expect_ok(StatusCode::OK);
    app.me(&jane_again.access)
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");
    app.login_json("jane@example.com", PASSWORD)
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    admin(&app, Method::GET, &path, &root.access)
        .await
        .expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    admin(&app, Method::DELETE, &path, &root.access)
        .await
        .expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    let trail = events_of(&app, &root, jane.user_id).await;
    let event = &trail["items"][0];
    assert_eq!(event["kind"], "user_deleted");
    assert_eq!(event["actor_id"], root.user_id);
    assert_eq!(event["details"]["email"], "jane@example.com");
    // Her e-mail is free again.
    app.register("jane@example.com", OTHER_PASSWORD).await;
});

/// The first page of `user_id`'s events, read by `admin`.
async fn events_of(app: &TestApp, admin_session: &Session, user_id: i64) -> Value {
    let path = format!("/api/users/{user_id}/events?per_page=100");
    admin(app, Method::GET, &path, &admin_session.access)
        .await
        .expect_ok(StatusCode::OK)
        .clone()
}

both_backends!(a_superuser_cannot_lock_themself_out, |app| async move {
    let root = superuser(&app, "root@example.com").await;
    let own = format!("/api/users/{}", root.user_id);
    for body in [
        json!({"is_active": false}),
        json!({"is_superuser": false}),
        json!({"name": "Root", "is_superuser": false}),
    ] {
        let reply = admin_patch(&app, &own, &root.access, &body).await;
        reply.expect_error(StatusCode::CONFLICT, "CANNOT_MODIFY_SELF");
    }
    admin(&app, Method::DELETE, &own, &root.access)
        .await
        .expect_error(StatusCode::CONFLICT, "CANNOT_MODIFY_SELF");
    // Nothing changed, and harmless changes to oneself are fine.
    let me = admin_patch(
        &app,
        &own,
        &root.access,
        &json!({"name": "Root", "is_active": true, "is_superuser": true}),
    )
    .await;
    let me = me.expect_ok(StatusCode::OK);
    assert_eq!(
        (&me["is_active"], &me["is_superuser"], &me["name"]),
        (&json!(true), &json!(true), &json!("Root"))
    );
    // Another superuser may demote this one.
    let other = superuser(&app, "other@example.com").await;
    admin_patch(&app, &own, &other.access, &json!({"is_superuser": false}))
        .await
        .expect_ok(StatusCode::OK);
    admin(&app, Method::GET, "/api/users", &root.access)
        .await
        .expect_error(StatusCode::FORBIDDEN, "FORBIDDEN");
});

both_backends!(sessions_are_listed_and_revoked, |app| async move {
    let root = superuser(&app, "root@example.com").await;
    let sam = app.register("sam@example.com", PASSWORD).await;
    let sam_phone = app.login(&sam, PASSWORD).await;
    let path = format!("/api/users/{}/sessions", sam.user_id);

    let listed = admin(&app, Method::GET, &path, &root.access).await;
    let sessions = listed.expect_ok(StatusCode::OK).as_array().unwrap().clone();
    assert_eq!(sessions.len(), 2);
    let mut sids: Vec<String> = sessions
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    sids.sort();
    let mut expected = vec![sam.sid(), sam_phone.sid()];
    expected.sort();
    assert_eq!(sids, expected);
    assert!(
        sessions
            .iter()
            .all(|s| s["current"] == false && s["ip"] == "127.0.0.1")
    );

    let revoked = admin(&app, Method::DELETE, &path, &root.access).await;
    assert_eq!(revoked.expect_ok(StatusCode::OK)["revoked"], 2);
    for token in [&sam.access, &sam_phone.access] {
        app.me(token)
            .await
            .expect_error(StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");
    }
    app.refresh(&sam_phone.refresh)
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");
    let listed = admin(&app, Method::GET, &path, &root.access).await;
    assert_eq!(listed.expect_ok(StatusCode::OK), &json!([]));
    let trail = events_of(&app, &root, sam.user_id).await;
    assert_eq!(trail["items"][0]["kind"], "sessions_revoked");
    assert_eq!(trail["items"][0]["actor_id"], root.user_id);
    assert_eq!(trail["items"][0]["details"]["sessions_revoked"], 2);
    // Sam still exists and may log in again; the admin's own session is untouched.
    app.login(&sam, PASSWORD).await;
    app.me(&root.access).await.expect_ok(StatusCode::OK);
});

both_backends!(users_read_their_own_trail, |app| async move {
    let kim = app.register("kim@example.com", PASSWORD).await;
    app.login_json("kim@example.com", OTHER_PASSWORD)
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    let phone = app
        .send(
            app.request(Method::POST, "/login/json")
                .header("user-agent", "kim-phone/2")
                .json(&json!({"email": "kim@example.com", "password": PASSWORD})),
        )
        .await;
    let phone_token = phone.expect_ok(StatusCode::OK)["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    app.auth_post_empty("/logout", &phone_token)
        .await
        .expect_ok(StatusCode::OK);

    let reply = app.auth_get("/events", &kim.access).await;
    let page = reply.expect_ok(StatusCode::OK);
    assert_eq!(
        kinds(page),
        ["logout", "login_succeeded", "login_failed", "user_created"],
        "newest first: {page}"
    );
    assert_eq!(
        (
            page["total"].as_i64(),
            page["page"].as_i64(),
            page["per_page"].as_i64()
        ),
        (Some(4), Some(1), Some(20))
    );
    let login = &page["items"][1];
    assert_eq!(login["user_id"], kim.user_id);
    assert_eq!(login["actor_id"], Value::Null);
    assert_eq!(login["ip"], "127.0.0.1");
    assert_eq!(login["user_agent"], "kim-phone/2");
    let at = common::rfc3339(&login["created_at"]);
    assert!((at - common::now()).abs() < 60, "{login}");
    let ids: Vec<i64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");

    let second = app.auth_get("/events?page=2&per_page=3", &kim.access).await;
    let second = second.expect_ok(StatusCode::OK);
    assert_eq!(kinds(second), ["user_created"]);
    assert_eq!(second["total"], 4);
    app.auth_get("/events?per_page=1000", &kim.access)
        .await
        .expect_invalid_field("per_page");
    app.auth_get("/events?page=zero", &kim.access)
        .await
        .expect_invalid_field("page");
    app.auth_get("/events?page=&per_page=3", &kim.access)
        .await
        .expect_invalid_field("page");
    // Only one's own events.
    let lee = app.register("lee@example.com", PASSWORD).await;
    let lees = app.auth_get("/events", &lee.access).await;
    assert_eq!(kinds(lees.expect_ok(StatusCode::OK)), ["user_created"]);
    app.get("/events")
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
});

both_backends!(
    imported_bcrypt_and_argon2_hashes_log_in_and_are_upgraded,
    |app| async move {
        use argon2::password_hash::PasswordHasher as _;
        let bcrypt_2b = hash_password(
            PASSWORD,
            HashPolicy {
                kind: portcullis::config::HasherKind::Bcrypt,
                bcrypt_rounds: 4,
            },
        )
        .unwrap();
        // PHP's $2y$ and the old $2a$ are the same algorithm under other names.
        let bcrypt_2y = bcrypt_2b.replacen("$2b$", "$2y$", 1);
        let bcrypt_2a = bcrypt_2b.replacen("$2b$", "$2a$", 1);
        let weak_argon2 = argon2::Argon2::new(
            argon2::Algorithm::Argon2i,
            argon2::Version::V0x13,
            argon2::Params::new(1024, 1, 1, None).unwrap(),
        )
        .hash_password(PASSWORD.as_bytes())
        .unwrap()
        .to_string();
        let lines = [
            ("b@example.com", bcrypt_2b.as_str()),
            ("y@example.com", bcrypt_2y.as_str()),
            ("a@example.com", bcrypt_2a.as_str()),
            ("i@example.com", weak_argon2.as_str()),
        ];
        let users: Vec<ImportedUser> = lines
            .iter()
            .map(|(email, hash)| {
                portcullis::cli::import::parse_line(
                    &json!({"email": email, "password_hash": hash, "is_verified": true})
                        .to_string(),
                )
                .unwrap()
            })
            .collect();
        app.store().import_users(&users, |_| {}).await.unwrap();
        for (email, hash) in lines {
            app.login_json(email, OTHER_PASSWORD)
                .await
                .expect_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
            let reply = app.login_json(email, PASSWORD).await;
            reply.expect_ok(StatusCode::OK);
            // The upgrade on login replaced the imported hash (in the
            // background, after the answer).
            let mut stored = String::new();
            for _ in 0..100 {
                stored = app
                    .store()
                    .user_by_email(email)
                    .await
                    .unwrap()
                    .unwrap()
                    .password_hash;
                if stored != hash {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            assert!(stored.starts_with("$argon2id$"), "{email}: {stored}");
            let again = app.login_json(email, PASSWORD).await;
            again.expect_ok(StatusCode::OK);
        }
    }
);
