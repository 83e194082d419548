//! `POST /token`: the RFC 6749 password and refresh_token grants, answered
//! with RFC 6749 bodies instead of the envelope (SPEC §6).

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};

use super::AppState;
use super::body::{FORM, is_json, media_type, parse_form, parse_json, read_bytes};
use super::cookie::{CsrfCheck, set_refresh_cookie};
use super::device::{DeviceToken, set_device_cookie};
use super::openapi::answers::{Busy, RateLimited};
use super::response::{TokenPair, no_store};
use crate::domain::ClientInfo;
use crate::error::{Error, Result};
use crate::flows::{LoginOutcome, MfaChallenge};

/// The grant that logs in with `username` and `password`.
const PASSWORD: &str = "password";
/// The grant that rotates a `refresh_token`.
const REFRESH_TOKEN: &str = "refresh_token";
/// The grant that completes a login's second step (SPEC §10), with
/// `mfa_token` and `otp` or `recovery_code`.
pub const MFA_GRANT: &str = "urn:portcullis:params:oauth:grant-type:mfa";

/// The `error` of an RFC 6749 §5.2 answer.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OAuthErrorCode {
    /// A parameter is missing, or the body cannot be read.
    InvalidRequest,
    /// Wrong credentials, or an unusable refresh token.
    InvalidGrant,
    /// A grant other than `password`, `refresh_token` and the MFA grant.
    UnsupportedGrantType,
    /// The password was right; the second step is next (403, with `mfa_token`).
    MfaRequired,
}

/// An RFC 6749 §5.2 error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthError {
    error: OAuthErrorCode,
    /// What was wrong, for people.
    error_description: String,
    /// With `mfa_required` only: the token for the MFA grant.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    mfa_token: Option<String>,
}

/// A 400 RFC 6749 error answer.
fn oauth_error(error: OAuthErrorCode, description: &str) -> Response {
    let body = OAuthError {
        error,
        error_description: description.to_string(),
        mfa_token: None,
    };
    no_store((StatusCode::BAD_REQUEST, Json(body)).into_response())
}

/// The 403 `mfa_required` answer of the password grant for a user with a
/// second factor: no tokens, the `mfa_token` of the second step.
fn mfa_required(challenge: MfaChallenge) -> Response {
    let body = OAuthError {
        error: OAuthErrorCode::MfaRequired,
        error_description: format!(
            "A second factor is required: use grant_type={MFA_GRANT} with mfa_token and otp or recovery_code"
        ),
        mfa_token: Some(challenge.mfa_token),
    };
    no_store((StatusCode::FORBIDDEN, Json(body)).into_response())
}

/// The schema of `grant_type`: one of the supported grants.
fn grant_type() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some([PASSWORD, REFRESH_TOKEN, MFA_GRANT]))
        .description(Some(
            "`password` (with `username` and `password`), `refresh_token` (with \
             `refresh_token`) or `urn:portcullis:params:oauth:grant-type:mfa` (with \
             `mfa_token` and `otp` or `recovery_code`); another grant is `unsupported_grant_type`",
        ))
        .build()
}

/// A token request as a form (RFC 6749 §4.3 and §6).
#[derive(Debug, Deserialize, ToSchema)]
pub struct TokenForm {
    /// Required: without it the answer is `invalid_request`.
    #[schema(schema_with = grant_type, required = true)]
    grant_type: Option<String>,
    /// The e-mail address (password grant).
    #[schema(nullable = false)]
    username: Option<String>,
    /// The password (password grant).
    #[schema(nullable = false, format = Password)]
    password: Option<String>,
    /// The refresh token (refresh_token grant).
    #[schema(nullable = false)]
    refresh_token: Option<String>,
    /// The `mfa_token` of the password grant's 403 (MFA grant).
    #[schema(nullable = false)]
    mfa_token: Option<String>,
    /// A TOTP code (MFA grant).
    #[schema(nullable = false)]
    otp: Option<String>,
    /// A recovery code (MFA grant).
    #[schema(nullable = false)]
    recovery_code: Option<String>,
}

/// A token request as JSON, as FastEdgy sends it: without `grant_type`, it
/// is the password grant.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TokenJson {
    #[schema(schema_with = grant_type)]
    grant_type: Option<String>,
    /// The e-mail address (password grant).
    username: Option<String>,
    /// The password (password grant).
    #[schema(format = Password)]
    password: Option<String>,
    /// The refresh token (refresh_token grant).
    refresh_token: Option<String>,
    /// The `mfa_token` of the password grant's 403 (MFA grant).
    mfa_token: Option<String>,
    /// A TOTP code (MFA grant).
    otp: Option<String>,
    /// A recovery code (MFA grant).
    recovery_code: Option<String>,
}

impl From<TokenJson> for TokenForm {
    fn from(json: TokenJson) -> Self {
        Self {
            grant_type: Some(json.grant_type.unwrap_or_else(|| PASSWORD.into())),
            username: json.username,
            password: json.password,
            refresh_token: json.refresh_token,
            mfa_token: json.mfa_token,
            otp: json.otp,
            recovery_code: json.recovery_code,
        }
    }
}

/// RFC 6749 token endpoint (password, refresh_token and MFA grants).
///
/// Answers in RFC 6749 bodies, not the envelope: §5.1 on success, §5.2 on
/// errors of the request or the grant; 408, 413, 415, 429 and 503 keep the
/// envelope. For a user with a second factor the password grant answers 403
/// `mfa_required` with an `mfa_token`, which the grant
/// `urn:portcullis:params:oauth:grant-type:mfa` exchanges, with `otp` (a
/// TOTP code) or `recovery_code`, for the pair.
#[utoipa::path(post, path = "/token", tag = "auth",
    request_body(content(
        (TokenForm = "application/x-www-form-urlencoded"),
        (TokenJson = "application/json"),
    )),
    responses(
        (status = 200, description = "RFC 6749 §5.1: a new pair (a new session for the password grant)", body = TokenPair),
        (status = 400, description = "RFC 6749 §5.2: invalid_request (a missing parameter, or a body that cannot be read), invalid_grant or unsupported_grant_type", body = OAuthError),
        (status = 403, description = "mfa_required: the password was right and the user has a second factor; the body carries the mfa_token for the MFA grant", body = OAuthError),
        RateLimited, Busy,
    ))]
pub async fn token(
    State(state): State<AppState>,
    client: ClientInfo,
    DeviceToken(device): DeviceToken,
    _: CsrfCheck,
    req: Request,
) -> Result<Response> {
    let media = media_type(&req);
    let from_json = is_json(&media);
    if !from_json && media != FORM {
        return Err(Error::UnsupportedMediaType(
            "application/x-www-form-urlencoded",
        ));
    }
    let bytes = read_bytes(req, &()).await?;
    let parsed = if from_json {
        parse_json::<TokenJson>(&bytes).map(TokenForm::from)
    } else {
        parse_form::<TokenForm>(&bytes)
    };
    let Ok(params) = parsed else {
        return Ok(oauth_error(
            OAuthErrorCode::InvalidRequest,
            "The request body is malformed",
        ));
    };
    let Some(grant) = params.grant_type.as_deref() else {
        return Ok(oauth_error(
            OAuthErrorCode::InvalidRequest,
            "Missing grant_type",
        ));
    };
    let result = match grant {
        PASSWORD => {
            let (Some(username), Some(password)) = (&params.username, &params.password) else {
                return Ok(oauth_error(
                    OAuthErrorCode::InvalidRequest,
                    "Missing username or password",
                ));
            };
            let signed_in = state
                .flows
                .sign_in_from_device(username, password, &client, device.as_deref())
                .await;
            match signed_in {
                Ok(LoginOutcome::SignedIn(pair)) => Ok(pair),
                Ok(LoginOutcome::SecondFactorRequired(challenge)) => {
                    return Ok(mfa_required(challenge));
                }
                Err(e) => Err(e),
            }
        }
        MFA_GRANT => {
            let (Some(mfa_token), Some((method, code))) = (
                &params.mfa_token,
                params
                    .otp
                    .as_ref()
                    .map(|c| ("totp", c))
                    .or(params.recovery_code.as_ref().map(|c| ("recovery_code", c))),
            ) else {
                return Ok(oauth_error(
                    OAuthErrorCode::InvalidRequest,
                    "Missing mfa_token, or otp or recovery_code",
                ));
            };
            return Ok(
                match state
                    .flows
                    .verify_second_factor(mfa_token, method, code, &client)
                    .await
                {
                    Ok(passed) => set_refresh_cookie(
                        &state.config,
                        set_device_cookie(
                            &state.config,
                            no_store(Json(&passed).into_response()),
                            &passed.tokens,
                        ),
                        &passed.tokens,
                    ),
                    Err(
                        e @ (Error::Unavailable | Error::RateLimited { .. } | Error::Internal(_)),
                    ) => {
                        return Err(e);
                    }
                    Err(e) => oauth_error(OAuthErrorCode::InvalidGrant, &e.to_string()),
                },
            );
        }
        REFRESH_TOKEN => {
            let Some(refresh_token) = &params.refresh_token else {
                return Ok(oauth_error(
                    OAuthErrorCode::InvalidRequest,
                    "Missing refresh_token",
                ));
            };
            state.flows.refresh(refresh_token, &client).await
        }
        _ => {
            return Ok(oauth_error(
                OAuthErrorCode::UnsupportedGrantType,
                &format!("Supported grants: {PASSWORD}, {REFRESH_TOKEN}, {MFA_GRANT}"),
            ));
        }
    };
    match result {
        Ok(pair) => {
            let answer = no_store(Json(&pair).into_response());
            let answer = set_device_cookie(&state.config, answer, &pair);
            Ok(set_refresh_cookie(&state.config, answer, &pair))
        }
        Err(e @ (Error::Unavailable | Error::RateLimited { .. } | Error::Internal(_))) => Err(e),
        Err(e) => Ok(oauth_error(OAuthErrorCode::InvalidGrant, &e.to_string())),
    }
}
