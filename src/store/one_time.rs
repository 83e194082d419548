//! Password-reset and e-mail verification tokens: stored only as SHA-256
//! hashes, expiring, single-use.

use sqlx::Row;

use super::sessions::revoke_user_sessions;
use super::{Store, WriteTx, hash_secret};
use crate::clock::now_unix;
use crate::domain::OutgoingMail;
use crate::error::Result;

/// What a one-time token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    /// Password reset (`RESET_TOKEN_EXPIRE_MINUTES`).
    Reset,
    /// E-mail verification (`VERIFY_TOKEN_EXPIRE_HOURS`).
    Verify,
}

impl TokenPurpose {
    /// The name stored in the `purpose` column.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::Reset => "reset",
            TokenPurpose::Verify => "verify",
        }
    }
}

impl Store {
    /// Stores the hash of a new one-time `token` and queues the `mail` that
    /// carries it, in one transaction. A new reset token voids older ones.
    pub async fn issue_one_time_token(
        &self,
        user_id: i64,
        purpose: TokenPurpose,
        token: &str,
        expires_at: i64,
        mail: &OutgoingMail,
    ) -> Result<()> {
        let now = now_unix();
        let mut tx = self.begin_write().await?;
        if purpose == TokenPurpose::Reset {
            void_reset_tokens(&mut tx, user_id, now).await?;
        }
        sqlx::query(
            "INSERT INTO one_time_tokens (token_hash, user_id, purpose, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(hash_secret(token))
        .bind(user_id)
        .bind(purpose.as_str())
        .bind(now)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        super::mail_queue::insert_mail(&mut tx, mail, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The user a still-valid token belongs to, without spending it.
    pub async fn peek_one_time_token(
        &self,
        token: &str,
        purpose: TokenPurpose,
    ) -> Result<Option<i64>> {
        let row = sqlx::query(
            "SELECT user_id FROM one_time_tokens \
             WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3",
        )
        .bind(hash_secret(token))
        .bind(purpose.as_str())
        .bind(now_unix())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get("user_id")).transpose()?)
    }

    /// Spends a verification token and marks the e-mail verified; the user
    /// id, or `None` if the token is unknown, expired or used.
    pub async fn consume_verification_token(&self, token: &str) -> Result<Option<i64>> {
        let now = now_unix();
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "UPDATE one_time_tokens SET used_at = $1 \
             WHERE token_hash = $2 AND purpose = $3 AND used_at IS NULL AND expires_at > $1 \
             RETURNING user_id",
        )
        .bind(now)
        .bind(hash_secret(token))
        .bind(TokenPurpose::Verify.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let user_id: i64 = row.try_get("user_id")?;
        sqlx::query("UPDATE users SET is_verified = TRUE, updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(user_id))
    }

    /// Spends a reset token of `user_id` and, in the same transaction, sets
    /// the new hash, marks the e-mail verified, voids other reset tokens and
    /// revokes every session. `false` if the token was spent meanwhile.
    pub async fn reset_password(
        &self,
        token: &str,
        user_id: i64,
        new_hash: &str,
        notice: &OutgoingMail,
    ) -> Result<bool> {
        let now = now_unix();
        let mut tx = self.begin_write().await?;
        let spent = sqlx::query(
            "UPDATE one_time_tokens SET used_at = $1 \
             WHERE token_hash = $2 AND user_id = $3 AND purpose = $4 AND used_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(hash_secret(token))
        .bind(user_id)
        .bind(TokenPurpose::Reset.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if spent != 1 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE users SET password_hash = $1, is_verified = TRUE, updated_at = $2 WHERE id = $3",
        )
        .bind(new_hash)
        .bind(now)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        void_reset_tokens(&mut tx, user_id, now).await?;
        revoke_user_sessions(&mut tx, user_id, now).await?;
        // The second factor stays (SPEC §10); pending second steps die and
        // its lock is released.
        super::mfa::void_mfa_tokens(&mut tx, user_id, now).await?;
        super::mfa::clear_factor_lock(&mut tx, user_id).await?;
        super::mail_queue::insert_mail(&mut tx, notice, now).await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// Marks every outstanding reset token of `user_id` used.
pub(super) async fn void_reset_tokens(tx: &mut WriteTx, user_id: i64, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE one_time_tokens SET used_at = $1 WHERE user_id = $2 AND purpose = $3 AND used_at IS NULL",
    )
    .bind(now)
    .bind(user_id)
    .bind(TokenPurpose::Reset.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Marks every outstanding one-time token of `user_id` used, of any purpose
/// (a deactivated account must not be reset or verified by an old link).
pub(super) async fn void_one_time_tokens(tx: &mut WriteTx, user_id: i64, now: i64) -> Result<()> {
    sqlx::query("UPDATE one_time_tokens SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL")
        .bind(now)
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
