//! What the document says about the refresh cookie, as this server is
//! configured: `/refresh` documents the cookie it reads (its attribute on
//! [`crate::http::auth::refresh`]); here the body's token is made required
//! when `REFRESH_COOKIE` is off, and when it is on the other endpoints that
//! set or clear the cookie get its `Set-Cookie` header and the cross-site
//! 403 (see [`crate::http::cookie`]).

use serde_json::{Value, json};

use crate::config::Config;
use crate::http::cookie::REFRESH_COOKIE_NAME;

/// The 403 of a cross-site request, as the cookie endpoints describe it.
const CROSS_SITE: &str = "FORBIDDEN (`REFRESH_COOKIE=true`): a request from a page of another \
    site (`Sec-Fetch-Site: cross-site`, or an `Origin` that is neither the server's own nor one \
    of `CORS_ORIGINS`), refused before anything else is looked at";

/// Adjusts `doc` (the document with the auth routes under `prefix`) to
/// `config.refresh_cookie`.
pub fn describe_refresh_cookie(doc: &mut Value, config: &Config) {
    let prefix = &config.route_prefix;
    let refresh = &mut doc["paths"][format!("{prefix}/refresh")]["post"];
    if let Some(parameters) = refresh["parameters"].as_array_mut() {
        for parameter in parameters {
            if parameter["name"] == REFRESH_COOKIE_NAME {
                parameter["schema"] = json!({ "type": "string" });
            }
        }
    }
    if !config.refresh_cookie {
        refresh["requestBody"]["required"] = json!(true);
        if let Some(schema) = doc["components"]["schemas"]["RefreshRequest"].as_object_mut() {
            schema.insert("required".into(), json!(["refresh_token"]));
        }
        return;
    }
    refresh["requestBody"]["required"] = json!(false);
    let set_cookie = json!({
        "description": format!(
            "`{REFRESH_COOKIE_NAME}=<the refresh token>; Path={prefix}; Max-Age=<the session's \
             remaining lifetime>; HttpOnly; Secure; SameSite=Strict`"
        ),
        "schema": { "type": "string" },
    });
    let cleared = json!({
        "description": format!(
            "`{REFRESH_COOKIE_NAME}=; Path={prefix}; Max-Age=0; HttpOnly; Secure; SameSite=Strict`: \
             the refresh cookie is cleared"
        ),
        "schema": { "type": "string" },
    });
    for (path, success, header) in [
        ("/register", "201", &set_cookie),
        ("/login", "200", &set_cookie),
        ("/login/json", "200", &set_cookie),
        ("/token", "200", &set_cookie),
        ("/refresh", "200", &set_cookie),
        ("/logout", "200", &cleared),
    ] {
        let Some(operation) = doc["paths"][format!("{prefix}{path}")]["post"].as_object_mut()
        else {
            continue;
        };
        let responses = operation.entry("responses").or_insert_with(|| json!({}));
        responses[success]["headers"]["Set-Cookie"] = header.clone();
        match responses["403"]["description"].as_str() {
            Some(existing) if existing.contains("FORBIDDEN") => {}
            Some(existing) => {
                responses["403"]["description"] = json!(format!("{existing}; or {CROSS_SITE}"));
            }
            None => {
                responses["403"] = json!({
                    "description": CROSS_SITE,
                    "content": {
                        "application/json": {
                            "schema": { "$ref": "#/components/schemas/Error" }
                        }
                    },
                });
            }
        }
    }
}
