//! Refresh-token rotation with reuse detection (SPEC §5; `/refresh` and the
//! refresh_token grant of `/token`).

use super::{Flows, TokenPair};
use crate::clock::now_unix;
use crate::domain::{ClientInfo, SecurityEvent};
use crate::error::{Error, Result};
use crate::store::RefreshOutcome;
use crate::token::TokenType;

impl Flows {
    /// Exchanges a refresh token for a new pair. The presented token is
    /// spent; presenting it again within the grace window gets the same
    /// successor, and any other replay is taken as theft and revokes the
    /// whole session. A session past its absolute lifetime is expired.
    pub async fn refresh(&self, refresh_token: &str, client: &ClientInfo) -> Result<TokenPair> {
        let claims = self.tokens.decode(refresh_token, TokenType::Refresh)?;
        let user_id = claims.user_id()?;
        let successor = self.tokens.successor_jti(&claims.jti);
        let now = now_unix();
        let outcome = self
            .store
            .rotate_refresh_token(&claims.sid, &claims.jti, &successor, &self.lifetimes(), now)
            .await?;
        let (user, expires_at, auth) = match outcome {
            RefreshOutcome::Rotated {
                user,
                expires_at,
                auth,
            }
            | RefreshOutcome::Grace {
                user,
                expires_at,
                auth,
            } => (user, expires_at, auth),
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
            RefreshOutcome::Expired => return Err(Error::TokenExpired),
            RefreshOutcome::Unknown => return Err(Error::InvalidToken),
        };
        if user.id != user_id {
            return Err(Error::InvalidToken);
        }
        if !user.is_active {
            return Err(Error::InactiveUser);
        }
        metrics::counter!("portcullis_refreshes_total", "outcome" => "success").increment(1);
        let next = self
            .tokens
            .issue_refresh(user.id, &claims.sid, &successor, now, expires_at)?;
        // The factors are the session's, never the presented token's.
        self.pair_as(&user, &claims.sid, next, auth)
    }
}
