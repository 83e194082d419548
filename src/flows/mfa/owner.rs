//! The owner's second factor, with a session (SPEC §10): its status, a TOTP
//! setup and its confirmation, turning it off with a code, and a new set of
//! recovery codes. Wrong codes sent here count apart from the login's
//! second step, so that a stolen session cannot lock its owner's logins.

use super::{MAX_CODE_LEN, MfaStatus, SecondFactorMethod, TotpEnabled, TotpSetup, recovery_hashes};
use crate::clock::now_unix;
use crate::domain::{ClientInfo, SecurityEvent, SessionAuth};
use crate::error::{Error, Result};
use crate::flows::{AuthSession, Flows};
use crate::mail::MfaNotice;
use crate::mfa::{
    SETUP_TTL_SECS, base32, new_recovery_codes, new_totp_secret, otpauth_uri, totp_step,
};
use crate::store::{FactorProof, StillValid, TotpRecord, User};

impl Flows {
    /// Counts a wrong code sent with a session (confirm, disable,
    /// regenerate) against `user`, apart from the login's second step (no
    /// lock, no mail); records `mfa_failed`.
    async fn session_factor_failed(&self, user: &User, client: &ClientInfo) -> Result<()> {
        self.store
            .record_session_factor_failure(user.id, now_unix())
            .await?;
        metrics::counter!("portcullis_mfa_total", "outcome" => "wrong_code").increment(1);
        self.store
            .record_event(Some(user.id), SecurityEvent::MfaFailed, client)
            .await
    }

    /// The 429 of codes sent with a session, throttled (or the factor locked).
    fn session_throttled(&self, retry_after: u64) -> Error {
        metrics::counter!("portcullis_rate_limited_total", "rule" => "mfa_session_per_user")
            .increment(1);
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

    /// Starts a TOTP setup (`POST /mfa/totp/setup`): the password again
    /// (limited and recorded like `/change-password`'s), then a new secret,
    /// pending for 600 s until confirmed with a code.
    pub async fn begin_totp_setup(
        &self,
        session: &AuthSession,
        password: &str,
        client: &ClientInfo,
    ) -> Result<TotpSetup> {
        let user = &session.user;
        if !user.is_active {
            return Err(Error::InactiveUser);
        }
        let keys = self.mfa_keys()?;
        if self.store.totp(user.id).await?.is_some_and(|t| t.enabled()) {
            return Err(Error::MfaAlreadyEnabled);
        }
        let record = self
            .store
            .user_by_id(user.id)
            .await?
            .ok_or(Error::TokenRevoked)?;
        self.check_current_password(user.id, &record.password_hash, password, client)
            .await?;
        let secret = new_totp_secret();
        let sealed = keys.encrypt_secret(user.id, &secret)?;
        let now = now_unix();
        if !self
            .store
            .begin_totp_setup(user.id, &sealed, now, now + SETUP_TTL_SECS)
            .await?
        {
            return Err(Error::MfaAlreadyEnabled);
        }
        let secret = base32(&secret);
        let otpauth_uri = otpauth_uri(&self.config.mfa.issuer, &user.email, &secret);
        Ok(TotpSetup {
            qr_svg: crate::mfa::qr_svg(&otpauth_uri)?,
            otpauth_uri,
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
        if let Some(retry_after) = totp.session_throttled_for(now) {
            return Err(self.session_throttled(retry_after));
        }
        let keys = self.mfa_keys()?;
        let secret = keys.decrypt_secret(user.id, &totp.secret_ciphertext)?;
        let step = match (code.len() <= MAX_CODE_LEN)
            .then(|| totp_step(&secret, code, now))
            .flatten()
        {
            Some(step) => step,
            None => {
                self.session_factor_failed(user, client).await?;
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
            self.session_factor_failed(user, client).await?;
            return Err(Error::InvalidMfaCode { login: false });
        }
        self.mailer.wake();
        metrics::counter!("portcullis_revocations_total", "reason" => "mfa_disabled").increment(1);
        self.store
            .record_event(Some(user.id), SecurityEvent::MfaDisabled, client)
            .await
    }

    /// The user's enabled TOTP factor, refusing at once (before any code is
    /// looked at) when there is none (404 `MFA_NOT_ENABLED`), or when it is
    /// locked or wrong codes sent with a session have throttled it (429).
    async fn enabled_factor(&self, user_id: i64, now: i64) -> Result<TotpRecord> {
        let totp = self
            .store
            .totp(user_id)
            .await?
            .filter(TotpRecord::enabled)
            .ok_or(Error::MfaNotEnabled)?;
        match totp.session_throttled_for(now) {
            Some(retry_after) => Err(self.session_throttled(retry_after)),
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
        let keys = self.mfa_keys()?;
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
            self.session_factor_failed(user, client).await?;
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
}
