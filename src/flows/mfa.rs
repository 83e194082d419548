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
//! or a session) reaches these counters. Passkeys can join as another
//! [`SecondFactorMethod`] of the same second step.

use serde::Serialize;

use super::{AuthSession, Flows, TokenPair};
use crate::clock::now_unix;
use crate::config::Config;
use crate::domain::{ClientInfo, OutgoingMail, SecurityEvent, SessionAuth};
use crate::error::{Error, Result};
use crate::limits::Rule;
use crate::mail::{MfaNotice, mfa_mail};
use crate::mfa::{
    MFA_TOKEN_TTL_SECS, MfaKeys, SETUP_TTL_SECS, base32, new_mfa_token, new_recovery_codes,
    new_totp_secret, normalize_recovery_code, otpauth_uri, totp_step,
};
use crate::store::{
    Actor, FactorProof, SecondStep, StillValid, Store, TotpRecord, User, hash_secret,
};

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
}

impl SecondFactorMethod {
    /// Its name on the wire (`totp`, `recovery_code`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::RecoveryCode => "recovery_code",
        }
    }

    /// The method named `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Totp, Self::RecoveryCode]
            .into_iter()
            .find(|m| m.as_str() == name)
    }

    /// How a session opened with it is authenticated.
    fn session_auth(self) -> SessionAuth {
        match self {
            Self::Totp => SessionAuth::PasswordAndOtp,
            Self::RecoveryCode => SessionAuth::PasswordAndRecoveryCode,
        }
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
    /// The methods that pass the second step: `totp`, `recovery_code`.
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
    /// The keys of the second factor (cheap to derive).
    fn mfa_keys(&self) -> MfaKeys {
        MfaKeys::new(&self.config.mfa.encryption_key)
    }

    /// A mail about the second factor to `to`.
    fn mfa_notice(&self, to: &str, notice: MfaNotice) -> OutgoingMail {
        mfa_mail(&self.config.app_url, to, &mail_time(), notice)
    }

    /// The second step a login must pass after a right password checked
    /// against `verified_hash`, if `user` has a second factor: a new
    /// `mfa_token`, bound to that hash.
    pub(super) async fn second_factor_challenge(
        &self,
        user: &User,
        verified_hash: &str,
    ) -> Result<Option<MfaChallenge>> {
        let enabled = self.store.totp(user.id).await?.is_some_and(|t| t.enabled());
        if !enabled {
            return Ok(None);
        }
        let token = new_mfa_token();
        let now = now_unix();
        self.store
            .issue_mfa_token(
                &token,
                user.id,
                verified_hash,
                now,
                now + MFA_TOKEN_TTL_SECS,
            )
            .await?;
        Ok(Some(MfaChallenge {
            mfa_required: true,
            mfa_token: token,
            expires_in: MFA_TOKEN_TTL_SECS,
            methods: [SecondFactorMethod::Totp, SecondFactorMethod::RecoveryCode]
                .map(SecondFactorMethod::as_str)
                .to_vec(),
        }))
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
        let keys = self.mfa_keys();
        Ok(match method {
            SecondFactorMethod::Totp => {
                let secret = keys.decrypt_secret(user_id, &totp.secret_ciphertext)?;
                totp_step(&secret, code, now).map(FactorProof::TotpStep)
            }
            SecondFactorMethod::RecoveryCode => normalize_recovery_code(code)
                .map(|c| FactorProof::RecoveryCode(keys.recovery_code_hash(user_id, &c))),
        })
    }

    /// Counts a wrong code against `user` (and `mfa_token`); at the lock,
    /// the owner gets a mail. Records the events.
    async fn factor_failed(
        &self,
        user: &User,
        mfa_token: Option<&str>,
        client: &ClientInfo,
    ) -> Result<()> {
        let notice = self.mfa_notice(&user.email, MfaNotice::Locked);
        let recorded = self
            .store
            .record_factor_failure(user.id, mfa_token, &notice, now_unix())
            .await?;
        metrics::counter!("portcullis_mfa_total", "outcome" => "wrong_code").increment(1);
        self.store
            .record_event(Some(user.id), SecurityEvent::MfaFailed, client)
            .await?;
        if recorded.locked_now {
            tracing::warn!(
                user_id = user.id,
                "second step locked after too many wrong codes"
            );
            self.mailer.wake();
            self.store
                .record_event(Some(user.id), SecurityEvent::MfaLocked, client)
                .await?;
        }
        Ok(())
    }

    /// The second step of a login (`POST /mfa/verify`, the MFA grant of
    /// `/token`): a live `mfa_token` and a right code of `method` open the
    /// session, at `aal2`. The `mfa_token` must still be bound to the
    /// user's current password hash, and the session is opened only if
    /// that hash is still the user's: a password reset at any moment in
    /// between leaves nothing usable.
    pub async fn verify_second_factor(
        &self,
        mfa_token: &str,
        method: &str,
        code: &str,
        client: &ClientInfo,
    ) -> Result<SecondStepPassed> {
        self.limits.check_client(Rule::MfaPerIp, client).await?;
        let method = SecondFactorMethod::from_name(method)
            .ok_or_else(|| Error::field("method", "must be \"totp\" or \"recovery_code\""))?;
        if mfa_token.is_empty() || mfa_token.len() > MAX_MFA_TOKEN_LEN {
            return Err(Error::InvalidMfaToken);
        }
        let now = now_unix();
        let pending = self
            .store
            .live_mfa_token(mfa_token, now)
            .await?
            .ok_or(Error::InvalidMfaToken)?;
        let record = self
            .store
            .user_by_id(pending.user_id)
            .await?
            .ok_or(Error::InvalidMfaToken)?;
        if hash_secret(&record.password_hash) != pending.password_stamp {
            return Err(Error::InvalidMfaToken);
        }
        let user = record.user;
        let totp = self
            .store
            .totp(user.id)
            .await?
            .filter(TotpRecord::enabled)
            .ok_or(Error::InvalidMfaToken)?;
        if let Some(retry_after) = totp.throttled_for(now) {
            return Err(self.throttled(retry_after));
        }
        let Some(proof) = self.factor_proof(user.id, &totp, method, code, now)? else {
            self.factor_failed(&user, Some(mfa_token), client).await?;
            return Err(Error::InvalidMfaCode { login: true });
        };
        let left = match self
            .store
            .complete_second_step(mfa_token, user.id, &proof, now)
            .await?
        {
            SecondStep::Passed {
                recovery_codes_left,
            } => recovery_codes_left,
            SecondStep::InvalidToken => return Err(Error::InvalidMfaToken),
            SecondStep::Throttled(retry_after) => return Err(self.throttled(retry_after)),
            SecondStep::WrongCode => {
                self.factor_failed(&user, Some(mfa_token), client).await?;
                return Err(Error::InvalidMfaCode { login: true });
            }
        };
        let check = StillValid {
            password_hash: Some(&record.password_hash),
            require_verified: self.config.require_email_verification,
        };
        let tokens = self
            .open_session_as(&user, check, client, method.session_auth())
            .await?;
        metrics::counter!("portcullis_mfa_total", "outcome" => "success").increment(1);
        metrics::counter!("portcullis_logins_total", "outcome" => "success").increment(1);
        if let Some(left) = left {
            self.store
                .record_event(Some(user.id), SecurityEvent::MfaRecoveryCodeUsed, client)
                .await?;
            if left <= FEW_RECOVERY_CODES {
                let notice = self.mfa_notice(&user.email, MfaNotice::RecoveryCodesLow { left });
                self.store.enqueue_mail(&notice).await?;
                self.mailer.wake();
            }
        }
        self.store
            .record_event(Some(user.id), SecurityEvent::LoginSucceeded, client)
            .await?;
        Ok(SecondStepPassed {
            tokens,
            recovery_codes_remaining: left,
        })
    }

    /// The 429 of a throttled or locked second step.
    fn throttled(&self, retry_after: u64) -> Error {
        metrics::counter!("portcullis_rate_limited_total", "rule" => "mfa_per_user").increment(1);
        Error::RateLimited { retry_after }
    }

    /// The caller's second factor (`GET /mfa`).
    pub async fn mfa_status(&self, session: &AuthSession) -> Result<MfaStatus> {
        let user_id = session.user.id;
        let totp = self.store.totp(user_id).await?.filter(TotpRecord::enabled);
        let remaining = match &totp {
            Some(_) => self.store.recovery_codes_left(user_id).await?,
            None => 0,
        };
        Ok(MfaStatus {
            totp_enabled: totp.is_some(),
            totp_created_at: totp.as_ref().and_then(|t| t.enabled_at),
            totp_last_used_at: totp.as_ref().and_then(|t| t.last_used_at),
            recovery_codes_remaining: remaining,
        })
    }

    /// Starts a TOTP setup (`POST /mfa/totp/setup`): the password again,
    /// then a new secret, pending for 600 s until confirmed with a code.
    pub async fn begin_totp_setup(
        &self,
        session: &AuthSession,
        password: &str,
    ) -> Result<TotpSetup> {
        let user = &session.user;
        if !user.is_active {
            return Err(Error::InactiveUser);
        }
        if self.store.totp(user.id).await?.is_some_and(|t| t.enabled()) {
            return Err(Error::MfaAlreadyEnabled);
        }
        let record = self
            .store
            .user_by_id(user.id)
            .await?
            .ok_or(Error::TokenRevoked)?;
        if !self
            .passwords
            .verify(password, Some(&record.password_hash))
            .await?
        {
            return Err(Error::InvalidPassword);
        }
        let secret = new_totp_secret();
        let sealed = self.mfa_keys().encrypt_secret(user.id, &secret)?;
        let now = now_unix();
        if !self
            .store
            .begin_totp_setup(user.id, &sealed, now, now + SETUP_TTL_SECS)
            .await?
        {
            return Err(Error::MfaAlreadyEnabled);
        }
        let secret = base32(&secret);
        Ok(TotpSetup {
            otpauth_uri: otpauth_uri(&self.config.mfa.issuer, &user.email, &secret),
            secret,
            expires_in: SETUP_TTL_SECS,
        })
    }

    /// Confirms the pending setup with a code from the new secret (`POST
    /// /mfa/totp/confirm`): TOTP is on, its confirming step used, ten
    /// recovery codes made, every session of the user revoked (this one
    /// too) and a new `aal2` session opened in its place; the owner gets a
    /// mail.
    pub async fn confirm_totp(
        &self,
        session: &AuthSession,
        code: &str,
        client: &ClientInfo,
    ) -> Result<TotpEnabled> {
        let user = &session.user;
        if !user.is_active {
            return Err(Error::InactiveUser);
        }
        let now = now_unix();
        let totp = self
            .store
            .totp(user.id)
            .await?
            .ok_or(Error::MfaSetupExpired)?;
        if totp.enabled() {
            return Err(Error::MfaAlreadyEnabled);
        }
        if totp.pending_expires_at.is_none_or(|end| end <= now) {
            return Err(Error::MfaSetupExpired);
        }
        if let Some(retry_after) = totp.throttled_for(now) {
            return Err(self.throttled(retry_after));
        }
        let keys = self.mfa_keys();
        let secret = keys.decrypt_secret(user.id, &totp.secret_ciphertext)?;
        let step = match (code.len() <= MAX_CODE_LEN)
            .then(|| totp_step(&secret, code, now))
            .flatten()
        {
            Some(step) => step,
            None => {
                self.factor_failed(user, None, client).await?;
                return Err(Error::InvalidMfaCode { login: false });
            }
        };
        let codes = new_recovery_codes();
        let hashes = recovery_hashes(&keys, user.id, &codes);
        let notice = self.mfa_notice(&user.email, MfaNotice::Enabled);
        if !self
            .store
            .confirm_totp(
                user.id,
                &totp.secret_ciphertext,
                step,
                &hashes,
                &notice,
                now,
            )
            .await?
        {
            return Err(Error::MfaSetupExpired);
        }
        self.mailer.wake();
        metrics::counter!("portcullis_revocations_total", "reason" => "mfa_enabled").increment(1);
        self.store
            .record_event(Some(user.id), SecurityEvent::MfaEnabled, client)
            .await?;
        let check = StillValid {
            password_hash: None,
            require_verified: self.config.require_email_verification,
        };
        let tokens = self
            .open_session_as(user, check, client, SessionAuth::PasswordAndOtp)
            .await?;
        Ok(TotpEnabled {
            recovery_codes: codes,
            tokens,
        })
    }

    /// Turns TOTP off (`POST /mfa/totp/disable`) with a TOTP code or a
    /// recovery code: the secret and the recovery codes go, every other
    /// session is revoked, the owner gets a mail.
    pub async fn disable_totp(
        &self,
        session: &AuthSession,
        code: &str,
        client: &ClientInfo,
    ) -> Result<()> {
        let user = &session.user;
        let now = now_unix();
        let totp = self.enabled_factor(user.id, now).await?;
        let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        let method = if digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit()) {
            SecondFactorMethod::Totp
        } else {
            SecondFactorMethod::RecoveryCode
        };
        let notice = self.mfa_notice(&user.email, MfaNotice::Disabled);
        let disabled = match self.factor_proof(user.id, &totp, method, code, now)? {
            Some(proof) => {
                self.store
                    .disable_totp(user.id, &proof, &session.claims.sid, &notice, now)
                    .await?
            }
            None => false,
        };
        if !disabled {
            self.factor_failed(user, None, client).await?;
            return Err(Error::InvalidMfaCode { login: false });
        }
        self.mailer.wake();
        metrics::counter!("portcullis_revocations_total", "reason" => "mfa_disabled").increment(1);
        self.store
            .record_event(Some(user.id), SecurityEvent::MfaDisabled, client)
            .await
    }

    /// The user's enabled TOTP factor, refusing at once (before any code is
    /// looked at) when there is none (404 `MFA_NOT_ENABLED`) or when wrong
    /// codes have throttled it (429).
    async fn enabled_factor(&self, user_id: i64, now: i64) -> Result<TotpRecord> {
        let totp = self
            .store
            .totp(user_id)
            .await?
            .filter(TotpRecord::enabled)
            .ok_or(Error::MfaNotEnabled)?;
        match totp.throttled_for(now) {
            Some(retry_after) => Err(self.throttled(retry_after)),
            None => Ok(totp),
        }
    }

    /// A new set of ten recovery codes (`POST /mfa/recovery-codes`) for a
    /// TOTP code; the old set is void.
    pub async fn regenerate_recovery_codes(
        &self,
        session: &AuthSession,
        code: &str,
        client: &ClientInfo,
    ) -> Result<Vec<String>> {
        let user = &session.user;
        let now = now_unix();
        let totp = self.enabled_factor(user.id, now).await?;
        let keys = self.mfa_keys();
        let codes = new_recovery_codes();
        let hashes = recovery_hashes(&keys, user.id, &codes);
        let regenerated =
            match self.factor_proof(user.id, &totp, SecondFactorMethod::Totp, code, now)? {
                Some(FactorProof::TotpStep(step)) => {
                    self.store
                        .regenerate_recovery_codes(user.id, step, &hashes, now)
                        .await?
                }
                _ => false,
            };
        if !regenerated {
            self.factor_failed(user, None, client).await?;
            return Err(Error::InvalidMfaCode { login: false });
        }
        self.store
            .record_event(
                Some(user.id),
                SecurityEvent::MfaRecoveryCodesRegenerated,
                client,
            )
            .await?;
        Ok(codes)
    }

    /// A superuser removes the second factor of user `user_id` through the
    /// admin API (`DELETE /api/users/{id}/mfa`): see [`remove_second_factor`].
    /// `actor` is the acting superuser; the event on the user names them, and
    /// `admin_mfa_reset` is also recorded on the superuser's own trail.
    pub async fn reset_mfa(&self, actor: &User, user_id: i64, client: &ClientInfo) -> Result<()> {
        if !(actor.is_superuser && actor.is_active) {
            return Err(Error::Forbidden);
        }
        let by = Actor::Admin {
            id: actor.id,
            client,
        };
        remove_second_factor(&self.store, &self.config, user_id, &by).await?;
        self.mailer.wake();
        self.store
            .record_event_by(Some(actor.id), SecurityEvent::AdminMfaReset, &by, None)
            .await?;
        Ok(())
    }
}

/// Removes the second factor of user `user_id` (the admin API, and
/// `portcullis user reset-mfa E`, which has no running [`Flows`]): TOTP,
/// recovery codes, pending `mfa_token`s and the lock go, every session of
/// the user is revoked, the owner's mail is queued in the same transaction
/// (a running server's mail worker sends it), and `mfa_reset` is recorded on
/// the user naming `actor`. 404 `NOT_FOUND` for an unknown user, 404
/// `MFA_NOT_ENABLED` when there is nothing to remove. The user as found.
pub async fn remove_second_factor(
    store: &Store,
    config: &Config,
    user_id: i64,
    actor: &Actor<'_>,
) -> Result<User> {
    let user = store
        .user_by_id(user_id)
        .await?
        .ok_or(Error::NotFound)?
        .user;
    let notice = mfa_mail(
        &config.app_url,
        &user.email,
        &mail_time(),
        MfaNotice::ResetByAdmin,
    );
    if !store
        .reset_second_factor(user.id, &notice, now_unix())
        .await?
    {
        return Err(Error::MfaNotEnabled);
    }
    metrics::counter!("portcullis_revocations_total", "reason" => "mfa_reset").increment(1);
    tracing::info!(user_id, "second factor removed by an administrator");
    store
        .record_event_by(Some(user.id), SecurityEvent::MfaReset, actor, None)
        .await?;
    Ok(user)
}

/// The keyed hashes of `codes` for `user_id`.
fn recovery_hashes(keys: &MfaKeys, user_id: i64, codes: &[String]) -> Vec<String> {
    codes
        .iter()
        .filter_map(|c| normalize_recovery_code(c))
        .map(|c| keys.recovery_code_hash(user_id, &c))
        .collect()
}
