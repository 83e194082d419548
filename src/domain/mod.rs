//! The vocabulary every layer shares, with no dependency on any of them:
//! input types that parse rather than validate (an [`EmailAddress`] or a
//! [`DisplayName`] that exists satisfies SPEC §4), who is calling
//! ([`ClientInfo`]), the applications registered to sign people in
//! ([`OAuthClient`]), what is recorded ([`SecurityEvent`]) and what is mailed
//! ([`OutgoingMail`]). The store, the mailer, the flows and the HTTP layer all
//! import from here; this module imports none of them.

mod auth_level;
mod client;
mod email;
mod event;
mod message;
mod name;
mod oauth_client;

pub use auth_level::SessionAuth;
pub use client::{ClientInfo, TrustedProxies};
pub use email::{EmailAddress, MAX_EMAIL_CHARS, is_invisible_format};
pub use event::SecurityEvent;
pub use message::{OutgoingMail, QueuedMail};
pub use name::{DisplayName, MAX_NAME_CHARS};
pub use oauth_client::{
    MAX_CLIENT_NAME_CHARS, MAX_REDIRECT_URIS, MAX_URI_CHARS, OAuthClient, check_client_name,
    check_redirect_uri, check_redirect_uris, constant_time_eq, redirect_uri_matches,
};
