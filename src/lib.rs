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
//! use axum::{Router, routing::get, Json};
//! use portcullis::{ActiveUser, AppState, Config, Portcullis};
//!
//! async fn profile(ActiveUser(user): ActiveUser) -> Json<serde_json::Value> {
//!     Json(serde_json::json!({ "email": user.email }))
//! }
//!
//! # async fn run() -> anyhow::Result<()> {
//! let auth = Portcullis::builder(Config::from_env()?).build().await?;
//! let routes: Router<AppState> = Router::new().route("/profile", get(profile));
//! let app = auth.app(routes); // your routes and Portcullis's, one middleware stack
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
//! let shutdown = async { let _ = tokio::signal::ctrl_c().await; };
//! portcullis::http::server::serve(listener, app, shutdown, std::time::Duration::from_secs(10)).await;
//! auth.shutdown(std::time::Duration::from_secs(10)).await; // finish a mail in flight, close the database
//! # Ok(()) }
//! ```
//!
//! The layout follows the architecture: [`config`], [`password`], [`token`],
//! [`store`], [`http`] (routes, extractors, envelope), [`error`] and the
//! command line in [`cli`].

#![warn(missing_docs)]

pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod error;
pub mod fields;
pub mod flows;
pub mod http;
pub mod mail;
pub mod password;
pub mod random;
pub mod store;
pub mod tasks;
pub mod telemetry;
pub mod token;

pub use app::{Portcullis, PortcullisBuilder, shutdown_signal};
pub use config::Config;
pub use error::{Error, FieldError};
pub use fields::UserField;
pub use flows::Flows;
pub use http::AppState;
pub use http::extract::{ActiveUser, AuthSession, CurrentUser, Superuser, VerifiedUser};
pub use store::User;
