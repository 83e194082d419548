//! E-mail verification (SPEC §6 `/verify-email`, `/verify-email/resend`, and
//! the page behind the mailed link).

use std::sync::Arc;

use super::Flows;
use super::links::plausible;
use crate::domain::{ClientInfo, SecurityEvent};
use crate::error::{Error, Result};
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
        self.later_for_address(
            "verification resend",
            email,
            client,
            |flows, user| async move {
                if user.is_active && !user.is_verified && flows.may_mail(&user.email).await {
                    flows.send_verification(&user).await?;
                }
                Ok(())
            },
        )
        .await
    }
}
