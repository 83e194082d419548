//! Handlers for the signed-in user's own account (SPEC §6): `/me`,
//! `/change-password` and `/sessions`.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::AppState;
use super::body::JsonBody;
use super::extract::{ActiveUser, AuthSession};
use super::response::{Envelope, Message, SessionView, UserView};
use crate::domain::ClientInfo;
use crate::error::{Error, Result};

/// `GET /me`: the current active user.
pub async fn me(ActiveUser(user): ActiveUser) -> Response {
    Envelope::ok(UserView::new(&user)).into_response()
}

/// `PATCH /me`: updates `name` and the application's own fields.
pub async fn update_me(
    State(state): State<AppState>,
    ActiveUser(user): ActiveUser,
    JsonBody(changes): JsonBody<Map<String, Value>>,
) -> Result<Response> {
    let updated = state.flows.update_profile(&user, &changes).await?;
    Ok(Envelope::ok(UserView::new(&updated)).into_response())
}

/// `POST /change-password` body.
#[derive(Debug, Deserialize)]
pub struct ChangePasswordRequest {
    current_password: String,
    new_password: String,
}

/// `POST /change-password`: checks the current password, sets the new one
/// and revokes the user's other sessions; this session stays valid.
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

/// `GET /sessions`: the user's open sessions.
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

/// `DELETE /sessions/{id}`: revokes one of the user's sessions; 404 for
/// another user's, an unknown or a malformed id.
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
