//! Test harness: a real Portcullis server on a random local port, backed by a
//! fresh SQLite file or a fresh PostgreSQL database, and helpers that speak
//! HTTP to it and check the contract of SPEC §3 on every answer.
//!
//! Each integration test is written once with [`both_backends!`] and runs
//! against both databases; `db.rs` makes a test's database (PostgreSQL at
//! `PORTCULLIS_TEST_PG`, see there). The mail tests (`tests/mail_support`)
//! build on this harness too.

// Every test binary uses a different part of the harness.
#![allow(dead_code, unused_macros)]

mod db;

pub use db::{Backend, TestDb};

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use portcullis::store::Store;
use portcullis::token::TokenService;
use portcullis::{AppState, Config, Portcullis, UserField};
use reqwest::header::{self, HeaderMap};
use reqwest::{Client, Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

/// The HMAC secret every test server signs with.
pub const SECRET: &str = "portcullis-integration-test-secret-0123456789";
/// A password that satisfies the policy (not common, long enough).
pub const PASSWORD: &str = "Tangerine-Otter-42";
/// Another good password.
pub const OTHER_PASSWORD: &str = "Marmalade-Heron-77";
/// Where the auth endpoints live by default.
pub const PREFIX: &str = "/api/auth";

/// Writes one test body and instantiates it for both backends as
/// `<name>::sqlite` and `<name>::postgres`.
///
/// ```ignore
/// both_backends!(register_then_me, |app| async move { ... });
/// both_backends!(no_grace, vars [("REFRESH_REUSE_GRACE_SECONDS", "0")], |app| async move { ... });
/// both_backends!(two_apps, backend |backend| async move {
///     let a = TestApp::spawn(backend, &[]).await; ...
/// });
/// ```
/// Attributes (e.g. `#[ignore = "BUG: …"]`) may precede the name; those
/// for one backend only are written `@sqlite #[…]` or `@postgres #[…]`.
macro_rules! both_backends {
    (
        $(#[$meta:meta])* $(@sqlite #[$sq:meta])* $(@postgres #[$pg:meta])*
        $name:ident, |$app:ident| $body:expr
    ) => {
        both_backends!(
            $(#[$meta])* $(@sqlite #[$sq])* $(@postgres #[$pg])*
            $name, vars [], |$app| $body
        );
    };
    (
        $(#[$meta:meta])* $(@sqlite #[$sq:meta])* $(@postgres #[$pg:meta])*
        $name:ident, vars [$($var:expr),* $(,)?], |$app:ident| $body:expr
    ) => {
        both_backends!(
            $(#[$meta])* $(@sqlite #[$sq])* $(@postgres #[$pg])*
            $name, backend |backend| async move {
                let $app = $crate::common::TestApp::spawn(backend, &[$($var),*]).await;
                $body.await
            }
        );
    };
    (
        $(#[$meta:meta])* $(@sqlite #[$sq:meta])* $(@postgres #[$pg:meta])*
        $name:ident, backend |$backend:ident| $body:expr
    ) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            $(#[$meta])*
            $(#[$sq])*
            async fn sqlite() {
                let $backend = $crate::common::Backend::Sqlite;
                $body.await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            $(#[$meta])*
            $(#[$pg])*
            async fn postgres() {
                let $backend = $crate::common::Backend::Postgres;
                $body.await
            }
        }
    };
}

// ---- the server ------------------------------------------------------------------

/// A running Portcullis server and a client for it.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`, also its `APP_URL`.
    pub base_url: String,
    /// HTTP client (no proxy, 30 s timeout).
    pub client: Client,
    /// The embedded Portcullis, for `state().store` and `state().tokens`.
    pub portcullis: Portcullis,
    /// Which database backs it.
    pub backend: Backend,
    /// The database (shared with other servers spawned by [`TestApp::spawn_sharing`]).
    pub db: Arc<TestDb>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TestApp {
    /// A server on a fresh database of `backend`, configured with the test
    /// defaults overridden by `vars`.
    pub async fn spawn(backend: Backend, vars: &[(&str, &str)]) -> TestApp {
        let db = TestDb::create(backend).await;
        Self::spawn_on(db, vars).await
    }

    /// Another server on the same database as `self` (e.g. with another
    /// password hasher), configured by `vars`.
    pub async fn spawn_sharing(&self, vars: &[(&str, &str)]) -> TestApp {
        Self::spawn_on(self.db.clone(), vars).await
    }

    /// A server on `db`. Its `APP_URL` is its own base URL, so that mailed
    /// links lead back to it.
    pub async fn spawn_on(db: Arc<TestDb>, vars: &[(&str, &str)]) -> TestApp {
        Self::spawn_embedded(db, vars, Vec::new(), axum::Router::new()).await
    }

    /// An application that embeds Portcullis, as `examples/profile.rs` does:
    /// its own user `fields`, and its own `routes` (using Portcullis's
    /// extractors) beside Portcullis's router.
    pub async fn spawn_embedded(
        db: Arc<TestDb>,
        vars: &[(&str, &str)],
        fields: Vec<UserField>,
        routes: axum::Router<AppState>,
    ) -> TestApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a local port");
        let addr = listener.local_addr().expect("local address");
        let base_url = format!("http://{addr}");
        let dir = db.dir.path();
        let mut config: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in [
            ("SECRET_KEY", SECRET.to_string()),
            ("RATE_LIMIT_ENABLED", "false".to_string()),
            ("DATABASE_URL", db.url.clone()),
            ("APP_URL", base_url.clone()),
            ("LOG_FORMAT", "json".to_string()),
            ("DATA_DIR", dir.join("data").display().to_string()),
            ("MAIL_OUTBOX_DIR", dir.join("outbox").display().to_string()),
        ] {
            config.insert(k.to_string(), v);
        }
        for (k, v) in vars {
            config.insert((*k).to_string(), (*v).to_string());
        }
        let cfg = Config::from_vars(config).expect("test configuration");
        let portcullis = fields
            .into_iter()
            .fold(Portcullis::builder(cfg), |builder, field| {
                builder.user_field(field)
            })
            .build()
            .await
            .expect("build Portcullis");
        let router = portcullis.app(routes);
        let server = tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .expect("server");
        });
        let client = Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("HTTP client");
        TestApp {
            base_url,
            client,
            portcullis,
            backend: db.backend,
            db,
            server,
        }
    }

    /// The store, to look at or change the database behind the API's back.
    pub fn store(&self) -> Store {
        self.portcullis.state().store.clone()
    }

    /// The server's own token service.
    pub fn tokens(&self) -> TokenService {
        self.portcullis.state().tokens.clone()
    }

    /// An absolute URL for a path at the root (`/healthz`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// An absolute URL for a path under the auth prefix (`/login`).
    pub fn auth_url(&self, path: &str) -> String {
        format!("{}{PREFIX}{path}", self.base_url)
    }

    /// A request builder for `path` under the auth prefix.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.auth_url(path))
    }

    /// Sends a request and reads the whole answer, checking what every answer
    /// must carry: an `X-Request-Id`, and a JSON body on every error.
    pub async fn send(&self, rb: RequestBuilder) -> Reply {
        let reply = self.send_unchecked(rb).await;
        let status = reply.status;
        let rid = reply.header("x-request-id");
        assert!(
            rid.is_some_and(|v| !v.is_empty()),
            "no X-Request-Id on {status}: {}",
            reply.text()
        );
        if status.is_client_error() || status.is_server_error() {
            assert!(
                reply.is_json(),
                "error {status} without a JSON content type: {:?} {}",
                reply.header("content-type"),
                reply.text()
            );
            assert!(
                reply.body.is_object(),
                "error body is not JSON: {}",
                reply.text()
            );
        }
        reply
    }

    /// Sends a request and reads the whole answer, checking nothing.
    pub async fn send_unchecked(&self, rb: RequestBuilder) -> Reply {
        let response = rb.send().await.expect("request failed");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("read body").to_vec();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            bytes,
            body,
        }
    }

    // ---- plain requests -----------------------------------------------------------

    /// `GET` a root path.
    pub async fn get_root(&self, path: &str) -> Reply {
        self.send(self.client.get(self.url(path))).await
    }

    /// `GET` a path under the prefix, without credentials.
    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.request(Method::GET, path)).await
    }

    /// `POST` a JSON body to a path under the prefix.
    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.send(self.request(Method::POST, path).json(body)).await
    }

    /// `POST` a form to a path under the prefix.
    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Reply {
        self.send(self.request(Method::POST, path).form(form)).await
    }

    /// `POST` raw bytes with a content type to a path under the prefix.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<Vec<u8>>,
    ) -> Reply {
        self.send(
            self.request(Method::POST, path)
                .header(header::CONTENT_TYPE, content_type)
                .body(body.into()),
        )
        .await
    }

    // ---- authenticated requests ------------------------------------------------------

    /// `GET` with `Authorization: Bearer <token>`.
    pub async fn auth_get(&self, path: &str, token: &str) -> Reply {
        self.send(self.request(Method::GET, path).bearer_auth(token))
            .await
    }

    /// `POST` a JSON body with a bearer token.
    pub async fn auth_post_json(&self, path: &str, token: &str, body: &Value) -> Reply {
        self.send(
            self.request(Method::POST, path)
                .bearer_auth(token)
                .json(body),
        )
        .await
    }

    /// `POST` without a body, with a bearer token.
    pub async fn auth_post_empty(&self, path: &str, token: &str) -> Reply {
        self.send(self.request(Method::POST, path).bearer_auth(token))
            .await
    }

    /// `PATCH` a JSON body with a bearer token.
    pub async fn auth_patch_json(&self, path: &str, token: &str, body: &Value) -> Reply {
        self.send(
            self.request(Method::PATCH, path)
                .bearer_auth(token)
                .json(body),
        )
        .await
    }

    /// `DELETE` with a bearer token.
    pub async fn auth_delete(&self, path: &str, token: &str) -> Reply {
        self.send(self.request(Method::DELETE, path).bearer_auth(token))
            .await
    }

    /// `GET /me` with a token.
    pub async fn me(&self, token: &str) -> Reply {
        self.auth_get("/me", token).await
    }

    // ---- flows ------------------------------------------------------------------------

    /// `POST /register` with e-mail and password; the raw answer.
    pub async fn register_raw(&self, email: &str, password: &str) -> Reply {
        self.post_json("/register", &json!({"email": email, "password": password}))
            .await
    }

    /// Registers a user and checks the 201.
    pub async fn register(&self, email: &str, password: &str) -> Session {
        let reply = self.register_raw(email, password).await;
        let data = reply.expect_ok(StatusCode::CREATED);
        Session {
            user_id: data["user"]["id"].as_i64().expect("user.id is an integer"),
            email: data["user"]["email"]
                .as_str()
                .expect("user.email")
                .to_string(),
            access: data["access_token"]
                .as_str()
                .expect("access_token")
                .to_string(),
            refresh: data["refresh_token"]
                .as_str()
                .expect("refresh_token")
                .to_string(),
        }
    }

    /// `POST /login/json`; the raw answer.
    pub async fn login_json(&self, email: &str, password: &str) -> Reply {
        self.post_json(
            "/login/json",
            &json!({"email": email, "password": password}),
        )
        .await
    }

    /// `POST /login` as an OAuth2 password-flow form; the raw answer.
    pub async fn login_form(&self, email: &str, password: &str) -> Reply {
        self.post_form("/login", &[("username", email), ("password", password)])
            .await
    }

    /// Logs in (JSON) and checks the 200: a new session of a known user.
    pub async fn login(&self, user: &Session, password: &str) -> Session {
        let reply = self.login_json(&user.email, password).await;
        let data = reply.expect_ok(StatusCode::OK);
        Session {
            user_id: user.user_id,
            email: user.email.clone(),
            access: data["access_token"]
                .as_str()
                .expect("access_token")
                .to_string(),
            refresh: data["refresh_token"]
                .as_str()
                .expect("refresh_token")
                .to_string(),
        }
    }

    /// `POST /refresh`; the raw answer.
    pub async fn refresh(&self, refresh_token: &str) -> Reply {
        self.post_json("/refresh", &json!({"refresh_token": refresh_token}))
            .await
    }

    /// Refreshes and checks the 200; the new pair.
    pub async fn refresh_ok(&self, refresh_token: &str) -> (String, String) {
        let reply = self.refresh(refresh_token).await;
        let data = reply.expect_ok(StatusCode::OK);
        expect_token_pair(data);
        (
            data["access_token"].as_str().unwrap().to_string(),
            data["refresh_token"].as_str().unwrap().to_string(),
        )
    }

    /// `GET /sessions` with a token; the list.
    pub async fn sessions(&self, token: &str) -> Vec<Value> {
        let reply = self.auth_get("/sessions", token).await;
        reply
            .expect_ok(StatusCode::OK)
            .as_array()
            .expect("sessions is an array")
            .clone()
    }

    /// Sessions of `user_id` (open or revoked), counted straight in the database.
    pub async fn count_sessions_in_db(&self, user_id: i64) -> i64 {
        sqlx::query_scalar::<sqlx::Any, i64>("SELECT COUNT(*) FROM sessions WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(self.store().pool())
            .await
            .expect("count sessions")
    }

    /// Users in the database whose e-mail matches, case-insensitively.
    pub async fn count_users_in_db(&self, email: &str) -> i64 {
        sqlx::query_scalar::<sqlx::Any, i64>("SELECT COUNT(*) FROM users WHERE email_key = $1")
            .bind(email.trim().to_lowercase())
            .fetch_one(self.store().pool())
            .await
            .expect("count users")
    }
}

/// A user's session as the client holds it.
#[derive(Debug, Clone)]
pub struct Session {
    /// The user's id.
    pub user_id: i64,
    /// The e-mail as the server returned it.
    pub email: String,
    /// Access token.
    pub access: String,
    /// Refresh token.
    pub refresh: String,
}

impl Session {
    /// The `sid` claim of the access token.
    pub fn sid(&self) -> String {
        sid_of(&self.access)
    }
}

/// A fresh, unique e-mail address.
pub fn unique_email(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{tag}.{}.{}@example.com",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

// ---- answers ---------------------------------------------------------------------

/// A complete HTTP answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// The raw body.
    pub bytes: Vec<u8>,
    /// The body as JSON (`Null` when it is not JSON).
    pub body: Value,
}

impl Reply {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as text (for messages).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    /// Whether the content type is `application/json`.
    pub fn is_json(&self) -> bool {
        self.header("content-type").is_some_and(|ct| {
            ct.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        })
    }

    /// `error.code` of an error envelope.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// Checks a success envelope (`{"success": true, "data": …}`, exactly
    /// these keys, JSON content type) with `status`; returns `data`.
    #[track_caller]
    pub fn expect_ok(&self, status: StatusCode) -> &Value {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {}",
            self.text()
        );
        assert!(
            self.is_json(),
            "content type {:?}",
            self.header("content-type")
        );
        assert_eq!(
            keys(&self.body),
            ["data", "success"],
            "envelope: {}",
            self.text()
        );
        assert_eq!(self.body["success"], json!(true), "{}", self.text());
        &self.body["data"]
    }

    /// Checks an error envelope with `status` and `code`: exactly
    /// `{"success": false, "error": {"message", "code"}}` (plus `details` for
    /// validation errors), and `WWW-Authenticate: Bearer…` on a 401.
    #[track_caller]
    pub fn expect_error(&self, status: StatusCode, code: &str) {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {}",
            self.text()
        );
        assert!(
            self.is_json(),
            "content type {:?}",
            self.header("content-type")
        );
        assert_eq!(
            keys(&self.body),
            ["error", "success"],
            "envelope: {}",
            self.text()
        );
        assert_eq!(self.body["success"], json!(false), "{}", self.text());
        assert_eq!(self.code(), code, "error code; body: {}", self.text());
        let message = self.body["error"]["message"].as_str().unwrap_or("");
        assert!(!message.trim().is_empty(), "empty message: {}", self.text());
        let expected_keys: &[&str] = if code == "VALIDATION_ERROR" {
            &["code", "details", "message"]
        } else {
            &["code", "message"]
        };
        assert_eq!(
            keys(&self.body["error"]),
            expected_keys,
            "error keys: {}",
            self.text()
        );
        if status == StatusCode::UNAUTHORIZED {
            let challenge = self.header("www-authenticate").unwrap_or("");
            assert!(
                challenge.starts_with("Bearer"),
                "401 without WWW-Authenticate: Bearer (got {challenge:?})"
            );
            if matches!(code, "INVALID_TOKEN" | "TOKEN_EXPIRED" | "TOKEN_REVOKED") {
                assert!(
                    challenge.contains("error=\"invalid_token\""),
                    "{code} challenge without error=\"invalid_token\": {challenge:?}"
                );
            }
        }
    }

    /// Checks an error envelope and its message (SPEC §3 table).
    #[track_caller]
    pub fn expect_error_message(&self, status: StatusCode, code: &str, message: &str) {
        self.expect_error(status, code);
        assert_eq!(
            self.body["error"]["message"],
            json!(message),
            "{}",
            self.text()
        );
    }

    /// Checks a 422 `VALIDATION_ERROR` whose details name `field`.
    #[track_caller]
    pub fn expect_invalid_field(&self, field: &str) {
        self.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
        let details = self.body["error"]["details"]
            .as_array()
            .unwrap_or_else(|| panic!("details is not an array: {}", self.text()));
        assert!(!details.is_empty(), "empty details: {}", self.text());
        for d in details {
            assert_eq!(keys(d), ["field", "message"], "detail shape: {d}");
            assert!(d["message"].as_str().is_some_and(|m| !m.is_empty()), "{d}");
        }
        assert!(
            details.iter().any(|d| d["field"] == json!(field)),
            "details do not name {field:?}: {}",
            self.text()
        );
    }

    /// Checks an RFC 6749 §5.2 error body (`{"error": code, "error_description"?}`,
    /// no envelope) with status 400.
    #[track_caller]
    pub fn expect_oauth_error(&self, code: &str) {
        assert_eq!(self.status, StatusCode::BAD_REQUEST, "{}", self.text());
        assert!(
            self.is_json(),
            "content type {:?}",
            self.header("content-type")
        );
        assert_eq!(self.body["error"], json!(code), "{}", self.text());
        for k in keys(&self.body) {
            assert!(
                ["error", "error_description", "error_uri"].contains(&k.as_str()),
                "unexpected key {k} in an RFC 6749 error: {}",
                self.text()
            );
        }
    }
}

/// The sorted keys of a JSON object (empty for anything else).
pub fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    k.sort();
    k
}

/// Checks `{access_token, refresh_token, token_type: "bearer", expires_in: 1800}`
/// (exactly these keys).
#[track_caller]
pub fn expect_token_pair(data: &Value) {
    assert_eq!(
        keys(data),
        ["access_token", "expires_in", "refresh_token", "token_type"],
        "{data}"
    );
    assert_eq!(data["token_type"], json!("bearer"));
    assert_eq!(data["expires_in"], json!(1800));
    let access = data["access_token"].as_str().expect("access_token");
    let refresh = data["refresh_token"].as_str().expect("refresh_token");
    assert_ne!(access, refresh);
    assert_eq!(access.split('.').count(), 3, "access token is not a JWS");
    assert_eq!(refresh.split('.').count(), 3, "refresh token is not a JWS");
}

// ---- ports ---------------------------------------------------------------------

/// A TCP port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("cannot find a free port")
}

/// Waits until something accepts connections on `127.0.0.1:port`.
pub async fn wait_for_port(port: u16, timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

// ---- tokens ----------------------------------------------------------------------

/// Base64url without padding.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Header and payload of a compact JWS, without checking anything.
pub fn jwt_parts(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let mut part = || {
        let raw = parts.next().expect("JWS part");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(raw)
            .expect("base64url part");
        serde_json::from_slice::<Value>(&bytes).expect("JSON part")
    };
    let header = part();
    let payload = part();
    (header, payload)
}

/// The `sid` claim of a token.
pub fn sid_of(token: &str) -> String {
    jwt_parts(token).1["sid"]
        .as_str()
        .expect("sid claim")
        .to_string()
}

/// Verifies a token with `jsonwebtoken` directly, knowing only the secret
/// and HS256, outside Portcullis's token service; its payload. (PyJWT, an
/// implementation that shares no code with Portcullis, checks them in
/// `tests/interop.rs`.)
pub fn verify_independently(token: &str) -> jsonwebtoken::errors::Result<Value> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp", "sub"]);
    jsonwebtoken::decode::<Value>(
        token,
        &DecodingKey::from_secret(SECRET.as_bytes()),
        &validation,
    )
    .map(|d| d.claims)
}

/// A token service configured by `vars` (the test secret unless overridden).
pub fn token_service(vars: &[(&str, &str)]) -> TokenService {
    let mut config: BTreeMap<String, String> = BTreeMap::new();
    config.insert("SECRET_KEY".into(), SECRET.into());
    for (k, v) in vars {
        config.insert((*k).to_string(), (*v).to_string());
    }
    TokenService::from_config(&Config::from_vars(config).expect("token config"))
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Parses an RFC 3339 timestamp into Unix seconds, panicking if it is not one.
#[track_caller]
pub fn rfc3339(v: &Value) -> i64 {
    let s = v.as_str().unwrap_or_else(|| panic!("not a string: {v}"));
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("not RFC 3339: {s}: {e}"))
        .unix_timestamp()
}
