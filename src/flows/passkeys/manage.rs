//! A user's passkeys (SPEC §11 `GET /passkeys`, `PATCH` and `DELETE
//! /passkeys/{id}`, and what superusers read and remove of them).

use serde_json::json;

use super::checked_name;
use crate::domain::ClientInfo;
use crate::error::{Error, Result};
use crate::flows::{AuthSession, Flows};
use crate::mail::passkey_mail;
use crate::store::{Actor, PasskeyRecord, User};

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
        self.delete_passkey_of(user, id, &Actor::Owner { client })
            .await
    }

    /// The passkeys of user `user_id`, oldest first, as a superuser reads
    /// them (the owner's list); 404 `NOT_FOUND` when there is no such user.
    /// Stored data only: answered with passkeys off too.
    pub(crate) async fn passkeys_of_user(&self, user_id: i64) -> Result<Vec<PasskeyInfo>> {
        if self.store.user_by_id(user_id).await?.is_none() {
            return Err(Error::NotFound);
        }
        let records = self.store.passkeys_of(user_id).await?;
        Ok(records.iter().map(PasskeyInfo::from).collect())
    }

    /// Deletes `user`'s passkey `id` as `actor` (the owner, or a superuser:
    /// named in the event, with the passkey's id and name), mails the owner
    /// and records `passkey_removed`, the deletion, mail and event in one
    /// transaction; 404 `NOT_FOUND` for another user's, an unknown or a
    /// malformed id (nothing is deleted then).
    pub(crate) async fn delete_passkey_of(
        &self,
        user: &User,
        id: &str,
        actor: &Actor<'_>,
    ) -> Result<()> {
        if !plausible_id(id) {
            return Err(Error::NotFound);
        }
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
        let details = matches!(actor, Actor::Admin { .. })
            .then(|| json!({"passkey": {"id": record.id, "name": record.name}}));
        if !self
            .store
            .delete_passkey(user.id, id, &notice, actor, details.as_ref())
            .await?
        {
            return Err(Error::NotFound);
        }
        self.mailer.wake();
        Ok(())
    }
}
