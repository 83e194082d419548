//! Token settings: the signing algorithm and keys, the lifetimes of access
//! and refresh tokens, the claims written into them, and how the refresh
//! token is handed out.

use std::time::Duration;

use jsonwebtoken::Algorithm;

use super::source::Source;
use super::{ConfigError, MIN_SECRET_LEN};

/// The token settings of [`super::Config`]. The signing key is only checked
/// here: generating one when unset is left to [`super::secret::resolve`],
/// once everything else is known to be valid.
pub(super) struct Tokens {
    pub algorithm: Algorithm,
    /// `SECRET_KEY` when set (at least [`MIN_SECRET_LEN`] characters).
    pub secret_key: Option<String>,
    pub secret_key_previous: Vec<String>,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub refresh_reuse_grace: Duration,
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
    pub refresh_cookie: bool,
}

/// The token settings; `production` makes `SECRET_KEY` required.
pub(super) fn read(src: &Source<'_>, production: bool) -> Result<Tokens, ConfigError> {
    let algorithm = algorithm(src)?;
    let (secret_key, secret_key_previous) = keys(src, production)?;
    Ok(Tokens {
        algorithm,
        secret_key,
        secret_key_previous,
        access_token_ttl: Duration::from_secs(
            60 * src.positive("ACCESS_TOKEN_EXPIRE_MINUTES", 30)?,
        ),
        refresh_token_ttl: Duration::from_secs(
            86_400 * src.positive("REFRESH_TOKEN_EXPIRE_DAYS", 7)?,
        ),
        refresh_reuse_grace: Duration::from_secs(src.parse(
            "REFRESH_REUSE_GRACE_SECONDS",
            10,
            "a whole number of seconds",
        )?),
        jwt_issuer: src.get("JWT_ISSUER"),
        jwt_audience: src.get("JWT_AUDIENCE"),
        refresh_cookie: src.flag("REFRESH_COOKIE", false)?,
    })
}

/// `ALGORITHM`: one of the HMAC algorithms; the asymmetric ones are refused
/// with their own message, since they are planned.
fn algorithm(src: &Source<'_>) -> Result<Algorithm, ConfigError> {
    match src.get("ALGORITHM").as_deref() {
        None | Some("HS256") => Ok(Algorithm::HS256),
        Some("HS384") => Ok(Algorithm::HS384),
        Some("HS512") => Ok(Algorithm::HS512),
        Some(other @ ("RS256" | "ES256" | "EdDSA")) => Err(ConfigError::new(
            "ALGORITHM",
            format!("{other} is not supported in this version; use HS256, HS384 or HS512"),
        )),
        Some(other) => Err(ConfigError::new(
            "ALGORITHM",
            format!("expected HS256, HS384 or HS512, got {other:?}"),
        )),
    }
}

/// `SECRET_KEY` (if set) and `SECRET_KEY_PREVIOUS`, every key at least
/// [`MIN_SECRET_LEN`] characters; in production `SECRET_KEY` must be set.
fn keys(src: &Source<'_>, production: bool) -> Result<(Option<String>, Vec<String>), ConfigError> {
    let secret_key = src.get("SECRET_KEY");
    match &secret_key {
        Some(key) if key.chars().count() < MIN_SECRET_LEN => {
            return Err(ConfigError::new(
                "SECRET_KEY",
                format!("must be at least {MIN_SECRET_LEN} characters"),
            ));
        }
        None if production => {
            return Err(ConfigError::new(
                "SECRET_KEY",
                "required when PORTCULLIS_ENV=production (generate one with `portcullis gen-secret`)",
            ));
        }
        _ => {}
    }
    let previous = src.list("SECRET_KEY_PREVIOUS");
    if previous.iter().any(|k| k.chars().count() < MIN_SECRET_LEN) {
        return Err(ConfigError::new(
            "SECRET_KEY_PREVIOUS",
            format!("every key must be at least {MIN_SECRET_LEN} characters"),
        ));
    }
    Ok((secret_key, previous))
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn production_requires_a_secret() {
        let err = Config::from_vars([("PORTCULLIS_ENV", "production")]).unwrap_err();
        assert_eq!(err.variable, "SECRET_KEY");
    }
}
