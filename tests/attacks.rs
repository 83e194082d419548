//! The attack suite of the security review (issue #8): one test per attack,
//! black-box over HTTP against the real router, each on SQLite and on
//! PostgreSQL. Each test's comment says what the attacker tries and what
//! must happen; the test asserts the exact status and code of SPEC §3, and
//! next to each refusal a control (the same request made honestly, or the
//! victim's own token) that succeeds, so that a refusal for another reason
//! (a broken forgery, a dead server) cannot pass for a defence.
//!
//! Attacks already tested elsewhere (`tokens.rs`, `api.rs`, `limits.rs`,
//! `mail.rs`, `cli.rs`) have a focused version here all the same, so that
//! this file is the checklist.
//!
//! | section | attacks |
//! |---|---|
//! | forged tokens | `alg: none`; HS/RS confusion (on HS256, RS256, ES256 and EdDSA servers); `kid` tricks; expired; tampered payloads; one kind of token for another |
//! | replays | spent refresh tokens (after the grace, older than the latest); access tokens after logout; used reset and verification links |
//! | enumeration | login (bodies, timing); forgot-password and resend; registration with verification required |
//! | injection | SQL metacharacters and control characters in e-mails, passwords, names, tokens, session ids |
//! | bodies | oversized (413), deeply nested (400), stalled (408) |
//! | the client IP | `X-Forwarded-For` from untrusted and trusted peers |
//! | the host | files readable by other local users; `/metrics` in production |
//! | the second factor (in `mfa.rs`) | a stolen superuser session removing its own factor through the admin API, no code (`a_superuser_cannot_remove_their_own_factor_without_a_code`); a stolen session sending wrong codes to disable/regenerate to throttle or lock its owner's login (`a_stolen_session_cannot_lock_its_owners_login`) |
//! | the limits (`attacks_limits.rs`) | a stolen token guessing the password; one account filling the hashing queue; logins without a client IP; a botnet of many /64s guessing one account |

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use portcullis::token::TokenType;
use reqwest::header::AUTHORIZATION;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A key that is not the server's.
const OTHER_SECRET: &str = "an-attackers-own-secret-0123456789-abcdefghijklmnopqrstuvwxyz-HS512";

/// A throwaway RSA key pair, generated for these tests only (it signs
/// nothing anywhere else): what an attacker signs "RS256" tokens with.
const RSA_PRIVATE_PEM: &str = "-----BEGIN RSA PRIVATE KEY-----
MIIEowIBAAKCAQEA2aKPXuDUliPZmsXuXvY7IXTpLgEDT22BoNQ/dv+PtRWPJubb
UT33tY9gO9Y/CxEcHSuhtVKP9UmkeiUv+5iEMJA1i8BbFwHx1nTV3USS0Rt1nGYY
9sZY4i+/zXd1siiPIpe8QrN+GHO2he0Lz2HQKll2amZiU2H4wscdLsK3EaFPfOl1
r1ojcMpDScVN+wJenmkbGOqp2cKedls+qGgsnbKJzjhyd9O7Ovb3B+FTyf+Srnj1
+RVvR9vMZ7xjhC6IG2/Kgybo39PGncP1EoZSWYkd/a46HcH3XaD9W8ffi2LppPdy
mmpljeU1+RSyIVrCKCesoOcWX5G/ZpTyCB58hQIDAQABAoIBAFlNGk5ArAp1aGdZ
O0/s8mNukPXHBaA0W2HuZaJDCCkyUPyR8sE5z6hIziCPb2vvl90iV6bK23Y3Qw25
r6Apu2gf7FDNW7MroZuxckXqSuIRxecof6rWxYb+N9Ir5/f0K5NytpWaCC4pYOZA
V72/MYcHEY9kNolnZIcr474ZuLu69uMwR1IXyoXzmuwvGML/ru0/dk9wdb4r9fCn
Jwe5OwU+y8/caWPvboFIrW3Ew3Tl2f/YUVXBzrCSwOzV/oMYaBi5S7zGvHFabPhh
WaTrOT8Gw2cOowAYswT3nl0JnldMuC0W772xOBqrjyRV3NJueHnvRVKmvvRYrZos
TiCw+gsCgYEA76Q0UdXG26JB4BXIcor5TLjFFeXgVBhR/ZJMTbnzU2lT/1fGPBXn
pB9Qp0G1qnpfW+owVIbT00OHlEBVTznHy2VkWEtZ1IXL4Dw/q9Fa1ODjdCSK/bvt
1gRUc7ADJ39O8wIvIJSXQDJaBbGVT6U8ldtpS0ncqZYZsj7sTE751nsCgYEA6H3J
qhzcGIn5o+ft+nTwSTZNcBBqHbdoso27hc/S/w9eKg9ABGj80SepbWP4/sSnXnZQ
ZaSCdpFBQ/xw24OZ9z3x2kvr2s8MeJiuOaFPmz8jZ9SdikZxdjwXUvWlgndTppOi
sfw4QcoSMJSFkPeHaOwgIZZKCOogCYKhWP1KCP8CgYBiYk3Akz2zCih1cTv8GqZD
I1B2rwusOtfefOOqvX7ybbm4iTavkGarcNfR8x48QUVJHRp+eWQZxg2xhcAAaL5n
+NZ7kWPt5ohPJS0WwzrBTxrSofYWOcNpLBnn7Qk+e/vTtL/YZmi6SHHBCKk+K551
/8B40ngvf5pJHaAxq/LSZQKBgQDBKuJHyTrF2L3mhWmhU0/iRJAKsFi64AzJbiGE
iKxS573hTFJwV5rXXRDUpt/XLiWxwrQB/7G2OfH0Pua2PJ3MY1dzfOk2IBnIiXMY
xwKRhuAwAOP0Y5saFct7TkZ6JBMIsFnZcCp93xtF6eEgFcoYTzhTL7/LsFt2C2dr
vOeqmQKBgDZgPYVm2UGwZmo9ZaK3fm0tG3gILXivDltQbQmtAcHkrBLrJBczPLo9
7KvF9rZ+Lwz0+PTvWVLNp+Kg4qO7iqHiag05vW7cYuUSQXbl53w3u9UWDEf89y/l
ntZHvTVe3ZR02CMB1pAUmh4nRb+xlqToVv/PYUH+bjlh12Zk6kul
-----END RSA PRIVATE KEY-----
";

/// The public half of [`RSA_PRIVATE_PEM`]: public, so anyone may use it as
/// an HMAC secret.
const RSA_PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA2aKPXuDUliPZmsXuXvY7
IXTpLgEDT22BoNQ/dv+PtRWPJubbUT33tY9gO9Y/CxEcHSuhtVKP9UmkeiUv+5iE
MJA1i8BbFwHx1nTV3USS0Rt1nGYY9sZY4i+/zXd1siiPIpe8QrN+GHO2he0Lz2HQ
Kll2amZiU2H4wscdLsK3EaFPfOl1r1ojcMpDScVN+wJenmkbGOqp2cKedls+qGgs
nbKJzjhyd9O7Ovb3B+FTyf+Srnj1+RVvR9vMZ7xjhC6IG2/Kgybo39PGncP1EoZS
WYkd/a46HcH3XaD9W8ffi2LppPdymmpljeU1+RSyIVrCKCesoOcWX5G/ZpTyCB58
hQIDAQAB
-----END PUBLIC KEY-----
";

/// A throwaway P-256 key, generated for these tests only: what an attacker
/// signs "ES256" tokens with.
const EC_PRIVATE_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgYGxiUoQaEy9Wj+LJ
bDyLV1dHHNE+70CUcqXBn+Z+VBGhRANCAATUKHH/jeEWiYiLna6CPQuHrLn+1M4x
/iAoCPVD/A8Imn/EHbV9UfffNs1h9yxECYYLUiXnnjdPH/Cg0AKg1XaM
-----END PRIVATE KEY-----
";

// ---- helpers ---------------------------------------------------------------------

/// A compact JWS with exactly `header` and `payload`, signed with
/// HMAC-SHA-256 under `key` whatever `alg` the header claims: the forger's
/// tool, which builds tokens no JWT library would.
fn hmac_signed(header: &Value, payload: &Value, key: &[u8]) -> String {
    use hmac::Mac;
    let input = format!("{}.{}", b64(header.to_string()), b64(payload.to_string()));
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(key).expect("any key length");
    mac.update(input.as_bytes());
    format!("{input}.{}", b64(mac.finalize().into_bytes()))
}

/// `header.payload` of `token` with another signature part.
fn with_signature(token: &str, signature: &str) -> String {
    let (input, _) = token.rsplit_once('.').expect("a JWS");
    format!("{input}.{signature}")
}

/// The signature part of `token`.
fn signature_of(token: &str) -> &str {
    token.rsplit_once('.').expect("a JWS").1
}

/// Checks the answer to a refused token: 401 `INVALID_TOKEN` (SPEC §3).
#[track_caller]
fn expect_invalid(what: &str, reply: &Reply) {
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::UNAUTHORIZED, "INVALID_TOKEN"),
        "{what}: {}",
        reply.text()
    );
    reply.expect_error_message(StatusCode::UNAUTHORIZED, "INVALID_TOKEN", "Invalid token");
}

/// `GET /me` with `token`, which must be refused as `INVALID_TOKEN`.
async fn expect_me_invalid(app: &TestApp, what: &str, token: &str) {
    expect_invalid(what, &app.me(token).await);
}

/// The token of the link in the newest mail to `to` whose subject is
/// `subject`, from the outbox (waits for it).
async fn outbox_token(app: &TestApp, to: &str, subject: &str, path: &str) -> String {
    let deadline = Instant::now() + DELIVERY_TIMEOUT;
    loop {
        let newest = read_mail_dir(&app.outbox(), "eml")
            .into_iter()
            .rev()
            .filter_map(|(_, raw)| Mail::parse(&raw).ok())
            .find(|m| m.subject() == subject && m.header("To").is_some_and(|t| t.contains(to)));
        if let Some(mail) = newest {
            return mail.token(&app.base_url, path);
        }
        assert!(Instant::now() < deadline, "no {subject:?} mail to {to}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends `bytes` to `app` over a raw connection and waits (up to
/// `patience`) for the answer; the answer and how long it took.
async fn raw_request(app: &TestApp, bytes: Vec<u8>, patience: Duration) -> (String, Duration) {
    let addr = app.base_url.trim_start_matches("http://").to_string();
    tokio::task::spawn_blocking(move || stall(&addr, &bytes, patience))
        .await
        .expect("the raw request")
}

/// A raw `POST /api/auth/login/json` (JSON, `Connection: close`) with more
/// `headers` (each line ending in CRLF), and the first bytes of its body.
fn raw_login(headers: &str, body_start: &str) -> Vec<u8> {
    format!(
        "POST /api/auth/login/json HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Connection: close\r\n{headers}\r\n{body_start}"
    )
    .into_bytes()
}

const VERIFY_SUBJECT: &str = "Confirm your email address";
const RESET_SUBJECT: &str = "Reset your password";

// ---- forged tokens ---------------------------------------------------------------

both_backends!(
    /// `alg: none`: a token whose header says `none` (or `None`, `NONE`,
    /// `nOnE`) with an empty signature, the original signature or an HMAC
    /// one, on a protected route and at `/refresh`. Must be 401
    /// `INVALID_TOKEN`: only the configured algorithm verifies (SPEC §5).
    alg_none_in_any_spelling_is_refused,
    |app| async move {
        let user = app.register(&unique_email("none"), PASSWORD).await;
        let (header, payload) = jwt_parts(&user.access);
        let (_, refresh_payload) = jwt_parts(&user.refresh);
        // Control: the forger's tool makes tokens the server accepts.
        app.me(&hmac_signed(&header, &payload, SECRET.as_bytes()))
            .await
            .expect_ok(StatusCode::OK);

        for alg in ["none", "None", "NONE", "nOnE"] {
            for kid in [None, Some(header["kid"].clone())] {
                let mut h = json!({"alg": alg, "typ": "JWT"});
                if let Some(kid) = &kid {
                    h["kid"] = kid.clone();
                }
                let unsigned = format!("{}.{}.", b64(h.to_string()), b64(payload.to_string()));
                let what = format!("alg {alg}, kid {kid:?}");
                expect_me_invalid(&app, &format!("{what}, no signature"), &unsigned).await;
                expect_me_invalid(
                    &app,
                    &format!("{what}, the genuine signature"),
                    &with_signature(&unsigned, signature_of(&user.access)),
                )
                .await;
                expect_me_invalid(
                    &app,
                    &format!("{what}, HMAC-signed with the secret"),
                    &hmac_signed(&h, &payload, SECRET.as_bytes()),
                )
                .await;
                let unsigned_refresh = format!(
                    "{}.{}.",
                    b64(h.to_string()),
                    b64(refresh_payload.to_string())
                );
                expect_invalid(&what, &app.refresh(&unsigned_refresh).await);
            }
        }
        // The genuine pair still works: nothing was spent or revoked.
        app.me(&user.access).await.expect_ok(StatusCode::OK);
        app.refresh_ok(&user.refresh).await;
    }
);

both_backends!(
    /// HS/RS confusion: tokens whose header claims an asymmetric algorithm
    /// (`RS256`, `ES256`, …), signed every way an attacker might (HMAC with
    /// the server's own secret, a real RSA or EC signature, an embedded
    /// `jwk` or a `jku`), and an `HS256` token whose HMAC key is a public
    /// key (what a server that took its verification key from the header
    /// would accept). Must be 401 `INVALID_TOKEN`; the JWKS publishes no
    /// key material for HS256.
    asymmetric_algorithm_confusion_is_refused,
    |app| async move {
        let user = app.register(&unique_email("confusion"), PASSWORD).await;
        let (header, payload) = jwt_parts(&user.access);
        let kid = header["kid"].clone();

        for alg in [
            "RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA",
        ] {
            for h in [
                json!({"alg": alg, "typ": "JWT", "kid": kid}),
                json!({"alg": alg, "typ": "JWT"}),
            ] {
                expect_me_invalid(
                    &app,
                    &format!("{h}, HMAC with the secret"),
                    &hmac_signed(&h, &payload, SECRET.as_bytes()),
                )
                .await;
            }
        }

        // Really signed with an RSA and an EC key, with the server's kid.
        let mut rs256 = Header::new(Algorithm::RS256);
        rs256.kid = kid.as_str().map(str::to_string);
        let rsa = EncodingKey::from_rsa_pem(RSA_PRIVATE_PEM.as_bytes()).unwrap();
        let token = jsonwebtoken::encode(&rs256, &payload, &rsa).unwrap();
        expect_me_invalid(&app, "RS256 signed with an RSA key", &token).await;
        let mut es256 = Header::new(Algorithm::ES256);
        es256.kid = kid.as_str().map(str::to_string);
        let ec = EncodingKey::from_ec_pem(EC_PRIVATE_PEM.as_bytes()).unwrap();
        let token = jsonwebtoken::encode(&es256, &payload, &ec).unwrap();
        expect_me_invalid(&app, "ES256 signed with an EC key", &token).await;

        // The key named in the token itself.
        let attacker_key = b"the-attackers-own-hmac-key-of-32+bytes!";
        let embedded =
            json!({"alg": "HS256", "typ": "JWT", "jwk": {"kty": "oct", "k": b64(attacker_key)}});
        expect_me_invalid(
            &app,
            "HS256 with an embedded jwk",
            &hmac_signed(&embedded, &payload, attacker_key),
        )
        .await;
        let jku = json!({
            "alg": "RS256", "typ": "JWT", "kid": kid, "jku": "http://127.0.0.1:9/jwks.json",
        });
        expect_me_invalid(
            &app,
            "RS256 with a jku",
            &with_signature(
                &hmac_signed(&jku, &payload, attacker_key),
                signature_of(&jsonwebtoken::encode(&rs256, &payload, &rsa).unwrap()),
            ),
        )
        .await;

        // HS256 keyed with a public key, with and without the server's kid.
        for h in [header.clone(), json!({"alg": "HS256", "typ": "JWT"})] {
            expect_me_invalid(
                &app,
                "HS256 keyed with a public key",
                &hmac_signed(&h, &payload, RSA_PUBLIC_PEM.as_bytes()),
            )
            .await;
        }

        // Nothing to confuse with: the JWKS of an HS256 server is empty.
        let jwks = app.get_root("/.well-known/jwks.json").await;
        assert_eq!(jwks.status, StatusCode::OK);
        assert_eq!(jwks.body["keys"], json!([]), "{}", jwks.text());
        assert!(!jwks.text().contains(SECRET));

        app.me(&user.access).await.expect_ok(StatusCode::OK);
    }
);

both_backends!(
    /// Algorithm confusion against servers that sign with RS256, ES256 and
    /// EdDSA: an `HS256`/`HS384`/`HS512` token whose HMAC key is the
    /// server's public key as published (its PEM, its JWK as JSON, the raw
    /// key bytes), with and without the server's `kid`; `alg: none`; and the
    /// other asymmetric algorithms signed with the attacker's keys under
    /// the server's `kid`. Must be 401 `INVALID_TOKEN`, at `/me` and at
    /// `/refresh`. The control: a token the test signs with the server's
    /// own private key is accepted, so the forger's tool is sound.
    algorithm_confusion_is_refused_by_asymmetric_servers,
    |backend: Backend| async move {
        let dir = tempfile::tempdir().unwrap();
        for alg in ["RS256", "ES256", "EdDSA"] {
            let keys = KeyFiles::new(dir.path(), alg, alg);
            let app = TestApp::builder(backend)
                .vars(&[("ALGORITHM", alg), ("PRIVATE_KEY_FILE", &keys.private)])
                .spawn()
                .await;
            let user = app.register(&unique_email("confused"), PASSWORD).await;
            let (header, payload) = jwt_parts(&user.access);
            let (_, refresh_payload) = jwt_parts(&user.refresh);
            assert_eq!(header["alg"], alg);
            let kid = header["kid"].clone();

            // Control: the server's own key, used by the test's tool.
            let mut own = Header::new(keys.algorithm());
            own.kid = kid.as_str().map(str::to_string);
            let resigned = jsonwebtoken::encode(&own, &payload, &keys.encoding_key()).unwrap();
            app.me(&resigned).await.expect_ok(StatusCode::OK);

            let jwks = app.get_root("/.well-known/jwks.json").await;
            let jwk = jwks.body["keys"][0].clone();
            assert_eq!(jwk["kid"], kid, "{alg}: {}", jwks.text());
            let raw_public = match alg {
                "RS256" => jwk["n"].as_str().unwrap().to_string(),
                _ => jwk["x"].as_str().unwrap().to_string(),
            };
            let hmac_keys: [(&str, Vec<u8>); 5] = [
                ("the public PEM", keys.public_pem.clone().into_bytes()),
                ("the public PEM, trimmed", keys.public_pem.trim().as_bytes().to_vec()),
                ("the JWK as JSON", jwk.to_string().into_bytes()),
                ("the JWKS as JSON", jwks.text().into_bytes()),
                ("the raw key bytes", b64_decode(&raw_public)),
            ];
            for hs in ["HS256", "HS384", "HS512"] {
                for h in [
                    json!({"alg": hs, "typ": "JWT", "kid": kid}),
                    json!({"alg": hs, "typ": "JWT"}),
                ] {
                    for (what, key) in &hmac_keys {
                        let what = format!("{alg} server, {h} keyed with {what}");
                        expect_me_invalid(&app, &what, &hmac_signed_as(&h, &payload, key)).await;
                        expect_invalid(
                            &what,
                            &app.refresh(&hmac_signed_as(&h, &refresh_payload, key))
                                .await,
                        );
                    }
                }
            }
            for none in [
                json!({"alg": "none", "typ": "JWT", "kid": kid}),
                json!({"alg": "none", "typ": "JWT"}),
            ] {
                let unsigned = format!("{}.{}.", b64(none.to_string()), b64(payload.to_string()));
                let what = format!("{alg} server, {none}");
                expect_me_invalid(&app, &what, &unsigned).await;
                expect_me_invalid(
                    &app,
                    &format!("{what}, the genuine signature"),
                    &with_signature(&unsigned, signature_of(&user.access)),
                )
                .await;
            }
            // The other asymmetric algorithms, with the attacker's keys.
            let attacker = [
                (Algorithm::RS256, EncodingKey::from_rsa_pem(RSA_PRIVATE_PEM.as_bytes()).unwrap()),
                (Algorithm::ES256, EncodingKey::from_ec_pem(EC_PRIVATE_PEM.as_bytes()).unwrap()),
            ];
            for (algorithm, key) in &attacker {
                let mut forged = Header::new(*algorithm);
                forged.kid = kid.as_str().map(str::to_string);
                let token = jsonwebtoken::encode(&forged, &payload, key).unwrap();
                expect_me_invalid(&app, &format!("{alg} server, {algorithm:?} forged"), &token)
                    .await;
            }
            // Nothing was spent: the genuine pair still works.
            app.me(&user.access).await.expect_ok(StatusCode::OK);
            app.refresh_ok(&user.refresh).await;
        }
    }
);

/// A compact JWS with exactly `header` and `payload`, HMAC-signed under
/// `key` with the hash the header's `alg` (HS256, HS384, HS512) names.
fn hmac_signed_as(header: &Value, payload: &Value, key: &[u8]) -> String {
    use hmac::Mac;
    let input = format!("{}.{}", b64(header.to_string()), b64(payload.to_string()));
    let tag = match header["alg"].as_str() {
        Some("HS384") => {
            let mut mac = <hmac::Hmac<sha2::Sha384> as Mac>::new_from_slice(key).unwrap();
            mac.update(input.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        Some("HS512") => {
            let mut mac = <hmac::Hmac<sha2::Sha512> as Mac>::new_from_slice(key).unwrap();
            mac.update(input.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        _ => {
            let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(key).unwrap();
            mac.update(input.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
    };
    format!("{input}.{}", b64(tag))
}

/// The bytes of the base64url text `text`.
fn b64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .expect("base64url")
}

both_backends!(
    /// `kid` tricks: a `kid` the server does not know (with a token signed
    /// with the right secret), a `kid` that is a path (`../../dev/null`,
    /// with an empty HMAC key, as a server reading keys from files would
    /// use) or SQL (`' UNION SELECT …`, with the key the SQL would yield),
    /// a `kid` that is not a string, and no `kid` with a signature of another
    /// key. Must be 401 `INVALID_TOKEN`. Without a `kid` the configured keys
    /// are tried (PyJWT signs without one), so a token with no `kid` signed
    /// with the server's secret verifies: the `kid` only ever picks among
    /// the configured keys.
    kid_tricks_are_refused,
    |app| async move {
        let user = app.register(&unique_email("kid"), PASSWORD).await;
        let (header, payload) = jwt_parts(&user.access);
        let with_kid = |kid: Value| json!({"alg": "HS256", "typ": "JWT", "kid": kid});

        for (what, kid, key) in [
            (
                "unknown kid, right key",
                json!("no-such-key"),
                SECRET.as_bytes(),
            ),
            (
                "path kid, empty key",
                json!("../../../../../../dev/null"),
                b"".as_slice(),
            ),
            (
                "absolute path kid, empty key",
                json!("/dev/null"),
                b"".as_slice(),
            ),
            (
                "path kid to the secret file, right key",
                json!("../data/secret.key"),
                SECRET.as_bytes(),
            ),
            (
                "SQL kid, the key it selects",
                json!("x' UNION SELECT 'attacker-key' --"),
                b"attacker-key".as_slice(),
            ),
            (
                "SQL kid, right key",
                json!("' OR '1'='1"),
                SECRET.as_bytes(),
            ),
            ("numeric kid, right key", json!(0), SECRET.as_bytes()),
            (
                "object kid, right key",
                json!({"$ne": ""}),
                SECRET.as_bytes(),
            ),
            (
                "kid list, right key",
                json!([header["kid"].clone()]),
                SECRET.as_bytes(),
            ),
        ] {
            expect_me_invalid(&app, what, &hmac_signed(&with_kid(kid), &payload, key)).await;
        }
        let no_kid = json!({"alg": "HS256", "typ": "JWT"});
        expect_me_invalid(
            &app,
            "no kid, another key",
            &hmac_signed(&no_kid, &payload, OTHER_SECRET.as_bytes()),
        )
        .await;
        expect_me_invalid(
            &app,
            "the server's kid, another key",
            &hmac_signed(&header, &payload, OTHER_SECRET.as_bytes()),
        )
        .await;

        // Controls: the server's kid or none, with the server's key.
        app.me(&hmac_signed(&header, &payload, SECRET.as_bytes()))
            .await
            .expect_ok(StatusCode::OK);
        app.me(&hmac_signed(&no_kid, &payload, SECRET.as_bytes()))
            .await
            .expect_ok(StatusCode::OK);
    }
);

both_backends!(
    /// Expired tokens: an access token one second past its `exp` (there is
    /// no leeway) or an hour past, an expired refresh token at `/refresh`,
    /// and a token without `exp` (which would never expire). Must be 401
    /// `TOKEN_EXPIRED` when validly signed, 401 `INVALID_TOKEN` without
    /// `exp`, and `INVALID_TOKEN` for an expired token with a bad signature
    /// (the signature is checked first: "expired" is only said of genuine
    /// tokens).
    expired_tokens_are_refused,
    |app| async move {
        let user = app.register(&unique_email("expired"), PASSWORD).await;
        let (header, payload) = jwt_parts(&user.access);
        let (_, refresh_payload) = jwt_parts(&user.refresh);
        let signed = |payload: &Value, key: &str| hmac_signed(&header, payload, key.as_bytes());
        let with_exp = |payload: &Value, exp: i64| {
            let mut p = payload.clone();
            p["exp"] = json!(exp);
            p
        };

        // Control: the same forgery, not expired, is accepted.
        app.me(&signed(&with_exp(&payload, now() + 60), SECRET))
            .await
            .expect_ok(StatusCode::OK);
        for ago in [1, 3600] {
            app.me(&signed(&with_exp(&payload, now() - ago), SECRET))
                .await
                .expect_error_message(
                    StatusCode::UNAUTHORIZED,
                    "TOKEN_EXPIRED",
                    "Token has expired",
                );
        }
        app.refresh(&signed(&with_exp(&refresh_payload, now() - 1), SECRET))
            .await
            .expect_error_message(
                StatusCode::UNAUTHORIZED,
                "TOKEN_EXPIRED",
                "Token has expired",
            );

        let mut eternal = payload.clone();
        eternal.as_object_mut().unwrap().remove("exp");
        expect_me_invalid(&app, "no exp", &signed(&eternal, SECRET)).await;
        expect_me_invalid(
            &app,
            "expired, another key",
            &signed(&with_exp(&payload, now() - 60), OTHER_SECRET),
        )
        .await;
        // The genuine refresh token was not spent by any of this.
        app.refresh_ok(&user.refresh).await;
    }
);

both_backends!(
    /// Tampered payloads: the genuine signature kept while `sub` names
    /// another user, `sid` another user's session, `email` or
    /// `email_verified` is changed, or a refresh token's `type` says
    /// `access`; a signature taken from another genuine token; the payload
    /// re-signed with another key; the signature cut short. Must be 401
    /// `INVALID_TOKEN`, and neither user's session is touched.
    tampered_payloads_are_refused,
    |app| async move {
        let ann = app.register(&unique_email("ann"), PASSWORD).await;
        let bob = app.register(&unique_email("bob"), PASSWORD).await;
        let (header, payload) = jwt_parts(&ann.access);
        // The genuine header and signature around another payload.
        let tampered = |token: &str, p: &Value| {
            let header_part = token.split('.').next().unwrap();
            format!(
                "{header_part}.{}.{}",
                b64(p.to_string()),
                signature_of(token)
            )
        };
        let resigned = |p: &Value| tampered(&ann.access, p);
        app.me(&ann.access).await.expect_ok(StatusCode::OK);

        let mut cases: Vec<(&str, Value)> = Vec::new();
        let mut p = payload.clone();
        p["sub"] = json!(bob.user_id.to_string());
        cases.push(("sub of another user", p));
        let mut p = payload.clone();
        p["sid"] = json!(bob.sid());
        cases.push(("sid of another user", p));
        let mut p = payload.clone();
        p["sub"] = json!(bob.user_id.to_string());
        p["sid"] = json!(bob.sid());
        cases.push(("sub and sid of another user", p));
        let mut p = payload.clone();
        p["email"] = json!("admin@example.com");
        cases.push(("email", p));
        let mut p = payload.clone();
        p["email_verified"] = json!(true);
        cases.push(("email_verified", p));
        let mut p = payload.clone();
        p["exp"] = json!(now() + 10 * 365 * 86_400);
        cases.push(("exp far in the future", p));
        for (what, p) in &cases {
            expect_me_invalid(&app, what, &resigned(p)).await;
        }
        let mut p = jwt_parts(&ann.refresh).1;
        p["type"] = json!("access");
        p["email"] = json!(ann.email.clone());
        expect_me_invalid(
            &app,
            "refresh token retyped as access",
            &tampered(&ann.refresh, &p),
        )
        .await;
        expect_me_invalid(
            &app,
            "another token's signature",
            &with_signature(&ann.access, signature_of(&bob.access)),
        )
        .await;
        expect_me_invalid(
            &app,
            "re-signed with another key",
            &hmac_signed(&header, &payload, OTHER_SECRET.as_bytes()),
        )
        .await;
        let sig = signature_of(&ann.access);
        expect_me_invalid(
            &app,
            "signature cut short",
            &with_signature(&ann.access, &sig[..sig.len() - 2]),
        )
        .await;
        expect_me_invalid(&app, "no signature", &with_signature(&ann.access, "")).await;

        // Even the server's own key cannot move a session to another user.
        let crossed = app
            .tokens()
            .issue(TokenType::Access, ann.user_id, &ann.email, &bob.sid())
            .unwrap()
            .token;
        expect_me_invalid(&app, "a session of another user, well signed", &crossed).await;

        for (user, id) in [(&ann, ann.user_id), (&bob, bob.user_id)] {
            let me = app.me(&user.access).await;
            assert_eq!(me.expect_ok(StatusCode::OK)["id"], json!(id));
        }
    }
);

both_backends!(
    /// One kind of token for another: a refresh token as `Bearer`, an
    /// access token at `/refresh` and at `/token`'s refresh grant, a reset
    /// link's token as a verification token and the other way round, and a
    /// mailed token as `Bearer`. Must be refused (401 `INVALID_TOKEN`, 400
    /// `invalid_grant`, 400 `INVALID_VERIFICATION_TOKEN`, 400
    /// `INVALID_RESET_TOKEN`), and the refused tokens stay good for what
    /// they are.
    tokens_of_one_kind_are_refused_as_another,
    |app| async move {
        let email = unique_email("kinds");
        let user = app.register(&email, PASSWORD).await;
        app.post_json("/forgot-password", &json!({"email": email}))
            .await
            .expect_ok(StatusCode::OK);
        let verify = outbox_token(&app, &email, VERIFY_SUBJECT, "/verify-email").await;
        let reset = outbox_token(&app, &email, RESET_SUBJECT, "/reset-password").await;

        expect_me_invalid(&app, "refresh token as Bearer", &user.refresh).await;
        expect_invalid(
            "refresh token as Bearer at /logout",
            &app.auth_post_empty("/logout", &user.refresh).await,
        );
        expect_invalid("access token at /refresh", &app.refresh(&user.access).await);
        app.post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &user.access),
            ],
        )
        .await
        .expect_oauth_error("invalid_grant");
        for token in [&verify, &reset] {
            expect_me_invalid(&app, "a mailed token as Bearer", token).await;
            expect_invalid("a mailed token at /refresh", &app.refresh(token).await);
        }
        app.post_json("/verify-email", &json!({"token": reset}))
            .await
            .expect_error(StatusCode::BAD_REQUEST, "INVALID_VERIFICATION_TOKEN");
        for token in [&verify, &user.access, &user.refresh] {
            app.post_json(
                "/reset-password",
                &json!({"token": token, "new_password": OTHER_PASSWORD}),
            )
            .await
            .expect_error(StatusCode::BAD_REQUEST, "INVALID_RESET_TOKEN");
        }

        // Each token still does its own job.
        app.me(&user.access).await.expect_ok(StatusCode::OK);
        app.post_json("/verify-email", &json!({"token": verify}))
            .await
            .expect_ok(StatusCode::OK);
        app.post_json(
            "/reset-password",
            &json!({"token": reset, "new_password": OTHER_PASSWORD}),
        )
        .await
        .expect_ok(StatusCode::OK);
        app.login_json(&email, OTHER_PASSWORD)
            .await
            .expect_ok(StatusCode::OK);
    }
);

// ---- replays ---------------------------------------------------------------------

both_backends!(
    /// A stolen refresh token replayed after its owner refreshed and the
    /// grace (here 1 s) ran out. Must be 401 `TOKEN_REVOKED`, and the whole
    /// session is revoked: the thief's replay also locks out the tokens the
    /// owner holds, so the theft shows. The user's other sessions stay.
    a_spent_refresh_token_after_the_grace_revokes_the_session,
    vars[("REFRESH_REUSE_GRACE_SECONDS", "1")],
    |app| async move {
        let user = app.register(&unique_email("grace"), PASSWORD).await;
        let other = app.login(&user, PASSWORD).await;
        let (a1, r1) = app.refresh_ok(&user.refresh).await;
        tokio::time::sleep(Duration::from_millis(2_100)).await;

        app.refresh(&user.refresh).await.expect_error_message(
            StatusCode::UNAUTHORIZED,
            "TOKEN_REVOKED",
            "Token has been revoked",
        );
        for token in [&user.access, &a1] {
            app.me(token)
                .await
                .expect_error(StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");
        }
        app.refresh(&r1)
            .await
            .expect_error(StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");
        app.me(&other.access).await.expect_ok(StatusCode::OK);
        app.refresh_ok(&other.refresh).await;
    }
);

both_backends!(
    /// Within the grace, a spent token older than the latest: R0 → R1 → R2,
    /// then R0. Only the most recently spent token (R1) gets the grace
    /// (SPEC §5); R0 must be 401 `TOKEN_REVOKED` and revoke the session, R2
    /// and the access tokens included.
    an_older_spent_refresh_token_within_the_grace_revokes_the_session,
    |app| async move {
        let user = app.register(&unique_email("older"), PASSWORD).await;
        let (_, r1) = app.refresh_ok(&user.refresh).await;
        let (a2, r2) = app.refresh_ok(&r1).await;
        app.me(&a2).await.expect_ok(StatusCode::OK);

        app.refresh(&user.refresh)
            .await
            .expect_error(StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");
        app.me(&a2)
            .await
            .expect_error(StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");
        for token in [&r1, &r2] {
            app.refresh(token)
                .await
                .expect_error(StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");
        }
    }
);

both_backends!(
    /// Logout, then the logged-out session's tokens replayed (a token
    /// copied before the user logged out). Must be 401 `TOKEN_REVOKED` for
    /// the access and the refresh token, at once; another session of the
    /// same user is untouched until `{"all": true}`.
    tokens_are_refused_after_logout,
    |app| async move {
        let user = app.register(&unique_email("logout"), PASSWORD).await;
        let other = app.login(&user, PASSWORD).await;
        app.auth_post_empty("/logout", &user.access)
            .await
            .expect_ok(StatusCode::OK);
        app.me(&user.access).await.expect_error_message(
            StatusCode::UNAUTHORIZED,
            "TOKEN_REVOKED",
            "Token has been revoked",
        );
        app.refresh(&user.refresh)
            .await
            .expect_error(StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");
        app.me(&other.access).await.expect_ok(StatusCode::OK);

        let (a2, r2) = app.refresh_ok(&other.refresh).await;
        app.auth_post_json("/logout", &a2, &json!({"all": true}))
            .await
            .expect_ok(StatusCode::OK);
        for token in [&other.access, &a2] {
            app.me(token)
                .await
                .expect_error(StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");
        }
        app.refresh(&r2)
            .await
            .expect_error(StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");
    }
);

both_backends!(
    /// A used reset link replayed (from a mailbox, a proxy log, the
    /// browser's history). Must be 400 `INVALID_RESET_TOKEN`, and the
    /// password stays the one the first use set.
    a_used_reset_link_is_refused,
    |app| async move {
        let email = unique_email("reset");
        app.register(&email, PASSWORD).await;
        app.post_json("/forgot-password", &json!({"email": email}))
            .await
            .expect_ok(StatusCode::OK);
        let token = outbox_token(&app, &email, RESET_SUBJECT, "/reset-password").await;
        let reset = |password: &'static str| {
            let body = json!({"token": token, "new_password": password});
            let app = &app;
            async move { app.post_json("/reset-password", &body).await }
        };
        reset(OTHER_PASSWORD).await.expect_ok(StatusCode::OK);
        reset("Third-Password-Of-99")
            .await
            .expect_error(StatusCode::BAD_REQUEST, "INVALID_RESET_TOKEN");
        app.login_json(&email, "Third-Password-Of-99")
            .await
            .expect_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
        app.login_json(&email, OTHER_PASSWORD)
            .await
            .expect_ok(StatusCode::OK);
    }
);

both_backends!(
    /// A used verification link replayed. Must be 400
    /// `INVALID_VERIFICATION_TOKEN`.
    a_used_verification_link_is_refused,
    |app| async move {
        let email = unique_email("verify");
        app.register(&email, PASSWORD).await;
        let token = outbox_token(&app, &email, VERIFY_SUBJECT, "/verify-email").await;
        let verified = app
            .post_json("/verify-email", &json!({"token": token}))
            .await;
        assert_eq!(
            verified.expect_ok(StatusCode::OK)["is_verified"],
            json!(true)
        );
        app.post_json("/verify-email", &json!({"token": token}))
            .await
            .expect_error(StatusCode::BAD_REQUEST, "INVALID_VERIFICATION_TOKEN");
    }
);

// ---- enumeration -----------------------------------------------------------------

both_backends!(
    /// Account enumeration through login answers: an unknown e-mail, a
    /// wrong password, a deactivated account with a wrong password, and a
    /// string that is not an address, on `/login`, `/login/json` and
    /// `/token`. Must be the byte-identical body, status and
    /// `WWW-Authenticate` (401 `INVALID_CREDENTIALS`; `invalid_grant` at
    /// `/token`).
    login_answers_alike_for_unknown_emails_and_wrong_passwords,
    |app| async move {
        let known = app.register(&unique_email("known"), PASSWORD).await;
        let inactive = app.register(&unique_email("inactive"), PASSWORD).await;
        assert!(
            app.store()
                .set_active(inactive.user_id, false)
                .await
                .unwrap()
        );
        let unknown = unique_email("unknown");
        let attempts = [
            (known.email.as_str(), OTHER_PASSWORD),
            (unknown.as_str(), PASSWORD),
            (inactive.email.as_str(), OTHER_PASSWORD),
            ("not-an-address", PASSWORD),
        ];

        let json_replies = {
            let mut replies = Vec::new();
            for (email, password) in attempts {
                replies.push(app.login_json(email, password).await);
            }
            replies
        };
        let form_replies = {
            let mut replies = Vec::new();
            for (email, password) in attempts {
                replies.push(app.login_form(email, password).await);
            }
            replies
        };
        let token_replies = {
            let mut replies = Vec::new();
            for (email, password) in attempts {
                let form = [
                    ("grant_type", "password"),
                    ("username", email),
                    ("password", password),
                ];
                replies.push(app.post_form("/token", &form).await);
            }
            replies
        };
        json_replies[0].expect_error_message(
            StatusCode::UNAUTHORIZED,
            "INVALID_CREDENTIALS",
            "Invalid email or password",
        );
        token_replies[0].expect_oauth_error("invalid_grant");
        for replies in [&json_replies, &form_replies, &token_replies] {
            for (reply, (email, _)) in replies.iter().zip(attempts) {
                assert_eq!(reply.status, replies[0].status, "{email}");
                assert_eq!(reply.bytes, replies[0].bytes, "{email}: {}", reply.text());
                for header in ["www-authenticate", "content-type", "cache-control"] {
                    assert_eq!(
                        reply.header(header),
                        replies[0].header(header),
                        "{email}: {header}"
                    );
                }
            }
        }
        assert_eq!(form_replies[0].bytes, json_replies[0].bytes);
        // Control: the right password gets in.
        app.login_json(&known.email, PASSWORD)
            .await
            .expect_ok(StatusCode::OK);
    }
);

both_backends!(
    /// Account enumeration through login timing: an unknown e-mail must
    /// cost the same password hashing as a wrong password (SPEC §7). Each
    /// answer, on either path, starts exactly one hashing job (counted by
    /// the pool); an unknown e-mail answered without hashing starts none.
    /// That the failures are then padded to the slowest kind of hash is the
    /// pool's unit test; the time itself is measured in `bench/`.
    login_costs_as_much_hashing_for_unknown_emails_as_for_wrong_passwords,
    |app| async move {
        let known = app.register(&unique_email("timing"), PASSWORD).await;
        let unknown = unique_email("nobody");
        let passwords = &app.portcullis.flows().passwords;
        for _ in 0..3 {
            let before = passwords.jobs_started();
            app.login_json(&known.email, OTHER_PASSWORD)
                .await
                .expect_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
            let wrong = passwords.jobs_started() - before;
            let before = passwords.jobs_started();
            app.login_json(&unknown, OTHER_PASSWORD)
                .await
                .expect_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
            let missing = passwords.jobs_started() - before;
            assert_eq!(
                (wrong, missing),
                (1, 1),
                "hashing jobs for a wrong password, for an unknown e-mail"
            );
        }
    }
);

both_backends!(
    /// Account enumeration through the mail requests: `/forgot-password`,
    /// `/verify-email/resend` and its alias `/send-verification` for a
    /// registered address (verified or not, in another letter case) and an
    /// unknown one. Must be the byte-identical 200 answer; mail goes only to
    /// registered addresses.
    mail_requests_answer_alike_for_known_and_unknown_addresses,
    |app| async move {
        let unverified = app.register(&unique_email("unverified"), PASSWORD).await;
        let verified_email = unique_email("verified");
        app.register(&verified_email, PASSWORD).await;
        let token = outbox_token(&app, &verified_email, VERIFY_SUBJECT, "/verify-email").await;
        app.post_json("/verify-email", &json!({"token": token}))
            .await
            .expect_ok(StatusCode::OK);
        let unknown = unique_email("unknown");
        let addresses = [
            unverified.email.clone(),
            unverified.email.to_uppercase(),
            verified_email.clone(),
            unknown.clone(),
        ];
        for path in [
            "/forgot-password",
            "/verify-email/resend",
            "/send-verification",
        ] {
            let mut replies = Vec::new();
            for email in &addresses {
                replies.push(app.post_json(path, &json!({"email": email})).await);
            }
            let message = replies[0].expect_ok(StatusCode::OK)["message"].clone();
            assert!(message.is_string(), "{path}: {}", replies[0].text());
            for (reply, email) in replies.iter().zip(&addresses) {
                assert_eq!(reply.status, StatusCode::OK, "{path} {email}");
                assert_eq!(
                    reply.bytes,
                    replies[0].bytes,
                    "{path} {email}: {}",
                    reply.text()
                );
                assert_eq!(
                    reply.header("content-type"),
                    replies[0].header("content-type")
                );
            }
        }
        // The mail did go where it should, and nowhere else.
        outbox_token(&app, &unverified.email, RESET_SUBJECT, "/reset-password").await;
        let outbox = read_mail_dir(&app.outbox(), "eml");
        assert!(
            outbox.iter().all(|(_, raw)| !raw.contains(&unknown)),
            "mail went to an unknown address"
        );
    }
);

both_backends!(
    /// Account enumeration through registration while verification is
    /// required: registering an address that already exists (in any
    /// letter case) must answer exactly as a new registration does (201,
    /// the same shape, no tokens, no `id`), and its `created_at` must not
    /// be the existing account's.
    registration_with_verification_required_answers_alike,
    vars[("REQUIRE_EMAIL_VERIFICATION", "true")],
    |app| async move {
        let existing = unique_email("existing");
        let register = |email: String| {
            let app = &app;
            async move {
                app.post_json(
                    "/register",
                    &json!({"email": email, "password": PASSWORD, "name": "Sam"}),
                )
                .await
            }
        };
        register(existing.clone())
            .await
            .expect_ok(StatusCode::CREATED);
        // Let a second pass so that the old account's created_at differs
        // from now.
        tokio::time::sleep(Duration::from_millis(1_100)).await;

        let fresh = unique_email("fresh");
        let new_reply = register(fresh.clone()).await;
        let again = register(existing.clone()).await;
        let again_upper = register(existing.to_uppercase()).await;
        let shape = |reply: &Reply, email: &str| {
            let mut data = reply.expect_ok(StatusCode::CREATED).clone();
            assert_eq!(keys(&data), ["user"], "{}", reply.text());
            let created_at = rfc3339(&data["user"]["created_at"]);
            assert!(
                (now() - created_at).abs() <= 2,
                "created_at {created_at}: {}",
                reply.text()
            );
            let user = data["user"].as_object_mut().unwrap();
            user.remove("created_at");
            assert_eq!(user.remove("email"), Some(json!(email)));
            assert!(!user.contains_key("id"), "{}", reply.text());
            data
        };
        let new_shape = shape(&new_reply, &fresh);
        assert_eq!(shape(&again, &existing), new_shape);
        assert_eq!(shape(&again_upper, &existing.to_uppercase()), new_shape);
        for reply in [&again, &again_upper] {
            for header in ["content-type", "cache-control"] {
                assert_eq!(reply.header(header), new_reply.header(header), "{header}");
            }
        }
        assert_eq!(app.count_users_in_db(&existing).await, 1);
    }
);

// ---- injection -------------------------------------------------------------------

/// Strings that break naively built SQL, or C strings, or logs.
const NASTY: &[&str] = &[
    "' OR '1'='1",
    "' OR 1=1 --",
    "\"; DROP TABLE users; --",
    "x'); DELETE FROM sessions; --",
    "%' OR email LIKE '%",
    "\\'; SELECT pg_sleep(5); --",
    "a\u{0}b",
    "\u{0}",
    "line\r\nInjected: header",
    "tab\tand\u{7}bell\u{1b}[31m",
];

/// The rows of a table, counted behind the API's back.
async fn count_rows(app: &TestApp, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    sqlx::query_scalar::<sqlx::Any, i64>(sqlx::AssertSqlSafe(sql))
        .fetch_one(app.store().pool())
        .await
        .expect("count rows")
}

both_backends!(
    /// SQL metacharacters and NUL/control characters as e-mail and password
    /// at login and registration. Login must answer 401
    /// `INVALID_CREDENTIALS` (byte-identical to any wrong login);
    /// registration with such an e-mail 422 `VALIDATION_ERROR` naming
    /// `email`. A password may hold any character: one full of SQL
    /// registers (201) and works as itself only, and a NUL in it does not
    /// cut it short. No row appears or goes but the accounts registered.
    injection_in_credentials_changes_nothing,
    |app| async move {
        let victim = app.register(&unique_email("victim"), PASSWORD).await;
        let wrong = app.login_json(&victim.email, OTHER_PASSWORD).await;
        wrong.expect_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
        let users_before = count_rows(&app, "users").await;
        let sessions_before = count_rows(&app, "sessions").await;

        for nasty in NASTY {
            for (email, password) in [
                (nasty.to_string(), PASSWORD.to_string()),
                (format!("{nasty}@example.com"), PASSWORD.to_string()),
                (victim.email.clone(), nasty.to_string()),
                (format!("{}{nasty}", victim.email), PASSWORD.to_string()),
            ] {
                let reply = app.login_json(&email, &password).await;
                assert_eq!(
                    reply.bytes,
                    wrong.bytes,
                    "login {email:?} / {password:?}: {}",
                    reply.text()
                );
                assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
            }
            for email in [
                nasty.to_string(),
                format!("{nasty}@example.com"),
                format!("a@example.com{nasty}"),
            ] {
                app.post_json("/register", &json!({"email": email, "password": PASSWORD}))
                    .await
                    .expect_invalid_field("email");
            }
        }
        assert_eq!(count_rows(&app, "users").await, users_before);
        assert_eq!(count_rows(&app, "sessions").await, sessions_before);

        // A password of SQL is just a password.
        let sql_password = "Robert'); DROP TABLE users; --";
        let bobby = app.register(&unique_email("bobby"), sql_password).await;
        app.login_json(&bobby.email, sql_password)
            .await
            .expect_ok(StatusCode::OK);
        app.login_json(&bobby.email, "' OR '1'='1")
            .await
            .expect_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
        // A NUL does not end the password.
        let nul_password = "Tangerine-Otter-42\u{0}rest-of-it";
        let nul = app.register(&unique_email("nul"), nul_password).await;
        app.login_json(&nul.email, nul_password)
            .await
            .expect_ok(StatusCode::OK);
        app.login_json(&nul.email, "Tangerine-Otter-42")
            .await
            .expect_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");

        assert_eq!(count_rows(&app, "users").await, users_before + 2);
        app.me(&victim.access).await.expect_ok(StatusCode::OK);
        app.login_json(&victim.email, PASSWORD)
            .await
            .expect_ok(StatusCode::OK);
    }
);

both_backends!(
    /// SQL metacharacters and control characters in a display name, at
    /// registration and `PATCH /me`. SQL is text like any other: stored and
    /// returned exactly (200/201). NUL and other control characters must be
    /// 422 `VALIDATION_ERROR` naming `name` (PostgreSQL cannot even store
    /// a NUL: a 500 there would be the bug), and the name stays as it was.
    injection_in_names_changes_nothing,
    |app| async move {
        let user = app.register(&unique_email("name"), PASSWORD).await;
        let sql_name = "Robert'); DROP TABLE users; --";
        let patched = app
            .auth_patch_json("/me", &user.access, &json!({"name": sql_name}))
            .await;
        assert_eq!(patched.expect_ok(StatusCode::OK)["name"], json!(sql_name));
        let reply = app
            .post_json(
                "/register",
                &json!({
                    "email": unique_email("sqlname"), "password": PASSWORD, "name": "' OR 1=1 --",
                }),
            )
            .await;
        assert_eq!(
            reply.expect_ok(StatusCode::CREATED)["user"]["name"],
            json!("' OR 1=1 --")
        );

        for name in [
            "a\u{0}b",
            "\u{0}",
            "line\r\nbreak",
            "bell\u{7}",
            "esc\u{1b}[31m",
            "del\u{7f}",
        ] {
            app.auth_patch_json("/me", &user.access, &json!({"name": name}))
                .await
                .expect_invalid_field("name");
            let email = unique_email("ctl");
            app.post_json(
                "/register",
                &json!({"email": email, "password": PASSWORD, "name": name}),
            )
            .await
            .expect_invalid_field("name");
            assert_eq!(app.count_users_in_db(&email).await, 0, "{name:?}");
        }
        let me = app.me(&user.access).await;
        assert_eq!(me.expect_ok(StatusCode::OK)["name"], json!(sql_name));
    }
);

both_backends!(
    /// SQL metacharacters and NUL/control characters as tokens: as a
    /// refresh token, a reset token, a verification token, a bearer token
    /// (where HTTP allows the characters). Must be 401 `INVALID_TOKEN`, 400
    /// `INVALID_RESET_TOKEN`, 400 `INVALID_VERIFICATION_TOKEN`; the
    /// password and the session are untouched.
    injection_in_tokens_changes_nothing,
    |app| async move {
        let user = app.register(&unique_email("tokens"), PASSWORD).await;
        for nasty in NASTY {
            expect_invalid(nasty, &app.refresh(nasty).await);
            app.post_json(
                "/reset-password",
                &json!({"token": nasty, "new_password": OTHER_PASSWORD}),
            )
            .await
            .expect_error(StatusCode::BAD_REQUEST, "INVALID_RESET_TOKEN");
            app.post_json("/verify-email", &json!({"token": nasty}))
                .await
                .expect_error(StatusCode::BAD_REQUEST, "INVALID_VERIFICATION_TOKEN");
            let printable = !nasty.chars().any(char::is_control);
            if printable {
                let reply = app
                    .send(
                        app.request(Method::GET, "/me")
                            .header(AUTHORIZATION, format!("Bearer {nasty}")),
                    )
                    .await;
                expect_invalid(nasty, &reply);
            }
        }
        app.me(&user.access).await.expect_ok(StatusCode::OK);
        app.login_json(&user.email, PASSWORD)
            .await
            .expect_ok(StatusCode::OK);
        app.refresh_ok(&user.refresh).await;
    }
);

/// Percent-encodes every byte of `s` that is not unreserved (RFC 3986).
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

both_backends!(
    /// SQL metacharacters and NUL/control characters as a session id in
    /// `DELETE /sessions/{id}`, and another user's session id. Must be 404
    /// `NOT_FOUND`, and no session is revoked: the user's and the other
    /// user's tokens keep working.
    injection_in_session_ids_changes_nothing,
    |app| async move {
        let ann = app.register(&unique_email("ann"), PASSWORD).await;
        let bob = app.register(&unique_email("bob"), PASSWORD).await;
        let sessions_before = count_rows(&app, "sessions").await;
        let mut ids: Vec<String> = NASTY.iter().map(|s| s.to_string()).collect();
        ids.extend([
            bob.sid(),
            format!("{}' OR '1'='1", ann.sid()),
            "*".into(),
            "%".into(),
        ]);
        for id in &ids {
            let path = format!("/sessions/{}", percent_encode(id));
            app.auth_delete(&path, &ann.access)
                .await
                .expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");
        }
        assert_eq!(count_rows(&app, "sessions").await, sessions_before);
        for user in [&ann, &bob] {
            app.me(&user.access).await.expect_ok(StatusCode::OK);
        }
        assert_eq!(app.sessions(&ann.access).await.len(), 1);
        // Control: the real id of one's own session does revoke it.
        let id = app.sessions(&ann.access).await[0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        app.auth_delete(&format!("/sessions/{id}"), &ann.access)
            .await
            .expect_ok(StatusCode::OK);
        app.me(&ann.access)
            .await
            .expect_error(StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");
        app.me(&bob.access).await.expect_ok(StatusCode::OK);
    }
);

// ---- bodies ----------------------------------------------------------------------

both_backends!(
    /// Oversized bodies: over 64 KiB on every endpoint that reads a body
    /// (JSON, form, `/token`), sent with a `Content-Length`, chunked without
    /// one, and a `Content-Length` of 10 GB with almost nothing behind it.
    /// Must be 413 `PAYLOAD_TOO_LARGE` in the envelope (also at `/token`),
    /// without reading past 64 KiB, the 10 GB one at once (not after the
    /// 20 s body deadline), and nothing is stored.
    oversized_bodies_are_refused,
    |app| async move {
        let user = app.register(&unique_email("big"), PASSWORD).await;
        let big = "x".repeat(70 * 1024);
        let email = unique_email("huge");
        for (path, body) in [
            ("/register", json!({"email": email, "password": big})),
            ("/login/json", json!({"email": email, "password": big})),
            ("/refresh", json!({"refresh_token": big})),
            ("/forgot-password", json!({"email": email, "padding": big})),
            (
                "/reset-password",
                json!({"token": big, "new_password": PASSWORD}),
            ),
            ("/verify-email", json!({"token": big})),
        ] {
            app.post_json(path, &body)
                .await
                .expect_error(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
        }
        for path in ["/login", "/token"] {
            app.post_form(
                path,
                &[
                    ("grant_type", "password"),
                    ("username", &email),
                    ("password", &big),
                ],
            )
            .await
            .expect_error(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
        }
        app.auth_patch_json("/me", &user.access, &json!({"name": big}))
            .await
            .expect_error(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
        // Chunked, without a Content-Length: 70 chunks of 1 KiB.
        let mut chunked = raw_login("Transfer-Encoding: chunked\r\n", "");
        for _ in 0..70 {
            chunked.extend_from_slice(b"400\r\n");
            chunked.extend_from_slice(&[b' '; 1024]);
            chunked.extend_from_slice(b"\r\n");
        }
        chunked.extend_from_slice(b"0\r\n\r\n");
        let (answer, _) = raw_request(&app, chunked, Duration::from_secs(15)).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "chunked: {answer}");
        assert!(answer.contains(r#""code":"PAYLOAD_TOO_LARGE""#), "{answer}");

        // A Content-Length of 10 GB: refused without waiting for the body.
        let head = raw_login("Content-Length: 10000000000\r\n", r#"{"email""#);
        let (answer, waited) = raw_request(&app, head, Duration::from_secs(30)).await;
        assert!(
            answer.starts_with("HTTP/1.1 413"),
            "10 GB announced: {answer}"
        );
        assert!(answer.contains(r#""code":"PAYLOAD_TOO_LARGE""#), "{answer}");
        assert!(waited < Duration::from_secs(5), "held {waited:?}");

        assert_eq!(app.count_users_in_db(&email).await, 0);
        app.me(&user.access).await.expect_ok(StatusCode::OK);
    }
);

both_backends!(
    /// A small body that is very deep: 8,000 nested arrays or objects
    /// (under 64 KiB) that a recursive parser would follow to a stack
    /// overflow.
    /// Must be 400 `INVALID_JSON`, and the server carries on.
    deeply_nested_json_is_refused,
    |app| async move {
        for (open, close) in [("[", "]"), ("{\"a\":", "}")] {
            let body = format!("{}1{}", open.repeat(8_000), close.repeat(8_000));
            for path in ["/register", "/login/json", "/refresh"] {
                app.post_raw(path, "application/json", body.clone())
                    .await
                    .expect_error(StatusCode::BAD_REQUEST, "INVALID_JSON");
            }
        }
        app.get_root("/healthz").await.expect_ok(StatusCode::OK);
    }
);

both_backends!(
    /// A stalled body: a raw connection sends the headers of a login with a
    /// `Content-Length` of 100, a few bytes of the body, then nothing.
    /// Must be answered 408 `REQUEST_TIMEOUT` in the envelope after the 20 s
    /// body deadline (not held open for ever), and the server keeps
    /// answering others meanwhile.
    a_stalled_body_is_answered_408,
    |app| async move {
        let head = raw_login("Content-Length: 100\r\n", r#"{"email""#);
        let addr = app.base_url.trim_start_matches("http://").to_string();
        let stalled =
            tokio::task::spawn_blocking(move || stall(&addr, &head, Duration::from_secs(40)));
        // Meanwhile, others are served.
        tokio::time::sleep(Duration::from_millis(500)).await;
        app.get_root("/healthz").await.expect_ok(StatusCode::OK);

        let (answer, waited) = stalled.await.unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 408"),
            "a stalled body got: {answer:?}"
        );
        assert!(answer.contains(r#""code":"REQUEST_TIMEOUT""#), "{answer}");
        assert!(
            answer
                .to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{answer}"
        );
        assert!(
            waited >= Duration::from_secs(19) && waited < Duration::from_secs(35),
            "held {waited:?}"
        );
    }
);

// ---- the client IP ---------------------------------------------------------------

/// `POST` a JSON body claiming to be forwarded for `forwarded`.
async fn post_forwarded(app: &TestApp, forwarded: &str, path: &str, body: &Value) -> Reply {
    app.send(
        app.request(Method::POST, path)
            .header("x-forwarded-for", forwarded)
            .json(body),
    )
    .await
}

/// Registers through `app` claiming `forwarded`; the IP `/sessions` shows.
async fn session_ip(app: &TestApp, forwarded: &str) -> String {
    let body = json!({"email": unique_email("ip"), "password": PASSWORD});
    let reply = post_forwarded(app, forwarded, "/register", &body).await;
    let token = reply.expect_ok(StatusCode::CREATED)["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let sessions = app.sessions(&token).await;
    assert_eq!(sessions.len(), 1);
    sessions[0]["ip"].as_str().unwrap_or_default().to_string()
}

/// A failed login claiming `forwarded`.
async fn login_forwarded(app: &TestApp, forwarded: &str) -> Reply {
    let body = json!({"email": unique_email("xff"), "password": PASSWORD});
    post_forwarded(app, forwarded, "/login/json", &body).await
}

both_backends!(
    /// `X-Forwarded-For` from a peer that is not a trusted proxy (none is
    /// configured): a client rotating made-up addresses to escape the
    /// per-IP login limit (here 2 a minute), or to plant an IP in
    /// `/sessions`. Must change nothing: the third attempt is 429
    /// `RATE_LIMITED` whatever it claims, and sessions show the TCP peer.
    x_forwarded_for_from_an_untrusted_peer_changes_nothing,
    vars[("RATE_LIMIT_ENABLED", "true"), ("RATE_LIMIT_LOGIN_PER_IP", "2/minute")],
    |app| async move {
        for ip in ["198.51.100.1", "198.51.100.2"] {
            login_forwarded(&app, ip)
                .await
                .expect_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
        }
        for ip in [
            "198.51.100.3",
            "127.0.0.2",
            "::1",
            "198.51.100.4, 198.51.100.5",
        ] {
            login_forwarded(&app, ip)
                .await
                .expect_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
        }
        assert_eq!(session_ip(&app, "198.51.100.7").await, "127.0.0.1");
        assert_eq!(session_ip(&app, "6.6.6.6, 198.51.100.7").await, "127.0.0.1");
    }
);

both_backends!(
    /// `X-Forwarded-For` from a trusted proxy (`TRUSTED_PROXIES=127.0.0.1`,
    /// the test client's address): the forwarded client is who the limits
    /// count and sessions show; a client that writes its own entries left
    /// of the proxy's cannot pick its IP. Must be: the same forwarded
    /// client limited after 2 attempts, another one not; sessions show the
    /// rightmost untrusted address.
    x_forwarded_for_from_a_trusted_proxy_names_the_client,
    vars[
        ("RATE_LIMIT_ENABLED", "true"),
        ("RATE_LIMIT_LOGIN_PER_IP", "2/minute"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ],
    |app| async move {
        for _ in 0..2 {
            login_forwarded(&app, "198.51.100.1")
                .await
                .expect_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
        }
        login_forwarded(&app, "198.51.100.1")
            .await
            .expect_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
        // A spoofed entry left of the one the proxy appended does not help.
        login_forwarded(&app, "198.51.100.9, 198.51.100.1")
            .await
            .expect_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
        login_forwarded(&app, "198.51.100.2")
            .await
            .expect_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");

        assert_eq!(session_ip(&app, "198.51.100.7").await, "198.51.100.7");
        assert_eq!(
            session_ip(&app, "6.6.6.6, 198.51.100.8").await,
            "198.51.100.8"
        );
    }
);

// ---- the host --------------------------------------------------------------------

both_backends!(
    /// Another user on the same machine reads what the server wrote: the
    /// SQLite database (and its `-wal` and `-shm`), the data directory,
    /// the outbox and its mail, which holds live links. Each must be the
    /// server's user's alone (SPEC §1: files 0600, directories 0700),
    /// whatever the umask (the tests run under 022).
    files_are_unreadable_by_other_local_users,
    |backend: Backend| async move {
        let db = TestDb::create(backend).await;
        let data = db.dir.path().join("data");
        let outbox = data.join("outbox");
        let mut vars = vec![("MAIL_OUTBOX_DIR".to_string(), outbox.display().to_string())];
        if backend == Backend::Sqlite {
            let url = format!("sqlite://{}/portcullis.db", data.display());
            vars.push(("DATABASE_URL".to_string(), url));
        }
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let app = TestApp::builder_on(db.clone()).vars(&vars).spawn().await;
        let email = unique_email("files");
        app.register(&email, PASSWORD).await;

        let deadline = Instant::now() + DELIVERY_TIMEOUT;
        let eml = loop {
            if let Some((path, _)) = read_mail_dir(&outbox, "eml").into_iter().next() {
                break path;
            }
            assert!(Instant::now() < deadline, "no mail in {}", outbox.display());
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let mut expected = vec![(data.clone(), 0o700), (outbox.clone(), 0o700), (eml, 0o600)];
        if backend == Backend::Sqlite {
            for file in ["portcullis.db", "portcullis.db-wal", "portcullis.db-shm"] {
                expected.push((data.join(file), 0o600));
            }
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let wrong: Vec<String> = expected
                .iter()
                .filter_map(|(path, want)| {
                    let mode = std::fs::metadata(path)
                        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                        .permissions()
                        .mode()
                        & 0o777;
                    (mode != *want).then(|| format!("{} is {mode:o}, not {want:o}", path.display()))
                })
                .collect();
            assert!(wrong.is_empty(), "{wrong:#?}");
        }
        #[cfg(not(unix))]
        let _ = expected;
    }
);

both_backends!(
    /// An outsider scrapes `/metrics` of a production server to watch
    /// activity (logins, mail sent). Must be 404 `NOT_FOUND` in the
    /// envelope on the main listener with `PORTCULLIS_ENV=production`
    /// (metrics are served on `METRICS_ADDR` only), as on any unknown path.
    metrics_are_not_public_in_production,
    vars[("PORTCULLIS_ENV", "production")],
    |app| async move {
        app.login_json(&unique_email("watched"), PASSWORD)
            .await
            .expect_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
        let reply = app.get_root("/metrics").await;
        reply.expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");
        assert_eq!(reply.bytes, app.get_root("/no-such-path").await.bytes);
        assert!(!reply.text().contains("portcullis_"), "{}", reply.text());
        let metrics = app.portcullis.metrics_router();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, metrics).await });
        let scrape = app
            .send(app.client.get(format!("http://{addr}/metrics")))
            .await;
        assert_eq!(scrape.status, StatusCode::OK);
        assert!(
            scrape.text().contains("portcullis_logins_total"),
            "{}",
            scrape.text()
        );
    }
);
