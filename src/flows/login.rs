//! Login with e-mail and password (SPEC §6 `/login`, `/login/json`, and the
//! password grant of `/token`).

use super::{Flows, LoginOutcome, TokenPair};
use crate::clock::now_unix;
use crate::domain::{ClientInfo, EmailAddress, SecurityEvent};
use crate::error::{Error, Result};
use crate::limits::{DeviceTokens, Limits, NO_CLIENT_IP, Rule, Spent};
use crate::mail::login_budget_used_up_mail;
use crate::password::NewPassword;
use crate::store::{StillValid, User, email_key};

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
        self.sign_in_from_device(email, password, client, None)
            .await
    }

    /// [`Flows::sign_in`] from a device that may have signed in before: a
    /// valid device token for this account (`device`) passes the account's
    /// budget of failed logins from all addresses (SPEC §7), which otherwise
    /// refuses logins for it once used up (429, no hashing). The budget
    /// counts failures per normalised e-mail, whether or not it is
    /// registered; the owner of a registered one gets one mail when it is
    /// used up. A login that opens a session answers a new device token.
    pub async fn sign_in_from_device(
        &self,
        email: &str,
        password: &str,
        client: &ClientInfo,
        device: Option<&str>,
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
        let now = now_unix();
        let devices = DeviceTokens::new(self.config.secret_key.as_bytes());
        let device_user = device.and_then(|token| devices.check(token, &email_key, now));
        if device_user.is_none() {
            self.limits
                .budget_left(Rule::LoginPerAccount, &[&email_key])
                .await?;
        }
        let record = match EmailAddress::parse(email, "email") {
            Ok(email) => self.store.user_by_email(email.as_str()).await?,
            Err(_) => None,
        };
        // A device token of an account since deleted (and its address taken
        // by another) is no device of this one.
        if let Some(device_user) = device_user
            && record.as_ref().map(|r| r.user.id) != Some(device_user)
        {
            self.limits
                .budget_left(Rule::LoginPerAccount, &[&email_key])
                .await?;
        }
        let stored = record.as_ref().map(|r| r.password_hash.as_str());
        let caller = self.login_caller(&email_key, client);
        let matched = self
            .passwords
            .verify_for(caller.as_ref(), password, stored)
            .await?;
        let known_id = record.as_ref().map(|r| r.user.id);
        let owner = record.as_ref().map(|r| r.user.email.clone());
        let Some(record) = record.filter(|_| matched) else {
            metrics::counter!("portcullis_logins_total", "outcome" => "invalid_credentials")
                .increment(1);
            if self
                .limits
                .spend(Rule::LoginPerAccount, &[&email_key])
                .await
                == Spent::UsedUp
            {
                self.account_budget_used_up(owner.as_deref(), &email_key)
                    .await;
            }
            self.store
                .record_event(known_id, SecurityEvent::LoginFailed, client)
                .await?;
            return Err(Error::InvalidCredentials);
        };
        let user = record.user;
        self.may_sign_in(&user)?;
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
        let pair = TokenPair {
            device_token: Some(devices.issue(user.id, &email_key, now)),
            ..pair
        };
        Ok(LoginOutcome::SignedIn(pair))
    }

    /// `pair` with the device token of `user` (SPEC §7), as every sign-in
    /// that opens a session hands out: after the second step, or with a
    /// passkey, as after a password alone.
    pub(super) fn with_device_token(&self, user: &User, pair: TokenPair) -> TokenPair {
        let devices = DeviceTokens::new(self.config.secret_key.as_bytes());
        TokenPair {
            device_token: Some(devices.issue(user.id, &email_key(&user.email), now_unix())),
            ..pair
        }
    }

    /// An account's budget of failed logins was just used up: logs it, and
    /// mails the owner of a registered address (at most once a day; the
    /// notice is counted for any address, and the mail queued in the
    /// background, so that the answer is the same whether or not the
    /// address is registered).
    async fn account_budget_used_up(&self, owner: Option<&str>, email_key: &str) {
        tracing::warn!(
            "rate limits: an account's budget of failed logins is used up; \
             logins for it are refused except from known devices"
        );
        metrics::counter!("portcullis_login_budget_used_up_total").increment(1);
        let notify = self.limits.allows(Rule::AccountNotice, &[email_key]).await;
        let Some(owner) = owner.filter(|_| notify) else {
            return;
        };
        let when = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap_or_else(|_| "just now".into());
        let mail = login_budget_used_up_mail(&self.config.app_url, owner, &when);
        let store = self.store.clone();
        let mailer = self.mailer.clone();
        self.tasks
            .spawn("mailing a used-up login budget", async move {
                store.enqueue_mail(&mail).await?;
                mailer.wake();
                Ok(())
            });
    }

    /// Refuses a sign-in, by any method, of a deactivated user (403
    /// `INACTIVE_USER`) or, while verification is required, of an
    /// unverified one (403 `EMAIL_NOT_VERIFIED`), counted in
    /// `portcullis_logins_total`.
    pub(super) fn may_sign_in(&self, user: &User) -> Result<()> {
        if !user.is_active {
            metrics::counter!("portcullis_logins_total", "outcome" => "inactive").increment(1);
            return Err(Error::InactiveUser);
        }
        if self.config.require_email_verification && !user.is_verified {
            metrics::counter!("portcullis_logins_total", "outcome" => "unverified").increment(1);
            return Err(Error::EmailNotVerified);
        }
        Ok(())
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
