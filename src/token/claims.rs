//! What a token says ([`Claims`]), and the checks of it that Portcullis
//! and [`crate::verifier`] share.

use jsonwebtoken::{Algorithm, Validation};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Whether a token grants access or renews a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    /// Short-lived, presented as `Authorization: Bearer`.
    Access,
    /// Long-lived, exchanged at `/refresh` for a new pair.
    Refresh,
}

/// The payload of a Portcullis token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id, as a string.
    pub sub: String,
    /// The user's e-mail (access tokens only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Whether that e-mail was verified when the token was issued (access
    /// tokens only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    /// `access` or `refresh`.
    #[serde(rename = "type")]
    pub token_type: TokenType,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issue time, seconds since the epoch.
    pub iat: i64,
    /// Unique id of this token.
    pub jti: String,
    /// The session (one login) this token belongs to.
    pub sid: String,
    /// How the session was authenticated, RFC 8176 values (access tokens
    /// only): `["pwd"]`, `["pwd", "otp", "mfa"]`,
    /// `["pwd", "recovery_code", "mfa"]` (SPEC §10), `["pwd", "hwk"|"swk",
    /// "mfa"]` (a passkey as the second step) or `["hwk"|"swk", "user",
    /// "mfa"]` (a passkey sign-in, SPEC §11).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    /// The assurance level of the session, `aal1` or `aal2` (access tokens only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aal: Option<String>,
    /// Issuer, when `JWT_ISSUER` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience, when `JWT_AUDIENCE` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

impl Claims {
    /// The user id in `sub`, or [`Error::InvalidToken`] if it is not a number.
    pub fn user_id(&self) -> Result<i64> {
        self.sub.parse().map_err(|_| Error::InvalidToken)
    }

    /// Whether the token says its session passed a second factor (`aal2`).
    pub fn is_aal2(&self) -> bool {
        self.aal.as_deref() == Some("aal2")
    }
}

/// A freshly signed token and its payload.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The compact JWS.
    pub token: String,
    /// What it says.
    pub claims: Claims,
}

/// What verification checks besides the signature: `algorithm` only, `exp`
/// with no leeway, `sub`, and the issuer and audience when they are set
/// (then required). Shared with [`crate::verifier`], so that another
/// service checks exactly what Portcullis checks.
pub(crate) fn validation(
    algorithm: Algorithm,
    issuer: Option<&str>,
    audience: Option<&str>,
) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.leeway = 0;
    let mut required = vec!["exp", "sub"];
    if let Some(iss) = issuer {
        validation.set_issuer(&[iss]);
        required.push("iss");
    }
    match audience {
        Some(aud) => {
            validation.set_audience(&[aud]);
            required.push("aud");
        }
        None => validation.validate_aud = false,
    }
    validation.set_required_spec_claims(&required);
    validation
}

/// The checks of a verified token's payload: of type `expected`, with a
/// session and a token id, for a numeric user id.
pub(crate) fn check_claims(claims: &Claims, expected: TokenType) -> Result<()> {
    if claims.token_type != expected || claims.sid.is_empty() || claims.jti.is_empty() {
        return Err(Error::InvalidToken);
    }
    claims.user_id()?;
    Ok(())
}

/// The longest token looked at; anything longer is refused unread.
pub(crate) const MAX_TOKEN_LEN: usize = 8 * 1024;
