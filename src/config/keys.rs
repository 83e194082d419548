//! The key files of the asymmetric algorithms (`ALGORITHM=RS256|ES256|EdDSA`):
//! `PRIVATE_KEY_FILE` signs, `PUBLIC_KEY_FILES` lists the other public keys
//! that verify. The files are read and checked here (see
//! [`crate::token::keys`]); a development key pair is generated into
//! `DATA_DIR` only by [`resolve`], once everything else is valid.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use jsonwebtoken::{Algorithm, EncodingKey};

use super::ConfigError;
use super::source::Source;
use crate::token::keys::{self, AsymmetricKeys, VerifyingKey, algorithm_name};

/// The key files, read and checked; the signing key is `None` when it is to
/// be generated (development only).
pub(super) struct KeyFiles {
    algorithm: Algorithm,
    signing: Option<(EncodingKey, VerifyingKey)>,
    others: Vec<VerifyingKey>,
}

/// `PRIVATE_KEY_FILE` and `PUBLIC_KEY_FILES` for `algorithm`: `None` for
/// the HMAC algorithms, which refuse them (a key file that silently signs
/// nothing is a mistake worth stopping for). In production an asymmetric
/// algorithm requires `PRIVATE_KEY_FILE`.
pub(super) fn read(
    src: &Source<'_>,
    production: bool,
    algorithm: Algorithm,
) -> Result<Option<KeyFiles>, ConfigError> {
    let private = src.get("PRIVATE_KEY_FILE").map(PathBuf::from);
    let public: Vec<PathBuf> = src
        .list("PUBLIC_KEY_FILES")
        .into_iter()
        .map(PathBuf::from)
        .collect();
    let name = algorithm_name(algorithm);
    if !keys::is_asymmetric(algorithm) {
        let hmac_refuses = |variable: &'static str| {
            ConfigError::new(
                variable,
                format!(
                    "key files are for ALGORITHM=RS256, ES256 or EdDSA; {name} signs with SECRET_KEY"
                ),
            )
        };
        if private.is_some() {
            return Err(hmac_refuses("PRIVATE_KEY_FILE"));
        }
        if !public.is_empty() {
            return Err(hmac_refuses("PUBLIC_KEY_FILES"));
        }
        return Ok(None);
    }
    if !src.list("SECRET_KEY_PREVIOUS").is_empty() {
        return Err(ConfigError::new(
            "SECRET_KEY_PREVIOUS",
            format!(
                "HMAC keys never verify with ALGORITHM={name}; list the older public keys in PUBLIC_KEY_FILES"
            ),
        ));
    }
    let signing = match private {
        Some(path) => {
            let pem = read_pem("PRIVATE_KEY_FILE", &path)?;
            let key = keys::signing_key(algorithm, &pem).map_err(|why| {
                ConfigError::new("PRIVATE_KEY_FILE", format!("{}: {why}", path.display()))
            })?;
            Some(key)
        }
        None if production => {
            return Err(ConfigError::new(
                "PRIVATE_KEY_FILE",
                format!(
                    "required with ALGORITHM={name} when PORTCULLIS_ENV=production (write a key pair with `portcullis gen-key --algorithm {name}`)"
                ),
            ));
        }
        None => None,
    };
    let mut others = Vec::with_capacity(public.len());
    for path in &public {
        let pem = read_pem("PUBLIC_KEY_FILES", path)?;
        let key = keys::verifying_key(algorithm, &pem).map_err(|why| {
            ConfigError::new("PUBLIC_KEY_FILES", format!("{}: {why}", path.display()))
        })?;
        others.push(key);
    }
    Ok(Some(KeyFiles {
        algorithm,
        signing,
        others,
    }))
}

/// The contents of the key file `path`, named by `variable` (at most 64 KiB:
/// no PEM key is larger).
fn read_pem(
    variable: &'static str,
    path: &Path,
) -> Result<zeroize::Zeroizing<Vec<u8>>, ConfigError> {
    let fail = |why: String| ConfigError::new(variable, format!("{}: {why}", path.display()));
    let metadata = std::fs::metadata(path).map_err(|e| fail(format!("cannot be read: {e}")))?;
    if !metadata.is_file() || metadata.len() > 64 * 1024 {
        return Err(fail("is not a PEM key file".into()));
    }
    std::fs::read(path)
        .map(zeroize::Zeroizing::new)
        .map_err(|e| fail(format!("cannot be read: {e}")))
}

/// The keys of `files`, generating the development signing key when none
/// is configured: into `DATA_DIR` (once; later starts read it) when
/// `persist`, else in memory.
pub(super) fn resolve(
    files: Option<KeyFiles>,
    persist: bool,
    data_dir: &Path,
) -> Result<Option<Arc<AsymmetricKeys>>, ConfigError> {
    let Some(files) = files else {
        return Ok(None);
    };
    let algorithm = files.algorithm;
    let keys = match files.signing {
        Some(signing) => AsymmetricKeys::new(algorithm, signing, files.others),
        None if persist => {
            let fail =
                |why: String| ConfigError::new("PRIVATE_KEY_FILE", format!("not set, and {why}"));
            let (pem, path) =
                keys::load_or_create_development_key(data_dir, algorithm).map_err(fail)?;
            let signing = keys::signing_key(algorithm, &pem).map_err(|why| {
                ConfigError::new(
                    "PRIVATE_KEY_FILE",
                    format!("not set, and the development key {}: {why}", path.display()),
                )
            })?;
            AsymmetricKeys::new(algorithm, signing, files.others).generated(path)
        }
        None => {
            let in_memory = |why: String| ConfigError::new("PRIVATE_KEY_FILE", why);
            let pair = keys::generate(algorithm).map_err(in_memory)?;
            let signing =
                keys::signing_key(algorithm, pair.private_pem.as_bytes()).map_err(in_memory)?;
            AsymmetricKeys::new(algorithm, signing, files.others)
        }
    };
    Ok(Some(Arc::new(keys)))
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::token::keys;
    use jsonwebtoken::Algorithm;

    fn write(dir: &std::path::Path, name: &str, contents: &str) -> String {
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        path.display().to_string()
    }

    #[test]
    fn production_requires_the_private_key_file() {
        for alg in ["RS256", "ES256", "EdDSA"] {
            let err = Config::from_vars([("PORTCULLIS_ENV", "production"), ("ALGORITHM", alg)])
                .unwrap_err();
            assert_eq!(err.variable, "PRIVATE_KEY_FILE", "{alg}");
            assert!(err.problem.contains("gen-key"), "{}", err.problem);
        }
    }

    #[test]
    fn key_files_are_checked_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let ed = keys::generate(Algorithm::EdDSA).unwrap();
        let ec = keys::generate(Algorithm::ES256).unwrap();
        let ed_private = write(dir.path(), "ed.pem", &ed.private_pem);
        let ed_public = write(dir.path(), "ed.pub.pem", &ed.public_pem);
        let ec_public = write(dir.path(), "ec.pub.pem", &ec.public_pem);

        let cfg = Config::from_vars([
            ("ALGORITHM", "EdDSA"),
            ("PRIVATE_KEY_FILE", ed_private.as_str()),
            ("PUBLIC_KEY_FILES", ed_public.as_str()),
        ])
        .unwrap();
        let keys = cfg.asymmetric_keys.as_ref().unwrap();
        assert_eq!(keys.verifying_keys().len(), 1);
        assert!(keys.generated_into().is_none());

        let bad = |vars: Vec<(&str, &str)>| Config::from_vars(vars).unwrap_err();
        let err = bad(vec![
            ("ALGORITHM", "ES256"),
            ("PRIVATE_KEY_FILE", &ed_private),
        ]);
        assert_eq!(err.variable, "PRIVATE_KEY_FILE");
        assert!(err.problem.contains("ed.pem"), "{}", err.problem);
        let err = bad(vec![
            ("ALGORITHM", "EdDSA"),
            ("PRIVATE_KEY_FILE", &ed_private),
            ("PUBLIC_KEY_FILES", &format!("{ed_public}, {ec_public}")),
        ]);
        assert_eq!(err.variable, "PUBLIC_KEY_FILES");
        assert!(err.problem.contains("ec.pub.pem"), "{}", err.problem);
        let err = bad(vec![
            ("ALGORITHM", "EdDSA"),
            ("PRIVATE_KEY_FILE", "/no/such/key.pem"),
        ]);
        assert_eq!(err.variable, "PRIVATE_KEY_FILE");
        let err = bad(vec![("PRIVATE_KEY_FILE", &ed_private)]);
        assert_eq!(err.variable, "PRIVATE_KEY_FILE", "HS256 takes no key file");
        let err = bad(vec![("PUBLIC_KEY_FILES", &ed_public)]);
        assert_eq!(err.variable, "PUBLIC_KEY_FILES");
        let err = bad(vec![
            ("ALGORITHM", "EdDSA"),
            ("SECRET_KEY_PREVIOUS", &"ab".repeat(20)),
        ]);
        assert_eq!(err.variable, "SECRET_KEY_PREVIOUS");
    }

    /// The refresh grace hands out the successor a keyed hash names: every
    /// instance must agree on its key. Without `SECRET_KEY` it follows the
    /// private key; with it, it survives a change of signing key.
    #[test]
    fn instances_agree_on_the_successor_key() {
        use crate::token::TokenService;
        let dir = tempfile::tempdir().unwrap();
        let a = keys::generate(Algorithm::EdDSA).unwrap();
        let b = keys::generate(Algorithm::EdDSA).unwrap();
        let a = write(dir.path(), "a.pem", &a.private_pem);
        let b = write(dir.path(), "b.pem", &b.private_pem);
        let service = |private: &str, secret: Option<&str>| {
            let mut vars = vec![("ALGORITHM", "EdDSA"), ("PRIVATE_KEY_FILE", private)];
            vars.extend(secret.map(|s| ("SECRET_KEY", s)));
            let cfg = Config::from_vars(vars).unwrap();
            assert!(!cfg.secret_generated);
            TokenService::from_config(&cfg)
        };
        let jti = "a-spent-refresh-token";
        assert_eq!(
            service(&a, None).successor_jti(jti),
            service(&a, None).successor_jti(jti)
        );
        assert_ne!(
            service(&a, None).successor_jti(jti),
            service(&b, None).successor_jti(jti)
        );
        let secret = "kq".repeat(20);
        assert_eq!(
            service(&a, Some(&secret)).successor_jti(jti),
            service(&b, Some(&secret)).successor_jti(jti)
        );
    }

    #[test]
    fn production_needs_no_secret_key_with_key_files() {
        let dir = tempfile::tempdir().unwrap();
        let ec = keys::generate(Algorithm::ES256).unwrap();
        let private = write(dir.path(), "ec.pem", &ec.private_pem);
        let cfg = Config::from_vars([
            ("PORTCULLIS_ENV", "production"),
            ("ALGORITHM", "ES256"),
            ("PRIVATE_KEY_FILE", private.as_str()),
            (
                "MFA_ENCRYPTION_KEY",
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            ),
        ])
        .unwrap();
        assert_eq!(cfg.algorithm, Algorithm::ES256);
        assert!(!cfg.secret_generated);
    }
}
