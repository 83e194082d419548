//! The answers that many operations share, written once.
//!
//! - Answers that a handler names in the `responses(…)` of its
//!   `#[utoipa::path]` attribute, one status each: [`Unauthenticated`],
//!   [`Inactive`], [`Invalid`], [`RateLimited`], [`PasswordCheckLimited`] and
//!   [`Busy`].
//! - Answers that follow from the router and the body extractors rather than
//!   from a handler, added to the document by [`add_shared_answers`]: every
//!   operation that takes a body can get 408, 413 and 415 (and 400
//!   `INVALID_JSON` when it takes JSON), and every path answers 404 and 405
//!   through the router's fallbacks.

use std::collections::BTreeMap;

use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{IntoResponses, ToSchema};

use crate::error::ErrorEnvelope;
use crate::http::BODY_LIMIT;
use crate::http::body::BODY_READ_TIMEOUT;

/// An error answer in the envelope with `description`, which starts with the
/// codes it can carry.
pub fn error(description: impl Into<String>) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/json",
        Content::new(Some(Ref::from_schema_name(ErrorEnvelope::name()))),
    )
}

/// A header whose value is a whole number of seconds.
fn seconds_header(description: &str) -> Header {
    HeaderBuilder::new()
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        ))
        .description(Some(description))
        .build()
}

/// A header whose value is a string.
fn text_header(description: &str) -> Header {
    HeaderBuilder::new()
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .description(Some(description))
        .build()
}

/// `Retry-After` on 429 and 503.
fn retry_after() -> Header {
    seconds_header("Seconds to wait before trying again")
}

macro_rules! shared_answer {
    ($($(#[$doc:meta])* $name:ident: $status:literal => $response:expr;)*) => {$(
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name;

        impl IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                BTreeMap::from([($status.to_string(), $response.build().into())])
            }
        }
    )*};
}

shared_answer! {
    /// 401 on a protected operation: no usable access token.
    Unauthenticated: "401" => error(
        "UNAUTHORIZED (no `Authorization: Bearer` header), INVALID_TOKEN, TOKEN_EXPIRED or TOKEN_REVOKED",
    )
    .header("WWW-Authenticate", text_header("`Bearer`, with `error=\"invalid_token\"` for a token that was presented (RFC 6750)"));

    /// 403 where a deactivated account is refused.
    Inactive: "403" => error("INACTIVE_USER: the account is deactivated");

    /// 403 on the admin API: the caller is not an active superuser.
    NotSuperuser: "403" => error("FORBIDDEN: the caller is not a superuser; INACTIVE_USER: the caller's account is deactivated");

    /// 422: a field is missing or wrong.
    Invalid: "422" => error("VALIDATION_ERROR: a field is missing or wrong; `details` names each one");

    /// 429 on the operations SPEC §7 rate-limits.
    RateLimited: "429" => error("RATE_LIMITED: too many attempts from this client or for this address")
        .header("Retry-After", retry_after());

    /// 429 on the checks of a current password behind a token (SPEC §7).
    PasswordCheckLimited: "429" => error("RATE_LIMITED: too many current-password checks for this user (`RATE_LIMIT_PASSWORD_CHECK`) or from this client (`RATE_LIMIT_PASSWORD_CHECK_PER_IP`), or this user already has its share of the hashing queue (`HASH_QUEUE_PER_CALLER`); nothing was hashed")
        .header("Retry-After", retry_after());

    /// 503 where the database or password hashing is needed.
    Busy: "503" => error(
        "SERVICE_UNAVAILABLE: the database is unreachable or password hashing is overloaded",
    )
    .header("Retry-After", retry_after());
}

/// Adds the answers of the body extractors and of the router's fallbacks to
/// every operation of `doc` (see the module's documentation).
pub fn add_shared_answers(doc: &mut OpenApi) {
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            add_body_answers(operation);
            add(
                operation,
                "404",
                error("NOT_FOUND: no such path (any path Portcullis does not serve answers this)"),
            );
            add(
                operation,
                "405",
                error("METHOD_NOT_ALLOWED: the path is served, but not with this method")
                    .header("Allow", text_header("The methods the path is served with")),
            );
        }
    }
}

/// The answers every request body can get from the body extractors.
fn add_body_answers(operation: &mut Operation) {
    let Some(RefOr::T(body)) = &mut operation.request_body else {
        return;
    };
    // An `Option<T>` body is one that may be left out, not the JSON `null`
    // (a body must be a JSON object).
    for content in body.content.values_mut() {
        if let RefOr::T(content) = content {
            unwrap_optional(&mut content.schema);
        }
    }
    let media_types: Vec<String> = body.content.keys().cloned().collect();
    if media_types.iter().any(|m| m == "application/json") {
        add(
            operation,
            "400",
            error("INVALID_JSON: the body is not JSON"),
        );
    }
    add(
        operation,
        "408",
        error(format!(
            "REQUEST_TIMEOUT: the body did not arrive within {} s",
            BODY_READ_TIMEOUT.as_secs()
        )),
    );
    add(
        operation,
        "413",
        error(format!(
            "PAYLOAD_TOO_LARGE: the body is over {} KiB",
            BODY_LIMIT / 1024
        )),
    );
    add(
        operation,
        "415",
        error(format!(
            "UNSUPPORTED_MEDIA_TYPE: the `Content-Type` is not {}",
            media_types.join(" or ")
        )),
    );
}

/// Adds `response` for `status` to `operation`. A status the operation
/// already answers in the envelope gets the new description appended, unless
/// it already names the code (one status, several codes); a status it
/// answers in another format (`/token`'s RFC 6749 bodies) is left as it is:
/// the operation documents that answer itself.
fn add(operation: &mut Operation, status: &str, response: ResponseBuilder) {
    let response = response.build();
    let responses = &mut operation.responses.responses;
    match responses.get_mut(status) {
        None => {
            responses.insert(status.to_string(), response.into());
        }
        Some(RefOr::T(existing)) if is_envelope_error(existing) => {
            let code = response.description.split(':').next().unwrap_or_default();
            if !existing.description.contains(code) {
                existing.description =
                    format!("{}; {}", existing.description, response.description);
            }
            for (name, header) in response.headers {
                existing.headers.entry(name).or_insert(header);
            }
        }
        Some(_) => {}
    }
}

/// Whether `response` is an error in the envelope.
fn is_envelope_error(response: &Response) -> bool {
    matches!(
        response.content.get("application/json"),
        Some(RefOr::T(Content { schema: Some(RefOr::Ref(r)), .. }))
            if *r == Ref::from_schema_name(ErrorEnvelope::name())
    )
}

/// Turns the schema of an `Option<T>` body, "T or null", into T's.
fn unwrap_optional(schema: &mut Option<RefOr<Schema>>) {
    let Some(RefOr::T(Schema::OneOf(one_of))) = schema else {
        return;
    };
    let is_null = |s: &RefOr<Schema>| match s {
        RefOr::T(Schema::Object(o)) => o.schema_type == SchemaType::new(Type::Null),
        _ => false,
    };
    if let [a, b] = one_of.items.as_slice() {
        match (is_null(a), is_null(b)) {
            (false, true) => *schema = Some(a.clone()),
            (true, false) => *schema = Some(b.clone()),
            _ => {}
        }
    }
}
