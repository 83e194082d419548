//! How a [`JwksVerifier`] is set up, and its HTTP(S) client.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::Uri;

use super::{Inner, JwksVerifier, KeyCache};
use crate::token::keys::is_asymmetric;
use jsonwebtoken::Algorithm;

/// How a [`JwksVerifier`] is set up; from [`JwksVerifier::builder`].
#[derive(Debug, Clone)]
pub struct VerifierBuilder {
    url: String,
    algorithm: Option<Algorithm>,
    issuer: Option<String>,
    audience: Option<String>,
    tls: Option<rustls::ClientConfig>,
    refetch_interval: Duration,
    default_max_age: Duration,
    cache_bounds: (Duration, Duration),
    timeout: Duration,
    max_stale: Duration,
    allow_http: bool,
}

impl VerifierBuilder {
    /// The defaults, for the JWKS at `url`.
    pub(super) fn new(url: String) -> Self {
        Self {
            url,
            algorithm: None,
            issuer: None,
            audience: None,
            tls: None,
            refetch_interval: Duration::from_secs(10),
            default_max_age: Duration::from_secs(300),
            cache_bounds: (Duration::from_secs(10), Duration::from_secs(3600)),
            timeout: Duration::from_secs(5),
            max_stale: Duration::from_secs(3600),
            allow_http: false,
        }
    }

    /// The algorithm Portcullis signs with (its `ALGORITHM`): RS256, ES256
    /// or EdDSA. Set it: then nothing else verifies, whatever the keys or
    /// tokens claim. Unset, each key verifies with the `alg` the JWKS gives
    /// it (the asymmetric ones only).
    pub fn algorithm(mut self, algorithm: Algorithm) -> Self {
        self.algorithm = Some(algorithm);
        self
    }

    /// Portcullis's `JWT_ISSUER`: required in every token when set.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Portcullis's `JWT_AUDIENCE`: required in every token when set.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// The TLS configuration of the HTTPS client that fetches the keys (for
    /// other root certificates); by default rustls with the Mozilla roots.
    pub fn tls_config(mut self, tls: rustls::ClientConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The least time between two fetches made for an unknown `kid`, or
    /// after a failed fetch (default 10 s).
    pub fn refetch_interval(mut self, interval: Duration) -> Self {
        self.refetch_interval = interval;
        self
    }

    /// How long the keys are kept when the answer has no `max-age` (default
    /// 5 minutes).
    pub fn default_max_age(mut self, max_age: Duration) -> Self {
        self.default_max_age = max_age;
        self
    }

    /// The shortest and longest times the keys are kept, whatever
    /// `Cache-Control` says (default 10 s and 1 hour): `no-store` or
    /// `max-age=0` means the shortest.
    pub fn cache_bounds(mut self, shortest: Duration, longest: Duration) -> Self {
        self.cache_bounds = (shortest, longest.max(shortest));
        self
    }

    /// How long one fetch of the keys may take (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long past their refresh time the keys keep verifying while every
    /// fetch fails (default 1 hour); after that, tokens are answered 503
    /// until a fetch succeeds.
    pub fn max_stale(mut self, max_stale: Duration) -> Self {
        self.max_stale = max_stale;
        self
    }

    /// Accepts an `http://` JWKS URL, whose keys anyone on the path could
    /// replace: for tests or a Portcullis on the same host only. Without
    /// it, [`VerifierBuilder::build`] refuses any URL but `https://`.
    pub fn allow_insecure_http(mut self) -> Self {
        self.allow_http = true;
        self
    }

    /// The verifier. It fetches the keys at its first use.
    pub fn build(self) -> anyhow::Result<JwksVerifier> {
        if let Some(algorithm) = self.algorithm {
            anyhow::ensure!(
                is_asymmetric(algorithm),
                "the verifier checks RS256, ES256 or EdDSA tokens, not {algorithm:?}"
            );
        }
        let url: Uri = self
            .url
            .parse()
            .map_err(|e| anyhow::anyhow!("the JWKS URL {:?}: {e}", self.url))?;
        anyhow::ensure!(
            matches!(url.scheme_str(), Some("https" | "http")) && url.host().is_some(),
            "the JWKS URL {:?} is not an http(s) URL",
            self.url
        );
        anyhow::ensure!(
            url.scheme_str() == Some("https") || self.allow_http,
            "the JWKS URL {:?} is not https: keys fetched over http could be replaced in transit \
             (call allow_insecure_http() to accept it, for tests or the same host only)",
            self.url
        );
        let client = http_client(self.tls, self.allow_http)?;
        Ok(JwksVerifier {
            inner: Arc::new(Inner {
                url,
                algorithm: self.algorithm,
                issuer: self.issuer,
                audience: self.audience,
                client,
                refetch_interval: self.refetch_interval,
                default_max_age: self.default_max_age,
                cache_bounds: self.cache_bounds,
                timeout: self.timeout,
                max_stale: self.max_stale,
                keys: RwLock::new(Arc::new(KeyCache::empty())),
                fetching: tokio::sync::Mutex::new(None),
            }),
        })
    }
}

/// The HTTP client of the verifier.
pub(super) type HttpClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Empty<Bytes>,
>;

/// An HTTPS client with `tls`, by default rustls (the `ring` backend that
/// the rest of Portcullis's TLS uses) trusting the Mozilla roots; it also
/// speaks plain HTTP when `allow_http`.
fn http_client(tls: Option<rustls::ClientConfig>, allow_http: bool) -> anyhow::Result<HttpClient> {
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match tls {
        Some(tls) => builder.with_tls_config(tls),
        None => builder.with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())?,
    };
    let connector = if allow_http {
        builder.https_or_http().enable_http1().build()
    } else {
        builder.https_only().enable_http1().build()
    };
    Ok(
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(connector),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_asymmetric_algorithms_are_accepted() {
        assert!(
            JwksVerifier::builder("https://127.0.0.1:9/jwks.json")
                .algorithm(Algorithm::HS256)
                .build()
                .is_err()
        );
    }
}
