//! The HTML pages behind the e-mailed links (SPEC §6), served at the root:
//! `GET /reset-password?token=…` and `GET /verify-email?token=…`.
//!
//! Opening a page never spends its token (mail scanners prefetch links):
//! only submitting the form does. The forms work without script, in the
//! pages' shell, with headers that keep the token out of referrers and
//! caches and the page out of frames. They are served whether or not the
//! other pages are (`PAGES_ENABLED`).

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;
use utoipa::ToSchema;

use super::i18n::Lang;
use super::render::{Field, Page, paragraph};
use crate::config::Config;
use crate::domain::ClientInfo;
use crate::error::{Error, ErrorEnvelope};
use crate::http::AppState;
use crate::http::body::FormBody;
use crate::http::openapi::schemas::new_password;
use crate::mail::escape_html as escape;

fn page(
    config: &Config,
    lang: Lang,
    status: StatusCode,
    name: &str,
    title: &str,
    body: String,
) -> Response {
    Page {
        status,
        lang,
        name,
        title,
        body: format!("<div class=\"panel\">\n{body}</div>\n"),
        data: Vec::new(),
    }
    .render(config)
}

fn link_spent(config: &Config, lang: Lang, what: &str) -> Response {
    let body = format!(
        "<p>{}</p>\n<p class=\"hint\">{}</p>\n",
        escape(lang.t(what)),
        escape(lang.t("link.spent_hint"))
    );
    page(
        config,
        lang,
        StatusCode::BAD_REQUEST,
        "link-spent",
        lang.t("link.spent_title"),
        body,
    )
}

fn unavailable(config: &Config, lang: Lang) -> Response {
    let body = format!("<p>{}</p>\n", escape(lang.t("busy.text")));
    let mut response = page(
        config,
        lang,
        StatusCode::SERVICE_UNAVAILABLE,
        "busy",
        lang.t("busy.title"),
        body,
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

fn reset_form(lang: Lang, token: &str, min_length: usize, errors: &[String]) -> String {
    let mut body = String::new();
    for e in errors {
        body.push_str(&paragraph("error", e));
    }
    let min = min_length.to_string();
    let password = |name, label| Field {
        name,
        label,
        kind: "password",
        autocomplete: "new-password",
        hint: None,
        required: true,
        extra: format!("minlength=\"{min_length}\" maxlength=\"128\""),
    };
    let mut new_password = password("new_password", lang.t("reset.new_password"));
    new_password.hint = Some(lang.format("reset.hint", &[("min", &min)]));
    body.push_str(&format!(
        "<form method=\"post\" action=\"/reset-password\">\n\
<input type=\"hidden\" name=\"token\" value=\"{token}\">\n{new}{confirm}\
<button type=\"submit\">{submit}</button>\n</form>\n",
        token = escape(token),
        new = new_password.html(),
        confirm = password("confirm_password", lang.t("reset.confirm")).html(),
        submit = escape(lang.t("reset.submit")),
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
pub async fn reset_page(State(state): State<AppState>, lang: Lang, q: TokenQuery) -> Response {
    let config = &state.config;
    match state.flows.reset_link_is_live(&q.token).await {
        Ok(true) => page(
            config,
            lang,
            StatusCode::OK,
            "reset-password",
            lang.t("reset.title"),
            reset_form(lang, &q.token, config.password.min_length, &[]),
        ),
        Ok(false) => link_spent(config, lang, "link.spent_reset"),
        Err(_) => unavailable(config, lang),
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
    lang: Lang,
    FormBody(form): FormBody<ResetForm>,
) -> Response {
    let config = &state.config;
    let min = config.password.min_length;
    let form_again = |errors: &[String]| {
        page(
            config,
            lang,
            StatusCode::UNPROCESSABLE_ENTITY,
            "reset-password",
            lang.t("reset.title"),
            reset_form(lang, &form.token, min, errors),
        )
    };
    if form.new_password != form.confirm_password {
        return form_again(&[lang.t("reset.mismatch").to_string()]);
    }
    match state
        .flows
        .reset_password(&form.token, &form.new_password, &client)
        .await
    {
        Ok(()) => page(
            config,
            lang,
            StatusCode::OK,
            "reset-done",
            lang.t("reset.done_title"),
            paragraph("ok", lang.t("reset.done")),
        ),
        Err(Error::Validation(details)) => {
            let errors: Vec<String> = details.into_iter().map(|d| d.message).collect();
            form_again(&errors)
        }
        Err(Error::InvalidResetToken) => link_spent(config, lang, "link.spent_reset"),
        Err(Error::Internal(e)) => {
            tracing::error!(error = format!("{e:#}"), "reset page failed");
            unavailable(config, lang)
        }
        Err(_) => unavailable(config, lang),
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
pub async fn verify_page(State(state): State<AppState>, lang: Lang, q: TokenQuery) -> Response {
    let config = &state.config;
    match state.flows.verification_link_is_live(&q.token).await {
        Ok(true) => page(
            config,
            lang,
            StatusCode::OK,
            "verify-email",
            lang.t("verify.title"),
            format!(
                "<p>{hint}</p>\n<form method=\"post\" action=\"/verify-email\">\n<input type=\"hidden\" name=\"token\" value=\"{token}\">\n<button type=\"submit\">{submit}</button>\n</form>\n",
                hint = escape(lang.t("verify.hint")),
                token = escape(&q.token),
                submit = escape(lang.t("verify.submit")),
            ),
        ),
        Ok(false) => link_spent(config, lang, "link.spent_verify"),
        Err(_) => unavailable(config, lang),
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
    lang: Lang,
    FormBody(form): FormBody<VerifyForm>,
) -> Response {
    let config = &state.config;
    match state.flows.verify_email(&form.token, &client).await {
        Ok(_) => page(
            config,
            lang,
            StatusCode::OK,
            "verify-done",
            lang.t("verify.done_title"),
            paragraph("ok", lang.t("verify.done")),
        ),
        Err(Error::InvalidVerificationToken) => link_spent(config, lang, "link.spent_verify"),
        Err(_) => unavailable(config, lang),
    }
}
