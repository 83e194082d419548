//! `POST /token`: the RFC 6749 password and refresh_token grants, answered
//! with RFC 6749 bodies instead of the envelope (SPEC §6).

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::body::{FORM, is_json, media_type, parse_form, parse_json, read_bytes};
use super::response::no_store;
use crate::domain::ClientInfo;
use crate::error::{Error, Result};

/// An RFC 6749 §5.2 error answer.
fn oauth_error(code: &'static str, description: &str) -> Response {
    let status = if code == "invalid_client" {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::BAD_REQUEST
    };
    no_store(
        (
            status,
            Json(json!({"error": code, "error_description": description})),
        )
            .into_response(),
    )
}

/// The parameters of a token request, from a form or a JSON body.
#[derive(Debug, Default, Deserialize)]
struct TokenParams {
    grant_type: Option<String>,
    username: Option<String>,
    password: Option<String>,
    refresh_token: Option<String>,
}

/// `POST /token`: RFC 6749 password and refresh_token grants with RFC bodies;
/// 413, 415, 429 and 503 keep the envelope.
pub async fn token(
    State(state): State<AppState>,
    client: ClientInfo,
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
        parse_json::<TokenParams>(&bytes)
    } else {
        parse_form::<TokenParams>(&bytes)
    };
    let Ok(params) = parsed else {
        return Ok(oauth_error(
            "invalid_request",
            "The request body is malformed",
        ));
    };
    let grant = match params.grant_type.as_deref() {
        Some(g) => g,
        None if from_json => "password",
        None => return Ok(oauth_error("invalid_request", "Missing grant_type")),
    };
    let result = match grant {
        "password" => {
            let (Some(username), Some(password)) = (&params.username, &params.password) else {
                return Ok(oauth_error(
                    "invalid_request",
                    "Missing username or password",
                ));
            };
            state.flows.login(username, password, &client).await
        }
        "refresh_token" => {
            let Some(refresh_token) = &params.refresh_token else {
                return Ok(oauth_error("invalid_request", "Missing refresh_token"));
            };
            state.flows.refresh(refresh_token, &client).await
        }
        _ => {
            return Ok(oauth_error(
                "unsupported_grant_type",
                "Supported grants: password, refresh_token",
            ));
        }
    };
    match result {
        Ok(pair) => Ok(no_store(Json(&pair).into_response())),
        Err(e @ (Error::Unavailable | Error::RateLimited { .. } | Error::Internal(_))) => Err(e),
        Err(e) => Ok(oauth_error("invalid_grant", &e.to_string())),
    }
}
