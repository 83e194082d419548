//! The key set: the keys of the last successful fetch of the JWKS, how
//! long they are fresh and trusted, and fetching it again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::header;
use jsonwebtoken::jwk::{JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use super::JwksVerifier;
use crate::error::{Error, Result};
use crate::token::keys::is_asymmetric;
use crate::token::validation;

/// The largest JWKS answer read.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// One key of the JWKS: its `kid`, the algorithm it verifies, the key.
#[derive(Debug, Clone)]
pub(super) struct CachedKey {
    pub(super) kid: Option<String>,
    pub(super) algorithm: Algorithm,
    pub(super) key: DecodingKey,
    pub(super) validation: Validation,
}

/// The keys of the last successful fetch, until when they are fresh, and
/// until when they are trusted at all while fetches fail.
#[derive(Debug)]
pub(super) struct KeyCache {
    pub(super) keys: Vec<CachedKey>,
    /// `None`: never fetched.
    pub(super) fresh_until: Option<Instant>,
    /// The successful fetch's `fresh_until` plus the builder's `max_stale`.
    pub(super) trusted_until: Option<Instant>,
}

impl KeyCache {
    pub(super) fn empty() -> Self {
        Self {
            keys: Vec::new(),
            fresh_until: None,
            trusted_until: None,
        }
    }

    pub(super) fn is_trusted(&self, now: Instant) -> bool {
        self.trusted_until.is_some_and(|until| now < until)
    }

    pub(super) fn is_fresh(&self, now: Instant) -> bool {
        self.fresh_until.is_some_and(|until| now < until)
    }

    /// The keys that may verify a token whose header says `alg` and `kid`.
    pub(super) fn candidates<'a>(
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
pub(super) enum Reason {
    /// Never fetched, or past their `max-age`.
    Stale,
    /// A token names a `kid` the cache does not know.
    UnknownKid,
}

impl JwksVerifier {
    pub(super) fn cache(&self) -> Arc<KeyCache> {
        match self.inner.keys.read() {
            Ok(keys) => keys.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub(super) fn replace_cache(&self, cache: Arc<KeyCache>) {
        match self.inner.keys.write() {
            Ok(mut keys) => *keys = cache,
            Err(poisoned) => *poisoned.into_inner() = cache,
        }
    }

    /// Fetches the keys for `reason`, unless another request did while this
    /// one waited (`seen` is the cache it saw), or the rate limit says no;
    /// the cache to use then. Only a failure with no key known at all is an
    /// error (503): otherwise the known keys stay in use.
    pub(super) async fn refetch(
        &self,
        seen: &Arc<KeyCache>,
        reason: Reason,
    ) -> Result<Arc<KeyCache>> {
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
    pub(super) async fn fetch(&self) -> std::result::Result<KeyCache, String> {
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
    pub(super) fn usable_keys(&self, set: JwkSet) -> Vec<CachedKey> {
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

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: (Duration, Duration) = (Duration::from_secs(10), Duration::from_secs(3600));
    const DEFAULT: Duration = Duration::from_secs(300);

    pub(super) fn fresh(cache_control: Option<&str>, age: Option<&str>) -> u64 {
        freshness(cache_control, age, DEFAULT, BOUNDS).as_secs()
    }

    #[test]
    pub(super) fn cache_control_sets_how_long_keys_are_kept() {
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
}
