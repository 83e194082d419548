//! Extractors that protect handlers (SPEC §8), the Rust form of the seeds'
//! `get_current_user` / `get_current_active_user` dependencies.
//!
//! Each one reads `Authorization: Bearer …` and hands the token to
//! [`Flows::authenticate`](crate::flows::Flows::authenticate) (signature and
//! claims, then an open session and an existing user); failures answer with
//! the errors of SPEC §3. The session is checked once per request, however
//! many extractors a handler uses.
//!
//! [`ClientInfo`] is who is calling: the client IP that
//! [`middleware`](super::middleware) resolved (through `TRUSTED_PROXIES`),
//! or else the TCP peer's, and the user agent.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;

use super::AppState;
use crate::domain::ClientInfo;
use crate::error::{Error, Result};
pub use crate::flows::AuthSession;
use crate::flows::CheckedSession;
use crate::store::User;

/// The bearer token in `headers`, if there is a well-formed one.
pub(crate) fn bearer_in(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The bearer token of a request, or [`Error::Unauthorized`].
pub(crate) fn bearer(parts: &Parts) -> Result<&str> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or(Error::Unauthorized)?
        .to_str()
        .map_err(|_| Error::Unauthorized)?;
    let (scheme, token) = value.trim().split_once(' ').ok_or(Error::Unauthorized)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(Error::Unauthorized);
    }
    Ok(token)
}

impl<S> FromRequestParts<S> for AuthSession
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        Ok(checked_session(parts, state).await?.to_session())
    }
}

/// The request's session, checked once however many extractors ask.
async fn checked_session<S>(parts: &mut Parts, state: &S) -> Result<CheckedSession>
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    if let Some(existing) = parts.extensions.get::<CheckedSession>() {
        return Ok(existing.clone());
    }
    let state = AppState::from_ref(state);
    let session = state.flows.check_access(bearer(parts)?).await?;
    parts.extensions.insert(session.clone());
    Ok(session)
}

/// The current user, whatever their state (the seeds' `get_current_user`).
#[derive(Debug, Clone)]
pub struct CurrentUser(pub User);

/// The current *active* user: the seeds' `get_current_active_user`.
/// A deactivated user gets 403 `INACTIVE_USER`.
#[doc(alias = "get_current_active_user")]
#[derive(Debug, Clone)]
pub struct ActiveUser(pub User);

/// An active user whose e-mail is verified, else 403 `EMAIL_NOT_VERIFIED`.
#[derive(Debug, Clone)]
pub struct VerifiedUser(pub User);

/// An active superuser, else 403 `FORBIDDEN`.
#[derive(Debug, Clone)]
pub struct Superuser(pub User);

macro_rules! user_extractor {
    ($name:ident, |$user:ident| $check:expr) => {
        impl<S> FromRequestParts<S> for $name
        where
            S: Send + Sync,
            AppState: FromRef<S>,
        {
            type Rejection = Error;

            async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
                let session = checked_session(parts, state).await?;
                let $user: &User = &session.user;
                $check?;
                Ok($name(User::clone($user)))
            }
        }
    };
}

fn active(user: &User) -> Result<()> {
    if user.is_active {
        Ok(())
    } else {
        Err(Error::InactiveUser)
    }
}

user_extractor!(CurrentUser, |user| Ok::<(), Error>(()));
user_extractor!(ActiveUser, |user| active(user));
user_extractor!(VerifiedUser, |user| active(user).and_then(|()| {
    if user.is_verified {
        Ok(())
    } else {
        Err(Error::EmailNotVerified)
    }
}));
user_extractor!(Superuser, |user| active(user).and_then(|()| {
    if user.is_superuser {
        Ok(())
    } else {
        Err(Error::Forbidden)
    }
}));

/// An active user whose session passed a second factor (its access token
/// says `aal2`, SPEC §10), else 403 `INSUFFICIENT_AAL`: for routes that
/// need more than a password.
#[derive(Debug, Clone)]
pub struct Aal2User(pub User);

impl<S> FromRequestParts<S> for Aal2User
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        let session = checked_session(parts, state).await?;
        active(&session.user)?;
        if !session.claims.is_aal2() {
            return Err(Error::InsufficientAal);
        }
        Ok(Aal2User(User::clone(&session.user)))
    }
}

/// Longest user agent kept, in characters.
const MAX_USER_AGENT: usize = 256;

/// The client's IP address as resolved for this request (the peer's, or the
/// one a trusted proxy forwarded), in the request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> std::result::Result<Self, Self::Rejection> {
        let ip = match parts.extensions.get::<ClientIp>() {
            Some(ClientIp(ip)) => Some(*ip),
            None => parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip().to_canonical()),
        }
        .map(|ip| ip.to_string());
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(MAX_USER_AGENT).collect());
        Ok(ClientInfo { ip, user_agent })
    }
}
