//! Operations endpoints: health, readiness, metrics and the JWKS.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::AppState;
use super::openapi::answers::Busy;
use super::response::{Envelope, always_true};
use crate::error::{Error, Result};

/// The data of `GET /healthz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    status: &'static str,
}

/// Liveness.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is alive", body = Envelope<Health>)))]
pub async fn healthz() -> Response {
    Envelope::ok(Health { status: "ok" }).into_response()
}

/// The data of `GET /readyz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`.
    status: &'static str,
    /// `ok`.
    database: &'static str,
}

/// Readiness: the database answers.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready: the database answers", body = Envelope<Readiness>),
        Busy,
    ))]
pub async fn readyz(State(state): State<AppState>) -> Result<Response> {
    if state.store.ping().await {
        Ok(Envelope::ok(Readiness {
            status: "ready",
            database: "ok",
        })
        .into_response())
    } else {
        Err(Error::Unavailable)
    }
}

/// Prometheus metrics.
///
/// Names are prefixed `portcullis_`.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn metrics() -> Response {
    let mut response = crate::telemetry::prometheus().render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// A JWK Set (RFC 7517).
#[derive(Debug, Serialize, ToSchema)]
pub struct KeySet {
    /// The public keys that verify tokens, each with `kid`, `alg` and
    /// `use: "sig"`; empty for the HMAC algorithms.
    #[schema(value_type = Vec<Object>)]
    keys: Value,
}

/// The answer of `GET /.well-known/jwks.json`: the envelope, and at the same
/// time a JWK Set, with `keys` repeated at the top level where JWKS clients
/// look (RFC 7517 §5 lets them ignore the other members).
#[derive(Debug, Serialize, ToSchema)]
pub struct JwksAnswer {
    /// Always `true`.
    #[schema(schema_with = always_true)]
    success: bool,
    /// The key set.
    data: KeySet,
    /// The keys again.
    #[schema(value_type = Vec<Object>)]
    keys: Value,
}

/// Public keys (empty for HMAC algorithms).
///
/// The keys that verify tokens, for JWKS clients (PyJWT's `PyJWKClient`,
/// jose); cached for at most 5 minutes.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "operations",
    responses((status = 200, description = "A JWK Set in the envelope", body = JwksAnswer)))]
pub async fn jwks(State(state): State<AppState>) -> Response {
    let keys = state.tokens.jwks()["keys"].clone();
    let body = JwksAnswer {
        success: true,
        data: KeySet { keys: keys.clone() },
        keys,
    };
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}
