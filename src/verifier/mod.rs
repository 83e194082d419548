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

mod builder;
mod extract;
mod keyset;

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::http::Uri;
pub use jsonwebtoken::Algorithm;

use builder::HttpClient;
pub use builder::VerifierBuilder;
pub use extract::VerifiedClaims;
use keyset::{KeyCache, Reason};

use crate::error::{Error, Result};
use crate::token::keys::is_asymmetric;
use crate::token::{Claims, MAX_TOKEN_LEN, TokenType, check_claims, first_verified};

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

impl JwksVerifier {
    /// A verifier of the tokens whose keys `jwks_url` publishes (Portcullis's
    /// `https://…/.well-known/jwks.json`).
    pub fn builder(jwks_url: impl Into<String>) -> VerifierBuilder {
        VerifierBuilder::new(jwks_url.into())
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
        let claims = first_verified(
            token,
            cache
                .candidates(alg, kid)
                .map(|key| (&key.key, &key.validation)),
        )?;
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
}
