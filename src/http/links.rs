//! Handlers for the JSON side of the mailbox flows (SPEC §6): asking for a
//! reset or verification link, and using one. The HTML pages the links open
//! are in [`super::pages`]; both call the same flows.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::body::JsonBody;
use super::response::{Envelope, Message, UserView};
use crate::domain::ClientInfo;
use crate::error::Result;

/// Body of `/forgot-password` and `/verify-email/resend`.
#[derive(Debug, Deserialize)]
pub struct EmailRequest {
    email: String,
}

/// `POST /forgot-password`: the same answer, in the same time, whether or
/// not the address is registered; a registered, active user gets a link.
pub async fn forgot_password(
    State(state): State<AppState>,
    client: ClientInfo,
    JsonBody(req): JsonBody<EmailRequest>,
) -> Result<Response> {
    state
        .flows
        .request_password_reset(&req.email, &client)
        .await?;
    Ok(Envelope::ok(Message {
        message: "If that address is registered, a password reset link has been sent to it",
    })
    .into_response())
}

/// Body of `POST /reset-password`.
#[derive(Debug, Deserialize)]
pub struct ResetRequest {
    token: String,
    new_password: String,
}

/// `POST /reset-password`: sets a new password with a single-use token.
pub async fn reset_password(
    State(state): State<AppState>,
    client: ClientInfo,
    JsonBody(req): JsonBody<ResetRequest>,
) -> Result<Response> {
    state
        .flows
        .reset_password(&req.token, &req.new_password, &client)
        .await?;
    Ok(Envelope::ok(Message {
        message: "Password has been reset; log in with the new password",
    })
    .into_response())
}

/// Body of `POST /verify-email`.
#[derive(Debug, Deserialize)]
pub struct VerifyRequest {
    token: String,
}

/// `POST /verify-email`: confirms the address; the user.
pub async fn verify_email(
    State(state): State<AppState>,
    client: ClientInfo,
    JsonBody(req): JsonBody<VerifyRequest>,
) -> Result<Response> {
    let user = state.flows.verify_email(&req.token, &client).await?;
    Ok(Envelope::ok(UserView::new(&user)).into_response())
}

/// `POST /verify-email/resend` (alias `/send-verification`): the same answer
/// whatever the address; an unverified, active user gets a new link.
pub async fn resend_verification(
    State(state): State<AppState>,
    client: ClientInfo,
    JsonBody(req): JsonBody<EmailRequest>,
) -> Result<Response> {
    state.flows.resend_verification(&req.email, &client).await?;
    Ok(Envelope::ok(Message {
        message: "If that address needs verification, a new link has been sent to it",
    })
    .into_response())
}
