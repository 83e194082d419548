//! Interoperability: the tokens Portcullis issues are verified by PyJWT, an
//! independent JWT implementation in another language, with nothing but the
//! shared secret, or for RS256, ES256 and EdDSA with nothing but the public
//! key or the JWKS URL (PyJWT's `PyJWKClient`) (SPEC §5: "Other JWT
//! libraries (PyJWT, jose) verify them with the same key, or with the JWKS").
//!
//! Needs Python 3 with PyJWT and `cryptography` (`pyjwt[crypto]`, for the
//! asymmetric algorithms): `scripts/test` installs them into a virtual
//! environment and points `PORTCULLIS_TEST_PYTHON` at it (see
//! `common::python`). A missing PyJWT fails the test rather than skipping it.

#[macro_use]
mod common;

use common::*;
use serde_json::{Value, json};

/// Verifies `token` with PyJWT and prints its claims as JSON, or prints
/// `REJECTED <exception>` when PyJWT refuses it.
const VERIFY_WITH_PYJWT: &str = r#"
import json, sys
import jwt
token, key, alg, issuer, audience = sys.argv[1:6]
options = {"require": ["exp", "iat", "sub"]}
kwargs = {}
if issuer:
    kwargs["issuer"] = issuer
    options["require"].append("iss")
if audience:
    kwargs["audience"] = audience
    options["require"].append("aud")
try:
    claims = jwt.decode(token, key, algorithms=[alg], options=options, **kwargs)
    header = jwt.get_unverified_header(token)
    print(json.dumps({"claims": claims, "header": header}))
except jwt.PyJWTError as e:
    print("REJECTED " + type(e).__name__)
"#;

/// What PyJWT says of `token`: `Ok((header, claims))` or `Err(exception name)`.
fn pyjwt(
    token: &str,
    key: &str,
    alg: &str,
    issuer: &str,
    audience: &str,
) -> Result<(Value, Value), String> {
    let out = python()
        .args(["-c", VERIFY_WITH_PYJWT, token, key, alg, issuer, audience])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{} does not run: {e}; {PYTHON_PACKAGES_HINT}",
                python_program()
            )
        });
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        out.status.success(),
        "PyJWT could not run under {} (is it installed? {PYTHON_PACKAGES_HINT}): {}",
        python_program(),
        String::from_utf8_lossy(&out.stderr)
    );
    if let Some(reason) = stdout.strip_prefix("REJECTED ") {
        return Err(reason.to_string());
    }
    let parsed: Value = serde_json::from_str(&stdout).expect("PyJWT printed JSON");
    Ok((parsed["header"].clone(), parsed["claims"].clone()))
}

both_backends!(pyjwt_verifies_access_and_refresh_tokens, |app| async move {
    let user = app.register("py@example.com", PASSWORD).await;

    let (header, access) =
        pyjwt(&user.access, SECRET, "HS256", "", "").expect("PyJWT verifies the access token");
    assert_eq!(header["alg"], json!("HS256"));
    assert!(header["kid"].as_str().is_some_and(|k| !k.is_empty()));
    assert_eq!(access["sub"], json!(user.user_id.to_string()));
    assert_eq!(access["email"], json!("py@example.com"));
    assert_eq!(access["type"], json!("access"));

    let (_, refresh) =
        pyjwt(&user.refresh, SECRET, "HS256", "", "").expect("PyJWT verifies the refresh token");
    assert_eq!(refresh["type"], json!("refresh"));
    assert_eq!(refresh["sid"], access["sid"]);
    assert!(refresh.get("email").is_none(), "{refresh}");

    // PyJWT's check is real: another key or another algorithm is refused.
    assert_eq!(
        pyjwt(&user.access, &SECRET.replace('0', "1"), "HS256", "", "").unwrap_err(),
        "InvalidSignatureError"
    );
    assert_eq!(
        pyjwt(&user.access, SECRET, "HS512", "", "").unwrap_err(),
        "InvalidAlgorithmError"
    );
});

both_backends!(
    pyjwt_verifies_hs512_with_issuer_and_audience,
    vars [
        ("ALGORITHM", "HS512"),
        ("JWT_ISSUER", "https://auth.example.com"),
        ("JWT_AUDIENCE", "example-api"),
    ],
    |app| async move {
        let user = app.register("iss@example.com", PASSWORD).await;
        let (header, claims) = pyjwt(
            &user.access,
            SECRET,
            "HS512",
            "https://auth.example.com",
            "example-api",
        )
        .expect("PyJWT verifies an HS512 token with iss and aud");
        assert_eq!(header["alg"], json!("HS512"));
        assert_eq!(claims["iss"], json!("https://auth.example.com"));
        assert_eq!(claims["aud"], json!("example-api"));

        assert_eq!(
            pyjwt(
                &user.access,
                SECRET,
                "HS512",
                "https://auth.example.com",
                "another-api"
            )
            .unwrap_err(),
            "InvalidAudienceError"
        );
    }
);

both_backends!(
    tokens_signed_by_pyjwt_are_accepted_only_with_a_live_session,
    |app| async move {
        // A token PyJWT signs with the shared key for a real session is accepted:
        // the wire format is plain JWS, not something only Portcullis reads.
        let user = app.register("sign@example.com", PASSWORD).await;
        let (_, mut claims) = pyjwt(&user.access, SECRET, "HS256", "", "").unwrap();
        claims["jti"] = json!("signed-by-pyjwt");
        let script = "import json, sys, jwt; print(jwt.encode(json.loads(sys.argv[1]), sys.argv[2], algorithm='HS256'))";
        let out = python()
            .args(["-c", script, &claims.to_string(), SECRET])
            .output()
            .expect("python runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let foreign = String::from_utf8(out.stdout).unwrap().trim().to_string();
        app.me(&foreign).await.expect_ok(reqwest::StatusCode::OK);

        // Once the session is revoked, the same foreign token is refused.
        app.auth_post_empty("/logout", &user.access)
            .await
            .expect_ok(reqwest::StatusCode::OK);
        app.me(&foreign)
            .await
            .expect_error(reqwest::StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");
    }
);

/// Verifies `token` with PyJWT's `PyJWKClient`, which fetches the key named
/// by the token's `kid` from the JWKS URL; prints the claims and the key's
/// `kid` and algorithm as JSON, or `REJECTED <exception>`.
const VERIFY_WITH_PYJWKCLIENT: &str = r#"
import json, sys
import jwt
token, url, alg, issuer, audience = sys.argv[1:6]
kwargs = {}
if issuer:
    kwargs["issuer"] = issuer
if audience:
    kwargs["audience"] = audience
try:
    key = jwt.PyJWKClient(url).get_signing_key_from_jwt(token)
    claims = jwt.decode(token, key.key, algorithms=[alg],
                        options={"require": ["exp", "iat", "sub"]}, **kwargs)
    print(json.dumps({"claims": claims, "kid": key.key_id, "alg": key.algorithm_name}))
except jwt.PyJWTError as e:
    print("REJECTED " + type(e).__name__)
"#;

/// What `PyJWKClient` says of `token` with the keys at `url`:
/// `Ok((claims, kid, alg))` or `Err(exception name)`.
fn pyjwkclient(
    token: &str,
    url: &str,
    alg: &str,
    issuer: &str,
    audience: &str,
) -> Result<(Value, String, String), String> {
    let out = python()
        .args([
            "-c",
            VERIFY_WITH_PYJWKCLIENT,
            token,
            url,
            alg,
            issuer,
            audience,
        ])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{} does not run: {e}; {PYTHON_PACKAGES_HINT}",
                python_program()
            )
        });
    assert!(
        out.status.success(),
        "PyJWKClient could not run under {} (are PyJWT and cryptography installed? \
         {PYTHON_PACKAGES_HINT}): {}",
        python_program(),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if let Some(reason) = stdout.strip_prefix("REJECTED ") {
        return Err(reason.to_string());
    }
    let parsed: Value = serde_json::from_str(&stdout).expect("PyJWKClient printed JSON");
    Ok((
        parsed["claims"].clone(),
        parsed["kid"].as_str().unwrap_or_default().to_string(),
        parsed["alg"].as_str().unwrap_or_default().to_string(),
    ))
}

both_backends!(
    /// RS256, ES256 and EdDSA tokens: PyJWT verifies them with the public
    /// key's PEM, and `PyJWKClient` with nothing but the JWKS URL (it picks
    /// the key by `kid`), with the issuer and audience; both refuse them
    /// under another algorithm, and PyJWT refuses another key.
    pyjwt_verifies_asymmetric_tokens_with_the_public_key_and_the_jwks,
    |backend: Backend| async move {
        let dir = tempfile::tempdir().unwrap();
        let issuer = "https://auth.example.com";
        let audience = "example-api";
        for alg in ["EdDSA", "ES256", "RS256"] {
            let keys = KeyFiles::new(dir.path(), alg, alg);
            let other = KeyFiles::new(dir.path(), &format!("{alg}-other"), alg);
            let app = TestApp::builder(backend)
                .vars(&[
                    ("ALGORITHM", alg),
                    ("PRIVATE_KEY_FILE", &keys.private),
                    ("JWT_ISSUER", issuer),
                    ("JWT_AUDIENCE", audience),
                ])
                .spawn()
                .await;
            let user = app.register(&unique_email(alg), PASSWORD).await;

            let (header, claims) = pyjwt(&user.access, &keys.public_pem, alg, issuer, audience)
                .unwrap_or_else(|e| panic!("{alg}: PyJWT refuses the access token: {e}"));
            assert_eq!(header["alg"], json!(alg));
            assert_eq!(header["kid"], json!(keys.kid));
            assert_eq!(claims["sub"], json!(user.user_id.to_string()));
            assert_eq!(claims["type"], json!("access"));
            let (_, refresh) = pyjwt(&user.refresh, &keys.public_pem, alg, issuer, audience)
                .unwrap_or_else(|e| panic!("{alg}: PyJWT refuses the refresh token: {e}"));
            assert_eq!(refresh["type"], json!("refresh"));
            assert_eq!(
                pyjwt(&user.access, &other.public_pem, alg, issuer, audience).unwrap_err(),
                "InvalidSignatureError",
                "{alg}: another public key"
            );

            let url = app.url("/.well-known/jwks.json");
            let (claims, kid, key_alg) = pyjwkclient(&user.access, &url, alg, issuer, audience)
                .unwrap_or_else(|e| panic!("{alg}: PyJWKClient refuses the token: {e}"));
            assert_eq!(claims["email"], json!(user.email));
            assert_eq!(kid, keys.kid);
            assert_eq!(key_alg, alg);
            assert_eq!(
                pyjwkclient(&user.access, &url, alg, issuer, "another-api").unwrap_err(),
                "InvalidAudienceError"
            );
            let another = if alg == "RS256" { "ES256" } else { "RS256" };
            assert_eq!(
                pyjwkclient(&user.access, &url, another, issuer, audience).unwrap_err(),
                "InvalidAlgorithmError",
                "{alg} verified as {another}"
            );
        }
    }
);

// ---- the key files other tools read -------------------------------------------------

/// Reads the private key `argv[1]` with `cryptography`, prints its public
/// key (SPKI PEM) and a token PyJWT signed with it under `argv[2]`.
const SIGN_WITH_THE_KEY_FILE: &str = r#"
import json, sys
import jwt
from cryptography.hazmat.primitives import serialization
with open(sys.argv[1], "rb") as f:
    key = serialization.load_pem_private_key(f.read(), password=None)
public = key.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
).decode()
token = jwt.encode({"sub": "python"}, key, algorithm=sys.argv[2])
print(json.dumps({"public": public, "token": token}))
"#;

/// Checks that OpenSSL and Python's `cryptography` (with PyJWT) read the
/// private key `private` of `alg`, and find in it the public key `public`;
/// the token PyJWT signs with it verifies with that public key.
fn other_tools_read(alg: &str, private: &std::path::Path, public: &std::path::Path) {
    let what = format!("{alg}: {}", private.display());
    let public_pem = std::fs::read_to_string(public).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(private)
        .output()
        .expect("the openssl command runs");
    assert!(
        out.status.success(),
        "openssl pkey refuses {what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), public_pem, "{what}");

    let out = python()
        .args(["-c", SIGN_WITH_THE_KEY_FILE])
        .arg(private)
        .arg(alg)
        .output()
        .unwrap_or_else(|e| panic!("{} does not run: {e}", python_program()));
    assert!(
        out.status.success(),
        "cryptography/PyJWT refuse {what} ({PYTHON_PACKAGES_HINT}): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(printed["public"], public_pem.as_str(), "{what}");
    let pem = public_pem.as_bytes();
    let (key, algorithm) = match alg {
        "RS256" => (
            jsonwebtoken::DecodingKey::from_rsa_pem(pem),
            jsonwebtoken::Algorithm::RS256,
        ),
        "ES256" => (
            jsonwebtoken::DecodingKey::from_ec_pem(pem),
            jsonwebtoken::Algorithm::ES256,
        ),
        _ => (
            jsonwebtoken::DecodingKey::from_ed_pem(pem),
            jsonwebtoken::Algorithm::EdDSA,
        ),
    };
    let mut validation = jsonwebtoken::Validation::new(algorithm);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    let token = printed["token"].as_str().expect("a token");
    let claims = jsonwebtoken::decode::<Value>(token, &key.expect("a public key"), &validation)
        .unwrap_or_else(|e| panic!("{what}: PyJWT's token does not verify: {e}"));
    assert_eq!(claims.claims["sub"], "python");
}

/// The private keys Portcullis writes are the PKCS#8 form every tool reads
/// (for Ed25519 the RFC 8410 v1 form): `openssl pkey` and Python's
/// `cryptography` read each key `portcullis gen-key` writes and the
/// development key it generates, and find in it the public key written
/// beside it (the README's rotation runbook runs `openssl pkey -pubout`).
#[test]
fn generated_private_keys_are_read_by_openssl_and_python() {
    const BIN: &str = env!("CARGO_BIN_EXE_portcullis");
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], envs: &[(&str, &str)]| {
        let out = std::process::Command::new(BIN)
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("MFA_ENCRYPTION_KEY", MFA_KEY)
            .envs(envs.iter().copied())
            .args(args)
            .output()
            .expect("portcullis runs");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    for alg in ["EdDSA", "ES256", "RS256"] {
        let (private, public) = (format!("{alg}.pem"), format!("{alg}.pub.pem"));
        let args = ["gen-key", "--algorithm", alg, "--private-key", &private];
        run(&[&args[..], &["--public-key", &public]].concat(), &[]);
        other_tools_read(alg, &dir.path().join(private), &dir.path().join(public));
    }
    // The development key pair, generated into data/ on first use.
    for alg in ["EdDSA", "ES256", "RS256"] {
        run(&["migrate"], &[("ALGORITHM", alg)]);
        let stem = format!("data/signing-key-{}", alg.to_ascii_lowercase());
        other_tools_read(
            alg,
            &dir.path().join(format!("{stem}.pem")),
            &dir.path().join(format!("{stem}.pub.pem")),
        );
    }
}
