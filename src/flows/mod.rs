//! The account rules, one flow per file, whatever the transport.
//!
//! Each flow takes typed input plus the [`Flows`] context (store, hasher,
//! tokens, mailer, rate limits, configuration, background tasks) and returns a typed
//! outcome or an [`Error`](crate::Error). Nothing here knows about HTTP: the
//! JSON API, the RFC 6749 `/token` endpoint and the HTML pages in
//! [`crate::http`] all parse their request, call one flow and render its
//! outcome, so the rules (no user enumeration, re-hash on login, refresh
//! reuse detection, revoke-and-mail in one transaction, the rate limits of
//! SPEC §7, decided before any hashing work) hold for every way in, and are
//! tested here without HTTP.
//!
//! | SPEC row | file |
//! |---|---|
//! | `POST /register` | [`register`](Flows::register) |
//! | `POST /login`, `/login/json`, `/token` (password grant) | [`login`](Flows::sign_in) |
//! | `POST /mfa/verify`, `/mfa/passkey/options`, `/token` (MFA grant), `/mfa`, `/mfa/totp/*`, `/mfa/recovery-codes` | [`mfa`](Flows::verify_second_factor) |
//! | `POST /refresh`, `/token` (refresh_token grant) | [`refresh`](Flows::refresh) |
//! | every protected route | [`authenticate`](Flows::authenticate) |
//! | `GET`, `PATCH /me` | [`profile`](Flows::update_profile) |
//! | `POST /change-password` | [`change_password`](Flows::change_password) |
//! | `POST /forgot-password`, `/reset-password` (and its page) | [`password_reset`](Flows::request_password_reset) |
//! | `POST /verify-email`, `/verify-email/resend` (and its page) | [`email_verification`](Flows::verify_email) |
//! | `POST /logout` | [`logout`](Flows::logout) |
//! | `GET /sessions`, `DELETE /sessions/{id}` | [`sessions`](Flows::list_sessions) |
//! | `/passkeys…`, `POST /login/passkey/options`, `/login/passkey` | [`passkeys`](Flows::sign_in_with_passkey) |
//! | `GET /events`, and the admin API `/api/users…` (superusers) | [`admin`](Flows::admin_list_users) |
//! | `/api/clients…` (superusers) and `portcullis client …` | [`clients`] |

mod admin;
mod authenticate;
mod change_password;
pub mod clients;
mod email_verification;
mod links;
mod login;
mod logout;
mod mfa;
mod passkeys;
mod password_check;
mod password_reset;
mod profile;
mod refresh;
mod register;
mod session;
mod sessions;

pub use admin::{ADMIN_PATCH_KEYS, DEFAULT_PER_PAGE, MAX_PAGE, MAX_PER_PAGE, Page, Paginated};
pub use authenticate::{AuthSession, CheckedSession};
pub use clients::{ClientRegistration, ClientUpdate, CreatedClient};
pub use mfa::{
    LoginOutcome, MfaChallenge, MfaStatus, SecondFactorMethod, SecondStepPassed, TotpEnabled,
    TotpSetup, remove_second_factor,
};
pub use passkeys::{CEREMONY_TTL_SECS, PasskeyInfo, PasskeyOptions, relying_party};
pub use profile::LOCKED_PROFILE_KEYS;
pub use register::{Registered, Registration};
pub use session::TokenPair;
pub(crate) use session::bearer as bearer_schema;

use crate::config::Config;
use crate::error::{Error, FieldError, Result};
use crate::fields::UserFields;
use crate::limits::Limits;
use crate::mail::Mailer;
use crate::password::PasswordHasherPool;
use crate::store::Store;
use crate::tasks::Tasks;
use crate::token::TokenService;

/// What every flow needs: the parts of a running Portcullis.
#[derive(Debug)]
pub struct Flows {
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
    /// The rate limits (SPEC §7).
    pub limits: Limits,
    /// Background work, drained at shutdown.
    pub tasks: Tasks,
    /// The WebAuthn relying party of passkeys ([`relying_party`]); `None`
    /// when they are unavailable (503 `PASSKEYS_UNAVAILABLE`).
    pub webauthn: Option<webauthn_rs::Webauthn>,
}

/// `Ok` if there are no field errors, else [`Error::Validation`] with all of them.
fn reject_if_any(errors: Vec<FieldError>) -> Result<()> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Validation(errors))
    }
}
