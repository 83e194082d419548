//! Checking tokens: the signature with the configured algorithm only,
//! then the claims.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{DecodingKey, Validation};

use super::{Claims, MAX_TOKEN_LEN, TokenService, TokenType, check_claims};
use crate::error::{Error, Result};

impl TokenService {
    /// Verifies signature (configured algorithm only), `exp`, issuer and
    /// audience, and that the token is of type `expected`.
    ///
    /// A validly signed but expired token is [`Error::TokenExpired`]; anything
    /// else wrong is [`Error::InvalidToken`]. Session revocation is checked by
    /// the caller against the store.
    pub fn decode(&self, token: &str, expected: TokenType) -> Result<Claims> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(Error::InvalidToken);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| Error::InvalidToken)?;
        if header.alg != self.algorithm {
            return Err(Error::InvalidToken);
        }
        if self.hmac.is_empty() {
            self.decode_any(token, header.kid.as_deref(), expected)
        } else {
            self.decode_hmac(token, header.kid.as_deref(), expected)
        }
    }

    /// [`TokenService::decode`] through jsonwebtoken, for any algorithm.
    pub(super) fn decode_any(
        &self,
        token: &str,
        kid: Option<&str>,
        expected: TokenType,
    ) -> Result<Claims> {
        let keys: Vec<&DecodingKey> = match kid {
            Some(kid) => self
                .decoding
                .iter()
                .filter(|(id, _)| id == kid)
                .map(|(_, k)| k)
                .collect(),
            None => self.decoding.iter().map(|(_, k)| k).collect(),
        };
        let claims = first_verified(token, keys.into_iter().map(|key| (key, &self.validation)))?;
        check_claims(&claims, expected)?;
        Ok(claims)
    }
}

/// The claims of `token` as the first of `candidates` (key and validation)
/// that verifies it; [`Error::TokenExpired`] as soon as one finds it validly
/// signed but expired, else [`Error::InvalidToken`].
pub(crate) fn first_verified<'a>(
    token: &str,
    candidates: impl IntoIterator<Item = (&'a DecodingKey, &'a Validation)>,
) -> Result<Claims> {
    for (key, validation) in candidates {
        match jsonwebtoken::decode::<Claims>(token, key, validation) {
            Ok(data) => return Ok(data.claims),
            Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => {
                return Err(Error::TokenExpired);
            }
            Err(_) => {}
        }
    }
    Err(Error::InvalidToken)
}
