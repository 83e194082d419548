//! Handlers of passkeys (SPEC §11): registering and managing them
//! (`/passkeys…`, signed in) and signing in with one (`/login/passkey…`).
//! The WebAuthn JSON (options, credentials) passes through as WebAuthn
//! Level 3 writes it: see [`crate::flows::PasskeyOptions`].

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::AppState;
use super::body::JsonBody;
use super::cookie::{CsrfCheck, set_refresh_cookie};
use super::device::set_device_cookie;
use super::extract::AuthSession;
use super::openapi::answers::{Busy, Inactive, Invalid, RateLimited, Unauthenticated};
use super::response::{Envelope, Message, TokenPair, no_store, rfc3339};
use crate::domain::ClientInfo;
use crate::error::{Error, ErrorEnvelope, Result};
use crate::flows::{PasskeyInfo, PasskeyOptions};

/// A passkey as `GET /passkeys` lists it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PasskeyView {
    /// Opaque id, for `PATCH` and `DELETE /passkeys/{id}`.
    id: String,
    /// Its name (1–64 characters).
    name: String,
    /// When it was registered (RFC 3339).
    created_at: String,
    /// When it last signed in (RFC 3339), `null` until first use.
    last_used_at: Option<String>,
    /// Whether the authenticator said it is backed up (synced), when last seen.
    backed_up: bool,
}

impl From<PasskeyInfo> for PasskeyView {
    fn from(info: PasskeyInfo) -> Self {
        Self {
            id: info.id,
            name: info.name,
            created_at: rfc3339(info.created_at),
            last_used_at: info.last_used_at.map(rfc3339),
            backed_up: info.backed_up,
        }
    }
}

/// A body with the account's password, again.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PasswordProof {
    /// The account's current password.
    #[schema(format = Password)]
    password: String,
}

/// `POST /passkeys/register` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterPasskey {
    /// The `ceremony_id` of `/passkeys/register/options`.
    ceremony_id: String,
    /// The new credential as the browser's `credential.toJSON()` writes it
    /// (`id`, `rawId`, `type`, `response.clientDataJSON`,
    /// `response.attestationObject`, …, base64url).
    #[schema(value_type = Object)]
    credential: Value,
    /// A name for it (1–64 characters; `Passkey` when absent).
    name: Option<String>,
}

/// `PATCH /passkeys/{id}` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RenamePasskey {
    /// The new name (1–64 characters).
    name: String,
}

/// `POST /login/passkey/options` body.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct SignInOptionsRequest {
    /// The account's e-mail, to list its passkeys; absent for any
    /// discoverable passkey (autofill).
    email: Option<String>,
}

/// `POST /login/passkey` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PasskeySignIn {
    /// The `ceremony_id` of `/login/passkey/options`.
    ceremony_id: String,
    /// The assertion as the browser's `credential.toJSON()` writes it
    /// (`id`, `rawId`, `type`, `response.clientDataJSON`,
    /// `response.authenticatorData`, `response.signature`,
    /// `response.userHandle`, base64url).
    #[schema(value_type = Object)]
    credential: Value,
}

/// Start registering a passkey.
///
/// With the password as fresh proof: the options for
/// `navigator.credentials.create` (a discoverable credential, user
/// verification required, the user's passkeys excluded). Finish within
/// 300 s with `/passkeys/register`.
#[utoipa::path(post, path = "/passkeys/register/options", tag = "passkeys",
    request_body = PasswordProof,
    security(("OAuth2PasswordBearer" = []), ("BearerAuth" = [])),
    responses(
        (status = 200, description = "The ceremony and its creation options", body = Envelope<PasskeyOptions>),
        (status = 400, description = "INVALID_PASSWORD", body = ErrorEnvelope),
        (status = 409, description = "PASSKEY_LIMIT_REACHED", body = ErrorEnvelope),
        (status = 429, description = "RATE_LIMITED: too many current-password checks (RATE_LIMIT_PASSWORD_CHECK)", body = ErrorEnvelope),
        (status = 503, description = "PASSKEYS_UNAVAILABLE (no relying party: an IP address as APP_URL's host), or SERVICE_UNAVAILABLE", body = ErrorEnvelope),
        Unauthenticated, Inactive, Invalid,
    ))]
pub async fn passkey_register_options(
    State(state): State<AppState>,
    session: AuthSession,
    client: ClientInfo,
    JsonBody(req): JsonBody<PasswordProof>,
) -> Result<Response> {
    let options = state
        .flows
        .passkey_registration_options(&session, &req.password, &client)
        .await?;
    Ok(no_store(Envelope::ok(options).into_response()))
}

/// Finish registering a passkey.
#[utoipa::path(post, path = "/passkeys/register", tag = "passkeys",
    request_body = RegisterPasskey,
    security(("OAuth2PasswordBearer" = []), ("BearerAuth" = [])),
    responses(
        (status = 201, description = "The new passkey; the owner is mailed", body = Envelope<PasskeyView>),
        (status = 400, description = "INVALID_PASSKEY (origin, RP id, challenge, no user verification) or PASSKEY_CEREMONY_INVALID (unknown, expired, spent, another user's or purpose)", body = ErrorEnvelope),
        (status = 409, description = "PASSKEY_ALREADY_REGISTERED or PASSKEY_LIMIT_REACHED", body = ErrorEnvelope),
        (status = 503, description = "PASSKEYS_UNAVAILABLE, or SERVICE_UNAVAILABLE", body = ErrorEnvelope),
        Unauthenticated, Invalid,
    ))]
pub async fn passkey_register(
    State(state): State<AppState>,
    client: ClientInfo,
    session: AuthSession,
    JsonBody(req): JsonBody<RegisterPasskey>,
) -> Result<Response> {
    let info = state
        .flows
        .finish_passkey_registration(
            &session,
            &req.ceremony_id,
            req.credential,
            req.name.as_deref(),
            &client,
        )
        .await?;
    Ok(Envelope::created(PasskeyView::from(info)).into_response())
}

/// The caller's passkeys.
#[utoipa::path(get, path = "/passkeys", tag = "passkeys",
    security(("OAuth2PasswordBearer" = []), ("BearerAuth" = [])),
    responses(
        (status = 200, description = "The passkeys, oldest first", body = Envelope<Vec<PasskeyView>>),
        Unauthenticated, Busy,
    ))]
pub async fn list_passkeys(
    State(state): State<AppState>,
    session: AuthSession,
) -> Result<Response> {
    let passkeys = state.flows.list_passkeys(&session).await?;
    let views: Vec<PasskeyView> = passkeys.into_iter().map(PasskeyView::from).collect();
    Ok(Envelope::ok(views).into_response())
}

/// Rename one of the caller's passkeys.
#[utoipa::path(patch, path = "/passkeys/{id}", tag = "passkeys",
    params(("id" = String, Path, description = "A passkey id from `GET /passkeys`")),
    request_body = RenamePasskey,
    security(("OAuth2PasswordBearer" = []), ("BearerAuth" = [])),
    responses(
        (status = 200, description = "The passkey", body = Envelope<PasskeyView>),
        (status = 404, description = "NOT_FOUND: another user's, an unknown or a malformed id", body = ErrorEnvelope),
        Unauthenticated, Invalid, Busy,
    ))]
pub async fn rename_passkey(
    State(state): State<AppState>,
    session: AuthSession,
    id: Result<Path<String>, PathRejection>,
    JsonBody(req): JsonBody<RenamePasskey>,
) -> Result<Response> {
    let Ok(Path(id)) = id else {
        return Err(Error::NotFound);
    };
    let info = state.flows.rename_passkey(&session, &id, &req.name).await?;
    Ok(Envelope::ok(PasskeyView::from(info)).into_response())
}

/// Remove one of the caller's passkeys, with the password.
#[utoipa::path(delete, path = "/passkeys/{id}", tag = "passkeys",
    params(("id" = String, Path, description = "A passkey id from `GET /passkeys`")),
    request_body = PasswordProof,
    security(("OAuth2PasswordBearer" = []), ("BearerAuth" = [])),
    responses(
        (status = 200, description = "Removed; the owner is mailed", body = Envelope<Message>),
        (status = 400, description = "INVALID_PASSWORD", body = ErrorEnvelope),
        (status = 404, description = "NOT_FOUND: another user's, an unknown or a malformed id", body = ErrorEnvelope),
        Unauthenticated, Invalid, Busy,
    ))]
pub async fn remove_passkey(
    State(state): State<AppState>,
    client: ClientInfo,
    session: AuthSession,
    id: Result<Path<String>, PathRejection>,
    JsonBody(req): JsonBody<PasswordProof>,
) -> Result<Response> {
    let Ok(Path(id)) = id else {
        return Err(Error::NotFound);
    };
    state
        .flows
        .remove_passkey(&session, &id, &req.password, &client)
        .await?;
    Ok(Envelope::ok(Message {
        message: "Passkey removed",
    })
    .into_response())
}

/// Start signing in with a passkey.
///
/// The options for `navigator.credentials.get`. With `email`, they list
/// that account's passkeys (an unknown address gets options of the same
/// shape); without, any discoverable passkey may answer (autofill, with
/// `mediation: "conditional"`). Finish within 300 s with `/login/passkey`.
#[utoipa::path(post, path = "/login/passkey/options", tag = "passkeys",
    request_body = SignInOptionsRequest,
    responses(
        (status = 200, description = "The ceremony and its request options", body = Envelope<PasskeyOptions>),
        (status = 503, description = "PASSKEYS_UNAVAILABLE, or SERVICE_UNAVAILABLE", body = ErrorEnvelope),
        Invalid,
    ))]
pub async fn passkey_sign_in_options(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<SignInOptionsRequest>,
) -> Result<Response> {
    let options = state
        .flows
        .passkey_sign_in_options(req.email.as_deref())
        .await?;
    Ok(no_store(Envelope::ok(options).into_response()))
}

/// Sign in with a passkey.
///
/// The token pair, as `/login/json` answers it; `amr` `["hwk"|"swk",
/// "user", "mfa"]` and `aal` `aal2`: no second step follows.
#[utoipa::path(post, path = "/login/passkey", tag = "passkeys",
    request_body = PasskeySignIn,
    responses(
        (status = 200, description = "Logged in: a new session", body = Envelope<TokenPair>),
        (status = 400, description = "PASSKEY_CEREMONY_INVALID (unknown, expired, spent, or of another purpose)", body = ErrorEnvelope),
        (status = 401, description = "INVALID_PASSKEY: an unknown credential, a wrong origin or RP id, a bad signature, no user verification, a signature counter that did not grow", body = ErrorEnvelope),
        (status = 403, description = "INACTIVE_USER or EMAIL_NOT_VERIFIED", body = ErrorEnvelope),
        (status = 503, description = "PASSKEYS_UNAVAILABLE, or SERVICE_UNAVAILABLE", body = ErrorEnvelope),
        Invalid, RateLimited,
    ))]
pub async fn passkey_sign_in(
    State(state): State<AppState>,
    client: ClientInfo,
    _: CsrfCheck,
    JsonBody(req): JsonBody<PasskeySignIn>,
) -> Result<Response> {
    let pair = state
        .flows
        .sign_in_with_passkey(&req.ceremony_id, req.credential, &client)
        .await?;
    let answer = no_store(Envelope::ok(&pair).into_response());
    let answer = set_device_cookie(&state.config, answer, &pair);
    Ok(set_refresh_cookie(&state.config, answer, &pair))
}
