//! A public key as a JWK: its checks (type, curve, size), its RFC 7638
//! thumbprint (the `kid`), and the public JWK of a private key.

use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, OctetKeyPairParameters, OctetKeyPairType,
    PublicKeyUse, ThumbprintHash,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

use super::{RSA_BITS_ACCEPTED, expected_key};

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
    pub(super) fn from_public_jwk(algorithm: Algorithm, mut jwk: Jwk) -> Result<Self, String> {
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
pub(super) fn public_jwk_of(algorithm: Algorithm, key: &EncodingKey) -> Result<Jwk, String> {
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
