//! Handlers for registering, logging in, refreshing and logging out (SPEC §6).

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::AppState;
use super::body::{FormBody, JsonBody, OptionalJsonBody};
use super::extract::AuthSession;
use super::response::{Envelope, Message, UserView, no_store};
use crate::domain::ClientInfo;
use crate::error::Result;
use crate::flows::{Registered, Registration};

/// `POST /register` body: e-mail, password, optional name, and the
/// application's own fields.
#[derive(Debug, Deserialize)]
pub struct RegisterRequest {
    email: String,
    password: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

/// `POST /register`: 201 with the user and a token pair, or (verification
/// required) 201 with the user only, whether or not the address was new.
pub async fn register(
    State(state): State<AppState>,
    client: ClientInfo,
    JsonBody(req): JsonBody<RegisterRequest>,
) -> Result<Response> {
    let input = Registration {
        email: req.email,
        password: req.password,
        name: req.name,
        fields: req.rest,
    };
    Ok(match state.flows.register(input, &client).await? {
        Registered::SignedIn { user, tokens } => no_store(
            Envelope::created(json!({
                "user": UserView::new(&user),
                "access_token": tokens.access_token,
                "refresh_token": tokens.refresh_token,
                "token_type": tokens.token_type,
                "expires_in": tokens.expires_in,
            }))
            .into_response(),
        ),
        Registered::AwaitingVerification { user } => {
            Envelope::created(json!({ "user": UserView::without_id(&user) })).into_response()
        }
    })
}

/// `POST /login` form (OAuth2 password flow); `grant_type`, `scope` and
/// `client_id` are accepted and ignored.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
}

/// `POST /login`: the pair in the envelope, plus `access_token` and
/// `token_type` at the top level for OAuth2 clients such as Swagger UI.
pub async fn login_form(
    State(state): State<AppState>,
    client: ClientInfo,
    FormBody(form): FormBody<LoginForm>,
) -> Result<Response> {
    let pair = state
        .flows
        .login(&form.username, &form.password, &client)
        .await?;
    let body = json!({
        "success": true,
        "data": &pair,
        "access_token": &pair.access_token,
        "token_type": pair.token_type,
    });
    Ok(no_store(Json(body).into_response()))
}

/// `POST /login/json` body.
#[derive(Debug, Deserialize)]
pub struct LoginJson {
    email: String,
    password: String,
}

/// `POST /login/json`: the pair in the envelope.
pub async fn login_json(
    State(state): State<AppState>,
    client: ClientInfo,
    JsonBody(req): JsonBody<LoginJson>,
) -> Result<Response> {
    let pair = state
        .flows
        .login(&req.email, &req.password, &client)
        .await?;
    Ok(no_store(Envelope::ok(pair).into_response()))
}

/// `POST /refresh` body.
#[derive(Debug, Deserialize)]
pub struct RefreshRequest {
    refresh_token: String,
}

/// `POST /refresh`: rotates the refresh token and returns a new pair.
pub async fn refresh(
    State(state): State<AppState>,
    client: ClientInfo,
    JsonBody(req): JsonBody<RefreshRequest>,
) -> Result<Response> {
    let pair = state.flows.refresh(&req.refresh_token, &client).await?;
    Ok(no_store(Envelope::ok(pair).into_response()))
}

/// `POST /logout` body (optional).
#[derive(Debug, Default, Deserialize)]
pub struct LogoutRequest {
    #[serde(default)]
    all: bool,
}

/// `POST /logout`: revokes this session, or all of the user's with `{"all": true}`.
pub async fn logout(
    State(state): State<AppState>,
    client: ClientInfo,
    session: AuthSession,
    OptionalJsonBody(req): OptionalJsonBody<LogoutRequest>,
) -> Result<Response> {
    let all = req.unwrap_or_default().all;
    state.flows.logout(&session, all, &client).await?;
    Ok(Envelope::ok(Message {
        message: if all {
            "Logged out of all sessions"
        } else {
            "Logged out successfully"
        },
    })
    .into_response())
}
