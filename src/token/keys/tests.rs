//! The asymmetric keys' unit tests.

use super::*;

/// RFC 7638 §3.1's example key and its thumbprint.
#[test]
fn the_kid_is_the_rfc_7638_thumbprint() {
    let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
    let jwk: Jwk = serde_json::from_value(serde_json::json!({
        "kty": "RSA", "n": n, "e": "AQAB",
    }))
    .unwrap();
    let key = VerifyingKey::from_public_jwk(Algorithm::RS256, jwk).unwrap();
    assert_eq!(key.kid, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    assert_eq!(key.jwk.common.key_id.as_deref(), Some(key.kid.as_str()));
}

#[test]
fn generated_pairs_sign_and_verify_and_publish_no_private_member() {
    for algorithm in [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256] {
        let pair = generate(algorithm).unwrap();
        assert!(pair.private_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(pair.public_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
        let (signing, own) = signing_key(algorithm, pair.private_pem.as_bytes()).unwrap();
        let public = verifying_key(algorithm, pair.public_pem.as_bytes()).unwrap();
        assert_eq!(own.kid, public.kid, "{algorithm:?}");
        let keys = AsymmetricKeys::new(algorithm, (signing, own), vec![public]);
        assert_eq!(
            keys.verifying_keys().len(),
            1,
            "the same key is listed once"
        );
        let jwks = keys.jwks();
        let jwk = jwks["keys"][0].as_object().unwrap();
        assert_eq!(jwk["kid"], keys.kid());
        assert_eq!(jwk["alg"], algorithm_name(algorithm));
        assert_eq!(jwk["use"], "sig");
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(
                !jwk.contains_key(private),
                "{algorithm:?}: {private} in {jwk:?}"
            );
        }
    }
}

/// Ed25519 keys were written as PKCS#8 v2 (with the public key inside)
/// before: they still sign, under the same `kid`.
#[test]
fn eddsa_keys_in_the_pkcs8_v2_form_are_still_read() {
    use ed25519_dalek::pkcs8::EncodePrivateKey as _;
    use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
    let key = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
    let v2 = key.to_pkcs8_pem(LineEnding::LF).unwrap();
    let (_, own) = signing_key(Algorithm::EdDSA, v2.as_bytes()).unwrap();
    use ed25519_dalek::pkcs8::EncodePublicKey as _;
    let public = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    assert_eq!(
        verifying_key(Algorithm::EdDSA, public.as_bytes())
            .unwrap()
            .kid,
        own.kid
    );
}

#[test]
fn keys_of_another_kind_are_refused() {
    let ed = generate(Algorithm::EdDSA).unwrap();
    let ec = generate(Algorithm::ES256).unwrap();
    assert!(signing_key(Algorithm::ES256, ed.private_pem.as_bytes()).is_err());
    assert!(signing_key(Algorithm::RS256, ec.private_pem.as_bytes()).is_err());
    assert!(signing_key(Algorithm::EdDSA, ec.private_pem.as_bytes()).is_err());
    assert!(verifying_key(Algorithm::EdDSA, ec.public_pem.as_bytes()).is_err());
    assert!(signing_key(Algorithm::EdDSA, b"not a key").is_err());
    let err = verifying_key(Algorithm::EdDSA, ed.private_pem.as_bytes()).unwrap_err();
    assert!(err.contains("private key"), "{err}");
    assert!(signing_key(Algorithm::HS256, ed.private_pem.as_bytes()).is_err());
}

#[test]
fn rsa_keys_under_2048_bits_are_refused() {
    use rsa::pkcs8::{EncodePublicKey as _, LineEnding};
    let small = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 1024).unwrap();
    let pem = small
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let err = verifying_key(Algorithm::RS256, pem.as_bytes()).unwrap_err();
    assert!(err.contains("1024 bits"), "{err}");
}

#[test]
fn the_development_key_is_generated_once_and_private() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (first, path) = load_or_create_development_key(&data, Algorithm::EdDSA).unwrap();
    let (second, again) = load_or_create_development_key(&data, Algorithm::EdDSA).unwrap();
    assert_eq!(first, second);
    assert_eq!(path, again);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&data), 0o700);
        let (_, public) = development_key_paths(&data, Algorithm::EdDSA);
        assert_eq!(mode(&public), 0o600);
    }
}
