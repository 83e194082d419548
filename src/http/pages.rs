//! The HTML pages behind the e-mailed links (SPEC §6), served at the root:
//! `GET /reset-password?token=…` and `GET /verify-email?token=…`.
//!
//! Opening a page never spends its token (mail scanners prefetch links):
//! only submitting the form does. The pages are plain HTML with one
//! stylesheet from the binary, no script, and headers that keep the token
//! out of referrers and caches and the page out of frames.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;

use super::AppState;
use super::body::FormBody;
use super::openapi::schemas::new_password;
use crate::domain::ClientInfo;
use crate::error::{Error, ErrorEnvelope};
use crate::mail::escape_html as escape;

/// Path of the pages' stylesheet.
pub const STYLESHEET_PATH: &str = "/assets/portcullis.css";

const STYLESHEET: &str = "\
body{font-family:system-ui,sans-serif;background:#f5f6f8;color:#1d2330;margin:0;line-height:1.5}
main{max-width:26rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px rgba(0,0,0,.12)}
h1{font-size:1.4rem;margin-top:0}
label{display:block;font-weight:600;margin-top:1rem}
input[type=password]{width:100%;box-sizing:border-box;padding:.6rem;font-size:1rem;border:1px solid #8a93a6;border-radius:4px;margin-top:.3rem}
button{margin-top:1.5rem;width:100%;padding:.7rem;font-size:1rem;background:#1f4e8c;color:#fff;border:0;border-radius:4px;cursor:pointer}
button:focus,input:focus{outline:3px solid #f2b134;outline-offset:1px}
.error{color:#a11;background:#fdecec;padding:.6rem;border-radius:4px}
.ok{color:#174d1f;background:#e8f5ea;padding:.6rem;border-radius:4px}
.hint{color:#4a5262;font-size:.9rem}
";

/// The pages' stylesheet.
#[utoipa::path(get, path = STYLESHEET_PATH, tag = "pages",
    responses((status = 200, description = "CSS", body = String, content_type = "text/css")))]
pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta name=\"referrer\" content=\"no-referrer\">\n<title>{title}</title>\n<link rel=\"stylesheet\" href=\"{STYLESHEET_PATH}\">\n</head>\n<body>\n<main>\n<h1>{title}</h1>\n{body}</main>\n</body>\n</html>\n",
        title = escape(title)
    );
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn paragraph(class: &str, text: &str) -> String {
    format!(
        "<p class=\"{class}\" role=\"{role}\">{}</p>\n",
        escape(text),
        role = if class == "error" { "alert" } else { "status" }
    )
}

fn link_spent(what: &str) -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "This link cannot be used",
        &format!(
            "<p>This {what} link has expired or has already been used.</p>\n<p class=\"hint\">Ask for a new one from the app and use the newest e-mail.</p>\n"
        ),
    )
}

fn unavailable() -> Response {
    let mut response = page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Please try again",
        "<p>The service is busy right now. Please try again in a moment.</p>\n",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// The `?token=` of a link, read leniently: a malformed query string is
/// just a link without a usable token, answered with the explanation page.
#[derive(Debug)]
pub struct TokenQuery {
    token: String,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for TokenQuery {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let token = form_urlencoded::parse(query.as_bytes())
            .find(|(name, _)| name == "token")
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default();
        Ok(Self { token })
    }
}

fn reset_form(token: &str, min_length: usize, errors: &[String]) -> String {
    let mut body = String::new();
    for e in errors {
        body.push_str(&paragraph("error", e));
    }
    body.push_str(&format!(
        "<form method=\"post\" action=\"/reset-password\">\n\
<input type=\"hidden\" name=\"token\" value=\"{token}\">\n\
<label for=\"new_password\">New password</label>\n\
<input id=\"new_password\" name=\"new_password\" type=\"password\" autocomplete=\"new-password\" required minlength=\"{min_length}\" maxlength=\"128\" aria-describedby=\"password-hint\">\n\
<p id=\"password-hint\" class=\"hint\">At least {min_length} characters; not a common password.</p>\n\
<label for=\"confirm_password\">Repeat the new password</label>\n\
<input id=\"confirm_password\" name=\"confirm_password\" type=\"password\" autocomplete=\"new-password\" required minlength=\"{min_length}\" maxlength=\"128\">\n\
<button type=\"submit\">Set new password</button>\n</form>\n",
        token = escape(token)
    ));
    body
}

/// HTML page: choose a new password (the link in the reset mail).
///
/// The new-password form; opening it does not spend the token.
#[utoipa::path(get, path = "/reset-password", tag = "pages",
    params(("token" = String, Query, description = "The token of the mailed link")),
    responses(
        (status = 200, description = "The page", content(("text/html"))),
        (status = 400, description = "The link expired or was used", content(("text/html"))),
        (status = 503, description = "The database is unreachable", content(("text/html"))),
    ))]
pub async fn reset_page(State(state): State<AppState>, q: TokenQuery) -> Response {
    match state.flows.reset_link_is_live(&q.token).await {
        Ok(true) => page(
            StatusCode::OK,
            "Choose a new password",
            &reset_form(&q.token, state.config.password.min_length, &[]),
        ),
        Ok(false) => link_spent("password reset"),
        Err(_) => unavailable(),
    }
}

/// The reset form as submitted.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ResetForm {
    /// The token of the mailed link.
    #[serde(default)]
    #[schema(required = true)]
    token: String,
    #[serde(default)]
    #[schema(schema_with = new_password, required = true)]
    new_password: String,
    /// The new password again.
    #[serde(default)]
    #[schema(schema_with = new_password, required = true)]
    confirm_password: String,
}

/// HTML form submission: set the new password.
///
/// Completes the reset; every session of the user is revoked.
#[utoipa::path(post, path = "/reset-password", tag = "pages",
    request_body(content = ResetForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Done", content(("text/html"))),
        (status = 400, description = "The link expired or was used", content(("text/html"))),
        (status = 422, description = "The form again, saying what to fix; a form that cannot be read at all (a field given twice) is VALIDATION_ERROR in the envelope", content(("text/html"), (ErrorEnvelope = "application/json"))),
        (status = 503, description = "The database is unreachable or busy", content(("text/html"))),
    ))]
pub async fn reset_submit(
    State(state): State<AppState>,
    client: ClientInfo,
    FormBody(form): FormBody<ResetForm>,
) -> Response {
    let min = state.config.password.min_length;
    if form.new_password != form.confirm_password {
        return page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Choose a new password",
            &reset_form(
                &form.token,
                min,
                &["The two passwords do not match.".into()],
            ),
        );
    }
    match state
        .flows
        .reset_password(&form.token, &form.new_password, &client)
        .await
    {
        Ok(()) => page(
            StatusCode::OK,
            "Password changed",
            &paragraph(
                "ok",
                "Your password has been changed and you have been signed out everywhere. You can now log in with your new password.",
            ),
        ),
        Err(Error::Validation(details)) => {
            let errors: Vec<String> = details.into_iter().map(|d| d.message).collect();
            page(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Choose a new password",
                &reset_form(&form.token, min, &errors),
            )
        }
        Err(Error::InvalidResetToken) => link_spent("password reset"),
        Err(Error::Internal(e)) => {
            tracing::error!(error = format!("{e:#}"), "reset page failed");
            unavailable()
        }
        Err(_) => unavailable(),
    }
}

/// HTML page: confirm the e-mail address (the link in the verification mail).
///
/// A confirm button; opening the page does not spend the token.
#[utoipa::path(get, path = "/verify-email", tag = "pages",
    params(("token" = String, Query, description = "The token of the mailed link")),
    responses(
        (status = 200, description = "The page", content(("text/html"))),
        (status = 400, description = "The link expired or was used", content(("text/html"))),
        (status = 503, description = "The database is unreachable", content(("text/html"))),
    ))]
pub async fn verify_page(State(state): State<AppState>, q: TokenQuery) -> Response {
    match state.flows.verification_link_is_live(&q.token).await {
        Ok(true) => page(
            StatusCode::OK,
            "Confirm your email address",
            &format!(
                "<p>Press the button to confirm your email address.</p>\n<form method=\"post\" action=\"/verify-email\">\n<input type=\"hidden\" name=\"token\" value=\"{}\">\n<button type=\"submit\">Confirm my email address</button>\n</form>\n",
                escape(&q.token)
            ),
        ),
        Ok(false) => link_spent("verification"),
        Err(_) => unavailable(),
    }
}

/// The confirm form as submitted.
#[derive(Debug, Deserialize, ToSchema)]
pub struct VerifyForm {
    /// The token of the mailed link.
    #[serde(default)]
    #[schema(required = true)]
    token: String,
}

/// HTML form submission: confirm the address.
#[utoipa::path(post, path = "/verify-email", tag = "pages",
    request_body(content = VerifyForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Done", content(("text/html"))),
        (status = 400, description = "The link expired or was used", content(("text/html"))),
        (status = 422, description = "VALIDATION_ERROR: a form that cannot be read (a field given twice)", body = ErrorEnvelope),
        (status = 503, description = "The database is unreachable or busy", content(("text/html"))),
    ))]
pub async fn verify_submit(
    State(state): State<AppState>,
    client: ClientInfo,
    FormBody(form): FormBody<VerifyForm>,
) -> Response {
    match state.flows.verify_email(&form.token, &client).await {
        Ok(_) => page(
            StatusCode::OK,
            "Email address confirmed",
            &paragraph(
                "ok",
                "Thank you: your email address is confirmed. You can close this page.",
            ),
        ),
        Err(Error::InvalidVerificationToken) => link_spent("verification"),
        Err(_) => unavailable(),
    }
}
