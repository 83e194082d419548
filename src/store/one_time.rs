//! Password-reset and e-mail verification tokens: stored only as SHA-256
//! hashes, expiring, single-use.

use sqlx::Row;

use super::{Store, hash_secret, revoke_user_sessions, void_reset_tokens};
use crate::error::Result;
use crate::mail::OutgoingMail;
use crate::token::now_unix;

/// What a one-time token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    /// Password reset (`RESET_TOKEN_EXPIRE_MINUTES`).
    Reset,
    /// E-mail verification (`VERIFY_TOKEN_EXPIRE_HOURS`).
    Verify,
}

impl TokenPurpose {
    fn as_str(self) -> &'static str {
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
             WHERE token_hash = $2 AND purpose = 'verify' AND used_at IS NULL AND expires_at > $1 \
             RETURNING user_id",
        )
        .bind(now)
        .bind(hash_secret(token))
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
    pub async fn reset_password(&self, token: &str, user_id: i64, new_hash: &str) -> Result<bool> {
        let now = now_unix();
        let mut tx = self.begin_write().await?;
        let spent = sqlx::query(
            "UPDATE one_time_tokens SET used_at = $1 \
             WHERE token_hash = $2 AND user_id = $3 AND purpose = 'reset' AND used_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(hash_secret(token))
        .bind(user_id)
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
        tx.commit().await?;
        Ok(true)
    }
}
