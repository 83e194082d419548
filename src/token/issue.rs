//! Issuing tokens: access and refresh tokens, and the successor id of a
//! spent refresh token.

use base64::Engine;
use jsonwebtoken::Header;
use sha2::Sha256;

use super::{Claims, IssuedToken, TokenService, TokenType};
use crate::clock::now_unix;
use crate::domain::SessionAuth;
use crate::error::{Error, Result};
use crate::random::random_id;

impl TokenService {
    /// Signs a token of `kind` for user `user_id` in session `sid`.
    /// `email` is included in access tokens only.
    pub fn issue(
        &self,
        kind: TokenType,
        user_id: i64,
        email: &str,
        sid: &str,
    ) -> Result<IssuedToken> {
        let iat = now_unix();
        let ttl = match kind {
            TokenType::Access => self.access_ttl_secs(),
            TokenType::Refresh => self.refresh_ttl_secs(),
        };
        let claims = Claims {
            sub: user_id.to_string(),
            email: (kind == TokenType::Access).then(|| email.to_string()),
            email_verified: None,
            token_type: kind,
            exp: iat + ttl,
            iat,
            jti: random_id(),
            sid: sid.to_string(),
            amr: None,
            aal: None,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        self.sign(claims)
    }

    /// Signs the access token of session `sid` for a user: their id, e-mail
    /// and whether it is verified (SPEC §5).
    pub fn issue_access(
        &self,
        user_id: i64,
        email: &str,
        email_verified: bool,
        sid: &str,
    ) -> Result<IssuedToken> {
        self.issue_access_as(user_id, email, email_verified, sid, SessionAuth::Password)
    }

    /// [`TokenService::issue_access`] for a session authenticated by `auth`:
    /// its `amr` and `aal` claims (SPEC §10).
    pub fn issue_access_as(
        &self,
        user_id: i64,
        email: &str,
        email_verified: bool,
        sid: &str,
        auth: SessionAuth,
    ) -> Result<IssuedToken> {
        self.issue_access_until(user_id, email, email_verified, sid, auth, i64::MAX)
    }

    /// [`TokenService::issue_access_as`] with an `exp` of at most
    /// `not_after` (Unix seconds): a session's access token never outlives
    /// the session (its refresh token's expiry, which the session's absolute
    /// end bounds).
    pub fn issue_access_until(
        &self,
        user_id: i64,
        email: &str,
        email_verified: bool,
        sid: &str,
        auth: SessionAuth,
        not_after: i64,
    ) -> Result<IssuedToken> {
        let iat = now_unix();
        self.sign(Claims {
            sub: user_id.to_string(),
            email: Some(email.to_string()),
            email_verified: Some(email_verified),
            token_type: TokenType::Access,
            exp: iat.saturating_add(self.access_ttl_secs()).min(not_after),
            iat,
            jti: random_id(),
            sid: sid.to_string(),
            amr: Some(auth.amr().iter().map(|m| (*m).to_string()).collect()),
            aal: Some(auth.aal().to_string()),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        })
    }

    /// Signs a refresh token of session `sid`, issued at `iat`, whose id and
    /// expiry the store decided (rotation, absolute session lifetime).
    pub fn issue_refresh(
        &self,
        user_id: i64,
        sid: &str,
        jti: &str,
        iat: i64,
        exp: i64,
    ) -> Result<IssuedToken> {
        self.sign(Claims {
            sub: user_id.to_string(),
            email: None,
            email_verified: None,
            token_type: TokenType::Refresh,
            exp,
            iat,
            jti: jti.to_string(),
            sid: sid.to_string(),
            amr: None,
            aal: None,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        })
    }

    /// The id of the refresh token that replaces refresh token `jti`: a keyed
    /// hash of it, so that a replay within the grace window gets the *same*
    /// successor (SPEC §5) without the successor's id being stored anywhere.
    pub fn successor_jti(&self, jti: &str) -> String {
        use hmac::Mac as _;
        use hmac::digest::KeyInit;
        // A key of exactly one SHA-256 block: HMAC's infallible constructor.
        let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new(&self.successor_key.into());
        mac.update(jti.as_bytes());
        let tag = mac.finalize().into_bytes();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&tag[..16])
    }

    /// Signs arbitrary claims with the current key (useful in tests and tools).
    pub fn sign(&self, claims: Claims) -> Result<IssuedToken> {
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.kid.clone());
        let token =
            jsonwebtoken::encode(&header, &claims, &self.encoding).map_err(Error::internal)?;
        Ok(IssuedToken { token, claims })
    }
}
