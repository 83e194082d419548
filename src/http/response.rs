//! Success bodies: the `{"success": true, "data": …}` envelope and the JSON
//! shapes of users, token pairs and sessions.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::ser::SerializeMap;

pub use crate::flows::TokenPair;
use crate::store::{SessionInfo, User};

/// A successful answer: `{"success": true, "data": T}` with a status.
#[derive(Debug)]
pub struct Envelope<T> {
    status: StatusCode,
    data: T,
}

impl<T: Serialize> Envelope<T> {
    /// 200 with `data`.
    pub fn ok(data: T) -> Self {
        Self {
            status: StatusCode::OK,
            data,
        }
    }

    /// 201 with `data`.
    pub fn created(data: T) -> Self {
        Self {
            status: StatusCode::CREATED,
            data,
        }
    }
}

#[derive(Serialize)]
struct EnvelopeBody<'a, T> {
    success: bool,
    data: &'a T,
}

impl<T: Serialize> IntoResponse for Envelope<T> {
    fn into_response(self) -> Response {
        let body = EnvelopeBody {
            success: true,
            data: &self.data,
        };
        (self.status, Json(body)).into_response()
    }
}

/// `{"message": "…"}`, the data of acknowledgements.
#[derive(Debug, Serialize)]
pub struct Message {
    /// What happened.
    pub message: &'static str,
}

/// Formats Unix seconds as RFC 3339 (UTC).
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// A user as responses show it (SPEC §4); `with_id: false` leaves the id out
/// (registration while verification is required).
#[derive(Debug)]
pub struct UserView<'a> {
    user: &'a User,
    with_id: bool,
}

impl<'a> UserView<'a> {
    /// The full view.
    pub fn new(user: &'a User) -> Self {
        Self {
            user,
            with_id: true,
        }
    }

    /// The view without `id`.
    pub fn without_id(user: &'a User) -> Self {
        Self {
            user,
            with_id: false,
        }
    }
}

impl UserView<'_> {
    /// The view as a JSON value.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

impl Serialize for UserView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let u = self.user;
        let mut map = s.serialize_map(None)?;
        if self.with_id {
            map.serialize_entry("id", &u.id)?;
        }
        map.serialize_entry("email", &u.email)?;
        map.serialize_entry("name", &u.name)?;
        map.serialize_entry("is_active", &u.is_active)?;
        map.serialize_entry("is_verified", &u.is_verified)?;
        map.serialize_entry("is_superuser", &u.is_superuser)?;
        map.serialize_entry("created_at", &rfc3339(u.created_at))?;
        for (key, value) in &u.extra {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// One entry of `GET /sessions`.
#[derive(Debug, Serialize)]
pub struct SessionView {
    id: String,
    created_at: String,
    last_used_at: String,
    ip: Option<String>,
    user_agent: Option<String>,
    current: bool,
}

impl SessionView {
    /// The view of `s`; `current` when it is the caller's own session.
    pub fn new(s: SessionInfo, current_sid: &str) -> Self {
        Self {
            current: s.id == current_sid,
            created_at: rfc3339(s.created_at),
            last_used_at: rfc3339(s.last_used_at),
            id: s.id,
            ip: s.ip,
            user_agent: s.user_agent,
        }
    }
}

/// Marks a response that carries tokens as not cacheable (RFC 6749 §5.1).
pub fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
