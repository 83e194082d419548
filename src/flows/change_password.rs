//! Changing a known password (SPEC §6 `POST /change-password`).

use super::{AuthSession, Flows};
use crate::domain::{ClientInfo, SecurityEvent};
use crate::error::{Error, Result};
use crate::password::{HashCaller, NewPassword};

impl Flows {
    /// Checks the current password (limited and recorded, see
    /// [`password_check`](super::password_check)), sets the new one and
    /// revokes every other session of the user (and outstanding reset
    /// links); the calling session stays valid.
    pub async fn change_password(
        &self,
        session: &AuthSession,
        current_password: &str,
        new_password: &str,
        client: &ClientInfo,
    ) -> Result<()> {
        let user = &session.user;
        if !user.is_active {
            return Err(Error::InactiveUser);
        }
        let new_password = NewPassword::parse(
            new_password,
            Some(&user.email),
            &self.config.password,
            "new_password",
        )
        .map_err(|e| Error::Validation(vec![e]))?;
        let record = self
            .store
            .user_by_id(user.id)
            .await?
            .ok_or(Error::TokenRevoked)?;
        self.check_current_password(user.id, &record.password_hash, current_password, client)
            .await?;
        let caller = self.limits.enabled().then(|| HashCaller::user(user.id));
        let hash = self
            .passwords
            .hash_for(caller.as_ref(), &new_password)
            .await?;
        let notice = self.password_changed_notice(&user.email, false);
        self.store
            .change_password(user.id, &hash, Some(&session.claims.sid), &notice)
            .await?;
        self.mailer.wake();
        metrics::counter!("portcullis_revocations_total", "reason" => "password_changed")
            .increment(1);
        self.store
            .record_event(Some(user.id), SecurityEvent::PasswordChanged, client)
            .await
    }
}
