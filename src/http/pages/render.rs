//! The shell every page shares: the header with the title and logo, the
//! main column, the footer, and the headers that keep a page safe (SPEC
//! §12). Every text goes through [`escape`]; styles and scripts are files
//! (`/assets/…`), so the CSP allows no inline code at all.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::i18n::Lang;
use super::{SCRIPT_PATH, STYLESHEET_PATH};
use crate::config::Config;
use crate::mail::escape_html as escape;

/// The CSP of the pages when they are on (SPEC §12).
pub const PAGES_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// The CSP of the two mailed-link pages when the other pages are off: no
/// script and nothing else from anywhere.
pub const LINKS_ONLY_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// One page to render.
pub struct Page<'a> {
    /// The status of the answer.
    pub status: StatusCode,
    /// Its language.
    pub lang: Lang,
    /// Which page (`data-page`, which the script reads).
    pub name: &'a str,
    /// The heading and the first part of `<title>`, as text.
    pub title: &'a str,
    /// The main column's HTML (everything in it already escaped).
    pub body: String,
    /// More `data-*` attributes of `<body>` for the script, as text.
    pub data: Vec<(&'static str, String)>,
}

impl Page<'_> {
    /// The page as an answer, with the headers of SPEC §12.
    pub fn render(self, config: &Config) -> Response {
        let pages = &config.pages;
        let script = if pages.enabled {
            format!("<script src=\"{SCRIPT_PATH}\" defer></script>\n")
        } else {
            String::new()
        };
        let mut data = format!(
            " data-page=\"{}\" data-prefix=\"{}\"",
            escape(self.name),
            escape(&config.route_prefix)
        );
        if pages.enabled {
            data.push_str(&format!(
                " data-texts=\"{}\"",
                escape(&self.lang.script_texts())
            ));
        }
        for (name, value) in &self.data {
            data.push_str(&format!(" data-{name}=\"{}\"", escape(value)));
        }
        let logo = pages
            .logo_url
            .as_deref()
            .map(|url| format!("<img class=\"logo\" src=\"{}\" alt=\"\">", escape(url)))
            .unwrap_or_default();
        let brand = if pages.enabled {
            format!(
                "<a class=\"brand\" href=\"/account\">{logo}<span>{}</span></a>",
                escape(&pages.title)
            )
        } else {
            format!(
                "<span class=\"brand\">{logo}<span>{}</span></span>",
                escape(&pages.title)
            )
        };
        let t = |key| self.lang.t(key);
        let html = format!(
            "<!doctype html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<meta name=\"referrer\" content=\"no-referrer\">\n<meta name=\"color-scheme\" content=\"light dark\">\n\
<title>{title} – {site}</title>\n<link rel=\"stylesheet\" href=\"{STYLESHEET_PATH}\">\n{script}</head>\n\
<body{data}>\n<a class=\"skip\" href=\"#main\">{skip}</a>\n<header class=\"site\"><div class=\"bar\">{brand}</div></header>\n\
<main id=\"main\" tabindex=\"-1\">\n<h1>{title}</h1>\n{body}</main>\n\
<footer class=\"site\"><p>{footer}</p></footer>\n</body>\n</html>\n",
            lang = self.lang.0,
            title = escape(self.title),
            site = escape(&pages.title),
            skip = escape(t("shell.skip")),
            footer = escape(t("shell.footer")),
            body = self.body,
        );
        let mut response = (self.status, html).into_response();
        let csp = if pages.enabled {
            PAGES_CSP
        } else {
            LINKS_ONLY_CSP
        };
        let headers = response.headers_mut();
        for (name, value) in [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, csp),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::VARY, "Accept-Language"),
        ] {
            headers.insert(name, HeaderValue::from_static(value));
        }
        response
    }
}

/// `<p>` with `text`, escaped: `role="alert"` for the `error` class,
/// `role="status"` otherwise.
pub fn paragraph(class: &str, text: &str) -> String {
    format!(
        "<p class=\"{class}\" role=\"{role}\">{}</p>\n",
        escape(text),
        role = if class == "error" { "alert" } else { "status" }
    )
}

/// The error summary the script fills (hidden until then).
pub fn error_summary(lang: Lang) -> String {
    format!(
        "<div class=\"error-summary\" id=\"error-summary\" tabindex=\"-1\" aria-labelledby=\"error-summary-title\" hidden>\n\
<h2 id=\"error-summary-title\">{}</h2>\n<ul></ul>\n</div>\n",
        escape(lang.t("form.problem"))
    )
}

/// A labelled input with its error line (which the script fills).
pub struct Field<'a> {
    /// `id` and `name`.
    pub name: &'a str,
    /// The label, as text.
    pub label: &'a str,
    /// `type`.
    pub kind: &'a str,
    /// `autocomplete`.
    pub autocomplete: &'a str,
    /// A hint under the label, as text.
    pub hint: Option<String>,
    /// `required`.
    pub required: bool,
    /// More attributes, already escaped (e.g. `minlength="12"`).
    pub extra: String,
}

impl Field<'_> {
    /// The field's HTML.
    pub fn html(&self) -> String {
        let name = escape(self.name);
        let mut described = vec![format!("{name}-error")];
        let hint = match &self.hint {
            Some(hint) => {
                described.insert(0, format!("{name}-hint"));
                format!(
                    "<p class=\"hint\" id=\"{name}-hint\">{}</p>\n",
                    escape(hint)
                )
            }
            None => String::new(),
        };
        format!(
            "<div class=\"field\">\n<label for=\"{name}\">{label}</label>\n{hint}\
<p class=\"field-error\" id=\"{name}-error\" role=\"alert\" hidden></p>\n\
<input id=\"{name}\" name=\"{name}\" type=\"{kind}\" autocomplete=\"{autocomplete}\"{required} aria-describedby=\"{described}\"{extra}>\n</div>\n",
            label = escape(self.label),
            kind = escape(self.kind),
            autocomplete = escape(self.autocomplete),
            required = if self.required { " required" } else { "" },
            described = described.join(" "),
            extra = if self.extra.is_empty() {
                String::new()
            } else {
                format!(" {}", self.extra)
            },
        )
    }
}
