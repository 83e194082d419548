//! The one error type of Portcullis, mapped once to an HTTP status, a stable
//! error code and the JSON envelope of SPEC §3.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A problem with one input field, reported in `error.details`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The field's name as the client sent it (e.g. `password`).
    pub field: String,
    /// What is wrong with it, in plain words.
    pub message: String,
}

impl FieldError {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Everything that can go wrong while answering a request.
///
/// Each variant maps to exactly one status and code (see [`Error::status`] and
/// [`Error::code`]); handlers return it and never build error bodies themselves.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No or malformed `Authorization` header.
    #[error("Not authenticated")]
    Unauthorized,
    /// Wrong e-mail or password (one answer for both).
    #[error("Invalid email or password")]
    InvalidCredentials,
    /// A validly signed token past its `exp`.
    #[error("Token has expired")]
    TokenExpired,
    /// Bad signature, malformed, wrong type, algorithm, issuer or audience.
    #[error("Invalid token")]
    InvalidToken,
    /// The token's session was revoked.
    #[error("Token has been revoked")]
    TokenRevoked,
    /// The user is deactivated.
    #[error("Inactive user")]
    InactiveUser,
    /// The e-mail is not verified while verification is required.
    #[error("Email not verified")]
    EmailNotVerified,
    /// The user is not a superuser.
    #[error("Not enough privileges")]
    Forbidden,
    /// A page of another site asked for what the refresh cookie guards
    /// (`REFRESH_COOKIE=true`).
    #[error("Cross-site request refused")]
    CrossSite,
    /// `REGISTRATION_ENABLED=false`: only a superuser may create accounts
    /// through `POST /register` (SPEC §12).
    #[error("Registration is disabled")]
    RegistrationDisabled,
    /// The e-mail is already registered.
    #[error("Email already registered")]
    EmailAlreadyExists,
    /// A superuser tried to deactivate, demote or delete their own account
    /// through the admin API (so that an installation never loses its last
    /// admin by accident).
    #[error("A superuser cannot deactivate, demote or delete themself")]
    CannotModifySelf,
    /// One or more fields are invalid.
    #[error("Validation error")]
    Validation(Vec<FieldError>),
    /// Wrong current password on change-password.
    #[error("Current password is incorrect")]
    InvalidPassword,
    /// Unknown, expired or used reset token.
    #[error("Invalid or expired reset token")]
    InvalidResetToken,
    /// Unknown, expired or used verification token.
    #[error("Invalid or expired verification token")]
    InvalidVerificationToken,
    /// The body is not valid JSON.
    #[error("Request body is not valid JSON")]
    InvalidJson,
    /// The body has the wrong `Content-Type`.
    #[error("Unsupported media type: expected {0}")]
    UnsupportedMediaType(&'static str),
    /// The body is larger than the limit.
    #[error("Request body too large (limit 64 KiB)")]
    PayloadTooLarge,
    /// The client did not send the whole body in time.
    #[error("The request body was not received in time")]
    RequestTimeout,
    /// Too many attempts; retry after the given seconds.
    #[error("Too many attempts, try again later")]
    RateLimited {
        /// Seconds until a retry may succeed.
        retry_after: u64,
    },
    /// Unknown path or resource.
    #[error("Not found")]
    NotFound,
    /// Known path, wrong method.
    #[error("Method not allowed")]
    MethodNotAllowed,
    /// Overloaded (hashing queue full) or the database is unreachable.
    #[error("Service temporarily unavailable")]
    Unavailable,
    /// Anything else; the cause goes to the log, never to the client.
    #[error("Internal server error")]
    Internal(#[source] anyhow::Error),
    /// An `mfa_token` that is unknown, expired, spent or burnt (SPEC §10).
    #[error("Invalid or expired MFA token")]
    InvalidMfaToken,
    /// A wrong second-factor code, a reused TOTP step or a spent recovery
    /// code: 401 during a login, 400 when confirming, disabling or
    /// regenerating.
    #[error("Invalid authentication code")]
    InvalidMfaCode {
        /// Whether it was a login's second step.
        login: bool,
    },
    /// The pending TOTP setup expired or was replaced: start again.
    #[error("The TOTP setup expired; start it again")]
    MfaSetupExpired,
    /// TOTP is already on.
    #[error("Two-factor authentication is already enabled")]
    MfaAlreadyEnabled,
    /// TOTP is not on.
    #[error("Two-factor authentication is not enabled")]
    MfaNotEnabled,
    /// This server has no `MFA_ENCRYPTION_KEY`: TOTP cannot be used (503).
    #[error("Two-factor authentication is not configured on this server")]
    MfaUnconfigured,
    /// The route needs a session that passed a second factor (`aal2`).
    #[error("This action requires two-factor authentication")]
    InsufficientAal,
    /// The password was right but the user has a second factor: only from
    /// [`Flows::login`](crate::flows::Flows::login), for callers that want
    /// tokens or nothing (the endpoints answer with the second step).
    #[error("A second factor is required")]
    MfaRequired,
    /// Passkeys cannot work with this configuration (an IP address as the
    /// relying party, SPEC §11); permanent, so no `Retry-After`.
    #[error("Passkeys are not available on this server")]
    PasskeysUnavailable,
    /// A passkey that did not verify: 401 when signing in, 400 when
    /// registering (origin, RP id, challenge, no user verification).
    #[error("Invalid passkey")]
    InvalidPasskey {
        /// Whether it was a sign-in.
        sign_in: bool,
    },
    /// A passkey ceremony that is unknown, expired, spent, or of another
    /// purpose or user.
    #[error("Invalid or expired passkey ceremony")]
    PasskeyCeremonyInvalid,
    /// The credential is registered already (to this or another account).
    #[error("This passkey is already registered")]
    PasskeyAlreadyRegistered,
    /// The user has as many passkeys as `PASSKEYS_PER_USER` allows.
    #[error("Passkey limit reached")]
    PasskeyLimitReached,
}

/// Shorthand for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A validation error about one field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Validation(vec![FieldError::new(field, message)])
    }

    /// An internal error carrying its cause for the log.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Error::Internal(cause.into())
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        use Error::*;
        match self {
            Unauthorized | InvalidCredentials | TokenExpired | InvalidToken | TokenRevoked => {
                StatusCode::UNAUTHORIZED
            }
            InvalidMfaToken | InvalidMfaCode { login: true } | InvalidPasskey { sign_in: true } => {
                StatusCode::UNAUTHORIZED
            }
            InvalidPasskey { sign_in: false } | PasskeyCeremonyInvalid => StatusCode::BAD_REQUEST,
            PasskeyAlreadyRegistered | PasskeyLimitReached => StatusCode::CONFLICT,
            InvalidMfaCode { login: false } | MfaSetupExpired => StatusCode::BAD_REQUEST,
            MfaNotEnabled => StatusCode::NOT_FOUND,
            InactiveUser | EmailNotVerified | Forbidden | CrossSite | InsufficientAal
            | MfaRequired | RegistrationDisabled => StatusCode::FORBIDDEN,
            EmailAlreadyExists | MfaAlreadyEnabled | CannotModifySelf => StatusCode::CONFLICT,
            Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            InvalidPassword | InvalidResetToken | InvalidVerificationToken | InvalidJson => {
                StatusCode::BAD_REQUEST
            }
            UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            NotFound => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Unavailable | MfaUnconfigured | PasskeysUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable, machine-readable code of this error (SPEC §3).
    pub fn code(&self) -> &'static str {
        use Error::*;
        match self {
            Unauthorized => "UNAUTHORIZED",
            InvalidCredentials => "INVALID_CREDENTIALS",
            TokenExpired => "TOKEN_EXPIRED",
            InvalidToken => "INVALID_TOKEN",
            TokenRevoked => "TOKEN_REVOKED",
            InactiveUser => "INACTIVE_USER",
            EmailNotVerified => "EMAIL_NOT_VERIFIED",
            Forbidden | CrossSite => "FORBIDDEN",
            RegistrationDisabled => "REGISTRATION_DISABLED",
            EmailAlreadyExists => "EMAIL_ALREADY_EXISTS",
            CannotModifySelf => "CANNOT_MODIFY_SELF",
            Validation(_) => "VALIDATION_ERROR",
            InvalidPassword => "INVALID_PASSWORD",
            InvalidResetToken => "INVALID_RESET_TOKEN",
            InvalidVerificationToken => "INVALID_VERIFICATION_TOKEN",
            InvalidJson => "INVALID_JSON",
            UnsupportedMediaType(_) => "UNSUPPORTED_MEDIA_TYPE",
            PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            RequestTimeout => "REQUEST_TIMEOUT",
            RateLimited { .. } => "RATE_LIMITED",
            NotFound => "NOT_FOUND",
            MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Unavailable | MfaUnconfigured => "SERVICE_UNAVAILABLE",
            Internal(_) => "INTERNAL_ERROR",
            InvalidMfaToken => "INVALID_MFA_TOKEN",
            InvalidMfaCode { .. } => "INVALID_MFA_CODE",
            MfaSetupExpired => "MFA_SETUP_EXPIRED",
            MfaAlreadyEnabled => "MFA_ALREADY_ENABLED",
            MfaNotEnabled => "MFA_NOT_ENABLED",
            InsufficientAal => "INSUFFICIENT_AAL",
            MfaRequired => "MFA_REQUIRED",
            PasskeysUnavailable => "PASSKEYS_UNAVAILABLE",
            InvalidPasskey { .. } => "INVALID_PASSKEY",
            PasskeyCeremonyInvalid => "PASSKEY_CEREMONY_INVALID",
            PasskeyAlreadyRegistered => "PASSKEY_ALREADY_REGISTERED",
            PasskeyLimitReached => "PASSKEY_LIMIT_REACHED",
        }
    }

    /// The `WWW-Authenticate` challenge that goes with a 401 (RFC 6750).
    fn challenge(&self) -> Option<&'static str> {
        match self {
            Error::Unauthorized
            | Error::InvalidCredentials
            | Error::InvalidMfaToken
            | Error::InvalidMfaCode { login: true }
            | Error::InvalidPasskey { sign_in: true } => Some("Bearer"),
            Error::TokenExpired | Error::InvalidToken | Error::TokenRevoked => {
                Some("Bearer error=\"invalid_token\"")
            }
            _ => None,
        }
    }

    /// Seconds a client should wait before retrying, for 429 and 503.
    fn retry_after(&self) -> Option<u64> {
        match self {
            Error::RateLimited { retry_after } => Some(*retry_after),
            Error::Unavailable => Some(1),
            _ => None,
        }
    }
}

/// What went wrong.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ErrorDetail)]
pub struct ErrorBody<'a> {
    /// A message for people.
    message: String,
    /// The stable, machine-readable code (SPEC §3), e.g. `VALIDATION_ERROR`.
    code: &'a str,
    /// Which fields are wrong, for `VALIDATION_ERROR` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    details: Option<&'a [FieldError]>,
}

/// Every error answer in the envelope: `{"success": false, "error": {…}}`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorEnvelope<'a> {
    /// Always `false`.
    #[schema(schema_with = always_false)]
    success: bool,
    /// What went wrong.
    error: ErrorBody<'a>,
}

/// The schema of `success` in an error answer: the constant `false`.
fn always_false() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Boolean)
        .enum_values(Some([false]))
        .build()
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if let Error::Internal(cause) = &self {
            // The request id is on the enclosing span, so the log line carries it.
            tracing::error!(error = format!("{cause:#}"), "internal error");
        }
        let status = self.status();
        let details = match &self {
            Error::Validation(fields) => Some(fields.as_slice()),
            _ => None,
        };
        let body = ErrorEnvelope {
            success: false,
            error: ErrorBody {
                message: self.to_string(),
                code: self.code(),
                details,
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(challenge) = self.challenge() {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        if let Some(seconds) = self.retry_after() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Whether a database error means "the database is unreachable or
/// overloaded" (answered 503) rather than a bug (answered 500).
fn database_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // PostgreSQL: connection exceptions (08…), operator intervention
            // such as a shutdown or a dropped database (57P…), insufficient
            // resources (53…), a database that is gone (3D000) or refuses our
            // credentials (28…). SQLite: SQLITE_BUSY (5) and SQLITE_LOCKED (6)
            // after the busy timeout, with their extended codes (SQLite
            // reports those: BUSY_SNAPSHOT 517, BUSY_TIMEOUT 773, …, whose low
            // byte is the primary code).
            code.starts_with("08")
                || code.starts_with("57P")
                || code.starts_with("53")
                || code.starts_with("28")
                || code == "3D000"
                || sqlite_busy_or_locked(&code)
        }),
        _ => false,
    }
}

/// Whether `code` is SQLite's SQLITE_BUSY or SQLITE_LOCKED, plain or
/// extended. (PostgreSQL's codes are five characters and never match.)
fn sqlite_busy_or_locked(code: &str) -> bool {
    code.len() < 5 && code.parse::<u32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6))
}

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        if database_unavailable(&err) {
            tracing::warn!(error = %err, "database unavailable");
            Error::Unavailable
        } else {
            Error::Internal(err.into())
        }
    }
}

#[cfg(test)]
mod sqlite_code_tests {
    use super::sqlite_busy_or_locked;

    #[test]
    fn busy_and_locked_match_with_their_extended_codes_only() {
        for code in ["5", "6", "261", "517", "773", "262"] {
            assert!(sqlite_busy_or_locked(code), "{code}");
        }
        for code in ["1", "19", "2067", "40001", "23505", "57P01", "00005"] {
            assert!(!sqlite_busy_or_locked(code), "{code}");
        }
    }
}
