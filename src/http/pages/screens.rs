//! The pages a person signs in, signs up and manages the account with
//! (SPEC §12). Each is HTML from the server, texts from the catalogue of
//! the person's language; the script (`/assets/portcullis.js`) talks to the
//! JSON API, so the pages follow the API's rules, limits and errors.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::i18n::Lang;
use super::redirect::target_or_default;
use super::render::{Field, Page, error_summary};
use crate::http::AppState;
use crate::mail::escape_html as escape;

/// The `?redirect_to=` of a page, read leniently (a malformed query string
/// is a page without one).
#[derive(Debug, Default)]
pub struct RedirectQuery {
    redirect_to: Option<String>,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for RedirectQuery {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let redirect_to = form_urlencoded::parse(query.as_bytes())
            .find(|(name, _)| name == "redirect_to")
            .map(|(_, value)| value.into_owned());
        Ok(Self { redirect_to })
    }
}

/// `href` of a page with the same (already checked) `redirect_to`.
fn with_redirect(path: &str, target: &str) -> String {
    if target == super::redirect::DEFAULT_TARGET {
        path.to_string()
    } else {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("redirect_to", target)
            .finish();
        format!("{path}?{query}")
    }
}

fn email_field(lang: Lang, autocomplete: &'static str) -> String {
    Field {
        name: "email",
        label: lang.t("form.email"),
        kind: "email",
        autocomplete,
        hint: None,
        required: true,
        extra: "spellcheck=\"false\" autocapitalize=\"none\" maxlength=\"320\"".into(),
    }
    .html()
}

fn button(text: &str) -> String {
    format!("<button type=\"submit\">{}</button>\n", escape(text))
}

/// HTML page: sign in.
///
/// E-mail and password, then the second step when the account has one;
/// afterwards the person goes to `redirect_to` when its origin is allowed
/// (`APP_URL`'s or one of `REDIRECT_ORIGINS`), else to `/account`.
#[utoipa::path(get, path = "/sign-in", tag = "pages",
    params(("redirect_to" = Option<String>, Query, description = "Where to go after signing in (ignored unless its origin is allowed)")),
    responses((status = 200, description = "The page", content(("text/html")))))]
pub async fn sign_in_page(State(state): State<AppState>, lang: Lang, q: RedirectQuery) -> Response {
    let config = &state.config;
    let target = target_or_default(q.redirect_to.as_deref(), &config.pages);
    let t = |key| lang.t(key);
    let mut body = error_summary(lang);
    body.push_str("<div class=\"panel\">\n");
    body.push_str(&format!(
        "<form id=\"sign-in-form\" method=\"post\" action=\"/sign-in\" novalidate data-error-field=\"password\">\n{email}{password}{submit}</form>\n",
        email = email_field(lang, "username webauthn"),
        password = Field {
            name: "password",
            label: t("form.password"),
            kind: "password",
            autocomplete: "current-password",
            hint: None,
            required: true,
            extra: "maxlength=\"128\"".into(),
        }
        .html(),
        submit = button(t("sign_in.submit")),
    ));
    // PASSKEYS: the passkey button ("Sign in with a passkey") and the
    // autofill (conditional mediation) go into this slot; the e-mail field
    // already carries `autocomplete="username webauthn"`.
    body.push_str("<div id=\"passkey-slot\" data-passkey-slot></div>\n");
    body.push_str(&format!(
        "<form id=\"second-step-form\" method=\"post\" action=\"/sign-in\" novalidate data-error-field=\"code\" hidden>\n\
<h2>{title}</h2>\n{code}{submit}\
<button type=\"button\" class=\"secondary\" id=\"start-again\">{again}</button>\n</form>\n",
        title = escape(t("sign_in.second_step_title")),
        code = Field {
            name: "code",
            label: t("sign_in.code"),
            kind: "text",
            autocomplete: "one-time-code",
            hint: Some(t("sign_in.second_step_hint").to_string()),
            required: true,
            extra: "spellcheck=\"false\" autocapitalize=\"none\" maxlength=\"64\"".into(),
        }
        .html(),
        submit = button(t("sign_in.code_submit")),
        again = escape(t("sign_in.start_again")),
    ));
    body.push_str("</div>\n<div class=\"links\" id=\"sign-in-intro\">\n");
    body.push_str(&format!(
        "<p><a href=\"/forgot-password\">{}</a></p>\n",
        escape(t("sign_in.forgot"))
    ));
    if config.registration_enabled {
        body.push_str(&format!(
            "<p>{} <a href=\"{}\">{}</a></p>\n",
            escape(t("sign_in.no_account")),
            escape(&with_redirect("/sign-up", &target)),
            escape(t("sign_in.sign_up"))
        ));
    }
    body.push_str("</div>\n");
    Page {
        status: StatusCode::OK,
        lang,
        name: "sign-in",
        title: t("sign_in.title"),
        body,
        data: vec![("redirect", target)],
    }
    .render(config)
}

/// HTML page: create an account (404 while `REGISTRATION_ENABLED=false`).
///
/// Signs the person in and goes to `redirect_to` (when allowed) or
/// `/account`; while e-mail verification is required it says to open the mail.
#[utoipa::path(get, path = "/sign-up", tag = "pages",
    params(("redirect_to" = Option<String>, Query, description = "Where to go after signing up (ignored unless its origin is allowed)")),
    responses(
        (status = 200, description = "The page", content(("text/html"))),
        (status = 404, description = "Registration is closed (`REGISTRATION_ENABLED=false`)", content(("text/html"))),
    ))]
pub async fn sign_up_page(State(state): State<AppState>, lang: Lang, q: RedirectQuery) -> Response {
    let config = &state.config;
    let t = |key| lang.t(key);
    if !config.registration_enabled {
        return Page {
            status: StatusCode::NOT_FOUND,
            lang,
            name: "not-found",
            title: t("sign_up.disabled_title"),
            body: format!(
                "<p>{}</p>\n<p><a href=\"/sign-in\">{}</a></p>\n",
                escape(t("sign_up.disabled")),
                escape(t("sign_up.sign_in"))
            ),
            data: Vec::new(),
        }
        .render(config);
    }
    let target = target_or_default(q.redirect_to.as_deref(), &config.pages);
    let min = config.password.min_length.to_string();
    let mut body = error_summary(lang);
    body.push_str("<div class=\"panel\">\n");
    body.push_str(&format!(
        "<form id=\"sign-up-form\" method=\"post\" action=\"/sign-up\" novalidate data-error-field=\"email\">\n{email}{name}{password}{submit}</form>\n",
        email = email_field(lang, "email"),
        name = Field {
            name: "name",
            label: t("form.name"),
            kind: "text",
            autocomplete: "name",
            hint: None,
            required: false,
            extra: "maxlength=\"100\"".into(),
        }
        .html(),
        password = Field {
            name: "password",
            label: t("form.new_password"),
            kind: "password",
            autocomplete: "new-password",
            hint: Some(lang.format("form.new_password_hint", &[("min", &min)])),
            required: true,
            extra: format!("minlength=\"{min}\" maxlength=\"128\""),
        }
        .html(),
        submit = button(t("sign_up.submit")),
    ));
    body.push_str(&format!(
        "<div id=\"check-mail\" tabindex=\"-1\" hidden>\n<h2>{title}</h2>\n<p class=\"ok\" role=\"status\">{text}</p>\n</div>\n</div>\n",
        title = escape(t("sign_up.check_mail_title")),
        // The address goes in by script, as text.
        text = escape(t("sign_up.check_mail")).replace("{email}", "<strong data-email></strong>"),
    ));
    body.push_str(&format!(
        "<div class=\"links\" id=\"sign-up-links\"><p>{} <a href=\"{}\">{}</a></p></div>\n",
        escape(t("sign_up.have_account")),
        escape(&with_redirect("/sign-in", &target)),
        escape(t("sign_up.sign_in"))
    ));
    Page {
        status: StatusCode::OK,
        lang,
        name: "sign-up",
        title: t("sign_up.title"),
        body,
        data: vec![("redirect", target)],
    }
    .render(config)
}

/// HTML page: ask for a password-reset link.
#[utoipa::path(get, path = "/forgot-password", tag = "pages",
    responses((status = 200, description = "The page", content(("text/html")))))]
pub async fn forgot_password_page(State(state): State<AppState>, lang: Lang) -> Response {
    let t = |key| lang.t(key);
    let mut body = error_summary(lang);
    body.push_str(&format!(
        "<div class=\"panel\">\n<p id=\"forgot-hint\">{hint}</p>\n\
<form id=\"forgot-form\" method=\"post\" action=\"/forgot-password\" novalidate data-error-field=\"email\">\n{email}{submit}</form>\n\
<div id=\"mail-sent\" tabindex=\"-1\" hidden>\n<h2>{sent_title}</h2>\n<p class=\"ok\" role=\"status\">{sent}</p>\n</div>\n</div>\n\
<div class=\"links\"><p><a href=\"/sign-in\">{back}</a></p></div>\n",
        hint = escape(t("forgot.hint")),
        email = email_field(lang, "email"),
        submit = button(t("forgot.submit")),
        sent_title = escape(t("forgot.sent_title")),
        sent = escape(t("forgot.sent")).replace("{email}", "<strong data-email></strong>"),
        back = escape(t("forgot.back")),
    ));
    Page {
        status: StatusCode::OK,
        lang,
        name: "forgot-password",
        title: t("forgot.title"),
        body,
        data: Vec::new(),
    }
    .render(&state.config)
}

/// HTML page: the account (a person without a session goes to `/sign-in`).
///
/// The page gets an access token from the refresh cookie and keeps it in
/// memory only.
#[utoipa::path(get, path = "/account", tag = "pages",
    responses((status = 200, description = "The page (its script sends a person without a session to `/sign-in`)", content(("text/html")))))]
pub async fn account_page(State(state): State<AppState>, lang: Lang) -> Response {
    let t = |key| lang.t(key);
    let row = |key, field| {
        format!(
            "<dt>{}</dt><dd data-field=\"{field}\"></dd>\n",
            escape(t(key))
        )
    };
    // Sections to come (sessions, second factor, passkeys, events) go
    // after the profile, each a `<section class="panel" id="…">`.
    let body = format!(
        "<p id=\"account-loading\" role=\"status\">{loading}</p>\n\
<div id=\"account\" hidden>\n\
<section class=\"panel\" id=\"profile\" aria-labelledby=\"profile-title\">\n<h2 id=\"profile-title\">{profile}</h2>\n\
<dl class=\"summary\">\n{email}{name}{verified}{created}</dl>\n\
<button type=\"button\" id=\"sign-out\" class=\"secondary\">{sign_out}</button>\n</section>\n\
</div>\n",
        loading = escape(t("shell.loading")),
        profile = escape(t("account.profile")),
        email = row("account.email", "email"),
        name = row("account.name", "name"),
        verified = row("account.verified", "verified"),
        created = row("account.created", "created"),
        sign_out = escape(t("account.sign_out")),
    );
    Page {
        status: StatusCode::OK,
        lang,
        name: "account",
        title: t("account.title"),
        body,
        data: Vec::new(),
    }
    .render(&state.config)
}
