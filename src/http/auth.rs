//! The auth endpoints of SPEC §6, mounted under `AUTH_ROUTE_PREFIX`.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::AppState;
use super::account::send_verification;
use super::body::{
    FORM, FormBody, JsonBody, OptionalJsonBody, is_json, media_type, parse_form, parse_json,
    read_bytes,
};
use super::extract::{ActiveUser, AuthSession};
use super::response::{Envelope, Message, SessionView, TokenPair, UserView, no_store};
use crate::clock::now_unix;
use crate::domain::SecurityEvent;
use crate::domain::{DisplayName, EmailAddress};
use crate::error::{Error, FieldError, Result};
use crate::mail::already_registered_mail;
use crate::password::NewPassword;
use crate::random::random_id;
use crate::store::{ClientInfo, CreateUserError, NewUser, RefreshOutcome, User};
use crate::token::TokenType;

// ---- shared steps -----------------------------------------------------------

/// Collects field errors; `Err` if there were any.
fn check(errors: Vec<FieldError>) -> Result<()> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Validation(errors))
    }
}

/// Opens a session for `user` and signs its first token pair.
async fn open_session(state: &AppState, user: &User, client: &ClientInfo) -> Result<TokenPair> {
    let sid = random_id();
    let refresh = state
        .tokens
        .issue(TokenType::Refresh, user.id, &user.email, &sid)?;
    state
        .store
        .create_session(
            &sid,
            user.id,
            &refresh.claims.jti,
            refresh.claims.exp,
            client,
        )
        .await?;
    let access = state
        .tokens
        .issue(TokenType::Access, user.id, &user.email, &sid)?;
    Ok(TokenPair {
        access_token: access.token,
        refresh_token: refresh.token,
        token_type: "bearer",
        expires_in: state.tokens.access_ttl_secs(),
    })
}

/// Checks e-mail and password (the same work and answer for an unknown
/// e-mail as for a wrong password), then the account's state, upgrades an
/// outdated hash, and opens a session.
async fn login(
    state: &AppState,
    email: &str,
    password: &str,
    client: &ClientInfo,
) -> Result<TokenPair> {
    let record = match EmailAddress::parse(email, "email") {
        Ok(email) => state.store.user_by_email(email.as_str()).await?,
        Err(_) => None,
    };
    let stored = record.as_ref().map(|r| r.password_hash.as_str());
    let matched = state.passwords.verify(password, stored).await?;
    let known_id = record.as_ref().map(|r| r.user.id);
    let Some(record) = record.filter(|_| matched) else {
        metrics::counter!("portcullis_logins_total", "outcome" => "invalid_credentials")
            .increment(1);
        state
            .store
            .record_event(known_id, SecurityEvent::LoginFailed, client)
            .await?;
        return Err(Error::InvalidCredentials);
    };
    let user = record.user;
    if !user.is_active {
        metrics::counter!("portcullis_logins_total", "outcome" => "inactive").increment(1);
        return Err(Error::InactiveUser);
    }
    if state.config.require_email_verification && !user.is_verified {
        metrics::counter!("portcullis_logins_total", "outcome" => "unverified").increment(1);
        return Err(Error::EmailNotVerified);
    }
    if state.passwords.needs_rehash(&record.password_hash) {
        // The password is known good: re-hash it under the current policy.
        if let Ok(parsed) = NewPassword::parse(password, None, &relaxed_policy(state), "password") {
            let hash = state.passwords.hash(&parsed).await?;
            state.store.set_password_hash(user.id, &hash).await?;
        }
    }
    let pair = open_session(state, &user, client).await?;
    metrics::counter!("portcullis_logins_total", "outcome" => "success").increment(1);
    state
        .store
        .record_event(Some(user.id), SecurityEvent::LoginSucceeded, client)
        .await?;
    Ok(pair)
}

/// The hashing limits only (no strength rules): for re-hashing a password
/// that was accepted under an older policy.
fn relaxed_policy(state: &AppState) -> crate::config::PasswordConfig {
    let mut cfg = state.config.password.clone();
    cfg.min_length = 1;
    cfg
}

/// Exchanges a refresh token for a new pair (SPEC §5 rotation and reuse rules).
async fn refresh_pair(
    state: &AppState,
    refresh_token: &str,
    client: &ClientInfo,
) -> Result<TokenPair> {
    let claims = state.tokens.decode(refresh_token, TokenType::Refresh)?;
    let user_id = claims.user_id()?;
    let next = state
        .tokens
        .issue(TokenType::Refresh, user_id, "", &claims.sid)?;
    let outcome = state
        .store
        .rotate_refresh_token(
            &claims.sid,
            &claims.jti,
            &next.claims.jti,
            next.claims.exp,
            state.config.refresh_reuse_grace,
        )
        .await?;
    let user = match outcome {
        RefreshOutcome::Rotated(user) | RefreshOutcome::Grace(user) => user,
        RefreshOutcome::Reused { user_id } => {
            tracing::warn!(user_id, "refresh token reuse detected; session revoked");
            metrics::counter!("portcullis_refreshes_total", "outcome" => "reuse").increment(1);
            metrics::counter!("portcullis_revocations_total", "reason" => "refresh_reuse")
                .increment(1);
            state
                .store
                .record_event(Some(user_id), SecurityEvent::RefreshReuseDetected, client)
                .await?;
            return Err(Error::TokenRevoked);
        }
        RefreshOutcome::Revoked => return Err(Error::TokenRevoked),
        RefreshOutcome::Unknown => return Err(Error::InvalidToken),
    };
    if user.id != user_id {
        return Err(Error::InvalidToken);
    }
    if !user.is_active {
        return Err(Error::InactiveUser);
    }
    metrics::counter!("portcullis_refreshes_total", "outcome" => "success").increment(1);
    let access = state
        .tokens
        .issue(TokenType::Access, user.id, &user.email, &claims.sid)?;
    Ok(TokenPair {
        access_token: access.token,
        refresh_token: next.token,
        token_type: "bearer",
        expires_in: state.tokens.access_ttl_secs(),
    })
}

// ---- register ---------------------------------------------------------------

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

/// `POST /register`: 201 with the user and a token pair.
pub async fn register(
    State(state): State<AppState>,
    client: ClientInfo,
    JsonBody(req): JsonBody<RegisterRequest>,
) -> Result<Response> {
    let mut errors = Vec::new();
    let email = EmailAddress::parse(&req.email, "email")
        .map_err(|e| errors.push(e))
        .ok();
    let password = NewPassword::parse(
        &req.password,
        email.as_ref().map(EmailAddress::as_str),
        &state.config.password,
        "password",
    )
    .map_err(|e| errors.push(e))
    .ok();
    let name = DisplayName::parse(req.name.as_deref(), "name")
        .map_err(|e| errors.push(e))
        .ok();
    let extra = state
        .fields
        .extract(&req.rest, false)
        .map_err(|e| errors.extend(e))
        .ok();
    check(errors)?;
    let (Some(email), Some(password), Some(name), Some(extra)) = (email, password, name, extra)
    else {
        return Err(Error::internal(anyhow::anyhow!("validation left a gap")));
    };

    let new_user = |hash| NewUser {
        email: email.as_str(),
        name: name.as_deref(),
        password_hash: hash,
        is_active: true,
        is_verified: false,
        is_superuser: false,
        extra: &extra,
        created_at: None,
    };

    if state.config.require_email_verification {
        // Registration must reveal nothing: an existing address gets the same
        // answer after the same hashing work, and its owner gets a mail.
        let hash = state.passwords.hash(&password).await?;
        let candidate = new_user(&hash);
        let user = match state.store.create_user(&candidate).await {
            Ok(user) => {
                state
                    .store
                    .record_event(Some(user.id), SecurityEvent::UserCreated, &client)
                    .await?;
                send_verification(&state, &user).await?;
                user
            }
            Err(CreateUserError::EmailTaken) => {
                if let Some(owner) = state.store.user_by_email(email.as_str()).await? {
                    let mail = already_registered_mail(&state.config.app_url, &owner.user.email);
                    state.store.enqueue_mail(&mail).await?;
                    state.mailer.wake();
                }
                User {
                    id: 0,
                    email: email.as_str().to_string(),
                    name: name.as_deref().map(str::to_string),
                    is_active: true,
                    is_verified: false,
                    is_superuser: false,
                    created_at: now_unix(),
                    extra: extra.clone(),
                }
            }
            Err(CreateUserError::Other(e)) => return Err(e),
        };
        return Ok(
            Envelope::created(json!({ "user": UserView::without_id(&user) })).into_response(),
        );
    }

    if state.store.user_by_email(email.as_str()).await?.is_some() {
        return Err(Error::EmailAlreadyExists);
    }
    let hash = state.passwords.hash(&password).await?;
    let user = state.store.create_user(&new_user(&hash)).await?;
    state
        .store
        .record_event(Some(user.id), SecurityEvent::UserCreated, &client)
        .await?;
    send_verification(&state, &user).await?;
    let pair = open_session(&state, &user, &client).await?;
    Ok(no_store(
        Envelope::created(json!({
            "user": UserView::new(&user),
            "access_token": pair.access_token,
            "refresh_token": pair.refresh_token,
            "token_type": pair.token_type,
            "expires_in": pair.expires_in,
        }))
        .into_response(),
    ))
}

// ---- login ------------------------------------------------------------------

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
    let pair = login(&state, &form.username, &form.password, &client).await?;
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
    let pair = login(&state, &req.email, &req.password, &client).await?;
    Ok(no_store(Envelope::ok(pair).into_response()))
}

// ---- token (RFC 6749) -------------------------------------------------------

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
            login(&state, username, password, &client).await
        }
        "refresh_token" => {
            let Some(refresh_token) = &params.refresh_token else {
                return Ok(oauth_error("invalid_request", "Missing refresh_token"));
            };
            refresh_pair(&state, refresh_token, &client).await
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

// ---- refresh ----------------------------------------------------------------

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
    let pair = refresh_pair(&state, &req.refresh_token, &client).await?;
    Ok(no_store(Envelope::ok(pair).into_response()))
}

// ---- me ---------------------------------------------------------------------

/// `GET /me`: the current active user.
pub async fn me(ActiveUser(user): ActiveUser) -> Response {
    Envelope::ok(UserView::new(&user)).into_response()
}

/// `PATCH /me`: updates `name` and the application's own fields.
pub async fn update_me(
    State(state): State<AppState>,
    ActiveUser(user): ActiveUser,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> Result<Response> {
    let mut errors = Vec::new();
    let name = match body.get("name") {
        None => None,
        Some(Value::Null) => Some(DisplayName::parse(None, "name")),
        Some(Value::String(s)) => Some(DisplayName::parse(Some(s), "name")),
        Some(_) => Some(Err(FieldError::new("name", "Must be a string or null"))),
    }
    .transpose()
    .map_err(|e| errors.push(e))
    .ok()
    .flatten();
    for locked in [
        "email",
        "password",
        "is_active",
        "is_verified",
        "is_superuser",
        "id",
    ] {
        if body.contains_key(locked) {
            errors.push(FieldError::new(locked, "Cannot be changed here"));
        }
    }
    let extra = state
        .fields
        .extract(&body, true)
        .map_err(|e| errors.extend(e))
        .ok();
    check(errors)?;
    let updated = state
        .store
        .update_profile(
            user.id,
            name.as_ref().map(DisplayName::as_deref),
            extra.as_ref(),
        )
        .await?
        .ok_or(Error::TokenRevoked)?;
    Ok(Envelope::ok(UserView::new(&updated)).into_response())
}

// ---- change password --------------------------------------------------------

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
    let user = &session.user;
    if !user.is_active {
        return Err(Error::InactiveUser);
    }
    let new_password = NewPassword::parse(
        &req.new_password,
        Some(&user.email),
        &state.config.password,
        "new_password",
    )
    .map_err(|e| Error::Validation(vec![e]))?;
    let record = state
        .store
        .user_by_id(user.id)
        .await?
        .ok_or(Error::TokenRevoked)?;
    if !state
        .passwords
        .verify(&req.current_password, Some(&record.password_hash))
        .await?
    {
        return Err(Error::InvalidPassword);
    }
    let hash = state.passwords.hash(&new_password).await?;
    state
        .store
        .change_password(user.id, &hash, Some(&session.claims.sid))
        .await?;
    metrics::counter!("portcullis_revocations_total", "reason" => "password_changed").increment(1);
    state
        .store
        .record_event(Some(user.id), SecurityEvent::PasswordChanged, &client)
        .await?;
    Ok(Envelope::ok(Message {
        message: "Password changed successfully",
    })
    .into_response())
}

// ---- logout and sessions ----------------------------------------------------

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
    let user_id = session.user.id;
    if all {
        state.store.revoke_all_sessions(user_id).await?;
    } else {
        state
            .store
            .revoke_session(user_id, &session.claims.sid)
            .await?;
    }
    metrics::counter!("portcullis_revocations_total", "reason" => "logout").increment(1);
    state
        .store
        .record_event(Some(user_id), SecurityEvent::Logout, &client)
        .await?;
    Ok(Envelope::ok(Message {
        message: if all {
            "Logged out of all sessions"
        } else {
            "Logged out successfully"
        },
    })
    .into_response())
}

/// `GET /sessions`: the user's open sessions.
pub async fn list_sessions(
    State(state): State<AppState>,
    session: AuthSession,
) -> Result<Response> {
    let sessions = state.store.list_sessions(session.user.id).await?;
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
    let well_formed = id.len() == 22
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed || !state.store.revoke_session(session.user.id, &id).await? {
        return Err(Error::NotFound);
    }
    metrics::counter!("portcullis_revocations_total", "reason" => "session_deleted").increment(1);
    state
        .store
        .record_event(Some(session.user.id), SecurityEvent::Logout, &client)
        .await?;
    Ok(Envelope::ok(Message {
        message: "Session revoked",
    })
    .into_response())
}
