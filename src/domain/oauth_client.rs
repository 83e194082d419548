//! Applications registered for Sign in with Portcullis (SPEC §13): their
//! redirect URIs, how those are checked when registered, and how a
//! presented `redirect_uri` is matched against them.
//!
//! Decisions (RFC 6749 §3.1.2, OAuth 2.1 draft, RFC 8252, RFC 9700):
//!
//! - **Matching is by exact string comparison**: no normalisation, no case
//!   folding, no trailing-slash, query or default-port leniency. One
//!   exception: for a *public* client only, a loopback redirect URI
//!   registered without a port on an IP literal (`http://127.0.0.1/cb`,
//!   `http://[::1]/cb`) matches the same URI with any port (RFC 8252 §7.3:
//!   native apps listen on an ephemeral port). Everything else (scheme,
//!   host, path, query) must still be identical.
//! - `localhost` gets no port leniency: RFC 8252 §8.3 calls it NOT
//!   RECOMMENDED (the name can resolve elsewhere or be firewalled), so only
//!   the IP literals do. `http://localhost…` may still be registered (a
//!   web application under development) and then matches exactly, port
//!   included.
//! - **Registration**: at most [`MAX_REDIRECT_URIS`] URIs of at most
//!   [`MAX_URI_CHARS`] characters, absolute, with no fragment (RFC 6749
//!   §3.1.2), no user or password, no whitespace or control characters. The
//!   scheme is `https`; or `http` with a loopback host (`127.0.0.1`,
//!   `[::1]`, `localhost`); or, for public clients only, a private-use
//!   scheme in reverse-domain form with a dot (`com.example.app:/cb`, RFC
//!   8252 §7.1). `javascript:`, `data:`, `file:` and the like are refused.

use webauthn_rs::prelude::Url;

use crate::error::FieldError;

/// Most redirect URIs (and post-logout redirect URIs) one client registers.
pub const MAX_REDIRECT_URIS: usize = 20;
/// Longest accepted redirect URI, in characters.
pub const MAX_URI_CHARS: usize = 2000;
/// Longest accepted client name, in characters.
pub const MAX_CLIENT_NAME_CHARS: usize = 100;

/// The loopback IP literals whose port a public client may choose freely.
const PORTLESS_LOOPBACK: [&str; 2] = ["http://127.0.0.1/", "http://[::1]/"];

/// Schemes that are never a redirect target, even in reverse-domain form.
const FORBIDDEN_SCHEMES: [&str; 6] = ["javascript", "data", "file", "vbscript", "about", "blob"];

/// A registered client as the flows see it (no secret: only its hash is kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthClient {
    /// The opaque, random `client_id`.
    pub client_id: String,
    /// The application's name (shown on consent pages and session lists).
    pub name: String,
    /// Whether it authenticates with a secret (a server-side application).
    pub confidential: bool,
    /// Whether it skips the consent page (an operator's own application).
    pub first_party: bool,
    /// Where authorization answers may be sent.
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may send the browser.
    pub post_logout_redirect_uris: Vec<String>,
    /// When it was registered (Unix seconds).
    pub created_at: i64,
    /// When it was last changed (Unix seconds).
    pub updated_at: i64,
}

impl OAuthClient {
    /// Whether `presented` is one of this client's redirect URIs (see the
    /// module's rules).
    pub fn accepts_redirect_uri(&self, presented: &str) -> bool {
        self.redirect_uris
            .iter()
            .any(|registered| redirect_uri_matches(registered, presented, !self.confidential))
    }

    /// Whether `presented` is one of this client's post-logout redirect
    /// URIs (exact match only).
    pub fn accepts_post_logout_redirect_uri(&self, presented: &str) -> bool {
        self.post_logout_redirect_uris
            .iter()
            .any(|registered| registered == presented)
    }
}

/// Whether a presented redirect URI matches a registered one: exactly, or,
/// when `public`, a port-less loopback IP literal with any port added.
pub fn redirect_uri_matches(registered: &str, presented: &str, public: bool) -> bool {
    if registered == presented {
        return true;
    }
    if !public {
        return false;
    }
    for prefix in PORTLESS_LOOPBACK {
        // `http://127.0.0.1/cb` registered: `http://127.0.0.1:<port>/cb`.
        let Some(path) = registered.strip_prefix(prefix) else {
            continue;
        };
        let host = &prefix[..prefix.len() - 1];
        let Some(rest) = presented
            .strip_prefix(host)
            .and_then(|r| r.strip_prefix(':'))
        else {
            return false;
        };
        let Some((port, presented_path)) = rest.split_once('/') else {
            return false;
        };
        return is_port(port) && presented_path == path;
    }
    false
}

/// A port as a URI writes it: 1 to 5 digits, no sign, from 1 to 65535.
fn is_port(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 5
        && text.bytes().all(|b| b.is_ascii_digit())
        && text.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p))
}

/// Checks a list of redirect URIs for registration (see the module's
/// rules); every problem is reported, under `field` (`redirect_uris`).
/// `required`: at least one must be given.
pub fn check_redirect_uris(
    uris: &[String],
    public: bool,
    field: &str,
    required: bool,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if required && uris.is_empty() {
        errors.push(FieldError::new(field, "At least one URI is required"));
    }
    if uris.len() > MAX_REDIRECT_URIS {
        errors.push(FieldError::new(
            field,
            format!("At most {MAX_REDIRECT_URIS} URIs"),
        ));
    }
    for uri in uris {
        if let Err(why) = check_redirect_uri(uri, public) {
            errors.push(FieldError::new(field, format!("{uri:?}: {why}")));
        }
    }
    errors
}

/// Checks one redirect URI for registration: `Err` says why it is refused.
pub fn check_redirect_uri(uri: &str, public: bool) -> Result<(), &'static str> {
    if uri.chars().count() > MAX_URI_CHARS {
        return Err("longer than 2000 characters");
    }
    if uri.is_empty() || uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must be a URI without spaces or control characters");
    }
    if uri.contains('#') {
        return Err("must not contain a fragment");
    }
    if uri.contains('\\') {
        return Err("must not contain a backslash");
    }
    let url = Url::parse(uri).map_err(|_| "must be an absolute URI")?;
    if url.cannot_be_a_base() && url.scheme() != "http" && url.scheme() != "https" {
        // `mailto:x`, `urn:…`: no path to come back to.
        if !uri.contains(":/") {
            return Err("must be an absolute URI with a path");
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain a user name or password");
    }
    if matches!(url.scheme(), "http" | "https") {
        // What the URL parser forgives (`https:host/`, `https:///host/`) is
        // not a URI a browser would be sent to as written.
        let after = uri.split_once("://").map(|(_, rest)| rest);
        if after.is_none_or(|rest| rest.is_empty() || rest.starts_with('/')) {
            return Err("must be an absolute URI (scheme://host/path)");
        }
    }
    match url.scheme() {
        "https" => {
            if url.host_str().is_none_or(str::is_empty) {
                return Err("must name a host");
            }
            Ok(())
        }
        "http" => match url.host_str() {
            Some("127.0.0.1" | "[::1]" | "localhost") => Ok(()),
            _ => Err("http is only allowed for loopback (127.0.0.1, [::1], localhost); use https"),
        },
        scheme if FORBIDDEN_SCHEMES.contains(&scheme) => Err("this scheme is not allowed"),
        scheme if !scheme.contains('.') => Err(
            "must use https, http on loopback, or a private-use scheme in reverse-domain form (com.example.app:/cb)",
        ),
        _ if !public => Err("private-use schemes are for public (native) clients only; use https"),
        _ => Ok(()),
    }
}

/// Checks a client's name: trimmed, 1 to 100 characters, no control
/// characters.
pub fn check_client_name(raw: &str, field: &str) -> Result<String, FieldError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(FieldError::new(field, "Name is required"));
    }
    if name.chars().count() > MAX_CLIENT_NAME_CHARS {
        return Err(FieldError::new(
            field,
            "Name must be at most 100 characters",
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            "Name must not contain control characters",
        ));
    }
    Ok(name.to_string())
}

/// Constant-time equality of two byte strings of public length (hashes).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const REG: &str = "https://app.example.com/callback";

    #[test]
    fn exact_match_only() {
        assert!(redirect_uri_matches(REG, REG, false));
        assert!(redirect_uri_matches(REG, REG, true));
        for other in [
            // One character more, less or different.
            "https://app.example.com/callbac",
            "https://app.example.com/callbackx",
            "https://app.example.com/callbacj",
            "https://app.example.co/callback",
            "https://app.example.comm/callback",
            "http://app.example.com/callback",
            // Case.
            "https://APP.example.com/callback",
            "https://app.example.com/Callback",
            "HTTPS://app.example.com/callback",
            // Trailing slash, query, fragment, port.
            "https://app.example.com/callback/",
            "https://app.example.com/callback?x=1",
            "https://app.example.com/callback?",
            "https://app.example.com/callback#",
            "https://app.example.com/callback#x",
            "https://app.example.com:443/callback",
            "https://app.example.com:8443/callback",
            // Userinfo, look-alike hosts, paths that extend it.
            "https://evil@app.example.com/callback",
            "https://app.example.com@evil.example/callback",
            "https://app.example.com.evil.example/callback",
            "https://app.example.com/callback/../callback",
            "https://app.example.com/callback%2F",
            " https://app.example.com/callback",
            "",
        ] {
            assert!(!redirect_uri_matches(REG, other, false), "{other}");
            assert!(!redirect_uri_matches(REG, other, true), "{other}");
        }
    }

    #[test]
    fn registered_query_must_be_identical() {
        let reg = "https://a.example/cb?tenant=1";
        assert!(redirect_uri_matches(reg, reg, false));
        assert!(!redirect_uri_matches(
            reg,
            "https://a.example/cb?tenant=2",
            false
        ));
        assert!(!redirect_uri_matches(
            reg,
            "https://a.example/cb?tenant=1&x=1",
            false
        ));
        assert!(!redirect_uri_matches(reg, "https://a.example/cb", false));
    }

    #[test]
    fn loopback_any_port_for_public_clients_only() {
        for (reg, with_port) in [
            ("http://127.0.0.1/cb", "http://127.0.0.1:51004/cb"),
            ("http://[::1]/cb", "http://[::1]:8080/cb"),
            ("http://127.0.0.1/", "http://127.0.0.1:1/"),
            ("http://127.0.0.1/cb?x=1", "http://127.0.0.1:65535/cb?x=1"),
        ] {
            assert!(redirect_uri_matches(reg, with_port, true), "{with_port}");
            assert!(redirect_uri_matches(reg, reg, true));
            // Confidential clients: exact only.
            assert!(!redirect_uri_matches(reg, with_port, false), "{with_port}");
        }
        let reg = "http://127.0.0.1/cb";
        for bad in [
            "http://127.0.0.1:0/cb",
            "http://127.0.0.1:65536/cb",
            "http://127.0.0.1:/cb",
            "http://127.0.0.1:+80/cb",
            "http://127.0.0.1:80x/cb",
            "http://127.0.0.1:8080/cb/",
            "http://127.0.0.1:8080/cbx",
            "http://127.0.0.1:8080/c",
            "http://127.0.0.1:8080/cb?x=1",
            "http://127.0.0.1:8080/cb#x",
            "http://127.0.0.1:8080",
            "http://127.0.0.2:8080/cb",
            "https://127.0.0.1:8080/cb",
            "http://127.0.0.1:8080@evil.example/cb",
            "http://[::1]:8080/cb",
            "http://localhost:8080/cb",
        ] {
            assert!(!redirect_uri_matches(reg, bad, true), "{bad}");
        }
        // A port registered is matched exactly; localhost never varies.
        assert!(!redirect_uri_matches(
            "http://127.0.0.1:8080/cb",
            "http://127.0.0.1:8081/cb",
            true
        ));
        assert!(!redirect_uri_matches(
            "http://localhost/cb",
            "http://localhost:8080/cb",
            true
        ));
    }

    #[test]
    fn client_accepts_its_uris() {
        let client = OAuthClient {
            client_id: "c".into(),
            name: "n".into(),
            confidential: false,
            first_party: false,
            redirect_uris: vec![REG.into(), "http://127.0.0.1/cb".into()],
            post_logout_redirect_uris: vec!["https://app.example.com/bye".into()],
            created_at: 0,
            updated_at: 0,
        };
        assert!(client.accepts_redirect_uri(REG));
        assert!(client.accepts_redirect_uri("http://127.0.0.1:4000/cb"));
        assert!(!client.accepts_redirect_uri("https://app.example.com/bye"));
        assert!(client.accepts_post_logout_redirect_uri("https://app.example.com/bye"));
        assert!(!client.accepts_post_logout_redirect_uri("https://app.example.com/bye/"));
        let confidential = OAuthClient {
            confidential: true,
            ..client
        };
        assert!(!confidential.accepts_redirect_uri("http://127.0.0.1:4000/cb"));
    }

    #[test]
    fn registration_rules() {
        for ok in [
            "https://app.example.com/cb",
            "https://app.example.com:8443/cb?x=1",
            "http://127.0.0.1/cb",
            "http://127.0.0.1:3000/cb",
            "http://[::1]/cb",
            "http://localhost:3000/cb",
        ] {
            assert_eq!(check_redirect_uri(ok, false), Ok(()), "{ok}");
            assert_eq!(check_redirect_uri(ok, true), Ok(()), "{ok}");
        }
        assert_eq!(check_redirect_uri("com.example.app:/cb", true), Ok(()));
        assert!(check_redirect_uri("com.example.app:/cb", false).is_err());
        for bad in [
            "",
            "/cb",
            "cb",
            "app.example.com/cb",
            "https://app.example.com/cb#x",
            "https://app.example.com/cb#",
            "http://app.example.com/cb",
            "http://127.0.0.2/cb",
            "https://user:pw@app.example.com/cb",
            "https://user@app.example.com/cb",
            "https://app.example.com/c b",
            " https://app.example.com/cb",
            "https://app.example.com/cb\n",
            "javascript:alert(1)",
            "data:text/html,x",
            "file:///etc/passwd",
            "myapp:/cb",
            "mailto:a@b.example",
            "https:///cb",
            "https:app.example.com/cb",
            "https://app.example.com\\@evil.example/cb",
        ] {
            assert!(check_redirect_uri(bad, true).is_err(), "{bad:?}");
            assert!(check_redirect_uri(bad, false).is_err(), "{bad:?}");
        }
        let long = format!("https://a.example/{}", "x".repeat(MAX_URI_CHARS));
        assert!(check_redirect_uri(&long, true).is_err());
        assert_eq!(
            check_redirect_uris(&[], true, "redirect_uris", true).len(),
            1
        );
        assert!(check_redirect_uris(&[], true, "post_logout_redirect_uris", false).is_empty());
        let many = vec![REG.to_string(); MAX_REDIRECT_URIS + 1];
        assert_eq!(
            check_redirect_uris(&many, true, "redirect_uris", true).len(),
            1
        );
    }

    #[test]
    fn names_and_compare() {
        assert_eq!(check_client_name("  App ", "name").unwrap(), "App");
        assert!(check_client_name(" ", "name").is_err());
        assert!(check_client_name(&"x".repeat(101), "name").is_err());
        assert!(check_client_name("a\u{7}b", "name").is_err());
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
