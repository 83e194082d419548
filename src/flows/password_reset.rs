//! Forgotten passwords (SPEC §6 `/forgot-password`, `/reset-password`, and
//! the page behind the mailed link).

use std::sync::Arc;

use super::Flows;
use super::links::plausible;
use crate::domain::{ClientInfo, SecurityEvent};
use crate::error::{Error, Result};
use crate::password::NewPassword;
use crate::store::TokenPurpose;

impl Flows {
    /// Asks for a reset link, within the per-IP rate limit. Only the
    /// address's shape is checked here; the look-up and the mail happen in
    /// the background, after the answer, so the answer and its timing are
    /// the same whether or not the address is registered. A registered,
    /// active user gets a link, unless the address had its share of mail for
    /// now (then nothing is sent, and the answer is the same).
    pub async fn request_password_reset(
        self: &Arc<Self>,
        email: &str,
        client: &ClientInfo,
    ) -> Result<()> {
        let requester = client.clone();
        self.later_for_address(
            "password reset request",
            email,
            client,
            |flows, user| async move {
                if !user.is_active || !flows.may_mail(&user.email).await {
                    return Ok(());
                }
                flows.send_link(&user, TokenPurpose::Reset).await?;
                flows
                    .store
                    .record_event(
                        Some(user.id),
                        SecurityEvent::PasswordResetRequested,
                        &requester,
                    )
                    .await
            },
        )
        .await
    }

    /// Whether a reset link can still be used (opening its page does not spend it).
    pub async fn reset_link_is_live(&self, token: &str) -> Result<bool> {
        self.link_is_live(token, TokenPurpose::Reset).await
    }

    /// Sets a new password with a reset token. In one transaction the token
    /// is spent, the password set, every session revoked, other reset tokens
    /// voided and the e-mail marked verified (the link proved the mailbox).
    pub async fn reset_password(
        &self,
        token: &str,
        new_password: &str,
        client: &ClientInfo,
    ) -> Result<()> {
        if !plausible(token) {
            return Err(Error::InvalidResetToken);
        }
        let user_id = self
            .store
            .peek_one_time_token(token, TokenPurpose::Reset)
            .await?
            .ok_or(Error::InvalidResetToken)?;
        let record = self
            .store
            .user_by_id(user_id)
            .await?
            .ok_or(Error::InvalidResetToken)?;
        let password = NewPassword::parse(
            new_password,
            Some(&record.user.email),
            &self.config.password,
            "new_password",
        )
        .map_err(|e| Error::Validation(vec![e]))?;
        let hash = self.passwords.hash(&password).await?;
        let notice = self.password_changed_notice(&record.user.email, true);
        if !self
            .store
            .reset_password(token, user_id, &hash, &notice)
            .await?
        {
            return Err(Error::InvalidResetToken);
        }
        self.mailer.wake();
        metrics::counter!("portcullis_revocations_total", "reason" => "password_reset")
            .increment(1);
        self.store
            .record_event(Some(user_id), SecurityEvent::PasswordReset, client)
            .await
    }
}
