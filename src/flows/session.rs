//! Opening a session: the step every successful login and registration ends
//! with, and the token pair it hands out.

use serde::Serialize;

use super::Flows;
use crate::clock::now_unix;
use crate::domain::{ClientInfo, SessionAuth};
use crate::error::{Error, Result};
use crate::random::random_id;
use crate::store::{Lifetimes, NewSession, Refusal, SessionOpening, StillValid, User};
use crate::token::IssuedToken;

/// An access/refresh pair, as login, registration and refresh return it.
/// (Its `ToSchema` describes this serialized shape for the OpenAPI document.)
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TokenPair {
    /// Bearer token for API calls.
    pub access_token: String,
    /// Token for `/refresh`.
    pub refresh_token: String,
    /// Always `bearer`.
    #[schema(schema_with = bearer)]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// A login's device token (SPEC §7): sent back as the
    /// `Portcullis-Device` header (or the `portcullis_device` cookie), it
    /// lets this device sign in to this account even while the account's
    /// budget of failed logins is used up. Only in login answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_token: Option<String>,
    /// When the refresh token expires (Unix seconds): the refresh cookie's
    /// lifetime. Not part of the answer.
    #[serde(skip)]
    pub refresh_expires_at: i64,
}

/// The schema of `token_type`: the constant `bearer`.
pub(crate) fn bearer() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(["bearer"]))
        .description(Some("Always `bearer`."))
        .build()
}

impl Flows {
    /// The configured lifetimes of refresh tokens and sessions.
    pub(super) fn lifetimes(&self) -> Lifetimes {
        let secs = |d: std::time::Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4);
        Lifetimes {
            refresh_secs: secs(self.config.refresh_token_ttl),
            session_max_secs: secs(self.config.session_max_lifetime),
            grace_secs: secs(self.config.refresh_reuse_grace),
        }
    }

    /// Opens a session for `user` and signs its first token pair, provided
    /// that what `check` names still holds when the session is written (see
    /// [`crate::store::Store::open_session`]).
    pub(super) async fn open_session(
        &self,
        user: &User,
        check: StillValid<'_>,
        client: &ClientInfo,
    ) -> Result<TokenPair> {
        self.open_session_as(user, check, client, SessionAuth::Password)
            .await
    }

    /// [`Flows::open_session`] for a session authenticated by `auth`. A
    /// session on the password alone is refused (401 `INVALID_CREDENTIALS`,
    /// so the client logs in again and meets the second step) when the user
    /// turned a second factor on while the login was under way.
    pub(super) async fn open_session_as(
        &self,
        user: &User,
        check: StillValid<'_>,
        client: &ClientInfo,
        auth: SessionAuth,
    ) -> Result<TokenPair> {
        let sid = random_id();
        let jti = random_id();
        let lifetimes = self.lifetimes();
        let now = now_unix();
        let session = NewSession {
            session_id: &sid,
            user_id: user.id,
            refresh_jti: &jti,
            lifetimes: &lifetimes,
            client,
            now,
        };
        let expires_at = match self.store.open_session_as(&session, &check, auth).await? {
            SessionOpening::Opened { refresh_expires_at } => refresh_expires_at,
            SessionOpening::Refused(Refusal::Inactive) => return Err(Error::InactiveUser),
            SessionOpening::Refused(Refusal::Unverified) => return Err(Error::EmailNotVerified),
            SessionOpening::Refused(
                Refusal::PasswordChanged | Refusal::UserGone | Refusal::SecondFactorRequired,
            ) => {
                return Err(Error::InvalidCredentials);
            }
        };
        let refresh = self
            .tokens
            .issue_refresh(user.id, &sid, &jti, now, expires_at)?;
        self.pair_as(user, &sid, refresh, auth)
    }

    /// A new access token for `user` in session `sid`, authenticated by
    /// `auth` (its `amr` and `aal` claims), paired with `refresh`.
    pub(super) fn pair_as(
        &self,
        user: &User,
        sid: &str,
        refresh: IssuedToken,
        auth: SessionAuth,
    ) -> Result<TokenPair> {
        // Never past the session's end: near its absolute lifetime the
        // refresh token's expiry is that end.
        let access = self.tokens.issue_access_until(
            user.id,
            &user.email,
            user.is_verified,
            sid,
            auth,
            refresh.claims.exp,
        )?;
        Ok(TokenPair {
            access_token: access.token,
            refresh_token: refresh.token,
            token_type: "bearer",
            expires_in: access.claims.exp - access.claims.iat,
            device_token: None,
            refresh_expires_at: refresh.claims.exp,
        })
    }
}
