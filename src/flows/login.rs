//! Login with e-mail and password (SPEC §6 `/login`, `/login/json`, and the
//! password grant of `/token`).

use super::{Flows, TokenPair};
use crate::domain::{ClientInfo, EmailAddress, SecurityEvent};
use crate::error::{Error, Result};
use crate::limits::{Limits, Rule};
use crate::password::NewPassword;
use crate::store::email_key;

impl Flows {
    /// Checks the rate limits, then e-mail and password (the same work and
    /// the same answer for an unknown e-mail as for a wrong password), then
    /// the account's state, upgrades an outdated hash, and opens a session.
    ///
    /// The limits count attempts per client IP and per (e-mail, client IP),
    /// never per e-mail alone: a stranger hammering an address only uses up
    /// their own allowance, and its owner still gets in from elsewhere.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        client: &ClientInfo,
    ) -> Result<TokenPair> {
        if let Some(ip) = Limits::client_key(client) {
            self.limits.check(Rule::LoginPerIp, &[&ip]).await?;
            self.limits
                .check(Rule::LoginPerEmail, &[&email_key(email), &ip])
                .await?;
        }
        let record = match EmailAddress::parse(email, "email") {
            Ok(email) => self.store.user_by_email(email.as_str()).await?,
            Err(_) => None,
        };
        let stored = record.as_ref().map(|r| r.password_hash.as_str());
        let matched = self.passwords.verify(password, stored).await?;
        let known_id = record.as_ref().map(|r| r.user.id);
        let Some(record) = record.filter(|_| matched) else {
            metrics::counter!("portcullis_logins_total", "outcome" => "invalid_credentials")
                .increment(1);
            self.store
                .record_event(known_id, SecurityEvent::LoginFailed, client)
                .await?;
            return Err(Error::InvalidCredentials);
        };
        let user = record.user;
        if !user.is_active {
            metrics::counter!("portcullis_logins_total", "outcome" => "inactive").increment(1);
            return Err(Error::InactiveUser);
        }
        if self.config.require_email_verification && !user.is_verified {
            metrics::counter!("portcullis_logins_total", "outcome" => "unverified").increment(1);
            return Err(Error::EmailNotVerified);
        }
        if self.passwords.needs_rehash(&record.password_hash) {
            self.rehash(user.id, password).await?;
        }
        let pair = self.open_session(&user, client).await?;
        metrics::counter!("portcullis_logins_total", "outcome" => "success").increment(1);
        self.store
            .record_event(Some(user.id), SecurityEvent::LoginSucceeded, client)
            .await?;
        Ok(pair)
    }

    /// Re-hashes a password known to be right under the current policy. Only
    /// the hashing limits apply, not the strength rules: the password was
    /// accepted under an older policy.
    async fn rehash(&self, user_id: i64, password: &str) -> Result<()> {
        let mut limits = self.config.password.clone();
        limits.min_length = 1;
        if let Ok(parsed) = NewPassword::parse(password, None, &limits, "password") {
            let hash = self.passwords.hash(&parsed).await?;
            self.store.set_password_hash(user_id, &hash).await?;
        }
        Ok(())
    }
}
