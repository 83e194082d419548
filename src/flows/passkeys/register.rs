//! Registering a passkey (SPEC §11 `POST /passkeys/register/options`,
//! `POST /passkeys/register`).

use serde_json::Value;
use webauthn_rs::prelude::{PasskeyRegistration, RegisterPublicKeyCredential, Uuid};

use super::{
    PasskeyInfo, PasskeyOptions, backup_flags, checked_name, credential_id, stored_passkey,
};
use crate::domain::{ClientInfo, SecurityEvent};
use crate::error::{Error, Result};
use crate::flows::{AuthSession, Flows};
use crate::mail::passkey_mail;
use crate::random::random_id;
use crate::store::{CeremonyPurpose, NewPasskey};

/// The name a passkey gets when none is given.
const DEFAULT_NAME: &str = "Passkey";

impl Flows {
    /// Starts registering a passkey for the session's user, after their
    /// password (400 `INVALID_PASSWORD`): the options exclude the user's
    /// credentials and require a discoverable credential and user
    /// verification. 409 `PASSKEY_LIMIT_REACHED` at the limit.
    pub async fn passkey_registration_options(
        &self,
        session: &AuthSession,
        password: &str,
        client: &ClientInfo,
    ) -> Result<PasskeyOptions> {
        let webauthn = self.webauthn()?;
        let user = &session.user;
        if !user.is_active {
            return Err(Error::InactiveUser);
        }
        self.check_password_of(user.id, password, client).await?;
        let existing = self.store.passkeys_of(user.id).await?;
        if existing.len() >= self.config.passkeys.per_user as usize {
            return Err(Error::PasskeyLimitReached);
        }
        // One handle per user: an authenticator then replaces its older
        // credential for this account instead of keeping both.
        let handle = match existing.first() {
            Some(record) => Uuid::parse_str(&record.user_handle).map_err(Error::internal)?,
            None => Uuid::new_v4(),
        };
        let exclude = existing
            .iter()
            .map(|record| Ok(stored_passkey(record)?.cred_id().clone()))
            .collect::<Result<Vec<_>>>()?;
        let display = user.name.as_deref().unwrap_or(&user.email);
        let (challenge, state) = webauthn
            .start_passkey_registration(handle, &user.email, display, Some(exclude))
            .map_err(Error::internal)?;
        let mut options = serde_json::to_value(&challenge).map_err(Error::internal)?;
        // webauthn-rs asks for a non-discoverable credential; SPEC §11 wants
        // a discoverable one (sign-in without an e-mail, autofill).
        let selection = &mut options["publicKey"]["authenticatorSelection"];
        selection["residentKey"] = Value::from("required");
        selection["requireResidentKey"] = Value::from(true);
        selection["userVerification"] = Value::from("required");
        let ceremony = RegistrationCeremony {
            handle: handle.to_string(),
            state,
        };
        self.start_ceremony(CeremonyPurpose::Register, Some(user.id), &ceremony, options)
            .await
    }

    /// Finishes a registration started by the same user: the credential
    /// must verify against the ceremony (400 `INVALID_PASSKEY`), be new to
    /// every account (409 `PASSKEY_ALREADY_REGISTERED`) and fit under the
    /// limit (409 `PASSKEY_LIMIT_REACHED`). Mails the owner.
    pub async fn finish_passkey_registration(
        &self,
        session: &AuthSession,
        ceremony_id: &str,
        credential: Value,
        name: Option<&str>,
        client: &ClientInfo,
    ) -> Result<PasskeyInfo> {
        let webauthn = self.webauthn()?;
        let user = &session.user;
        let name = checked_name(name.unwrap_or(DEFAULT_NAME))?;
        let (_, ceremony): (_, RegistrationCeremony) = self
            .take_ceremony(ceremony_id, CeremonyPurpose::Register, Some(user.id))
            .await?;
        let credential: RegisterPublicKeyCredential = serde_json::from_value(credential)
            .map_err(|_| Error::InvalidPasskey { sign_in: false })?;
        let passkey = webauthn
            .finish_passkey_registration(&credential, &ceremony.state)
            .map_err(|e| {
                tracing::info!(error = %e, "a passkey registration did not verify");
                Error::InvalidPasskey { sign_in: false }
            })?;
        let (backup_eligible, backed_up) = backup_flags(&passkey)?;
        let serialised = serde_json::to_string(&passkey).map_err(Error::internal)?;
        let id = random_id();
        let credential_id = credential_id(&passkey);
        let notice = passkey_mail(
            &self.config.app_url,
            &user.email,
            &super::super::mfa::mail_time(),
            &name,
            true,
        );
        let record = self
            .store
            .insert_passkey(
                &NewPasskey {
                    id: &id,
                    user_id: user.id,
                    credential_id: &credential_id,
                    user_handle: &ceremony.handle,
                    name: &name,
                    passkey: &serialised,
                    backup_eligible,
                    backed_up,
                },
                self.config.passkeys.per_user,
                &notice,
            )
            .await?;
        self.mailer.wake();
        self.store
            .record_event(Some(user.id), SecurityEvent::PasskeyAdded, client)
            .await?;
        Ok(PasskeyInfo::from(&record))
    }

    /// Checks the current password of `user_id` as `/change-password` does:
    /// limited per user and IP (429 before any hashing), recorded when
    /// wrong (400 `INVALID_PASSWORD`).
    pub(super) async fn check_password_of(
        &self,
        user_id: i64,
        password: &str,
        client: &ClientInfo,
    ) -> Result<()> {
        let record = self
            .store
            .user_by_id(user_id)
            .await?
            .ok_or(Error::TokenRevoked)?;
        self.check_current_password(user_id, &record.password_hash, password, client)
            .await
    }
}

/// What a registration ceremony keeps: webauthn-rs's state and the user
/// handle its options carry (`user.id`), which the state does not keep.
#[derive(serde::Serialize, serde::Deserialize)]
struct RegistrationCeremony {
    /// The WebAuthn user handle, a UUID.
    handle: String,
    /// webauthn-rs's state.
    state: PasskeyRegistration,
}
