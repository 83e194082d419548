//! Token settings: the signing algorithm and keys, the lifetimes of access
//! and refresh tokens, the claims written into them, and how the refresh
//! token is handed out.

use std::time::Duration;

use jsonwebtoken::Algorithm;

use super::ConfigError;
use super::source::Source;

const MINUTE: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(86_400);

/// The token settings of [`super::Config`]. The signing key is only checked
/// here: generating one when unset is left to [`super::secret::resolve`],
/// once everything else is known to be valid.
pub(super) struct Tokens {
    pub algorithm: Algorithm,
    /// `SECRET_KEY` when set (checked by [`check_key`]).
    pub secret_key: Option<String>,
    pub secret_key_previous: Vec<String>,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub refresh_reuse_grace: Duration,
    pub session_max_lifetime: Duration,
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
    pub refresh_cookie: bool,
    /// The key files of an asymmetric `ALGORITHM` (checked by [`super::keys`]).
    pub key_files: Option<super::keys::KeyFiles>,
}

/// The token settings; `production` makes `SECRET_KEY` required (or, for
/// the asymmetric algorithms, `PRIVATE_KEY_FILE`); `REFRESH_COOKIE`
/// defaults to `pages_enabled` (SPEC §12).
pub(super) fn read(
    src: &Source<'_>,
    production: bool,
    pages_enabled: bool,
) -> Result<Tokens, ConfigError> {
    let algorithm = algorithm(src)?;
    let key_files = super::keys::read(src, production, algorithm)?;
    let (secret_key, secret_key_previous) =
        keys(src, production && key_files.is_none(), algorithm)?;
    Ok(Tokens {
        algorithm,
        secret_key,
        secret_key_previous,
        access_token_ttl: src.duration("ACCESS_TOKEN_EXPIRE_MINUTES", 30, MINUTE)?,
        refresh_token_ttl: src.duration("REFRESH_TOKEN_EXPIRE_DAYS", 7, DAY)?,
        refresh_reuse_grace: Duration::from_secs(src.parse(
            "REFRESH_REUSE_GRACE_SECONDS",
            10,
            "a whole number of seconds",
        )?),
        session_max_lifetime: src.duration("SESSION_MAX_LIFETIME_DAYS", 30, DAY)?,
        jwt_issuer: src.get("JWT_ISSUER"),
        jwt_audience: src.get("JWT_AUDIENCE"),
        refresh_cookie: src.flag("REFRESH_COOKIE", pages_enabled)?,
        key_files,
    })
}

impl super::Config {
    /// What the token layer is built from: these settings, borrowed.
    pub fn token_settings(&self) -> crate::token::TokenSettings<'_> {
        crate::token::TokenSettings {
            algorithm: self.algorithm,
            secret_key: &self.secret_key,
            secret_key_previous: &self.secret_key_previous,
            asymmetric_keys: self.asymmetric_keys.as_deref(),
            issuer: self.jwt_issuer.as_deref(),
            audience: self.jwt_audience.as_deref(),
            access_ttl: self.access_token_ttl,
            refresh_ttl: self.refresh_token_ttl,
        }
    }
}

impl crate::token::TokenService {
    /// The token service of `cfg` (see [`super::Config::token_settings`]).
    pub fn from_config(cfg: &super::Config) -> Self {
        Self::new(cfg.token_settings())
    }
}

/// `ALGORITHM`: an HMAC algorithm (signed with `SECRET_KEY`) or an
/// asymmetric one (signed with `PRIVATE_KEY_FILE`).
fn algorithm(src: &Source<'_>) -> Result<Algorithm, ConfigError> {
    match src.get("ALGORITHM").as_deref() {
        None | Some("HS256") => Ok(Algorithm::HS256),
        Some("HS384") => Ok(Algorithm::HS384),
        Some("HS512") => Ok(Algorithm::HS512),
        Some("RS256") => Ok(Algorithm::RS256),
        Some("ES256") => Ok(Algorithm::ES256),
        Some("EdDSA") => Ok(Algorithm::EdDSA),
        Some(other) => Err(ConfigError::new(
            "ALGORITHM",
            format!("expected HS256, HS384, HS512, RS256, ES256 or EdDSA, got {other:?}"),
        )),
    }
}

/// The shortest HMAC key `algorithm` accepts, in bytes: the length of the
/// hash's output (RFC 7518 §3.2).
pub(super) fn min_key_bytes(algorithm: Algorithm) -> usize {
    match algorithm {
        Algorithm::HS384 => 48,
        Algorithm::HS512 => 64,
        _ => 32,
    }
}

/// Why `key` is too weak to sign with `algorithm`, if it is: shorter than
/// the hash output, or one character repeated.
pub(super) fn check_key(key: &str, algorithm: Algorithm) -> Result<(), String> {
    let min = min_key_bytes(algorithm);
    if key.len() < min {
        return Err(format!(
            "must be at least {min} bytes for {algorithm:?} (RFC 7518 §3.2); generate one with `portcullis gen-secret`"
        ));
    }
    let mut chars = key.chars();
    let first = chars.next();
    if chars.all(|c| Some(c) == first) {
        return Err("must not be one character repeated".into());
    }
    Ok(())
}

/// `SECRET_KEY` (if set) and `SECRET_KEY_PREVIOUS`, every key strong enough
/// for `algorithm`; in production `SECRET_KEY` must be set.
fn keys(
    src: &Source<'_>,
    production: bool,
    algorithm: Algorithm,
) -> Result<(Option<String>, Vec<String>), ConfigError> {
    let secret_key = src.get("SECRET_KEY");
    match &secret_key {
        Some(key) => {
            check_key(key, algorithm).map_err(|why| ConfigError::new("SECRET_KEY", why))?;
        }
        None if production => {
            return Err(ConfigError::new(
                "SECRET_KEY",
                "required when PORTCULLIS_ENV=production (generate one with `portcullis gen-secret`)",
            ));
        }
        None => {}
    }
    let previous = src.list("SECRET_KEY_PREVIOUS");
    for key in &previous {
        check_key(key, algorithm)
            .map_err(|why| ConfigError::new("SECRET_KEY_PREVIOUS", format!("every key {why}")))?;
    }
    Ok((secret_key, previous))
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn keys_must_be_as_long_as_the_hash_and_not_one_repeated_character() {
        let with = |alg: &str, key: String| {
            Config::from_vars([("ALGORITHM", alg.to_string()), ("SECRET_KEY", key)])
        };
        assert!(
            with("HS256", "a".repeat(32)).is_err(),
            "a run of one character"
        );
        assert!(with("HS256", "ab".repeat(15) + "c").is_err(), "31 bytes");
        assert!(with("HS256", "ab".repeat(16)).is_ok());
        assert!(
            with("HS384", "ab".repeat(20)).is_err(),
            "40 bytes for HS384"
        );
        assert!(with("HS384", "ab".repeat(24)).is_ok());
        assert!(
            with("HS512", "ab".repeat(30)).is_err(),
            "60 bytes for HS512"
        );
        assert!(with("HS512", "ab".repeat(32)).is_ok());
        let err = Config::from_vars([
            ("SECRET_KEY", "ab".repeat(16)),
            ("SECRET_KEY_PREVIOUS", "x".repeat(40)),
        ])
        .unwrap_err();
        assert_eq!(err.variable, "SECRET_KEY_PREVIOUS");
    }

    #[test]
    fn huge_lifetimes_are_refused_not_wrapped() {
        for name in [
            "ACCESS_TOKEN_EXPIRE_MINUTES",
            "REFRESH_TOKEN_EXPIRE_DAYS",
            "SESSION_MAX_LIFETIME_DAYS",
        ] {
            let err = Config::from_vars([(name, "18446744073709551615")]).unwrap_err();
            assert_eq!(err.variable, name);
        }
    }

    #[test]
    fn production_requires_a_secret() {
        let err = Config::from_vars([("PORTCULLIS_ENV", "production")]).unwrap_err();
        assert_eq!(err.variable, "SECRET_KEY");
    }
}
