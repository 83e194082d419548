//! Every random value Portcullis hands out comes from here: the operating
//! system's CSPRNG (through `rand`), encoded as unpadded base64url.

use base64::Engine;

fn base64url<const N: usize>() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; N]>())
}

/// An identifier with 128 bits of entropy (22 characters): session ids and
/// token ids (`sid`, `jti`).
pub fn random_id() -> String {
    base64url::<16>()
}

/// A one-time token with 256 bits of entropy (43 characters), mailed in
/// reset and verification links.
pub fn one_time_token() -> String {
    base64url::<32>()
}

/// A signing secret with 384 bits of entropy (64 characters), for
/// `SECRET_KEY` (`portcullis gen-secret`, the generated development secret).
pub fn signing_secret() -> String {
    base64url::<48>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_alphabet() {
        assert_eq!(random_id().len(), 22);
        assert_eq!(one_time_token().len(), 43);
        assert_eq!(signing_secret().len(), 64);
        assert_ne!(random_id(), random_id());
        assert!(
            one_time_token()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }
}
