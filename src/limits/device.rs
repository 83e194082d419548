//! Device tokens (OWASP's device cookies, SPEC §7): every successful
//! sign-in hands the client a token that names the account and is signed
//! by the server. A login that sends one back for that account passes the
//! per-account budget of failed logins, so a botnet that used the budget up
//! does not lock the owner out of a device they signed in from before.
//!
//! A token is `v1.<user id>.<expiry>.<nonce>.<mac>`: the MAC (HMAC-SHA-256,
//! base64url) covers the user id, the account's normalised e-mail, the
//! expiry and the nonce, under a key derived from `SECRET_KEY`. Checking one
//! needs no database; it is compared in constant time.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

use crate::random::random_id;

/// How long a device token is good for: a year.
pub const DEVICE_TOKEN_TTL_SECS: i64 = 365 * 86_400;

/// The longest device token read (anything longer is not one of ours).
const MAX_TOKEN_LEN: usize = 256;

/// Issues and checks device tokens.
#[derive(Clone)]
pub struct DeviceTokens {
    key: [u8; 64],
}

impl std::fmt::Debug for DeviceTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceTokens(..)")
    }
}

impl DeviceTokens {
    /// Tokens keyed by a key derived from `secret` (the `SECRET_KEY`).
    pub fn new(secret: &[u8]) -> Self {
        let mut digest = Sha512::new();
        digest.update(b"portcullis device token key v1\0");
        digest.update(secret);
        Self {
            key: digest.finalize().into(),
        }
    }

    fn mac(&self, user_id: i64, email_key: &str, expires: i64, nonce: &str) -> Hmac<Sha256> {
        let mut mac = mac_with(&self.key);
        for part in [&user_id.to_string(), email_key, &expires.to_string(), nonce] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac
    }

    /// A token for user `user_id`, whose normalised e-mail is `email_key`,
    /// good for [`DEVICE_TOKEN_TTL_SECS`] from `now`.
    pub fn issue(&self, user_id: i64, email_key: &str, now: i64) -> String {
        let expires = now + DEVICE_TOKEN_TTL_SECS;
        let nonce = random_id();
        let tag = self.mac(user_id, email_key, expires, &nonce).finalize();
        format!(
            "v1.{user_id}.{expires}.{nonce}.{}",
            URL_SAFE_NO_PAD.encode(tag.into_bytes())
        )
    }

    /// The user id `token` names, if it is one of ours, unexpired at `now`,
    /// and issued for the account whose normalised e-mail is `email_key`.
    pub fn check(&self, token: &str, email_key: &str, now: i64) -> Option<i64> {
        if token.len() > MAX_TOKEN_LEN {
            return None;
        }
        let mut parts = token.split('.');
        let (Some("v1"), Some(user), Some(expires), Some(nonce), Some(tag), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let user_id: i64 = user.parse().ok()?;
        let expires: i64 = expires.parse().ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        // `verify_slice` compares in constant time.
        self.mac(user_id, email_key, expires, nonce)
            .verify_slice(&tag)
            .ok()?;
        (now < expires).then_some(user_id)
    }
}

/// HMAC-SHA-256 under a key of its block size (64 bytes).
fn mac_with(key: &[u8; 64]) -> Hmac<Sha256> {
    <Hmac<Sha256> as KeyInit>::new(&(*key).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_account_and_nothing_else() {
        let tokens = DeviceTokens::new(b"a secret key of the server, long enough");
        let now = 1_800_000_000;
        let token = tokens.issue(7, "owner@example.com", now);
        assert_eq!(tokens.check(&token, "owner@example.com", now), Some(7));
        // Another account, another server, expired, tampered, truncated.
        assert_eq!(tokens.check(&token, "other@example.com", now), None);
        let elsewhere = DeviceTokens::new(b"another server's secret key, long enough");
        assert_eq!(elsewhere.check(&token, "owner@example.com", now), None);
        let later = now + DEVICE_TOKEN_TTL_SECS;
        assert_eq!(tokens.check(&token, "owner@example.com", later), None);
        let other_user = token.replacen("v1.7.", "v1.8.", 1);
        assert_eq!(tokens.check(&other_user, "owner@example.com", now), None);
        let cut = &token[..token.len() - 2];
        assert_eq!(tokens.check(cut, "owner@example.com", now), None);
        assert_eq!(tokens.check("", "owner@example.com", now), None);
    }
}
