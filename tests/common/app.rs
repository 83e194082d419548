//! The server under test: a real Portcullis on a random local port, on a
//! [`TestDb`], and how requests reach it (the requests themselves are in
//! `requests.rs`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use portcullis::store::Store;
use portcullis::token::TokenService;
use portcullis::{AppState, Config, Portcullis, UserField};
use reqwest::{Client, Method, RequestBuilder};
use serde_json::Value;

use super::{Backend, MAIL_FROM, MFA_KEY, PREFIX, Reply, SECRET, SmtpServer, TestDb};

// ---- the server ------------------------------------------------------------------

/// Where a test server's mail goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MailMode {
    /// `.eml` files in the outbox directory ([`TestApp::outbox`]).
    #[default]
    Outbox,
    /// SMTP (no TLS) to a real SMTP server of the app's own, started with it
    /// and stopped with it ([`TestApp::smtp`]).
    Smtp,
    /// SMTP (no TLS) to `127.0.0.1:port`, where the test starts a server
    /// when it likes ([`SmtpServer::start_on`]), or never.
    SmtpAt(u16),
}

/// A running Portcullis server and a client for it.
pub struct TestApp {
    /// `http://127.0.0.1:<port>` (`http://localhost:<port>` when built with
    /// [`AppBuilder::localhost`]), also its `APP_URL`.
    pub base_url: String,
    /// HTTP client (no proxy, 30 s timeout).
    pub client: Client,
    /// The embedded Portcullis, for `state().store` and `state().tokens`.
    pub portcullis: Portcullis,
    /// Which database backs it.
    pub backend: Backend,
    /// Where its mail goes.
    pub mail: MailMode,
    smtp: Option<SmtpServer>,
    /// The database (shared with other servers spawned by [`TestApp::spawn_sharing`]).
    pub db: Arc<TestDb>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The settings of a [`TestApp`] to spawn: [`TestApp::builder`] (a fresh
/// database) or [`TestApp::builder_on`] (an existing one), then any of
/// [`vars`](Self::vars), [`mail`](Self::mail), [`fields`](Self::fields) and
/// [`routes`](Self::routes), then [`spawn`](Self::spawn).
pub struct AppBuilder {
    db: Result<Arc<TestDb>, Backend>,
    vars: Vec<(String, String)>,
    mail: MailMode,
    fields: Vec<UserField>,
    routes: axum::Router<AppState>,
    connect_info: bool,
    localhost: bool,
}

impl AppBuilder {
    /// Settings (environment variables) over the test defaults; later ones win.
    pub fn vars(mut self, vars: &[(&str, &str)]) -> Self {
        self.vars.extend(
            vars.iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string())),
        );
        self
    }

    /// Where the mail goes (the outbox unless said otherwise).
    pub fn mail(mut self, mail: MailMode) -> Self {
        self.mail = mail;
        self
    }

    /// Application-defined user fields, as an embedding application has.
    pub fn fields(mut self, fields: Vec<UserField>) -> Self {
        self.fields = fields;
        self
    }

    /// The embedding application's own routes (using Portcullis's
    /// extractors), served beside Portcullis's router.
    pub fn routes(mut self, routes: axum::Router<AppState>) -> Self {
        self.routes = routes;
        self
    }

    /// Serves the router without connection info (`into_make_service()`),
    /// as an application that forgets it does: requests have no client IP.
    pub fn without_connect_info(mut self) -> Self {
        self.connect_info = false;
        self
    }

    /// Names the server `localhost` instead of `127.0.0.1` (it still listens
    /// on `127.0.0.1`): its `base_url`, and so its `APP_URL`, are
    /// `http://localhost:<port>`, an origin browsers hold secure and accept
    /// as a WebAuthn relying party (an IP address is neither).
    pub fn localhost(mut self) -> Self {
        self.localhost = true;
        self
    }

    /// Builds Portcullis without serving it, for calling the flows
    /// directly: its `APP_URL` is [`NO_SERVER_URL`], its mail goes to the
    /// outbox. The database, for looking behind its back, comes with it.
    pub async fn build(self) -> (Arc<TestDb>, Portcullis) {
        let db = match self.db {
            Ok(db) => db,
            Err(backend) => TestDb::create(backend).await,
        };
        let portcullis = build(&db, NO_SERVER_URL, None, self.vars, self.fields).await;
        (db, portcullis)
    }

    /// Builds Portcullis as an application does (`Config::from_vars`, then
    /// `Portcullis::builder`) and serves it on `127.0.0.1:0`. Its `APP_URL`
    /// is its own base URL, so that mailed links lead back to it.
    pub async fn spawn(self) -> TestApp {
        let db = match self.db {
            Ok(db) => db,
            Err(backend) => TestDb::create(backend).await,
        };
        let smtp = match self.mail {
            MailMode::Smtp => Some(SmtpServer::start().await),
            MailMode::Outbox | MailMode::SmtpAt(_) => None,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a local port");
        let addr = listener.local_addr().expect("local address");
        let base_url = if self.localhost {
            format!("http://localhost:{}", addr.port())
        } else {
            format!("http://{addr}")
        };
        let smtp_port = match (self.mail, &smtp) {
            (MailMode::SmtpAt(port), _) => Some(port),
            (_, Some(server)) => Some(server.port),
            _ => None,
        };
        let portcullis = build(&db, &base_url, smtp_port, self.vars, self.fields).await;
        let router = portcullis.app(self.routes);
        let server = if self.connect_info {
            tokio::spawn(async move {
                axum::serve(
                    listener,
                    router.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .await
                .expect("server");
            })
        } else {
            tokio::spawn(async move {
                axum::serve(listener, router.into_make_service())
                    .await
                    .expect("server");
            })
        };
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
            mail: self.mail,
            smtp,
            db,
            server,
        }
    }
}

/// The `APP_URL` of a Portcullis built without a server.
pub const NO_SERVER_URL: &str = "http://app.test";

/// Portcullis on `db` as an application builds it (`Config::from_vars`,
/// then `Portcullis::builder`): the test defaults, then `vars`.
async fn build(
    db: &TestDb,
    app_url: &str,
    smtp_port: Option<u16>,
    vars: Vec<(String, String)>,
    fields: Vec<UserField>,
) -> Portcullis {
    let dir = db.dir.path();
    let mut config: BTreeMap<String, String> = BTreeMap::new();
    let mut set = |k: &str, v: String| {
        config.insert(k.to_string(), v);
    };
    set("SECRET_KEY", SECRET.to_string());
    // One second-factor key for every server, so that servers sharing a
    // database read each other's TOTP secrets, as a deployment's do.
    set("MFA_ENCRYPTION_KEY", MFA_KEY.to_string());
    set("RATE_LIMIT_ENABLED", "false".to_string());
    // The pages (and with them the refresh cookie, which follows them) only
    // where a test asks (`PAGES_ENABLED=true`, see tests/pages.rs).
    set("PAGES_ENABLED", "false".to_string());
    set("DATABASE_URL", db.url.clone());
    set("APP_URL", app_url.to_string());
    set("LOG_FORMAT", "json".to_string());
    set("DATA_DIR", dir.join("data").display().to_string());
    set("MAIL_FROM", MAIL_FROM.to_string());
    set("MAIL_OUTBOX_DIR", outbox_of(db).display().to_string());
    if let Some(port) = smtp_port {
        set("SMTP_HOST", "127.0.0.1".to_string());
        set("SMTP_PORT", port.to_string());
        set("SMTP_TLS", "none".to_string());
    }
    for (k, v) in vars {
        set(&k, v);
    }
    let cfg = Config::from_vars(config).expect("test configuration");
    fields
        .into_iter()
        .fold(Portcullis::builder(cfg).pages(true), |builder, field| {
            builder.user_field(field)
        })
        .build()
        .await
        .expect("build Portcullis")
}

/// The outbox directory of the servers on `db`.
fn outbox_of(db: &TestDb) -> PathBuf {
    db.dir.path().join("outbox")
}

impl TestApp {
    /// A server on a fresh database of `backend`, configured with the test
    /// defaults overridden by `vars`, writing its mail to the outbox.
    pub async fn spawn(backend: Backend, vars: &[(&str, &str)]) -> TestApp {
        Self::builder(backend).vars(vars).spawn().await
    }

    /// Another server on the same database as `self` (e.g. with another
    /// password hasher), configured by `vars`, writing its mail to the outbox.
    pub async fn spawn_sharing(&self, vars: &[(&str, &str)]) -> TestApp {
        Self::builder_on(self.db.clone()).vars(vars).spawn().await
    }

    /// The settings of a server on a fresh database of `backend`.
    pub fn builder(backend: Backend) -> AppBuilder {
        Self::builder_for(Err(backend))
    }

    /// The settings of a server on `db`.
    pub fn builder_on(db: Arc<TestDb>) -> AppBuilder {
        Self::builder_for(Ok(db))
    }

    fn builder_for(db: Result<Arc<TestDb>, Backend>) -> AppBuilder {
        AppBuilder {
            db,
            vars: Vec::new(),
            mail: MailMode::default(),
            fields: Vec::new(),
            routes: axum::Router::new(),
            connect_info: true,
            localhost: false,
        }
    }

    /// The SMTP server this app delivers to ([`MailMode::Smtp`]).
    #[track_caller]
    pub fn smtp(&self) -> &SmtpServer {
        self.smtp
            .as_ref()
            .expect("this TestApp has no SMTP server of its own (spawn it with MailMode::Smtp)")
    }

    /// The directory where the outbox mode writes `.eml` files.
    pub fn outbox(&self) -> PathBuf {
        outbox_of(&self.db)
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
        reply.expect_request_id();
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
}
