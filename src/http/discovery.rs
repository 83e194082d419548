//! The discovery documents of Sign in with Portcullis (SPEC §13):
//! `/.well-known/openid-configuration` (OpenID Connect Discovery 1.0) and
//! `/.well-known/oauth-authorization-server` (RFC 8414), one document
//! served at both, at the root. Written as those specifications say, not
//! in the envelope (SPEC §3).
//!
//! The issuer is `JWT_ISSUER`, else `APP_URL`; the endpoints are
//! `APP_URL` + `AUTH_ROUTE_PREFIX` + `/authorize`, `/token`, …. A client
//! that derives the document's address from the issuer (as RFC 8414 and
//! OpenID Connect Discovery do) finds it when the issuer is the server's
//! root URL, as it is by default; a `JWT_ISSUER` with a path or another
//! host needs its own proxying.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;
use crate::config::Config;
use crate::token::keys::{algorithm_name, is_asymmetric};

/// The scopes a client may ask for.
pub const SCOPES: [&str; 4] = ["openid", "email", "profile", "offline_access"];

/// The issuer that discovery names and ID tokens carry: `JWT_ISSUER`, else
/// `APP_URL`.
pub fn issuer(config: &Config) -> String {
    config
        .jwt_issuer
        .clone()
        .unwrap_or_else(|| config.app_url.clone())
}

/// The algorithm ID tokens are signed with: the configured one when it is
/// asymmetric, else RS256 (with `OIDC_PRIVATE_KEY_FILE`).
pub fn id_token_algorithm(config: &Config) -> &'static str {
    if is_asymmetric(config.algorithm) {
        algorithm_name(config.algorithm)
    } else {
        "RS256"
    }
}

/// The metadata document of this server.
pub fn document(config: &Config) -> Value {
    let base = format!("{}{}", config.app_url, config.route_prefix);
    json!({
        "issuer": issuer(config),
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "userinfo_endpoint": format!("{base}/userinfo"),
        "revocation_endpoint": format!("{base}/revoke"),
        "end_session_endpoint": format!("{base}/end-session"),
        "jwks_uri": format!("{}/.well-known/jwks.json", config.app_url),
        "scopes_supported": SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [id_token_algorithm(config)],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "claims_supported": [
            "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "amr", "acr",
            "email", "email_verified", "name",
        ],
        "acr_values_supported": ["aal1", "aal2"],
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
    })
}

/// The document as an answer: JSON, cacheable for 5 minutes, readable by
/// any origin (it is public, and browsers' OpenID libraries fetch it).
fn answer(config: &Config) -> Response {
    let mut response = Json(document(config)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

/// OpenID Connect discovery.
///
/// The OpenID Provider metadata (OpenID Connect Discovery 1.0), not in the
/// envelope. The authorization code flow with PKCE S256 only.
#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "operations",
    responses((status = 200, description = "The OpenID Provider metadata", body = Object)))]
pub async fn openid_configuration(State(state): State<AppState>) -> Response {
    answer(&state.config)
}

/// OAuth 2.0 authorization server metadata.
///
/// RFC 8414: the same document as `/.well-known/openid-configuration`.
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = "operations",
    responses((status = 200, description = "The authorization server metadata (RFC 8414)", body = Object)))]
pub async fn oauth_authorization_server(State(state): State<AppState>) -> Response {
    answer(&state.config)
}
