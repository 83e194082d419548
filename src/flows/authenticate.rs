//! The check on every protected request (SPEC §8): a valid access token of a
//! session that is still open, and its user as stored now.

use std::sync::Arc;

use super::Flows;
use crate::clock::now_unix;
use crate::error::{Error, Result};
use crate::store::{SessionLookup, TOUCH_INTERVAL_SECS, User};
use crate::token::{Claims, TokenType};

/// An authenticated session: its user and the access token's claims.
#[derive(Debug, Clone)]
pub struct AuthSession {
    /// The token's user, as stored now.
    pub user: User,
    /// The access token's claims (`sid` names the session).
    pub claims: Claims,
}

/// An [`AuthSession`] as the check produces it: the user shared with the
/// session cache, the claims behind an `Arc`. Kept in a request's
/// extensions, it is handed to each extractor of the request without a copy;
/// each extractor then takes its own [`User`].
#[derive(Debug, Clone)]
pub struct CheckedSession {
    /// The token's user, as stored now.
    pub user: Arc<User>,
    /// The access token's claims.
    pub claims: Arc<Claims>,
}

impl CheckedSession {
    /// The session with its own copies of the user and the claims.
    pub fn to_session(&self) -> AuthSession {
        AuthSession {
            user: User::clone(&self.user),
            claims: Claims::clone(&self.claims),
        }
    }
}

impl Flows {
    /// Checks an access token: signature and claims (the configured
    /// algorithm only, `exp`, `type`, issuer, audience), then that its
    /// session is open and its user exists: from memory while the change
    /// feed confirms it is up to date, else from the database (SPEC §9).
    /// Records the session's use at most once a minute, in the background.
    pub async fn authenticate(&self, access_token: &str) -> Result<AuthSession> {
        Ok(self.check_access(access_token).await?.to_session())
    }

    /// [`Flows::authenticate`], answering with the user as the session cache
    /// shares it (what the extractors use: no copy per request).
    pub async fn check_access(&self, access_token: &str) -> Result<CheckedSession> {
        let claims = self.tokens.decode(access_token, TokenType::Access)?;
        let user_id = claims.user_id()?;
        match self.store.lookup_session(&claims.sid).await? {
            SessionLookup::Active { user, last_used_at } => {
                if user.id != user_id {
                    return Err(Error::InvalidToken);
                }
                if now_unix() - last_used_at > TOUCH_INTERVAL_SECS {
                    let store = self.store.clone();
                    let sid = claims.sid.clone();
                    self.tasks.spawn("recording session use", async move {
                        store.touch_session(&sid).await
                    });
                }
                Ok(CheckedSession {
                    user,
                    claims: Arc::new(claims),
                })
            }
            SessionLookup::Revoked | SessionLookup::Missing => Err(Error::TokenRevoked),
        }
    }
}
