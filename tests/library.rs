//! The library as an application uses it (SPEC §8): Portcullis mounted beside
//! the application's own routes, which the extractors protect, and
//! application-defined user fields (FastEdgy's `phone`), on SQLite and
//! PostgreSQL. `examples/profile.rs` is the same application.

#[macro_use]
mod common;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use common::*;
use portcullis::http::response::{Envelope, UserView};
use portcullis::{
    ActiveUser, AppState, AuthSession, CurrentUser, Superuser, UserField, VerifiedUser,
};
use serde_json::{Value, json};
use sqlx::Row;

/// The application's own routes, one per extractor.
fn app_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/profile",
            get(|ActiveUser(user): ActiveUser| async move {
                Envelope::ok(UserView::new(&user).to_json())
            }),
        )
        .route(
            "/whoami",
            get(|CurrentUser(user): CurrentUser| async move {
                Envelope::ok(json!({ "email": user.email }))
            }),
        )
        .route(
            "/verified-only",
            get(|VerifiedUser(user): VerifiedUser| async move {
                Envelope::ok(json!({ "id": user.id }))
            }),
        )
        .route(
            "/admin",
            get(|Superuser(user): Superuser| async move {
                Envelope::ok(json!({ "admin": user.email }))
            }),
        )
        .route(
            "/teapot",
            get(|| async { (StatusCode::IM_A_TEAPOT, "short and stout") }),
        )
        .route(
            "/upload",
            axum::routing::post(|body: axum::body::Bytes| async move { body.len().to_string() }),
        )
        .route(
            "/session",
            get(|session: AuthSession| async move {
                Envelope::ok(json!({ "sid": session.claims.sid }))
            }),
        )
}

/// The application: Portcullis with a `phone` field, and the routes above.
async fn embedded(backend: Backend) -> TestApp {
    TestApp::builder(backend)
        .fields(vec![
            UserField::string("phone", 20),
            UserField::string("team", 40),
        ])
        .routes(app_routes())
        .spawn()
        .await
}

/// `GET` an application route with a bearer token (or none).
async fn get_app(app: &TestApp, path: &str, token: Option<&str>) -> Reply {
    let mut request = app.client.get(app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    app.send(request).await
}

/// Changes a user's row behind the API's back.
async fn set_flag(app: &TestApp, user_id: i64, column: &str, value: bool) {
    let sql = format!("UPDATE users SET {column} = $1 WHERE id = $2");
    let query = sqlx::query(sqlx::AssertSqlSafe(sql));
    let query = match app.backend {
        Backend::Sqlite => query.bind(i64::from(value)),
        Backend::Postgres => query.bind(value),
    };
    query
        .bind(user_id)
        .execute(app.store().pool())
        .await
        .expect("update the user");
    // A write behind the server's back is seen once it has read the change
    // feed (within a second by itself; at once here).
    app.store().catch_up().await.expect("read the change feed");
}

both_backends!(
    extractors_protect_the_applications_routes,
    |backend: Backend| async move {
        let app = embedded(backend).await;
        for path in [
            "/profile",
            "/whoami",
            "/verified-only",
            "/admin",
            "/session",
        ] {
            let reply = get_app(&app, path, None).await;
            reply.expect_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
            assert_eq!(reply.header("www-authenticate"), Some("Bearer"), "{path}");
            get_app(&app, path, Some("not.a.token"))
                .await
                .expect_error(StatusCode::UNAUTHORIZED, "INVALID_TOKEN");
        }

        let user = app.register("ada@example.com", PASSWORD).await;
        let token = Some(user.access.as_str());
        let profile = get_app(&app, "/profile", token).await;
        assert_eq!(
            profile.expect_ok(StatusCode::OK)["email"],
            "ada@example.com"
        );
        let session = get_app(&app, "/session", token).await;
        assert_eq!(session.expect_ok(StatusCode::OK)["sid"], json!(user.sid()));
        get_app(&app, "/verified-only", token)
            .await
            .expect_error(StatusCode::FORBIDDEN, "EMAIL_NOT_VERIFIED");
        get_app(&app, "/admin", token)
            .await
            .expect_error(StatusCode::FORBIDDEN, "FORBIDDEN");

        // The extractors read the user as stored now, not as the token says.
        set_flag(&app, user.user_id, "is_verified", true).await;
        set_flag(&app, user.user_id, "is_superuser", true).await;
        get_app(&app, "/verified-only", token)
            .await
            .expect_ok(StatusCode::OK);
        let admin = get_app(&app, "/admin", token).await;
        assert_eq!(admin.expect_ok(StatusCode::OK)["admin"], "ada@example.com");

        // An inactive user (flag cleared behind the API's back, so the session
        // is still open): the active-user extractors refuse, the plain
        // current-user extractor does not.
        set_flag(&app, user.user_id, "is_active", false).await;
        for path in ["/profile", "/verified-only", "/admin"] {
            get_app(&app, path, token)
                .await
                .expect_error(StatusCode::FORBIDDEN, "INACTIVE_USER");
        }
        get_app(&app, "/whoami", token)
            .await
            .expect_ok(StatusCode::OK);

        // Logging out revokes the session for the application's routes too.
        set_flag(&app, user.user_id, "is_active", true).await;
        app.auth_post_empty("/logout", &user.access)
            .await
            .expect_ok(StatusCode::OK);
        for path in ["/profile", "/whoami", "/session"] {
            get_app(&app, path, token)
                .await
                .expect_error(StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");
        }
    }
);

/// Taken by the one test that asks for `/teapot`.
static TEAPOT_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The 418 answers of the route `/teapot` in the (process-wide) metrics.
async fn teapots_counted(app: &TestApp) -> f64 {
    app.get_root("/metrics")
        .await
        .text()
        .lines()
        .filter(|l| l.starts_with("portcullis_http_requests_total{"))
        .filter(|l| l.contains("route=\"/teapot\"") && l.contains("status=\"418\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

both_backends!(
    application_routes_share_the_middleware_but_keep_their_answers,
    |backend: Backend| async move {
        let app = embedded(backend).await;
        // Only this test asks for /teapot; its two runs take turns, so the
        // process-wide count moves by exactly this run's one request.
        let _turn = TEAPOT_TURN.lock().await;
        let before = teapots_counted(&app).await;
        // Request ids on the application's answers too.
        let teapot = app.send_unchecked(app.client.get(app.url("/teapot"))).await;
        assert!(teapot.header("x-request-id").is_some());
        // Its own error answers are left as they are ...
        assert_eq!(teapot.status, StatusCode::IM_A_TEAPOT);
        assert_eq!(teapot.text(), "short and stout");
        // ... and so are its body limits: 64 KiB is Portcullis's.
        let big = "x".repeat(100 * 1024);
        let upload = app
            .send(app.client.post(app.url("/upload")).body(big.clone()))
            .await;
        assert_eq!(upload.status, StatusCode::OK, "{}", upload.text());
        assert_eq!(upload.text(), big.len().to_string());
        app.send(
            app.client
                .post(app.auth_url("/login/json"))
                .header("content-type", "application/json")
                .body(big),
        )
        .await
        .expect_error(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
        // A wrong method on its route, or an unknown path, is in the envelope.
        app.send(app.client.delete(app.url("/profile")))
            .await
            .expect_error(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
        app.send(app.client.get(app.url("/profile/nothing")))
            .await
            .expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");
        // And it is counted in the metrics by its route.
        let after = teapots_counted(&app).await;
        assert_eq!(
            after - before,
            1.0,
            "/teapot answers counted: {before} → {after}"
        );
    }
);

both_backends!(
    application_fields_are_validated_stored_and_returned,
    |backend: Backend| async move {
        let app = embedded(backend).await;

        // Accepted at registration, trimmed, stored and returned.
        let reply = app
            .post_json(
                "/register",
                &json!({"email": "bo@example.com", "password": PASSWORD, "phone": " +41 79 000 00 00 "}),
            )
            .await;
        let data = reply.expect_ok(StatusCode::CREATED).clone();
        assert_eq!(data["user"]["phone"], "+41 79 000 00 00", "{data}");
        let token = data["access_token"].as_str().unwrap().to_string();
        assert_eq!(
            app.me(&token).await.expect_ok(StatusCode::OK)["phone"],
            "+41 79 000 00 00"
        );
        let stored: String = sqlx::query("SELECT extra FROM users WHERE email_key = $1")
            .bind("bo@example.com")
            .fetch_one(app.store().pool())
            .await
            .unwrap()
            .get("extra");
        let stored: Value = serde_json::from_str(&stored).unwrap();
        assert_eq!(stored, json!({"phone": "+41 79 000 00 00"}));

        // Validated, and named in the details, with the other fields' errors.
        let reply = app
            .post_json(
                "/register",
                &json!({"email": "not-an-address", "password": PASSWORD, "phone": "1".repeat(21)}),
            )
            .await;
        reply.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
        let fields: Vec<&str> = reply.body["error"]["details"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|d| d["field"].as_str())
            .collect();
        assert_eq!(fields, ["email", "phone"], "{}", reply.text());
        app.post_json(
            "/register",
            &json!({"email": "cy@example.com", "password": PASSWORD, "phone": 41790000000_i64}),
        )
        .await
        .expect_invalid_field("phone");
        assert_eq!(app.count_users_in_db("cy@example.com").await, 0);

        // Updated with PATCH /me; other fields untouched; a bad value changes nothing.
        let patched = app
            .auth_patch_json("/me", &token, &json!({"phone": "+41 78 111 11 11"}))
            .await;
        assert_eq!(
            patched.expect_ok(StatusCode::OK)["phone"],
            "+41 78 111 11 11"
        );
        let renamed = app
            .auth_patch_json("/me", &token, &json!({"name": "Bo"}))
            .await;
        let renamed = renamed.expect_ok(StatusCode::OK);
        assert_eq!(renamed["phone"], "+41 78 111 11 11");
        assert_eq!(renamed["name"], "Bo");
        app.auth_patch_json("/me", &token, &json!({"phone": true}))
            .await
            .expect_invalid_field("phone");
        let profile = get_app(&app, "/profile", Some(&token)).await;
        assert_eq!(
            profile.expect_ok(StatusCode::OK)["phone"],
            "+41 78 111 11 11"
        );
    }
);

both_backends!(
    concurrent_updates_of_different_fields_both_survive,
    |backend: Backend| async move {
        let app = embedded(backend).await;
        let user = app.register("dee@example.com", PASSWORD).await;
        for round in 0..10 {
            let phone = format!("+41 79 000 00 {round:02}");
            let team = format!("team {round}");
            let (phone_body, team_body) = (json!({ "phone": phone }), json!({ "team": team }));
            let (a, b) = tokio::join!(
                app.auth_patch_json("/me", &user.access, &phone_body),
                app.auth_patch_json("/me", &user.access, &team_body),
            );
            a.expect_ok(StatusCode::OK);
            b.expect_ok(StatusCode::OK);
            let me = app.me(&user.access).await;
            let me = me.expect_ok(StatusCode::OK);
            assert_eq!(
                (me["phone"].as_str(), me["team"].as_str()),
                (Some(phone.as_str()), Some(team.as_str())),
                "round {round}: one update was lost: {me}"
            );
        }
    }
);

/// Serves `router` on a local port of its own, as an application serves
/// `Portcullis::metrics_router` beside its main listener; the base URL.
async fn serve_beside(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(portcullis::http::server::serve(
        listener,
        router,
        std::future::pending::<()>(),
        std::time::Duration::from_secs(1),
    ));
    base
}

/// Checks a Prometheus scrape that counted a request to `/healthz`.
#[track_caller]
fn expect_scrape(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(
        reply
            .header("content-type")
            .is_some_and(|ct| ct.starts_with("text/plain")),
        "{:?}",
        reply.header("content-type")
    );
    assert!(
        reply
            .text()
            .lines()
            .any(|l| l.starts_with("portcullis_http_requests_total{")
                && l.contains("route=\"/healthz\"")),
        "no request counted:\n{}",
        reply.text()
    );
}

both_backends!(
    the_metrics_router_serves_metrics_alone,
    |backend: Backend| async move {
        for production in [false, true] {
            let mut vars = vec![];
            if production {
                vars.push(("PORTCULLIS_ENV", "production"));
            }
            let app = TestApp::builder(backend).vars(&vars).spawn().await;
            let metrics = serve_beside(app.portcullis.metrics_router()).await;
            app.get_root("/healthz").await.expect_ok(StatusCode::OK);

            let scrape = app.send(app.client.get(format!("{metrics}/metrics"))).await;
            expect_scrape(&scrape);
            for path in ["/healthz", "/api/auth/me", "/openapi.json"] {
                app.send(app.client.get(format!("{metrics}{path}")))
                    .await
                    .expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");
            }
            app.send(app.client.post(format!("{metrics}/metrics")))
                .await
                .expect_error(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");

            // The main router: /metrics in development only, and described
            // in the OpenAPI document only where it is served.
            let main = app.get_root("/metrics").await;
            let doc = app.get_root("/openapi.json").await;
            let described = doc.body["paths"].get("/metrics").is_some();
            if production {
                main.expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");
                assert!(!described, "production describes /metrics");
            } else {
                expect_scrape(&main);
                assert!(described, "development does not describe /metrics");
            }
        }
    }
);

both_backends!(
    /// The library built from variables without `MFA_ENCRYPTION_KEY` makes
    /// up no key that a restart would lose (locking every TOTP user out): it
    /// refuses to turn TOTP on, answering 503 `SERVICE_UNAVAILABLE` with a
    /// message that says so, before any password check.
    without_an_mfa_key_the_library_refuses_to_turn_totp_on,
    |backend: Backend| async move {
        let app = TestApp::builder(backend)
            .vars(&[("MFA_ENCRYPTION_KEY", "")])
            .spawn()
            .await;
        let user = app.register(&unique_email("nokey"), PASSWORD).await;
        for password in [PASSWORD, "not the password"] {
            let reply = app
                .auth_post_json(
                    "/mfa/totp/setup",
                    &user.access,
                    &json!({ "password": password }),
                )
                .await;
            reply.expect_error(StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE");
            let message = reply.body["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains("not configured"), "{}", reply.text());
        }
        let status = app.auth_get("/mfa", &user.access).await;
        assert_eq!(status.status, StatusCode::OK, "{}", status.text());
    }
);
