//! Checks of a current password behind a token (SPEC §7): `/change-password`
//! and `/mfa/totp/setup` ask for the password again, and each such check is
//! limited like a login, per user and per client IP, before any hashing; a
//! wrong one is recorded (`password_check_failed`). So a stolen access token
//! is no password-guessing oracle, and one account cannot fill the hashing
//! queue (its checks also hold at most its share of the queue).

use super::Flows;
use crate::domain::{ClientInfo, SecurityEvent};
use crate::error::{Error, Result};
use crate::limits::{Limits, Rule};
use crate::password::HashCaller;

impl Flows {
    /// Checks `password` against the stored hash of user `user_id`: the
    /// limits first (429, no hashing), then the hash; a wrong password is
    /// recorded and answered [`Error::InvalidPassword`].
    pub(super) async fn check_current_password(
        &self,
        user_id: i64,
        stored_hash: &str,
        password: &str,
        client: &ClientInfo,
    ) -> Result<()> {
        let user_key = user_id.to_string();
        self.limits
            .check(Rule::PasswordCheckPerUser, &[&user_key])
            .await?;
        self.limits
            .check_client(Rule::PasswordCheckPerIp, client)
            .await?;
        let caller = self.limits.enabled().then(|| HashCaller::user(user_id));
        let matched = self
            .passwords
            .verify_for(caller.as_ref(), password, Some(stored_hash))
            .await?;
        if matched {
            return Ok(());
        }
        metrics::counter!("portcullis_password_checks_failed_total").increment(1);
        self.store
            .record_event(Some(user_id), SecurityEvent::PasswordCheckFailed, client)
            .await?;
        Err(Error::InvalidPassword)
    }

    /// Who a login's hashing is for, as far as the hashing queue's fair share
    /// goes: the client's IP (or /64), else the e-mail address; nobody when
    /// the limits are off.
    pub(super) fn login_caller(&self, email_key: &str, client: &ClientInfo) -> Option<HashCaller> {
        if !self.limits.enabled() {
            return None;
        }
        Some(match Limits::client_key(client) {
            Some(ip) => HashCaller::client(&ip),
            None => HashCaller::email(email_key),
        })
    }
}
