//! `portcullis::verifier` (the `verifier` feature), as another Rust service
//! uses it: against a running Portcullis, through a key rotation, on SQLite
//! and on PostgreSQL.
//!
//! The verifier reads the JWKS through a front of the test's own (what a
//! load balancer is to a fleet of instances): one URL, behind which the
//! operator's successive Portcullis configurations take over. The front
//! counts the fetches, so that the tests see the cache, the re-fetch on an
//! unknown `kid` and its rate limit; it may also rewrite `Cache-Control`.

#[macro_use]
mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode as AxumStatus, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use common::*;
use jsonwebtoken::{Algorithm, Header};
use portcullis::Error;
use portcullis::verifier::{JwksVerifier, VerifiedClaims};
use reqwest::StatusCode;
use serde_json::{Value, json};

const ISSUER: &str = "https://auth.example.com";
const AUDIENCE: &str = "orders";

/// The front: forwards `GET /.well-known/jwks.json` to the current
/// upstream, counting the requests.
#[derive(Clone, Default)]
struct Front {
    upstream: Arc<Mutex<String>>,
    cache_control: Arc<Mutex<Option<String>>>,
    fetches: Arc<AtomicUsize>,
}

impl Front {
    /// Serves the front on a free port; its JWKS URL.
    async fn start(&self) -> String {
        let app = Router::new()
            .route("/.well-known/jwks.json", get(forward))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}/.well-known/jwks.json")
    }

    fn point_at(&self, base_url: &str) {
        *self.upstream.lock().unwrap() = base_url.to_string();
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    fn set_cache_control(&self, value: &str) {
        *self.cache_control.lock().unwrap() = Some(value.to_string());
    }
}

async fn forward(State(front): State<Front>) -> Response {
    front.fetches.fetch_add(1, Ordering::SeqCst);
    let upstream = front.upstream.lock().unwrap().clone();
    let Ok(answer) = reqwest::get(format!("{upstream}/.well-known/jwks.json")).await else {
        return AxumStatus::BAD_GATEWAY.into_response();
    };
    let cache_control = front
        .cache_control
        .lock()
        .unwrap()
        .clone()
        .or_else(|| {
            answer
                .headers()
                .get("cache-control")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        })
        .unwrap_or_default();
    let body = answer.bytes().await.unwrap_or_default();
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_str(&cache_control).unwrap(),
    );
    (headers, body).into_response()
}

/// A Portcullis signing with `keys`, `public` in `PUBLIC_KEY_FILES`, the
/// test's issuer and audience, on `db`.
async fn portcullis(db: &Arc<TestDb>, keys: &KeyFiles, public: &[&KeyFiles]) -> TestApp {
    let list: Vec<&str> = public.iter().map(|k| k.public.as_str()).collect();
    let list = list.join(",");
    let mut vars = vec![
        ("ALGORITHM", keys.alg),
        ("PRIVATE_KEY_FILE", keys.private.as_str()),
        ("JWT_ISSUER", ISSUER),
        ("JWT_AUDIENCE", AUDIENCE),
    ];
    if !list.is_empty() {
        vars.push(("PUBLIC_KEY_FILES", &list));
    }
    TestApp::builder_on(db.clone()).vars(&vars).spawn().await
}

/// `claims` signed with `keys` under `kid`.
fn sign(keys: &KeyFiles, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(keys.algorithm());
    header.kid = Some(kid.to_string());
    jsonwebtoken::encode(&header, claims, &keys.encoding_key()).unwrap()
}

#[track_caller]
fn expect_refused(outcome: Result<portcullis::token::Claims, Error>, what: &str) {
    assert!(
        matches!(outcome, Err(Error::InvalidToken)),
        "{what}: {outcome:?}"
    );
}

/// A service of its own that protects `/orders` with [`VerifiedClaims`];
/// its base URL.
async fn service(verifier: JwksVerifier) -> String {
    async fn orders(VerifiedClaims(claims): VerifiedClaims) -> axum::Json<Value> {
        axum::Json(json!({ "user": claims.sub, "email": claims.email }))
    }
    let app = Router::new()
        .route("/orders", get(orders))
        .with_state(verifier);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// The refetch interval of the test's verifier.
const REFETCH: Duration = Duration::from_millis(1500);
/// The `max-age` the front gives the keys from the rotation's second step
/// on (instead of Portcullis's 300 s), and a wait just longer than it.
const SHORT_MAX_AGE: &str = "public, max-age=3";
const PAST_MAX_AGE: Duration = Duration::from_millis(3100);

both_backends!(
    /// The verifier checks what Portcullis checks (signature with the one
    /// algorithm, `exp`, `type`, issuer, audience), caches the keys as
    /// `Cache-Control` says, and goes through the README's rotation: the
    /// new key's tokens verify at once (one re-fetch on the unknown `kid`,
    /// rate-limited against made-up ones), the old key's keep verifying
    /// while it is published, and are refused once it is gone and the
    /// cache has expired. Its extractor answers in Portcullis's envelope.
    the_verifier_follows_a_running_portcullis_through_a_rotation,
    |backend: Backend| async move {
        let db = TestDb::create(backend).await;
        let dir = tempfile::tempdir().unwrap();
        let old = KeyFiles::new(dir.path(), "old", "EdDSA");
        let new = KeyFiles::new(dir.path(), "new", "EdDSA");
        let front = Front::default();
        let jwks_url = front.start().await;

        // Before the rotation: the old key signs.
        let before = portcullis(&db, &old, &[]).await;
        front.point_at(&before.base_url);
        let verifier = JwksVerifier::builder(&jwks_url)
            .allow_insecure_http()
            .algorithm(Algorithm::EdDSA)
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .refetch_interval(REFETCH)
            .cache_bounds(Duration::from_millis(500), Duration::from_secs(3600))
            .build()
            .unwrap();
        let user = before.register(&unique_email("verified"), PASSWORD).await;
        let claims = verifier.verify(&user.access).await.unwrap();
        assert_eq!(claims.sub, user.user_id.to_string());
        assert_eq!(claims.email.as_deref(), Some(user.email.as_str()));
        assert_eq!(front.fetches(), 1);
        assert_eq!(verifier.known_kids(), std::slice::from_ref(&old.kid));

        // What Portcullis refuses, the verifier refuses.
        expect_refused(verifier.verify(&user.refresh).await, "a refresh token");
        let (_, payload) = jwt_parts(&user.access);
        let mut expired = payload.clone();
        expired["exp"] = json!(now() - 1);
        assert!(
            matches!(
                verifier.verify(&sign(&old, &old.kid, &expired)).await,
                Err(Error::TokenExpired)
            ),
            "an expired token"
        );
        for (claim, value) in [("iss", "https://evil.example"), ("aud", "another-api")] {
            let mut wrong = payload.clone();
            wrong[claim] = json!(value);
            expect_refused(
                verifier.verify(&sign(&old, &old.kid, &wrong)).await,
                &format!("another {claim}"),
            );
            let mut missing = payload.clone();
            missing.as_object_mut().unwrap().remove(claim);
            expect_refused(
                verifier.verify(&sign(&old, &old.kid, &missing)).await,
                &format!("no {claim}"),
            );
            // And Portcullis agrees.
            before
                .me(&sign(&old, &old.kid, &wrong))
                .await
                .expect_error(StatusCode::UNAUTHORIZED, "INVALID_TOKEN");
        }
        for (claim, value) in [
            ("type", json!("refresh")),
            ("sid", json!("")),
            ("jti", json!("")),
            ("sub", json!("not-a-number")),
        ] {
            let mut odd = payload.clone();
            odd[claim] = value;
            expect_refused(
                verifier.verify(&sign(&old, &old.kid, &odd)).await,
                &format!("{claim}: {}", odd[claim]),
            );
        }
        let hs256 = json!({"alg": "HS256", "typ": "JWT", "kid": old.kid});
        let input = format!("{}.{}", b64(hs256.to_string()), b64(payload.to_string()));
        let mac = {
            use hmac::Mac;
            let mut mac =
                <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(old.public_pem.as_bytes())
                    .unwrap();
            mac.update(input.as_bytes());
            b64(mac.finalize().into_bytes())
        };
        expect_refused(
            verifier.verify(&format!("{input}.{mac}")).await,
            "HS256 keyed with the public key",
        );
        let none = json!({"alg": "none", "typ": "JWT", "kid": old.kid});
        expect_refused(
            verifier
                .verify(&format!("{}.{}.", b64(none.to_string()), b64(payload.to_string())))
                .await,
            "alg none",
        );
        assert_eq!(front.fetches(), 1, "the keys are cached (max-age=300)");

        // The extractor, in a service of its own.
        let orders = service(verifier.clone()).await;
        let client = reqwest::Client::new();
        let answer = client
            .get(format!("{orders}/orders"))
            .bearer_auth(&user.access)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["user"], user.user_id.to_string());
        for (token, code) in [(None, "UNAUTHORIZED"), (Some(&user.refresh), "INVALID_TOKEN")] {
            let mut request = client.get(format!("{orders}/orders"));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let answer = request.send().await.unwrap();
            assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
            assert!(answer.headers().contains_key("www-authenticate"));
            let body: Value = answer.json().await.unwrap();
            assert_eq!(body["success"], false, "{body}");
            assert_eq!(body["error"]["code"], code, "{body}");
        }

        // 1. The new public key is published; the old key still signs. The
        // verifier's cache still holds the old key alone: nothing changes.
        let published = portcullis(&db, &old, &[&new]).await;
        front.point_at(&published.base_url);
        verifier.verify(&user.access).await.unwrap();
        assert_eq!(front.fetches(), 1);

        // 2. The new key signs. From here the front says a max-age of 3 s,
        // so that the test need not wait five minutes for the cache to
        // expire. (The unknown kid below is fetched at once provided the
        // last fetch is older than the refetch interval: it is, here.)
        front.set_cache_control(SHORT_MAX_AGE);
        tokio::time::sleep(REFETCH).await;
        let switched = portcullis(&db, &new, &[&old]).await;
        front.point_at(&switched.base_url);
        let fresh = switched.login(&user, PASSWORD).await;
        assert_eq!(jwt_parts(&fresh.access).0["kid"], new.kid.as_str());
        // The unknown kid is fetched once, and the token verifies at once.
        let claims = verifier.verify(&fresh.access).await.unwrap();
        assert_eq!(claims.sid, sid_of(&fresh.access));
        assert_eq!(front.fetches(), 2);
        let mut kids = verifier.known_kids();
        kids.sort();
        let mut both = vec![old.kid.clone(), new.kid.clone()];
        both.sort();
        assert_eq!(kids, both);
        // Made-up kids are refused without a fetch (the last one is recent)...
        for n in 0..20 {
            let forged = sign(&new, &format!("made-up-{n}"), &payload);
            expect_refused(verifier.verify(&forged).await, "a made-up kid");
        }
        assert_eq!(front.fetches(), 2, "made-up kids are rate-limited");
        // 3. ... and the old key's tokens keep verifying while it is published.
        verifier.verify(&user.access).await.unwrap();

        // 4. The old key is removed: once the cache expires (3 s here), its
        // tokens are refused by the verifier as by Portcullis.
        let after = portcullis(&db, &new, &[]).await;
        front.point_at(&after.base_url);
        tokio::time::sleep(PAST_MAX_AGE).await;
        expect_refused(verifier.verify(&user.access).await, "a token of the removed key");
        assert_eq!(front.fetches(), 3, "one fetch after the cache expired");
        assert_eq!(verifier.known_kids(), std::slice::from_ref(&new.kid));
        after
            .me(&user.access)
            .await
            .expect_error(StatusCode::UNAUTHORIZED, "INVALID_TOKEN");
        verifier.verify(&fresh.access).await.unwrap();

        // Concurrent verifications after expiry share one fetch.
        tokio::time::sleep(PAST_MAX_AGE).await;
        let fetched = front.fetches();
        let checks: Vec<_> = (0..16)
            .map(|_| {
                let verifier = verifier.clone();
                let token = fresh.access.clone();
                tokio::spawn(async move { verifier.verify(&token).await })
            })
            .collect();
        for check in checks {
            check.await.unwrap().unwrap();
        }
        assert_eq!(front.fetches(), fetched + 1, "one fetch for all");

        // Portcullis unreachable: the known keys keep verifying.
        front.point_at("http://127.0.0.1:9");
        tokio::time::sleep(PAST_MAX_AGE).await;
        verifier.verify(&fresh.access).await.unwrap();
        // A verifier that never got the keys answers 503 instead.
        let blind = JwksVerifier::builder("http://127.0.0.1:9/.well-known/jwks.json")
            .allow_insecure_http()
            .build()
            .unwrap();
        assert!(matches!(
            blind.verify(&fresh.access).await,
            Err(Error::Unavailable)
        ));
    }
);

/// An `http://` JWKS URL is refused unless the builder is told to accept
/// it: keys fetched in the clear could be replaced on the way.
#[tokio::test]
async fn an_http_jwks_url_needs_to_be_allowed_explicitly() {
    let url = "http://auth.example.com/.well-known/jwks.json";
    let refused = JwksVerifier::builder(url).build().unwrap_err().to_string();
    assert!(
        refused.contains("not https") && refused.contains("allow_insecure_http"),
        "{refused}"
    );
    JwksVerifier::builder(url)
        .allow_insecure_http()
        .build()
        .unwrap();
    JwksVerifier::builder("https://auth.example.com/.well-known/jwks.json")
        .build()
        .unwrap();
}

both_backends!(
    /// While every fetch fails, the keys of the last good one keep
    /// verifying for `max_stale` (an hour by default) past their refresh
    /// time, and no longer: then the answer is 503 `SERVICE_UNAVAILABLE`
    /// (from the extractor too), until a fetch succeeds again. The keys
    /// here are due for refresh at once (cache bounds of zero); the strict
    /// verifier trusts them for no time past that.
    keys_that_cannot_be_refreshed_stop_being_trusted,
    |backend: Backend| async move {
        let db = TestDb::create(backend).await;
        let dir = tempfile::tempdir().unwrap();
        let keys = KeyFiles::new(dir.path(), "ed", "EdDSA");
        let front = Front::default();
        let jwks_url = front.start().await;
        let app = portcullis(&db, &keys, &[]).await;
        front.point_at(&app.base_url);
        let verifier = |max_stale: Option<Duration>| {
            let builder = JwksVerifier::builder(&jwks_url)
                .allow_insecure_http()
                .algorithm(Algorithm::EdDSA)
                .issuer(ISSUER)
                .audience(AUDIENCE)
                .refetch_interval(Duration::ZERO)
                .cache_bounds(Duration::ZERO, Duration::ZERO);
            match max_stale {
                Some(max_stale) => builder.max_stale(max_stale),
                None => builder,
            }
            .build()
            .unwrap()
        };
        let (tolerant, strict) = (verifier(None), verifier(Some(Duration::ZERO)));
        let user = app.register(&unique_email("stale"), PASSWORD).await;
        tolerant.verify(&user.access).await.unwrap();
        strict.verify(&user.access).await.unwrap();
        let orders = service(strict.clone()).await;
        assert_eq!(front.fetches(), 2);

        // Portcullis unreachable: the front answers 502 to every fetch.
        front.point_at("http://127.0.0.1:9");
        tolerant.verify(&user.access).await.unwrap();
        assert!(matches!(
            strict.verify(&user.access).await,
            Err(Error::Unavailable)
        ));
        let answer = reqwest::Client::new()
            .get(format!("{orders}/orders"))
            .bearer_auth(&user.access)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["error"]["code"], "SERVICE_UNAVAILABLE", "{body}");
        assert_eq!(front.fetches(), 5, "each verification tried a fetch");

        // Back: the next fetch succeeds and the keys are trusted again.
        front.point_at(&app.base_url);
        strict.verify(&user.access).await.unwrap();
    }
);
