//! The pages' settings (SPEC §12): whether they are served, whether anyone
//! may sign up, where `redirect_to` may lead, and the branding.

use super::source::Source;
use super::{ConfigError, PagesConfig};

/// `PAGES_ENABLED` (default `true`): read first, since `REFRESH_COOKIE`
/// defaults to it.
pub(super) fn enabled(src: &Source<'_>) -> Result<bool, ConfigError> {
    src.flag("PAGES_ENABLED", true)
}

/// The pages' settings; `issuer` is `MFA_ISSUER`'s value (the default title).
pub(super) fn read(
    src: &Source<'_>,
    enabled: bool,
    refresh_cookie: bool,
    app_url: &str,
    issuer: String,
) -> Result<PagesConfig, ConfigError> {
    if enabled && !refresh_cookie {
        return Err(ConfigError::new(
            "PAGES_ENABLED",
            "PAGES_ENABLED=true needs REFRESH_COOKIE=true (the pages keep the session in the \
             refresh cookie): set REFRESH_COOKIE=true or PAGES_ENABLED=false",
        ));
    }
    let mut redirect_origins = vec![origin_of(app_url)];
    for entry in src.list("REDIRECT_ORIGINS") {
        let origin = parse_origin(&entry).ok_or_else(|| {
            ConfigError::new(
                "REDIRECT_ORIGINS",
                format!("`{entry}` is not an origin like https://app.example.com"),
            )
        })?;
        redirect_origins.push(origin);
    }
    let accent_color = match src.get("PAGES_ACCENT_COLOR") {
        None => None,
        Some(color) if is_hex_color(&color) => Some(color.to_ascii_lowercase()),
        Some(color) => {
            return Err(ConfigError::new(
                "PAGES_ACCENT_COLOR",
                format!("expected a colour as #rgb or #rrggbb, got {color:?}"),
            ));
        }
    };
    let logo_url = match src.get("PAGES_LOGO_URL") {
        None => None,
        Some(url) if is_logo_url(&url) => Some(url),
        Some(url) => {
            return Err(ConfigError::new(
                "PAGES_LOGO_URL",
                format!(
                    "expected a path starting with one / or a data:image/ URL, got {:?}",
                    url.chars().take(40).collect::<String>()
                ),
            ));
        }
    };
    Ok(PagesConfig {
        enabled,
        redirect_origins,
        title: src.get("PAGES_TITLE").unwrap_or(issuer),
        accent_color,
        logo_url,
    })
}

/// `REGISTRATION_ENABLED` (default `true`).
pub(super) fn registration_enabled(src: &Source<'_>) -> Result<bool, ConfigError> {
    src.flag("REGISTRATION_ENABLED", true)
}

/// `scheme://host[:port]` of an http(s) URL, lowercased, without a default port.
fn origin_of(url: &str) -> String {
    let lower = url.to_ascii_lowercase();
    let (scheme, rest) = lower.split_once("://").unwrap_or(("http", &lower));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    normalise_origin(scheme, authority)
}

/// `authority` without the scheme's default port, after `scheme://`.
pub fn normalise_origin(scheme: &str, authority: &str) -> String {
    let authority = match scheme {
        "https" => authority.strip_suffix(":443").unwrap_or(authority),
        "http" => authority.strip_suffix(":80").unwrap_or(authority),
        _ => authority,
    };
    format!("{scheme}://{authority}")
}

/// An origin as written in `REDIRECT_ORIGINS`: `http(s)://host[:port]`, a
/// trailing `/` allowed, nothing else.
fn parse_origin(entry: &str) -> Option<String> {
    let entry = entry.trim_end_matches('/').to_ascii_lowercase();
    let (scheme, authority) = entry.split_once("://")?;
    let valid = matches!(scheme, "http" | "https")
        && !authority.is_empty()
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
    valid.then(|| normalise_origin(scheme, authority))
}

fn is_hex_color(color: &str) -> bool {
    color
        .strip_prefix('#')
        .is_some_and(|hex| matches!(hex.len(), 3 | 6) && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A same-origin path (one leading `/`) or a `data:image/` URL, with no
/// character that could leave a CSS or HTML attribute.
fn is_logo_url(url: &str) -> bool {
    let safe = url
        .bytes()
        .all(|b| b.is_ascii_graphic() && !b"\"'<>\\`()".contains(&b));
    let path = url.starts_with('/') && !url.starts_with("//");
    safe && (path || url.starts_with("data:image/"))
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn pages(vars: &[(&str, &str)]) -> Result<Config, crate::config::ConfigError> {
        Config::from_vars(vars.iter().copied())
    }

    #[test]
    fn the_refresh_cookie_follows_the_pages() {
        let cfg = pages(&[]).unwrap();
        assert!(cfg.pages.enabled && cfg.refresh_cookie && cfg.registration_enabled);
        let cfg = pages(&[("PAGES_ENABLED", "false")]).unwrap();
        assert!(!cfg.pages.enabled && !cfg.refresh_cookie);
        let err = pages(&[("REFRESH_COOKIE", "false")]).unwrap_err();
        assert_eq!(err.variable, "PAGES_ENABLED");
        assert!(err.problem.contains("REFRESH_COOKIE"), "{err}");
    }

    #[test]
    fn branding_and_origins_are_checked() {
        let cfg = pages(&[
            ("APP_URL", "https://Auth.Example.com:443/x"),
            (
                "REDIRECT_ORIGINS",
                "https://app.example.com/, http://localhost:3000",
            ),
            ("PAGES_ACCENT_COLOR", "#0A7"),
            ("PAGES_LOGO_URL", "/static/logo.svg"),
            ("MFA_ISSUER", "Example"),
        ])
        .unwrap();
        assert_eq!(
            cfg.pages.redirect_origins,
            [
                "https://auth.example.com",
                "https://app.example.com",
                "http://localhost:3000"
            ]
        );
        assert_eq!(cfg.pages.title, "Example");
        assert_eq!(cfg.pages.accent_color.as_deref(), Some("#0a7"));
        for (var, bad) in [
            ("PAGES_ACCENT_COLOR", "red"),
            ("PAGES_ACCENT_COLOR", "#12345"),
            ("PAGES_ACCENT_COLOR", "#123;}"),
            ("PAGES_LOGO_URL", "//evil.example/logo.png"),
            ("PAGES_LOGO_URL", "https://evil.example/logo.png"),
            ("PAGES_LOGO_URL", "javascript:alert(1)"),
            ("PAGES_LOGO_URL", "/logo\".png"),
            ("REDIRECT_ORIGINS", "https://app.example.com/path"),
            ("REDIRECT_ORIGINS", "javascript://x"),
        ] {
            let err = pages(&[(var, bad)]).unwrap_err();
            assert_eq!(err.variable, var, "{bad}");
        }
    }
}
