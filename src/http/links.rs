//! Handlers for the JSON side of the mailbox flows (SPEC §6): asking for a
//! reset or verification link, and using one. The HTML pages the links open
//! are in [`super::pages`]; both call the same flows.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;

use super::AppState;
use super::body::JsonBody;
use super::openapi::answers::{Busy, Invalid, RateLimited};
use super::openapi::schemas::{email_address, new_password};
use super::response::{Envelope, Message, UserView};
use crate::domain::ClientInfo;
use crate::error::{ErrorEnvelope, Result};

/// Body of `/forgot-password` and `/verify-email/resend`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EmailRequest {
    #[schema(schema_with = email_address)]
    email: String,
}

/// Mail a reset link (same answer for every address).
///
/// The same answer, in the same time, whether or not the address is
/// registered; a registered, active user gets a link.
#[utoipa::path(post, path = "/forgot-password", tag = "password reset",
    request_body = EmailRequest,
    responses(
        (status = 200, description = "Asked for (whatever the address)", body = Envelope<Message>),
        Invalid, RateLimited,
    ))]
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
#[derive(Debug, Deserialize, ToSchema)]
pub struct ResetRequest {
    /// The token of the mailed link.
    token: String,
    #[schema(schema_with = new_password)]
    new_password: String,
}

/// Set a new password with a mailed token.
///
/// The token is single-use; every session of the user is revoked.
#[utoipa::path(post, path = "/reset-password", tag = "password reset",
    request_body = ResetRequest,
    responses(
        (status = 200, description = "Password reset", body = Envelope<Message>),
        (status = 400, description = "INVALID_RESET_TOKEN: unknown, expired or used", body = ErrorEnvelope),
        Invalid, Busy,
    ))]
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
#[derive(Debug, Deserialize, ToSchema)]
pub struct VerifyRequest {
    /// The token of the mailed link.
    token: String,
}

/// Confirm the e-mail address with a mailed token.
#[utoipa::path(post, path = "/verify-email", tag = "verification",
    request_body = VerifyRequest,
    responses(
        (status = 200, description = "The user, verified", body = Envelope<UserView>),
        (status = 400, description = "INVALID_VERIFICATION_TOKEN: unknown, expired or used", body = ErrorEnvelope),
        Invalid, Busy,
    ))]
pub async fn verify_email(
    State(state): State<AppState>,
    client: ClientInfo,
    JsonBody(req): JsonBody<VerifyRequest>,
) -> Result<Response> {
    let user = state.flows.verify_email(&req.token, &client).await?;
    Ok(Envelope::ok(UserView::new(&user)).into_response())
}

/// Mail a new verification link (same answer for every address).
///
/// An unverified, active user gets a new link.
#[utoipa::path(post, path = "/verify-email/resend", tag = "verification",
    request_body = EmailRequest,
    responses(
        (status = 200, description = "Asked for (whatever the address)", body = Envelope<Message>),
        Invalid, RateLimited,
    ))]
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

/// Mail a new verification link (Fastpy's name for `/verify-email/resend`).
///
/// An unverified, active user gets a new link.
#[utoipa::path(post, path = "/send-verification", tag = "verification",
    request_body = EmailRequest,
    responses(
        (status = 200, description = "Asked for (whatever the address)", body = Envelope<Message>),
        Invalid, RateLimited,
    ))]
pub async fn send_verification(
    state: State<AppState>,
    client: ClientInfo,
    body: JsonBody<EmailRequest>,
) -> Result<Response> {
    resend_verification(state, client, body).await
}
