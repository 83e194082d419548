//! Signing in with a passkey (SPEC §11 `POST /login/passkey/options`,
//! `POST /login/passkey`): a first factor that is multi-factor on its own.

use serde_json::Value;
use webauthn_rs::prelude::DiscoverableAuthentication;

use super::assertion::Refusal;
use super::{PasskeyOptions, credential_id, stored_passkey, with_allowed};
use crate::domain::{ClientInfo, EmailAddress, SecurityEvent, SessionAuth};
use crate::error::{Error, Result};
use crate::flows::{Flows, TokenPair};
use crate::limits::{Limits, Rule};
use crate::store::{CeremonyPurpose, PasskeyRecord, StillValid, User, email_key};

/// The refusal of every failed passkey sign-in.
const REFUSED: Error = Error::InvalidPasskey { sign_in: true };

impl Flows {
    /// The options of a passkey sign-in. With an `email`, they list that
    /// user's credentials, and for an unknown address or one without
    /// passkeys one credential id derived from the address: the same shape
    /// either way. Without one, any discoverable credential may answer
    /// (autofill). Not counted under the login limits (nothing is checked).
    pub async fn passkey_sign_in_options(&self, email: Option<&str>) -> Result<PasskeyOptions> {
        let webauthn = self.webauthn()?;
        let (challenge, state) = webauthn
            .start_discoverable_authentication()
            .map_err(Error::internal)?;
        let options = serde_json::to_value(&challenge).map_err(Error::internal)?;
        let Some(email) = email else {
            let options = with_allowed(options, &[]);
            return self
                .start_ceremony(CeremonyPurpose::SignIn, None, &state, options)
                .await;
        };
        let user = match EmailAddress::parse(email, "email") {
            Ok(email) => self.store.user_by_email(email.as_str()).await?,
            Err(_) => None,
        };
        let mut ids = Vec::new();
        if let Some(record) = &user {
            for passkey in self.store.passkeys_of(record.user.id).await? {
                ids.push(credential_id(&stored_passkey(&passkey)?));
            }
        }
        let bound_to = user.as_ref().map(|r| r.user.id).filter(|_| !ids.is_empty());
        if ids.is_empty() {
            ids.push(self.decoy_credential_id(&email_key(email))?);
        }
        let options = with_allowed(options, &ids);
        self.start_ceremony(CeremonyPurpose::SignIn, bound_to, &state, options)
            .await
    }

    /// Finishes a passkey sign-in: the assertion must verify against the
    /// ceremony with a registered credential (of the ceremony's user when
    /// it named one), with user verification and a signature counter that
    /// grew; every failure is 401 `INVALID_PASSKEY`, a counter that did not
    /// grow is also recorded (`passkey_clone_suspected`). Inactive and
    /// unverified users are refused as at `/login`. Counted under the login
    /// limit per client IP. The tokens carry `amr` `["hwk"|"swk", "user",
    /// "mfa"]` and `aal2`.
    pub async fn sign_in_with_passkey(
        &self,
        ceremony_id: &str,
        credential: Value,
        client: &ClientInfo,
    ) -> Result<TokenPair> {
        self.webauthn()?;
        if let Some(ip) = Limits::client_key(client) {
            self.limits.check(Rule::LoginPerIp, &[&ip]).await?;
        }
        let (bound_to, state): (Option<i64>, DiscoverableAuthentication) = self
            .take_ceremony(ceremony_id, CeremonyPurpose::SignIn, None)
            .await?;
        let verified = match self.check_assertion(state, bound_to, credential).await? {
            Ok(verified) => verified,
            Err(refusal) => return self.refuse(refusal, client).await,
        };
        let user = self.passkey_user(&verified.record).await?;
        let synced = match self.record_assertion(verified).await? {
            Ok(synced) => synced,
            Err(refusal) => return self.refuse(refusal, client).await,
        };
        let auth = if synced {
            SessionAuth::SyncedPasskey
        } else {
            SessionAuth::DevicePasskey
        };
        let check = StillValid {
            password_hash: None,
            require_verified: self.config.require_email_verification,
        };
        let pair = self.open_session_as(&user, check, client, auth).await?;
        metrics::counter!("portcullis_logins_total", "outcome" => "success").increment(1);
        self.store
            .record_event(Some(user.id), SecurityEvent::LoginSucceeded, client)
            .await?;
        Ok(self.with_device_token(&user, pair))
    }

    /// The owner of a passkey that verified, if they may sign in: 403
    /// `INACTIVE_USER` or `EMAIL_NOT_VERIFIED` as at `/login`.
    async fn passkey_user(&self, record: &PasskeyRecord) -> Result<User> {
        let user = self
            .store
            .user_by_id(record.user_id)
            .await?
            .ok_or(REFUSED)?
            .user;
        self.may_sign_in(&user)?;
        Ok(user)
    }

    /// Records a failed passkey sign-in (and a counter that did not grow)
    /// and answers 401 `INVALID_PASSKEY`.
    async fn refuse<T>(&self, refusal: Refusal, client: &ClientInfo) -> Result<T> {
        let (user_id, why) = match refusal {
            Refusal::Malformed => return Err(REFUSED),
            Refusal::Refused { user_id, why } => (user_id, why),
            Refusal::CloneSuspected(record) => {
                self.clone_suspected_event(&record, client).await?;
                (Some(record.user_id), "counter did not grow".to_string())
            }
        };
        tracing::info!(reason = %why, "a passkey sign-in was refused");
        metrics::counter!("portcullis_logins_total", "outcome" => "invalid_passkey").increment(1);
        self.store
            .record_event(user_id, SecurityEvent::LoginFailed, client)
            .await?;
        Err(REFUSED)
    }
}
