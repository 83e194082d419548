//! The `mfa_token` between a login's password and its second step: issued
//! hashed and bound to the password hash, looked up while live, and spent
//! together with the code's proof in the second step.

use sqlx::Row;

use super::{FactorProof, TOKEN_FAILURE_LIMIT, TotpRecord, spend_proof};
use crate::error::Result;
use crate::store::{Store, WriteTx, hash_secret};

/// A live `mfa_token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaTokenRecord {
    /// Whose login it continues.
    pub user_id: i64,
    /// SHA-256 of the password hash it was issued against.
    pub password_stamp: String,
}

/// The result of [`Store::complete_second_step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondStep {
    /// The token and the proof were spent; with a recovery code, how many
    /// codes are left.
    Passed {
        /// Unspent recovery codes left (after a recovery code only).
        recovery_codes_left: Option<i64>,
    },
    /// The token is unknown, expired, spent or burnt, or the factor is gone.
    InvalidToken,
    /// The second step is locked or throttled.
    Throttled(u64),
    /// The code was wrong, its step used, or the recovery code spent.
    WrongCode,
}

/// Voids every pending `mfa_token` of `user_id` (a password change or reset).
pub(in crate::store) async fn void_mfa_tokens(
    tx: &mut WriteTx,
    user_id: i64,
    now: i64,
) -> Result<()> {
    sqlx::query("UPDATE mfa_tokens SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL")
        .bind(now)
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Store {
    /// Stores a new `mfa_token` (its hash) for `user_id`, bound to the
    /// password hash the login verified.
    pub async fn issue_mfa_token(
        &self,
        token: &str,
        user_id: i64,
        password_hash: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO mfa_tokens (token_hash, user_id, password_stamp, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(hash_secret(token))
        .bind(user_id)
        .bind(hash_secret(password_hash))
        .bind(now)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The live `mfa_token` `token` (unspent, unexpired, not burnt), without
    /// spending it.
    pub async fn live_mfa_token(&self, token: &str, now: i64) -> Result<Option<MfaTokenRecord>> {
        let row = sqlx::query(
            "SELECT user_id, password_stamp FROM mfa_tokens \
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 AND failures < $3",
        )
        .bind(hash_secret(token))
        .bind(now)
        .bind(TOKEN_FAILURE_LIMIT)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(row) => Some(MfaTokenRecord {
                user_id: row.try_get("user_id")?,
                password_stamp: row.try_get("password_stamp")?,
            }),
            None => None,
        })
    }

    /// The second step of a login, in one transaction under the user's
    /// lock: the `mfa_token` is spent (if still live), then `proof` (if
    /// accepted). Either both are spent or neither.
    pub async fn complete_second_step(
        &self,
        token: &str,
        user_id: i64,
        proof: &FactorProof,
        now: i64,
    ) -> Result<SecondStep> {
        let mut tx = self.begin_write().await?;
        if !self.lock_user(&mut tx, user_id).await? {
            return Ok(SecondStep::InvalidToken);
        }
        let sql = format!(
            "SELECT * FROM mfa_totp WHERE user_id = $1 AND enabled_at IS NOT NULL{}",
            self.lock_clause()
        );
        let factor = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(factor) = factor.as_ref().map(TotpRecord::from_row).transpose()? else {
            return Ok(SecondStep::InvalidToken);
        };
        if let Some(wait) = factor.throttled_for(now) {
            return Ok(SecondStep::Throttled(wait));
        }
        let spent = sqlx::query(
            "UPDATE mfa_tokens SET used_at = $1 \
             WHERE token_hash = $2 AND user_id = $3 AND used_at IS NULL AND expires_at > $1 \
               AND failures < $4",
        )
        .bind(now)
        .bind(hash_secret(token))
        .bind(user_id)
        .bind(TOKEN_FAILURE_LIMIT)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if spent != 1 {
            return Ok(SecondStep::InvalidToken);
        }
        if !spend_proof(&mut tx, user_id, proof, now).await? {
            return Ok(SecondStep::WrongCode);
        }
        let recovery_codes_left = match proof {
            FactorProof::RecoveryCode(_) => Some(
                sqlx::query(
                    "SELECT COUNT(*) AS n FROM mfa_recovery_codes WHERE user_id = $1 AND used_at IS NULL",
                )
                .bind(user_id)
                .fetch_one(&mut *tx)
                .await?
                .try_get("n")?,
            ),
            FactorProof::TotpStep(_) | FactorProof::Passkey => None,
        };
        tx.commit().await?;
        Ok(SecondStep::Passed {
            recovery_codes_left,
        })
    }
}
