//! The security-event trail.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, WriteTx};
use crate::clock::now_unix;
use crate::domain::{ClientInfo, SecurityEvent};
use crate::error::{Error, Result};

/// Who did something to an account, for the trail.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    /// The account's owner, from this client (no actor is recorded: the
    /// event is their own, as [`Store::record_event`] writes it).
    Owner {
        /// Their IP and user agent.
        client: &'a ClientInfo,
    },
    /// A superuser through the admin API, from this client.
    Admin {
        /// The acting superuser's id.
        id: i64,
        /// Their IP and user agent.
        client: &'a ClientInfo,
    },
    /// An operator through the `user` commands (recorded with
    /// `"via": "cli"` in `details`, no IP, no user agent).
    Cli,
}

impl Actor<'_> {
    fn admin_id(&self) -> Option<i64> {
        match self {
            Actor::Admin { id, .. } => Some(*id),
            Actor::Owner { .. } | Actor::Cli => None,
        }
    }

    fn client(&self) -> Option<&ClientInfo> {
        match self {
            Actor::Admin { client, .. } | Actor::Owner { client } => Some(client),
            Actor::Cli => None,
        }
    }
}

/// One recorded security event, as `GET /events` and
/// `GET /api/users/{id}/events` list it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    /// Its id (increasing: newer events have larger ids).
    pub id: i64,
    /// What happened, as stored ([`SecurityEvent::as_str`]; a kind that a
    /// newer version recorded is shown as it is).
    pub kind: String,
    /// Whose account it is about.
    pub user_id: Option<i64>,
    /// The superuser who acted, for admin actions.
    pub actor_id: Option<i64>,
    /// The caller's IP.
    pub ip: Option<String>,
    /// The caller's user agent.
    pub user_agent: Option<String>,
    /// When, Unix seconds.
    pub created_at: i64,
    /// What changed, for admin actions (a JSON object).
    pub details: Option<serde_json::Value>,
}

impl EventRecord {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        let details: Option<String> = row.try_get("details")?;
        Ok(Self {
            id: row.try_get("id")?,
            kind: row.try_get("kind")?,
            user_id: row.try_get("user_id")?,
            actor_id: row.try_get("actor_id")?,
            ip: row.try_get("ip")?,
            user_agent: row.try_get("user_agent")?,
            created_at: row.try_get("created_at")?,
            details: details.and_then(|d| serde_json::from_str(&d).ok()),
        })
    }
}

/// Inserts one event inside `tx`, so that it is recorded with the change it
/// describes or not at all.
pub(super) async fn insert_event(
    tx: &mut WriteTx,
    user_id: Option<i64>,
    kind: SecurityEvent,
    actor: &Actor<'_>,
    details: Option<&serde_json::Value>,
    now: i64,
) -> Result<()> {
    let details = match (details, actor) {
        (Some(serde_json::Value::Object(map)), Actor::Cli) => {
            let mut map = map.clone();
            map.insert("via".into(), "cli".into());
            Some(serde_json::Value::Object(map).to_string())
        }
        (None, Actor::Cli) => Some(serde_json::json!({"via": "cli"}).to_string()),
        (details, _) => details.map(serde_json::Value::to_string),
    };
    let client = actor.client();
    sqlx::query(
        "INSERT INTO security_events (user_id, kind, ip, user_agent, created_at, actor_id, details) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(user_id)
    .bind(kind.as_str())
    .bind(client.and_then(|c| c.ip.as_deref()))
    .bind(client.and_then(|c| c.user_agent.as_deref()))
    .bind(now)
    .bind(actor.admin_id())
    .bind(details)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

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

    /// Records a security event with its actor and details (an admin action,
    /// or what a `user` command did).
    pub async fn record_event_by(
        &self,
        user_id: Option<i64>,
        kind: SecurityEvent,
        actor: &Actor<'_>,
        details: Option<&serde_json::Value>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        insert_event(&mut tx, user_id, kind, actor, details, now_unix()).await?;
        tx.commit().await?;
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

    /// A page of the user's security events, newest first, and how many
    /// they have in all.
    pub async fn user_events(
        &self,
        user_id: i64,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<EventRecord>, i64)> {
        let total: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM security_events WHERE user_id = $1")
                .bind(user_id)
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?;
        let rows = sqlx::query(
            "SELECT id, kind, user_id, actor_id, ip, user_agent, created_at, details \
             FROM security_events WHERE user_id = $1 ORDER BY id DESC LIMIT $2 OFFSET $3",
        )
        .bind(user_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let events = rows
            .iter()
            .map(EventRecord::from_row)
            .collect::<Result<_, _>>()?;
        Ok((events, total))
    }
}
