//! The refresh cookie (`REFRESH_COOKIE=true`, SPEC §2 and §6): the refresh
//! token handed to browsers as an `HttpOnly; Secure; SameSite=Strict`
//! cookie scoped to the auth routes, out of reach of the page's scripts.
//!
//! - The answers that open or rotate a session (register, the logins,
//!   `/token`, `/refresh`) set it, with a `Max-Age` of the session's
//!   remaining lifetime (its refresh token's expiry); `/logout` clears it.
//! - `/refresh` takes it when the body carries no token (a body token wins).
//! - [`CsrfCheck`] refuses, with 403 `FORBIDDEN` and before any token is
//!   looked at, a request to those endpoints that a page of another site
//!   made: `Sec-Fetch-Site: cross-site`, or an `Origin` that is neither the
//!   server's own nor one of `CORS_ORIGINS`. A browser attaches both
//!   headers itself, so no extra header is asked of the client; an API
//!   client that sends neither is not a browser and is let through.
//!
//! The body keeps carrying the refresh token, for API clients.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;

use super::AppState;
use crate::clock::now_unix;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::flows::TokenPair;

/// The name of the refresh cookie.
pub const REFRESH_COOKIE_NAME: &str = "portcullis_refresh";

/// `name=value` and the attributes every refresh cookie carries.
fn cookie(config: &Config, value: &str, max_age: i64) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{REFRESH_COOKIE_NAME}={value}; Path={}; Max-Age={max_age}; HttpOnly; Secure; SameSite=Strict",
        config.route_prefix
    ))
    .ok()
}

/// `response` with the refresh token of `pair` as a cookie, when
/// `REFRESH_COOKIE` is on. It lasts as long as the session can be refreshed.
pub fn set_refresh_cookie(config: &Config, mut response: Response, pair: &TokenPair) -> Response {
    if !config.refresh_cookie {
        return response;
    }
    let max_age = (pair.refresh_expires_at - now_unix()).max(0);
    if let Some(value) = cookie(config, &pair.refresh_token, max_age) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// `response` with the refresh cookie cleared, when `REFRESH_COOKIE` is on.
pub fn clear_refresh_cookie(config: &Config, mut response: Response) -> Response {
    if !config.refresh_cookie {
        return response;
    }
    if let Some(value) = cookie(config, "", 0) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// The refresh token in the request's cookies, if any (the first, if the
/// browser sends several: the one of the longest path comes first).
pub fn refresh_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == REFRESH_COOKIE_NAME)
        .map(|(_, value)| value.trim().trim_matches('"').to_string())
        .filter(|value| !value.is_empty())
}

/// Whether a request with `headers` (to `authority`, the host and port it
/// was sent to) was made by a page of another site than the server's own:
/// `Sec-Fetch-Site: cross-site`, an opaque `Origin: null`, or an `Origin`
/// that is neither the server's (the request's own host and port, or
/// `APP_URL`'s) nor one of `CORS_ORIGINS`. Requests without these headers
/// come from API clients, not browsers, and pass.
pub fn is_cross_site(headers: &HeaderMap, authority: Option<&str>, config: &Config) -> bool {
    if headers
        .get("sec-fetch-site")
        .is_some_and(|site| site.as_bytes().eq_ignore_ascii_case(b"cross-site"))
    {
        return true;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let Ok(origin) = origin.to_str() else {
        return true;
    };
    let origin = origin.trim().trim_end_matches('/');
    if config
        .cors_origins
        .iter()
        .any(|allowed| allowed != "*" && allowed.trim_end_matches('/').eq_ignore_ascii_case(origin))
    {
        return false;
    }
    if origin_of(&config.app_url).eq_ignore_ascii_case(origin) {
        return false;
    }
    // The server's own origin: the Origin's host and port are those the
    // request was sent to (the scheme may differ behind a TLS proxy).
    !authority.is_some_and(|own| same_host_and_port(origin, own))
}

/// The origin (`scheme://host[:port]`) of the URL `url`.
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |at| at + 3);
    match url[after_scheme..].find('/') {
        Some(path) => &url[..after_scheme + path],
        None => url,
    }
}

/// Whether the origin `scheme://host[:port]` names the host and port of
/// the authority `host[:port]`, a missing port being the scheme's default.
fn same_host_and_port(origin: &str, authority: &str) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => 80,
        "https" => 443,
        _ => return false,
    };
    match (
        host_and_port(rest, default_port),
        host_and_port(authority, default_port),
    ) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// The lower-cased host and the port of `host[:port]` (`[v6]:port` for
/// IPv6), `default_port` when there is none.
fn host_and_port(authority: &str, default_port: u16) -> Option<(String, u16)> {
    let authority = authority.trim().to_ascii_lowercase();
    if authority.is_empty() || authority.contains(['/', '@']) {
        return None;
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') || host.ends_with(']') => {
            (host.to_string(), port.parse().ok()?)
        }
        _ => (authority, default_port),
    };
    Some((host, port))
}

/// Refuses a cross-site request (see [`is_cross_site`]) with 403
/// `FORBIDDEN` while `REFRESH_COOKIE` is on, before the handler reads a
/// body or a token. Every endpoint that sets or clears the refresh cookie
/// takes it first: a page of another site can neither spend the cookie nor
/// plant a session of its choosing in the browser.
#[derive(Debug, Clone, Copy)]
pub struct CsrfCheck;

impl<S> FromRequestParts<S> for CsrfCheck
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        let state = AppState::from_ref(state);
        if !state.config.refresh_cookie {
            return Ok(CsrfCheck);
        }
        let authority = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| parts.uri.authority().map(|a| a.as_str()));
        if is_cross_site(&parts.headers, authority, &state.config) {
            metrics::counter!("portcullis_cross_site_refused_total").increment(1);
            return Err(Error::CrossSite);
        }
        Ok(CsrfCheck)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Config {
        let mut all = vec![
            ("REFRESH_COOKIE", "true"),
            ("APP_URL", "https://auth.example.com"),
        ];
        all.extend_from_slice(vars);
        Config::from_vars(all).unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn origins_other_than_the_servers_own_are_cross_site() {
        let cfg = config(&[("CORS_ORIGINS", "https://app.example.com")]);
        let own = Some("127.0.0.1:8000");
        let cross = |pairs: &[(&'static str, &str)]| is_cross_site(&headers(pairs), own, &cfg);
        assert!(!cross(&[]), "an API client sends neither header");
        assert!(!cross(&[("origin", "http://127.0.0.1:8000")]));
        assert!(!cross(&[
            ("origin", "http://127.0.0.1:8000"),
            ("sec-fetch-site", "same-origin")
        ]));
        assert!(!cross(&[("origin", "https://auth.example.com")]), "APP_URL");
        assert!(
            !cross(&[("origin", "https://app.example.com")]),
            "CORS_ORIGINS"
        );
        assert!(
            cross(&[("origin", "http://127.0.0.1:8001")]),
            "another port"
        );
        assert!(cross(&[("origin", "http://evil.example")]));
        assert!(cross(&[("origin", "null")]));
        assert!(cross(&[("sec-fetch-site", "cross-site")]));
        assert!(cross(&[
            ("origin", "http://127.0.0.1:8000"),
            ("sec-fetch-site", "cross-site")
        ]));
        let any = config(&[("CORS_ORIGINS", "*")]);
        assert!(
            is_cross_site(&headers(&[("origin", "http://evil.example")]), own, &any),
            "`*` allows no credentials"
        );
        // Default ports.
        assert!(!is_cross_site(
            &headers(&[("origin", "https://auth.example.net")]),
            Some("auth.example.net:443"),
            &cfg
        ));
        assert!(!is_cross_site(
            &headers(&[("origin", "http://[::1]:8000")]),
            Some("[::1]:8000"),
            &cfg
        ));
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let h = headers(&[("cookie", "a=1; portcullis_refresh=abc.def.ghi; b=2")]);
        assert_eq!(refresh_cookie(&h).as_deref(), Some("abc.def.ghi"));
        assert_eq!(refresh_cookie(&headers(&[("cookie", "a=1")])), None);
        assert_eq!(
            refresh_cookie(&headers(&[("cookie", "portcullis_refresh=")])),
            None
        );
    }
}
