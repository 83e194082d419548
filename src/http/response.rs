//! Success bodies: the `{"success": true, "data": …}` envelope and the JSON
//! shapes of users, token pairs and sessions.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::fields::ExtraFields;
pub use crate::flows::TokenPair;
use crate::flows::{Paginated, bearer_schema};
use crate::store::{EventRecord, SessionInfo, User};

/// A successful answer: `{"success": true, "data": …}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Envelope<T> {
    #[serde(skip)]
    #[schema(ignore)]
    status: StatusCode,
    /// Always `true`.
    #[schema(schema_with = always_true)]
    success: bool,
    /// The answer.
    data: T,
}

/// The schema of `success` in a successful answer: the constant `true`.
pub(crate) fn always_true() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Boolean)
        .enum_values(Some([true]))
        .build()
}

impl<T: Serialize> Envelope<T> {
    /// 200 with `data`.
    pub fn ok(data: T) -> Self {
        Self {
            status: StatusCode::OK,
            success: true,
            data,
        }
    }

    /// 201 with `data`.
    pub fn created(data: T) -> Self {
        Self {
            status: StatusCode::CREATED,
            success: true,
            data,
        }
    }
}

impl<T: Serialize> IntoResponse for Envelope<T> {
    fn into_response(self) -> Response {
        (self.status, Json(self)).into_response()
    }
}

/// `{"message": "…"}`, the data of acknowledgements.
#[derive(Debug, Serialize, ToSchema)]
pub struct Message {
    /// What happened.
    pub message: &'static str,
}

/// The answer to `POST /register`: the user, and the first session's tokens
/// unless e-mail verification is required.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegisteredView<'a> {
    /// The new account.
    user: UserView<'a>,
    /// Bearer token for API calls (absent while verification is required).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    access_token: Option<&'a str>,
    /// Token for `/refresh` (absent while verification is required).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    refresh_token: Option<&'a str>,
    /// Always `bearer` (absent while verification is required).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = bearer_schema)]
    token_type: Option<&'static str>,
    /// Seconds until the access token expires (absent while verification is
    /// required).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    expires_in: Option<i64>,
}

impl<'a> RegisteredView<'a> {
    /// A new account with its first session.
    pub fn signed_in(user: &'a User, tokens: &'a TokenPair) -> Self {
        Self {
            user: UserView::new(user),
            access_token: Some(&tokens.access_token),
            refresh_token: Some(&tokens.refresh_token),
            token_type: Some(tokens.token_type),
            expires_in: Some(tokens.expires_in),
        }
    }

    /// An account waiting for its address to be verified: no id, no tokens.
    pub fn awaiting_verification(user: &'a User) -> Self {
        Self {
            user: UserView::without_id(user),
            access_token: None,
            refresh_token: None,
            token_type: None,
            expires_in: None,
        }
    }
}

/// The answer to the form login: the token pair in the envelope, and
/// `access_token` and `token_type` also at the top level, where OAuth2
/// password-flow clients (Swagger UI's Authorize) read them.
#[derive(Debug, Serialize, ToSchema)]
pub struct FormLoginAnswer {
    /// Always `true`.
    #[schema(schema_with = always_true)]
    success: bool,
    /// The token pair.
    data: TokenPair,
    /// The access token again.
    access_token: String,
    /// Always `bearer`.
    #[schema(schema_with = bearer_schema)]
    token_type: &'static str,
}

impl FormLoginAnswer {
    /// The answer carrying `pair`.
    pub fn new(pair: TokenPair) -> Self {
        Self {
            success: true,
            access_token: pair.access_token.clone(),
            token_type: pair.token_type,
            data: pair,
        }
    }
}

/// Formats Unix seconds as RFC 3339 (UTC).
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// A user as answers show it (SPEC §4), with the application's own fields
/// beside the others.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = User)]
pub struct UserView<'a> {
    /// The user's id; absent only in the answer to a registration while
    /// e-mail verification is required.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    id: Option<i64>,
    /// The address as registered (trimmed).
    email: &'a str,
    /// The display name.
    name: Option<&'a str>,
    /// Deactivated users cannot log in.
    is_active: bool,
    /// The e-mail address was confirmed.
    is_verified: bool,
    /// May use the admin API.
    is_superuser: bool,
    /// When the account was created (RFC 3339, UTC).
    #[schema(format = DateTime)]
    created_at: String,
    /// The application's own fields, at the top level beside the others.
    #[serde(flatten)]
    #[schema(ignore)]
    extra: &'a ExtraFields,
}

impl<'a> UserView<'a> {
    /// The full view.
    pub fn new(user: &'a User) -> Self {
        Self {
            id: Some(user.id),
            email: &user.email,
            name: user.name.as_deref(),
            is_active: user.is_active,
            is_verified: user.is_verified,
            is_superuser: user.is_superuser,
            created_at: rfc3339(user.created_at),
            extra: &user.extra,
        }
    }

    /// The view without `id`.
    pub fn without_id(user: &'a User) -> Self {
        Self {
            id: None,
            ..Self::new(user)
        }
    }
}

impl UserView<'_> {
    /// The view as a JSON value.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// One entry of `GET /sessions`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Session)]
pub struct SessionView {
    /// The session's opaque id, for `DELETE /sessions/{id}`.
    id: String,
    /// When the session logged in (RFC 3339, UTC).
    #[schema(format = DateTime)]
    created_at: String,
    /// When it was last refreshed or used (RFC 3339, UTC).
    #[schema(format = DateTime)]
    last_used_at: String,
    /// The client's IP at login.
    ip: Option<String>,
    /// The client's user agent at login.
    user_agent: Option<String>,
    /// Whether this is the session of the token that asks.
    current: bool,
}

impl SessionView {
    /// The view of `s`; `current` when it is the caller's own session.
    pub fn new(s: SessionInfo, current_sid: &str) -> Self {
        Self {
            current: s.id == current_sid,
            created_at: rfc3339(s.created_at),
            last_used_at: rfc3339(s.last_used_at),
            id: s.id,
            ip: s.ip,
            user_agent: s.user_agent,
        }
    }
}

/// Marks a response that carries tokens as not cacheable (RFC 6749 §5.1).
pub fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// One security event, as `GET /events` and `GET /api/users/{id}/events` list it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SecurityEvent)]
pub struct EventView {
    /// The event's id (newer events have larger ids).
    id: i64,
    /// What happened: `user_created`, `login_succeeded`, `login_failed`,
    /// `logout`, `password_changed`, `password_reset_requested`,
    /// `password_reset`, `email_verified`, `refresh_reuse_detected`,
    /// `user_updated`, `user_deactivated`, `user_activated`, `user_deleted`,
    /// `sessions_revoked`, `password_check_failed`, the second factor's and
    /// the passkeys' kinds (`passkey_added`, `passkey_removed`,
    /// `passkey_clone_suspected`), or a kind a newer version records.
    kind: String,
    /// Whose account it is about.
    user_id: Option<i64>,
    /// The superuser who did it (admin actions); `null` for the user's own
    /// actions and for the `user` commands.
    actor_id: Option<i64>,
    /// The client's IP (as `TRUSTED_PROXIES` gives it).
    ip: Option<String>,
    /// The client's user agent.
    user_agent: Option<String>,
    /// When (RFC 3339, UTC).
    #[schema(format = DateTime)]
    created_at: String,
    /// What changed, for admin actions (e.g. `{"changes": {"is_superuser":
    /// {"from": false, "to": true}}}`, `{"sessions_revoked": 2}`,
    /// `{"via": "cli"}`); `null` otherwise.
    #[schema(value_type = Option<Object>)]
    details: Option<serde_json::Value>,
}

impl EventView {
    /// The view of `e`.
    pub fn new(e: EventRecord) -> Self {
        Self {
            id: e.id,
            kind: e.kind,
            user_id: e.user_id,
            actor_id: e.actor_id,
            ip: e.ip,
            user_agent: e.user_agent,
            created_at: rfc3339(e.created_at),
            details: e.details,
        }
    }
}

/// A page of users: `{"items", "total", "page", "per_page"}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = UserPage)]
pub struct UserPageView<'a> {
    /// The users of this page, in id order.
    items: Vec<UserView<'a>>,
    /// How many users match in all.
    total: i64,
    /// This page's number, from 1.
    page: i64,
    /// The page size.
    per_page: i64,
}

impl<'a> UserPageView<'a> {
    /// The view of `page`.
    pub fn new(page: &'a Paginated<User>) -> Self {
        Self {
            items: page.items.iter().map(UserView::new).collect(),
            total: page.total,
            page: page.page,
            per_page: page.per_page,
        }
    }
}

/// A page of security events, newest first: `{"items", "total", "page", "per_page"}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = EventPage)]
pub struct EventPageView {
    /// The events of this page, newest first.
    items: Vec<EventView>,
    /// How many events there are in all.
    total: i64,
    /// This page's number, from 1.
    page: i64,
    /// The page size.
    per_page: i64,
}

impl EventPageView {
    /// The view of `page`.
    pub fn new(page: Paginated<EventRecord>) -> Self {
        Self {
            items: page.items.into_iter().map(EventView::new).collect(),
            total: page.total,
            page: page.page,
            per_page: page.per_page,
        }
    }
}
