//! What Portcullis's own routes answer with, whatever the handler did: the
//! early 413, the envelope for framework rejections, and `no-store` on JSON.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

use crate::error::Error;

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

/// Bodies announced up to this size are read up to [`crate::http::BODY_LIMIT`]
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
