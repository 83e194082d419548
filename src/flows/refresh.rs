//! Refresh-token rotation with reuse detection (SPEC §5; `/refresh` and the
//! refresh_token grant of `/token`).

use super::{Flows, TokenPair};
use crate::domain::{ClientInfo, SecurityEvent};
use crate::error::{Error, Result};
use crate::store::RefreshOutcome;
use crate::token::TokenType;

impl Flows {
    /// Exchanges a refresh token for a new pair. The presented token is
    /// spent; presenting it again after the grace window is taken as theft
    /// and revokes the whole session.
    pub async fn refresh(&self, refresh_token: &str, client: &ClientInfo) -> Result<TokenPair> {
        let claims = self.tokens.decode(refresh_token, TokenType::Refresh)?;
        let user_id = claims.user_id()?;
        let next = self
            .tokens
            .issue(TokenType::Refresh, user_id, "", &claims.sid)?;
        let outcome = self
            .store
            .rotate_refresh_token(
                &claims.sid,
                &claims.jti,
                &next.claims.jti,
                next.claims.exp,
                self.config.refresh_reuse_grace,
            )
            .await?;
        let user = match outcome {
            RefreshOutcome::Rotated(user) | RefreshOutcome::Grace(user) => user,
            RefreshOutcome::Reused { user_id } => {
                tracing::warn!(user_id, "refresh token reuse detected; session revoked");
                metrics::counter!("portcullis_refreshes_total", "outcome" => "reuse").increment(1);
                metrics::counter!("portcullis_revocations_total", "reason" => "refresh_reuse")
                    .increment(1);
                self.store
                    .record_event(Some(user_id), SecurityEvent::RefreshReuseDetected, client)
                    .await?;
                return Err(Error::TokenRevoked);
            }
            RefreshOutcome::Revoked => return Err(Error::TokenRevoked),
            RefreshOutcome::Unknown => return Err(Error::InvalidToken),
        };
        if user.id != user_id {
            return Err(Error::InvalidToken);
        }
        if !user.is_active {
            return Err(Error::InactiveUser);
        }
        metrics::counter!("portcullis_refreshes_total", "outcome" => "success").increment(1);
        self.pair(&user, &claims.sid, next.token)
    }
}
