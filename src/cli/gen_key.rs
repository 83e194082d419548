//! `portcullis gen-key --algorithm EdDSA|ES256|RS256`: writes a new key pair
//! in PEM for `PRIVATE_KEY_FILE` and `PUBLIC_KEY_FILES` (SPEC §1).

use std::path::PathBuf;
use std::process::ExitCode;

use crate::token::keys::{self, VerifyingKey};

/// The arguments of `gen-key`.
#[derive(Debug, clap::Args)]
pub struct GenKeyArgs {
    /// The algorithm of the key pair (the `ALGORITHM` it is for).
    #[arg(long, value_parser = ["EdDSA", "ES256", "RS256"])]
    pub algorithm: String,
    /// Where to write the private key, PKCS#8 PEM, readable by its owner
    /// only (mode 0600). An existing file is never overwritten.
    #[arg(long, value_name = "FILE", default_value = "private-key.pem")]
    pub private_key: PathBuf,
    /// Where to write the public key, SPKI PEM (mode 0644: it is public).
    /// An existing file is never overwritten.
    #[arg(long, value_name = "FILE", default_value = "public-key.pem")]
    pub public_key: PathBuf,
}

/// Mode of the public key file: anyone may read a public key.
const PUBLIC_KEY_MODE: u32 = 0o644;

/// Runs `gen-key`: exit status 0 with the files written, 1 when they cannot
/// be (one exists already, a directory is missing).
pub fn run(args: GenKeyArgs) -> ExitCode {
    let algorithm = match args.algorithm.as_str() {
        "RS256" => jsonwebtoken::Algorithm::RS256,
        "ES256" => jsonwebtoken::Algorithm::ES256,
        _ => jsonwebtoken::Algorithm::EdDSA,
    };
    let fail = |why: String| {
        eprintln!("portcullis gen-key: {why}");
        ExitCode::FAILURE
    };
    let pair = match keys::generate(algorithm) {
        Ok(pair) => pair,
        Err(why) => return fail(why),
    };
    let public: VerifyingKey = match keys::verifying_key(algorithm, pair.public_pem.as_bytes()) {
        Ok(key) => key,
        Err(why) => return fail(format!("the new key cannot be read back: {why}")),
    };
    if let Err(e) = keys::write_pair(&pair, &args.private_key, &args.public_key, PUBLIC_KEY_MODE) {
        return fail(e.to_string());
    }
    println!(
        "Wrote a new {} key pair: the private key to {} (mode 0600), its public key to {}.",
        args.algorithm,
        args.private_key.display(),
        args.public_key.display()
    );
    println!("kid (RFC 7638 thumbprint): {}", public.kid);
    println!("To sign with it:");
    println!("  ALGORITHM={}", args.algorithm);
    println!("  PRIVATE_KEY_FILE={}", args.private_key.display());
    println!(
        "During a rotation, list its public key in PUBLIC_KEY_FILES first (see the README's key rotation)."
    );
    ExitCode::SUCCESS
}
