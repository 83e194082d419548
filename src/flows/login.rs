//! Login with e-mail and password (SPEC §6 `/login`, `/login/json`, and the
//! password grant of `/token`).

use super::{Flows, LoginOutcome, TokenPair};
use crate::domain::{ClientInfo, EmailAddress, SecurityEvent};
use crate::error::{Error, Result};
use crate::limits::{Limits, NO_CLIENT_IP, Rule};
use crate::password::NewPassword;
use crate::store::{StillValid, email_key};

impl Flows {
    /// [`Flows::sign_in`] for callers that want tokens or nothing (tools,
    /// tests): a user with a second factor gets 403 `MFA_REQUIRED`, never a
    /// session. The endpoints call [`Flows::sign_in`], which answers with
    /// the second step instead.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        client: &ClientInfo,
    ) -> Result<TokenPair> {
        match self.sign_in(email, password, client).await? {
            LoginOutcome::SignedIn(pair) => Ok(pair),
            LoginOutcome::SecondFactorRequired(_) => Err(Error::MfaRequired),
        }
    }

    /// Checks the rate limits, then e-mail and password (the same work and
    /// the same answer for an unknown e-mail as for a wrong password), then
    /// the account's state, upgrades an outdated hash, and opens a session;
    /// or, for a user with a second factor, opens none and answers with the
    /// second step to pass ([`LoginOutcome::SecondFactorRequired`], SPEC §10).
    ///
    /// The limits count attempts per client IP and per (e-mail, client IP),
    /// never per e-mail alone: a stranger hammering an address only uses up
    /// their own allowance, and its owner still gets in from elsewhere. A
    /// login whose client IP is unknown is never unlimited: it counts under
    /// the per-e-mail rule with every other IP-less login for that address
    /// (and a warning is logged once).
    pub async fn sign_in(
        &self,
        email: &str,
        password: &str,
        client: &ClientInfo,
    ) -> Result<LoginOutcome> {
        let email_key = email_key(email);
        match Limits::client_key(client) {
            Some(ip) => {
                self.limits.check(Rule::LoginPerIp, &[&ip]).await?;
                self.limits
                    .check(Rule::LoginPerEmail, &[&email_key, &ip])
                    .await?;
            }
            // No IP (the library served without connection info, a flow
            // called directly): the per-e-mail rule, keyed without the IP,
            // so that every such caller shares one count per address.
            None => {
                self.limits.warn_unknown_client_ip();
                self.limits
                    .check(Rule::LoginPerEmail, &[&email_key, NO_CLIENT_IP])
                    .await?;
            }
        }
        let record = match EmailAddress::parse(email, "email") {
            Ok(email) => self.store.user_by_email(email.as_str()).await?,
            Err(_) => None,
        };
        let stored = record.as_ref().map(|r| r.password_hash.as_str());
        let caller = self.login_caller(&email_key, client);
        let matched = self
            .passwords
            .verify_for(caller.as_ref(), password, stored)
            .await?;
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
        // The hash verified; a re-hash replaces it only if nothing else did.
        let mut verified_hash = record.password_hash;
        if self.passwords.needs_rehash(&verified_hash)
            && let Some(upgraded) = self.rehash(user.id, &verified_hash, password).await?
        {
            verified_hash = upgraded;
        }
        if let Some(challenge) = self.second_factor_challenge(&user, &verified_hash).await? {
            metrics::counter!("portcullis_logins_total", "outcome" => "mfa_required").increment(1);
            return Ok(LoginOutcome::SecondFactorRequired(challenge));
        }
        // Opened only if that hash is still the user's, the account still
        // active, and still without a second factor: a reset, a deactivation
        // or a TOTP enabling during the hashing wins.
        let check = StillValid {
            password_hash: Some(&verified_hash),
            require_verified: self.config.require_email_verification,
        };
        let pair = match self.open_session(&user, check, client).await {
            Ok(pair) => pair,
            Err(e) => {
                metrics::counter!("portcullis_logins_total", "outcome" => "raced").increment(1);
                return Err(e);
            }
        };
        metrics::counter!("portcullis_logins_total", "outcome" => "success").increment(1);
        self.store
            .record_event(Some(user.id), SecurityEvent::LoginSucceeded, client)
            .await?;
        Ok(LoginOutcome::SignedIn(pair))
    }

    /// Re-hashes a password known to match `old` under the current policy,
    /// and stores the new hash if `old` is still the stored one; the new
    /// hash if it was stored. Only the hashing limits apply, not the
    /// strength rules: the password was accepted under an older policy.
    async fn rehash(&self, user_id: i64, old: &str, password: &str) -> Result<Option<String>> {
        let mut limits = self.config.password.clone();
        limits.min_length = 1;
        let Ok(parsed) = NewPassword::parse(password, None, &limits, "password") else {
            return Ok(None);
        };
        let new = self.passwords.hash(&parsed).await?;
        let replaced = self.store.replace_password_hash(user_id, old, &new).await?;
        Ok(replaced.then_some(new))
    }
}
