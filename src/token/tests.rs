//! The token service's unit tests.

use super::*;
use crate::clock::now_unix;
use crate::config::Config;
use crate::error::Error;
use base64::Engine as _;

fn service(extra: &[(&str, &str)]) -> TokenService {
    let mut vars = vec![("SECRET_KEY", "kq".repeat(20))];
    vars.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    TokenService::from_config(&Config::from_vars(vars).unwrap())
}

#[test]
fn roundtrip_has_the_spec_payload() {
    let svc = service(&[]);
    let issued = svc.issue(TokenType::Access, 7, "a@b.co", "sid1").unwrap();
    let claims = svc.decode(&issued.token, TokenType::Access).unwrap();
    assert_eq!(claims.sub, "7");
    assert_eq!(claims.email.as_deref(), Some("a@b.co"));
    assert_eq!(claims.exp - claims.iat, 1800);
    let header = jsonwebtoken::decode_header(&issued.token).unwrap();
    assert_eq!(
        header.kid.as_deref(),
        Some(key_id(&"kq".repeat(20)).as_str())
    );
    let refresh = svc.issue(TokenType::Refresh, 7, "a@b.co", "sid1").unwrap();
    assert!(refresh.claims.email.is_none());
    assert!(matches!(
        svc.decode(&refresh.token, TokenType::Access),
        Err(Error::InvalidToken)
    ));
}

#[test]
fn wrong_key_expired_and_alg_none_are_rejected() {
    let svc = service(&[]);
    let other =
        TokenService::from_config(&Config::from_vars([("SECRET_KEY", "zq".repeat(20))]).unwrap());
    let forged = other.issue(TokenType::Access, 1, "a@b.co", "s").unwrap();
    assert!(matches!(
        svc.decode(&forged.token, TokenType::Access),
        Err(Error::InvalidToken)
    ));
    let mut claims = svc
        .issue(TokenType::Access, 1, "a@b.co", "s")
        .unwrap()
        .claims;
    claims.exp = now_unix() - 5;
    let expired = svc.sign(claims.clone()).unwrap();
    assert!(matches!(
        svc.decode(&expired.token, TokenType::Access),
        Err(Error::TokenExpired)
    ));
    let b64 = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    claims.exp = now_unix() + 60;
    let none = format!(
        "{}.{}.",
        b64(r#"{"alg":"none","typ":"JWT"}"#),
        b64(&serde_json::to_string(&claims).unwrap())
    );
    assert!(matches!(
        svc.decode(&none, TokenType::Access),
        Err(Error::InvalidToken)
    ));
}

#[test]
fn previous_keys_verify_and_audience_is_enforced() {
    let old_key = "oq".repeat(20);
    let old = service(&[]);
    let old = TokenService {
        kid: key_id(&old_key),
        encoding: EncodingKey::from_secret(old_key.as_bytes()),
        ..old
    };
    let token = old
        .issue(TokenType::Access, 1, "a@b.co", "s")
        .unwrap()
        .token;
    let rotated = service(&[("SECRET_KEY_PREVIOUS", &old_key)]);
    assert!(rotated.decode(&token, TokenType::Access).is_ok());
    let strict = service(&[("SECRET_KEY_PREVIOUS", &old_key), ("JWT_AUDIENCE", "app")]);
    assert!(strict.decode(&token, TokenType::Access).is_err());
}

/// The HMAC fast path and jsonwebtoken give the same answer (accepted
/// with the same claims, expired, or invalid) for every token in a set
/// of good, altered, forged and malformed ones, for each HMAC algorithm,
/// with and without an issuer and audience, and with a previous secret.
#[test]
fn hmac_fast_path_agrees_with_jsonwebtoken() {
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let (key, old_key, stranger_key) = ("kq".repeat(40), "oq".repeat(40), "sq".repeat(40));
    let service = |vars: &[(&str, &str)]| {
        TokenService::from_config(&Config::from_vars(vars.iter().copied()).unwrap())
    };
    let mut compared = 0;
    for alg in ["HS256", "HS384", "HS512"] {
        for (iss, aud) in [(None, None), (Some("https://auth.test"), Some("app"))] {
            let mut vars = vec![
                ("ALGORITHM", alg),
                ("SECRET_KEY", &key),
                ("SECRET_KEY_PREVIOUS", &old_key),
            ];
            vars.extend(iss.map(|v| ("JWT_ISSUER", v)));
            vars.extend(aud.map(|v| ("JWT_AUDIENCE", v)));
            let svc = service(&vars);
            assert!(!svc.hmac.is_empty(), "{alg}: no fast path");
            let old = TokenService {
                kid: key_id(&old_key),
                encoding: EncodingKey::from_secret(old_key.as_bytes()),
                ..svc.clone()
            };
            let stranger = service(&[("ALGORITHM", alg), ("SECRET_KEY", &stranger_key)]);
            let good = svc.issue_access(3, "a@b.co", true, "sid").unwrap();
            let mut tokens = vec![
                good.token.clone(),
                old.issue_access(3, "a@b.co", true, "sid").unwrap().token,
                svc.issue(TokenType::Refresh, 3, "", "sid").unwrap().token,
                stranger
                    .issue_access(3, "a@b.co", true, "sid")
                    .unwrap()
                    .token,
            ];
            let mut with = |edit: &dyn Fn(&mut Claims)| {
                let mut claims = good.claims.clone();
                edit(&mut claims);
                tokens.push(svc.sign(claims).unwrap().token);
            };
            with(&|c| c.exp = now_unix() - 1);
            with(&|c| c.exp = now_unix());
            with(&|c| c.exp = -5);
            with(&|c| c.iss = Some("https://other.test".into()));
            with(&|c| c.iss = None);
            with(&|c| c.aud = Some("other".into()));
            with(&|c| c.aud = None);
            with(&|c| c.sub = "not-a-number".into());
            with(&|c| c.sid = String::new());
            let [header, payload, signature] = {
                let parts: Vec<&str> = good.token.split('.').collect();
                [parts[0], parts[1], parts[2]]
            };
            let mut raw_claims: serde_json::Value = serde_json::from_slice(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(payload)
                    .unwrap(),
            )
            .unwrap();
            raw_claims["sub"] = serde_json::json!(4);
            let mut other_signature = signature.as_bytes().to_vec();
            other_signature[3] = if other_signature[3] == b'A' {
                b'B'
            } else {
                b'A'
            };
            let other_signature = String::from_utf8(other_signature).unwrap();
            tokens.extend([
                format!("{header}.{payload}.{other_signature}"),
                format!(
                    "{header}.{}.{signature}",
                    b64(raw_claims.to_string().as_bytes())
                ),
                format!("{header}.{payload}"),
                format!("{header}.{payload}.{signature}.{signature}"),
                format!("{header}.{payload}.{signature}="),
                format!("{header}.{payload}."),
                format!("{header}..{signature}"),
                format!("{}.{payload}.{signature}", b64(br#"{"alg":"none"}"#)),
                format!(
                    "{}.{payload}.{signature}",
                    b64(br#"{"alg":"HS256","kid":"nope"}"#)
                ),
                format!("{header}.{}.{signature}", b64(b"not json")),
            ]);
            for token in &tokens {
                for expected in [TokenType::Access, TokenType::Refresh] {
                    let fast = svc.decode(token, expected);
                    let header = jsonwebtoken::decode_header(token);
                    let slow = match header {
                        Ok(h) if h.alg == svc.algorithm => {
                            svc.decode_any(token, h.kid.as_deref(), expected)
                        }
                        _ => Err(Error::InvalidToken),
                    };
                    let same = match (&fast, &slow) {
                        (Ok(a), Ok(b)) => a == b,
                        (Err(Error::TokenExpired), Err(Error::TokenExpired))
                        | (Err(Error::InvalidToken), Err(Error::InvalidToken)) => true,
                        _ => false,
                    };
                    assert!(
                        same,
                        "{alg} {iss:?}: {token}: fast {fast:?}, jsonwebtoken {slow:?}"
                    );
                    compared += 1;
                }
            }
            // Accepted where it should be: the test compares something.
            assert!(svc.decode(&good.token, TokenType::Access).is_ok());
            assert!(svc.decode(&tokens[1], TokenType::Access).is_ok());
        }
    }
    assert!(compared > 100);
}
