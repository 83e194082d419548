//! A complete HTTP answer and the checks of SPEC §3 on it.

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

// ---- answers ---------------------------------------------------------------------

/// A complete HTTP answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// The raw body.
    pub bytes: Vec<u8>,
    /// The body as JSON (`Null` when it is not JSON).
    pub body: Value,
}

impl Reply {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as text (for messages).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    /// Whether the content type is `application/json`.
    pub fn is_json(&self) -> bool {
        self.header("content-type").is_some_and(|ct| {
            ct.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        })
    }

    /// Checks that the answer carries a non-empty `X-Request-Id`.
    #[track_caller]
    pub fn expect_request_id(&self) {
        assert!(
            self.header("x-request-id").is_some_and(|v| !v.is_empty()),
            "no X-Request-Id on {}: {}",
            self.status,
            self.text()
        );
    }

    /// `error.code` of an error envelope.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// Checks a success envelope (`{"success": true, "data": …}`, exactly
    /// these keys, JSON content type) with `status`; returns `data`.
    #[track_caller]
    pub fn expect_ok(&self, status: StatusCode) -> &Value {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {}",
            self.text()
        );
        assert!(
            self.is_json(),
            "content type {:?}",
            self.header("content-type")
        );
        assert_eq!(
            keys(&self.body),
            ["data", "success"],
            "envelope: {}",
            self.text()
        );
        assert_eq!(self.body["success"], json!(true), "{}", self.text());
        &self.body["data"]
    }

    /// Checks an error envelope with `status` and `code`: exactly
    /// `{"success": false, "error": {"message", "code"}}` (plus `details` for
    /// validation errors), and `WWW-Authenticate: Bearer…` on a 401.
    #[track_caller]
    pub fn expect_error(&self, status: StatusCode, code: &str) {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {}",
            self.text()
        );
        assert!(
            self.is_json(),
            "content type {:?}",
            self.header("content-type")
        );
        assert_eq!(
            keys(&self.body),
            ["error", "success"],
            "envelope: {}",
            self.text()
        );
        assert_eq!(self.body["success"], json!(false), "{}", self.text());
        assert_eq!(self.code(), code, "error code; body: {}", self.text());
        let message = self.body["error"]["message"].as_str().unwrap_or("");
        assert!(!message.trim().is_empty(), "empty message: {}", self.text());
        let expected_keys: &[&str] = if code == "VALIDATION_ERROR" {
            &["code", "details", "message"]
        } else {
            &["code", "message"]
        };
        assert_eq!(
            keys(&self.body["error"]),
            expected_keys,
            "error keys: {}",
            self.text()
        );
        if status == StatusCode::UNAUTHORIZED {
            let challenge = self.header("www-authenticate").unwrap_or("");
            assert!(
                challenge.starts_with("Bearer"),
                "401 without WWW-Authenticate: Bearer (got {challenge:?})"
            );
            if matches!(code, "INVALID_TOKEN" | "TOKEN_EXPIRED" | "TOKEN_REVOKED") {
                assert!(
                    challenge.contains("error=\"invalid_token\""),
                    "{code} challenge without error=\"invalid_token\": {challenge:?}"
                );
            }
        }
    }

    /// Checks an error envelope and its message (SPEC §3 table).
    #[track_caller]
    pub fn expect_error_message(&self, status: StatusCode, code: &str, message: &str) {
        self.expect_error(status, code);
        assert_eq!(
            self.body["error"]["message"],
            json!(message),
            "{}",
            self.text()
        );
    }

    /// Checks a 422 `VALIDATION_ERROR` whose details name `field`.
    #[track_caller]
    pub fn expect_invalid_field(&self, field: &str) {
        self.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
        let details = self.body["error"]["details"]
            .as_array()
            .unwrap_or_else(|| panic!("details is not an array: {}", self.text()));
        assert!(!details.is_empty(), "empty details: {}", self.text());
        for d in details {
            assert_eq!(keys(d), ["field", "message"], "detail shape: {d}");
            assert!(d["message"].as_str().is_some_and(|m| !m.is_empty()), "{d}");
        }
        assert!(
            details.iter().any(|d| d["field"] == json!(field)),
            "details do not name {field:?}: {}",
            self.text()
        );
    }

    /// Checks an RFC 6749 §5.2 error body (`{"error": code, "error_description"?}`,
    /// no envelope) with status 400.
    #[track_caller]
    pub fn expect_oauth_error(&self, code: &str) {
        assert_eq!(self.status, StatusCode::BAD_REQUEST, "{}", self.text());
        assert!(
            self.is_json(),
            "content type {:?}",
            self.header("content-type")
        );
        assert_eq!(self.body["error"], json!(code), "{}", self.text());
        for k in keys(&self.body) {
            assert!(
                ["error", "error_description", "error_uri"].contains(&k.as_str()),
                "unexpected key {k} in an RFC 6749 error: {}",
                self.text()
            );
        }
    }
}

/// The sorted keys of a JSON object (empty for anything else).
pub fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    k.sort();
    k
}

/// Checks `{access_token, refresh_token, token_type: "bearer", expires_in: 1800}`
/// (exactly these keys).
#[track_caller]
/// What a password sign-in answers: the token pair and the device token
/// (SPEC §7) that lets this client past the account's failed-login budget.
pub fn expect_login_pair(data: &Value) {
    let device = data["device_token"].as_str().expect("device_token");
    assert!(device.starts_with("v1."), "{device}");
    let mut pair = data.clone();
    if let Some(pair) = pair.as_object_mut() {
        pair.remove("device_token");
    }
    expect_token_pair(&pair);
}

pub fn expect_token_pair(data: &Value) {
    assert_eq!(
        keys(data),
        ["access_token", "expires_in", "refresh_token", "token_type"],
        "{data}"
    );
    assert_eq!(data["token_type"], json!("bearer"));
    assert_eq!(data["expires_in"], json!(1800));
    let access = data["access_token"].as_str().expect("access_token");
    let refresh = data["refresh_token"].as_str().expect("refresh_token");
    assert_ne!(access, refresh);
    assert_eq!(access.split('.').count(), 3, "access token is not a JWS");
    assert_eq!(refresh.split('.').count(), 3, "refresh token is not a JWS");
}
