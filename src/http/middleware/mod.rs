//! Cross-cutting middleware: request ids, request logs and metrics and panic
//! recovery ([`observe`]), the envelope guard for framework rejections
//! ([`defaults`]), CORS, and the client's IP behind trusted proxies.

mod defaults;
mod observe;

pub use defaults::{DefaultsFuture, PortcullisDefaults, PortcullisDefaultsLayer};
pub use observe::{Observe, ObserveFuture, ObserveLayer};

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderName, HeaderValue, Method, header};
use tower::util::MapRequestLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::extract::ClientIp;
use crate::config::Config;
use crate::domain::TrustedProxies;

/// The header carrying the request id.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request id of the current request, in the request's extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The middleware of the main listener: the client IP behind trusted
/// proxies, CORS, then [`Observe`] (request ids, logs, metrics, panic
/// recovery) outermost.
pub(super) fn wrap(router: Router, config: &Config) -> Router {
    let mut router = router;
    if !config.trusted_proxies.is_empty() {
        let proxies = config.trusted_proxies.clone();
        router = router.layer(MapRequestLayer::new(move |req: Request| {
            client_ip(&proxies, req)
        }));
    }
    if !config.cors_origins.is_empty() {
        // `*` (any origin) cannot go with credentials; listed origins may.
        let any = config.cors_origins.iter().any(|o| o == "*");
        let allowed = if any {
            AllowOrigin::any()
        } else {
            AllowOrigin::list(
                config
                    .cors_origins
                    .iter()
                    .filter_map(|o| HeaderValue::from_str(o).ok()),
            )
        };
        router = router.layer(
            CorsLayer::new()
                .allow_origin(allowed)
                .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
                .allow_credentials(!any)
                .expose_headers([REQUEST_ID.clone()]),
        );
    }
    // Outermost, so that every answer (CORS preflights included) is
    // measured and carries a request id.
    router.layer(ObserveLayer)
}

/// The middleware of the metrics listener: request ids, logs, metrics and
/// panic recovery. No CORS: no browser page needs the metrics.
pub(super) fn wrap_ops(router: Router) -> Router {
    router.layer(ObserveLayer)
}

/// For a request from a trusted proxy, takes the client's IP from
/// `X-Forwarded-For` (see [`TrustedProxies::client_ip`]); sessions, security
/// events and rate limits then use it through [`crate::domain::ClientInfo`].
fn client_ip(proxies: &TrustedProxies, mut req: Request) -> Request {
    if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>() {
        let forwarded = req
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok());
        let ip = proxies.client_ip(peer.ip(), forwarded);
        req.extensions_mut().insert(ClientIp(ip));
    }
    req
}
