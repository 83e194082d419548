//! Files and directories that only Portcullis's own user may read (SPEC §1):
//! what it creates under `DATA_DIR` and in the outbox (the database, the
//! generated secret, mail carrying live links) gets mode 0600, and the
//! directories holding them 0700, whatever the process's umask.
//!
//! Only what is created here gets these modes: an existing directory (say a
//! `MAIL_OUTBOX_DIR` shared with a mail reader) or file keeps the mode its
//! owner gave it.

use std::io;
use std::path::Path;

/// Mode of the files Portcullis creates.
pub const FILE_MODE: u32 = 0o600;
/// Mode of the directories Portcullis creates.
pub const DIR_MODE: u32 = 0o700;

/// Creates `dir` and any missing parent, each new one with mode 0700
/// ([`DIR_MODE`]); directories that exist already are left as they are.
pub fn create_private_dir_all(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, DIR_MODE);
    builder.create(dir)
}

/// Options that create a file with mode 0600 ([`FILE_MODE`]) when it does
/// not exist yet (the mode of an existing file is not changed).
pub fn private_file_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    options
}

/// Creates `path` empty with mode 0600 unless it exists (then it is left
/// alone, contents and mode): the SQLite database before SQLite opens it,
/// since SQLite creates files (and its `-wal` and `-shm` files, which copy
/// the database file's mode) with the umask's default, usually 0644.
pub fn create_private_file_if_missing(path: &Path) -> io::Result<()> {
    match private_file_options()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Publishes `contents` (and a newline) at `path` with mode 0600, whole or
/// not at all, and never over an existing file: it is written and synced
/// under a temporary name beside `path`, then hard-linked to `path`, which
/// fails if `path` exists. `Ok(false)` when another process published first
/// (two servers started at once in one directory): the caller then reads
/// theirs, which is complete, so both use the same value.
pub fn publish_private(path: &Path, contents: &str) -> io::Result<bool> {
    use std::io::Write;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(
        ".{name}.{}.{}",
        std::process::id(),
        crate::random::random_id()
    ));
    let written = (|| {
        let mut file = private_file_options()
            .write(true)
            .create_new(true)
            .open(&temporary)?;
        file.write_all(contents.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        std::fs::hard_link(&temporary, path)
    })();
    let _ = std::fs::remove_file(&temporary);
    match written {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether `path` can be read or written by users other than its owner
/// (always `false` off Unix).
pub fn readable_by_others(path: &Path) -> io::Result<bool> {
    let metadata = std::fs::metadata(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        Ok(metadata.permissions().mode() & 0o077 != 0)
    }
    #[cfg(not(unix))]
    {
        let _ = metadata;
        Ok(false)
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_directories_and_files_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        create_private_dir_all(&nested).unwrap();
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        assert_eq!(mode(&nested), 0o700);
        let file = nested.join("x.db");
        create_private_file_if_missing(&file).unwrap();
        assert_eq!(mode(&file), 0o600);
        assert!(!readable_by_others(&file).unwrap());
    }

    #[test]
    fn existing_ones_are_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.db");
        std::fs::write(&file, b"data").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        create_private_file_if_missing(&file).unwrap();
        assert_eq!(mode(&file), 0o640);
        assert_eq!(std::fs::read(&file).unwrap(), b"data");
        assert!(readable_by_others(&file).unwrap());
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        create_private_dir_all(dir.path()).unwrap();
        assert_eq!(mode(dir.path()), 0o755);
    }
}
