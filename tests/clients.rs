//! Clients of Sign in with Portcullis (SPEC §13) on SQLite and PostgreSQL:
//! `portcullis client …` against a running server's database, the
//! superusers' `/api/clients`, and the discovery documents.

#[macro_use]
mod common;

use std::process::{Command, Output};

use common::*;
use portcullis::store::{Actor, UserChanges};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

/// `portcullis client <args>` on `app`'s database.
fn client_cli(app: &TestApp, args: &[&str]) -> Output {
    let dir = app.db.dir.path();
    Command::new(BIN)
        .arg("client")
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &app.db.url)
        .env("SECRET_KEY", SECRET)
        .env("DATA_DIR", dir.join("cli-data"))
        .env("LOG_FORMAT", "json")
        .output()
        .expect("run portcullis")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[track_caller]
fn expect_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        stdout(out),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The value of the `key: value` line of `text`.
fn line_value(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}: ")))
        .map(str::to_string)
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

/// A request to a root path with a bearer token and an optional JSON body.
async fn api(app: &TestApp, method: Method, path: &str, token: &str, body: Option<Value>) -> Reply {
    let mut rb = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        rb = rb.json(&body);
    }
    app.send(rb).await
}

/// The stored `secret_hash` of a client.
async fn secret_hash(app: &TestApp, client_id: &str) -> Option<String> {
    sqlx::query_scalar::<sqlx::Any, Option<String>>(
        "SELECT secret_hash FROM oauth_clients WHERE client_id = $1",
    )
    .bind(client_id)
    .fetch_one(app.store().pool())
    .await
    .expect("the row")
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every security event of any kind named `kind`: (user_id, actor_id, details).
async fn events_of(app: &TestApp, kind: &str) -> Vec<(Option<i64>, Option<i64>, Value)> {
    let rows: Vec<(Option<i64>, Option<i64>, Option<String>)> = sqlx::query_as(
        "SELECT user_id, actor_id, details FROM security_events WHERE kind = $1 ORDER BY id",
    )
    .bind(kind)
    .fetch_all(app.store().pool())
    .await
    .unwrap();
    rows.into_iter()
        .map(|(u, a, d)| {
            let details = d
                .map(|d| serde_json::from_str(&d).unwrap())
                .unwrap_or_default();
            (u, a, details)
        })
        .collect()
}

both_backends!(
    cli_registers_clients_a_running_server_lists,
    |app| async move {
        let root = superuser(&app, &unique_email("cl-root")).await;
        let out = client_cli(
            &app,
            &[
                "create",
                "--name",
                "Billing",
                "--redirect-uri",
                "https://billing.example.com/cb",
                "--redirect-uri",
                "http://127.0.0.1/cb",
                "--confidential",
                "--first-party",
                "--post-logout-redirect-uri",
                "https://billing.example.com/bye",
            ],
        );
        expect_exit(&out, 0);
        let text = stdout(&out);
        let id = line_value(&text, "client_id").expect("client_id line");
        let secret = line_value(&text, "client_secret").expect("client_secret line");
        assert!(id.len() >= 22 && secret.len() >= 43, "{text}");
        assert_ne!(id, secret);

        // Hashed at rest: the row holds the SHA-256, never the secret.
        let stored = secret_hash(&app, &id)
            .await
            .expect("a confidential client has a hash");
        assert_eq!(stored, sha256_hex(&secret));
        assert!(!stored.contains(&secret));
        let store = app.store();
        assert!(store.client_secret_matches(&id, &secret).await.unwrap());
        assert!(
            !store
                .client_secret_matches(&id, &format!("{secret}x"))
                .await
                .unwrap()
        );
        assert!(!store.client_secret_matches("nope", &secret).await.unwrap());

        // The running server lists it at once, without the secret.
        let list = api(&app, Method::GET, "/api/clients", &root.access, None).await;
        let list = list.expect_ok(StatusCode::OK).clone();
        assert!(!list.to_string().contains(&secret));
        let listed = list
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["client_id"] == json!(id))
            .expect("listed");
        assert_eq!(listed["name"], "Billing");
        assert_eq!(
            listed["redirect_uris"],
            json!(["https://billing.example.com/cb", "http://127.0.0.1/cb"])
        );
        assert_eq!(
            listed["post_logout_redirect_uris"],
            json!(["https://billing.example.com/bye"])
        );
        assert_eq!(
            (&listed["confidential"], &listed["first_party"]),
            (&json!(true), &json!(true))
        );
        assert!(listed.get("client_secret").is_none() && listed.get("secret_hash").is_none());
        let one = api(
            &app,
            Method::GET,
            &format!("/api/clients/{id}"),
            &root.access,
            None,
        )
        .await;
        let one = one.expect_ok(StatusCode::OK);
        assert_eq!(one["client_id"], json!(id));
        assert!(!one.to_string().contains(&secret));

        // A public client: no secret line, no hash.
        let out = client_cli(
            &app,
            &[
                "create",
                "--name",
                "CLI tool",
                "--redirect-uri",
                "http://[::1]/done",
            ],
        );
        expect_exit(&out, 0);
        let public_id = line_value(&stdout(&out), "client_id").unwrap();
        assert!(
            line_value(&stdout(&out), "client_secret").is_none(),
            "{}",
            stdout(&out)
        );
        assert_eq!(secret_hash(&app, &public_id).await, None);

        let out = client_cli(&app, &["list"]);
        expect_exit(&out, 0);
        assert!(stdout(&out).contains(&id) && stdout(&out).contains(&public_id));
        assert!(!stdout(&out).contains(&secret));

        // Recorded with "via": "cli".
        let created = events_of(&app, "client_created").await;
        assert_eq!(created.len(), 2);
        assert_eq!(created[0].2["client_id"], json!(id));
        assert_eq!(created[0].2["via"], "cli");
        assert_eq!((created[0].0, created[0].1), (None, None));

        // A bad redirect URI: exit 1, nothing stored.
        for bad in [
            "https://x.example/cb#frag",
            "http://x.example/cb",
            "javascript:alert(1)",
        ] {
            let out = client_cli(&app, &["create", "--name", "Bad", "--redirect-uri", bad]);
            expect_exit(&out, 1);
            assert!(String::from_utf8_lossy(&out.stderr).contains("--redirect-uri"));
        }
        let out = client_cli(&app, &["create", "--name", "None"]);
        expect_exit(&out, 2); // clap: --redirect-uri is required
        assert_eq!(app.store().list_clients().await.unwrap().len(), 2);

        // Deleted from the shell: gone for the running server at once.
        let out = client_cli(&app, &["delete", &id]);
        expect_exit(&out, 0);
        let gone = api(
            &app,
            Method::GET,
            &format!("/api/clients/{id}"),
            &root.access,
            None,
        )
        .await;
        gone.expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");
        assert!(
            !app.store()
                .client_secret_matches(&id, &secret)
                .await
                .unwrap()
        );
        let out = client_cli(&app, &["delete", &id]);
        expect_exit(&out, 1);
        let deleted = events_of(&app, "client_deleted").await;
        assert_eq!(deleted.len(), 1);
        assert_eq!(deleted[0].2["client_id"], json!(id));
        assert_eq!(deleted[0].2["name"], "Billing");
    }
);

both_backends!(superusers_manage_clients_over_http, |app| async move {
    let root = superuser(&app, &unique_email("cl-api")).await;
    let created = api(
        &app,
        Method::POST,
        "/api/clients",
        &root.access,
        Some(json!({
            "name": "  Web shop ",
            "redirect_uris": ["https://shop.example.com/cb"],
            "confidential": true,
            "first_party": false
        })),
    )
    .await;
    let created = created.expect_ok(StatusCode::CREATED).clone();
    let id = created["client_id"].as_str().unwrap().to_string();
    let secret = created["client_secret"]
        .as_str()
        .expect("the secret, once")
        .to_string();
    assert_eq!(created["name"], "Web shop");
    assert_eq!(created["post_logout_redirect_uris"], json!([]));
    assert_eq!(secret_hash(&app, &id).await.unwrap(), sha256_hex(&secret));

    // A public client gets no secret.
    let public = api(
        &app,
        Method::POST,
        "/api/clients",
        &root.access,
        Some(json!({"name": "SPA", "redirect_uris": ["https://spa.example.com/cb"], "confidential": false, "first_party": true})),
    )
    .await;
    let public = public.expect_ok(StatusCode::CREATED).clone();
    assert_eq!(public["client_secret"], Value::Null);
    assert_eq!(public["confidential"], false);
    let public_id = public["client_id"].as_str().unwrap().to_string();
    assert_ne!(public_id, id);

    // Never listed again.
    let list = api(&app, Method::GET, "/api/clients", &root.access, None).await;
    let list = list.expect_ok(StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(!list.to_string().contains(&secret));
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|c| c.get("client_secret").is_none())
    );

    // PATCH: the fields given change, the others stay.
    let path = format!("/api/clients/{id}");
    let changed = api(
        &app,
        Method::PATCH,
        &path,
        &root.access,
        Some(json!({"name": "Shop", "redirect_uris": ["https://shop.example.com/cb2"], "post_logout_redirect_uris": ["https://shop.example.com/"]})),
    )
    .await;
    let changed = changed.expect_ok(StatusCode::OK).clone();
    assert_eq!(changed["name"], "Shop");
    assert_eq!(
        changed["redirect_uris"],
        json!(["https://shop.example.com/cb2"])
    );
    assert_eq!(
        changed["post_logout_redirect_uris"],
        json!(["https://shop.example.com/"])
    );
    assert_eq!(
        (&changed["confidential"], &changed["first_party"]),
        (&json!(true), &json!(false))
    );
    let read = api(&app, Method::GET, &path, &root.access, None).await;
    assert_eq!(read.expect_ok(StatusCode::OK), &changed);
    let first_party = api(
        &app,
        Method::PATCH,
        &path,
        &root.access,
        Some(json!({"first_party": true})),
    )
    .await;
    let first_party = first_party.expect_ok(StatusCode::OK);
    assert_eq!(first_party["first_party"], true);
    assert_eq!(first_party["name"], "Shop");
    // The secret still works after a PATCH.
    assert!(
        app.store()
            .client_secret_matches(&id, &secret)
            .await
            .unwrap()
    );

    for (body, field) in [
        (json!({"confidential": false}), "confidential"),
        (json!({"redirect_uris": []}), "redirect_uris"),
        (
            json!({"redirect_uris": ["http://shop.example.com/cb"]}),
            "redirect_uris",
        ),
        (
            json!({"post_logout_redirect_uris": ["https://shop.example.com/#x"]}),
            "post_logout_redirect_uris",
        ),
        (json!({"name": " "}), "name"),
    ] {
        let reply = api(&app, Method::PATCH, &path, &root.access, Some(body.clone())).await;
        reply.expect_invalid_field(field);
    }
    let unknown_key = api(
        &app,
        Method::PATCH,
        &path,
        &root.access,
        Some(json!({"client_secret": "x"})),
    )
    .await;
    assert_eq!(
        unknown_key.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        unknown_key.text()
    );
    let read = api(&app, Method::GET, &path, &root.access, None).await;
    assert_eq!(
        read.expect_ok(StatusCode::OK)["redirect_uris"],
        json!(["https://shop.example.com/cb2"])
    );

    // Unknown ids: 404 for every method.
    for method in [Method::GET, Method::PATCH, Method::DELETE] {
        let body = (method == Method::PATCH).then(|| json!({"name": "x"}));
        let reply = api(
            &app,
            method,
            "/api/clients/no-such-client",
            &root.access,
            body,
        )
        .await;
        reply.expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    }

    // DELETE, recorded on the superuser's trail naming them.
    let deleted = api(&app, Method::DELETE, &path, &root.access, None).await;
    deleted.expect_ok(StatusCode::OK);
    api(&app, Method::GET, &path, &root.access, None)
        .await
        .expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    api(&app, Method::DELETE, &path, &root.access, None)
        .await
        .expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    let created = events_of(&app, "client_created").await;
    assert_eq!(created.len(), 2);
    assert_eq!(
        (created[0].0, created[0].1),
        (Some(root.user_id), Some(root.user_id))
    );
    assert_eq!(created[0].2, json!({"client_id": id, "name": "Web shop"}));
    let deleted = events_of(&app, "client_deleted").await;
    assert_eq!(deleted.len(), 1);
    assert_eq!(
        (deleted[0].0, deleted[0].1),
        (Some(root.user_id), Some(root.user_id))
    );
    assert_eq!(deleted[0].2, json!({"client_id": id, "name": "Shop"}));
});

both_backends!(bad_registrations_are_refused, |app| async move {
    let root = superuser(&app, &unique_email("cl-bad")).await;
    let post = |body: Value| api(&app, Method::POST, "/api/clients", &root.access, Some(body));
    for uri in [
        "https://app.example.com/cb#fragment",
        "http://app.example.com/cb",
        "/relative/cb",
        "app.example.com/cb",
        "javascript:alert(1)",
        "data:text/html,hi",
        "https://user:pw@app.example.com/cb",
        "https://app.example.com/c b",
        "myapp:/cb",
    ] {
        let reply = post(json!({"name": "X", "redirect_uris": [uri], "confidential": false})).await;
        reply.expect_invalid_field("redirect_uris");
    }
    // A private-use scheme: for public (native) clients only.
    let native =
        json!({"name": "App", "redirect_uris": ["com.example.app:/cb"], "confidential": false});
    post(native).await.expect_ok(StatusCode::CREATED);
    let confidential =
        json!({"name": "App", "redirect_uris": ["com.example.app:/cb"], "confidential": true});
    post(confidential)
        .await
        .expect_invalid_field("redirect_uris");
    post(json!({"name": "X", "redirect_uris": []}))
        .await
        .expect_invalid_field("redirect_uris");
    post(json!({"name": "", "redirect_uris": ["https://a.example/cb"]}))
        .await
        .expect_invalid_field("name");
    post(json!({"name": "X", "redirect_uris": ["https://a.example/cb"], "post_logout_redirect_uris": ["http://a.example/"]}))
        .await
        .expect_invalid_field("post_logout_redirect_uris");
    let missing = post(json!({"name": "X"})).await;
    assert_eq!(
        missing.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        missing.text()
    );
    // Only the one valid registration was stored.
    assert_eq!(app.store().list_clients().await.unwrap().len(), 1);
});

both_backends!(only_superusers_reach_clients, |app| async move {
    let root = superuser(&app, &unique_email("cl-root4")).await;
    let created = api(
        &app,
        Method::POST,
        "/api/clients",
        &root.access,
        Some(json!({"name": "A", "redirect_uris": ["https://a.example/cb"]})),
    )
    .await;
    let id = created.expect_ok(StatusCode::CREATED)["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    let user = app.register(&unique_email("cl-user"), PASSWORD).await;
    let path = format!("/api/clients/{id}");
    let body = json!({"name": "B", "redirect_uris": ["https://b.example/cb"]});
    for (method, path, body) in [
        (Method::GET, "/api/clients", None),
        (Method::POST, "/api/clients", Some(body.clone())),
        (Method::GET, path.as_str(), None),
        (Method::PATCH, path.as_str(), Some(json!({"name": "B"}))),
        (Method::DELETE, path.as_str(), None),
    ] {
        let reply = api(&app, method.clone(), path, &user.access, body.clone()).await;
        reply.expect_error(StatusCode::FORBIDDEN, "FORBIDDEN");
        let mut rb = app.client.request(method, app.url(path));
        if let Some(body) = body {
            rb = rb.json(&body);
        }
        app.send(rb)
            .await
            .expect_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    }
    let clients = app.store().list_clients().await.unwrap();
    assert_eq!(clients.len(), 1);
    assert_eq!(clients[0].name, "A");
});

/// Checks the fields every discovery document has, on `app` at `issuer`.
fn check_metadata(doc: &Value, app: &TestApp, issuer: &str, alg: &str) {
    let base = format!("{}/api/auth", app.base_url);
    assert_eq!(doc["issuer"], issuer);
    assert_eq!(doc["authorization_endpoint"], format!("{base}/authorize"));
    assert_eq!(doc["token_endpoint"], format!("{base}/token"));
    assert_eq!(doc["userinfo_endpoint"], format!("{base}/userinfo"));
    assert_eq!(doc["revocation_endpoint"], format!("{base}/revoke"));
    assert_eq!(doc["end_session_endpoint"], format!("{base}/end-session"));
    assert_eq!(
        doc["jwks_uri"],
        format!("{}/.well-known/jwks.json", app.base_url)
    );
    assert_eq!(doc["response_types_supported"], json!(["code"]));
    assert_eq!(
        doc["grant_types_supported"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        doc["scopes_supported"],
        json!(["openid", "email", "profile", "offline_access"])
    );
    assert_eq!(doc["subject_types_supported"], json!(["public"]));
    assert_eq!(doc["id_token_signing_alg_values_supported"], json!([alg]));
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post", "none"])
    );
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    assert_eq!(doc["request_uri_parameter_supported"], false);
    for claim in [
        "sub",
        "iss",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "amr",
        "acr",
        "email",
        "email_verified",
        "name",
    ] {
        assert!(
            doc["claims_supported"]
                .as_array()
                .unwrap()
                .contains(&json!(claim)),
            "{claim}"
        );
    }
    assert!(doc.get("success").is_none(), "not in the envelope");
}

both_backends!(discovery_documents, |app| async move {
    let oidc = app.get_root("/.well-known/openid-configuration").await;
    assert_eq!(oidc.status, StatusCode::OK, "{}", oidc.text());
    assert!(
        oidc.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    // No JWT_ISSUER: the issuer is APP_URL; HS256 tokens, so RS256 ID tokens.
    check_metadata(&oidc.body, &app, &app.base_url, "RS256");
    let rfc8414 = app
        .get_root("/.well-known/oauth-authorization-server")
        .await;
    assert_eq!(rfc8414.status, StatusCode::OK);
    assert_eq!(rfc8414.body, oidc.body);
    // Listed in the OpenAPI document.
    let openapi = app.get_root("/openapi.json").await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
        "/api/clients",
        "/api/clients/{id}",
    ] {
        assert!(openapi.body["paths"].get(path).is_some(), "{path}");
    }
});

both_backends!(
    discovery_issuer_is_the_tokens_iss,
    vars[("JWT_ISSUER", "https://auth.example.com")],
    |app| async move {
        let doc = app.get_root("/.well-known/openid-configuration").await;
        assert_eq!(doc.status, StatusCode::OK);
        check_metadata(&doc.body, &app, "https://auth.example.com", "RS256");
        let user = app.register(&unique_email("cl-iss"), PASSWORD).await;
        let (_, claims) = jwt_parts(&user.access);
        assert_eq!(claims["iss"], doc.body["issuer"]);
    }
);

both_backends!(
    discovery_names_the_asymmetric_algorithm,
    vars[("ALGORITHM", "ES256")],
    |app| async move {
        let doc = app.get_root("/.well-known/openid-configuration").await;
        check_metadata(&doc.body, &app, &app.base_url, "ES256");
        let user = app.register(&unique_email("cl-es"), PASSWORD).await;
        let (header, _) = jwt_parts(&user.access);
        assert_eq!(header["alg"], "ES256");
    }
);
