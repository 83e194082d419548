//! The server under test: a real Portcullis on a random local port, on a
//! [`TestDb`], and the requests and flows the tests send it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use portcullis::store::Store;
use portcullis::token::TokenService;
use portcullis::{AppState, Config, Portcullis, UserField};
use reqwest::header;
use reqwest::{Client, Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

use super::{Backend, PREFIX, Reply, SECRET, TestDb, expect_token_pair, sid_of};

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
