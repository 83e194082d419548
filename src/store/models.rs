//! Rows of the store as Rust values.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::domain::{ClientInfo, SessionAuth};
use crate::fields::ExtraFields;

/// A user as every response shows it (SPEC §4): never the password hash.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct User {
    /// Integer id.
    pub id: i64,
    /// The address as registered (trimmed).
    pub email: String,
    /// Display name.
    pub name: Option<String>,
    /// Deactivated users cannot log in and their tokens are revoked.
    pub is_active: bool,
    /// The e-mail address was confirmed.
    pub is_verified: bool,
    /// May use the admin API.
    pub is_superuser: bool,
    /// Creation time, Unix seconds (rendered as RFC 3339 in responses).
    pub created_at: i64,
    /// The application's own fields.
    pub extra: ExtraFields,
}

impl User {
    /// The value of an application-defined field (SPEC §8), if set:
    /// `user.field("phone")`.
    pub fn field(&self, name: &str) -> Option<&serde_json::Value> {
        self.extra.get(name)
    }
}

/// A user together with their password hash, for authentication.
#[derive(Debug, Clone)]
pub struct UserRecord {
    /// The user.
    pub user: User,
    /// argon2 PHC string or bcrypt hash.
    pub password_hash: String,
}

/// A flag column: BOOLEAN on PostgreSQL, 0/1 INTEGER on SQLite.
pub(super) fn flag(row: &AnyRow, column: &str) -> Result<bool, sqlx::Error> {
    match row.try_get::<bool, _>(column) {
        Ok(b) => Ok(b),
        Err(_) => Ok(row.try_get::<i64, _>(column)? != 0),
    }
}

impl UserRecord {
    /// Reads the user columns of a row (`id, email, name, password_hash,
    /// is_active, is_verified, is_superuser, extra, created_at`).
    pub(crate) fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        let extra: String = row.try_get("extra")?;
        let extra = match serde_json::from_str(&extra) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => ExtraFields::new(),
        };
        Ok(Self {
            user: User {
                id: row.try_get("id")?,
                email: row.try_get("email")?,
                name: row.try_get("name")?,
                is_active: flag(row, "is_active")?,
                is_verified: flag(row, "is_verified")?,
                is_superuser: flag(row, "is_superuser")?,
                created_at: row.try_get("created_at")?,
                extra,
            },
            password_hash: row.try_get("password_hash")?,
        })
    }
}

/// What to insert for a new user.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    /// Parsed, trimmed e-mail.
    pub email: &'a str,
    /// Optional display name.
    pub name: Option<&'a str>,
    /// Password hash (never a password).
    pub password_hash: &'a str,
    /// Active from the start (normally true).
    pub is_active: bool,
    /// E-mail already confirmed.
    pub is_verified: bool,
    /// Superuser.
    pub is_superuser: bool,
    /// The application's own fields.
    pub extra: &'a ExtraFields,
    /// Creation time to keep (imports); `None` for now.
    pub created_at: Option<i64>,
}

/// An open session as `GET /sessions` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Opaque id.
    pub id: String,
    /// Login time, Unix seconds.
    pub created_at: i64,
    /// Last refresh or request, Unix seconds.
    pub last_used_at: i64,
    /// IP at login.
    pub ip: Option<String>,
    /// User agent at login.
    pub user_agent: Option<String>,
}

impl SessionInfo {
    pub(crate) fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            created_at: row.try_get("created_at")?,
            last_used_at: row.try_get("last_used_at")?,
            ip: row.try_get("ip")?,
            user_agent: row.try_get("user_agent")?,
        })
    }
}

/// The state of the session an access token names.
#[derive(Debug, Clone)]
pub enum SessionLookup {
    /// Open; here is its user.
    Active {
        /// The session's user (shared with the session cache).
        user: std::sync::Arc<User>,
        /// When it was last used, Unix seconds.
        last_used_at: i64,
    },
    /// Revoked (logout, reuse, password change, deactivation).
    Revoked,
    /// No such session (or its user was deleted).
    Missing,
}

/// How long refresh tokens and sessions live, in seconds, and the refresh
/// grace window (from the configuration).
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    /// A refresh token's lifetime (`REFRESH_TOKEN_EXPIRE_DAYS`).
    pub refresh_secs: i64,
    /// A session's absolute lifetime from its login (`SESSION_MAX_LIFETIME_DAYS`).
    pub session_max_secs: i64,
    /// How long a just-spent refresh token may come back (`REFRESH_REUSE_GRACE_SECONDS`).
    pub grace_secs: i64,
}

impl Lifetimes {
    /// The expiry of a session's first refresh token, from its login.
    pub fn first_refresh_secs(&self) -> i64 {
        self.refresh_secs.min(self.session_max_secs)
    }
}

/// A session to open.
#[derive(Debug, Clone, Copy)]
pub struct NewSession<'a> {
    /// Its id (the `sid` claim).
    pub session_id: &'a str,
    /// Whose it is.
    pub user_id: i64,
    /// The id of its first refresh token.
    pub refresh_jti: &'a str,
    /// How long it and its tokens live.
    pub lifetimes: &'a Lifetimes,
    /// Who opens it.
    pub client: &'a ClientInfo,
    /// The time of the login (Unix seconds), also the first token's `iat`.
    pub now: i64,
}

/// What must still hold of the user when the session is opened.
#[derive(Debug, Clone, Copy)]
pub struct StillValid<'a> {
    /// The hash the login verified the password against; `None` when no
    /// password was checked (registration).
    pub password_hash: Option<&'a str>,
    /// Whether the e-mail must be verified.
    pub require_verified: bool,
}

/// Why a session was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The user was deleted meanwhile.
    UserGone,
    /// The password was changed or reset meanwhile.
    PasswordChanged,
    /// The user is deactivated.
    Inactive,
    /// The e-mail is not verified and verification is required.
    Unverified,
    /// The session would rest on the password alone, but the user has a
    /// second factor (turned on while the login was under way).
    SecondFactorRequired,
}

/// The result of [`Store::open_session`](super::Store::open_session).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionOpening {
    /// Opened; its first refresh token expires then (Unix seconds).
    Opened {
        /// Expiry of the first refresh token.
        refresh_expires_at: i64,
    },
    /// Not opened.
    Refused(Refusal),
}

/// What happened to a presented refresh token.
#[derive(Debug, Clone)]
pub enum RefreshOutcome {
    /// It was current: spent, and its successor recorded.
    Rotated {
        /// The session's user.
        user: User,
        /// When the successor expires.
        expires_at: i64,
        /// How the session was authenticated (copied into the new access token).
        auth: SessionAuth,
    },
    /// It was the latest spent token, back within the grace window: its
    /// successor (already recorded) is handed out again.
    Grace {
        /// The session's user.
        user: User,
        /// When the successor expires.
        expires_at: i64,
        /// How the session was authenticated (copied into the new access token).
        auth: SessionAuth,
    },
    /// It was spent earlier: theft assumed, the session is now revoked.
    Reused {
        /// Whose session it was.
        user_id: i64,
    },
    /// The session was already revoked.
    Revoked,
    /// The session reached its absolute lifetime.
    Expired,
    /// No such token in that session.
    Unknown,
}
