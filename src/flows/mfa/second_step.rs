//! A login's second step (SPEC §10): the challenge that a right password
//! gets when the user has a second factor, and the code that completes it,
//! with the per-user and per-token counters of wrong codes.

use super::{
    FEW_RECOVERY_CODES, MAX_MFA_TOKEN_LEN, MfaChallenge, SecondFactorMethod, SecondStepPassed,
};
use crate::clock::now_unix;
use crate::domain::{ClientInfo, SecurityEvent, SessionAuth};
use crate::error::{Error, Result};
use crate::flows::Flows;
use crate::limits::Rule;
use crate::mail::MfaNotice;
use crate::mfa::{MFA_TOKEN_TTL_SECS, new_mfa_token};
use crate::store::{
    FactorProof, SecondStep, StillValid, TotpRecord, User, UserRecord, hash_secret,
};

impl Flows {
    /// The second step a login must pass after a right password checked
    /// against `verified_hash`, if `user` has a second factor: a new
    /// `mfa_token`, bound to that hash.
    pub(in crate::flows) async fn second_factor_challenge(
        &self,
        user: &User,
        verified_hash: &str,
    ) -> Result<Option<MfaChallenge>> {
        let enabled = self.store.totp(user.id).await?.is_some_and(|t| t.enabled());
        if !enabled {
            return Ok(None);
        }
        let mut methods = vec![SecondFactorMethod::Totp, SecondFactorMethod::RecoveryCode];
        if self.webauthn.is_some() && self.store.has_passkey(user.id).await? {
            methods.push(SecondFactorMethod::Passkey);
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
            methods: methods
                .into_iter()
                .map(SecondFactorMethod::as_str)
                .collect(),
        }))
    }

    /// Counts a wrong code of a login's second step against `user` and its
    /// `mfa_token`; at the lock, the owner gets a mail. Records the events.
    pub(in crate::flows) async fn factor_failed(
        &self,
        user: &User,
        mfa_token: &str,
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
    /// `/token`): a live `mfa_token` and a right code of `method` (`totp`
    /// or `recovery_code`) open the session, at `aal2`. The `mfa_token`
    /// must still be bound to the user's current password hash, and the
    /// session is opened only if that hash is still the user's: a password
    /// reset at any moment in between leaves nothing usable. A passkey
    /// passes it with [`Flows::verify_second_factor_with_passkey`].
    pub async fn verify_second_factor(
        &self,
        mfa_token: &str,
        method: &str,
        code: &str,
        client: &ClientInfo,
    ) -> Result<SecondStepPassed> {
        self.limits.check_client(Rule::MfaPerIp, client).await?;
        let method = match SecondFactorMethod::from_name(method) {
            Some(SecondFactorMethod::Passkey) => {
                return Err(Error::field(
                    "credential",
                    "the passkey method takes ceremony_id and credential, not a code",
                ));
            }
            Some(method) => method,
            None => {
                return Err(Error::field(
                    "method",
                    "must be \"totp\", \"recovery_code\" or \"passkey\"",
                ));
            }
        };
        let now = now_unix();
        let (record, totp) = self.pending_second_step(mfa_token, now).await?;
        let Some(proof) = self.factor_proof(record.user.id, &totp, method, code, now)? else {
            self.factor_failed(&record.user, mfa_token, client).await?;
            return Err(Error::InvalidMfaCode { login: true });
        };
        let auth = match method {
            SecondFactorMethod::RecoveryCode => SessionAuth::PasswordAndRecoveryCode,
            _ => SessionAuth::PasswordAndOtp,
        };
        self.pass_second_step(&record, mfa_token, &proof, auth, client, now)
            .await
    }

    /// The login that the live `mfa_token` continues, if it may still pass
    /// its second step: its user (whose password hash is still the one the
    /// token was issued against) and their enabled factor. 401
    /// `INVALID_MFA_TOKEN` otherwise, 429 when the second step is
    /// throttled or locked.
    pub(in crate::flows) async fn pending_second_step(
        &self,
        mfa_token: &str,
        now: i64,
    ) -> Result<(UserRecord, TotpRecord)> {
        if mfa_token.is_empty() || mfa_token.len() > MAX_MFA_TOKEN_LEN {
            return Err(Error::InvalidMfaToken);
        }
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
        let totp = self
            .store
            .totp(record.user.id)
            .await?
            .filter(TotpRecord::enabled)
            .ok_or(Error::InvalidMfaToken)?;
        if let Some(retry_after) = totp.throttled_for(now) {
            return Err(self.throttled(retry_after));
        }
        Ok((record, totp))
    }

    /// Spends the `mfa_token` with `proof` and opens the session as `auth`:
    /// the end of every second step that got a proof.
    pub(in crate::flows) async fn pass_second_step(
        &self,
        record: &UserRecord,
        mfa_token: &str,
        proof: &FactorProof,
        auth: SessionAuth,
        client: &ClientInfo,
        now: i64,
    ) -> Result<SecondStepPassed> {
        let user = &record.user;
        let left = match self
            .store
            .complete_second_step(mfa_token, user.id, proof, now)
            .await?
        {
            SecondStep::Passed {
                recovery_codes_left,
            } => recovery_codes_left,
            SecondStep::InvalidToken => return Err(Error::InvalidMfaToken),
            SecondStep::Throttled(retry_after) => return Err(self.throttled(retry_after)),
            SecondStep::WrongCode => {
                self.factor_failed(user, mfa_token, client).await?;
                return Err(Error::InvalidMfaCode { login: true });
            }
        };
        let check = StillValid {
            password_hash: Some(&record.password_hash),
            require_verified: self.config.require_email_verification,
        };
        let tokens = self.open_session_as(user, check, client, auth).await?;
        let tokens = self.with_device_token(user, tokens);
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
    pub(in crate::flows) fn throttled(&self, retry_after: u64) -> Error {
        metrics::counter!("portcullis_rate_limited_total", "rule" => "mfa_per_user").increment(1);
        Error::RateLimited { retry_after }
    }
}
