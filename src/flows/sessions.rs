//! A user's own sessions (SPEC §6 `GET /sessions`, `DELETE /sessions/{id}`).

use super::{AuthSession, Flows};
use crate::domain::{ClientInfo, SecurityEvent};
use crate::error::{Error, Result};
use crate::store::SessionInfo;

/// Whether `id` could be a session id (22 base64url characters).
fn well_formed(id: &str) -> bool {
    id.len() == 22
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Flows {
    /// The caller's user's open sessions, newest first.
    pub async fn list_sessions(&self, session: &AuthSession) -> Result<Vec<SessionInfo>> {
        self.store.list_sessions(session.user.id).await
    }

    /// Revokes one of the caller's user's sessions. Another user's session,
    /// an unknown, a revoked or a malformed id are all [`Error::NotFound`].
    pub async fn revoke_session(
        &self,
        session: &AuthSession,
        id: &str,
        client: &ClientInfo,
    ) -> Result<()> {
        let user_id = session.user.id;
        if !well_formed(id) || !self.store.revoke_session(user_id, id).await? {
            return Err(Error::NotFound);
        }
        metrics::counter!("portcullis_revocations_total", "reason" => "session_deleted")
            .increment(1);
        self.store
            .record_event(Some(user_id), SecurityEvent::Logout, client)
            .await
    }
}
