//! New key pairs (`portcullis gen-key`, the development key) and writing
//! them to files.

use std::path::{Path, PathBuf};

use jsonwebtoken::Algorithm;
use zeroize::Zeroizing;

use super::{RSA_BITS, algorithm_name};

/// A key pair in PEM: PKCS#8 for the private key, SPKI for the public one,
/// as OpenSSL, PyJWT and jose read them.
pub struct PemPair {
    /// The private key (`-----BEGIN PRIVATE KEY-----`).
    pub private_pem: Zeroizing<String>,
    /// The public key (`-----BEGIN PUBLIC KEY-----`).
    pub public_pem: String,
}

/// A new random key pair of `algorithm` (RSA keys have [`RSA_BITS`] bits).
pub fn generate(algorithm: Algorithm) -> Result<PemPair, String> {
    use rand_core::OsRng;
    let failed = |e: &dyn std::fmt::Display| format!("cannot encode the new key: {e}");
    match algorithm {
        Algorithm::EdDSA => {
            use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
            use ed25519_dalek::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, KeypairBytes};
            let key = ed25519_dalek::SigningKey::generate(&mut OsRng);
            // PKCS#8 v1 (RFC 8410 §7): the seed alone. The v2 form, with the
            // public key inside, is what OpenSSL and Python's `cryptography`
            // refuse; both forms are read (see `public_jwk_of`).
            let v1 = KeypairBytes {
                secret_key: key.to_bytes(),
                public_key: None,
            };
            Ok(PemPair {
                private_pem: v1.to_pkcs8_pem(LineEnding::LF).map_err(|e| failed(&e))?,
                public_pem: key
                    .verifying_key()
                    .to_public_key_pem(LineEnding::LF)
                    .map_err(|e| failed(&e))?,
            })
        }
        Algorithm::ES256 => {
            use p256::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
            let key = p256::SecretKey::random(&mut OsRng);
            Ok(PemPair {
                private_pem: key.to_pkcs8_pem(LineEnding::LF).map_err(|e| failed(&e))?,
                public_pem: key
                    .public_key()
                    .to_public_key_pem(LineEnding::LF)
                    .map_err(|e| failed(&e))?,
            })
        }
        Algorithm::RS256 => {
            use rsa::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
            let key = rsa::RsaPrivateKey::new(&mut OsRng, RSA_BITS)
                .map_err(|e| format!("cannot generate an RSA key: {e}"))?;
            Ok(PemPair {
                private_pem: key.to_pkcs8_pem(LineEnding::LF).map_err(|e| failed(&e))?,
                public_pem: key
                    .to_public_key()
                    .to_public_key_pem(LineEnding::LF)
                    .map_err(|e| failed(&e))?,
            })
        }
        other => Err(format!(
            "{other:?} has no key pair; use RS256, ES256 or EdDSA"
        )),
    }
}

/// The development key pair of `algorithm` in `dir`: the private key's
/// path (`signing-key-<alg>.pem`) and its public key's
/// (`signing-key-<alg>.pub.pem`).
pub fn development_key_paths(dir: &Path, algorithm: Algorithm) -> (PathBuf, PathBuf) {
    let name = algorithm_name(algorithm).to_ascii_lowercase();
    (
        dir.join(format!("signing-key-{name}.pem")),
        dir.join(format!("signing-key-{name}.pub.pem")),
    )
}

/// Writes `pair` to `private_path` (mode 0600) and `public_path`, neither
/// of which may exist yet: an existing key is never overwritten.
/// `public_mode` is the public key's file mode.
pub fn write_pair(
    pair: &PemPair,
    private_path: &Path,
    public_path: &Path,
    public_mode: u32,
) -> std::io::Result<()> {
    use std::io::Write as _;
    for path in [private_path, public_path] {
        if path.exists() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} exists already; it is not overwritten", path.display()),
            ));
        }
    }
    let write = |path: &Path, contents: &str, mode: u32| -> std::io::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
        #[cfg(not(unix))]
        let _ = mode;
        let mut file = options.write(true).create_new(true).open(path)?;
        file.write_all(contents.as_bytes())?;
        file.sync_all()
    };
    write(private_path, &pair.private_pem, crate::files::FILE_MODE)?;
    if let Err(e) = write(public_path, &pair.public_pem, public_mode) {
        let _ = std::fs::remove_file(private_path);
        return Err(e);
    }
    Ok(())
}

/// The development signing key of `algorithm` kept in `dir` (created with
/// mode 0700 if missing): read when it exists, else generated once and
/// written there (the private key with mode 0600, beside its public key).
/// Returns the private key's PEM and path.
pub fn load_or_create_development_key(
    dir: &Path,
    algorithm: Algorithm,
) -> Result<(Zeroizing<Vec<u8>>, PathBuf), String> {
    let (private_path, public_path) = development_key_paths(dir, algorithm);
    match std::fs::read(&private_path) {
        Ok(pem) => return Ok((Zeroizing::new(pem), private_path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("reading {} failed: {e}", private_path.display())),
    }
    crate::files::create_private_dir_all(dir)
        .map_err(|e| format!("creating the directory {} failed: {e}", dir.display()))?;
    let pair = generate(algorithm)?;
    // A public key left behind by an earlier, interrupted start is replaced.
    let _ = std::fs::remove_file(&public_path);
    write_pair(&pair, &private_path, &public_path, crate::files::FILE_MODE)
        .map_err(|e| format!("writing {} failed: {e}", private_path.display()))?;
    Ok((
        Zeroizing::new(pair.private_pem.as_bytes().to_vec()),
        private_path,
    ))
}
