//! Mail settings: SMTP delivery or the outbox directory, the sender, and the
//! e-mailed tokens (password reset, address verification).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::source::Source;
use super::{ConfigError, SmtpConfig, SmtpTls};

/// The mail settings of [`super::Config`].
pub(super) struct Mail {
    pub smtp: Option<SmtpConfig>,
    pub mail_from: String,
    pub mail_outbox_dir: PathBuf,
    pub reset_token_ttl: Duration,
    pub verify_token_ttl: Duration,
    pub require_email_verification: bool,
}

/// The mail settings; the outbox defaults to `DATA_DIR/outbox`.
pub(super) fn read(src: &Source<'_>, data_dir: &Path) -> Result<Mail, ConfigError> {
    let smtp = smtp(src)?;
    let mail_from = src
        .get("MAIL_FROM")
        .unwrap_or_else(|| "Portcullis <no-reply@localhost>".into());
    if let Err(e) = mail_from.parse::<lettre::message::Mailbox>() {
        return Err(ConfigError::new(
            "MAIL_FROM",
            format!("expected an address such as \"Portcullis <no-reply@example.com>\": {e}"),
        ));
    }
    Ok(Mail {
        smtp,
        mail_from,
        mail_outbox_dir: src
            .get("MAIL_OUTBOX_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| data_dir.join("outbox")),
        reset_token_ttl: Duration::from_secs(60 * src.positive("RESET_TOKEN_EXPIRE_MINUTES", 60)?),
        verify_token_ttl: Duration::from_secs(
            3600 * src.positive("VERIFY_TOKEN_EXPIRE_HOURS", 24)?,
        ),
        require_email_verification: src.flag("REQUIRE_EMAIL_VERIFICATION", false)?,
    })
}

/// Real delivery when `SMTP_HOST` is set: `SMTP_TLS` (default STARTTLS), a
/// port that defaults by it, optional credentials, and optionally
/// `SMTP_CA_FILE`, more certificate authorities to trust.
fn smtp(src: &Source<'_>) -> Result<Option<SmtpConfig>, ConfigError> {
    let Some(host) = src.get("SMTP_HOST") else {
        return Ok(None);
    };
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
    let ca_certificates = match src.get("SMTP_CA_FILE") {
        None => None,
        Some(_) if tls == SmtpTls::None => {
            return Err(ConfigError::new(
                "SMTP_CA_FILE",
                "is only used with SMTP_TLS=starttls or tls",
            ));
        }
        Some(path) => Some(read_ca_file(Path::new(&path))?),
    };
    Ok(Some(SmtpConfig {
        host,
        port: src.parse("SMTP_PORT", default_port, "a port number")?,
        username: src.get("SMTP_USERNAME"),
        password: src.get("SMTP_PASSWORD"),
        tls,
        ca_certificates,
    }))
}

/// The largest `SMTP_CA_FILE` read (a bundle of a few hundred certificates).
const MAX_CA_FILE_BYTES: u64 = 1024 * 1024;

/// Reads `SMTP_CA_FILE`: PEM certificates (`-----BEGIN CERTIFICATE-----`)
/// trusted besides the built-in roots, checked here so that a bad file stops
/// the start rather than every delivery.
fn read_ca_file(path: &Path) -> Result<Vec<u8>, ConfigError> {
    let fail = |why: String| ConfigError::new("SMTP_CA_FILE", format!("{}: {why}", path.display()));
    let metadata = std::fs::metadata(path).map_err(|e| fail(format!("cannot be read: {e}")))?;
    if !metadata.is_file() || metadata.len() > MAX_CA_FILE_BYTES {
        return Err(fail("is not a PEM certificate file".into()));
    }
    let pem = std::fs::read(path).map_err(|e| fail(format!("cannot be read: {e}")))?;
    let has_certificate = pem
        .windows(CERTIFICATE_LABEL.len())
        .any(|w| w == CERTIFICATE_LABEL);
    if !has_certificate || lettre::transport::smtp::client::Certificate::from_pem(&pem).is_err() {
        return Err(fail("holds no PEM certificate".into()));
    }
    Ok(pem)
}

const CERTIFICATE_LABEL: &[u8] = b"-----BEGIN CERTIFICATE-----";

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn senders_are_checked() {
        let err = Config::from_vars([("MAIL_FROM", "not an address")]).unwrap_err();
        assert_eq!(err.variable, "MAIL_FROM");
        assert!(Config::from_vars([("MAIL_FROM", "Acme <auth@acme.example>")]).is_ok());
    }
}
