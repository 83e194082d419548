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
use super::openapi::answers::{Busy, RateLimited};
use super::response::{TokenPair, no_store};
use crate::domain::ClientInfo;
use crate::error::{Error, Result};

/// The grant that logs in with `username` and `password`.
const PASSWORD: &str = "password";
/// The grant that rotates a `refresh_token`.
const REFRESH_TOKEN: &str = "refresh_token";

/// The `error` of an RFC 6749 §5.2 answer.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OAuthErrorCode {
    /// A parameter is missing, or the body cannot be read.
    InvalidRequest,
    /// Wrong credentials, or an unusable refresh token.
    InvalidGrant,
    /// A grant other than `password` and `refresh_token`.
    UnsupportedGrantType,
}

/// An RFC 6749 §5.2 error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthError {
    error: OAuthErrorCode,
    /// What was wrong, for people.
    error_description: String,
}

/// A 400 RFC 6749 error answer.
fn oauth_error(error: OAuthErrorCode, description: &str) -> Response {
    let body = OAuthError {
        error,
        error_description: description.to_string(),
    };
    no_store((StatusCode::BAD_REQUEST, Json(body)).into_response())
}

/// The schema of `grant_type`: one of the supported grants.
fn grant_type() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some([PASSWORD, REFRESH_TOKEN]))
        .description(Some(
            "`password` (with `username` and `password`) or `refresh_token` (with \
             `refresh_token`); another grant is `unsupported_grant_type`",
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
}

impl From<TokenJson> for TokenForm {
    fn from(json: TokenJson) -> Self {
        Self {
            grant_type: Some(json.grant_type.unwrap_or_else(|| PASSWORD.into())),
            username: json.username,
            password: json.password,
            refresh_token: json.refresh_token,
        }
    }
}

/// RFC 6749 token endpoint (password and refresh_token grants).
///
/// Answers in RFC 6749 bodies, not the envelope: §5.1 on success, §5.2 on
/// errors of the request or the grant; 408, 413, 415, 429 and 503 keep the
/// envelope.
#[utoipa::path(post, path = "/token", tag = "auth",
    request_body(content(
        (TokenForm = "application/x-www-form-urlencoded"),
        (TokenJson = "application/json"),
    )),
    responses(
        (status = 200, description = "RFC 6749 §5.1: a new pair (a new session for the password grant)", body = TokenPair),
        (status = 400, description = "RFC 6749 §5.2: invalid_request (a missing parameter, or a body that cannot be read), invalid_grant or unsupported_grant_type", body = OAuthError),
        RateLimited, Busy,
    ))]
pub async fn token(
    State(state): State<AppState>,
    client: ClientInfo,
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
            state.flows.login(username, password, &client).await
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
                &format!("Supported grants: {PASSWORD}, {REFRESH_TOKEN}"),
            ));
        }
    };
    match result {
        Ok(pair) => Ok(set_refresh_cookie(
            &state.config,
            no_store(Json(&pair).into_response()),
            &pair,
        )),
        Err(e @ (Error::Unavailable | Error::RateLimited { .. } | Error::Internal(_))) => Err(e),
        Err(e) => Ok(oauth_error(OAuthErrorCode::InvalidGrant, &e.to_string())),
    }
}
