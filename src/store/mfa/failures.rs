//! Wrong codes: a login's second step counts them per user in a window and
//! in a row (the lock, with a mail to the owner) and per `mfa_token`; codes
//! sent with a session count in a window of their own, and never lock.

use sqlx::Row;

use super::{FAILURE_WINDOW_SECS, LOCK_AFTER_FAILURES};
use crate::domain::OutgoingMail;
use crate::error::Result;
use crate::store::{Store, WriteTx, hash_secret, mail_queue::insert_mail};

/// The result of [`Store::record_factor_failure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureRecorded {
    /// This failure locked the second step.
    pub locked_now: bool,
}

/// Clears the failure counters and the lock of `user_id` (a password reset).
pub(in crate::store) async fn clear_factor_lock(tx: &mut WriteTx, user_id: i64) -> Result<()> {
    sqlx::query(
        "UPDATE mfa_totp SET failed_in_row = 0, window_failures = 0, locked_at = NULL, \
         session_window_failures = 0 WHERE user_id = $1",
    )
    .bind(user_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Counts a wrong code of a login's second step against `user_id` and
    /// its `mfa_token`: the failure window, the failures in a row (locking
    /// the second step at [`LOCK_AFTER_FAILURES`], with `lock_notice` queued).
    pub async fn record_factor_failure(
        &self,
        user_id: i64,
        token: &str,
        lock_notice: &OutgoingMail,
        now: i64,
    ) -> Result<FailureRecorded> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE mfa_tokens SET failures = failures + 1 WHERE token_hash = $1")
            .bind(hash_secret(token))
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query(
            "UPDATE mfa_totp SET \
                failed_in_row = failed_in_row + 1, \
                window_failures = CASE WHEN window_started_at + $2 <= $1 THEN 1 ELSE window_failures + 1 END, \
                window_started_at = CASE WHEN window_started_at + $2 <= $1 THEN $1 ELSE window_started_at END, \
                locked_at = CASE WHEN locked_at IS NULL AND failed_in_row + 1 >= $3 THEN $1 ELSE locked_at END \
             WHERE user_id = $4 RETURNING failed_in_row, locked_at",
        )
        .bind(now)
        .bind(FAILURE_WINDOW_SECS)
        .bind(LOCK_AFTER_FAILURES)
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await?;
        let locked_now = match row {
            Some(row) => {
                row.try_get::<i64, _>("failed_in_row")? == LOCK_AFTER_FAILURES
                    && row.try_get::<Option<i64>, _>("locked_at")? == Some(now)
            }
            None => false,
        };
        if locked_now {
            insert_mail(&mut tx, lock_notice, now).await?;
        }
        tx.commit().await?;
        Ok(FailureRecorded { locked_now })
    }

    /// Counts a wrong code sent with a session (confirm, disable,
    /// regenerate) against `user_id`, in its own window: the login's
    /// counters and lock are left alone.
    pub async fn record_session_factor_failure(&self, user_id: i64, now: i64) -> Result<()> {
        sqlx::query(
            "UPDATE mfa_totp SET \
                session_window_failures = CASE WHEN session_window_started_at + $2 <= $1 \
                    THEN 1 ELSE session_window_failures + 1 END, \
                session_window_started_at = CASE WHEN session_window_started_at + $2 <= $1 \
                    THEN $1 ELSE session_window_started_at END \
             WHERE user_id = $3",
        )
        .bind(now)
        .bind(FAILURE_WINDOW_SECS)
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
