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
/// with mode 0700) with a new secret if absent. Servers started at once in
/// one directory end up with the same secret ([`publish_private`]).
///
/// [`publish_private`]: crate::files::publish_private
fn load_or_create_secret(dir: &Path) -> Result<String, ConfigError> {
    let path = dir.join("secret.key");
    let fail = |what: &str, e: std::io::Error| {
        ConfigError::new(
            "SECRET_KEY",
            format!("not set, and {what} {} failed: {e}", path.display()),
        )
    };
    let existing = match read_or_create(dir, &path, generate_secret) {
        Ok(Created::New(key)) => return Ok(key),
        Ok(Created::Existing(text)) => text,
        Err((what, e)) => return Err(fail(what, e)),
    };
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

/// What [`read_or_create`] found.
pub(super) enum Created {
    /// The file was absent: this value was generated and published.
    New(String),
    /// The file's text (written earlier, or just now by another process).
    Existing(String),
}

/// The text of `path`; if it is absent, a value from `generate` published
/// there with mode 0600 (creating `dir` with mode 0700). A failure names
/// what failed (`"reading"`, `"writing"`, …).
pub(super) fn read_or_create(
    dir: &Path,
    path: &Path,
    generate: impl FnOnce() -> String,
) -> Result<Created, (&'static str, std::io::Error)> {
    match std::fs::read_to_string(path) {
        Ok(existing) => return Ok(Created::Existing(existing)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(("reading", e)),
    }
    crate::files::create_private_dir_all(dir).map_err(|e| ("creating the directory of", e))?;
    let value = generate();
    if crate::files::publish_private(path, &value).map_err(|e| ("writing", e))? {
        Ok(Created::New(value))
    } else {
        std::fs::read_to_string(path)
            .map(Created::Existing)
            .map_err(|e| ("reading", e))
    }
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

    #[test]
    fn servers_started_at_once_agree_on_one_secret() {
        let dir = tempfile::tempdir().unwrap();
        let start = std::sync::Arc::new(std::sync::Barrier::new(8));
        let secrets: Vec<String> = (0..8)
            .map(|_| {
                let (dir, start) = (dir.path().join("data"), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    load_or_create_secret(&dir).unwrap()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        assert!(secrets.iter().all(|s| s == &secrets[0]), "{secrets:?}");
        let left: Vec<_> = std::fs::read_dir(dir.path().join("data"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["secret.key"], "no temporary file is left behind");
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
