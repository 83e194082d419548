//! Cross-cutting middleware: request ids, request logs and metrics, the
//! envelope guard for framework rejections, panic recovery, CORS, and the
//! client's IP behind trusted proxies.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::util::MapRequestLayer;
use tower::{Layer, Service};
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::extract::ClientIp;
use crate::config::Config;
use crate::domain::TrustedProxies;
use crate::error::Error;

/// The header carrying the request id.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request id of the current request, in the request's extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn acceptable_request_id(value: &HeaderValue) -> Option<String> {
    let s = value.to_str().ok()?;
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=".contains(&b));
    ok.then(|| s.to_string())
}

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

/// The answer to a request whose handler panicked: 500 `INTERNAL_ERROR` in
/// the envelope, and the panic logged (its message is not: it may quote data).
fn panicked() -> Response {
    tracing::error!("a handler panicked");
    Error::Internal(anyhow::anyhow!("handler panicked")).into_response()
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

/// Adds [`Observe`] around a service.
#[derive(Debug, Clone, Copy)]
pub struct ObserveLayer;

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Observe { inner }
    }
}

/// The outermost middleware, written out rather than built with
/// `axum::middleware::from_fn` (which boxes the service and the future of
/// every request: measured with callgrind, a third of what `/healthz` cost).
/// For each request it assigns the request id (the caller's, when it is
/// acceptable), runs the handler inside a `request` span, turns a panic into
/// 500 `INTERNAL_ERROR`, logs and measures the answer, and marks it with the
/// request id and `X-Content-Type-Options: nosniff`.
#[derive(Debug, Clone)]
pub struct Observe<S> {
    inner: S,
}

impl<S> Service<Request> for Observe<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ObserveFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let request_id = req
            .headers()
            .get(&REQUEST_ID)
            .and_then(acceptable_request_id)
            .unwrap_or_else(new_request_id);
        let route = req.extensions().get::<MatchedPath>().cloned();
        let method = metric_method(req.method());
        let span = tracing::info_span!(
            "request",
            request_id = %request_id,
            method = method,
            route = route.as_ref().map_or("unmatched", MatchedPath::as_str),
        );
        req.extensions_mut().insert(RequestId(request_id.clone()));
        let started = Instant::now();
        let inner = {
            let _entered = span.enter();
            std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(req)))
        };
        ObserveFuture {
            inner: inner.ok(),
            span,
            request_id: Some(request_id),
            route,
            method,
            started,
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`Observe`]: the handler's, inside its span and
    /// `catch_unwind`; `inner` is `None` when the call itself panicked.
    pub struct ObserveFuture<F> {
        #[pin]
        inner: Option<F>,
        span: tracing::Span,
        request_id: Option<String>,
        route: Option<MatchedPath>,
        method: &'static str,
        started: Instant,
    }
}

impl<F> Future for ObserveFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = {
            let _entered = this.span.enter();
            match this.inner.as_pin_mut() {
                Some(inner) => {
                    match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
                        Ok(Poll::Pending) => return Poll::Pending,
                        Ok(Poll::Ready(Ok(response))) => response,
                        Ok(Poll::Ready(Err(never))) => match never {},
                        Err(_) => panicked(),
                    }
                }
                None => panicked(),
            }
        };
        let status = response.status();
        let elapsed = this.started.elapsed();
        let route = this.route.as_ref().map_or("unmatched", MatchedPath::as_str);
        record_request(route, this.method, status.as_u16(), elapsed);
        this.span.in_scope(|| {
            if status.is_server_error() {
                tracing::warn!(
                    status = status.as_u16(),
                    elapsed_ms = elapsed.as_millis() as u64,
                    "request failed"
                );
            } else {
                tracing::debug!(
                    status = status.as_u16(),
                    elapsed_ms = elapsed.as_millis() as u64,
                    "request"
                );
            }
        });
        let headers = response.headers_mut();
        if let Some(id) = this.request_id.take()
            && let Ok(value) = HeaderValue::try_from(id)
        {
            headers.insert(REQUEST_ID.clone(), value);
        }
        // No answer may be sniffed into another type (an error body as HTML).
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        Poll::Ready(Ok(response))
    }
}

/// A new request id: a v4 UUID from the thread's CSPRNG (rand's, seeded
/// from the system), not a system call per request as `Uuid::new_v4` makes.
fn new_request_id() -> String {
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .hyphenated()
        .encode_lower(&mut text)
        .to_owned()
}

/// The metric handles of one route: its duration histogram, and its
/// request counters by method and status.
struct RouteMetrics {
    duration: metrics::Histogram,
    requests: Vec<(&'static str, u16, metrics::Counter)>,
}

thread_local! {
    /// Each thread's handles, so that counting a request registers nothing
    /// and allocates nothing once its route, method and status were seen
    /// (routes, methods and statuses are few: the key space is bounded).
    static ROUTE_METRICS: std::cell::RefCell<std::collections::HashMap<String, RouteMetrics>> =
        std::cell::RefCell::default();
}

/// Counts a request in `portcullis_http_requests_total{route,method,status}`
/// and records its time in `portcullis_http_request_duration_seconds{route}`.
fn record_request(route: &str, method: &'static str, status: u16, elapsed: std::time::Duration) {
    ROUTE_METRICS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if !cache.contains_key(route) {
            let duration = metrics::histogram!(
                "portcullis_http_request_duration_seconds",
                "route" => route.to_string()
            );
            cache.insert(
                route.to_string(),
                RouteMetrics {
                    duration,
                    requests: Vec::new(),
                },
            );
        }
        let Some(entry) = cache.get_mut(route) else {
            return;
        };
        entry.duration.record(elapsed.as_secs_f64());
        if let Some((_, _, counter)) = entry
            .requests
            .iter()
            .find(|(m, s, _)| *m == method && *s == status)
        {
            counter.increment(1);
            return;
        }
        let counter = metrics::counter!(
            "portcullis_http_requests_total",
            "route" => route.to_string(),
            "method" => method,
            "status" => status.to_string()
        );
        counter.increment(1);
        entry.requests.push((method, status, counter));
    });
}

/// The `method` label of a request metric: a standard method's name, or
/// `OTHER`, so that clients inventing methods cannot grow the metrics
/// without bound.
fn metric_method(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "OTHER",
    }
}

/// Adds [`PortcullisDefaults`] around a service.
#[derive(Debug, Clone, Copy)]
pub struct PortcullisDefaultsLayer;

impl<S> Layer<S> for PortcullisDefaultsLayer {
    type Service = PortcullisDefaults<S>;
    fn layer(&self, inner: S) -> Self::Service {
        PortcullisDefaults { inner }
    }
}

/// What every request to Portcullis's own routes and every answer from them
/// gets (an application's routes answer as the application decides):
///
/// - A request whose `Content-Length` announces a body of more than 1 MiB
///   is refused at once with 413 `PAYLOAD_TOO_LARGE`: it would be refused
///   once 64 KiB of it had arrived, so there is no point in waiting for it
///   (a client announcing gigabytes and sending a trickle would otherwise
///   hold the connection until the body deadline). A body announced between
///   64 KiB and 1 MiB is still read up to the limit first, so that a client
///   that sent all of a slightly oversized body gets its 413 rather than a
///   connection reset by unread data. Bodies without a length (chunked) are
///   cut off by the extractors at the limit.
/// - Framework rejections (plain text or empty) are put in the envelope.
/// - JSON that says nothing else is marked `Cache-Control: no-store`: it
///   carries accounts, sessions and tokens that no cache should keep.
#[derive(Debug, Clone)]
pub struct PortcullisDefaults<S> {
    inner: S,
}

/// Bodies announced up to this size are read up to [`super::BODY_LIMIT`]
/// before the 413, as any body is; larger ones are refused unread.
const EAGER_REFUSAL_OVER: u64 = 1024 * 1024;

impl<S> Service<Request> for PortcullisDefaults<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = DefaultsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let announced = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if announced.is_some_and(|len| len > EAGER_REFUSAL_OVER) {
            return DefaultsFuture {
                inner: None,
                refused: Some(Error::PayloadTooLarge.into_response()),
            };
        }
        DefaultsFuture {
            inner: Some(self.inner.call(req)),
            refused: None,
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`PortcullisDefaults`]: the handler's, or a refusal
    /// made before the handler ran (then `inner` is `None`).
    pub struct DefaultsFuture<F> {
        #[pin]
        inner: Option<F>,
        refused: Option<Response>,
    }
}

impl<F> Future for DefaultsFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = match this.inner.as_pin_mut() {
            Some(inner) => match inner.poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(response)) => response,
                Poll::Ready(Err(never)) => match never {},
            },
            None => this.refused.take().unwrap_or_else(|| {
                Error::Internal(anyhow::anyhow!("polled after completion")).into_response()
            }),
        };
        Poll::Ready(Ok(finish(response)))
    }
}

/// The envelope for framework rejections, and `no-store` on JSON.
fn finish(response: Response) -> Response {
    let mut response = envelope_guard(response);
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json && !response.headers().contains_key(header::CACHE_CONTROL) {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Replaces a plain-text or empty error body (from axum's own rejections)
/// with the envelope of the matching error.
fn envelope_guard(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/json") || content_type.starts_with("text/html") {
        return response;
    }
    let error = match status {
        StatusCode::NOT_FOUND => Error::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => Error::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => Error::PayloadTooLarge,
        StatusCode::REQUEST_TIMEOUT => Error::RequestTimeout,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Error::UnsupportedMediaType("application/json"),
        StatusCode::BAD_REQUEST => Error::InvalidJson,
        StatusCode::UNAUTHORIZED => Error::Unauthorized,
        StatusCode::SERVICE_UNAVAILABLE => Error::Unavailable,
        StatusCode::UNPROCESSABLE_ENTITY => Error::Validation(vec![]),
        other => Error::Internal(anyhow::anyhow!("unenveloped {other} response")),
    };
    let allow = response.headers().get(header::ALLOW).cloned();
    let mut replaced = error.into_response();
    if let Some(allow) = allow {
        replaced.headers_mut().insert(header::ALLOW, allow);
    }
    replaced
}
