//! Checking Portcullis access tokens in *another* Rust service, with nothing
//! but the public keys of its JWKS (`ALGORITHM=RS256|ES256|EdDSA`). Behind
//! the `verifier` cargo feature, since it brings an HTTPS client (hyper with
//! rustls; the Mozilla root certificates unless you give a TLS configuration
//! of your own).
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use portcullis::verifier::{Algorithm, JwksVerifier, VerifiedClaims};
//!
//! async fn orders(VerifiedClaims(claims): VerifiedClaims) -> String {
//!     format!("orders of user {}", claims.sub)
//! }
//!
//! # async fn run() -> anyhow::Result<()> {
//! let verifier = JwksVerifier::builder("https://auth.example.com/.well-known/jwks.json")
//!     .algorithm(Algorithm::EdDSA) // what Portcullis's ALGORITHM is
//!     .issuer("https://auth.example.com") // JWT_ISSUER, if set there
//!     .audience("orders") // JWT_AUDIENCE, if set there
//!     .build()?;
//! let app: Router = Router::new()
//!     .route("/orders", get(orders))
//!     .with_state(verifier); // or implement `FromRef<YourState>` for JwksVerifier
//! # Ok(()) }
//! ```
//!
//! [`JwksVerifier::verify`] checks what Portcullis checks of an access token
//! (the same code): the signature with the configured algorithm only (never
//! `none`, never an HMAC algorithm, whatever the token's header says), `exp`
//! with no leeway, `type: "access"`, `sid`, `jti`, a numeric `sub`, and the
//! issuer and audience when they are set. Failures are Portcullis's own
//! errors, answered in its envelope by the [`VerifiedClaims`] extractor: 401
//! `UNAUTHORIZED` / `INVALID_TOKEN` / `TOKEN_EXPIRED`, or 503 while the keys
//! cannot be fetched at all.
//!
//! **It does not see revocations.** A service that verifies tokens itself
//! trusts an access token until it expires, even after a logout, a password
//! reset or a deactivation: keep `ACCESS_TOKEN_EXPIRE_MINUTES` short, or
//! call Portcullis's `/me` where a revoked session must be refused at once.
//!
//! The keys are fetched once and cached as the JWKS answer's
//! `Cache-Control: max-age` says (within [`VerifierBuilder::cache_bounds`],
//! less its `Age`). A token with a `kid` the cache does not know makes the
//! verifier fetch the keys again at once, so that a key rotation never
//! causes a wave of 401s, but at most once per
//! [`VerifierBuilder::refetch_interval`], so that tokens with made-up `kid`s
//! cannot make it hammer Portcullis. Concurrent requests share one fetch.
//! When a fetch fails, the keys already known keep verifying and the fetch
//! is retried after the same interval, but for an hour at most
//! ([`VerifierBuilder::max_stale`]) past the time they were due to be
//! refreshed: from then on every token is answered 503
//! `SERVICE_UNAVAILABLE` until a fetch succeeds (a key Portcullis has
//! withdrawn, after a leak say, is not trusted forever).
//!
//! The JWKS URL must be `https://`: keys fetched in the clear could be
//! replaced by anyone on the path. [`VerifierBuilder::allow_insecure_http`]
//! accepts `http://` (a test, a sidecar on the same host), and only when
//! it is called.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Uri, header};
pub use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::{JwkSet, PublicKeyUse};
use jsonwebtoken::{DecodingKey, Validation, errors::ErrorKind};

use crate::error::{Error, Result};
use crate::token::keys::is_asymmetric;
use crate::token::{Claims, MAX_TOKEN_LEN, TokenType, check_claims, validation};

/// The largest JWKS answer read.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

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
type HttpClient = hyper_util::client::legacy::Client<
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

/// Verifies Portcullis access tokens against its JWKS URL; cheap to clone
/// (the key cache is shared). See the [module](self) documentation.
#[derive(Clone)]
pub struct JwksVerifier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for JwksVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksVerifier")
            .field("url", &self.inner.url)
            .field("algorithm", &self.inner.algorithm)
            .field("issuer", &self.inner.issuer)
            .field("audience", &self.inner.audience)
            .finish_non_exhaustive()
    }
}

struct Inner {
    url: Uri,
    algorithm: Option<Algorithm>,
    issuer: Option<String>,
    audience: Option<String>,
    client: HttpClient,
    refetch_interval: Duration,
    default_max_age: Duration,
    cache_bounds: (Duration, Duration),
    timeout: Duration,
    max_stale: Duration,
    /// The keys known now; replaced whole by a fetch.
    keys: RwLock<Arc<KeyCache>>,
    /// Held while fetching (one fetch at a time); when the last fetch began.
    fetching: tokio::sync::Mutex<Option<Instant>>,
}

/// One key of the JWKS: its `kid`, the algorithm it verifies, the key.
#[derive(Debug, Clone)]
struct CachedKey {
    kid: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
    validation: Validation,
}

/// The keys of the last successful fetch, until when they are fresh, and
/// until when they are trusted at all while fetches fail.
#[derive(Debug)]
struct KeyCache {
    keys: Vec<CachedKey>,
    /// `None`: never fetched.
    fresh_until: Option<Instant>,
    /// The successful fetch's `fresh_until` plus the builder's `max_stale`.
    trusted_until: Option<Instant>,
}

impl KeyCache {
    fn empty() -> Self {
        Self {
            keys: Vec::new(),
            fresh_until: None,
            trusted_until: None,
        }
    }

    fn is_trusted(&self, now: Instant) -> bool {
        self.trusted_until.is_some_and(|until| now < until)
    }

    fn is_fresh(&self, now: Instant) -> bool {
        self.fresh_until.is_some_and(|until| now < until)
    }

    /// The keys that may verify a token whose header says `alg` and `kid`.
    fn candidates<'a>(
        &'a self,
        alg: Algorithm,
        kid: Option<&'a str>,
    ) -> impl Iterator<Item = &'a CachedKey> + 'a {
        self.keys.iter().filter(move |k| {
            k.algorithm == alg && kid.is_none_or(|kid| k.kid.as_deref() == Some(kid))
        })
    }
}

/// Why the keys are fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    /// Never fetched, or past their `max-age`.
    Stale,
    /// A token names a `kid` the cache does not know.
    UnknownKid,
}

impl JwksVerifier {
    /// A verifier of the tokens whose keys `jwks_url` publishes (Portcullis's
    /// `https://…/.well-known/jwks.json`).
    pub fn builder(jwks_url: impl Into<String>) -> VerifierBuilder {
        VerifierBuilder {
            url: jwks_url.into(),
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

    /// The claims of the access token `token`, if Portcullis would accept
    /// its signature and claims (its session is not checked: see the
    /// [module](self) documentation).
    pub async fn verify(&self, token: &str) -> Result<Claims> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(Error::InvalidToken);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| Error::InvalidToken)?;
        let alg = header.alg;
        if !is_asymmetric(alg) || self.inner.algorithm.is_some_and(|a| a != alg) {
            return Err(Error::InvalidToken);
        }
        let kid = header.kid.as_deref();
        let mut cache = self.cache();
        if !cache.is_fresh(Instant::now()) {
            cache = self.refetch(&cache, Reason::Stale).await?;
        }
        if kid.is_some() && cache.candidates(alg, kid).next().is_none() {
            cache = self.refetch(&cache, Reason::UnknownKid).await?;
        }
        let mut outcome = Err(Error::InvalidToken);
        for key in cache.candidates(alg, kid) {
            match jsonwebtoken::decode::<Claims>(token, &key.key, &key.validation) {
                Ok(data) => {
                    outcome = Ok(data.claims);
                    break;
                }
                Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => {
                    outcome = Err(Error::TokenExpired);
                    break;
                }
                Err(_) => {}
            }
        }
        let claims = outcome?;
        check_claims(&claims, TokenType::Access)?;
        Ok(claims)
    }

    /// The `kid`s of the keys known now (empty before the first fetch).
    pub fn known_kids(&self) -> Vec<String> {
        self.cache()
            .keys
            .iter()
            .filter_map(|k| k.kid.clone())
            .collect()
    }

    fn cache(&self) -> Arc<KeyCache> {
        match self.inner.keys.read() {
            Ok(keys) => keys.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn replace_cache(&self, cache: Arc<KeyCache>) {
        match self.inner.keys.write() {
            Ok(mut keys) => *keys = cache,
            Err(poisoned) => *poisoned.into_inner() = cache,
        }
    }

    /// Fetches the keys for `reason`, unless another request did while this
    /// one waited (`seen` is the cache it saw), or the rate limit says no;
    /// the cache to use then. Only a failure with no key known at all is an
    /// error (503): otherwise the known keys stay in use.
    async fn refetch(&self, seen: &Arc<KeyCache>, reason: Reason) -> Result<Arc<KeyCache>> {
        let mut last_fetch = self.inner.fetching.lock().await;
        let current = self.cache();
        let now = Instant::now();
        if !Arc::ptr_eq(&current, seen) && current.fresh_until.is_some() {
            return Ok(current); // fetched by someone else meanwhile
        }
        let too_soon =
            last_fetch.is_some_and(|at| now.duration_since(at) < self.inner.refetch_interval);
        match reason {
            Reason::Stale if current.is_fresh(now) => return Ok(current),
            // Nothing to verify with and a fetch just failed: no new fetch
            // for every request while Portcullis cannot answer.
            Reason::Stale if too_soon && !current.is_trusted(now) => {
                return Err(Error::Unavailable);
            }
            Reason::UnknownKid if too_soon => return Ok(current),
            _ => {}
        }
        *last_fetch = Some(now);
        match self.fetch().await {
            Ok(fresh) => {
                let fresh = Arc::new(fresh);
                self.replace_cache(fresh.clone());
                Ok(fresh)
            }
            Err(why) => {
                tracing::warn!(url = %self.inner.url, error = %why, "cannot fetch the JWKS");
                let Some(trusted_until) = current.trusted_until.filter(|until| now < *until) else {
                    if current.trusted_until.is_some() {
                        tracing::warn!(
                            url = %self.inner.url,
                            "the JWKS could not be refreshed for too long: its keys are no longer trusted"
                        );
                    }
                    return Err(Error::Unavailable);
                };
                // Stale keys keep verifying until a fetch succeeds, or
                // until they are no longer trusted.
                let kept = Arc::new(KeyCache {
                    keys: current.keys.clone(),
                    fresh_until: Some((now + self.inner.refetch_interval).min(trusted_until)),
                    trusted_until: Some(trusted_until),
                });
                self.replace_cache(kept.clone());
                Ok(kept)
            }
        }
    }

    /// One GET of the JWKS: the keys it lists, fresh for as long as its
    /// `Cache-Control` says.
    async fn fetch(&self) -> std::result::Result<KeyCache, String> {
        use http_body_util::BodyExt as _;
        let inner = &self.inner;
        let request = axum::http::Request::get(inner.url.clone())
            .header(header::ACCEPT, "application/json")
            .body(http_body_util::Empty::new())
            .map_err(|e| e.to_string())?;
        let exchange = async {
            let response = inner
                .client
                .request(request)
                .await
                .map_err(|e| format!("{e}: {:?}", std::error::Error::source(&e)))?;
            if !response.status().is_success() {
                return Err(format!("answered {}", response.status()));
            }
            let header = |name| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v: &axum::http::HeaderValue| v.to_str().ok())
                    .map(str::to_string)
            };
            let cache_control = header(header::CACHE_CONTROL);
            let age = header(header::AGE);
            let body = http_body_util::Limited::new(response.into_body(), MAX_JWKS_BYTES)
                .collect()
                .await
                .map_err(|e| format!("reading the key set: {e}"))?
                .to_bytes();
            Ok((cache_control, age, body))
        };
        let (cache_control, age, body) = tokio::time::timeout(inner.timeout, exchange)
            .await
            .map_err(|_| format!("no answer within {:?}", inner.timeout))??;
        let set: JwkSet =
            serde_json::from_slice(&body).map_err(|e| format!("not a JWK Set: {e}"))?;
        let max_age = freshness(
            cache_control.as_deref(),
            age.as_deref(),
            inner.default_max_age,
            inner.cache_bounds,
        );
        let fresh_until = Instant::now() + max_age;
        Ok(KeyCache {
            keys: self.usable_keys(set),
            fresh_until: Some(fresh_until),
            trusted_until: Some(fresh_until + inner.max_stale),
        })
    }

    /// The keys of `set` this verifier may use: for signatures, with an
    /// asymmetric `alg` (the configured one, if set), of a type that fits it.
    fn usable_keys(&self, set: JwkSet) -> Vec<CachedKey> {
        let inner = &self.inner;
        set.keys
            .into_iter()
            .filter_map(|jwk| {
                if jwk
                    .common
                    .public_key_use
                    .as_ref()
                    .is_some_and(|u| *u != PublicKeyUse::Signature)
                {
                    return None;
                }
                let algorithm = Algorithm::try_from(jwk.common.key_algorithm?).ok()?;
                if !is_asymmetric(algorithm) || inner.algorithm.is_some_and(|a| a != algorithm) {
                    return None;
                }
                let key = DecodingKey::from_jwk(&jwk).ok()?;
                if key.family() != algorithm.family() {
                    return None;
                }
                Some(CachedKey {
                    kid: jwk.common.key_id.clone(),
                    algorithm,
                    key,
                    validation: validation(
                        algorithm,
                        inner.issuer.as_deref(),
                        inner.audience.as_deref(),
                    ),
                })
            })
            .collect()
    }
}

/// How long a JWKS answer stays fresh: its `Cache-Control` `max-age`
/// (`no-store` and `no-cache` count as 0) less its `Age`, or `default`
/// without one; always within `bounds`.
fn freshness(
    cache_control: Option<&str>,
    age: Option<&str>,
    default: Duration,
    (shortest, longest): (Duration, Duration),
) -> Duration {
    let mut max_age = None;
    for directive in cache_control.unwrap_or_default().split(',') {
        let directive = directive.trim().to_ascii_lowercase();
        if directive == "no-store" || directive == "no-cache" {
            max_age = Some(0);
            break;
        }
        if let Some(seconds) = directive.strip_prefix("max-age=") {
            max_age = seconds.trim_matches('"').parse::<u64>().ok().or(max_age);
        }
    }
    let age = age.and_then(|a| a.trim().parse::<u64>().ok()).unwrap_or(0);
    let fresh = match max_age {
        Some(seconds) => Duration::from_secs(seconds.saturating_sub(age)),
        None => default,
    };
    fresh.clamp(shortest, longest)
}

/// The claims of the request's bearer access token, verified by the
/// [`JwksVerifier`] of the state (`JwksVerifier: FromRef<S>`); otherwise the
/// request is answered 401 (or 503) in Portcullis's envelope.
#[derive(Debug, Clone)]
pub struct VerifiedClaims(pub Claims);

impl<S> FromRequestParts<S> for VerifiedClaims
where
    S: Send + Sync,
    JwksVerifier: FromRef<S>,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        if let Some(claims) = parts.extensions.get::<VerifiedClaims>() {
            return Ok(claims.clone());
        }
        let token = crate::http::extract::bearer(parts)?;
        let claims = VerifiedClaims(JwksVerifier::from_ref(state).verify(token).await?);
        parts.extensions.insert(claims.clone());
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: (Duration, Duration) = (Duration::from_secs(10), Duration::from_secs(3600));
    const DEFAULT: Duration = Duration::from_secs(300);

    fn fresh(cache_control: Option<&str>, age: Option<&str>) -> u64 {
        freshness(cache_control, age, DEFAULT, BOUNDS).as_secs()
    }

    #[test]
    fn cache_control_sets_how_long_keys_are_kept() {
        assert_eq!(fresh(Some("public, max-age=300"), None), 300);
        assert_eq!(fresh(Some("max-age=120"), Some("20")), 100);
        assert_eq!(fresh(None, None), 300, "no header: the default");
        assert_eq!(fresh(Some("public"), None), 300);
        assert_eq!(
            fresh(Some("no-store"), None),
            10,
            "never under the shortest"
        );
        assert_eq!(fresh(Some("max-age=0"), None), 10);
        assert_eq!(
            fresh(Some("max-age=999999"), None),
            3600,
            "never over the longest"
        );
        assert_eq!(fresh(Some("max-age=60"), Some("600")), 10);
    }

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
