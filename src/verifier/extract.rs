//! The [`VerifiedClaims`] extractor.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;

use super::JwksVerifier;
use crate::error::{Error, Result};
use crate::token::Claims;

/// The claims of the request's bearer access token, verified by the
/// [`JwksVerifier`] of the state (`JwksVerifier: FromRef<S>`); otherwise the
/// request is answered 401 (or 503) in Portcullis's envelope.
#[derive(Debug, Clone)]
pub struct VerifiedClaims(pub Claims);

impl<S> FromRequestParts<S> for VerifiedClaims
where
    S: Send + Sync,
    JwksVerifier: FromRef<S>,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        if let Some(claims) = parts.extensions.get::<VerifiedClaims>() {
            return Ok(claims.clone());
        }
        let token = crate::http::extract::bearer(parts)?;
        let claims = VerifiedClaims(JwksVerifier::from_ref(state).verify(token).await?);
        parts.extensions.insert(claims.clone());
        Ok(claims)
    }
}
