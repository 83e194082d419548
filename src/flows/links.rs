//! The one-time links of the mailbox flows: a token, stored hashed with its
//! purpose and expiry, in the same transaction as the mail that carries it.

use std::future::Future;
use std::sync::Arc;

use super::Flows;
use crate::clock::now_unix;
use crate::domain::OutgoingMail;
use crate::domain::{ClientInfo, EmailAddress};
use crate::error::{Error, Result};
use crate::limits::Rule;
use crate::mail::{password_changed_mail, reset_mail, verification_mail};
use crate::random::one_time_token;
use crate::store::{TokenPurpose, User, email_key};

/// Longest token accepted from a client before it is even looked up.
pub(super) const MAX_TOKEN_LEN: usize = 256;

/// Whether `token` is shaped like a token at all (not empty, not huge).
pub(super) fn plausible(token: &str) -> bool {
    !token.is_empty() && token.len() <= MAX_TOKEN_LEN
}

impl Flows {
    /// The shape of both mailbox requests (a reset link, a new verification
    /// link): the per-IP limit and the address's shape are checked now; the
    /// look-up, and `job` for a registered user, run in the background after
    /// the answer, so that the answer and its timing are the same whether or
    /// not the address is registered.
    pub(super) async fn later_for_address<F, Fut>(
        self: &Arc<Self>,
        what: &'static str,
        email: &str,
        client: &ClientInfo,
        job: F,
    ) -> Result<()>
    where
        F: FnOnce(Arc<Flows>, User) -> Fut + Send + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        self.limits
            .check_client(Rule::MailRequestPerIp, client)
            .await?;
        let email = EmailAddress::parse(email, "email").map_err(|e| Error::Validation(vec![e]))?;
        let flows = Arc::clone(self);
        self.tasks.spawn(what, async move {
            match flows.store.user_by_email(email.as_str()).await? {
                Some(record) => job(flows, record.user).await,
                None => Ok(()),
            }
        });
        Ok(())
    }

    /// Whether another reset or verification mail may go to `email` now
    /// (`RATE_LIMIT_MAIL_PER_EMAIL`, counted where the mail would be sent).
    pub(super) async fn may_mail(&self, email: &str) -> bool {
        self.limits
            .allows(Rule::MailPerEmail, &[&email_key(email)])
            .await
    }

    /// The mail that tells `email`'s owner their password was changed (or
    /// reset), queued in the same transaction as the change.
    pub(super) fn password_changed_notice(&self, email: &str, by_reset: bool) -> OutgoingMail {
        let when = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap_or_else(|_| "just now".into());
        password_changed_mail(&self.config.app_url, email, &when, by_reset)
    }

    /// Issues a one-time token of `purpose` for `user` (a new reset token
    /// voids older ones) and queues the mail that carries its link.
    pub(super) async fn send_link(&self, user: &User, purpose: TokenPurpose) -> Result<()> {
        let token = one_time_token();
        let config = &self.config;
        let (ttl, mail) = match purpose {
            TokenPurpose::Verify => {
                let ttl = config.verify_token_ttl;
                let hours = ttl.as_secs() / 3600;
                let mail = verification_mail(&config.app_url, &user.email, &token, hours);
                (ttl, mail)
            }
            TokenPurpose::Reset => {
                let ttl = config.reset_token_ttl;
                let minutes = ttl.as_secs() / 60;
                let mail = reset_mail(&config.app_url, &user.email, &token, minutes);
                (ttl, mail)
            }
        };
        let expires_at = now_unix() + ttl.as_secs() as i64;
        self.store
            .issue_one_time_token(user.id, purpose, &token, expires_at, &mail)
            .await?;
        self.mailer.wake();
        Ok(())
    }

    /// Whether a link's token is still good for `purpose`, without spending
    /// it (the pages behind the links check this when opened).
    pub(super) async fn link_is_live(&self, token: &str, purpose: TokenPurpose) -> Result<bool> {
        if !plausible(token) {
            return Ok(false);
        }
        Ok(self
            .store
            .peek_one_time_token(token, purpose)
            .await?
            .is_some())
    }
}
