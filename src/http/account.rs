//! The flows that go through a mailbox (SPEC §6): e-mail verification,
//! forgotten and reset passwords. The JSON endpoints live here; the HTML
//! pages behind the e-mailed links ([`super::pages`]) share the same steps.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::body::JsonBody;
use super::response::{Envelope, Message, UserView};
use crate::clock::now_unix;
use crate::domain::EmailAddress;
use crate::domain::SecurityEvent;
use crate::error::{Error, Result};
use crate::mail::{reset_mail, verification_mail};
use crate::password::NewPassword;
use crate::store::{ClientInfo, TokenPurpose, User};

/// Longest token accepted from a client before it is even looked up.
const MAX_TOKEN_LEN: usize = 256;

/// Issues a one-time token of `purpose` for `user` (a new reset token voids
/// older ones) and queues the mail that carries its link.
async fn send_link(state: &AppState, user: &User, purpose: TokenPurpose) -> Result<()> {
    let token = crate::random::one_time_token();
    let config = &state.config;
    let (ttl, mail) = match purpose {
        TokenPurpose::Verify => {
            let ttl = config.verify_token_ttl;
            let hours = ttl.as_secs() / 3600;
            (
                ttl,
                verification_mail(&config.app_url, &user.email, &token, hours),
            )
        }
        TokenPurpose::Reset => {
            let ttl = config.reset_token_ttl;
            let minutes = ttl.as_secs() / 60;
            (
                ttl,
                reset_mail(&config.app_url, &user.email, &token, minutes),
            )
        }
    };
    let expires_at = now_unix() + ttl.as_secs() as i64;
    state
        .store
        .issue_one_time_token(user.id, purpose, &token, expires_at, &mail)
        .await?;
    state.mailer.wake();
    Ok(())
}

/// Issues a verification token for `user` and queues the mail carrying it.
pub(crate) async fn send_verification(state: &AppState, user: &User) -> Result<()> {
    send_link(state, user, TokenPurpose::Verify).await
}

/// Runs `job` after the response is sent, so that the answer and its timing
/// are the same whether or not the address is registered.
fn in_background<F>(what: &'static str, job: F)
where
    F: std::future::Future<Output = Result<()>> + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = job.await {
            tracing::warn!(error = %e, "{what} failed");
        }
    });
}

/// Checks the reset token and the new password, then resets: the token is
/// spent, every session revoked, the e-mail marked verified.
pub(crate) async fn complete_reset(
    state: &AppState,
    token: &str,
    new_password: &str,
    client: &ClientInfo,
) -> Result<()> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(Error::InvalidResetToken);
    }
    let user_id = state
        .store
        .peek_one_time_token(token, TokenPurpose::Reset)
        .await?
        .ok_or(Error::InvalidResetToken)?;
    let record = state
        .store
        .user_by_id(user_id)
        .await?
        .ok_or(Error::InvalidResetToken)?;
    let password = NewPassword::parse(
        new_password,
        Some(&record.user.email),
        &state.config.password,
        "new_password",
    )
    .map_err(|e| Error::Validation(vec![e]))?;
    let hash = state.passwords.hash(&password).await?;
    if !state.store.reset_password(token, user_id, &hash).await? {
        return Err(Error::InvalidResetToken);
    }
    metrics::counter!("portcullis_revocations_total", "reason" => "password_reset").increment(1);
    state
        .store
        .record_event(Some(user_id), SecurityEvent::PasswordReset, client)
        .await?;
    Ok(())
}

/// Spends a verification token; the now verified user.
pub(crate) async fn complete_verification(
    state: &AppState,
    token: &str,
    client: &ClientInfo,
) -> Result<User> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(Error::InvalidVerificationToken);
    }
    let user_id = state
        .store
        .consume_verification_token(token)
        .await?
        .ok_or(Error::InvalidVerificationToken)?;
    state
        .store
        .record_event(Some(user_id), SecurityEvent::EmailVerified, client)
        .await?;
    let record = state
        .store
        .user_by_id(user_id)
        .await?
        .ok_or(Error::InvalidVerificationToken)?;
    Ok(record.user)
}

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
    let email = EmailAddress::parse(&req.email, "email").map_err(|e| Error::Validation(vec![e]))?;
    let job_state = state.clone();
    in_background("password reset request", async move {
        let Some(record) = job_state.store.user_by_email(email.as_str()).await? else {
            return Ok(());
        };
        if !record.user.is_active {
            return Ok(());
        }
        send_link(&job_state, &record.user, TokenPurpose::Reset).await?;
        job_state
            .store
            .record_event(
                Some(record.user.id),
                SecurityEvent::PasswordResetRequested,
                &client,
            )
            .await
    });
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
    complete_reset(&state, &req.token, &req.new_password, &client).await?;
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
    let user = complete_verification(&state, &req.token, &client).await?;
    Ok(Envelope::ok(UserView::new(&user)).into_response())
}

/// `POST /verify-email/resend` (alias `/send-verification`): the same answer
/// whatever the address; an unverified, active user gets a new link.
pub async fn resend_verification(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<EmailRequest>,
) -> Result<Response> {
    let email = EmailAddress::parse(&req.email, "email").map_err(|e| Error::Validation(vec![e]))?;
    let job_state = state.clone();
    in_background("verification resend", async move {
        match job_state.store.user_by_email(email.as_str()).await? {
            Some(record) if record.user.is_active && !record.user.is_verified => {
                send_verification(&job_state, &record.user).await
            }
            _ => Ok(()),
        }
    });
    Ok(Envelope::ok(Message {
        message: "If that address needs verification, a new link has been sent to it",
    })
    .into_response())
}
