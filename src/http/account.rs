//! Handlers for the signed-in user's own account (SPEC §6): `/me`,
//! `/change-password` and `/sessions`.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use super::AppState;
use super::body::{JsonBody, parse_query};
use super::extract::{ActiveUser, AuthSession};
use super::openapi::answers::{Busy, Inactive, Invalid, PasswordCheckLimited, Unauthenticated};
use super::openapi::schemas::{display_name, new_password};
use super::response::{Envelope, EventPageView, Message, SessionView, UserView};
use crate::domain::ClientInfo;
use crate::error::{Error, ErrorEnvelope, Result};
use crate::flows::{LOCKED_PROFILE_KEYS, Page};

/// The current user.
#[utoipa::path(get, path = "/me", tag = "account",
    security(("OAuth2PasswordBearer" = []), ("BearerAuth" = [])),
    responses(
        (status = 200, description = "The user", body = Envelope<UserView>),
        Unauthenticated, Inactive, Busy,
    ))]
pub async fn me(ActiveUser(user): ActiveUser) -> Response {
    Envelope::ok(UserView::new(&user)).into_response()
}

/// `PATCH /me` body, read as a JSON object because what a key's absence
/// means differs from `null` (see [`Flows::update_profile`](crate::Flows::update_profile)).
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct ProfileChanges(Map<String, Value>);

impl PartialSchema for ProfileChanges {
    fn schema() -> RefOr<Schema> {
        let locked = LOCKED_PROFILE_KEYS.join("|");
        ObjectBuilder::new()
            .property("name", display_name())
            .property_names(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(format!("^(?!({locked})$)"))),
            ))
            .description(Some(format!(
                "The changes: `name` and the application's own fields; keys left out stay as \
                 they are, other keys are ignored. These cannot be changed here (422): {}.",
                LOCKED_PROFILE_KEYS.join(", ")
            )))
            .into()
    }
}

impl ToSchema for ProfileChanges {}

/// Update the current user.
///
/// Changes `name` and the application's own fields; keys that are left out
/// stay as they are.
#[utoipa::path(patch, path = "/me", tag = "account",
    request_body = ProfileChanges,
    security(("OAuth2PasswordBearer" = []), ("BearerAuth" = [])),
    responses(
        (status = 200, description = "The updated user", body = Envelope<UserView>),
        Unauthenticated, Inactive, Invalid, Busy,
    ))]
pub async fn update_me(
    State(state): State<AppState>,
    ActiveUser(user): ActiveUser,
    JsonBody(changes): JsonBody<ProfileChanges>,
) -> Result<Response> {
    let updated = state.flows.update_profile(&user, &changes.0).await?;
    Ok(Envelope::ok(UserView::new(&updated)).into_response())
}

/// `POST /change-password` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChangePasswordRequest {
    /// The password in use now.
    #[schema(format = Password)]
    current_password: String,
    #[schema(schema_with = new_password)]
    new_password: String,
}

/// Change the password; other sessions are revoked.
///
/// Checks the current password and sets the new one; this session stays
/// valid.
#[utoipa::path(post, path = "/change-password", tag = "account",
    request_body = ChangePasswordRequest,
    security(("OAuth2PasswordBearer" = []), ("BearerAuth" = [])),
    responses(
        (status = 200, description = "Password changed", body = Envelope<Message>),
        (status = 400, description = "INVALID_PASSWORD: the current password is wrong", body = ErrorEnvelope),
        Unauthenticated, Inactive, Invalid, PasswordCheckLimited, Busy,
    ))]
pub async fn change_password(
    State(state): State<AppState>,
    client: ClientInfo,
    session: AuthSession,
    JsonBody(req): JsonBody<ChangePasswordRequest>,
) -> Result<Response> {
    state
        .flows
        .change_password(&session, &req.current_password, &req.new_password, &client)
        .await?;
    Ok(Envelope::ok(Message {
        message: "Password changed successfully",
    })
    .into_response())
}

/// The user's open sessions.
#[utoipa::path(get, path = "/sessions", tag = "sessions",
    security(("OAuth2PasswordBearer" = []), ("BearerAuth" = [])),
    responses(
        (status = 200, description = "The open sessions", body = Envelope<Vec<SessionView>>),
        Unauthenticated, Busy,
    ))]
pub async fn list_sessions(
    State(state): State<AppState>,
    session: AuthSession,
) -> Result<Response> {
    let sessions = state.flows.list_sessions(&session).await?;
    let views: Vec<SessionView> = sessions
        .into_iter()
        .map(|s| SessionView::new(s, &session.claims.sid))
        .collect();
    Ok(Envelope::ok(views).into_response())
}

/// Revoke one of the user's sessions.
///
/// The current session too: that is a logout.
#[utoipa::path(delete, path = "/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "A session id from `GET /sessions`")),
    security(("OAuth2PasswordBearer" = []), ("BearerAuth" = [])),
    responses(
        (status = 200, description = "Session revoked", body = Envelope<Message>),
        (status = 404, description = "NOT_FOUND: not one of the user's open sessions (another user's, an unknown or a malformed id)", body = ErrorEnvelope),
        Unauthenticated, Busy,
    ))]
pub async fn delete_session(
    State(state): State<AppState>,
    client: ClientInfo,
    session: AuthSession,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response> {
    let Ok(Path(id)) = id else {
        return Err(Error::NotFound);
    };
    state.flows.revoke_session(&session, &id, &client).await?;
    Ok(Envelope::ok(Message {
        message: "Session revoked",
    })
    .into_response())
}

/// The query of `GET /events`.
#[derive(Debug, Default, Deserialize)]
struct PageQuery {
    page: Option<String>,
    per_page: Option<String>,
}

/// The user's own recent security events.
///
/// Newest first: logins (and failed ones), logouts, password changes and
/// resets, verification, and what a superuser did to the account. Paginated
/// like `GET /api/users`.
#[utoipa::path(get, path = "/events", tag = "account",
    params(
        ("page" = Option<i64>, Query, description = "Page number, from 1 to 10,000,000 (default 1); out of range, or empty, is 422", minimum = 1, maximum = 10_000_000),
        ("per_page" = Option<i64>, Query, description = "Events per page, 1 to 100 (default 20); more is 422, not clamped", minimum = 1, maximum = 100),
    ),
    security(("OAuth2PasswordBearer" = []), ("BearerAuth" = [])),
    responses(
        (status = 200, description = "A page of the user's security events", body = Envelope<EventPageView>),
        Unauthenticated, Inactive, Invalid, Busy,
    ))]
pub async fn list_events(
    State(state): State<AppState>,
    ActiveUser(user): ActiveUser,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let q: PageQuery = parse_query(query.as_deref())?;
    let page = Page::parse(q.page.as_deref(), q.per_page.as_deref())?;
    let events = state.flows.own_events(&user, page).await?;
    Ok(Envelope::ok(EventPageView::new(events)).into_response())
}
