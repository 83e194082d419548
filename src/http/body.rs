//! Request body extractors that answer every problem in the envelope:
//! wrong `Content-Type` (415), too large (413), not JSON (400
//! `INVALID_JSON`), wrong shape (422 `VALIDATION_ERROR` naming the field).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use crate::error::{Error, FieldError};

/// A JSON request body of type `T`.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

/// An optional JSON body: absent or empty gives `None`.
#[derive(Debug, Clone)]
pub struct OptionalJsonBody<T>(pub Option<T>);

/// An `application/x-www-form-urlencoded` body of type `T`.
#[derive(Debug, Clone)]
pub struct FormBody<T>(pub T);

/// The media type of a request, lower-cased, without parameters.
pub(crate) fn media_type(req: &Request) -> String {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

pub(crate) fn is_json(media: &str) -> bool {
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
}

pub(crate) const FORM: &str = "application/x-www-form-urlencoded";

/// How long a client may take to send a whole request body. Bodies are at
/// most 64 KiB, so a client slower than this is stalling, not uploading.
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// Reads the whole body within the size limit and [`BODY_READ_TIMEOUT`].
pub(crate) async fn read_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, Error> {
    let read = Bytes::from_request(req, state);
    let Ok(read) = tokio::time::timeout(BODY_READ_TIMEOUT, read).await else {
        return Err(Error::RequestTimeout);
    };
    read.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Error::PayloadTooLarge
        } else {
            Error::InvalidJson
        }
    })
}

/// Turns a serde error at `path` into a field error.
fn field_error(path: &str, err: &impl std::fmt::Display) -> FieldError {
    let message = err.to_string();
    // "missing field `email`" carries the field name in the message.
    if let Some(name) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
    {
        return FieldError::new(name, "Field required");
    }
    let field = if path.is_empty() || path == "." {
        "body"
    } else {
        path
    };
    let message = message
        .split(" at line ")
        .next()
        .unwrap_or(&message)
        .to_string();
    FieldError::new(field, message)
}

/// Parses JSON bytes into `T`.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|_| Error::InvalidJson)?;
    if !value.is_object() {
        return Err(Error::field("body", "Expected a JSON object"));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        Error::Validation(vec![field_error(&path, e.inner())])
    })
}

/// Parses form bytes into `T`.
pub(crate) fn parse_form<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(bytes));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        Error::Validation(vec![field_error(&path, e.inner())])
    })
}

/// Parses a query string (absent: empty) into `T`; a problem is 422
/// naming the parameter.
pub(crate) fn parse_query<T: DeserializeOwned>(raw: Option<&str>) -> Result<T, Error> {
    parse_form(raw.unwrap_or_default().as_bytes())
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        if !is_json(&media_type(&req)) {
            return Err(Error::UnsupportedMediaType("application/json"));
        }
        let bytes = read_bytes(req, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        let media = media_type(&req);
        let bytes = read_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJsonBody(None));
        }
        if !is_json(&media) {
            return Err(Error::UnsupportedMediaType("application/json"));
        }
        parse_json(&bytes).map(|v| OptionalJsonBody(Some(v)))
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for FormBody<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        if media_type(&req) != FORM {
            return Err(Error::UnsupportedMediaType(FORM));
        }
        let bytes = read_bytes(req, state).await?;
        parse_form(&bytes).map(FormBody)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Login {
        email: String,
        password: String,
    }

    #[test]
    fn json_errors_name_fields() {
        assert!(matches!(parse_json::<Login>(b"{"), Err(Error::InvalidJson)));
        let Err(Error::Validation(d)) = parse_json::<Login>(br#"{"email":"a"}"#) else {
            panic!("expected validation error")
        };
        assert_eq!(d[0].field, "password");
        let Err(Error::Validation(d)) = parse_json::<Login>(br#"{"email":5,"password":"x"}"#)
        else {
            panic!("expected validation error")
        };
        assert_eq!(d[0].field, "email");
        assert!(matches!(
            parse_json::<Login>(b"[1]"),
            Err(Error::Validation(_))
        ));
    }

    #[test]
    fn form_errors_name_fields() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Form {
            username: String,
            password: String,
        }
        assert!(parse_form::<Form>(b"username=a%40b.co&password=x").is_ok());
        let Err(Error::Validation(d)) = parse_form::<Form>(b"username=a") else {
            panic!("expected validation error")
        };
        assert_eq!(d[0].field, "password");
    }
}
