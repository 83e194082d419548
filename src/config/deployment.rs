//! How this instance runs: production or development, the data directory,
//! the database and the log format.

use std::path::{Path, PathBuf};

use super::source::Source;
use super::{ConfigError, LogFormat};

/// `PORTCULLIS_ENV` (`true` for production) and `DATA_DIR`, which other
/// settings depend on.
pub(super) fn mode(src: &Source<'_>) -> Result<(bool, PathBuf), ConfigError> {
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
    Ok((production, data_dir))
}

/// `SECURITY_EVENT_RETENTION_DAYS` (90): how long security events are kept.
pub(super) fn event_retention(src: &Source<'_>) -> Result<std::time::Duration, ConfigError> {
    src.duration(
        "SECURITY_EVENT_RETENTION_DAYS",
        90,
        std::time::Duration::from_secs(86_400),
    )
}

/// `DATABASE_URL`: SQLite or PostgreSQL, by default `DATA_DIR/portcullis.db`.
pub(super) fn database_url(src: &Source<'_>, data_dir: &Path) -> Result<String, ConfigError> {
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
    Ok(database_url)
}

/// `LOG_FORMAT`: by default pretty when standard error (where the logs go)
/// is a terminal, else JSON.
pub(super) fn log_format(src: &Source<'_>) -> Result<LogFormat, ConfigError> {
    match src.get("LOG_FORMAT").map(|v| v.to_ascii_lowercase()) {
        None => {
            if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                Ok(LogFormat::Pretty)
            } else {
                Ok(LogFormat::Json)
            }
        }
        Some(v) if v == "pretty" => Ok(LogFormat::Pretty),
        Some(v) if v == "json" => Ok(LogFormat::Json),
        Some(v) => Err(ConfigError::new(
            "LOG_FORMAT",
            format!("expected pretty or json, got {v:?}"),
        )),
    }
}
