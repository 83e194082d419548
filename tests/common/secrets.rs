//! The secrets a user is handed, as a test obtains them from outside: the
//! token of a mailed link (read from the outbox), and a second factor turned
//! on through the API ([`enroll_totp`], codes computed from the
//! `otpauth_uri`), with the `mfa_token` of a login's first step.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use super::{Mail, PASSWORD, Session, TestApp, now, read_mail_dir, unique_email};

/// The subject of a password-reset mail.
pub const RESET_SUBJECT: &str = "Reset your password";
/// The subject of an e-mail verification mail.
pub const VERIFY_SUBJECT: &str = "Confirm your email address";

impl TestApp {
    /// The token of the last mail (by file name) with `subject` to `to` in the outbox,
    /// whose link is `{APP_URL of self}{path}?token=…` (waits up to 10 s for
    /// the mail, which the server writes after answering).
    pub async fn outbox_token(&self, to: &str, subject: &str, path: &str) -> String {
        for _ in 0..200 {
            let newest = read_mail_dir(&self.outbox(), "eml")
                .into_iter()
                .map(|(_, raw)| Mail::parse(&raw).expect("a message"))
                .rfind(|m| {
                    m.subject() == subject && m.header("To").is_some_and(|h| h.contains(to))
                });
            if let Some(mail) = newest {
                return mail.token(&self.base_url, path);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no mail {subject:?} to {to} in the outbox");
    }

    /// Asks for a password reset for `email` (`POST /forgot-password`) and
    /// returns the mailed token.
    pub async fn mailed_reset_token(&self, email: &str) -> String {
        self.post_json("/forgot-password", &json!({"email": email}))
            .await
            .expect_ok(StatusCode::OK);
        self.outbox_token(email, RESET_SUBJECT, "/reset-password")
            .await
    }

    /// `POST /login/json` with [`PASSWORD`] for a user with a second
    /// factor; the challenge's `mfa_token`.
    pub async fn mfa_challenge(&self, email: &str) -> String {
        let reply = self.login_json(email, PASSWORD).await;
        let data = reply.expect_ok(StatusCode::OK);
        assert_eq!(data["mfa_required"], json!(true), "{data}");
        data["mfa_token"].as_str().expect("mfa_token").to_string()
    }
}

/// A user with TOTP on, registered with [`PASSWORD`].
pub struct Enrolled {
    /// The session the confirmation answered.
    pub session: Session,
    /// The ten recovery codes.
    pub recovery: Vec<String>,
}

/// Registers a user and turns TOTP on through the API (`/mfa/totp/setup`,
/// then `/mfa/totp/confirm` with the current code of the handed-out secret).
pub async fn enroll_totp(app: &TestApp, tag: &str) -> Enrolled {
    let user = app.register(&unique_email(tag), PASSWORD).await;
    let setup = app
        .auth_post_json(
            "/mfa/totp/setup",
            &user.access,
            &json!({"password": PASSWORD}),
        )
        .await;
    let secret = setup.expect_ok(StatusCode::OK)["secret"]
        .as_str()
        .expect("secret")
        .to_string();
    let code = portcullis::mfa::totp_code(&base32_decode(&secret), now()).expect("a code");
    let confirmed = app
        .auth_post_json("/mfa/totp/confirm", &user.access, &json!({"code": code}))
        .await;
    let data = confirmed.expect_ok(StatusCode::OK);
    let recovery = data["recovery_codes"]
        .as_array()
        .expect("recovery_codes")
        .iter()
        .map(|c| c.as_str().expect("a code").to_string())
        .collect();
    let session = Session {
        access: data["access_token"].as_str().expect("access_token").into(),
        refresh: data["refresh_token"]
            .as_str()
            .expect("refresh_token")
            .into(),
        ..user
    };
    Enrolled { session, recovery }
}

/// RFC 4648 base32 (no padding) decoded.
pub fn base32_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut buffer, mut bits, mut out) = (0u32, 0u32, Vec::new());
    for c in s.trim_end_matches('=').bytes() {
        let v = ALPHABET
            .iter()
            .position(|a| *a == c.to_ascii_uppercase())
            .unwrap_or_else(|| panic!("not base32: {s}")) as u32;
        buffer = (buffer << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}
