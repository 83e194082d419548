//! Housekeeping: deleting rows that can no longer matter.

use super::Store;
use crate::error::Result;

impl Store {
    /// Deletes what can no longer matter: refresh tokens and sessions past
    /// their expiry, one-time tokens past theirs, delivered mail older
    /// than a day, and change-feed rows older than an hour. Returns how many rows went. Safe to run on any instance.
    pub async fn purge_expired(&self, now: i64) -> Result<u64> {
        let mut removed = 0;
        for (sql, cutoff) in [
            ("DELETE FROM refresh_tokens WHERE expires_at < $1", now),
            ("DELETE FROM sessions WHERE expires_at < $1", now),
            ("DELETE FROM one_time_tokens WHERE expires_at < $1", now),
            ("DELETE FROM mfa_tokens WHERE expires_at < $1", now),
            ("DELETE FROM passkey_ceremonies WHERE expires_at < $1", now),
            (
                "DELETE FROM mfa_totp WHERE enabled_at IS NULL AND pending_expires_at < $1",
                now,
            ),
            (
                "DELETE FROM mail_queue WHERE sent_at IS NOT NULL AND sent_at < $1",
                now - 86_400,
            ),
            (
                "DELETE FROM change_feed WHERE changed_at < $1",
                now - super::FEED_RETENTION_SECS,
            ),
        ] {
            removed += sqlx::query(sql)
                .bind(cutoff)
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        self.wrote();
        Ok(removed)
    }

    /// Deletes security events recorded before `cutoff` (Unix seconds);
    /// how many went.
    pub async fn purge_events_before(&self, cutoff: i64) -> Result<u64> {
        Ok(
            sqlx::query("DELETE FROM security_events WHERE created_at < $1")
                .bind(cutoff)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }
}
