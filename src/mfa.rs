//! The second factor's cryptography (SPEC §10): TOTP (RFC 6238: SHA-1,
//! 6 digits, 30 s steps, one step of skew either way) through `totp-rs`,
//! which returns the matched step so that a used step can be refused; TOTP
//! secrets encrypted with AES-256-GCM under `MFA_ENCRYPTION_KEY`, the user
//! id as associated data (a ciphertext copied to another user's row does
//! not decrypt); recovery codes and their keyed hashes; `mfa_token`s.
//!
//! Nothing here touches the database: the flows in
//! [`crate::flows`] combine it with the store's compare-and-set writes.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use hmac::Mac as _;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Length of a TOTP step, seconds.
pub const TOTP_STEP_SECS: u64 = 30;
/// Digits of a TOTP code.
pub const TOTP_DIGITS: u8 = 6;
/// How many recovery codes a set holds.
pub const RECOVERY_CODE_COUNT: usize = 10;
/// Characters of a recovery code (base32, 5 bits each: 100 bits).
const RECOVERY_CODE_CHARS: usize = 20;
/// Lifetime of an `mfa_token`, seconds.
pub const MFA_TOKEN_TTL_SECS: i64 = 300;
/// Lifetime of a pending (unconfirmed) TOTP setup, seconds.
pub const SETUP_TTL_SECS: i64 = 600;

/// RFC 4648 base32 alphabet (what authenticator apps read).
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 of `bytes`, without padding.
pub fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(BASE32[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(BASE32[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// A new TOTP secret: 160 random bits (RFC 4226 §4's recommendation).
pub fn new_totp_secret() -> [u8; 20] {
    rand::random()
}

/// The matched step of `code` for `secret` at `now` (Unix seconds), within
/// one step either way; `None` for a wrong or malformed code. Spaces in the
/// code are ignored ("123 456").
pub fn totp_step(secret: &[u8], code: &str, now: i64) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != usize::from(TOTP_DIGITS) || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let totp = totp_rs::Builder::new()
        .with_secret(secret.to_vec())
        .with_digits(TOTP_DIGITS)
        .with_step_duration(TOTP_STEP_SECS)
        .with_skew(1)
        .build()
        .ok()?;
    let now = u64::try_from(now).ok()?;
    totp.check(&code, now)
        .and_then(|step| i64::try_from(step).ok())
}

/// The code of `secret` at `time` (for tests and tools).
pub fn totp_code(secret: &[u8], time: i64) -> Option<String> {
    let totp = totp_rs::Builder::new()
        .with_secret(secret.to_vec())
        .with_digits(TOTP_DIGITS)
        .with_step_duration(TOTP_STEP_SECS)
        .build()
        .ok()?;
    Some(totp.generate(u64::try_from(time).ok()?).to_string())
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for byte in s.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The `otpauth://` URI that authenticator apps read (Google's Key Uri
/// Format): `otpauth://totp/ISSUER:ACCOUNT?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30`.
pub fn otpauth_uri(issuer: &str, account: &str, secret_base32: &str) -> String {
    format!(
        "otpauth://totp/{issuer_enc}:{account}?secret={secret_base32}&issuer={issuer_enc}&algorithm=SHA1&digits={TOTP_DIGITS}&period={TOTP_STEP_SECS}",
        issuer_enc = percent_encode(issuer),
        account = percent_encode(account),
    )
}

/// `uri` as a QR code: a standalone SVG document (with its namespace, no
/// script, black modules on white with a quiet zone), for pages and
/// clients without a QR library (SPEC §12). An `otpauth://` URI always
/// fits, so this only fails for text too long for any QR code.
pub fn qr_svg(uri: &str) -> Result<String> {
    let code = qrcode::QrCode::with_error_correction_level(uri.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| Error::internal(anyhow::anyhow!("QR code: {e}")))?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

/// A new set of recovery codes, as shown to the user once:
/// `xxxxx-xxxxx-xxxxx-xxxxx`, 100 random bits each.
pub fn new_recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODE_COUNT)
        .map(|_| {
            let raw = base32(&rand::random::<[u8; 13]>()).to_ascii_lowercase();
            let chars: Vec<char> = raw.chars().take(RECOVERY_CODE_CHARS).collect();
            chars
                .chunks(5)
                .map(|c| c.iter().collect::<String>())
                .collect::<Vec<_>>()
                .join("-")
        })
        .collect()
}

/// A recovery code as compared: without spaces and hyphens, lower-case;
/// `None` when it cannot be one (wrong length or alphabet).
pub fn normalize_recovery_code(code: &str) -> Option<String> {
    let cleaned: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let valid = cleaned.len() == RECOVERY_CODE_CHARS
        && cleaned
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b));
    valid.then_some(cleaned)
}

/// A new `mfa_token`: 256 random bits, base64url.
pub fn new_mfa_token() -> String {
    crate::random::one_time_token()
}

/// The keys of the second factor, derived from `MFA_ENCRYPTION_KEY`: the
/// AES-256-GCM key of TOTP secrets and, apart from it, the HMAC key of
/// recovery-code hashes.
#[derive(Clone)]
pub struct MfaKeys {
    cipher: Aes256Gcm,
    code_key: [u8; 64],
}

impl std::fmt::Debug for MfaKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MfaKeys(<redacted>)")
    }
}

/// The associated data of a user's encrypted secret.
fn associated_data(user_id: i64) -> Vec<u8> {
    format!("portcullis-totp:{user_id}").into_bytes()
}

impl MfaKeys {
    /// The keys derived from `key` (32 bytes).
    pub fn new(key: &[u8; 32]) -> Self {
        // One SHA-256 block: HMAC's infallible constructor takes it as is.
        let code_key: [u8; 64] = sha2::Sha512::new()
            .chain_update(b"portcullis-recovery-codes\0")
            .chain_update(key)
            .finalize()
            .into();
        Self {
            cipher: Aes256Gcm::new(&(*key).into()),
            code_key,
        }
    }

    /// `secret` encrypted for `user_id`: base64 of a random 96-bit nonce
    /// followed by the ciphertext and its tag.
    pub fn encrypt_secret(&self, user_id: i64, secret: &[u8]) -> Result<String> {
        let nonce_bytes: [u8; 12] = rand::random();
        let nonce = Nonce::from(nonce_bytes);
        let aad = associated_data(user_id);
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: secret,
                    aad: &aad,
                },
            )
            .map_err(|_| Error::internal(anyhow::anyhow!("TOTP secret encryption failed")))?;
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&sealed);
        Ok(base64::engine::general_purpose::STANDARD.encode(out))
    }

    /// The secret of `user_id` from what [`MfaKeys::encrypt_secret`] made.
    /// Fails (500, logged) when the key is not the one it was encrypted
    /// under, or the row was tampered with or belongs to another user.
    pub fn decrypt_secret(&self, user_id: i64, stored: &str) -> Result<Vec<u8>> {
        let undecryptable = || {
            Error::internal(anyhow::anyhow!(
                "a stored TOTP secret does not decrypt: was MFA_ENCRYPTION_KEY changed?"
            ))
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(stored)
            .map_err(|_| undecryptable())?;
        if bytes.len() < 12 + 16 {
            return Err(undecryptable());
        }
        let (nonce, sealed) = bytes.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| undecryptable())?;
        let aad = associated_data(user_id);
        self.cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| undecryptable())
    }

    /// The keyed hash (HMAC-SHA-256, hex) a normalised recovery code of
    /// `user_id` is stored as.
    pub fn recovery_code_hash(&self, user_id: i64, normalized: &str) -> String {
        let mut mac = <hmac::Hmac<Sha256> as hmac::digest::KeyInit>::new(&self.code_key.into());
        mac.update(user_id.to_string().as_bytes());
        mac.update(b":");
        mac.update(normalized.as_bytes());
        let tag = mac.finalize().into_bytes();
        tag.iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 rows (the last 6 of the 8 digits).
    #[test]
    fn rfc_6238_test_vectors() {
        let secret = b"12345678901234567890";
        for (time, code) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            let six = &code[2..];
            assert_eq!(totp_code(secret, time).unwrap(), six, "at {time}");
            assert_eq!(totp_step(secret, six, time), Some(time / 30), "at {time}");
        }
    }

    #[test]
    fn skew_is_one_step_either_way() {
        let secret = new_totp_secret();
        let now = 1_700_000_000;
        let code = totp_code(&secret, now).unwrap();
        assert_eq!(totp_step(&secret, &code, now + 30), Some(now / 30));
        assert_eq!(totp_step(&secret, &code, now - 30), Some(now / 30));
        assert_eq!(totp_step(&secret, &code, now + 61), None);
        assert_eq!(
            totp_step(&secret, &format!("{} {}", &code[..3], &code[3..]), now),
            Some(now / 30)
        );
        assert_eq!(totp_step(&secret, "12345", now), None);
        assert_eq!(totp_step(&secret, "+12345", now), None);
    }

    #[test]
    fn base32_matches_rfc_4648() {
        assert_eq!(base32(b""), "");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(&new_totp_secret()).len(), 32);
    }

    #[test]
    fn secrets_are_bound_to_key_and_user() {
        let keys = MfaKeys::new(&[3; 32]);
        let stored = keys.encrypt_secret(5, b"0123456789abcdefghij").unwrap();
        assert_eq!(
            keys.decrypt_secret(5, &stored).unwrap(),
            b"0123456789abcdefghij"
        );
        assert!(
            keys.decrypt_secret(6, &stored).is_err(),
            "another user's row"
        );
        assert!(MfaKeys::new(&[4; 32]).decrypt_secret(5, &stored).is_err());
        assert_ne!(
            stored,
            keys.encrypt_secret(5, b"0123456789abcdefghij").unwrap()
        );
    }

    #[test]
    fn recovery_codes_are_random_and_normalised() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), 10);
        let set: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(set.len(), 10);
        let code = &codes[0];
        assert_eq!(code.len(), 23);
        let norm = normalize_recovery_code(code).unwrap();
        assert_eq!(normalize_recovery_code(&code.to_uppercase()).unwrap(), norm);
        assert_eq!(
            normalize_recovery_code(&norm.replace("", " ")).unwrap(),
            norm
        );
        assert_eq!(normalize_recovery_code("short"), None);
        let keys = MfaKeys::new(&[3; 32]);
        assert_ne!(
            keys.recovery_code_hash(1, &norm),
            keys.recovery_code_hash(2, &norm)
        );
    }

    #[test]
    fn the_uri_names_issuer_and_account() {
        let svg = qr_svg("otpauth://totp/X:a?secret=MZXW6YTBOI").unwrap();
        assert!(
            svg.contains("xmlns=\"http://www.w3.org/2000/svg\""),
            "{svg}"
        );
        assert!(!svg.to_ascii_lowercase().contains("<script"), "{svg}");
        let uri = otpauth_uri("Example App", "a+b@example.com", "MZXW6YTBOI");
        assert_eq!(
            uri,
            "otpauth://totp/Example%20App:a%2Bb%40example.com?secret=MZXW6YTBOI&issuer=Example%20App&algorithm=SHA1&digits=6&period=30"
        );
    }
}
