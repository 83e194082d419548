//! Configuration: read once from the environment and `.env` (SPEC §2).
//!
//! Every variable is also accepted with the `AUTH_` prefix (FastEdgy's names).
//! Precedence, highest first: `NAME` in the environment, `AUTH_NAME` in the
//! environment, `NAME` in `.env`, `AUTH_NAME` in `.env`, the default.
//!
//! The values are read in `source`; each group of settings is read and
//! checked in its own file (`deployment`, `tokens`, `password`, `mail`,
//! `server`, `limits`), and [`Config::from_env`] / [`Config::from_vars`] put them
//! together. A secret is generated (`secret`) only once everything else is
//! valid; `redact` keeps the secrets out of `Debug`.

mod deployment;
mod keys;
mod limits;
mod mail;
mod mfa;
mod pages;
mod passkeys;
mod password;
mod redact;
mod secret;
mod server;
mod source;
mod tokens;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::Algorithm;

use crate::domain::TrustedProxies;
use crate::token::keys::AsymmetricKeys;

pub use pages::normalise_origin;
pub use password::BCRYPT_MAX_COST;
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
    /// Hashes one caller (a user, a client IP) may have waiting or running
    /// at once while rate limits are on (`HASH_QUEUE_PER_CALLER`): no one
    /// fills the queue for everyone else.
    pub per_caller: usize,
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
    /// PEM certificates (`SMTP_CA_FILE`) trusted besides the built-in web
    /// roots, for a server whose certificate a private CA signed.
    pub ca_certificates: Option<Vec<u8>>,
}

/// A number of requests per period: `count` at once, then one more each
/// `per / count` (see [`crate::limits`]). Written `60/minute` in settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// How many requests the period allows.
    pub count: u32,
    /// The period.
    pub per: Duration,
}

/// The rate limits of SPEC §7 and where their counters live. Its `Debug`
/// output hides the Redis password.
#[derive(Clone, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// `false` turns every limit off (`RATE_LIMIT_ENABLED`).
    pub enabled: bool,
    /// Login attempts from one client IP (`RATE_LIMIT_LOGIN_PER_IP`).
    pub login_per_ip: Rate,
    /// Login attempts for one e-mail address from one client IP
    /// (`RATE_LIMIT_LOGIN_PER_EMAIL`).
    pub login_per_email: Rate,
    /// Registrations from one client IP (`RATE_LIMIT_REGISTER_PER_IP`).
    pub register_per_ip: Rate,
    /// Forgot-password and resend-verification requests from one client IP
    /// (`RATE_LIMIT_MAIL_REQUEST_PER_IP`).
    pub mail_request_per_ip: Rate,
    /// Reset and verification mails sent to one address
    /// (`RATE_LIMIT_MAIL_PER_EMAIL`); past it requests still answer 200.
    pub mail_per_email: Rate,
    /// Second steps of logins (`/mfa/verify`, the MFA grant of `/token`)
    /// from one client IP (`RATE_LIMIT_MFA_PER_IP`, SPEC §10).
    pub mfa_per_ip: Rate,
    /// Checks of a current password behind a token (`/change-password`,
    /// `/mfa/totp/setup`) for one user (`RATE_LIMIT_PASSWORD_CHECK`).
    pub password_check_per_user: Rate,
    /// The same checks from one client IP, whatever the user
    /// (`RATE_LIMIT_PASSWORD_CHECK_PER_IP`).
    pub password_check_per_ip: Rate,
    /// Failed logins for one account from all addresses, past which its
    /// logins are refused except from known devices
    /// (`RATE_LIMIT_LOGIN_PER_ACCOUNT`).
    pub login_per_account: Rate,
    /// Redis shared by every instance (`REDIS_URL`); `None`: each instance
    /// counts in its own memory.
    pub redis_url: Option<String>,
    /// Prefix of every key Portcullis writes in Redis (`REDIS_KEY_PREFIX`).
    pub redis_key_prefix: String,
}

/// The second factor's settings (SPEC §10). Its `Debug` output hides the key.
#[derive(Clone)]
pub struct MfaConfig {
    /// Encrypts TOTP secrets (AES-256-GCM) and keys recovery-code hashes
    /// (`MFA_ENCRYPTION_KEY`). `None` (only from [`Config::from_vars`]
    /// without the variable): TOTP cannot be turned on, since a key made up
    /// for one process would lock every TOTP user out after a restart.
    pub encryption_key: Option<[u8; 32]>,
    /// Whether the key was generated (development only).
    pub key_generated: bool,
    /// The issuer authenticator apps show (`MFA_ISSUER`, else the host of `APP_URL`).
    pub issuer: String,
}

/// The WebAuthn relying party that passkeys are bound to (SPEC §11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelyingParty {
    /// The relying party id, a domain (`WEBAUTHN_RP_ID`, else `APP_URL`'s host).
    pub id: String,
    /// The origins whose pages may use passkeys (`WEBAUTHN_ORIGINS`, else
    /// `APP_URL`'s origin); each one's host is `id` or a name under it.
    pub origins: Vec<webauthn_rs::prelude::Url>,
    /// The name authenticators show (`WEBAUTHN_RP_NAME`, else `MFA_ISSUER`).
    pub name: String,
}

/// Passkey settings (SPEC §11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyConfig {
    /// The relying party; `None` when passkeys cannot work (an IP address
    /// as `APP_URL`'s host and no `WEBAUTHN_RP_ID`): their endpoints answer
    /// 503 `PASSKEYS_UNAVAILABLE`.
    pub relying_party: Option<RelyingParty>,
    /// Why `relying_party` is `None`, for the log at start-up.
    pub unavailable_reason: Option<String>,
    /// Passkeys a user may register (`PASSKEYS_PER_USER`).
    pub per_user: u32,
}

/// The pages a person uses (SPEC §12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagesConfig {
    /// Serve the pages (`PAGES_ENABLED`, default `true`; the library
    /// mounts them only when asked, see
    /// [`crate::PortcullisBuilder::pages`]).
    pub enabled: bool,
    /// The origins `redirect_to` may lead to: `APP_URL`'s first, then
    /// `REDIRECT_ORIGINS`; each `scheme://host[:port]`, lowercased, without
    /// a default port.
    pub redirect_origins: Vec<String>,
    /// The name in the pages' header (`PAGES_TITLE`, else `MFA_ISSUER`).
    pub title: String,
    /// `#rgb` or `#rrggbb` (`PAGES_ACCENT_COLOR`).
    pub accent_color: Option<String>,
    /// A same-origin path or a `data:image/` URL (`PAGES_LOGO_URL`).
    pub logo_url: Option<String>,
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
    /// HMAC key that signs new tokens (at least 32 characters) with the
    /// HMAC algorithms. With an asymmetric algorithm it signs nothing and only
    /// keys what must agree across instances (the ids of refresh tokens'
    /// successors, SPEC §5); unset, it is derived from the private key.
    pub secret_key: String,
    /// Whether `secret_key` was generated into the data directory (development only).
    pub secret_generated: bool,
    /// Older keys still accepted for verification.
    pub secret_key_previous: Vec<String>,
    /// Signing algorithm; the only one accepted on verification.
    pub algorithm: Algorithm,
    /// For RS256, ES256 and EdDSA: the signing key (`PRIVATE_KEY_FILE`, or
    /// one generated for development) and the public keys that verify
    /// (`PUBLIC_KEY_FILES`); `None` for the HMAC algorithms.
    pub asymmetric_keys: Option<Arc<AsymmetricKeys>>,
    /// Lifetime of access tokens.
    pub access_token_ttl: Duration,
    /// Lifetime of refresh tokens (and of an idle session).
    pub refresh_token_ttl: Duration,
    /// How long a just-spent refresh token may be replayed (SPEC §5).
    pub refresh_reuse_grace: Duration,
    /// Absolute lifetime of a session from its login, however often it is
    /// refreshed (SPEC §5).
    pub session_max_lifetime: Duration,
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
    /// The rate limits and where their counters live.
    pub rate_limits: RateLimitConfig,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: TrustedProxies,
    /// The address of a second listener that serves `/metrics` alone
    /// (`METRICS_ADDR`); in production `/metrics` is served only there.
    pub metrics_addr: Option<SocketAddr>,
    /// Also hand out the refresh token as a cookie.
    pub refresh_cookie: bool,
    /// Allowed CORS origins.
    pub cors_origins: Vec<String>,
    /// Where the auth endpoints are mounted, e.g. `/api/auth`.
    pub route_prefix: String,
    /// Log output format.
    pub log_format: LogFormat,
    /// How long security events are kept (`SECURITY_EVENT_RETENTION_DAYS`).
    pub event_retention: Duration,
    /// Directory for the generated secret and the default database.
    pub data_dir: PathBuf,
    /// Sessions kept in memory for the check on protected requests
    /// (`SESSION_CACHE_SIZE`; 0: every check reads the database).
    pub session_cache_size: u64,
    /// The second factor (SPEC §10).
    pub mfa: MfaConfig,
    /// Passkeys (SPEC §11).
    pub passkeys: PasskeyConfig,
    /// Whether anyone may register (`REGISTRATION_ENABLED`); when not, only
    /// superusers create accounts.
    pub registration_enabled: bool,
    /// The pages (SPEC §12).
    pub pages: PagesConfig,
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

    /// Reads and checks every group of settings, stopping at the first bad
    /// value; only then, when no `SECRET_KEY` is set, a secret is generated
    /// (into `DATA_DIR/secret.key` if `persist_secret`).
    fn from_source(src: &Source<'_>, persist_secret: bool) -> Result<Self, ConfigError> {
        let (production, data_dir) = deployment::mode(src)?;
        let pages_enabled = pages::enabled(src)?;
        let tokens = tokens::read(src, production, pages_enabled)?;
        let password = password::read(src)?;
        let mail = mail::read(src, &data_dir)?;
        let server = server::read(src)?;
        let rate_limits = limits::read(src)?;
        let database_url = deployment::database_url(src, &data_dir)?;
        let log_format = deployment::log_format(src)?;
        let event_retention = deployment::event_retention(src)?;
        let session_cache_size = src.parse(
            "SESSION_CACHE_SIZE",
            crate::store::DEFAULT_SESSION_CACHE_SIZE,
            "a whole number",
        )?;
        let mfa = mfa::read(src, production)?;
        let passkeys = passkeys::read(src, &server.app_url, &mfa.issuer(&server.app_url))?;
        let registration_enabled = pages::registration_enabled(src)?;
        let pages = pages::read(
            src,
            pages_enabled,
            tokens.refresh_cookie,
            &server.app_url,
            mfa.issuer(&server.app_url),
        )?;

        // Only once everything else is valid: a generated secret or key is
        // written to disk. The asymmetric algorithms sign with their key
        // pair; without a `SECRET_KEY` theirs is derived from the private
        // key, so that every instance sharing the key agrees on it.
        let asymmetric_keys = keys::resolve(tokens.key_files, persist_secret, &data_dir)?;
        let (secret_key, secret_generated) = match (tokens.secret_key, &asymmetric_keys) {
            (None, Some(keys)) => (keys.derived_secret(), false),
            (explicit, _) => secret::resolve(explicit, persist_secret, &data_dir)?,
        };
        let mfa = mfa::resolve(mfa, persist_secret, &data_dir, &server.app_url)?;
        Ok(Config {
            production,
            secret_key,
            secret_generated,
            secret_key_previous: tokens.secret_key_previous,
            algorithm: tokens.algorithm,
            asymmetric_keys,
            access_token_ttl: tokens.access_token_ttl,
            refresh_token_ttl: tokens.refresh_token_ttl,
            refresh_reuse_grace: tokens.refresh_reuse_grace,
            session_max_lifetime: tokens.session_max_lifetime,
            jwt_issuer: tokens.jwt_issuer,
            jwt_audience: tokens.jwt_audience,
            database_url,
            host: server.host,
            port: server.port,
            app_url: server.app_url,
            password,
            require_email_verification: mail.require_email_verification,
            smtp: mail.smtp,
            mail_from: mail.mail_from,
            mail_outbox_dir: mail.mail_outbox_dir,
            reset_token_ttl: mail.reset_token_ttl,
            verify_token_ttl: mail.verify_token_ttl,
            rate_limits,
            trusted_proxies: server.trusted_proxies,
            metrics_addr: server.metrics_addr,
            refresh_cookie: tokens.refresh_cookie,
            cors_origins: server.cors_origins,
            route_prefix: server.route_prefix,
            log_format,
            event_retention,
            data_dir,
            session_cache_size,
            mfa,
            passkeys,
            registration_enabled,
            pages,
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
}
