//! E-mail verification (SPEC §6 `/verify-email`, `/verify-email/resend`, and
//! the page behind the mailed link).

use std::sync::Arc;

use super::Flows;
use super::links::plausible;
use crate::domain::{ClientInfo, EmailAddress, SecurityEvent};
use crate::error::{Error, Result};
use crate::limits::Rule;
use crate::store::{TokenPurpose, User};

impl Flows {
    /// Issues a verification token for `user` and queues the mail carrying it.
    pub(super) async fn send_verification(&self, user: &User) -> Result<()> {
        self.send_link(user, TokenPurpose::Verify).await
    }

    /// Whether a verification link can still be used (opening its page does
    /// not spend it).
    pub async fn verification_link_is_live(&self, token: &str) -> Result<bool> {
        self.link_is_live(token, TokenPurpose::Verify).await
    }

    /// Spends a verification token and marks the address verified; the user.
    pub async fn verify_email(&self, token: &str, client: &ClientInfo) -> Result<User> {
        if !plausible(token) {
            return Err(Error::InvalidVerificationToken);
        }
        let user_id = self
            .store
            .consume_verification_token(token)
            .await?
            .ok_or(Error::InvalidVerificationToken)?;
        self.store
            .record_event(Some(user_id), SecurityEvent::EmailVerified, client)
            .await?;
        let record = self
            .store
            .user_by_id(user_id)
            .await?
            .ok_or(Error::InvalidVerificationToken)?;
        Ok(record.user)
    }

    /// Asks for a new verification link, within the per-IP rate limit. As
    /// with reset requests, the answer does not depend on the address: the
    /// work happens in the background, and only an active, unverified user
    /// gets a link, while the address has mail left for now.
    pub async fn resend_verification(
        self: &Arc<Self>,
        email: &str,
        client: &ClientInfo,
    ) -> Result<()> {
        self.limits
            .check_client(Rule::MailRequestPerIp, client)
            .await?;
        let email = EmailAddress::parse(email, "email").map_err(|e| Error::Validation(vec![e]))?;
        let flows = Arc::clone(self);
        self.tasks.spawn("verification resend", async move {
            match flows.store.user_by_email(email.as_str()).await? {
                Some(record)
                    if record.user.is_active
                        && !record.user.is_verified
                        && flows.may_mail(&record.user.email).await =>
                {
                    flows.send_verification(&record.user).await
                }
                _ => Ok(()),
            }
        });
        Ok(())
    }
}
