//! A user's passkeys (SPEC §11 `GET /passkeys`, `PATCH` and `DELETE
//! /passkeys/{id}`).

use super::checked_name;
use crate::domain::{ClientInfo, SecurityEvent};
use crate::error::{Error, Result};
use crate::flows::{AuthSession, Flows};
use crate::mail::passkey_mail;
use crate::store::PasskeyRecord;

/// A passkey as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyInfo {
    /// The opaque id of `/passkeys/{id}`.
    pub id: String,
    /// Its name.
    pub name: String,
    /// When it was registered (Unix seconds).
    pub created_at: i64,
    /// When it last signed in, if ever (Unix seconds).
    pub last_used_at: Option<i64>,
    /// Whether the authenticator said it is backed up (synced), when last seen.
    pub backed_up: bool,
}

impl From<&PasskeyRecord> for PasskeyInfo {
    fn from(record: &PasskeyRecord) -> Self {
        Self {
            id: record.id.clone(),
            name: record.name.clone(),
            created_at: record.created_at,
            last_used_at: record.last_used_at,
            backed_up: record.backed_up,
        }
    }
}

/// Whether `id` can be a passkey id (anything else is 404 at once).
fn plausible_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Flows {
    /// The session user's passkeys, oldest first.
    pub async fn list_passkeys(&self, session: &AuthSession) -> Result<Vec<PasskeyInfo>> {
        self.webauthn()?;
        let records = self.store.passkeys_of(session.user.id).await?;
        Ok(records.iter().map(PasskeyInfo::from).collect())
    }

    /// Renames one of the session user's passkeys (1–64 characters); 404
    /// `NOT_FOUND` for another user's, an unknown or a malformed id.
    pub async fn rename_passkey(
        &self,
        session: &AuthSession,
        id: &str,
        name: &str,
    ) -> Result<PasskeyInfo> {
        self.webauthn()?;
        if !plausible_id(id) {
            return Err(Error::NotFound);
        }
        let name = checked_name(name)?;
        let record = self
            .store
            .rename_passkey(session.user.id, id, &name)
            .await?
            .ok_or(Error::NotFound)?;
        Ok(PasskeyInfo::from(&record))
    }

    /// Removes one of the session user's passkeys after their password
    /// (400 `INVALID_PASSWORD`); 404 `NOT_FOUND` for another user's, an
    /// unknown or a malformed id. Mails the owner.
    pub async fn remove_passkey(
        &self,
        session: &AuthSession,
        id: &str,
        password: &str,
        client: &ClientInfo,
    ) -> Result<()> {
        self.webauthn()?;
        let user = &session.user;
        if !plausible_id(id) {
            return Err(Error::NotFound);
        }
        self.check_password_of(user.id, password, client).await?;
        let record = self
            .store
            .passkeys_of(user.id)
            .await?
            .into_iter()
            .find(|p| p.id == id)
            .ok_or(Error::NotFound)?;
        let notice = passkey_mail(
            &self.config.app_url,
            &user.email,
            &super::super::mfa::mail_time(),
            &record.name,
            false,
        );
        if !self.store.delete_passkey(user.id, id, &notice).await? {
            return Err(Error::NotFound);
        }
        self.mailer.wake();
        self.store
            .record_event(Some(user.id), SecurityEvent::PasskeyRemoved, client)
            .await
    }
}
