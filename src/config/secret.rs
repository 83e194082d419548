//! The signing secret when none is configured: a random one, kept in
//! `DATA_DIR/secret.key` (mode 0600) so that tokens survive a restart in
//! development, or held only in memory for tests and embedding.

use std::path::Path;

use super::ConfigError;

/// Minimum length of an HMAC secret, in characters.
pub const MIN_SECRET_LEN: usize = 32;

/// A new random secret: 48 random bytes, base64url (64 characters).
pub fn generate_secret() -> String {
    crate::random::signing_secret()
}

/// The secret to sign with and whether it was generated: `explicit` when
/// set; else the one in `data_dir` (created if absent) when `persist`; else a
/// new in-memory one. Called last, once everything else is valid, since it
/// may write to disk.
pub(super) fn resolve(
    explicit: Option<String>,
    persist: bool,
    data_dir: &Path,
) -> Result<(String, bool), ConfigError> {
    Ok(match explicit {
        Some(key) => (key, false),
        None if persist => (load_or_create_secret(data_dir)?, true),
        None => (generate_secret(), true),
    })
}

/// Reads `DIR/secret.key`, creating it (mode 0600, in a directory created
/// with mode 0700) with a new secret if absent.
fn load_or_create_secret(dir: &Path) -> Result<String, ConfigError> {
    let path = dir.join("secret.key");
    let fail = |what: &str, e: std::io::Error| {
        ConfigError::new(
            "SECRET_KEY",
            format!("not set, and {what} {} failed: {e}", path.display()),
        )
    };
    match std::fs::read_to_string(&path) {
        Ok(existing) => {
            let key = existing.trim().to_string();
            if key.chars().count() < MIN_SECRET_LEN {
                return Err(ConfigError::new(
                    "SECRET_KEY",
                    format!(
                        "{} holds fewer than {MIN_SECRET_LEN} characters",
                        path.display()
                    ),
                ));
            }
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            crate::files::create_private_dir_all(dir)
                .map_err(|e| fail("creating the directory of", e))?;
            let key = generate_secret();
            write_private(&path, &key).map_err(|e| fail("writing", e))?;
            Ok(key)
        }
        Err(e) => Err(fail("reading", e)),
    }
}

/// Creates `path` (which must not exist yet) readable by its owner only, and
/// writes `contents` and a newline to it.
pub(super) fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = crate::files::private_file_options()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_secret(dir.path()).unwrap();
        let second = load_or_create_secret(dir.path()).unwrap();
        assert_eq!(first, second);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("secret.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_new_data_directory_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        load_or_create_secret(&data).unwrap();
        let mode = std::fs::metadata(&data).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}
