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
    // The passkey button (when the server has a relying party); the script
    // shows it where the browser can use passkeys, and starts the autofill
    // (conditional mediation) through the e-mail field's
    // `autocomplete="username webauthn"`.
    if state.flows.webauthn.is_some() {
        body.push_str(&format!(
        "<div id=\"passkey-slot\" class=\"passkey-slot\" hidden>\n<p class=\"or\"><span>{or}</span></p>\n\
<p class=\"error\" id=\"passkey-error\" role=\"alert\" hidden></p>\n\
<p class=\"notice\" id=\"passkey-notice\" role=\"status\" hidden></p>\n\
<button type=\"button\" class=\"secondary passkey\" id=\"passkey-sign-in\">{passkey}</button>\n</div>\n",
        or = escape(t("sign_in.or")),
        passkey = escape(t("sign_in.passkey")),
    ));
    }
    body.push_str(&format!(
        "<form id=\"second-step-form\" method=\"post\" action=\"/sign-in\" novalidate data-error-field=\"code\" hidden>\n\
<h2>{title}</h2>\n\
<div id=\"second-step-passkey\" class=\"passkey-slot\" hidden>\n\
<p class=\"error\" id=\"second-passkey-error\" role=\"alert\" hidden></p>\n\
<p class=\"notice\" id=\"second-passkey-notice\" role=\"status\" hidden></p>\n\
<button type=\"button\" class=\"passkey\" id=\"use-passkey\">{use_passkey}</button>\n\
<p class=\"or\"><span>{or_code}</span></p>\n</div>\n{code}{submit}\
<button type=\"button\" class=\"secondary\" id=\"start-again\">{again}</button>\n</form>\n",
        title = escape(t("sign_in.second_step_title")),
        use_passkey = escape(t("sign_in.use_passkey")),
        or_code = escape(t("sign_in.or_code")),
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
    // Sections to come (the security events) go after the passkeys,
    // each a `<section class="panel" id="…">`.
    let mut body = format!(
        "<p id=\"account-loading\" role=\"status\">{loading}</p>\n\
<div id=\"account\" hidden>\n\
<section class=\"panel\" id=\"profile\" aria-labelledby=\"profile-title\">\n<h2 id=\"profile-title\">{profile}</h2>\n\
<dl class=\"summary\">\n{email}{name}{verified}{created}</dl>\n\
<button type=\"button\" id=\"sign-out\" class=\"secondary\">{sign_out}</button>\n</section>\n",
        loading = escape(t("shell.loading")),
        profile = escape(t("account.profile")),
        email = row("account.email", "email"),
        name = row("account.name", "name"),
        verified = row("account.verified", "verified"),
        created = row("account.created", "created"),
        sign_out = escape(t("account.sign_out")),
    );
    body.push_str(&sessions_section(lang));
    body.push_str(&mfa_section(lang));
    if state.flows.webauthn.is_some() {
        body.push_str(&passkeys_section(lang));
    }
    body.push_str("</div>\n");
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

/// The account's passkeys: the list (which the script fills, each with
/// its rename and remove buttons), the forms to rename and remove one
/// (shown for the passkey chosen) and the form to add one.
fn passkeys_section(lang: Lang) -> String {
    let t = |key| lang.t(key);
    let password = |name| Field {
        name,
        label: t("account.passkey_password"),
        kind: "password",
        autocomplete: "current-password",
        hint: None,
        required: true,
        extra: "maxlength=\"128\"".into(),
    };
    let name = |name, label, hint: Option<String>, required| Field {
        name,
        label,
        kind: "text",
        autocomplete: "off",
        hint,
        required,
        extra: "maxlength=\"64\"".into(),
    };
    format!(
        "<section class=\"panel\" id=\"passkeys\" aria-labelledby=\"passkeys-title\">\n\
<h2 id=\"passkeys-title\">{title}</h2>\n<p class=\"hint\">{intro}</p>\n\
<p class=\"notice\" id=\"passkeys-status\" role=\"status\" tabindex=\"-1\" hidden></p>\n\
<p class=\"error\" id=\"passkeys-error\" role=\"alert\" hidden></p>\n\
<p id=\"passkeys-empty\" hidden>{none}</p>\n<ul class=\"passkeys\" id=\"passkey-list\"></ul>\n\
<form id=\"passkey-rename-form\" class=\"sub-form\" novalidate data-error-field=\"passkey_new_name\" hidden>\n\
<h3 tabindex=\"-1\">{rename_title}</h3>\n{new_name}\
<button type=\"submit\">{save}</button>\n<button type=\"button\" class=\"secondary\" data-cancel>{cancel}</button>\n</form>\n\
<form id=\"passkey-remove-form\" class=\"sub-form\" novalidate data-error-field=\"passkey_remove_password\" hidden>\n\
<h3 tabindex=\"-1\">{remove_title}</h3>\n<p>{remove_hint}</p>\n{remove_password}\
<button type=\"submit\" class=\"danger\">{remove}</button>\n<button type=\"button\" class=\"secondary\" data-cancel>{cancel}</button>\n</form>\n\
<form id=\"passkey-add-form\" class=\"sub-form\" novalidate data-error-field=\"passkey_password\">\n\
<h3>{add_title}</h3>\n{add_name}{add_password}<button type=\"submit\">{add}</button>\n</form>\n</section>\n",
        title = escape(t("account.passkeys")),
        intro = escape(t("account.passkeys_intro")),
        none = escape(t("account.passkeys_none")),
        rename_title = escape(t("account.passkey_rename_title")),
        new_name = name(
            "passkey_new_name",
            t("account.passkey_new_name"),
            None,
            true
        )
        .html(),
        save = escape(t("account.passkey_save")),
        cancel = escape(t("account.cancel")),
        remove_title = escape(t("account.passkey_remove_title")),
        remove_hint = escape(t("account.passkey_remove_hint")),
        remove_password = password("passkey_remove_password").html(),
        remove = escape(t("account.passkey_remove")),
        add_title = escape(t("account.passkey_add_title")),
        add_name = name(
            "passkey_name",
            t("account.passkey_name"),
            Some(t("account.passkey_name_hint").to_string()),
            false
        )
        .html(),
        add_password = password("passkey_password").html(),
        add = escape(t("account.passkey_add")),
    )
}

/// The account's open sessions: the list the script fills (the current one
/// marked "This device" with `aria-current`, a revoke button on the others).
fn sessions_section(lang: Lang) -> String {
    let t = |key| lang.t(key);
    format!(
        "<section class=\"panel\" id=\"sessions\" aria-labelledby=\"sessions-title\">\n\
<h2 id=\"sessions-title\">{title}</h2>\n<p class=\"hint\">{intro}</p>\n\
<p class=\"notice\" id=\"sessions-status\" role=\"status\" tabindex=\"-1\" hidden></p>\n\
<p class=\"error\" id=\"sessions-error\" role=\"alert\" hidden></p>\n\
<ul class=\"passkeys sessions\" id=\"session-list\"></ul>\n</section>\n",
        title = escape(t("account.sessions")),
        intro = escape(t("account.sessions_intro")),
    )
}

/// A code field of the second-factor forms (`one-time-code`).
fn code_field(name: &'static str, label: &str, hint: Option<String>, totp_only: bool) -> String {
    Field {
        name,
        label,
        kind: "text",
        autocomplete: "one-time-code",
        hint,
        required: true,
        extra: if totp_only {
            "inputmode=\"numeric\" maxlength=\"6\" spellcheck=\"false\"".into()
        } else {
            "maxlength=\"64\" spellcheck=\"false\" autocapitalize=\"none\"".into()
        },
    }
    .html()
}

/// The second factor: its status, and the forms to turn TOTP on (password,
/// then the QR code, the secret and a code; the recovery codes shown once),
/// to get new recovery codes and to turn it off.
fn mfa_section(lang: Lang) -> String {
    let t = |key| lang.t(key);
    let buttons = |submit: &str, class: &str| {
        format!(
            "<button type=\"submit\"{class}>{}</button>\n<button type=\"button\" class=\"secondary\" data-cancel>{}</button>\n",
            escape(submit),
            escape(t("account.cancel")),
        )
    };
    let password = Field {
        name: "mfa_password",
        label: t("account.passkey_password"),
        kind: "password",
        autocomplete: "current-password",
        hint: None,
        required: true,
        extra: "maxlength=\"128\"".into(),
    }
    .html();
    format!(
        "<section class=\"panel\" id=\"mfa\" aria-labelledby=\"mfa-title\">\n\
<h2 id=\"mfa-title\">{title}</h2>\n<p class=\"hint\">{intro}</p>\n\
<p class=\"notice\" id=\"mfa-status\" role=\"status\" tabindex=\"-1\" hidden></p>\n\
<p class=\"error\" id=\"mfa-error\" role=\"alert\" hidden></p>\n\
<p id=\"mfa-state\"></p>\n\
<div id=\"mfa-off\" class=\"actions\" hidden><button type=\"button\" id=\"mfa-turn-on\">{turn_on}</button></div>\n\
<div id=\"mfa-on\" class=\"actions\" hidden><button type=\"button\" class=\"secondary\" id=\"mfa-new-codes\">{new_codes}</button>\n\
<button type=\"button\" class=\"danger\" id=\"mfa-turn-off\">{off}</button></div>\n\
<form id=\"mfa-setup-form\" class=\"sub-form\" novalidate data-error-field=\"mfa_password\" hidden>\n\
<h3 tabindex=\"-1\">{setup_title}</h3>\n<p>{setup_hint}</p>\n{password}{setup_buttons}</form>\n\
<form id=\"mfa-confirm-form\" class=\"sub-form\" novalidate data-error-field=\"mfa_code\" hidden>\n\
<h3 tabindex=\"-1\">{scan_title}</h3>\n<p>{scan_hint}</p>\n\
<img id=\"mfa-qr\" class=\"qr\" alt=\"{qr_alt}\" width=\"200\" height=\"200\">\n\
<p>{secret_hint}</p>\n<p><code id=\"mfa-secret\" class=\"secret\"></code></p>\n\
{code}{confirm_buttons}</form>\n\
<div id=\"mfa-codes\" class=\"sub-form\" hidden>\n<h3 id=\"mfa-codes-title\" tabindex=\"-1\">{codes_title}</h3>\n\
<p>{codes_hint}</p>\n<ol class=\"codes\" id=\"mfa-code-list\"></ol>\n\
<button type=\"button\" id=\"mfa-codes-done\">{codes_done}</button>\n</div>\n\
<form id=\"mfa-regenerate-form\" class=\"sub-form\" novalidate data-error-field=\"mfa_regenerate_code\" hidden>\n\
<h3 tabindex=\"-1\">{regenerate_title}</h3>\n<p>{regenerate_hint}</p>\n{regenerate_code}{regenerate_buttons}</form>\n\
<form id=\"mfa-disable-form\" class=\"sub-form\" novalidate data-error-field=\"mfa_disable_code\" hidden>\n\
<h3 tabindex=\"-1\">{disable_title}</h3>\n<p>{disable_hint}</p>\n{disable_code}{disable_buttons}</form>\n\
</section>\n",
        title = escape(t("account.mfa")),
        intro = escape(t("account.mfa_intro")),
        turn_on = escape(t("account.mfa_turn_on")),
        new_codes = escape(t("account.mfa_new_codes")),
        off = escape(t("account.mfa_off")),
        setup_title = escape(t("account.mfa_setup_title")),
        setup_hint = escape(t("account.mfa_setup_hint")),
        setup_buttons = buttons(t("account.mfa_continue"), ""),
        scan_title = escape(t("account.mfa_scan_title")),
        scan_hint = escape(t("account.mfa_scan_hint")),
        qr_alt = escape(t("account.mfa_qr_alt")),
        secret_hint = escape(t("account.mfa_secret_hint")),
        code = code_field("mfa_code", t("account.mfa_code"), None, true),
        confirm_buttons = buttons(t("account.mfa_turn_on"), ""),
        codes_title = escape(t("account.mfa_codes_title")),
        codes_hint = escape(t("account.mfa_codes_hint")),
        codes_done = escape(t("account.mfa_codes_done")),
        regenerate_title = escape(t("account.mfa_new_codes")),
        regenerate_hint = escape(t("account.mfa_regenerate_hint")),
        regenerate_code = code_field("mfa_regenerate_code", t("account.mfa_code"), None, true),
        regenerate_buttons = buttons(t("account.mfa_new_codes"), ""),
        disable_title = escape(t("account.mfa_turn_off")),
        disable_hint = escape(t("account.mfa_disable_hint")),
        disable_code = code_field(
            "mfa_disable_code",
            t("account.mfa_disable_code"),
            None,
            false
        ),
        disable_buttons = buttons(t("account.mfa_turn_off"), " class=\"danger\""),
    )
}
