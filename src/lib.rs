//! # Portcullis
//!
//! Email/password JWT authentication for Rust web services: register, login
//! (OAuth2 form, JSON and RFC 6749 `/token`), rotating refresh tokens with
//! reuse detection, sessions you can list and revoke, change password, and
//! extractors that protect axum handlers.
//!
//! Use it as a server (`portcullis serve`) or embed it:
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use portcullis::{ActiveUser, AppState, Config, Envelope, Portcullis};
//!
//! async fn profile(ActiveUser(user): ActiveUser) -> Envelope<String> {
//!     Envelope::ok(user.email) // {"success": true, "data": "…"}
//! }
//!
//! # async fn run() -> anyhow::Result<()> {
//! let config = Config::from_env()?;
//! portcullis::telemetry::init(config.log_format);
//! let bind = config.bind_address();
//! let auth = Portcullis::builder(config).build().await?;
//! let routes: Router<AppState> = Router::new().route("/profile", get(profile));
//! let app = auth.app(routes); // your routes and Portcullis's, one middleware stack
//! let listener = tokio::net::TcpListener::bind(&bind).await?;
//! let drain = std::time::Duration::from_secs(10);
//! portcullis::http::server::serve(listener, app, portcullis::shutdown_signal(), drain).await;
//! auth.shutdown(drain).await; // finish background work, close the database
//! # Ok(()) }
//! ```
//!
//! The layout follows the architecture, from the outside in:
//! - [`cli`] and [`app`]: the binary's commands, and [`Portcullis`], which
//!   builds everything from a [`Config`], owns the background [`tasks`] and
//!   shuts them down in order;
//! - [`http`]: the transport (routes, handlers that parse, call one flow
//!   and render, extractors, the envelope, the server loop);
//! - [`flows`]: the account rules, one file per SPEC row, with no HTTP in them;
//! - the parts the flows use: [`store`] (SQL, one file per aggregate),
//!   [`password`], [`token`], [`mail`], [`mfa`] (second-factor cryptography), [`limits`] (rate limits, in memory
//!   or Redis), [`fields`], [`config`];
//! - for other services, behind the `verifier` feature: `verifier`, which
//!   checks Portcullis's access tokens against its JWKS;
//! - shared by all: [`domain`] (parsed inputs, events, messages), [`error`],
//!   [`clock`], [`random`], [`files`] (private files and directories),
//!   [`telemetry`].

#![warn(missing_docs)]

pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod error;
pub mod fields;
pub mod files;
pub mod flows;
pub mod http;
pub mod limits;
pub mod mail;
pub mod mfa;
pub mod password;
pub mod random;
pub mod store;
pub mod tasks;
pub mod telemetry;
pub mod token;
#[cfg(feature = "verifier")]
pub mod verifier;

pub use app::{Portcullis, PortcullisBuilder, shutdown_signal};
pub use config::Config;
pub use error::{Error, FieldError};
pub use fields::UserField;
pub use flows::Flows;
pub use http::AppState;
pub use http::extract::{Aal2User, ActiveUser, AuthSession, CurrentUser, Superuser, VerifiedUser};
pub use http::response::Envelope;
pub use store::User;
