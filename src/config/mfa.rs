//! Second-factor settings (SPEC §10): the key that encrypts TOTP secrets and
//! keys recovery-code hashes (`MFA_ENCRYPTION_KEY`), and the issuer name
//! authenticator apps show (`MFA_ISSUER`).
//!
//! Without `MFA_ENCRYPTION_KEY`, development generates one into
//! `DATA_DIR/mfa.key` (mode 0600), as it does the signing secret;
//! production refuses to start (exit 2, naming the variable). A
//! configuration built from explicit variables (`Config::from_vars`, the
//! library's) writes no file: without the variable it has no key, and TOTP
//! cannot be turned on (never a random key that a restart would lose).

use std::path::Path;

use base64::Engine;

use super::source::Source;
use super::{ConfigError, MfaConfig};

/// The variable holding the key.
const KEY_VAR: &str = "MFA_ENCRYPTION_KEY";
/// Its file in the data directory when generated.
const KEY_FILE: &str = "mfa.key";

/// The settings without the key, and the key when it is set.
pub(super) struct Read {
    key: Option<[u8; 32]>,
    issuer: Option<String>,
}

/// Reads and checks `MFA_ENCRYPTION_KEY` and `MFA_ISSUER`; in production
/// the key must be set.
pub(super) fn read(src: &Source<'_>, production: bool) -> Result<Read, ConfigError> {
    let key = match src.get(KEY_VAR) {
        Some(text) => Some(decode_key(&text).map_err(|why| ConfigError::new(KEY_VAR, why))?),
        None if production => {
            return Err(ConfigError::new(
                KEY_VAR,
                "required when PORTCULLIS_ENV=production: 32 random bytes, base64 \
                 (e.g. `openssl rand -base64 32`)",
            ));
        }
        None => None,
    };
    let issuer = src.get("MFA_ISSUER").filter(|s| !s.trim().is_empty());
    if let Some(issuer) = &issuer
        && issuer.contains(':')
    {
        return Err(ConfigError::new(
            "MFA_ISSUER",
            "must not contain ':' (it separates the issuer from the account in authenticator apps)",
        ));
    }
    Ok(Read { key, issuer })
}

impl Read {
    /// The issuer: `MFA_ISSUER`, else the host of `app_url`.
    pub(super) fn issuer(&self, app_url: &str) -> String {
        self.issuer.clone().unwrap_or_else(|| host_of(app_url))
    }
}

/// 32 bytes from standard or URL-safe base64, padded or not.
fn decode_key(text: &str) -> Result<[u8; 32], String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let text = text.trim();
    let bytes = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
        .ok_or_else(|| {
            "must be base64 (32 random bytes, e.g. `openssl rand -base64 32`)".to_string()
        })?;
    let key: [u8; 32] = bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("must decode to 32 bytes, not {}", b.len()))?;
    if key.iter().all(|b| *b == key[0]) {
        return Err("must be random, not one byte repeated".into());
    }
    Ok(key)
}

/// The finished settings: the key as set, else generated into the data
/// directory when `persist`, else none; the issuer as set, else the host of
/// `app_url`. Called once everything else is valid.
pub(super) fn resolve(
    read: Read,
    persist: bool,
    data_dir: &Path,
    app_url: &str,
) -> Result<MfaConfig, ConfigError> {
    let (encryption_key, key_generated) = match read.key {
        Some(key) => (Some(key), false),
        None if persist => (Some(load_or_create(data_dir)?), true),
        None => (None, false),
    };
    let issuer = read.issuer(app_url);
    Ok(MfaConfig {
        encryption_key,
        key_generated,
        issuer,
    })
}

/// The host of a URL (`http://localhost:8000` → `localhost`).
fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host.starts_with('[') {
        host.split_once(']')
            .map_or(host, |(h, _)| h)
            .trim_start_matches('[')
    } else {
        host.split(':').next().unwrap_or(host)
    };
    if host.is_empty() {
        "Portcullis".to_string()
    } else {
        host.to_string()
    }
}

/// Reads `DIR/mfa.key`, creating it (mode 0600) with a new key if absent;
/// servers started at once in one directory end up with the same key.
fn load_or_create(dir: &Path) -> Result<[u8; 32], ConfigError> {
    use super::secret::{Created, read_or_create};
    let path = dir.join(KEY_FILE);
    let text = match read_or_create(dir, &path, || {
        let key: [u8; 32] = rand::random();
        base64::engine::general_purpose::STANDARD.encode(key)
    }) {
        Ok(Created::New(text) | Created::Existing(text)) => text,
        Err((what, e)) => {
            return Err(ConfigError::new(
                KEY_VAR,
                format!("not set, and {what} {} failed: {e}", path.display()),
            ));
        }
    };
    decode_key(&text).map_err(|why| ConfigError::new(KEY_VAR, format!("{}: {why}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn production_requires_the_key_and_bad_keys_name_it() {
        let err = Config::from_vars([
            ("PORTCULLIS_ENV", "production"),
            ("SECRET_KEY", &"ab".repeat(16)),
        ])
        .unwrap_err();
        assert_eq!(err.variable, "MFA_ENCRYPTION_KEY");
        for bad in ["not base64!", "c2hvcnQ=", &"QUFB".repeat(11)] {
            let err = Config::from_vars([("MFA_ENCRYPTION_KEY", bad)]).unwrap_err();
            assert_eq!(err.variable, "MFA_ENCRYPTION_KEY", "{bad}");
        }
        let key = base64::engine::general_purpose::STANDARD.encode([7u8, 9].repeat(16));
        let cfg = Config::from_vars([
            ("PORTCULLIS_ENV", "production"),
            ("SECRET_KEY", &"ab".repeat(16)),
            ("MFA_ENCRYPTION_KEY", &key),
        ])
        .unwrap();
        assert_eq!(
            cfg.mfa.encryption_key,
            Some(<[u8; 32]>::try_from([7u8, 9].repeat(16)).unwrap())
        );
        assert!(!cfg.mfa.key_generated);
        assert!(!format!("{cfg:?}").contains(&key));
    }

    #[test]
    fn the_issuer_defaults_to_the_host_of_app_url() {
        let cfg = Config::from_vars([("APP_URL", "https://auth.example.com:8443/base")]).unwrap();
        assert_eq!(cfg.mfa.issuer, "auth.example.com");
        assert_eq!(cfg.mfa.encryption_key, None, "no key made up in memory");
        assert!(!cfg.mfa.key_generated);
        let cfg = Config::from_vars([("MFA_ISSUER", "Example App")]).unwrap();
        assert_eq!(cfg.mfa.issuer, "Example App");
        assert_eq!(host_of("http://[::1]:8000"), "::1");
        assert_eq!(
            Config::from_vars([("MFA_ISSUER", "a:b")])
                .unwrap_err()
                .variable,
            "MFA_ISSUER"
        );
    }

    #[test]
    fn a_generated_key_is_kept_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path()).unwrap();
        assert_eq!(load_or_create(dir.path()).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
