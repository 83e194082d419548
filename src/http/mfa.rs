//! Handlers of the second factor (SPEC §10): the second step of a login
//! (`POST /mfa/verify`), and the owner's TOTP and recovery codes.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::AppState;
use super::body::JsonBody;
use super::cookie::{CsrfCheck, set_refresh_cookie};
use super::device::set_device_cookie;
use super::extract::AuthSession;
use super::openapi::answers::{
    Busy, Inactive, Invalid, PasswordCheckLimited, RateLimited, Unauthenticated,
};
use super::response::{Envelope, Message, no_store, rfc3339};
use crate::domain::ClientInfo;
use crate::error::{Error, ErrorEnvelope, Result};
use crate::flows::{PasskeyOptions, SecondStepPassed, TotpEnabled, TotpSetup};

/// `POST /mfa/verify` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct VerifyRequest {
    /// The `mfa_token` of the login's answer.
    mfa_token: String,
    /// `totp`, `recovery_code` or `passkey`.
    #[schema(schema_with = method)]
    method: String,
    /// With `totp` or `recovery_code`: the 6-digit TOTP code, or a recovery
    /// code (case, spaces and hyphens do not matter).
    code: Option<String>,
    /// With `passkey`: the `ceremony_id` of `/mfa/passkey/options`.
    ceremony_id: Option<String>,
    /// With `passkey`: the assertion as the browser's `credential.toJSON()`
    /// writes it (`id`, `rawId`, `type`, `response.clientDataJSON`,
    /// `response.authenticatorData`, `response.signature`, base64url).
    #[schema(value_type = Option<Object>)]
    credential: Option<Value>,
}

/// The schema of `method`.
fn method() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(["totp", "recovery_code", "passkey"]))
        .description(Some(
            "`totp` or `recovery_code` (with `code`), or `passkey` (with `ceremony_id` and `credential`)",
        ))
        .build()
}

/// Complete a login with its second factor.
///
/// After `/login`, `/login/json` (or `/token`) answered `mfa_required`, a
/// TOTP code or a recovery code (`code`), or a passkey (`ceremony_id` of
/// `/mfa/passkey/options` and `credential`), with the `mfa_token` opens the
/// session. The `mfa_token` is single-use, lives 300 s and dies after 5
/// wrong codes; a failed passkey counts as a wrong code.
#[utoipa::path(post, path = "/mfa/verify", tag = "second factor",
    request_body = VerifyRequest,
    responses(
        (status = 200, description = "Logged in: a new session (`aal2`; `amr` `[\"pwd\", \"hwk\"|\"swk\", \"mfa\"]` after a passkey); `recovery_codes_remaining` when a recovery code was used", body = Envelope<SecondStepPassed>),
        (status = 401, description = "INVALID_MFA_TOKEN (unknown, expired, spent or burnt) or INVALID_MFA_CODE (a wrong code, a used step, a spent recovery code; any failed passkey: its ceremony unknown, spent, expired or another's, an unknown or another account's credential, a wrong origin, no user verification, a bad signature, a counter that did not grow)", body = ErrorEnvelope),
        (status = 403, description = "INACTIVE_USER or EMAIL_NOT_VERIFIED", body = ErrorEnvelope),
        (status = 503, description = "PASSKEYS_UNAVAILABLE (`passkey` only), or SERVICE_UNAVAILABLE", body = ErrorEnvelope),
        Invalid, RateLimited,
    ))]
pub async fn verify(
    State(state): State<AppState>,
    client: ClientInfo,
    _: CsrfCheck,
    JsonBody(req): JsonBody<VerifyRequest>,
) -> Result<Response> {
    let passed = if req.method == "passkey" {
        let ceremony_id = req
            .ceremony_id
            .ok_or_else(|| Error::field("ceremony_id", "required with the passkey method"))?;
        let credential = req
            .credential
            .ok_or_else(|| Error::field("credential", "required with the passkey method"))?;
        state
            .flows
            .verify_second_factor_with_passkey(&req.mfa_token, &ceremony_id, credential, &client)
            .await?
    } else {
        let code = req
            .code
            .ok_or_else(|| Error::field("code", "required with this method"))?;
        state
            .flows
            .verify_second_factor(&req.mfa_token, &req.method, &code, &client)
            .await?
    };
    let answer = no_store(Envelope::ok(&passed).into_response());
    let answer = set_device_cookie(&state.config, answer, &passed.tokens);
    Ok(set_refresh_cookie(&state.config, answer, &passed.tokens))
}

/// `POST /mfa/passkey/options` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PasskeyOptionsRequest {
    /// The `mfa_token` of the login's answer.
    mfa_token: String,
}

/// Start passing the second step with a passkey.
///
/// When the login's `methods` list `passkey`: the options for
/// `navigator.credentials.get`, listing the user's passkeys (user
/// verification required). Finish within 300 s with `/mfa/verify`
/// (`"method": "passkey"`, `ceremony_id`, `credential`) and the same
/// `mfa_token`. Not counted under any limit, but refused while the second
/// step is throttled or locked.
#[utoipa::path(post, path = "/mfa/passkey/options", tag = "second factor",
    request_body = PasskeyOptionsRequest,
    responses(
        (status = 200, description = "The ceremony and its request options", body = Envelope<PasskeyOptions>),
        (status = 400, description = "PASSKEY_CEREMONY_INVALID: the user has no passkey (`methods` did not list `passkey`)", body = ErrorEnvelope),
        (status = 401, description = "INVALID_MFA_TOKEN (unknown, expired, spent or burnt), as `/mfa/verify` answers it", body = ErrorEnvelope),
        (status = 429, description = "RATE_LIMITED: the second step is throttled or locked (too many wrong codes), as `/mfa/verify` answers it", body = ErrorEnvelope),
        (status = 503, description = "PASSKEYS_UNAVAILABLE, or SERVICE_UNAVAILABLE", body = ErrorEnvelope),
        Invalid,
    ))]
pub async fn passkey_options(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<PasskeyOptionsRequest>,
) -> Result<Response> {
    let options = state
        .flows
        .passkey_second_step_options(&req.mfa_token)
        .await?;
    Ok(no_store(Envelope::ok(options).into_response()))
}

/// The TOTP part of `GET /mfa`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TotpView {
    /// Whether TOTP is on.
    enabled: bool,
    /// When it was turned on (RFC 3339), or `null`.
    created_at: Option<String>,
    /// When a code was last accepted (RFC 3339), or `null`.
    last_used_at: Option<String>,
}

/// The recovery-code part of `GET /mfa`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecoveryCodesView {
    /// Unspent recovery codes.
    remaining: i64,
}

/// `GET /mfa`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MfaView {
    /// The TOTP factor.
    totp: TotpView,
    /// The recovery codes.
    recovery_codes: RecoveryCodesView,
}

/// The caller's second factor.
#[utoipa::path(get, path = "/mfa", tag = "second factor",
    security(("OAuth2PasswordBearer" = []), ("BearerAuth" = [])),
    responses(
        (status = 200, description = "Whether TOTP is on, and how many recovery codes are left", body = Envelope<MfaView>),
        Unauthenticated, Busy,
    ))]
pub async fn status(State(state): State<AppState>, session: AuthSession) -> Result<Response> {
    let status = state.flows.mfa_status(&session).await?;
    Ok(Envelope::ok(MfaView {
        totp: TotpView {
            enabled: status.totp_enabled,
            created_at: status.totp_created_at.map(rfc3339),
            last_used_at: status.totp_last_used_at.map(rfc3339),
        },
        recovery_codes: RecoveryCodesView {
            remaining: status.recovery_codes_remaining,
        },
    })
    .into_response())
}

/// `POST /mfa/totp/setup` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SetupRequest {
    /// The account's password, again.
    #[schema(format = Password)]
    password: String,
}

/// Start turning TOTP on.
///
/// A new secret for an authenticator app (the `otpauth_uri` makes a QR
/// code), pending for 600 s until `/mfa/totp/confirm`.
#[utoipa::path(post, path = "/mfa/totp/setup", tag = "second factor",
    request_body = SetupRequest,
    security(("OAuth2PasswordBearer" = []), ("BearerAuth" = [])),
    responses(
        (status = 200, description = "The pending secret", body = Envelope<TotpSetup>),
        (status = 400, description = "INVALID_PASSWORD", body = ErrorEnvelope),
        (status = 409, description = "MFA_ALREADY_ENABLED", body = ErrorEnvelope),
        Unauthenticated, Inactive, Invalid, PasswordCheckLimited, Busy,
    ))]
pub async fn setup(
    State(state): State<AppState>,
    client: ClientInfo,
    session: AuthSession,
    JsonBody(req): JsonBody<SetupRequest>,
) -> Result<Response> {
    let setup = state
        .flows
        .begin_totp_setup(&session, &req.password, &client)
        .await?;
    Ok(no_store(Envelope::ok(setup).into_response()))
}

/// A body with one code.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CodeRequest {
    /// A 6-digit TOTP code (for `/mfa/totp/disable` also a recovery code).
    code: String,
}

/// Turn TOTP on with a code from the new secret.
///
/// Answers the ten recovery codes (shown once) and a new token pair: every
/// other session of the user, this one included, is revoked, and the owner
/// gets a mail.
#[utoipa::path(post, path = "/mfa/totp/confirm", tag = "second factor",
    request_body = CodeRequest,
    security(("OAuth2PasswordBearer" = []), ("BearerAuth" = [])),
    responses(
        (status = 200, description = "TOTP is on: the recovery codes and a new `aal2` session", body = Envelope<TotpEnabled>),
        (status = 400, description = "INVALID_MFA_CODE or MFA_SETUP_EXPIRED", body = ErrorEnvelope),
        (status = 409, description = "MFA_ALREADY_ENABLED", body = ErrorEnvelope),
        Unauthenticated, Inactive, Invalid, RateLimited, Busy,
    ))]
pub async fn confirm(
    State(state): State<AppState>,
    client: ClientInfo,
    _: CsrfCheck,
    session: AuthSession,
    JsonBody(req): JsonBody<CodeRequest>,
) -> Result<Response> {
    let enabled = state
        .flows
        .confirm_totp(&session, &req.code, &client)
        .await?;
    let answer = no_store(Envelope::ok(&enabled).into_response());
    Ok(set_refresh_cookie(&state.config, answer, &enabled.tokens))
}

/// Turn TOTP off with a TOTP code or a recovery code.
///
/// The recovery codes go too; every other session is revoked and the owner
/// gets a mail.
#[utoipa::path(post, path = "/mfa/totp/disable", tag = "second factor",
    request_body = CodeRequest,
    security(("OAuth2PasswordBearer" = []), ("BearerAuth" = [])),
    responses(
        (status = 200, description = "TOTP is off", body = Envelope<Message>),
        (status = 400, description = "INVALID_MFA_CODE", body = ErrorEnvelope),
        (status = 404, description = "MFA_NOT_ENABLED", body = ErrorEnvelope),
        Unauthenticated, Invalid, RateLimited, Busy,
    ))]
pub async fn disable(
    State(state): State<AppState>,
    client: ClientInfo,
    session: AuthSession,
    JsonBody(req): JsonBody<CodeRequest>,
) -> Result<Response> {
    state
        .flows
        .disable_totp(&session, &req.code, &client)
        .await?;
    Ok(Envelope::ok(Message {
        message: "Two-factor authentication disabled",
    })
    .into_response())
}

/// New recovery codes.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecoveryCodes {
    /// Ten single-use codes; the old ones are void.
    recovery_codes: Vec<String>,
}

/// Replace the recovery codes, for a TOTP code.
#[utoipa::path(post, path = "/mfa/recovery-codes", tag = "second factor",
    request_body = CodeRequest,
    security(("OAuth2PasswordBearer" = []), ("BearerAuth" = [])),
    responses(
        (status = 200, description = "A new set of ten; the old set is void", body = Envelope<RecoveryCodes>),
        (status = 400, description = "INVALID_MFA_CODE", body = ErrorEnvelope),
        (status = 404, description = "MFA_NOT_ENABLED", body = ErrorEnvelope),
        Unauthenticated, Invalid, RateLimited, Busy,
    ))]
pub async fn recovery_codes(
    State(state): State<AppState>,
    client: ClientInfo,
    session: AuthSession,
    JsonBody(req): JsonBody<CodeRequest>,
) -> Result<Response> {
    let codes = state
        .flows
        .regenerate_recovery_codes(&session, &req.code, &client)
        .await?;
    Ok(no_store(
        Envelope::ok(RecoveryCodes {
            recovery_codes: codes,
        })
        .into_response(),
    ))
}
