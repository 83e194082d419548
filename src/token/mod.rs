//! JSON Web Tokens (SPEC §5): issuing and checking access and refresh tokens.
//!
//! Tokens are plain JWS compact tokens (HS256 by default) that PyJWT or jose
//! verify with the same key, or with the public key from the JWKS for RS256,
//! ES256 and EdDSA ([`keys`]). The header carries a `kid` derived from the
//! key (for the asymmetric keys their RFC 7638 thumbprint), so that older
//! keys listed in `SECRET_KEY_PREVIOUS` or `PUBLIC_KEY_FILES` keep verifying
//! during a rotation. Every key is parsed once, when the service is built.

pub mod keys;

mod claims;
mod decode;
mod issue;
mod mac;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Validation};
use sha2::Digest as _;

pub use claims::{Claims, IssuedToken, TokenType};
pub(crate) use claims::{MAX_TOKEN_LEN, check_claims, validation};
#[cfg(feature = "verifier")]
pub(crate) use decode::first_verified;
use keys::AsymmetricKeys;
use mac::HmacVerifier;
pub use mac::key_id;

/// What the token layer is built from (the configuration converts into
/// it: `Config::token_settings`).
#[derive(Clone, Copy)]
pub struct TokenSettings<'a> {
    /// The signing algorithm, the only one that verifies (`ALGORITHM`).
    pub algorithm: Algorithm,
    /// Signs with an HMAC algorithm; with an asymmetric one it only keys
    /// [`TokenService::successor_jti`] (`SECRET_KEY`).
    pub secret_key: &'a str,
    /// Older HMAC secrets that still verify (`SECRET_KEY_PREVIOUS`).
    pub secret_key_previous: &'a [String],
    /// The key pair of an asymmetric algorithm.
    pub asymmetric_keys: Option<&'a AsymmetricKeys>,
    /// Required `iss`, when set (`JWT_ISSUER`).
    pub issuer: Option<&'a str>,
    /// Required `aud`, when set (`JWT_AUDIENCE`).
    pub audience: Option<&'a str>,
    /// Lifetime of access tokens.
    pub access_ttl: Duration,
    /// Lifetime of refresh tokens.
    pub refresh_ttl: Duration,
}

/// Signs and verifies tokens with the configured algorithm and keys.
#[derive(Clone)]
pub struct TokenService {
    algorithm: Algorithm,
    kid: String,
    encoding: EncodingKey,
    decoding: Vec<(String, DecodingKey)>,
    /// The same secrets as `decoding`, keyed once, for the HMAC algorithms.
    hmac: Vec<(String, HmacVerifier)>,
    validation: Validation,
    issuer: Option<String>,
    audience: Option<String>,
    access_ttl: Duration,
    refresh_ttl: Duration,
    /// Keys [`TokenService::successor_jti`]; derived from `SECRET_KEY`.
    successor_key: [u8; 64],
    /// The JWK Set of the public keys (empty for HMAC), built once.
    jwks: Arc<serde_json::Value>,
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl TokenService {
    /// Keys and lifetimes from `settings`.
    pub fn new(settings: TokenSettings<'_>) -> Self {
        let validation = validation(settings.algorithm, settings.issuer, settings.audience);
        let (kid, encoding, decoding, hmac, jwks) = match settings.asymmetric_keys {
            Some(keys) => (
                keys.kid().to_string(),
                keys.signing_key().clone(),
                keys.verifying_keys()
                    .iter()
                    .map(|k| (k.kid.clone(), k.key.clone()))
                    .collect(),
                Vec::new(),
                keys.jwks(),
            ),
            None => {
                let secrets: Vec<(String, &[u8])> = std::iter::once(settings.secret_key)
                    .chain(settings.secret_key_previous.iter().map(String::as_str))
                    .map(|k| (key_id(k), k.as_bytes()))
                    .collect();
                (
                    key_id(settings.secret_key),
                    EncodingKey::from_secret(settings.secret_key.as_bytes()),
                    secrets
                        .iter()
                        .map(|(kid, k)| (kid.clone(), DecodingKey::from_secret(k)))
                        .collect(),
                    secrets
                        .iter()
                        .filter_map(|(kid, k)| {
                            Some((kid.clone(), HmacVerifier::new(settings.algorithm, k)?))
                        })
                        .collect(),
                    serde_json::json!({ "keys": [] }),
                )
            }
        };
        Self {
            algorithm: settings.algorithm,
            kid,
            encoding,
            decoding,
            hmac,
            validation,
            issuer: settings.issuer.map(str::to_string),
            audience: settings.audience.map(str::to_string),
            access_ttl: settings.access_ttl,
            refresh_ttl: settings.refresh_ttl,
            // With an asymmetric algorithm `SECRET_KEY` signs nothing: it only
            // keys this.
            successor_key: sha2::Sha512::digest(
                format!("portcullis-refresh-successor:{}", settings.secret_key).as_bytes(),
            )
            .into(),
            jwks: Arc::new(jwks),
        }
    }

    /// The signing algorithm, the only one that verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The `kid` of the signing key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Lifetime of access tokens, in seconds (the `expires_in` of responses).
    pub fn access_ttl_secs(&self) -> i64 {
        self.access_ttl.as_secs() as i64
    }

    /// Lifetime of refresh tokens, in seconds.
    pub fn refresh_ttl_secs(&self) -> i64 {
        self.refresh_ttl.as_secs() as i64
    }

    /// The JSON Web Key Set of the public keys that verify (RFC 7517), each
    /// with `kid`, `alg` and `use: "sig"`: empty for the HMAC algorithms.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::Value::clone(&self.jwks)
    }
}
