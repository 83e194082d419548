//! The admin reset of a user's second factor (SPEC §10): through the admin
//! API by another superuser, or `portcullis user reset-mfa E`.

use super::mail_time;
use crate::clock::now_unix;
use crate::config::Config;
use crate::domain::ClientInfo;
use crate::error::{Error, Result};
use crate::flows::Flows;
use crate::mail::{MfaNotice, mfa_mail};
use crate::store::{Actor, Store, User};

impl Flows {
    /// A superuser removes the second factor of user `user_id` through the
    /// admin API (`DELETE /api/users/{id}/mfa`): see [`remove_second_factor`].
    /// `actor` is the acting superuser; the event on the user names them, and
    /// `admin_mfa_reset` is also recorded on the superuser's own trail. Their
    /// own factor is 409 `CANNOT_MODIFY_SELF`: a stolen superuser session must
    /// not strip the second factor without a code (`/mfa/totp/disable` is the
    /// owner's way).
    pub async fn reset_mfa(&self, actor: &User, user_id: i64, client: &ClientInfo) -> Result<()> {
        if !(actor.is_superuser && actor.is_active) {
            return Err(Error::Forbidden);
        }
        if user_id == actor.id {
            return Err(Error::CannotModifySelf);
        }
        let by = Actor::Admin {
            id: actor.id,
            client,
        };
        remove_second_factor(&self.store, &self.config, user_id, &by).await?;
        self.mailer.wake();
        Ok(())
    }
}

/// Removes the second factor of user `user_id` (the admin API, and
/// `portcullis user reset-mfa E`, which has no running [`Flows`]): TOTP,
/// recovery codes, pending `mfa_token`s and the lock go, every session of
/// the user is revoked, the owner's mail is queued in the same transaction
/// (a running server's mail worker sends it), and `mfa_reset` is recorded on
/// the user naming `actor` in that transaction too (and `admin_mfa_reset` on
/// an acting superuser). 404 `NOT_FOUND` for an unknown user, 404
/// `MFA_NOT_ENABLED` when there is nothing to remove. The user as found.
pub async fn remove_second_factor(
    store: &Store,
    config: &Config,
    user_id: i64,
    actor: &Actor<'_>,
) -> Result<User> {
    let user = store
        .user_by_id(user_id)
        .await?
        .ok_or(Error::NotFound)?
        .user;
    let notice = mfa_mail(
        &config.app_url,
        &user.email,
        &mail_time(),
        MfaNotice::ResetByAdmin,
    );
    if !store
        .reset_second_factor(user.id, &notice, actor, now_unix())
        .await?
    {
        return Err(Error::MfaNotEnabled);
    }
    metrics::counter!("portcullis_revocations_total", "reason" => "mfa_reset").increment(1);
    tracing::info!(user_id, "second factor removed by an administrator");
    Ok(user)
}
