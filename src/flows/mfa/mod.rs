//! The second factor (SPEC §10): the second step of every login, and the
//! owner's TOTP and recovery codes (`/mfa`, `/mfa/totp/*`,
//! `/mfa/recovery-codes`), and the admin reset.
//!
//! A login whose password is right ends in [`Flows::login`] with a session
//! only for a user without a second factor; anyone else gets an opaque,
//! single-use `mfa_token` ([`MfaChallenge`]) and no session, and
//! [`Flows::verify_second_factor`] opens the session once a TOTP code or a
//! recovery code is right. Every code check goes through the same steps:
//! the limits first (no code work when refused), the code, then the
//! database's compare-and-set (a step above the last accepted one, an
//! unspent recovery code), and a wrong code counts against the user (and
//! the `mfa_token`). Only a caller who knows the password (an `mfa_token`
//! or a session) reaches these counters. A passkey (SPEC §11) is another
//! [`SecondFactorMethod`] of the same second step: a failed assertion
//! counts as a wrong code.
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | the types on the wire, the keys, turning a code into a proof |
//! | `second_step.rs` | a login's second step: the challenge, the code, the counters |
//! | `passkey.rs` | a passkey as the second step: its options and its assertion |
//! | `owner.rs` | the owner's factor with a session: status, setup, confirm, disable, new recovery codes |
//! | `reset.rs` | the admin reset (admin API and `user reset-mfa`) |

mod owner;
mod passkey;
mod reset;
mod second_step;

use serde::Serialize;

use super::{Flows, TokenPair};
use crate::domain::OutgoingMail;
use crate::error::{Error, Result};
use crate::mail::{MfaNotice, mfa_mail};
use crate::mfa::{MfaKeys, normalize_recovery_code, totp_step};
use crate::store::{FactorProof, TotpRecord};

pub use reset::remove_second_factor;

/// Longest `mfa_token` looked up.
const MAX_MFA_TOKEN_LEN: usize = 256;
/// Longest code looked at.
const MAX_CODE_LEN: usize = 64;
/// A mail goes to the owner when this many recovery codes or fewer are left.
const FEW_RECOVERY_CODES: i64 = 2;

/// A way to pass the second step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondFactorMethod {
    /// A TOTP code from an authenticator app.
    Totp,
    /// One of the recovery codes shown when TOTP was turned on.
    RecoveryCode,
    /// One of the user's passkeys (SPEC §11), listed only when they have
    /// one; passed with [`Flows::verify_second_factor_with_passkey`].
    Passkey,
}

impl SecondFactorMethod {
    /// Its name on the wire (`totp`, `recovery_code`, `passkey`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::RecoveryCode => "recovery_code",
            Self::Passkey => "passkey",
        }
    }

    /// The method named `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Totp, Self::RecoveryCode, Self::Passkey]
            .into_iter()
            .find(|m| m.as_str() == name)
    }
}

/// What a login with the right password gets when the user has a second
/// factor: `{"mfa_required": true, "mfa_token", "expires_in": 300, "methods"}`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MfaChallenge {
    /// Always `true`.
    pub mfa_required: bool,
    /// Opaque, single-use; for `/mfa/verify` or the MFA grant of `/token`.
    pub mfa_token: String,
    /// Seconds until the `mfa_token` expires (300).
    pub expires_in: i64,
    /// The methods that pass the second step: `totp`, `recovery_code`, and
    /// `passkey` when the user has one (and passkeys are available).
    pub methods: Vec<&'static str>,
}

/// The outcome of a login's password step.
#[derive(Debug, Clone)]
pub enum LoginOutcome {
    /// No second factor: a new session.
    SignedIn(TokenPair),
    /// The password was right; the second step is next.
    SecondFactorRequired(MfaChallenge),
}

/// A login completed by its second step: the pair, and how many recovery
/// codes are left when one was used.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SecondStepPassed {
    /// The new session's pair.
    #[serde(flatten)]
    pub tokens: TokenPair,
    /// Unspent recovery codes left (only when a recovery code was used).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub recovery_codes_remaining: Option<i64>,
}

/// The owner's second factor, as `GET /mfa` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaStatus {
    /// Whether TOTP is on.
    pub totp_enabled: bool,
    /// When it was turned on (Unix seconds).
    pub totp_created_at: Option<i64>,
    /// When a code (TOTP or recovery) was last accepted.
    pub totp_last_used_at: Option<i64>,
    /// Unspent recovery codes.
    pub recovery_codes_remaining: i64,
}

/// A TOTP setup to confirm: the secret, for the authenticator app.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TotpSetup {
    /// The secret, base32 (for typing into an app).
    pub secret: String,
    /// `otpauth://totp/…` (for a QR code).
    pub otpauth_uri: String,
    /// `otpauth_uri` as a QR code: a standalone SVG document.
    pub qr_svg: String,
    /// Seconds left to confirm it (600).
    pub expires_in: i64,
}

/// TOTP turned on: the recovery codes (shown this once) and a new session.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TotpEnabled {
    /// Ten single-use recovery codes.
    pub recovery_codes: Vec<String>,
    /// The new session's pair (every older session was revoked).
    #[serde(flatten)]
    pub tokens: TokenPair,
}

/// The current time as mails show it.
pub(super) fn mail_time() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_else(|_| "just now".into())
}

impl Flows {
    /// The keys of the second factor (cheap to derive); 503 without
    /// `MFA_ENCRYPTION_KEY`.
    fn mfa_keys(&self) -> Result<MfaKeys> {
        match &self.config.mfa.encryption_key {
            Some(key) => Ok(MfaKeys::new(key)),
            None => {
                tracing::warn!(
                    "TOTP refused: MFA_ENCRYPTION_KEY is not set (32 random bytes, base64)"
                );
                Err(Error::MfaUnconfigured)
            }
        }
    }

    /// A mail about the second factor to `to`.
    fn mfa_notice(&self, to: &str, notice: MfaNotice) -> OutgoingMail {
        mfa_mail(&self.config.app_url, to, &mail_time(), notice)
    }

    /// Turns a code into what the database spends: a TOTP step checked
    /// against the user's secret, or a recovery code's keyed hash. `None`
    /// for a code that cannot be right.
    fn factor_proof(
        &self,
        user_id: i64,
        totp: &TotpRecord,
        method: SecondFactorMethod,
        code: &str,
        now: i64,
    ) -> Result<Option<FactorProof>> {
        if code.len() > MAX_CODE_LEN {
            return Ok(None);
        }
        let keys = self.mfa_keys()?;
        Ok(match method {
            SecondFactorMethod::Totp => {
                let secret = keys.decrypt_secret(user_id, &totp.secret_ciphertext)?;
                totp_step(&secret, code, now).map(FactorProof::TotpStep)
            }
            SecondFactorMethod::RecoveryCode => normalize_recovery_code(code)
                .map(|c| FactorProof::RecoveryCode(keys.recovery_code_hash(user_id, &c))),
            // No code proves a passkey: it is an assertion.
            SecondFactorMethod::Passkey => None,
        })
    }
}

/// The keyed hashes of `codes` for `user_id`.
fn recovery_hashes(keys: &MfaKeys, user_id: i64, codes: &[String]) -> Vec<String> {
    codes
        .iter()
        .filter_map(|c| normalize_recovery_code(c))
        .map(|c| keys.recovery_code_hash(user_id, &c))
        .collect()
}
