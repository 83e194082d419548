//! Tokens looked at from outside Portcullis.

use std::collections::BTreeMap;

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use portcullis::Config;
use portcullis::token::TokenService;
use serde_json::Value;

use super::SECRET;

// ---- tokens ----------------------------------------------------------------------

/// Base64url without padding.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Header and payload of a compact JWS, without checking anything.
pub fn jwt_parts(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let mut part = || {
        let raw = parts.next().expect("JWS part");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(raw)
            .expect("base64url part");
        serde_json::from_slice::<Value>(&bytes).expect("JSON part")
    };
    let header = part();
    let payload = part();
    (header, payload)
}

/// The `sid` claim of a token.
pub fn sid_of(token: &str) -> String {
    jwt_parts(token).1["sid"]
        .as_str()
        .expect("sid claim")
        .to_string()
}

/// Verifies a token with `jsonwebtoken` directly, knowing only the secret
/// and HS256, outside Portcullis's token service; its payload. (PyJWT, an
/// implementation that shares no code with Portcullis, checks them in
/// `tests/interop.rs`.)
pub fn verify_independently(token: &str) -> jsonwebtoken::errors::Result<Value> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp", "sub"]);
    jsonwebtoken::decode::<Value>(
        token,
        &DecodingKey::from_secret(SECRET.as_bytes()),
        &validation,
    )
    .map(|d| d.claims)
}

/// A token service configured by `vars` (the test secret unless overridden).
pub fn token_service(vars: &[(&str, &str)]) -> TokenService {
    let mut config: BTreeMap<String, String> = BTreeMap::new();
    config.insert("SECRET_KEY".into(), SECRET.into());
    for (k, v) in vars {
        config.insert((*k).to_string(), (*v).to_string());
    }
    TokenService::from_config(&Config::from_vars(config).expect("token config"))
}
