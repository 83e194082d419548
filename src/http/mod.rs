//! The HTTP transport: it parses requests, calls one flow of
//! [`crate::flows`], and renders the outcome as the JSON envelope, an RFC 6749
//! body or an HTML page. No rule lives here, and no handler module calls
//! another.
//!
//! - [`routes`]: which handler answers which path, and the middleware stack;
//! - [`state`]: [`AppState`], what handlers and extractors receive;
//! - handlers: [`auth`] (register, login, refresh, logout), [`admin`]
//!   (`/api/users…`, superusers), [`oauth`]
//!   (`/token`), [`account`] (`/me`, change password, sessions, events), [`links`]
//!   (reset and verification requests), [`mfa`] (the second factor), [`pages`] (the HTML behind the
//!   mailed links), [`ops`] (health, metrics, JWKS), [`openapi`] (`/docs`);
//! - the wire format: [`body`] (request bodies), [`response`] (the envelope
//!   and the JSON shapes), [`extract`] (the extractors that protect a
//!   handler, and the caller's IP), [`cookie`] (the refresh cookie and its
//!   cross-site check);
//! - [`middleware`] and [`server`] (the accept loop with its timeouts).

pub mod account;
pub mod admin;
pub mod auth;
pub mod body;
pub mod clients;
pub mod cookie;
pub mod device;
pub mod discovery;
pub mod extract;
pub mod links;
pub mod mfa;
pub mod middleware;
pub mod oauth;
pub mod openapi;
pub mod ops;
pub mod pages;
pub mod passkeys;
pub mod response;
pub mod routes;
pub mod server;
pub mod state;

pub use routes::BODY_LIMIT;
pub use state::AppState;
