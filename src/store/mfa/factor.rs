//! The factor's life (SPEC §10): a pending setup, its confirmation (with
//! the recovery codes), turning it off with a code, a new set of recovery
//! codes, and the admin reset. Each write runs in one transaction under the
//! user's lock.

use sqlx::Row;

use super::FactorProof;
use super::spend_proof;
use crate::domain::{OutgoingMail, SecurityEvent};
use crate::error::Result;
use crate::store::events::insert_event;
use crate::store::sessions::revoke_user_sessions;
use crate::store::{Actor, Store, WriteTx, mail_queue::insert_mail};

/// Stores a new set of recovery codes (their keyed hashes), voiding the old.
async fn replace_recovery_codes(
    tx: &mut WriteTx,
    user_id: i64,
    hashes: &[String],
    now: i64,
) -> Result<()> {
    sqlx::query("DELETE FROM mfa_recovery_codes WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    for hash in hashes {
        sqlx::query(
            "INSERT INTO mfa_recovery_codes (code_hash, user_id, created_at) VALUES ($1, $2, $3)",
        )
        .bind(hash)
        .bind(user_id)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Removes the factor of `user_id` entirely: TOTP, recovery codes, pending tokens.
async fn remove_factor(tx: &mut WriteTx, user_id: i64) -> Result<bool> {
    let removed = sqlx::query("DELETE FROM mfa_totp WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    for sql in [
        "DELETE FROM mfa_recovery_codes WHERE user_id = $1",
        "DELETE FROM mfa_tokens WHERE user_id = $1",
    ] {
        sqlx::query(sql).bind(user_id).execute(&mut **tx).await?;
    }
    Ok(removed == 1)
}

impl Store {
    /// Unspent recovery codes of `user_id`.
    pub async fn recovery_codes_left(&self, user_id: i64) -> Result<i64> {
        Ok(sqlx::query(
            "SELECT COUNT(*) AS n FROM mfa_recovery_codes WHERE user_id = $1 AND used_at IS NULL",
        )
        .bind(user_id)
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?)
    }

    /// Records a pending TOTP setup (replacing an earlier pending one);
    /// `false`, and nothing written, when TOTP is already enabled.
    pub async fn begin_totp_setup(
        &self,
        user_id: i64,
        secret_ciphertext: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        if !self.lock_user(&mut tx, user_id).await? {
            return Ok(false);
        }
        if crate::store::sessions::has_second_factor(&mut tx, user_id).await? {
            return Ok(false);
        }
        sqlx::query("DELETE FROM mfa_totp WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO mfa_totp (user_id, secret_ciphertext, created_at, pending_expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(user_id)
        .bind(secret_ciphertext)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Enables the pending TOTP setup whose secret is `secret_ciphertext`,
    /// with `step` (the confirming code's) as its last used step, stores the
    /// recovery codes, revokes every session of the user and queues
    /// `notice`, in one transaction under the user's lock. `false`, and
    /// nothing written, if that setup is no longer pending (expired,
    /// replaced, confirmed meanwhile).
    pub async fn confirm_totp(
        &self,
        user_id: i64,
        secret_ciphertext: &str,
        step: i64,
        recovery_hashes: &[String],
        notice: &OutgoingMail,
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        if !self.lock_user(&mut tx, user_id).await? {
            return Ok(false);
        }
        let enabled = sqlx::query(
            "UPDATE mfa_totp SET enabled_at = $1, pending_expires_at = NULL, last_step = $2, \
                    last_used_at = $1, failed_in_row = 0 \
             WHERE user_id = $3 AND secret_ciphertext = $4 AND enabled_at IS NULL \
               AND pending_expires_at > $1 AND locked_at IS NULL",
        )
        .bind(now)
        .bind(step)
        .bind(user_id)
        .bind(secret_ciphertext)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if enabled != 1 {
            return Ok(false);
        }
        replace_recovery_codes(&mut tx, user_id, recovery_hashes, now).await?;
        revoke_user_sessions(&mut tx, user_id, now).await?;
        insert_mail(&mut tx, notice, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Spends `proof` and, with it, turns the factor off: TOTP, recovery
    /// codes and pending `mfa_token`s go, every session but `keep_session`
    /// is revoked and `notice` queued, in one transaction. `false`, and
    /// nothing written, if the proof is not accepted (wrong, used, or the
    /// factor is locked or gone).
    pub async fn disable_totp(
        &self,
        user_id: i64,
        proof: &FactorProof,
        keep_session: &str,
        notice: &OutgoingMail,
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        if !self.lock_user(&mut tx, user_id).await? {
            return Ok(false);
        }
        if !self.unlocked_factor(&mut tx, user_id).await? {
            return Ok(false);
        }
        if !spend_proof(&mut tx, user_id, proof, now).await? {
            return Ok(false);
        }
        remove_factor(&mut tx, user_id).await?;
        sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL AND id <> $3",
        )
        .bind(now)
        .bind(user_id)
        .bind(keep_session)
        .execute(&mut *tx)
        .await?;
        insert_mail(&mut tx, notice, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Spends the TOTP `step` and replaces the recovery codes by
    /// `recovery_hashes`, in one transaction; `false`, and nothing written,
    /// if the step is not accepted.
    pub async fn regenerate_recovery_codes(
        &self,
        user_id: i64,
        step: i64,
        recovery_hashes: &[String],
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        if !self.lock_user(&mut tx, user_id).await? {
            return Ok(false);
        }
        if !spend_proof(&mut tx, user_id, &FactorProof::TotpStep(step), now).await? {
            return Ok(false);
        }
        replace_recovery_codes(&mut tx, user_id, recovery_hashes, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Whether the enabled factor of `user_id` is not locked (inside `tx`,
    /// its row locked on PostgreSQL).
    async fn unlocked_factor(&self, tx: &mut WriteTx, user_id: i64) -> Result<bool> {
        let sql = format!(
            "SELECT locked_at FROM mfa_totp WHERE user_id = $1 AND enabled_at IS NOT NULL{}",
            self.lock_clause()
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user_id)
            .fetch_optional(&mut **tx)
            .await?;
        Ok(match row {
            Some(row) => row.try_get::<Option<i64>, _>("locked_at")?.is_none(),
            None => false,
        })
    }

    /// Removes the second factor of `user_id` (an admin reset): TOTP,
    /// recovery codes, pending `mfa_token`s, the lock; every session is
    /// revoked, `notice` queued and the trail written (`mfa_reset` on the
    /// user naming `actor`, and `admin_mfa_reset` on an acting superuser's
    /// own trail), in one transaction. `false` when the user had no factor
    /// (then nothing is written).
    pub async fn reset_second_factor(
        &self,
        user_id: i64,
        notice: &OutgoingMail,
        actor: &Actor<'_>,
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        if !self.lock_user(&mut tx, user_id).await? {
            return Ok(false);
        }
        if !remove_factor(&mut tx, user_id).await? {
            return Ok(false);
        }
        revoke_user_sessions(&mut tx, user_id, now).await?;
        insert_mail(&mut tx, notice, now).await?;
        insert_event(
            &mut tx,
            Some(user_id),
            SecurityEvent::MfaReset,
            actor,
            None,
            now,
        )
        .await?;
        if let Actor::Admin { id, .. } = actor {
            let kind = SecurityEvent::AdminMfaReset;
            insert_event(&mut tx, Some(*id), kind, actor, None, now).await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}
