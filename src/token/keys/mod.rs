//! Asymmetric keys (SPEC §5): RS256, ES256 and EdDSA.
//!
//! One private key signs (`PRIVATE_KEY_FILE`); its own public key and every
//! key of `PUBLIC_KEY_FILES` verify. Each public key is identified by its
//! RFC 7638 thumbprint (SHA-256, base64url), which is the `kid` of the
//! tokens it verifies and of its entry in `/.well-known/jwks.json`.
//!
//! Everything cryptographic is jsonwebtoken's or the RustCrypto crates' that
//! its `rust_crypto` backend uses: PEM parsing and the JWK of a key come
//! from jsonwebtoken, key generation from `rsa`, `p256` and `ed25519-dalek`.
//! The keys are parsed and checked once, at start-up: a key of the wrong
//! type, curve or size, or a private key that cannot sign, stops start-up
//! with a message naming the file.

mod generate;
mod jwk;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

pub use generate::{
    PemPair, development_key_paths, generate, load_or_create_development_key, write_pair,
};
pub use jwk::VerifyingKey;
use jwk::public_jwk_of;

/// The asymmetric algorithms Portcullis signs with.
pub const ASYMMETRIC_ALGORITHMS: [Algorithm; 3] =
    [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

/// The size of the RSA keys [`generate`] makes, in bits.
pub const RSA_BITS: usize = 2048;

/// The RSA moduli accepted, in bits: at least 2048 (NIST SP 800-57), at most
/// 4096 (the largest the RSA backend verifies).
const RSA_BITS_ACCEPTED: std::ops::RangeInclusive<usize> = 2048..=4096;

/// Whether `algorithm` is one of [`ASYMMETRIC_ALGORITHMS`].
pub fn is_asymmetric(algorithm: Algorithm) -> bool {
    ASYMMETRIC_ALGORITHMS.contains(&algorithm)
}

/// What a PEM file of `algorithm` must hold, for messages.
fn expected_key(algorithm: Algorithm, private: bool) -> &'static str {
    match (algorithm, private) {
        (Algorithm::RS256, true) => {
            "an RSA private key of 2048 to 4096 bits (PEM: PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`)"
        }
        (Algorithm::RS256, false) => {
            "an RSA public key of 2048 to 4096 bits (PEM: `PUBLIC KEY` or `RSA PUBLIC KEY`)"
        }
        (Algorithm::ES256, true) => "a P-256 private key (PEM: PKCS#8 `PRIVATE KEY`)",
        (Algorithm::ES256, false) => "a P-256 public key (PEM: `PUBLIC KEY`)",
        (_, true) => "an Ed25519 private key (PEM: PKCS#8 `PRIVATE KEY`)",
        (_, false) => "an Ed25519 public key (PEM: `PUBLIC KEY`)",
    }
}

/// The name `algorithm` has in settings and on the command line.
pub fn algorithm_name(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::RS256 => "RS256",
        Algorithm::ES256 => "ES256",
        Algorithm::EdDSA => "EdDSA",
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        _ => "another algorithm",
    }
}

/// Whether `pem` is PEM-encoded private key material.
fn holds_private_key(pem: &[u8]) -> bool {
    String::from_utf8_lossy(pem).contains("PRIVATE KEY-----")
}

/// The signing key of `algorithm` in the PEM `pem`, and its public key.
/// The pair is tried once (a signature made and verified), so that a key
/// that cannot sign stops start-up rather than the first login.
pub fn signing_key(
    algorithm: Algorithm,
    pem: &[u8],
) -> Result<(EncodingKey, VerifyingKey), String> {
    if !is_asymmetric(algorithm) {
        return Err(format!("{algorithm:?} is not an asymmetric algorithm"));
    }
    let parsed = match algorithm {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(pem),
        Algorithm::ES256 => EncodingKey::from_ec_pem(pem),
        _ => EncodingKey::from_ed_pem(pem),
    };
    let key = parsed.map_err(|_| format!("not {}", expected_key(algorithm, true)))?;
    let public = VerifyingKey::from_public_jwk(algorithm, public_jwk_of(algorithm, &key)?)?;
    let probe = b"portcullis: does this key sign?";
    let signed = jsonwebtoken::crypto::sign(probe, &key, algorithm)
        .map_err(|e| format!("the key cannot sign: {e}"))?;
    let verified = jsonwebtoken::crypto::verify(&signed, probe, &public.key, algorithm)
        .map_err(|e| format!("the key's signature cannot be verified: {e}"))?;
    if !verified {
        return Err("the key's own public key does not verify its signature".into());
    }
    Ok((key, public))
}

/// The public key of `algorithm` in the PEM `pem`. A private key is
/// refused: these files list keys that are published.
pub fn verifying_key(algorithm: Algorithm, pem: &[u8]) -> Result<VerifyingKey, String> {
    if holds_private_key(pem) {
        return Err(
            "holds a private key; list public keys only (`portcullis gen-key` writes both)".into(),
        );
    }
    let parsed = match algorithm {
        Algorithm::RS256 => DecodingKey::from_rsa_pem(pem),
        Algorithm::ES256 => DecodingKey::from_ec_pem(pem),
        _ => DecodingKey::from_ed_pem(pem),
    };
    let not_it = || format!("not {}", expected_key(algorithm, false));
    let key = parsed.map_err(|_| not_it())?;
    let jwk = Jwk::from_decoding_key(&key, Some(algorithm)).map_err(|_| not_it())?;
    VerifyingKey::from_public_jwk(algorithm, jwk)
}

/// The keys of an asymmetric algorithm: the private key that signs, and the
/// public keys that verify (its own first, then those of
/// `PUBLIC_KEY_FILES`, without repeats).
#[derive(Clone)]
pub struct AsymmetricKeys {
    algorithm: Algorithm,
    signing: EncodingKey,
    verifying: Vec<VerifyingKey>,
    generated_into: Option<PathBuf>,
}

impl std::fmt::Debug for AsymmetricKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsymmetricKeys")
            .field("algorithm", &self.algorithm)
            .field("kids", &self.kids().collect::<Vec<_>>())
            .field("generated_into", &self.generated_into)
            .finish_non_exhaustive()
    }
}

impl AsymmetricKeys {
    /// The signing key `signing` (with its public key) and the other public
    /// keys `others`, for `algorithm`.
    pub fn new(
        algorithm: Algorithm,
        (signing, own): (EncodingKey, VerifyingKey),
        others: Vec<VerifyingKey>,
    ) -> Self {
        let mut verifying = vec![own];
        for key in others {
            if !verifying.iter().any(|k| k.kid == key.kid) {
                verifying.push(key);
            }
        }
        Self {
            algorithm,
            signing,
            verifying,
            generated_into: None,
        }
    }

    /// Marks the signing key as generated for development into `path`.
    pub fn generated(mut self, path: PathBuf) -> Self {
        self.generated_into = Some(path);
        self
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The private key that signs.
    pub fn signing_key(&self) -> &EncodingKey {
        &self.signing
    }

    /// The `kid` of the signing key (its public key's thumbprint).
    pub fn kid(&self) -> &str {
        &self.verifying[0].kid
    }

    /// The public keys that verify, the signing key's own first.
    pub fn verifying_keys(&self) -> &[VerifyingKey] {
        &self.verifying
    }

    /// The `kid`s of the keys that verify.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.verifying.iter().map(|k| k.kid.as_str())
    }

    /// Where the signing key was generated for development, if it was.
    pub fn generated_into(&self) -> Option<&Path> {
        self.generated_into.as_deref()
    }

    /// A secret derived from the private key (64 base64url characters): what
    /// stands for `SECRET_KEY` when it is unset, the same on every instance
    /// that signs with this key, and revealing nothing of it.
    pub fn derived_secret(&self) -> String {
        use base64::Engine as _;
        use sha2::Digest as _;
        let digest = sha2::Sha512::new()
            .chain_update(b"portcullis-secret-from-private-key:")
            .chain_update(self.signing.as_bytes())
            .finalize();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..48])
    }

    /// The JWK Set of the public keys (RFC 7517): no private member.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<&Jwk> = self.verifying.iter().map(|k| &k.jwk).collect();
        serde_json::json!({ "keys": keys })
    }
}
