//! The HTTP face of Portcullis: state, router, middleware.
//!
//! [`Portcullis`] is the entry point for embedding: build it from a
//! [`Config`], then merge [`Portcullis::router`] into an axum application and
//! protect handlers with the extractors of [`extract`].

pub mod account;
pub mod auth;
pub mod body;
pub mod extract;
pub mod middleware;
pub mod openapi;
pub mod ops;
pub mod pages;
pub mod response;
pub mod server;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::routing::{delete, get, post};

use crate::config::Config;
use crate::error::Error;
use crate::fields::{UserField, UserFields};
use crate::mail::Mailer;
use crate::password::PasswordHasherPool;
use crate::store::Store;
use crate::token::TokenService;

/// Largest accepted request body (SPEC §3).
pub const BODY_LIMIT: usize = 64 * 1024;

/// Shared state of every Portcullis handler and extractor; cheap to clone.
///
/// Applications with their own state implement `FromRef<TheirState>` for
/// `AppState` so that the extractors work in their handlers too.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// What [`AppState`] holds.
pub struct Inner {
    /// The configuration in force.
    pub config: Config,
    /// The database.
    pub store: Store,
    /// Token signing and checking.
    pub tokens: TokenService,
    /// Password hashing off the async runtime.
    pub passwords: PasswordHasherPool,
    /// The application's own user fields.
    pub fields: UserFields,
    /// The mail queue's front.
    pub mailer: Mailer,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

/// Portcullis, ready to serve or to embed.
///
/// ```no_run
/// use axum::{Router, routing::get, Json};
/// use portcullis::{AppState, Portcullis, ActiveUser};
///
/// async fn profile(ActiveUser(user): ActiveUser) -> Json<String> {
///     Json(user.email)
/// }
///
/// # async fn run() -> anyhow::Result<()> {
/// let auth = Portcullis::from_env().await?;
/// let app: Router = auth.app(Router::<AppState>::new().route("/profile", get(profile)));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Portcullis {
    state: AppState,
}

/// Builds a [`Portcullis`] from a [`Config`], with optional user fields.
#[derive(Debug)]
pub struct PortcullisBuilder {
    config: Config,
    fields: UserFields,
    store: Option<Store>,
    migrate: bool,
}

impl PortcullisBuilder {
    /// Declares an application-defined user field (SPEC §8).
    pub fn user_field(mut self, field: UserField) -> Self {
        self.fields.push(field);
        self
    }

    /// Uses an already connected store instead of connecting to `DATABASE_URL`.
    pub fn store(mut self, store: Store) -> Self {
        self.store = Some(store);
        self
    }

    /// Whether to apply migrations when building (default: yes).
    pub fn migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    /// Connects (and migrates) the database and prepares keys and hashing.
    pub async fn build(self) -> anyhow::Result<Portcullis> {
        use anyhow::Context as _;
        let store = match self.store {
            Some(store) => store,
            None => Store::connect(&self.config.database_url)
                .await
                .context("DATABASE_URL: cannot open the database")?,
        };
        if self.migrate {
            store
                .migrate()
                .await
                .context("DATABASE_URL: cannot apply the migrations")?;
        }
        // Install the metrics recorder now, so that nothing before the first
        // scrape goes uncounted.
        ops::prometheus();
        let passwords = PasswordHasherPool::new(&self.config.password)?;
        let tokens = TokenService::from_config(&self.config);
        let mailer = Mailer::start(store.clone(), &self.config)?;
        tokio::spawn(purge_periodically(store.clone()));
        Ok(Portcullis {
            state: AppState(Arc::new(Inner {
                config: self.config,
                store,
                tokens,
                passwords,
                fields: self.fields,
                mailer,
            })),
        })
    }
}

impl Portcullis {
    /// A builder for `config`.
    pub fn builder(config: Config) -> PortcullisBuilder {
        PortcullisBuilder {
            config,
            fields: UserFields::default(),
            store: None,
            migrate: true,
        }
    }

    /// Reads the configuration from the environment and builds.
    pub async fn from_env() -> anyhow::Result<Self> {
        Self::builder(Config::from_env()?).build().await
    }

    /// Stops cleanly once the server has stopped: lets a mail delivery in
    /// progress finish (at most `patience`), then closes the database.
    /// Returns `false` if a delivery was still running (that message is
    /// sent again after the next start). Queued mail stays queued.
    pub async fn shutdown(&self, patience: std::time::Duration) -> bool {
        let finished = self.state.mailer.shutdown(patience).await;
        self.state.store.close().await;
        finished
    }

    /// The shared state, for `with_state` and the extractors.
    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// All Portcullis routes: the auth endpoints under `AUTH_ROUTE_PREFIX`,
    /// the pages behind the mailed links, and `/healthz`, `/readyz`,
    /// `/metrics`, `/.well-known/jwks.json`, `/openapi.json` and `/docs` at
    /// the root; every error in the envelope, a request id on every response.
    ///
    /// To add routes of your own under the same request ids, metrics, panic
    /// recovery and CORS, use [`Portcullis::app`] instead of merging.
    pub fn router(&self) -> Router {
        self.app(Router::new())
    }

    /// The application's own `routes` (which may use the extractors of
    /// [`extract`]) together with all Portcullis routes, under one stack of
    /// middleware: request ids, request logs and metrics, panic recovery and
    /// CORS apply to both, and unknown paths or methods answer 404 / 405 in
    /// the envelope. The application's handlers keep their own answers (only
    /// Portcullis's routes have their framework rejections rewritten into the
    /// envelope) and their own body limits (64 KiB applies to Portcullis's).
    ///
    /// ```no_run
    /// use axum::{Router, routing::get};
    /// use portcullis::{ActiveUser, AppState, Portcullis};
    ///
    /// async fn profile(ActiveUser(user): ActiveUser) -> String {
    ///     user.email
    /// }
    ///
    /// # async fn run() -> anyhow::Result<()> {
    /// let auth = Portcullis::from_env().await?;
    /// let routes: Router<AppState> = Router::new().route("/profile", get(profile));
    /// let app: Router = auth.app(routes);
    /// # Ok(()) }
    /// ```
    pub fn app(&self, routes: Router<AppState>) -> Router {
        let auth_routes = Router::new()
            .route("/register", post(auth::register))
            .route("/login", post(auth::login_form))
            .route("/login/json", post(auth::login_json))
            .route("/token", post(auth::token))
            .route("/refresh", post(auth::refresh))
            .route("/me", get(auth::me).patch(auth::update_me))
            .route("/change-password", post(auth::change_password))
            .route("/forgot-password", post(account::forgot_password))
            .route("/reset-password", post(account::reset_password))
            .route("/verify-email", post(account::verify_email))
            .route("/verify-email/resend", post(account::resend_verification))
            .route("/send-verification", post(account::resend_verification))
            .route("/logout", post(auth::logout))
            .route("/sessions", get(auth::list_sessions))
            .route("/sessions/{id}", delete(auth::delete_session));
        let portcullis_routes = Router::new()
            .nest(&self.state.config.route_prefix, auth_routes)
            .route(
                "/reset-password",
                get(pages::reset_page).post(pages::reset_submit),
            )
            .route(
                "/verify-email",
                get(pages::verify_page).post(pages::verify_submit),
            )
            .route(pages::STYLESHEET_PATH, get(pages::stylesheet))
            .route("/healthz", get(ops::healthz))
            .route("/readyz", get(ops::readyz))
            .route("/metrics", get(ops::metrics))
            .route("/.well-known/jwks.json", get(ops::jwks))
            .merge(openapi::swagger_ui(openapi::document(
                &self.state.config.route_prefix,
            )))
            .layer(DefaultBodyLimit::max(BODY_LIMIT))
            .layer(axum::middleware::map_response(
                middleware::portcullis_defaults,
            ));
        let router = portcullis_routes
            .merge(routes)
            .fallback(|| async { Error::NotFound })
            .method_not_allowed_fallback(|| async { Error::MethodNotAllowed })
            .with_state(self.state.clone());
        middleware::wrap(router, &self.state.config)
    }
}

/// How often expired rows are deleted.
const PURGE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

/// Deletes expired sessions, tokens and delivered mail every hour, so that
/// no table grows without bound.
async fn purge_periodically(store: Store) {
    let mut every = tokio::time::interval(PURGE_INTERVAL);
    loop {
        every.tick().await;
        match store.purge_expired(crate::clock::now_unix()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(rows = n, "expired sessions and tokens deleted"),
            Err(e) => tracing::warn!(error = %e, "purging expired rows failed"),
        }
    }
}

impl FromRef<Portcullis> for AppState {
    fn from_ref(p: &Portcullis) -> AppState {
        p.state.clone()
    }
}
