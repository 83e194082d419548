//! Key pairs for the asymmetric algorithms, written to files as an
//! operator's `PRIVATE_KEY_FILE` and `PUBLIC_KEY_FILES`.

use std::path::Path;

use jsonwebtoken::{Algorithm, EncodingKey};
use portcullis::token::keys;

/// A key pair in PEM files, with its `kid` (RFC 7638 thumbprint, computed
/// here from the key's bytes, not by Portcullis).
#[derive(Debug, Clone)]
pub struct KeyFiles {
    /// The algorithm, as `ALGORITHM` spells it.
    pub alg: &'static str,
    /// The private key's path.
    pub private: String,
    /// The public key's path.
    pub public: String,
    /// The public key in PEM.
    pub public_pem: String,
    /// The private key in PEM.
    pub private_pem: String,
    /// The public key's thumbprint.
    pub kid: String,
}

impl KeyFiles {
    /// A new key pair of `alg` (`EdDSA`, `ES256`, `RS256`) written to
    /// `dir/<name>.pem` and `dir/<name>.pub.pem`.
    pub fn new(dir: &Path, name: &str, alg: &'static str) -> Self {
        let algorithm = algorithm(alg);
        let pair = keys::generate(algorithm).expect("generate a key pair");
        let private = dir.join(format!("{name}.pem"));
        let public = dir.join(format!("{name}.pub.pem"));
        std::fs::write(&private, pair.private_pem.as_bytes()).expect("write the private key");
        std::fs::write(&public, pair.public_pem.as_bytes()).expect("write the public key");
        let kid = rfc7638_thumbprint(alg, &pair.public_pem);
        assert_eq!(
            keys::verifying_key(algorithm, pair.public_pem.as_bytes())
                .expect("read the public key")
                .kid,
            kid,
            "the server's kid is not the RFC 7638 thumbprint"
        );
        Self {
            alg,
            private: private.display().to_string(),
            public: public.display().to_string(),
            public_pem: pair.public_pem.clone(),
            private_pem: pair.private_pem.to_string(),
            kid,
        }
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        algorithm(self.alg)
    }

    /// The private key, for signing tokens outside Portcullis.
    pub fn encoding_key(&self) -> EncodingKey {
        let pem = self.private_pem.as_bytes();
        match self.algorithm() {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(pem),
            Algorithm::ES256 => EncodingKey::from_ec_pem(pem),
            _ => EncodingKey::from_ed_pem(pem),
        }
        .expect("a private key")
    }
}

/// `alg` as jsonwebtoken names it.
fn algorithm(alg: &str) -> Algorithm {
    match alg {
        "RS256" => Algorithm::RS256,
        "ES256" => Algorithm::ES256,
        "EdDSA" => Algorithm::EdDSA,
        other => panic!("not an asymmetric algorithm: {other}"),
    }
}

/// The RFC 7638 thumbprint of the SPKI PEM public key `pem` of `alg`,
/// computed without Portcullis's code: the required members of its JWK
/// (RFC 7638 §3.2), taken from the key's DER bytes, in lexicographic order
/// in JSON with no whitespace, hashed with SHA-256, in base64url.
pub fn rfc7638_thumbprint(alg: &str, pem: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let b64url = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("PEM body");
    let canonical = match alg {
        // SubjectPublicKeyInfo of id-Ed25519 (RFC 8410 §4): 12 bytes of
        // header, then the 32-byte key.
        "EdDSA" => {
            assert_eq!(der.len(), 44, "an Ed25519 SPKI");
            assert_eq!(
                &der[..12],
                &[
                    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00
                ]
            );
            format!(
                r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
                b64url(&der[12..])
            )
        }
        // SubjectPublicKeyInfo of id-ecPublicKey on prime256v1 (RFC 5480):
        // 26 bytes of header, then the uncompressed point 04 || x || y.
        "ES256" => {
            assert_eq!(der.len(), 91, "a P-256 SPKI");
            assert_eq!(der[26], 0x04, "an uncompressed point");
            let (x, y) = der[27..].split_at(32);
            format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                b64url(x),
                b64url(y)
            )
        }
        "RS256" => {
            use rsa::pkcs8::DecodePublicKey as _;
            use rsa::traits::PublicKeyParts as _;
            let key = rsa::RsaPublicKey::from_public_key_der(&der).expect("an RSA SPKI");
            format!(
                r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                b64url(&key.e().to_bytes_be()),
                b64url(&key.n().to_bytes_be())
            )
        }
        other => panic!("not an asymmetric algorithm: {other}"),
    };
    b64url(&sha2::Sha256::digest(canonical.as_bytes()))
}
