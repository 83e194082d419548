//! Where a page may send a person after signing in (`redirect_to`, SPEC
//! §12): a path on this origin, or a URL whose origin is `APP_URL`'s or one
//! of `REDIRECT_ORIGINS`. Anything else is ignored (the person lands on
//! `/account`): never an open redirect.
//!
//! The check is strict rather than clever: only printable ASCII without
//! `\` is considered, so no browser can read the value differently from
//! this code (browsers turn `\` into `/`, drop tabs and newlines, and trim
//! control characters and spaces).

use crate::config::PagesConfig;

/// Where a person lands when there is no usable `redirect_to`.
pub const DEFAULT_TARGET: &str = "/account";

/// `raw` if a page may send a person there, else `None`.
pub fn allowed_target(raw: &str, pages: &PagesConfig) -> Option<String> {
    if raw.is_empty()
        || raw.len() > 2048
        || !raw.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
    {
        return None;
    }
    if let Some(path) = raw.strip_prefix('/') {
        // `//host` is another origin; `/` alone or `/path` stays here.
        return (!path.starts_with('/')).then(|| raw.to_string());
    }
    let (scheme, rest) = raw.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if !matches!(scheme.as_str(), "http" | "https") {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let plain_host = !authority.is_empty()
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
    if !plain_host {
        // Userinfo (`app@evil`), percent-escapes, an empty host: refused.
        return None;
    }
    let origin = crate::config::normalise_origin(&scheme, &authority.to_ascii_lowercase());
    pages
        .redirect_origins
        .contains(&origin)
        .then(|| raw.to_string())
}

/// The target of `redirect_to` (if any and allowed), else [`DEFAULT_TARGET`].
pub fn target_or_default(raw: Option<&str>, pages: &PagesConfig) -> String {
    raw.and_then(|raw| allowed_target(raw, pages))
        .unwrap_or_else(|| DEFAULT_TARGET.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pages() -> PagesConfig {
        PagesConfig {
            enabled: true,
            redirect_origins: vec![
                "https://auth.example.com".into(),
                "https://app.example.com".into(),
                "http://localhost:3000".into(),
            ],
            title: "Example".into(),
            accent_color: None,
            logo_url: None,
        }
    }

    #[test]
    fn allowed_origins_and_local_paths_pass() {
        for ok in [
            "/",
            "/account",
            "/dashboard?tab=1#top",
            "https://app.example.com",
            "https://app.example.com/",
            "https://APP.example.com/x?y=https://evil.example",
            "HTTPS://app.example.com:443/welcome",
            "https://auth.example.com/account",
            "http://localhost:3000/cb",
        ] {
            assert_eq!(allowed_target(ok, &pages()).as_deref(), Some(ok), "{ok}");
        }
    }

    #[test]
    fn the_classic_open_redirect_spellings_are_refused() {
        for bad in [
            "",
            "//evil.example",
            "//evil.example/account",
            "///evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "\\/evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            " /account",
            "/account ",
            "\u{0}/account",
            "https://evil.example",
            "https://app.example.com.evil.example/",
            "https://app.example.com@evil.example/",
            "https://evil.example@app.example.com/",
            "https://app.example.com:8443/",
            "http://app.example.com/",
            "https://app%2eexample.com/",
            "https:/evil.example",
            "http:/evil.example",
            "https:evil.example",
            "http:\\\\evil.example",
            "https:\\/\\/evil.example",
            "javascript:alert(1)",
            "JavaScript://app.example.com/%0aalert(1)",
            "data:text/html,<script>alert(1)</script>",
            "ftp://app.example.com/",
            "evil.example",
            "app.example.com/account",
            "https://",
            "https:///account",
            "https://аpp.example.com/",
            "/ａccount\u{3000}",
        ] {
            assert_eq!(allowed_target(bad, &pages()), None, "{bad:?}");
        }
        assert_eq!(
            target_or_default(Some("//evil.example"), &pages()),
            "/account"
        );
        assert_eq!(target_or_default(None, &pages()), "/account");
    }
}
