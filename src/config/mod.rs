//! Configuration: read once from the environment and `.env` (SPEC §2).
//!
//! Every variable is also accepted with the `AUTH_` prefix (FastEdgy's names).
//! Precedence, highest first: `NAME` in the environment, `AUTH_NAME` in the
//! environment, `NAME` in `.env`, `AUTH_NAME` in `.env`, the default.

mod redact;
mod secret;
mod source;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use jsonwebtoken::Algorithm;

pub use secret::{MIN_SECRET_LEN, generate_secret};
use source::Source;

/// A configuration value that cannot be used; start-up stops with exit status 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration error: {variable}: {problem}")]
pub struct ConfigError {
    /// The variable at fault, e.g. `SECRET_KEY`.
    pub variable: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl ConfigError {
    fn new(variable: &'static str, problem: impl Into<String>) -> Self {
        Self {
            variable,
            problem: problem.into(),
        }
    }
}

/// Which algorithm new password hashes use (both always verify).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HasherKind {
    /// argon2id with the OWASP parameters (m=19 MiB, t=2, p=1).
    Argon2id,
    /// bcrypt with `BCRYPT_ROUNDS`.
    Bcrypt,
}

/// Password hashing and policy settings.
#[derive(Debug, Clone)]
pub struct PasswordConfig {
    /// Algorithm for new hashes.
    pub hasher: HasherKind,
    /// bcrypt cost when `hasher` is bcrypt.
    pub bcrypt_rounds: u32,
    /// Minimum password length in characters.
    pub min_length: usize,
    /// Hashes that may wait for a hashing thread before requests get 503.
    pub queue_capacity: usize,
    /// Threads that hash; defaults to the number of cores.
    pub workers: usize,
}

/// How outgoing mail is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain text (local relays and tests only).
    None,
    /// STARTTLS upgrade (the default).
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// Real SMTP delivery, used when `SMTP_HOST` is set. Its `Debug` output
/// hides the password.
#[derive(Clone)]
pub struct SmtpConfig {
    /// Server host name.
    pub host: String,
    /// Server port (default by `tls`: 25, 587 or 465).
    pub port: u16,
    /// Login name, if the server wants one.
    pub username: Option<String>,
    /// Password for `username`.
    pub password: Option<String>,
    /// Transport security.
    pub tls: SmtpTls,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object a line.
    Json,
}

/// Everything Portcullis can be configured with. Its `Debug` output hides
/// the secrets, so it can be logged.
#[derive(Clone)]
pub struct Config {
    /// `PORTCULLIS_ENV=production`: refuse generated secrets.
    pub production: bool,
    /// HMAC key that signs new tokens (at least 32 characters).
    pub secret_key: String,
    /// Whether `secret_key` was generated into the data directory (development only).
    pub secret_generated: bool,
    /// Older keys still accepted for verification.
    pub secret_key_previous: Vec<String>,
    /// Signing algorithm; the only one accepted on verification.
    pub algorithm: Algorithm,
    /// Lifetime of access tokens.
    pub access_token_ttl: Duration,
    /// Lifetime of refresh tokens (and of an idle session).
    pub refresh_token_ttl: Duration,
    /// How long a just-spent refresh token may be replayed (SPEC §5).
    pub refresh_reuse_grace: Duration,
    /// `iss` written into and required of tokens.
    pub jwt_issuer: Option<String>,
    /// `aud` written into and required of tokens.
    pub jwt_audience: Option<String>,
    /// `sqlite://…` or `postgres://…`.
    pub database_url: String,
    /// Interface to bind.
    pub host: String,
    /// Port to bind.
    pub port: u16,
    /// Base of the links in e-mails.
    pub app_url: String,
    /// Password hashing and policy.
    pub password: PasswordConfig,
    /// Refuse logins until the e-mail is verified.
    pub require_email_verification: bool,
    /// Real SMTP delivery; `None` writes mail to `mail_outbox_dir`.
    pub smtp: Option<SmtpConfig>,
    /// Sender address of outgoing mail.
    pub mail_from: String,
    /// Where mail goes without SMTP.
    pub mail_outbox_dir: PathBuf,
    /// Lifetime of password-reset tokens.
    pub reset_token_ttl: Duration,
    /// Lifetime of e-mail verification tokens.
    pub verify_token_ttl: Duration,
    /// `false` turns every rate limit off.
    pub rate_limit_enabled: bool,
    /// Also hand out the refresh token as a cookie.
    pub refresh_cookie: bool,
    /// Allowed CORS origins.
    pub cors_origins: Vec<String>,
    /// Where the auth endpoints are mounted, e.g. `/api/auth`.
    pub route_prefix: String,
    /// Log output format.
    pub log_format: LogFormat,
    /// Directory for the generated secret and the default database.
    pub data_dir: PathBuf,
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

impl Config {
    /// Reads the process environment and `./.env`; generates a development
    /// secret into `./data/secret.key` when none is configured.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&Source::environment(), true)
    }

    /// Builds a configuration from explicit variables only (no environment,
    /// no `.env`). Without `SECRET_KEY`, a random in-memory secret is used:
    /// handy for tests and embedding.
    pub fn from_vars<K, V>(vars: impl IntoIterator<Item = (K, V)>) -> Result<Self, ConfigError>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let map: HashMap<String, String> = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Self::from_source(&Source::vars(map), false)
    }

    fn from_source(src: &Source<'_>, persist_secret: bool) -> Result<Self, ConfigError> {
        let production = match src.get("PORTCULLIS_ENV").map(|v| v.to_ascii_lowercase()) {
            None => false,
            Some(v) if v == "production" || v == "prod" => true,
            Some(v) if matches!(v.as_str(), "development" | "dev" | "test") => false,
            Some(v) => {
                return Err(ConfigError::new(
                    "PORTCULLIS_ENV",
                    format!("expected production or development, got {v:?}"),
                ));
            }
        };
        let data_dir = PathBuf::from(src.get("DATA_DIR").unwrap_or_else(|| "data".into()));

        let algorithm = match src.get("ALGORITHM").as_deref() {
            None | Some("HS256") => Algorithm::HS256,
            Some("HS384") => Algorithm::HS384,
            Some("HS512") => Algorithm::HS512,
            Some(other @ ("RS256" | "ES256" | "EdDSA")) => {
                return Err(ConfigError::new(
                    "ALGORITHM",
                    format!("{other} is not supported in this version; use HS256, HS384 or HS512"),
                ));
            }
            Some(other) => {
                return Err(ConfigError::new(
                    "ALGORITHM",
                    format!("expected HS256, HS384 or HS512, got {other:?}"),
                ));
            }
        };

        let explicit_secret = src.get("SECRET_KEY");
        match &explicit_secret {
            Some(key) if key.chars().count() < MIN_SECRET_LEN => {
                return Err(ConfigError::new(
                    "SECRET_KEY",
                    format!("must be at least {MIN_SECRET_LEN} characters"),
                ));
            }
            None if production => {
                return Err(ConfigError::new(
                    "SECRET_KEY",
                    "required when PORTCULLIS_ENV=production (generate one with `portcullis gen-secret`)",
                ));
            }
            _ => {}
        }
        let secret_key_previous = src.list("SECRET_KEY_PREVIOUS");
        if secret_key_previous
            .iter()
            .any(|k| k.chars().count() < MIN_SECRET_LEN)
        {
            return Err(ConfigError::new(
                "SECRET_KEY_PREVIOUS",
                format!("every key must be at least {MIN_SECRET_LEN} characters"),
            ));
        }

        let hasher = match src.get("PASSWORD_HASHER").map(|v| v.to_ascii_lowercase()) {
            None => HasherKind::Argon2id,
            Some(v) if v == "argon2id" || v == "argon2" => HasherKind::Argon2id,
            Some(v) if v == "bcrypt" => HasherKind::Bcrypt,
            Some(v) => {
                return Err(ConfigError::new(
                    "PASSWORD_HASHER",
                    format!("expected argon2id or bcrypt, got {v:?}"),
                ));
            }
        };
        let bcrypt_rounds: u32 = src.parse("BCRYPT_ROUNDS", 12, "a whole number")?;
        if !(4..=31).contains(&bcrypt_rounds) {
            return Err(ConfigError::new(
                "BCRYPT_ROUNDS",
                "must be between 4 and 31",
            ));
        }
        let min_length: usize = src.parse("PASSWORD_MIN_LENGTH", 8, "a whole number")?;
        if !(1..=128).contains(&min_length) {
            return Err(ConfigError::new(
                "PASSWORD_MIN_LENGTH",
                "must be between 1 and 128",
            ));
        }
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let workers = src.positive("HASH_WORKERS", cores as u64)? as usize;
        let queue_capacity = src.parse("HASH_QUEUE", 128usize, "a whole number")?;
        if queue_capacity < 64 {
            return Err(ConfigError::new("HASH_QUEUE", "must be at least 64"));
        }

        let smtp = match src.get("SMTP_HOST") {
            None => None,
            Some(host) => {
                let tls = match src.get("SMTP_TLS").map(|v| v.to_ascii_lowercase()) {
                    None => SmtpTls::StartTls,
                    Some(v) if v == "starttls" => SmtpTls::StartTls,
                    Some(v) if v == "tls" || v == "ssl" => SmtpTls::Tls,
                    Some(v) if v == "none" || v == "plain" => SmtpTls::None,
                    Some(v) => {
                        return Err(ConfigError::new(
                            "SMTP_TLS",
                            format!("expected none, starttls or tls, got {v:?}"),
                        ));
                    }
                };
                let default_port = match tls {
                    SmtpTls::None => 25,
                    SmtpTls::StartTls => 587,
                    SmtpTls::Tls => 465,
                };
                Some(SmtpConfig {
                    host,
                    port: src.parse("SMTP_PORT", default_port, "a port number")?,
                    username: src.get("SMTP_USERNAME"),
                    password: src.get("SMTP_PASSWORD"),
                    tls,
                })
            }
        };

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

        let host = src.get("HOST").unwrap_or_else(|| "127.0.0.1".into());
        if !valid_bind_host(&host) {
            return Err(ConfigError::new(
                "HOST",
                format!("{host:?} is neither an IP address nor a host name"),
            ));
        }
        let mail_from = src
            .get("MAIL_FROM")
            .unwrap_or_else(|| "Portcullis <no-reply@localhost>".into());
        if let Err(e) = mail_from.parse::<lettre::message::Mailbox>() {
            return Err(ConfigError::new(
                "MAIL_FROM",
                format!("expected an address such as \"Portcullis <no-reply@example.com>\": {e}"),
            ));
        }

        let database_url = src
            .get("DATABASE_URL")
            .unwrap_or_else(|| format!("sqlite://{}/portcullis.db", data_dir.display()));
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(ConfigError::new(
                "DATABASE_URL",
                "expected a sqlite:// or postgres:// URL",
            ));
        }

        let log_format = match src.get("LOG_FORMAT").map(|v| v.to_ascii_lowercase()) {
            None => {
                if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                    LogFormat::Pretty
                } else {
                    LogFormat::Json
                }
            }
            Some(v) if v == "pretty" => LogFormat::Pretty,
            Some(v) if v == "json" => LogFormat::Json,
            Some(v) => {
                return Err(ConfigError::new(
                    "LOG_FORMAT",
                    format!("expected pretty or json, got {v:?}"),
                ));
            }
        };

        let minutes = |n: u64| Duration::from_secs(n * 60);
        let access_token_ttl = minutes(src.positive("ACCESS_TOKEN_EXPIRE_MINUTES", 30)?);
        let refresh_token_ttl =
            Duration::from_secs(86_400 * src.positive("REFRESH_TOKEN_EXPIRE_DAYS", 7)?);
        let refresh_reuse_grace = Duration::from_secs(src.parse(
            "REFRESH_REUSE_GRACE_SECONDS",
            10,
            "a whole number of seconds",
        )?);
        let port = src.parse("PORT", 8000, "a port number")?;
        let require_email_verification = src.flag("REQUIRE_EMAIL_VERIFICATION", false)?;
        let reset_token_ttl = minutes(src.positive("RESET_TOKEN_EXPIRE_MINUTES", 60)?);
        let verify_token_ttl =
            Duration::from_secs(3600 * src.positive("VERIFY_TOKEN_EXPIRE_HOURS", 24)?);
        let rate_limit_enabled = src.flag("RATE_LIMIT_ENABLED", true)?;
        let refresh_cookie = src.flag("REFRESH_COOKIE", false)?;
        let cors_origins = parse_cors_origins(src.list("CORS_ORIGINS"))?;

        // Only once everything else is valid: a generated secret is written to disk.
        let (secret_key, secret_generated) =
            secret::resolve(explicit_secret, persist_secret, &data_dir)?;
        Ok(Config {
            production,
            secret_key,
            secret_generated,
            secret_key_previous,
            algorithm,
            access_token_ttl,
            refresh_token_ttl,
            refresh_reuse_grace,
            jwt_issuer: src.get("JWT_ISSUER"),
            jwt_audience: src.get("JWT_AUDIENCE"),
            database_url,
            host,
            port,
            app_url: app_url.trim_end_matches('/').to_string(),
            password: PasswordConfig {
                hasher,
                bcrypt_rounds,
                min_length,
                queue_capacity,
                workers,
            },
            require_email_verification,
            smtp,
            mail_from,
            mail_outbox_dir: src
                .get("MAIL_OUTBOX_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| data_dir.join("outbox")),
            reset_token_ttl,
            verify_token_ttl,
            rate_limit_enabled,
            refresh_cookie,
            cors_origins,
            route_prefix,
            log_format,
            data_dir,
        })
    }

    /// The address to bind, `HOST:PORT`.
    pub fn bind_address(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_name_the_variable() {
        let err = Config::from_vars([("PORT", "eighty")]).unwrap_err();
        assert_eq!(err.variable, "PORT");
        let err = Config::from_vars([("SECRET_KEY", "short")]).unwrap_err();
        assert_eq!(err.variable, "SECRET_KEY");
        let err = Config::from_vars([("ALGORITHM", "none")]).unwrap_err();
        assert_eq!(err.variable, "ALGORITHM");
    }

    #[test]
    fn hosts_urls_and_senders_are_checked() {
        for ok in ["127.0.0.1", "::", "0.0.0.0", "localhost", "auth.internal"] {
            assert!(Config::from_vars([("HOST", ok)]).is_ok(), "{ok}");
        }
        for (var, bad) in [
            ("HOST", "999.1.1.1"),
            ("HOST", "my host"),
            ("APP_URL", "http://"),
            ("APP_URL", "https:///path"),
            ("APP_URL", "app.example.com"),
            ("MAIL_FROM", "not an address"),
        ] {
            let err = Config::from_vars([(var, bad)]).unwrap_err();
            assert_eq!(err.variable, var, "{bad}");
        }
        assert!(Config::from_vars([("MAIL_FROM", "Acme <auth@acme.example>")]).is_ok());
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

    #[test]
    fn production_requires_a_secret() {
        let err = Config::from_vars([("PORTCULLIS_ENV", "production")]).unwrap_err();
        assert_eq!(err.variable, "SECRET_KEY");
    }
}
