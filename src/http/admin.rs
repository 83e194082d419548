//! Handlers of the admin API (SPEC §6, superusers only): `/api/users`,
//! `/api/users/{id}`, `/api/users/{id}/sessions`, `/api/users/{id}/mfa`,
//! `/api/users/{id}/passkeys` and `/api/users/{id}/events`. The rules are in
//! [`flows::admin`](crate::flows::Flows::admin_list_users); these parse,
//! call one flow and render.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use super::AppState;
use super::body::{JsonBody, parse_query};
use super::extract::{AuthSession, Superuser};
use super::openapi::answers::{Busy, Invalid, NotSuperuser, Unauthenticated};
use super::openapi::schemas::display_name;
use super::passkeys::PasskeyView;
use super::response::{Envelope, EventPageView, Message, SessionView, UserPageView, UserView};
use crate::domain::ClientInfo;
use crate::error::{Error, ErrorEnvelope, Result};
use crate::flows::{ADMIN_PATCH_KEYS, Page};

/// The query of `GET /api/users`.
#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    page: Option<String>,
    per_page: Option<String>,
    email: Option<String>,
}

/// The id in the path; any that does not parse is an unknown one.
fn path_id(id: Result<Path<String>, PathRejection>) -> Result<String> {
    id.map(|Path(id)| id).map_err(|_| Error::NotFound)
}

/// The page a query asks for.
fn page_of(raw: Option<&str>) -> Result<Page> {
    let q: ListQuery = parse_query(raw)?;
    Page::parse(q.page.as_deref(), q.per_page.as_deref())
}

/// List users.
///
/// In id order, `per_page` (default 20, at most 100) at a time; `email`
/// keeps only those whose address contains it, regardless of case.
#[utoipa::path(get, path = "/api/users", tag = "admin",
    params(
        ("page" = Option<i64>, Query, description = "Page number, from 1 to 10,000,000 (default 1); out of range, or empty, is 422", minimum = 1, maximum = 10_000_000),
        ("per_page" = Option<i64>, Query, description = "Users per page, 1 to 100 (default 20); more is 422, not clamped", minimum = 1, maximum = 100),
        ("email" = Option<String>, Query, description = "Only users whose e-mail contains this, regardless of case"),
    ),
    security(("OAuth2PasswordBearer" = []), ("BearerAuth" = [])),
    responses(
        (status = 200, description = "A page of users", body = Envelope<UserPageView>),
        Unauthenticated, NotSuperuser, Invalid, Busy,
    ))]
pub async fn list_users(
    State(state): State<AppState>,
    Superuser(_admin): Superuser,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let q: ListQuery = parse_query(query.as_deref())?;
    let page = Page::parse(q.page.as_deref(), q.per_page.as_deref())?;
    let found = state
        .flows
        .admin_list_users(page, q.email.as_deref())
        .await?;
    Ok(Envelope::ok(UserPageView::new(&found)).into_response())
}

/// Read a user.
#[utoipa::path(get, path = "/api/users/{id}", tag = "admin",
    params(("id" = i64, Path, description = "The user's id")),
    security(("OAuth2PasswordBearer" = []), ("BearerAuth" = [])),
    responses(
        (status = 200, description = "The user", body = Envelope<UserView>),
        (status = 404, description = "NOT_FOUND: no user with this id (a malformed id too)", body = ErrorEnvelope),
        Unauthenticated, NotSuperuser, Busy,
    ))]
pub async fn get_user(
    State(state): State<AppState>,
    Superuser(_admin): Superuser,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response> {
    let user = state.flows.admin_get_user(&path_id(id)?).await?;
    Ok(Envelope::ok(UserView::new(&user)).into_response())
}

/// `PATCH /api/users/{id}` body: a JSON object with any of the four keys.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct AdminChanges(Map<String, Value>);

impl PartialSchema for AdminChanges {
    fn schema() -> RefOr<Schema> {
        let flag = |description: &str| {
            ObjectBuilder::new()
                .schema_type(Type::Boolean)
                .description(Some(description))
        };
        ObjectBuilder::new()
            .property("name", display_name())
            .property(
                "is_active",
                flag("`false` deactivates: every session is revoked and reset and verification links are voided"),
            )
            .property("is_verified", flag("The e-mail address is confirmed"))
            .property("is_superuser", flag("May use the admin API"))
            .additional_properties(Some(utoipa::openapi::schema::AdditionalProperties::FreeForm(false)))
            .description(Some(format!(
                "The changes: any of {}; keys left out stay as they are, any other key is 422.",
                ADMIN_PATCH_KEYS.join(", ")
            )))
            .into()
    }
}

impl ToSchema for AdminChanges {}

/// Change a user.
///
/// Deactivating revokes every session of the user at once (their tokens then
/// answer 401 `TOKEN_REVOKED`, also after a reactivation). A superuser
/// cannot deactivate or demote themself (409). Each change is recorded in
/// the user's security events, naming the acting superuser.
#[utoipa::path(patch, path = "/api/users/{id}", tag = "admin",
    params(("id" = i64, Path, description = "The user's id")),
    request_body = AdminChanges,
    security(("OAuth2PasswordBearer" = []), ("BearerAuth" = [])),
    responses(
        (status = 200, description = "The user as changed", body = Envelope<UserView>),
        (status = 404, description = "NOT_FOUND: no user with this id (a malformed id too)", body = ErrorEnvelope),
        (status = 409, description = "CANNOT_MODIFY_SELF: a superuser cannot deactivate or demote themself", body = ErrorEnvelope),
        Unauthenticated, NotSuperuser, Invalid, Busy,
    ))]
pub async fn update_user(
    State(state): State<AppState>,
    client: ClientInfo,
    Superuser(admin): Superuser,
    id: Result<Path<String>, PathRejection>,
    JsonBody(changes): JsonBody<AdminChanges>,
) -> Result<Response> {
    let user = state
        .flows
        .admin_update_user(&admin, &path_id(id)?, &changes.0, &client)
        .await?;
    Ok(Envelope::ok(UserView::new(&user)).into_response())
}

/// What a deletion or a revocation did.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminDone {
    /// What happened.
    message: &'static str,
}

/// Delete a user.
///
/// Their sessions are revoked and their account removed; their security
/// events stay (until `SECURITY_EVENT_RETENTION_DAYS`). A superuser cannot
/// delete themself (409).
#[utoipa::path(delete, path = "/api/users/{id}", tag = "admin",
    params(("id" = i64, Path, description = "The user's id")),
    security(("OAuth2PasswordBearer" = []), ("BearerAuth" = [])),
    responses(
        (status = 200, description = "Deleted", body = Envelope<AdminDone>),
        (status = 404, description = "NOT_FOUND: no user with this id (a malformed id too)", body = ErrorEnvelope),
        (status = 409, description = "CANNOT_MODIFY_SELF: a superuser cannot delete themself", body = ErrorEnvelope),
        Unauthenticated, NotSuperuser, Busy,
    ))]
pub async fn delete_user(
    State(state): State<AppState>,
    client: ClientInfo,
    Superuser(admin): Superuser,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response> {
    state
        .flows
        .admin_delete_user(&admin, &path_id(id)?, &client)
        .await?;
    Ok(Envelope::ok(AdminDone {
        message: "User deleted",
    })
    .into_response())
}

/// A user's open sessions.
#[utoipa::path(get, path = "/api/users/{id}/sessions", tag = "admin",
    params(("id" = i64, Path, description = "The user's id")),
    security(("OAuth2PasswordBearer" = []), ("BearerAuth" = [])),
    responses(
        (status = 200, description = "The user's open sessions, newest first (`current` is whether it is the caller's own)", body = Envelope<Vec<SessionView>>),
        (status = 404, description = "NOT_FOUND: no user with this id (a malformed id too)", body = ErrorEnvelope),
        Unauthenticated, NotSuperuser, Busy,
    ))]
pub async fn user_sessions(
    State(state): State<AppState>,
    Superuser(_admin): Superuser,
    session: AuthSession,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response> {
    let sessions = state.flows.admin_user_sessions(&path_id(id)?).await?;
    let views: Vec<SessionView> = sessions
        .into_iter()
        .map(|s| SessionView::new(s, &session.claims.sid))
        .collect();
    Ok(Envelope::ok(views).into_response())
}

/// Revoke all of a user's sessions.
///
/// Their access and refresh tokens answer 401 `TOKEN_REVOKED` from now on;
/// recorded in their security events.
#[utoipa::path(delete, path = "/api/users/{id}/sessions", tag = "admin",
    params(("id" = i64, Path, description = "The user's id")),
    security(("OAuth2PasswordBearer" = []), ("BearerAuth" = [])),
    responses(
        (status = 200, description = "Every session revoked", body = Envelope<RevokedView>),
        (status = 404, description = "NOT_FOUND: no user with this id (a malformed id too)", body = ErrorEnvelope),
        Unauthenticated, NotSuperuser, Busy,
    ))]
pub async fn revoke_sessions(
    State(state): State<AppState>,
    client: ClientInfo,
    Superuser(admin): Superuser,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response> {
    let revoked = state
        .flows
        .admin_revoke_sessions(&admin, &path_id(id)?, &client)
        .await?;
    Ok(Envelope::ok(RevokedView {
        message: "Sessions revoked",
        revoked,
    })
    .into_response())
}

/// Remove a user's second factor.
///
/// Their TOTP and recovery codes go, every session of theirs is revoked and
/// they get a mail; recorded on their trail naming the superuser (SPEC §10).
#[utoipa::path(delete, path = "/api/users/{id}/mfa", tag = "admin",
    params(("id" = i64, Path, description = "The user's id")),
    security(("OAuth2PasswordBearer" = []), ("BearerAuth" = [])),
    responses(
        (status = 200, description = "The second factor is removed", body = Envelope<Message>),
        (status = 404, description = "NOT_FOUND: no user with this id (a malformed id too); MFA_NOT_ENABLED: the user has no second factor", body = ErrorEnvelope),
        (status = 409, description = "CANNOT_MODIFY_SELF: a superuser cannot remove their own second factor (POST /mfa/totp/disable with a code is the way)", body = ErrorEnvelope),
        Unauthenticated, NotSuperuser, Busy,
    ))]
pub async fn reset_mfa(
    State(state): State<AppState>,
    client: ClientInfo,
    Superuser(admin): Superuser,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response> {
    state
        .flows
        .admin_reset_mfa(&admin, &path_id(id)?, &client)
        .await?;
    Ok(Envelope::ok(Message {
        message: "Second factor removed",
    })
    .into_response())
}

/// A user's passkeys.
///
/// As the owner's `GET /passkeys` lists them. Answered from what is stored,
/// also while passkeys are off (no relying party).
#[utoipa::path(get, path = "/api/users/{id}/passkeys", tag = "admin",
    params(("id" = i64, Path, description = "The user's id")),
    security(("OAuth2PasswordBearer" = []), ("BearerAuth" = [])),
    responses(
        (status = 200, description = "The user's passkeys, oldest first", body = Envelope<Vec<PasskeyView>>),
        (status = 404, description = "NOT_FOUND: no user with this id (a malformed id too)", body = ErrorEnvelope),
        Unauthenticated, NotSuperuser, Busy,
    ))]
pub async fn user_passkeys(
    State(state): State<AppState>,
    Superuser(_admin): Superuser,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response> {
    let passkeys = state.flows.admin_user_passkeys(&path_id(id)?).await?;
    let views: Vec<PasskeyView> = passkeys.into_iter().map(PasskeyView::from).collect();
    Ok(Envelope::ok(views).into_response())
}

/// Remove a user's passkey.
///
/// No password is asked. The owner gets the mail of their own removal;
/// recorded as `passkey_removed` on their trail naming the superuser (SPEC
/// §11). The passkey cannot sign in from now on.
#[utoipa::path(delete, path = "/api/users/{id}/passkeys/{pid}", tag = "admin",
    params(
        ("id" = i64, Path, description = "The user's id"),
        ("pid" = String, Path, description = "A passkey id from `GET /api/users/{id}/passkeys`"),
    ),
    security(("OAuth2PasswordBearer" = []), ("BearerAuth" = [])),
    responses(
        (status = 200, description = "Removed; the owner is mailed", body = Envelope<Message>),
        (status = 404, description = "NOT_FOUND: no user with this id (a malformed id too), or no such passkey of theirs (an unknown, malformed or another user's passkey id)", body = ErrorEnvelope),
        (status = 409, description = "CANNOT_MODIFY_SELF: a superuser removes their own passkey with DELETE /passkeys/{id} and the password", body = ErrorEnvelope),
        Unauthenticated, NotSuperuser, Busy,
    ))]
pub async fn remove_user_passkey(
    State(state): State<AppState>,
    client: ClientInfo,
    Superuser(admin): Superuser,
    ids: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response> {
    let Ok(Path((id, pid))) = ids else {
        return Err(Error::NotFound);
    };
    state
        .flows
        .admin_remove_passkey(&admin, &id, &pid, &client)
        .await?;
    Ok(Envelope::ok(Message {
        message: "Passkey removed",
    })
    .into_response())
}

/// The answer to `DELETE /api/users/{id}/sessions`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevokedView {
    /// What happened.
    message: &'static str,
    /// How many sessions were open.
    revoked: u64,
}

/// A user's security events.
///
/// Newest first, paginated like `GET /api/users`. A deleted user's events
/// stay readable until `SECURITY_EVENT_RETENTION_DAYS`.
#[utoipa::path(get, path = "/api/users/{id}/events", tag = "admin",
    params(
        ("id" = i64, Path, description = "The user's id"),
        ("page" = Option<i64>, Query, description = "Page number, from 1 to 10,000,000 (default 1); out of range, or empty, is 422", minimum = 1, maximum = 10_000_000),
        ("per_page" = Option<i64>, Query, description = "Events per page, 1 to 100 (default 20); more is 422, not clamped", minimum = 1, maximum = 100),
    ),
    security(("OAuth2PasswordBearer" = []), ("BearerAuth" = [])),
    responses(
        (status = 200, description = "A page of the user's security events", body = Envelope<EventPageView>),
        (status = 404, description = "NOT_FOUND: no user with this id and no events of one (a malformed id too)", body = ErrorEnvelope),
        Unauthenticated, NotSuperuser, Invalid, Busy,
    ))]
pub async fn user_events(
    State(state): State<AppState>,
    Superuser(_admin): Superuser,
    id: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let id = path_id(id)?;
    let page = page_of(query.as_deref())?;
    let events = state.flows.admin_user_events(&id, page).await?;
    Ok(Envelope::ok(EventPageView::new(events)).into_response())
}
