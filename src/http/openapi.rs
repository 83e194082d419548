//! The OpenAPI 3.1 description of every endpoint (`GET /openapi.json`) and
//! Swagger UI at `/docs`, whose Authorize button logs in through `/login`.

use serde_json::{Value, json};
use utoipa_swagger_ui::SwaggerUi;

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn envelope(data: Value) -> Value {
    json!({
        "type": "object",
        "required": ["success", "data"],
        "properties": { "success": { "const": true }, "data": data }
    })
}

fn json_body(schema: Value) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": schema } } })
}

fn object(required: &[&str], properties: Value) -> Value {
    json!({ "type": "object", "required": required, "properties": properties })
}

/// Adds an error answer to `responses`; a second description for the same
/// status is appended to the first, as one status may carry several codes.
fn add_error(responses: &mut serde_json::Map<String, Value>, status: &str, description: &str) {
    match responses.get_mut(status) {
        Some(existing) => {
            let merged = format!(
                "{}; {description}",
                existing["description"].as_str().unwrap_or_default()
            );
            existing["description"] = Value::String(merged);
        }
        None => {
            responses.insert(
                status.to_string(),
                json!({ "description": description, "content": { "application/json": { "schema": schema_ref("Error") } } }),
            );
        }
    }
}

/// Builds one operation: its success answer and the error codes it can give.
/// An operation with a body also documents the answers every body can get:
/// 413 and 415, and 400 `INVALID_JSON` when it takes JSON.
fn op(
    tag: &str,
    summary: &str,
    body: Option<Value>,
    success: (&str, Value),
    errors: &[(&str, &str)],
    secured: bool,
) -> Value {
    let mut responses = serde_json::Map::new();
    responses.insert(
        success.0.to_string(),
        json!({ "description": "Success", "content": { "application/json": { "schema": success.1 } } }),
    );
    for (status, description) in errors {
        add_error(&mut responses, status, description);
    }
    if let Some(body) = &body {
        if body["content"].get("application/json").is_some() {
            add_error(&mut responses, "400", "INVALID_JSON: the body is not JSON");
        }
        add_error(
            &mut responses,
            "408",
            "REQUEST_TIMEOUT: the body did not arrive within 20 s",
        );
        add_error(
            &mut responses,
            "413",
            "PAYLOAD_TOO_LARGE: the body is over 64 KiB",
        );
        add_error(
            &mut responses,
            "415",
            "UNSUPPORTED_MEDIA_TYPE: wrong Content-Type",
        );
    }
    let mut operation = json!({ "tags": [tag], "summary": summary, "responses": responses });
    if let Some(body) = body {
        operation["requestBody"] = body;
    }
    if secured {
        operation["security"] = json!([{ "OAuth2PasswordBearer": [] }, { "BearerAuth": [] }]);
    }
    operation
}

const VALIDATION: (&str, &str) = ("422", "VALIDATION_ERROR with details");
const UNAUTH: (&str, &str) = (
    "401",
    "UNAUTHORIZED, INVALID_TOKEN, TOKEN_EXPIRED or TOKEN_REVOKED",
);
const BUSY: (&str, &str) = (
    "503",
    "SERVICE_UNAVAILABLE: the database is unreachable or hashing is overloaded (with Retry-After)",
);

const LIMITED: (&str, &str) = (
    "429",
    "RATE_LIMITED: too many attempts from this client or for this address (with Retry-After)",
);

/// The OpenAPI document for routes mounted under `prefix`.
pub fn document(prefix: &str) -> Value {
    let p = |path: &str| format!("{prefix}{path}");
    let tokens = envelope(schema_ref("TokenPair"));
    let user = envelope(schema_ref("User"));
    let message = envelope(schema_ref("Message"));
    let email_body = json_body(object(
        &["email"],
        json!({ "email": { "type": "string", "format": "email" } }),
    ));
    let mut paths = serde_json::Map::new();
    let mut add = |path: String, method: &str, operation: Value| {
        let entry = paths.entry(path).or_insert_with(|| json!({}));
        entry[method] = operation;
    };

    add(
        p("/register"),
        "post",
        op(
            "auth",
            "Create an account",
            Some(json_body(object(
                &["email", "password"],
                json!({
                    "email": { "type": "string", "format": "email", "maxLength": 254 },
                    "password": { "type": "string", "minLength": 8, "maxLength": 128 },
                    "name": { "type": ["string", "null"], "maxLength": 100 }
                }),
            ))),
            (
                "201",
                envelope(object(
                    &["user"],
                    json!({
                        "user": schema_ref("User"), "access_token": { "type": "string" }, "refresh_token": { "type": "string" },
                        "token_type": { "const": "bearer" }, "expires_in": { "type": "integer" }
                    }),
                )),
            ),
            &[("409", "EMAIL_ALREADY_EXISTS"), VALIDATION, LIMITED, BUSY],
            false,
        ),
    );
    add(
        p("/login"),
        "post",
        op(
            "auth",
            "Log in with an OAuth2 password form (Swagger UI's Authorize)",
            Some(json!({
                "required": true,
                "content": { "application/x-www-form-urlencoded": { "schema": object(&["username", "password"], json!({
                    "username": { "type": "string", "description": "The e-mail address" },
                    "password": { "type": "string" },
                    "grant_type": { "type": "string" }, "scope": { "type": "string" }, "client_id": { "type": "string" }
                })) } }
            })),
            (
                "200",
                json!({ "allOf": [tokens.clone(), object(&["access_token", "token_type"], json!({
        "access_token": { "type": "string" }, "token_type": { "const": "bearer" }
    }))] }),
            ),
            &[
                ("401", "INVALID_CREDENTIALS"),
                ("403", "INACTIVE_USER or EMAIL_NOT_VERIFIED"),
                VALIDATION,
                LIMITED,
                BUSY,
            ],
            false,
        ),
    );
    add(
        p("/login/json"),
        "post",
        op(
            "auth",
            "Log in with a JSON body",
            Some(json_body(object(
                &["email", "password"],
                json!({
                    "email": { "type": "string" }, "password": { "type": "string" }
                }),
            ))),
            ("200", tokens.clone()),
            &[
                ("401", "INVALID_CREDENTIALS"),
                ("403", "INACTIVE_USER or EMAIL_NOT_VERIFIED"),
                VALIDATION,
                LIMITED,
                BUSY,
            ],
            false,
        ),
    );
    add(p("/token"), "post", {
        let mut token = op(
            "auth",
            "RFC 6749 token endpoint (password and refresh_token grants)",
            Some(json!({
                "required": true,
                "content": {
                    "application/x-www-form-urlencoded": { "schema": object(&["grant_type"], json!({
                        "grant_type": { "enum": ["password", "refresh_token"] }, "username": { "type": "string" },
                        "password": { "type": "string" }, "refresh_token": { "type": "string" }
                    })) },
                    "application/json": { "schema": object(&["username", "password"], json!({
                        "username": { "type": "string" }, "password": { "type": "string" }, "grant_type": { "type": "string" }
                    })) }
                }
            })),
            ("200", schema_ref("OAuthToken")),
            &[LIMITED, BUSY],
            false,
        );
        // Errors of the grant itself are RFC 6749 section 5.2 bodies, not the envelope.
        token["responses"]["400"] = json!({
            "description": "RFC 6749 error: invalid_request (also a malformed body), invalid_grant, unsupported_grant_type",
            "content": { "application/json": { "schema": schema_ref("OAuthError") } }
        });
        token
    });
    add(
        p("/refresh"),
        "post",
        op(
            "auth",
            "Rotate a refresh token for a new pair",
            Some(json_body(object(
                &["refresh_token"],
                json!({
                    "refresh_token": { "type": "string" }
                }),
            ))),
            ("200", tokens),
            &[UNAUTH, ("403", "INACTIVE_USER"), VALIDATION, BUSY],
            false,
        ),
    );
    add(
        p("/me"),
        "get",
        op(
            "account",
            "The current user",
            None,
            ("200", user.clone()),
            &[UNAUTH, ("403", "INACTIVE_USER"), BUSY],
            true,
        ),
    );
    add(
        p("/me"),
        "patch",
        op(
            "account",
            "Update the current user",
            Some(json_body(json!({
                "type": "object", "properties": { "name": { "type": ["string", "null"], "maxLength": 100 } }
            }))),
            ("200", user.clone()),
            &[UNAUTH, ("403", "INACTIVE_USER"), VALIDATION, BUSY],
            true,
        ),
    );
    add(
        p("/change-password"),
        "post",
        op(
            "account",
            "Change the password; other sessions are revoked",
            Some(json_body(object(
                &["current_password", "new_password"],
                json!({
                    "current_password": { "type": "string" }, "new_password": { "type": "string", "minLength": 8, "maxLength": 128 }
                }),
            ))),
            ("200", message.clone()),
            &[
                ("400", "INVALID_PASSWORD"),
                UNAUTH,
                ("403", "INACTIVE_USER"),
                VALIDATION,
                BUSY,
            ],
            true,
        ),
    );
    add(
        p("/forgot-password"),
        "post",
        op(
            "password reset",
            "Mail a reset link (same answer for every address)",
            Some(email_body.clone()),
            ("200", message.clone()),
            &[VALIDATION, LIMITED],
            false,
        ),
    );
    add(
        p("/reset-password"),
        "post",
        op(
            "password reset",
            "Set a new password with a mailed token",
            Some(json_body(object(
                &["token", "new_password"],
                json!({
                    "token": { "type": "string" }, "new_password": { "type": "string" }
                }),
            ))),
            ("200", message.clone()),
            &[("400", "INVALID_RESET_TOKEN"), VALIDATION, BUSY],
            false,
        ),
    );
    add(
        p("/verify-email"),
        "post",
        op(
            "verification",
            "Confirm the e-mail address with a mailed token",
            Some(json_body(object(
                &["token"],
                json!({
                    "token": { "type": "string" }
                }),
            ))),
            ("200", user),
            &[("400", "INVALID_VERIFICATION_TOKEN"), VALIDATION, BUSY],
            false,
        ),
    );
    for path in ["/verify-email/resend", "/send-verification"] {
        add(
            p(path),
            "post",
            op(
                "verification",
                "Mail a new verification link (same answer for every address)",
                Some(email_body.clone()),
                ("200", message.clone()),
                &[VALIDATION, LIMITED],
                false,
            ),
        );
    }
    add(
        p("/logout"),
        "post",
        op(
            "sessions",
            "Revoke this session, or all with {\"all\": true}",
            Some(json!({
                "required": false, "content": { "application/json": { "schema": { "type": "object", "properties": { "all": { "type": "boolean" } } } } }
            })),
            ("200", message.clone()),
            &[UNAUTH, VALIDATION, BUSY],
            true,
        ),
    );
    add(
        p("/sessions"),
        "get",
        op(
            "sessions",
            "The user's open sessions",
            None,
            (
                "200",
                envelope(json!({ "type": "array", "items": schema_ref("Session") })),
            ),
            &[UNAUTH, BUSY],
            true,
        ),
    );
    add(p("/sessions/{id}"), "delete", {
        let mut o = op(
            "sessions",
            "Revoke one of the user's sessions",
            None,
            ("200", message),
            &[UNAUTH, ("404", "NOT_FOUND"), BUSY],
            true,
        );
        o["parameters"] = json!([{ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } }]);
        o
    });
    add(
        "/healthz".into(),
        "get",
        op(
            "operations",
            "Liveness",
            None,
            ("200", envelope(json!({ "type": "object" }))),
            &[],
            false,
        ),
    );
    add(
        "/readyz".into(),
        "get",
        op(
            "operations",
            "Readiness: the database answers",
            None,
            ("200", envelope(json!({ "type": "object" }))),
            &[BUSY],
            false,
        ),
    );
    add(
        "/.well-known/jwks.json".into(),
        "get",
        op(
            "operations",
            "Public keys (empty for HMAC algorithms)",
            None,
            (
                "200",
                json!({ "type": "object", "properties": { "keys": { "type": "array" } } }),
            ),
            &[],
            false,
        ),
    );
    add(
        "/metrics".into(),
        "get",
        json!({ "tags": ["operations"], "summary": "Prometheus metrics", "responses": { "200": { "description": "Prometheus text format", "content": { "text/plain": {} } } } }),
    );
    let html =
        |description: &str| json!({ "description": description, "content": { "text/html": {} } });
    let page_body = |fields: &[&str]| {
        let properties: serde_json::Map<String, Value> = fields
            .iter()
            .map(|f| (f.to_string(), json!({ "type": "string" })))
            .collect();
        json!({ "required": true, "content": { "application/x-www-form-urlencoded": {
            "schema": object(fields, Value::Object(properties))
        } } })
    };
    for (path, summary, submit, fields) in [
        (
            "/reset-password",
            "HTML page: choose a new password (the link in the reset mail)",
            "HTML form submission: set the new password",
            &["token", "new_password", "confirm_password"][..],
        ),
        (
            "/verify-email",
            "HTML page: confirm the e-mail address (the link in the verification mail)",
            "HTML form submission: confirm the address",
            &["token"][..],
        ),
    ] {
        add(
            path.into(),
            "get",
            json!({
                "tags": ["pages"], "summary": summary,
                "parameters": [{ "name": "token", "in": "query", "required": true, "schema": { "type": "string" } }],
                "responses": {
                    "200": html("The page"),
                    "400": html("The link expired or was used"),
                    "503": html("The database is unreachable")
                }
            }),
        );
        let mut post = op(
            "pages",
            submit,
            Some(page_body(fields)),
            ("200", json!({})),
            &[],
            false,
        );
        post["responses"]["200"] = html("Done");
        post["responses"]["400"] = html("The link expired or was used");
        post["responses"]["503"] = html("The database is unreachable or busy");
        if fields.len() > 1 {
            post["responses"]["422"] = html("The form again, saying what to fix");
        }
        add(path.into(), "post", post);
    }

    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Portcullis",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Email/password JWT authentication. Every JSON answer is {\"success\": true, \"data\": …} or {\"success\": false, \"error\": {\"message\", \"code\", \"details\"?}}."
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "OAuth2PasswordBearer": { "type": "oauth2", "flows": { "password": { "tokenUrl": p("/login"), "refreshUrl": p("/token"), "scopes": {} } } },
                "BearerAuth": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" }
            },
            "schemas": {
                "User": object(&["id", "email", "name", "is_active", "is_verified", "is_superuser", "created_at"], json!({
                    "id": { "type": "integer" }, "email": { "type": "string" }, "name": { "type": ["string", "null"] },
                    "is_active": { "type": "boolean" }, "is_verified": { "type": "boolean" }, "is_superuser": { "type": "boolean" },
                    "created_at": { "type": "string", "format": "date-time" }
                })),
                "TokenPair": object(&["access_token", "refresh_token", "token_type", "expires_in"], json!({
                    "access_token": { "type": "string" }, "refresh_token": { "type": "string" },
                    "token_type": { "const": "bearer" }, "expires_in": { "type": "integer", "description": "seconds" }
                })),
                "OAuthToken": object(&["access_token", "token_type", "expires_in"], json!({
                    "access_token": { "type": "string" }, "refresh_token": { "type": "string" },
                    "token_type": { "const": "bearer" }, "expires_in": { "type": "integer" }
                })),
                "OAuthError": object(&["error"], json!({
                    "error": { "enum": ["invalid_request", "invalid_grant", "unsupported_grant_type"] },
                    "error_description": { "type": "string" }
                })),
                "Message": object(&["message"], json!({ "message": { "type": "string" } })),
                "Session": object(&["id", "created_at", "last_used_at", "current"], json!({
                    "id": { "type": "string" }, "created_at": { "type": "string", "format": "date-time" },
                    "last_used_at": { "type": "string", "format": "date-time" }, "ip": { "type": ["string", "null"] },
                    "user_agent": { "type": ["string", "null"] }, "current": { "type": "boolean" }
                })),
                "Error": object(&["success", "error"], json!({
                    "success": { "const": false },
                    "error": object(&["message", "code"], json!({
                        "message": { "type": "string" }, "code": { "type": "string" },
                        "details": { "type": "array", "items": object(&["field", "message"], json!({
                            "field": { "type": "string" }, "message": { "type": "string" }
                        })) }
                    }))
                }))
            }
        }
    })
}

/// Swagger UI at `/docs` reading `/openapi.json`.
pub fn swagger_ui(document: Value) -> SwaggerUi {
    SwaggerUi::new("/docs")
        .external_url_unchecked("/openapi.json", document)
        .config(
            utoipa_swagger_ui::Config::from("/openapi.json")
                .persist_authorization(true)
                .try_it_out_enabled(true),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_has_described_responses() {
        let doc = document("/api/auth");
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().unwrap();
        assert!(paths.contains_key("/api/auth/login"));
        for (path, item) in paths {
            for (method, op) in item.as_object().unwrap() {
                for (status, resp) in op["responses"].as_object().unwrap() {
                    assert!(
                        resp["description"].is_string(),
                        "{method} {path} {status} lacks a description"
                    );
                }
            }
        }
        assert_eq!(
            doc["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"]["password"]["tokenUrl"],
            "/api/auth/login"
        );
    }
}
