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

use std::path::{Path, PathBuf};

use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, OctetKeyPairParameters, OctetKeyPairType,
    PublicKeyUse, ThumbprintHash,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use zeroize::Zeroizing;

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

/// A public key that verifies tokens: its `kid`, the key itself (parsed
/// once), and its JWK as `/.well-known/jwks.json` publishes it.
#[derive(Clone, Debug)]
pub struct VerifyingKey {
    /// The RFC 7638 thumbprint of the key.
    pub kid: String,
    /// The key, ready to verify.
    pub key: DecodingKey,
    /// The public JWK, with `kid`, `alg` and `use: "sig"`.
    pub jwk: Jwk,
}

impl VerifyingKey {
    /// The key of the public JWK `jwk` for `algorithm`, after checking its
    /// type and size; `kid`, `alg` and `use` are set here.
    fn from_public_jwk(algorithm: Algorithm, mut jwk: Jwk) -> Result<Self, String> {
        check_public_jwk(algorithm, &jwk)?;
        let kid = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| format!("cannot compute the key's thumbprint: {e}"))?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.key_algorithm = Some(algorithm.into());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        let key = DecodingKey::from_jwk(&jwk).map_err(|e| format!("unusable public key: {e}"))?;
        Ok(Self { kid, key, jwk })
    }
}

/// Checks that `jwk` is a public key `algorithm` can use: the right type,
/// the P-256 curve for ES256, an RSA modulus of 2048 to 4096 bits.
fn check_public_jwk(algorithm: Algorithm, jwk: &Jwk) -> Result<(), String> {
    let wrong = || Err(format!("not {}", expected_key(algorithm, false)));
    match (&jwk.algorithm, algorithm) {
        (AlgorithmParameters::RSA(rsa), Algorithm::RS256) => {
            let bits = rsa_modulus_bits(&rsa.n)?;
            if !RSA_BITS_ACCEPTED.contains(&bits) {
                return Err(format!(
                    "an RSA key of {bits} bits; RS256 keys must have 2048 to 4096 bits"
                ));
            }
            Ok(())
        }
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES256)
            if ec.curve == EllipticCurve::P256 =>
        {
            Ok(())
        }
        (AlgorithmParameters::OctetKeyPair(okp), Algorithm::EdDSA)
            if okp.curve == EllipticCurve::Ed25519 =>
        {
            Ok(())
        }
        _ => wrong(),
    }
}

/// The size in bits of the base64url big-endian modulus `n`.
fn rsa_modulus_bits(n: &str) -> Result<usize, String> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(n)
        .map_err(|_| "an RSA key whose modulus cannot be read".to_string())?;
    let significant: Vec<u8> = bytes.into_iter().skip_while(|b| *b == 0).collect();
    Ok(match significant.first() {
        None => 0,
        Some(first) => significant.len() * 8 - first.leading_zeros() as usize,
    })
}

/// The public JWK of the private key `key` for `algorithm`.
fn public_jwk_of(algorithm: Algorithm, key: &EncodingKey) -> Result<Jwk, String> {
    if algorithm == Algorithm::EdDSA {
        // jsonwebtoken reads only the 48-byte PKCS#8 v1 form here; v2 (with
        // the public key inside, as some tools write it) is as valid.
        use ed25519_dalek::pkcs8::DecodePrivateKey as _;
        let signing = ed25519_dalek::SigningKey::from_pkcs8_der(key.as_bytes())
            .map_err(|_| format!("not {}", expected_key(algorithm, true)))?;
        use base64::Engine as _;
        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(signing.verifying_key().as_bytes());
        return Ok(Jwk {
            common: Default::default(),
            algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                key_type: OctetKeyPairType::OctetKeyPair,
                curve: EllipticCurve::Ed25519,
                x,
            }),
        });
    }
    Jwk::from_encoding_key(key, algorithm)
        .map_err(|_| format!("not {}", expected_key(algorithm, true)))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7638 §3.1's example key and its thumbprint.
    #[test]
    fn the_kid_is_the_rfc_7638_thumbprint() {
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let jwk: Jwk = serde_json::from_value(serde_json::json!({
            "kty": "RSA", "n": n, "e": "AQAB",
        }))
        .unwrap();
        let key = VerifyingKey::from_public_jwk(Algorithm::RS256, jwk).unwrap();
        assert_eq!(key.kid, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
        assert_eq!(key.jwk.common.key_id.as_deref(), Some(key.kid.as_str()));
    }

    #[test]
    fn generated_pairs_sign_and_verify_and_publish_no_private_member() {
        for algorithm in [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256] {
            let pair = generate(algorithm).unwrap();
            assert!(pair.private_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
            assert!(pair.public_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
            let (signing, own) = signing_key(algorithm, pair.private_pem.as_bytes()).unwrap();
            let public = verifying_key(algorithm, pair.public_pem.as_bytes()).unwrap();
            assert_eq!(own.kid, public.kid, "{algorithm:?}");
            let keys = AsymmetricKeys::new(algorithm, (signing, own), vec![public]);
            assert_eq!(
                keys.verifying_keys().len(),
                1,
                "the same key is listed once"
            );
            let jwks = keys.jwks();
            let jwk = jwks["keys"][0].as_object().unwrap();
            assert_eq!(jwk["kid"], keys.kid());
            assert_eq!(jwk["alg"], algorithm_name(algorithm));
            assert_eq!(jwk["use"], "sig");
            for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
                assert!(
                    !jwk.contains_key(private),
                    "{algorithm:?}: {private} in {jwk:?}"
                );
            }
        }
    }

    /// Ed25519 keys were written as PKCS#8 v2 (with the public key inside)
    /// before: they still sign, under the same `kid`.
    #[test]
    fn eddsa_keys_in_the_pkcs8_v2_form_are_still_read() {
        use ed25519_dalek::pkcs8::EncodePrivateKey as _;
        use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
        let key = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
        let v2 = key.to_pkcs8_pem(LineEnding::LF).unwrap();
        let (_, own) = signing_key(Algorithm::EdDSA, v2.as_bytes()).unwrap();
        use ed25519_dalek::pkcs8::EncodePublicKey as _;
        let public = key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        assert_eq!(
            verifying_key(Algorithm::EdDSA, public.as_bytes())
                .unwrap()
                .kid,
            own.kid
        );
    }

    #[test]
    fn keys_of_another_kind_are_refused() {
        let ed = generate(Algorithm::EdDSA).unwrap();
        let ec = generate(Algorithm::ES256).unwrap();
        assert!(signing_key(Algorithm::ES256, ed.private_pem.as_bytes()).is_err());
        assert!(signing_key(Algorithm::RS256, ec.private_pem.as_bytes()).is_err());
        assert!(signing_key(Algorithm::EdDSA, ec.private_pem.as_bytes()).is_err());
        assert!(verifying_key(Algorithm::EdDSA, ec.public_pem.as_bytes()).is_err());
        assert!(signing_key(Algorithm::EdDSA, b"not a key").is_err());
        let err = verifying_key(Algorithm::EdDSA, ed.private_pem.as_bytes()).unwrap_err();
        assert!(err.contains("private key"), "{err}");
        assert!(signing_key(Algorithm::HS256, ed.private_pem.as_bytes()).is_err());
    }

    #[test]
    fn rsa_keys_under_2048_bits_are_refused() {
        use rsa::pkcs8::{EncodePublicKey as _, LineEnding};
        let small = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 1024).unwrap();
        let pem = small
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        let err = verifying_key(Algorithm::RS256, pem.as_bytes()).unwrap_err();
        assert!(err.contains("1024 bits"), "{err}");
    }

    #[test]
    fn the_development_key_is_generated_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let (first, path) = load_or_create_development_key(&data, Algorithm::EdDSA).unwrap();
        let (second, again) = load_or_create_development_key(&data, Algorithm::EdDSA).unwrap();
        assert_eq!(first, second);
        assert_eq!(path, again);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(&data), 0o700);
            let (_, public) = development_key_paths(&data, Algorithm::EdDSA);
            assert_eq!(mode(&public), 0o600);
        }
    }
}
