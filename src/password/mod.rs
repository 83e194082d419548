//! Passwords: hashing (argon2id or bcrypt), verification, re-hash detection
//! and bounds (`stored`),
//! the password policy of SPEC §4, and a bounded pool that keeps hashing off
//! the async runtime.

mod policy;
mod pool;
mod share;
mod stored;

pub use policy::{MAX_PASSWORD_CHARS, NewPassword, is_common_password};
pub use pool::PasswordHasherPool;
pub use share::HashCaller;
use stored::check_argon2_bounds;
pub(crate) use stored::is_bcrypt;
pub use stored::{
    ARGON2_MAX_MEMORY_KIB, ARGON2_MAX_PARALLELISM, ARGON2_MAX_TIME, BCRYPT_MAX_COST, check_bounds,
    is_known_hash_format, needs_rehash,
};

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::config::{HasherKind, PasswordConfig};

/// bcrypt silently ignores bytes past 72; Portcullis refuses such passwords instead.
pub const BCRYPT_MAX_BYTES: usize = 72;

/// What to hash new passwords with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashPolicy {
    /// Algorithm of new hashes.
    pub kind: HasherKind,
    /// bcrypt cost, when `kind` is bcrypt.
    pub bcrypt_rounds: u32,
}

impl HashPolicy {
    /// The policy described by a [`PasswordConfig`].
    pub fn from_config(cfg: &PasswordConfig) -> Self {
        Self {
            kind: cfg.hasher,
            bcrypt_rounds: cfg.bcrypt_rounds,
        }
    }
}

impl Default for HashPolicy {
    fn default() -> Self {
        Self {
            kind: HasherKind::Argon2id,
            bcrypt_rounds: 12,
        }
    }
}

/// Why a password could not be hashed or a hash could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// bcrypt cannot take more than 72 bytes without truncating.
    #[error("password is longer than 72 bytes, which bcrypt cannot hash without truncating")]
    TooLongForBcrypt,
    /// The stored hash is in no format Portcullis knows.
    #[error("unrecognised password hash format")]
    UnknownFormat,
    /// The hash's cost parameters are past the bounds of SPEC §7: it is not
    /// computed (a huge argon2 memory cost would allocate without limit).
    #[error(
        "password hash parameters out of bounds ({0}; at most m={ARGON2_MAX_MEMORY_KIB}, t={ARGON2_MAX_TIME}, p={ARGON2_MAX_PARALLELISM}, bcrypt cost {BCRYPT_MAX_COST})"
    )]
    OutOfBounds(String),
    /// The hashing library failed.
    #[error("password hashing failed: {0}")]
    Backend(String),
}

fn argon2_owasp() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::DEFAULT)
}

/// Hashes `password` with `policy` (a slow call: run it off the async runtime).
///
/// ```
/// use portcullis::password::{hash_password, verify_password, HashPolicy};
/// let hash = hash_password("correct horse battery", HashPolicy::default()).unwrap();
/// assert!(hash.starts_with("$argon2id$"));
/// assert!(verify_password("correct horse battery", &hash).unwrap());
/// ```
pub fn hash_password(password: &str, policy: HashPolicy) -> Result<String, HashError> {
    match policy.kind {
        HasherKind::Argon2id => argon2_owasp()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| HashError::Backend(e.to_string())),
        HasherKind::Bcrypt => {
            if password.len() > BCRYPT_MAX_BYTES {
                return Err(HashError::TooLongForBcrypt);
            }
            // With at most 72 bytes every byte of the password is used; only
            // bcrypt's trailing NUL may be cut, which loses nothing.
            bcrypt::hash(password, policy.bcrypt_rounds)
                .map_err(|e| HashError::Backend(e.to_string()))
        }
    }
}

/// The working memory of one hashing thread: argon2's blocks, allocated
/// once and reused by every hash the thread computes (SPEC §9: a flood of
/// logins raises memory by at most this per hashing thread). It grows only
/// for a stored hash with a larger memory cost than any before.
#[derive(Default)]
pub struct HashMemory(Vec<argon2::Block>);

impl std::fmt::Debug for HashMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HashMemory({} KiB)", self.0.len())
    }
}

impl HashMemory {
    /// Memory for the current argon2id policy, allocated now.
    pub fn for_policy() -> Self {
        let mut memory = Self::default();
        memory.blocks(Params::DEFAULT.block_count());
        memory
    }

    /// The first `count` blocks, growing the memory if it has fewer.
    fn blocks(&mut self, count: usize) -> &mut [argon2::Block] {
        if self.0.len() < count {
            self.0.resize(count, argon2::Block::default());
        }
        &mut self.0[..count]
    }
}

/// [`hash_password`] computed in `memory` instead of freshly allocated memory.
pub fn hash_password_in(
    password: &str,
    policy: HashPolicy,
    memory: &mut HashMemory,
) -> Result<String, HashError> {
    use argon2::password_hash::phc::{Output, ParamsString, Salt};
    if policy.kind != HasherKind::Argon2id {
        return hash_password(password, policy);
    }
    let backend = |e: &dyn std::fmt::Display| HashError::Backend(e.to_string());
    let params = Params::DEFAULT;
    let salt: [u8; 16] = rand::random();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2_owasp()
        .hash_password_into_with_memory(
            password.as_bytes(),
            &salt,
            &mut out,
            memory.blocks(params.block_count()),
        )
        .map_err(|e| backend(&e))?;
    let hash = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| backend(&e))?,
        salt: Some(Salt::new(&salt).map_err(|e| backend(&e))?),
        hash: Some(Output::new(&out).map_err(|e| backend(&e))?),
    };
    Ok(hash.to_string())
}

/// [`verify_password`] computed in `memory` instead of freshly allocated
/// memory; the outputs are compared in constant time.
pub fn verify_password_in(
    password: &str,
    hash: &str,
    memory: &mut HashMemory,
) -> Result<bool, HashError> {
    use argon2::password_hash::phc::Output;
    if !hash.starts_with("$argon2") {
        return verify_password(password, hash);
    }
    let parsed = PasswordHash::new(hash).map_err(|_| HashError::UnknownFormat)?;
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return Err(HashError::UnknownFormat);
    };
    let algorithm =
        Algorithm::try_from(parsed.algorithm.as_str()).map_err(|_| HashError::UnknownFormat)?;
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(|_| HashError::UnknownFormat)?
        .unwrap_or_default();
    let params = Params::try_from(&parsed).map_err(|_| HashError::UnknownFormat)?;
    check_argon2_bounds(&params)?;
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params.clone())
        .hash_password_into_with_memory(
            password.as_bytes(),
            salt,
            &mut out,
            memory.blocks(params.block_count()),
        )
        .map_err(|e| HashError::Backend(e.to_string()))?;
    let computed = Output::new(&out).map_err(|e| HashError::Backend(e.to_string()))?;
    Ok(&computed == expected)
}

/// Whether `password` matches `hash` (argon2 PHC or bcrypt `$2a$/$2b$/$2y$`).
/// Comparison is constant-time inside both libraries.
pub fn verify_password(password: &str, hash: &str) -> Result<bool, HashError> {
    check_bounds(hash)?;
    if is_bcrypt(hash) {
        // A password over 72 bytes can never have been hashed by us; it fails
        // to verify rather than matching on its first 72 bytes.
        if password.len() > BCRYPT_MAX_BYTES {
            return Ok(false);
        }
        return bcrypt::verify(password, hash).map_err(|e| HashError::Backend(e.to_string()));
    }
    if hash.starts_with("$argon2") {
        let parsed = PasswordHash::new(hash).map_err(|_| HashError::UnknownFormat)?;
        return match Argon2::default().verify_password(password.as_bytes(), &parsed) {
            Ok(()) => Ok(true),
            Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
            Err(e) => Err(HashError::Backend(e.to_string())),
        };
    }
    Err(HashError::UnknownFormat)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BCRYPT: HashPolicy = HashPolicy {
        kind: HasherKind::Bcrypt,
        bcrypt_rounds: 4,
    };

    #[test]
    fn argon2_roundtrip_and_wrong_password() {
        let hash = hash_password("s3cret-Pass", HashPolicy::default()).unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_password("s3cret-Pass", &hash).unwrap());
        assert!(!verify_password("s3cret-pass", &hash).unwrap());
        assert!(!needs_rehash(&hash, HashPolicy::default()));
        assert!(needs_rehash(&hash, BCRYPT));
    }

    #[test]
    fn bcrypt_roundtrip_and_no_truncation() {
        let hash = hash_password("s3cret-Pass", BCRYPT).unwrap();
        assert!(hash.starts_with("$2b$04$"));
        assert!(verify_password("s3cret-Pass", &hash).unwrap());
        assert!(needs_rehash(&hash, HashPolicy::default()));
        assert!(needs_rehash(
            &hash,
            HashPolicy {
                kind: HasherKind::Bcrypt,
                bcrypt_rounds: 5
            }
        ));
        let long = "a".repeat(73);
        assert!(matches!(
            hash_password(&long, BCRYPT),
            Err(HashError::TooLongForBcrypt)
        ));
        // A 72-byte prefix must not verify a longer password.
        let h72 = hash_password(&"a".repeat(72), BCRYPT).unwrap();
        assert!(!verify_password(&long, &h72).unwrap());
    }

    #[test]
    fn hashing_in_reused_memory_agrees_with_the_library() {
        let mut memory = HashMemory::for_policy();
        let ours = hash_password_in("s3cret-Pass", HashPolicy::default(), &mut memory).unwrap();
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        assert!(verify_password("s3cret-Pass", &ours).unwrap());
        assert!(!verify_password("s3cret-pass", &ours).unwrap());
        let theirs = hash_password("s3cret-Pass", HashPolicy::default()).unwrap();
        assert!(verify_password_in("s3cret-Pass", &theirs, &mut memory).unwrap());
        assert!(!verify_password_in("s3cret-pass", &theirs, &mut memory).unwrap());
        // Other parameters, and bcrypt, through the same memory.
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8192, 1, 1, None).unwrap(),
        )
        .hash_password(b"pw")
        .unwrap()
        .to_string();
        assert!(verify_password_in("pw", &weak, &mut memory).unwrap());
        assert!(!verify_password_in("px", &weak, &mut memory).unwrap());
        let bcrypt = hash_password("pw-bcrypt", BCRYPT).unwrap();
        assert!(verify_password_in("pw-bcrypt", &bcrypt, &mut memory).unwrap());
        assert!(matches!(
            verify_password_in("pw", "plaintext", &mut memory),
            Err(HashError::UnknownFormat)
        ));
        assert_eq!(memory.0.len(), Params::DEFAULT.block_count());
    }

    #[test]
    fn python_style_hashes_verify() {
        // $2a$/$2y$ prefixes (PHP, passlib) verify as well.
        let hash = hash_password("legacy-password", BCRYPT).unwrap();
        let as_2y = hash.replacen("$2b$", "$2y$", 1);
        assert!(verify_password("legacy-password", &as_2y).unwrap());
        assert!(is_known_hash_format(&as_2y));
    }

    #[test]
    fn weaker_argon2_needs_rehash_and_unknown_format_errors() {
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8192, 1, 1, None).unwrap(),
        )
        .hash_password(b"pw")
        .unwrap()
        .to_string();
        assert!(verify_password("pw", &weak).unwrap());
        assert!(needs_rehash(&weak, HashPolicy::default()));
        assert!(matches!(
            verify_password("pw", "plaintext"),
            Err(HashError::UnknownFormat)
        ));
        assert!(!is_known_hash_format("md5$abc"));
    }
}
