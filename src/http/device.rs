//! The device token on the wire (SPEC §7): read from the `Portcullis-Device`
//! header or the `portcullis_device` cookie, and handed out by every login
//! that opens a session as that cookie (`HttpOnly; Secure; SameSite=Lax`, a
//! year) besides the `device_token` member of the answer. What it does is
//! in [`crate::limits::DeviceTokens`] and [`crate::flows::Flows::sign_in_from_device`].

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::Response;

use crate::config::Config;
use crate::flows::TokenPair;
use crate::limits::DEVICE_TOKEN_TTL_SECS;

/// The request header that carries a device token.
pub const DEVICE_HEADER: &str = "portcullis-device";
/// The cookie that carries a device token.
pub const DEVICE_COOKIE_NAME: &str = "portcullis_device";
/// The longest header or cookie value taken as a device token.
const MAX_LEN: usize = 256;

/// The device token a request carries, if any: the header wins over the
/// cookie.
#[derive(Debug, Clone, Default)]
pub struct DeviceToken(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for DeviceToken {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> std::result::Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(DEVICE_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .map(str::to_string);
        let cookie = || {
            parts
                .headers
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .flat_map(|value| value.split(';'))
                .filter_map(|pair| pair.trim().split_once('='))
                .find(|(name, _)| *name == DEVICE_COOKIE_NAME)
                .map(|(_, value)| value.to_string())
        };
        Ok(Self(
            header
                .or_else(cookie)
                .filter(|t| !t.is_empty() && t.len() <= MAX_LEN),
        ))
    }
}

/// `response` with the device token of `pair` (if it has one) as the
/// device cookie, scoped to the auth routes.
pub fn set_device_cookie(config: &Config, mut response: Response, pair: &TokenPair) -> Response {
    let Some(token) = &pair.device_token else {
        return response;
    };
    let value = HeaderValue::from_str(&format!(
        "{DEVICE_COOKIE_NAME}={token}; Path={}; Max-Age={DEVICE_TOKEN_TTL_SECS}; HttpOnly; Secure; SameSite=Lax",
        config.route_prefix
    ));
    if let Ok(value) = value {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}
