//! Operations endpoints: health, readiness, metrics and the JWKS.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use super::response::Envelope;
use crate::error::{Error, Result};

/// `GET /healthz`: the process is alive.
pub async fn healthz() -> Response {
    Envelope::ok(json!({"status": "ok"})).into_response()
}

/// `GET /readyz`: the database answers, else 503.
pub async fn readyz(State(state): State<AppState>) -> Result<Response> {
    if state.store.ping().await {
        Ok(Envelope::ok(json!({"status": "ready", "database": "ok"})).into_response())
    } else {
        Err(Error::Unavailable)
    }
}

/// `GET /metrics`: Prometheus text, names prefixed `portcullis_`.
pub async fn metrics() -> Response {
    let mut response = crate::telemetry::prometheus().render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// `GET /.well-known/jwks.json`: the public keys (empty for the HMAC
/// algorithms). The body is the SPEC's envelope and, at the same time, a
/// valid RFC 7517 JWK Set: `keys` is repeated at the top level, where JWKS
/// clients (PyJWT's `PyJWKClient`, jose) look, and RFC 7517 §5 lets them
/// ignore the other members.
pub async fn jwks(State(state): State<AppState>) -> Response {
    let set = state.tokens.jwks();
    let body = json!({ "success": true, "data": set, "keys": set["keys"] });
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}
