//! `Debug` for the configuration with the secrets hidden, so that it can be
//! logged: the signing keys, the database password and the SMTP password.

use super::{Config, MfaConfig, RateLimitConfig, SmtpConfig};

const REDACTED: &str = "<redacted>";

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| REDACTED))
            .field("tls", &self.tls)
            .field(
                "ca_certificates",
                &self
                    .ca_certificates
                    .as_ref()
                    .map(|pem| format!("{} bytes of PEM", pem.len())),
            )
            .finish()
    }
}

impl std::fmt::Debug for MfaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MfaConfig")
            .field("encryption_key", &REDACTED)
            .field("key_generated", &self.key_generated)
            .field("issuer", &self.issuer)
            .finish()
    }
}

impl std::fmt::Debug for RateLimitConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimitConfig")
            .field("enabled", &self.enabled)
            .field("login_per_ip", &self.login_per_ip)
            .field("login_per_email", &self.login_per_email)
            .field("register_per_ip", &self.register_per_ip)
            .field("mail_request_per_ip", &self.mail_request_per_ip)
            .field("mail_per_email", &self.mail_per_email)
            .field("mfa_per_ip", &self.mfa_per_ip)
            .field("password_check_per_user", &self.password_check_per_user)
            .field("password_check_per_ip", &self.password_check_per_ip)
            .field("login_per_account", &self.login_per_account)
            .field(
                "redis_url",
                &self.redis_url.as_deref().map(redact_url_password),
            )
            .field("redis_key_prefix", &self.redis_key_prefix)
            .finish()
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("production", &self.production)
            .field("secret_key", &REDACTED)
            .field("secret_generated", &self.secret_generated)
            .field("secret_key_previous", &self.secret_key_previous.len())
            .field("algorithm", &self.algorithm)
            .field("asymmetric_keys", &self.asymmetric_keys)
            .field("access_token_ttl", &self.access_token_ttl)
            .field("refresh_token_ttl", &self.refresh_token_ttl)
            .field("refresh_reuse_grace", &self.refresh_reuse_grace)
            .field("session_max_lifetime", &self.session_max_lifetime)
            .field("event_retention", &self.event_retention)
            .field("jwt_issuer", &self.jwt_issuer)
            .field("jwt_audience", &self.jwt_audience)
            .field("database_url", &redact_url_password(&self.database_url))
            .field("host", &self.host)
            .field("port", &self.port)
            .field("app_url", &self.app_url)
            .field("password", &self.password)
            .field(
                "require_email_verification",
                &self.require_email_verification,
            )
            .field("smtp", &self.smtp)
            .field("mail_from", &self.mail_from)
            .field("mail_outbox_dir", &self.mail_outbox_dir)
            .field("reset_token_ttl", &self.reset_token_ttl)
            .field("verify_token_ttl", &self.verify_token_ttl)
            .field("rate_limits", &self.rate_limits)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("metrics_addr", &self.metrics_addr)
            .field("refresh_cookie", &self.refresh_cookie)
            .field("cors_origins", &self.cors_origins)
            .field("route_prefix", &self.route_prefix)
            .field("log_format", &self.log_format)
            .field("data_dir", &self.data_dir)
            .field("mfa", &self.mfa)
            .field("passkeys", &self.passkeys)
            .field("registration_enabled", &self.registration_enabled)
            .field("pages", &self.pages)
            .finish()
    }
}

/// `scheme://user:password@host/…` with the password replaced.
fn redact_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            let slash = if rest.contains('/') { "/" } else { "" };
            format!("{scheme}://{user}:{REDACTED}@{host}{slash}{path}")
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn debug_output_hides_secrets() {
        let cfg = Config::from_vars([
            ("SECRET_KEY", "sq".repeat(20).as_str()),
            ("SECRET_KEY_PREVIOUS", "pq".repeat(20).as_str()),
            ("DATABASE_URL", "postgres://app:hunter2@db.example/auth"),
            ("SMTP_HOST", "smtp.example"),
            ("SMTP_USERNAME", "mailer"),
            ("SMTP_PASSWORD", "mail-secret"),
            ("REDIS_URL", "redis://:redis-secret@cache.example:6379/2"),
        ])
        .unwrap();
        let shown = format!("{cfg:?}");
        for secret in ["sqsq", "pqpq", "hunter2", "mail-secret", "redis-secret"] {
            assert!(!shown.contains(secret), "{secret} leaked: {shown}");
        }
        assert!(shown.contains("postgres://app:<redacted>@db.example/auth"));
        assert!(shown.contains("redis://:<redacted>@cache.example:6379/2"));
    }
}
