//! Opening a session: the step every successful login and registration ends with.

use serde::Serialize;

use super::Flows;
use crate::domain::ClientInfo;
use crate::error::Result;
use crate::random::random_id;
use crate::store::User;
use crate::token::TokenType;

/// An access/refresh pair, as login, registration and refresh return it.
/// (Its `ToSchema` describes this serialized shape for the OpenAPI document.)
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TokenPair {
    /// Bearer token for API calls.
    pub access_token: String,
    /// Token for `/refresh`.
    pub refresh_token: String,
    /// Always `bearer`.
    #[schema(schema_with = bearer)]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

/// The schema of `token_type`: the constant `bearer`.
pub(crate) fn bearer() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(["bearer"]))
        .description(Some("Always `bearer`."))
        .build()
}

impl Flows {
    /// Opens a session for `user` and signs its first token pair.
    pub(super) async fn open_session(&self, user: &User, client: &ClientInfo) -> Result<TokenPair> {
        let sid = random_id();
        let refresh = self
            .tokens
            .issue(TokenType::Refresh, user.id, &user.email, &sid)?;
        self.store
            .create_session(
                &sid,
                user.id,
                &refresh.claims.jti,
                refresh.claims.exp,
                client,
            )
            .await?;
        self.pair(user, &sid, refresh.token)
    }

    /// A new access token for `user` in session `sid`, paired with `refresh_token`.
    pub(super) fn pair(&self, user: &User, sid: &str, refresh_token: String) -> Result<TokenPair> {
        let access = self
            .tokens
            .issue(TokenType::Access, user.id, &user.email, sid)?;
        Ok(TokenPair {
            access_token: access.token,
            refresh_token,
            token_type: "bearer",
            expires_in: self.tokens.access_ttl_secs(),
        })
    }
}
