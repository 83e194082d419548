//! Logging out (SPEC §6 `POST /logout`).

use super::{AuthSession, Flows};
use crate::domain::{ClientInfo, SecurityEvent};
use crate::error::Result;

impl Flows {
    /// Revokes the calling session, or with `all` every session of its user.
    /// Their access and refresh tokens stop working at once.
    pub async fn logout(
        &self,
        session: &AuthSession,
        all: bool,
        client: &ClientInfo,
    ) -> Result<()> {
        let user_id = session.user.id;
        if all {
            self.store.revoke_all_sessions(user_id).await?;
        } else {
            self.store
                .revoke_session(user_id, &session.claims.sid)
                .await?;
        }
        metrics::counter!("portcullis_revocations_total", "reason" => "logout").increment(1);
        self.store
            .record_event(Some(user_id), SecurityEvent::Logout, client)
            .await
    }
}
