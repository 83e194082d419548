//! HTTP server settings: the address to bind, the public URL, where the
//! routes are mounted, the CORS origins, the trusted reverse proxies and the
//! metrics listener.

use std::net::SocketAddr;

use super::ConfigError;
use super::source::Source;
use crate::domain::TrustedProxies;

/// The server settings of [`super::Config`].
pub(super) struct Server {
    pub host: String,
    pub port: u16,
    /// Without a trailing `/`.
    pub app_url: String,
    pub cors_origins: Vec<String>,
    /// Without a trailing `/`.
    pub route_prefix: String,
    pub trusted_proxies: TrustedProxies,
    pub metrics_addr: Option<SocketAddr>,
}

/// The server settings.
pub(super) fn read(src: &Source<'_>) -> Result<Server, ConfigError> {
    let route_prefix = route_prefix(src)?;
    let app_url = app_url(src)?;
    let host = host(src)?;
    Ok(Server {
        host,
        port: src.parse("PORT", 8000, "a port number")?,
        app_url,
        cors_origins: parse_cors_origins(src.list("CORS_ORIGINS"))?,
        route_prefix,
        trusted_proxies: trusted_proxies(src)?,
        metrics_addr: metrics_addr(src)?,
    })
}

/// `METRICS_ADDR`: the address (IP and port) of the listener that serves
/// `/metrics` alone, e.g. `127.0.0.1:9464`.
fn metrics_addr(src: &Source<'_>) -> Result<Option<SocketAddr>, ConfigError> {
    let Some(raw) = src.get("METRICS_ADDR") else {
        return Ok(None);
    };
    raw.parse().map(Some).map_err(|_| {
        ConfigError::new(
            "METRICS_ADDR",
            format!("expected an IP address and a port such as 127.0.0.1:9464, got {raw:?}"),
        )
    })
}

/// `TRUSTED_PROXIES`: comma-separated IP addresses or CIDR blocks.
fn trusted_proxies(src: &Source<'_>) -> Result<TrustedProxies, ConfigError> {
    let mut nets = Vec::new();
    for entry in src.list("TRUSTED_PROXIES") {
        let Some(net) = TrustedProxies::parse_entry(&entry) else {
            return Err(ConfigError::new(
                "TRUSTED_PROXIES",
                format!("`{entry}` is neither an IP address nor a CIDR block such as 10.0.0.0/8"),
            ));
        };
        nets.push(net);
    }
    Ok(TrustedProxies::new(nets))
}

/// `AUTH_ROUTE_PREFIX`: a path such as `/api/auth`, trailing `/` dropped.
fn route_prefix(src: &Source<'_>) -> Result<String, ConfigError> {
    let route_prefix = src
        .get("AUTH_ROUTE_PREFIX")
        .unwrap_or_else(|| "/api/auth".into());
    let route_prefix = route_prefix.trim_end_matches('/').to_string();
    if !route_prefix.starts_with('/') || route_prefix.contains(['{', '}', '*', ' ']) {
        return Err(ConfigError::new(
            "AUTH_ROUTE_PREFIX",
            "must be a path starting with / such as /api/auth",
        ));
    }
    Ok(route_prefix)
}

/// `APP_URL`: an http(s) URL with a host, trailing `/` dropped.
fn app_url(src: &Source<'_>) -> Result<String, ConfigError> {
    let app_url = src
        .get("APP_URL")
        .unwrap_or_else(|| "http://localhost:8000".into());
    let app_host = app_url
        .strip_prefix("http://")
        .or_else(|| app_url.strip_prefix("https://"));
    if !app_host.is_some_and(|rest| {
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        !host.is_empty() && !host.contains(char::is_whitespace)
    }) {
        return Err(ConfigError::new(
            "APP_URL",
            "must be an http:// or https:// URL with a host, such as https://app.example.com",
        ));
    }
    Ok(app_url.trim_end_matches('/').to_string())
}

/// `HOST`: an address or host name that can be bound.
fn host(src: &Source<'_>) -> Result<String, ConfigError> {
    let host = src.get("HOST").unwrap_or_else(|| "127.0.0.1".into());
    if !valid_bind_host(&host) {
        return Err(ConfigError::new(
            "HOST",
            format!("{host:?} is neither an IP address nor a host name"),
        ));
    }
    Ok(host)
}

/// Whether `host` can be bound: an IP address, or a host name of letters,
/// digits and hyphens whose last label is not a number.
fn valid_bind_host(host: &str) -> bool {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let labels: Vec<&str> = host.split('.').collect();
    host.len() <= 253
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && labels
            .last()
            .is_some_and(|l| !l.bytes().all(|b| b.is_ascii_digit()))
}

/// Checks `CORS_ORIGINS`: either `*` alone (any origin, without
/// credentials) or origins of the form `scheme://host[:port]`, which is what
/// browsers send in `Origin`. A trailing `/` is dropped; a path is refused,
/// since such an entry would never match.
fn parse_cors_origins(list: Vec<String>) -> Result<Vec<String>, ConfigError> {
    let fail = |problem: String| Err(ConfigError::new("CORS_ORIGINS", problem));
    if list.iter().any(|o| o == "*") {
        if list.len() > 1 {
            return fail("`*` allows every origin and cannot be combined with others".into());
        }
        return Ok(list);
    }
    let mut origins = Vec::with_capacity(list.len());
    for origin in list {
        let origin = origin.trim_end_matches('/').to_string();
        let Some((scheme, host)) = origin.split_once("://") else {
            return fail(format!(
                "`{origin}` is not an origin like https://app.example.com"
            ));
        };
        let valid = matches!(scheme, "http" | "https")
            && !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
        if !valid {
            return fail(format!(
                "`{origin}` is not an origin like https://app.example.com (scheme, host and port only)"
            ));
        }
        origins.push(origin);
    }
    Ok(origins)
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn hosts_and_urls_are_checked() {
        for ok in ["127.0.0.1", "::", "0.0.0.0", "localhost", "auth.internal"] {
            assert!(Config::from_vars([("HOST", ok)]).is_ok(), "{ok}");
        }
        for (var, bad) in [
            ("HOST", "999.1.1.1"),
            ("HOST", "my host"),
            ("APP_URL", "http://"),
            ("APP_URL", "https:///path"),
            ("APP_URL", "app.example.com"),
        ] {
            let err = Config::from_vars([(var, bad)]).unwrap_err();
            assert_eq!(err.variable, var, "{bad}");
        }
    }

    #[test]
    fn trusted_proxies_are_addresses_or_blocks() {
        let cfg =
            Config::from_vars([("TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1,::1,fd00::/8")]).unwrap();
        for inside in ["10.1.2.3", "127.0.0.1", "::1", "fd12::5"] {
            assert!(
                cfg.trusted_proxies.contains(inside.parse().unwrap()),
                "{inside}"
            );
        }
        for outside in ["11.0.0.1", "127.0.0.2", "::2", "2001:db8::1"] {
            assert!(
                !cfg.trusted_proxies.contains(outside.parse().unwrap()),
                "{outside}"
            );
        }
        for bad in ["10.0.0.0/33", "localhost", "10.0.0.1/8/2", "1.2.3"] {
            let err = Config::from_vars([("TRUSTED_PROXIES", bad)]).unwrap_err();
            assert_eq!(err.variable, "TRUSTED_PROXIES", "{bad}");
        }
    }

    #[test]
    fn the_metrics_address_is_an_ip_and_a_port() {
        assert_eq!(
            Config::from_vars([("PORT", "8000")]).unwrap().metrics_addr,
            None
        );
        let cfg = Config::from_vars([("METRICS_ADDR", " 127.0.0.1:9464 ")]).unwrap();
        assert_eq!(cfg.metrics_addr, Some("127.0.0.1:9464".parse().unwrap()));
        let cfg = Config::from_vars([("AUTH_METRICS_ADDR", "[::1]:9464")]).unwrap();
        assert_eq!(cfg.metrics_addr, Some("[::1]:9464".parse().unwrap()));
        for bad in [
            "9464",
            "localhost:9464",
            "127.0.0.1",
            "127.0.0.1:99999",
            ":9464",
        ] {
            let err = Config::from_vars([("METRICS_ADDR", bad)]).unwrap_err();
            assert_eq!(err.variable, "METRICS_ADDR", "{bad}");
        }
    }

    #[test]
    fn cors_origins_are_origins() {
        let cfg = Config::from_vars([(
            "CORS_ORIGINS",
            "https://app.example.com/, http://localhost:3000",
        )])
        .unwrap();
        assert_eq!(
            cfg.cors_origins,
            ["https://app.example.com", "http://localhost:3000"]
        );
        let any = Config::from_vars([("CORS_ORIGINS", " * ")]).unwrap();
        assert_eq!(any.cors_origins, ["*"]);
        for bad in [
            "*, https://app.example.com",
            "https://app.example.com/login",
            "app.example.com",
            "ftp://files.example.com",
        ] {
            let err = Config::from_vars([("CORS_ORIGINS", bad)]).unwrap_err();
            assert_eq!(err.variable, "CORS_ORIGINS", "{bad}");
        }
    }
}
