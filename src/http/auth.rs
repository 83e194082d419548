//! Handlers for registering, logging in, refreshing and logging out (SPEC §6).

use axum::Json;
use axum::extract::{FromRequest, Request, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::AppState;
use super::body::{FormBody, JsonBody, OptionalJsonBody};
use super::cookie::{self, CsrfCheck, clear_refresh_cookie, set_refresh_cookie};
use super::device::{DeviceToken, set_device_cookie};
use super::extract::AuthSession;
use super::openapi::answers::{Busy, Invalid, RateLimited, Unauthenticated};
use super::openapi::schemas::{display_name, email_address, new_password};
use super::response::{Envelope, FormLoginAnswer, Message, RegisteredView, TokenPair, no_store};
use crate::domain::ClientInfo;
use crate::error::{Error, ErrorEnvelope, Result};
use crate::flows::{LoginOutcome, MfaChallenge, Registered, Registration};

/// `POST /register` body: e-mail, password, optional name, and the
/// application's own fields beside them.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterRequest {
    #[schema(schema_with = email_address)]
    email: String,
    #[schema(schema_with = new_password)]
    password: String,
    #[serde(default)]
    #[schema(schema_with = display_name)]
    name: Option<String>,
    #[serde(flatten)]
    #[schema(ignore)]
    rest: Map<String, Value>,
}

/// Create an account.
///
/// 201 with the user and a token pair; while e-mail verification is
/// required, 201 with the user only (without its id), whether or not the
/// address was new. The application's own user fields go beside the others.
#[utoipa::path(post, path = "/register", tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "The account, signed in (or awaiting verification)", body = Envelope<RegisteredView>),
        (status = 403, description = "REGISTRATION_DISABLED: `REGISTRATION_ENABLED=false` and the caller is not a superuser (whose bearer token still registers)", body = ErrorEnvelope),
        (status = 409, description = "EMAIL_ALREADY_EXISTS (never while verification is required)", body = ErrorEnvelope),
        Invalid, RateLimited, Busy,
    ))]
pub async fn register(
    State(state): State<AppState>,
    client: ClientInfo,
    _: CsrfCheck,
    headers: axum::http::HeaderMap,
    JsonBody(req): JsonBody<RegisterRequest>,
) -> Result<Response> {
    let input = Registration {
        email: req.email,
        password: req.password,
        name: req.name,
        fields: req.rest,
        actor_token: super::extract::bearer_in(&headers).map(str::to_string),
    };
    Ok(match state.flows.register(input, &client).await? {
        Registered::SignedIn { user, tokens } => set_refresh_cookie(
            &state.config,
            no_store(Envelope::created(RegisteredView::signed_in(&user, &tokens)).into_response()),
            &tokens,
        ),
        Registered::AwaitingVerification { user } => {
            Envelope::created(RegisteredView::awaiting_verification(&user)).into_response()
        }
    })
}

/// `POST /login` form (OAuth2 password flow). `grant_type`, `scope` and
/// `client_id` may be sent too: they are accepted and ignored.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginForm {
    /// The e-mail address.
    username: String,
    #[schema(format = Password)]
    password: String,
}

/// Log in with an OAuth2 password form (Swagger UI's Authorize).
///
/// The token pair in the envelope, and `access_token` and `token_type` also
/// at the top level, where OAuth2 password-flow clients look.
#[utoipa::path(post, path = "/login", tag = "auth",
    request_body(content = LoginForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Logged in: a new session; or, for a user with a second factor, no session but the second step to pass (`mfa_required`, `mfa_token`: see `/mfa/verify`)", body = LoginFormAnswer),
        (status = 401, description = "INVALID_CREDENTIALS: wrong e-mail or password", body = ErrorEnvelope),
        (status = 403, description = "INACTIVE_USER or EMAIL_NOT_VERIFIED", body = ErrorEnvelope),
        Invalid, RateLimited, Busy,
    ))]
pub async fn login_form(
    State(state): State<AppState>,
    client: ClientInfo,
    DeviceToken(device): DeviceToken,
    _: CsrfCheck,
    FormBody(form): FormBody<LoginForm>,
) -> Result<Response> {
    let outcome = state
        .flows
        .sign_in_from_device(&form.username, &form.password, &client, device.as_deref())
        .await?;
    Ok(match outcome {
        LoginOutcome::SignedIn(pair) => {
            let answer = no_store(Json(FormLoginAnswer::new(pair.clone())).into_response());
            let answer = set_device_cookie(&state.config, answer, &pair);
            set_refresh_cookie(&state.config, answer, &pair)
        }
        LoginOutcome::SecondFactorRequired(challenge) => {
            no_store(Envelope::ok(challenge).into_response())
        }
    })
}

/// `POST /login/json` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginJson {
    /// The e-mail address.
    email: String,
    #[schema(format = Password)]
    password: String,
}

/// Log in with a JSON body.
///
/// The token pair in the envelope.
#[utoipa::path(post, path = "/login/json", tag = "auth",
    request_body = LoginJson,
    responses(
        (status = 200, description = "Logged in: a new session (a token pair); or, for a user with a second factor, no session but the second step to pass (`mfa_required`, `mfa_token`: see `/mfa/verify`)", body = Envelope<LoginJsonAnswer>),
        (status = 401, description = "INVALID_CREDENTIALS: wrong e-mail or password", body = ErrorEnvelope),
        (status = 403, description = "INACTIVE_USER or EMAIL_NOT_VERIFIED", body = ErrorEnvelope),
        Invalid, RateLimited, Busy,
    ))]
pub async fn login_json(
    State(state): State<AppState>,
    client: ClientInfo,
    DeviceToken(device): DeviceToken,
    _: CsrfCheck,
    JsonBody(req): JsonBody<LoginJson>,
) -> Result<Response> {
    let outcome = state
        .flows
        .sign_in_from_device(&req.email, &req.password, &client, device.as_deref())
        .await?;
    Ok(match outcome {
        LoginOutcome::SignedIn(pair) => {
            let answer = no_store(Envelope::ok(&pair).into_response());
            let answer = set_device_cookie(&state.config, answer, &pair);
            set_refresh_cookie(&state.config, answer, &pair)
        }
        LoginOutcome::SecondFactorRequired(challenge) => {
            no_store(Envelope::ok(challenge).into_response())
        }
    })
}

/// The `data` of a `/login/json` answer: a token pair, or the second step
/// to pass.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum LoginJsonAnswer {
    /// Logged in.
    Tokens(TokenPair),
    /// A second factor is needed (SPEC §10).
    SecondFactor(MfaChallenge),
}

/// A `/login` answer: the pair (also at the top level), or the second step
/// to pass in the envelope.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum LoginFormAnswer {
    /// Logged in.
    Tokens(FormLoginAnswer),
    /// A second factor is needed (SPEC §10).
    SecondFactor(Envelope<MfaChallenge>),
}

/// `POST /refresh` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshRequest {
    /// The refresh token of the last pair. With `REFRESH_COOKIE=true` it may
    /// be left out (the body too) when the refresh cookie carries it; a
    /// token here wins over the cookie.
    #[schema(nullable = false)]
    refresh_token: Option<String>,
}

/// Rotate a refresh token for a new pair.
///
/// The presented refresh token is spent; replaying a spent one revokes the
/// session (SPEC §5). With `REFRESH_COOKIE=true` the token may come from the
/// refresh cookie instead of the body (a body token wins), the answer sets
/// the cookie to the new token, and a request from a page of another site
/// is refused with 403 before any token is looked at.
#[utoipa::path(post, path = "/refresh", tag = "auth",
    request_body = RefreshRequest,
    params(
        ("portcullis_refresh" = Option<String>, Cookie,
            description = "The refresh cookie (`REFRESH_COOKIE=true`): `HttpOnly; Secure; SameSite=Strict`, \
                scoped to the auth routes. Read when the body has no `refresh_token`."),
    ),
    responses(
        (status = 200, description = "A new pair for the same session (with `REFRESH_COOKIE=true`, also as the refresh cookie)", body = Envelope<TokenPair>,
            headers(("Set-Cookie" = String, description = "With `REFRESH_COOKIE=true`: `portcullis_refresh=<the new refresh token>; Path=<AUTH_ROUTE_PREFIX>; Max-Age=<the session's remaining lifetime>; HttpOnly; Secure; SameSite=Strict`"))),
        (status = 401, description = "INVALID_TOKEN, TOKEN_EXPIRED or TOKEN_REVOKED (a replayed token revokes its session; with `REFRESH_COOKIE=true`, a refused cookie is cleared)", body = ErrorEnvelope),
        (status = 403, description = "INACTIVE_USER; or FORBIDDEN: with `REFRESH_COOKIE=true`, a request from a page of another site (`Sec-Fetch-Site: cross-site`, or an `Origin` that is neither the server's own nor one of `CORS_ORIGINS`)", body = ErrorEnvelope),
        Invalid, Busy,
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    client: ClientInfo,
    _: CsrfCheck,
    req: Request,
) -> Result<Response> {
    let config = &state.config;
    let cookie = config
        .refresh_cookie
        .then(|| cookie::refresh_cookie(req.headers()))
        .flatten();
    // Without the cookie the body is required, as it always was.
    let body = if config.refresh_cookie {
        OptionalJsonBody::<RefreshRequest>::from_request(req, &state)
            .await?
            .0
    } else {
        Some(
            JsonBody::<RefreshRequest>::from_request(req, &state)
                .await?
                .0,
        )
    };
    let (token, from_cookie) = match (body.and_then(|b| b.refresh_token), cookie) {
        (Some(token), _) => (token, false),
        (None, Some(token)) => (token, true),
        (None, None) => return Err(Error::field("refresh_token", "Field required")),
    };
    match state.flows.refresh(&token, &client).await {
        Ok(pair) => {
            let answer = no_store(Envelope::ok(&pair).into_response());
            Ok(set_refresh_cookie(config, answer, &pair))
        }
        // A cookie that can never refresh again is cleared.
        Err(e @ (Error::InvalidToken | Error::TokenExpired | Error::TokenRevoked))
            if from_cookie =>
        {
            Ok(clear_refresh_cookie(config, e.into_response()))
        }
        Err(e) => Err(e),
    }
}

/// `POST /logout` body (optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct LogoutRequest {
    /// Revoke all of the user's sessions, not only this one.
    #[serde(default)]
    all: bool,
}

/// Revoke this session, or all with {"all": true}.
///
/// The body may be left out.
#[utoipa::path(post, path = "/logout", tag = "sessions",
    request_body = Option<LogoutRequest>,
    security(("OAuth2PasswordBearer" = []), ("BearerAuth" = [])),
    responses(
        (status = 200, description = "Logged out", body = Envelope<Message>),
        Unauthenticated, Invalid, Busy,
    ))]
pub async fn logout(
    State(state): State<AppState>,
    client: ClientInfo,
    _: CsrfCheck,
    session: AuthSession,
    OptionalJsonBody(req): OptionalJsonBody<LogoutRequest>,
) -> Result<Response> {
    let all = req.unwrap_or_default().all;
    state.flows.logout(&session, all, &client).await?;
    let answer = Envelope::ok(Message {
        message: if all {
            "Logged out of all sessions"
        } else {
            "Logged out successfully"
        },
    })
    .into_response();
    Ok(clear_refresh_cookie(&state.config, answer))
}
