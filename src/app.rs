//! The running Portcullis: built from a [`Config`], it owns the database,
//! the keys, the hasher, the mailer and every background task, hands out the
//! axum router, and shuts all of it down in order.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::FromRef;
use tokio_util::sync::CancellationToken;

use crate::clock::now_unix;
use crate::config::Config;
use crate::fields::{UserField, UserFields};
use crate::flows::Flows;
use crate::http::AppState;
use crate::limits::Limits;
use crate::mail::Mailer;
use crate::password::PasswordHasherPool;
use crate::store::Store;
use crate::tasks::Tasks;
use crate::token::TokenService;

/// How often expired rows are deleted.
const PURGE_INTERVAL: Duration = Duration::from_secs(3600);

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
    pages: bool,
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

    /// Whether to serve the pages of SPEC §12 (`/sign-in`, `/sign-up`,
    /// `/forgot-password`, `/account` and their assets) when
    /// `PAGES_ENABLED` allows (default: no; the binary asks). Without them
    /// the two pages the mails link to are still served.
    pub fn pages(mut self, pages: bool) -> Self {
        self.pages = pages;
        self
    }

    /// Whether to apply migrations when building (default: yes).
    pub fn migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    /// Connects (and migrates) the database, prepares keys, hashing and the
    /// rate limits (connecting to Redis if configured), and starts the
    /// background tasks: the mail worker, the hourly purge, and the rate
    /// limits' housekeeping and Redis reconnection.
    pub async fn build(mut self) -> anyhow::Result<Portcullis> {
        self.config.pages.enabled &= self.pages;
        if self.config.mfa.encryption_key.is_none() {
            tracing::warn!(
                "MFA_ENCRYPTION_KEY is not set: TOTP cannot be turned on (its setup answers 503); \
                 set it to 32 random bytes, base64 (`openssl rand -base64 32`)"
            );
        }
        let store = match self.store {
            Some(store) => store,
            None => Store::connect(&self.config.database_url)
                .await
                .context("DATABASE_URL: cannot open the database")?,
        };
        let store = store.with_session_cache(self.config.session_cache_size);
        if self.migrate {
            store
                .migrate()
                .await
                .context("DATABASE_URL: cannot apply the migrations")?;
        }
        // Install the metrics recorder now, so that nothing before the first
        // scrape goes uncounted.
        crate::telemetry::prometheus();
        let passwords = PasswordHasherPool::new(&self.config.password)?;
        let tokens = TokenService::from_config(&self.config);
        let tasks = Tasks::new();
        let mailer = Mailer::start(store.clone(), &self.config, &tasks)?;
        let follower = store.clone();
        tasks.spawn_service(move |stop| follower.follow_changes(stop));
        let purged = store.clone();
        let retention =
            i64::try_from(self.config.event_retention.as_secs()).unwrap_or(i64::MAX / 4);
        tasks.spawn_service(move |stop| purge_periodically(purged, retention, stop));
        let limits = Limits::new(&self.config.rate_limits).await;
        limits.start(&tasks);
        let webauthn = crate::flows::relying_party(&self.config.passkeys);
        let flows = Flows {
            webauthn,
            config: self.config,
            store,
            tokens,
            passwords,
            fields: self.fields,
            mailer,
            limits,
            tasks,
        };
        Ok(Portcullis {
            state: AppState::new(Arc::new(flows)),
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
            pages: false,
        }
    }

    /// Reads the configuration from the environment and builds.
    pub async fn from_env() -> anyhow::Result<Self> {
        Self::builder(Config::from_env()?).build().await
    }

    /// The shared state, for `with_state` and the extractors.
    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// The account rules, for calling a flow without HTTP (a command-line
    /// tool, a job, another transport).
    pub fn flows(&self) -> &Arc<Flows> {
        &self.state.flows
    }

    /// All Portcullis routes: the auth endpoints under `AUTH_ROUTE_PREFIX`,
    /// the pages behind the mailed links, and `/healthz`, `/readyz`,
    /// `/.well-known/jwks.json`, `/openapi.json`, `/docs` and (in
    /// development only) `/metrics` at the root; every error in the
    /// envelope, a request id on every response. With
    /// `PORTCULLIS_ENV=production`, `/metrics` answers 404 here: serve
    /// [`Portcullis::metrics_router`] on a listener of its own.
    ///
    /// To add routes of your own under the same request ids, metrics, panic
    /// recovery and CORS, use [`Portcullis::app`] instead of merging.
    pub fn router(&self) -> Router {
        self.app(Router::new())
    }

    /// The application's own `routes` (which may use the extractors of
    /// [`crate::http::extract`]) together with all Portcullis routes, under
    /// one stack of middleware: request ids, request logs and metrics, panic
    /// recovery and CORS apply to both, and unknown paths or methods answer
    /// 404 / 405 in the envelope. The application's handlers keep their own
    /// answers (only Portcullis's routes have their framework rejections
    /// rewritten into the envelope) and their own body limits (64 KiB
    /// applies to Portcullis's).
    pub fn app(&self, routes: Router<AppState>) -> Router {
        crate::http::routes::app(&self.state, routes)
    }

    /// `/metrics` (Prometheus text) alone, for a listener that only your
    /// monitoring can reach: the binary serves it on `METRICS_ADDR`
    /// ([`Config::metrics_addr`]). Every other path answers 404 in the
    /// envelope. In production this is the only place the metrics are
    /// served, since they reveal activity (logins, mail sent).
    ///
    /// ```no_run
    /// # async fn run(auth: portcullis::Portcullis) -> anyhow::Result<()> {
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:9464").await?;
    /// let metrics = auth.metrics_router();
    /// let drain = std::time::Duration::from_secs(1);
    /// portcullis::http::server::serve(listener, metrics, portcullis::shutdown_signal(), drain).await;
    /// # Ok(()) }
    /// ```
    pub fn metrics_router(&self) -> Router {
        crate::http::routes::metrics()
    }

    /// Stops cleanly once the server has stopped: background work is refused
    /// from now on, the mail worker finishes the delivery it is making, the
    /// work queued after responses runs to its end (all within `patience`),
    /// and then the database is closed. Returns `false` if something was
    /// still running when patience ran out (a mail delivery cut off then is
    /// sent again after the next start). Queued mail stays queued.
    pub async fn shutdown(&self, patience: Duration) -> bool {
        let finished = self.state.flows.tasks.shutdown(patience).await;
        self.state.flows.store.close().await;
        finished
    }
}

impl FromRef<Portcullis> for AppState {
    fn from_ref(p: &Portcullis) -> AppState {
        p.state.clone()
    }
}

/// Deletes expired sessions, tokens and delivered mail, and security events
/// older than `retention_secs`, every hour, so that no table grows without
/// bound; stops when `stop` is cancelled.
async fn purge_periodically(store: Store, retention_secs: i64, stop: CancellationToken) {
    let mut every = tokio::time::interval(PURGE_INTERVAL);
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            _ = every.tick() => {}
        }
        let now = now_unix();
        match store.purge_expired(now).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(rows = n, "expired sessions and tokens deleted"),
            Err(e) => tracing::warn!(error = %e, "purging expired rows failed"),
        }
        match store.purge_events_before(now - retention_secs).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(rows = n, "old security events deleted"),
            Err(e) => tracing::warn!(error = %e, "purging old security events failed"),
        }
    }
}

/// Resolves when the process is asked to stop: SIGINT (Ctrl-C) or, on Unix,
/// SIGTERM (what Docker, Kubernetes and systemd send). Give it to
/// [`crate::http::server::serve`] as the shutdown future.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
