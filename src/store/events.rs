//! The security-event trail.

use sqlx::Row;

use super::Store;
use crate::clock::now_unix;
use crate::domain::{ClientInfo, SecurityEvent};
use crate::error::{Error, Result};

impl Store {
    /// Records a security event (login, logout, password change, …).
    pub async fn record_event(
        &self,
        user_id: Option<i64>,
        kind: SecurityEvent,
        client: &ClientInfo,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO security_events (user_id, kind, ip, user_agent, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(user_id)
        .bind(kind.as_str())
        .bind(client.ip.as_deref())
        .bind(client.user_agent.as_deref())
        .bind(now_unix())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The kinds of the user's latest security events, newest first (a kind
    /// this version does not know is left out).
    pub async fn recent_events(&self, user_id: i64, limit: i64) -> Result<Vec<SecurityEvent>> {
        let rows = sqlx::query(
            "SELECT kind FROM security_events WHERE user_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(user_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut kinds = Vec::with_capacity(rows.len());
        for row in &rows {
            let name: String = row.try_get("kind").map_err(Error::from)?;
            kinds.extend(SecurityEvent::from_name(&name));
        }
        Ok(kinds)
    }
}
