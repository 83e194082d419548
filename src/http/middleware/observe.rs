//! The outermost middleware: request ids, the request's span and log line,
//! request metrics, and panic recovery.

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

use super::{REQUEST_ID, RequestId};
use crate::error::Error;

fn acceptable_request_id(value: &HeaderValue) -> Option<String> {
    let s = value.to_str().ok()?;
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=".contains(&b));
    ok.then(|| s.to_string())
}

/// The answer to a request whose handler panicked: 500 `INTERNAL_ERROR` in
/// the envelope, and the panic logged (its message is not: it may quote data).
fn panicked() -> Response {
    tracing::error!("a handler panicked");
    Error::Internal(anyhow::anyhow!("handler panicked")).into_response()
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
