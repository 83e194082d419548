//! Key pairs for the asymmetric algorithms, written to files as an
//! operator's `PRIVATE_KEY_FILE` and `PUBLIC_KEY_FILES`.

use std::path::Path;

use jsonwebtoken::{Algorithm, EncodingKey};
use portcullis::token::keys;

/// A key pair in PEM files, with its `kid` (RFC 7638 thumbprint).
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
        let kid = keys::verifying_key(algorithm, pair.public_pem.as_bytes())
            .expect("read the public key")
            .kid;
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
