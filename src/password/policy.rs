//! The password policy of SPEC §4 as a parsed domain type.

use std::collections::HashSet;
use std::sync::LazyLock;

use crate::config::{HasherKind, PasswordConfig};
use crate::error::FieldError;

/// Longest accepted password, in Unicode scalar values.
pub const MAX_PASSWORD_CHARS: usize = 128;

static COMMON: LazyLock<HashSet<String>> = LazyLock::new(|| {
    include_str!("../../assets/common-passwords.txt")
        .lines()
        .map(|l| l.trim().to_lowercase())
        .filter(|l| !l.is_empty())
        .collect()
});

/// Whether `password` is among the 10,000 most common passwords (SecLists),
/// compared case-insensitively.
pub fn is_common_password(password: &str) -> bool {
    COMMON.contains(&password.to_lowercase())
}

/// A password that satisfies the policy; only this type can be hashed for a user.
#[derive(Clone)]
pub struct NewPassword(String);

impl std::fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewPassword(***)")
    }
}

impl NewPassword {
    /// Checks `raw` against the policy: length in characters, bcrypt's 72-byte
    /// limit, the common-password list, and not the e-mail address itself.
    /// `field` names the field in the error.
    pub fn parse(
        raw: &str,
        email: Option<&str>,
        cfg: &PasswordConfig,
        field: &str,
    ) -> Result<Self, FieldError> {
        let chars = raw.chars().count();
        let fail = |message: String| Err(FieldError::new(field, message));
        if chars < cfg.min_length {
            return fail(format!(
                "Password must be at least {} characters",
                cfg.min_length
            ));
        }
        if chars > MAX_PASSWORD_CHARS {
            return fail(format!(
                "Password must be at most {MAX_PASSWORD_CHARS} characters"
            ));
        }
        if cfg.hasher == HasherKind::Bcrypt && raw.len() > super::BCRYPT_MAX_BYTES {
            return fail("Password must be at most 72 bytes with bcrypt".into());
        }
        if raw.trim().is_empty() {
            return fail("Password must not be blank".into());
        }
        if is_common_password(raw) {
            return fail("Password is too common".into());
        }
        if let Some(email) = email {
            let lower = raw.to_lowercase();
            let email = email.trim().to_lowercase();
            let local = email.split('@').next().unwrap_or_default();
            if lower == email || (local.chars().count() >= 4 && lower == local) {
                return fail("Password must not be your email address".into());
            }
        }
        Ok(Self(raw.to_string()))
    }

    /// The password itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(hasher: HasherKind) -> PasswordConfig {
        PasswordConfig {
            hasher,
            bcrypt_rounds: 4,
            min_length: 8,
            queue_capacity: 64,
            workers: 1,
            per_caller: 4,
        }
    }

    #[test]
    fn policy_rules() {
        let c = cfg(HasherKind::Argon2id);
        assert!(NewPassword::parse("short", None, &c, "password").is_err());
        assert!(NewPassword::parse("PassWord", None, &c, "password").is_err()); // common
        assert!(NewPassword::parse("Qwertyuiop", None, &c, "password").is_err()); // common
        assert!(NewPassword::parse(&"é".repeat(129), None, &c, "password").is_err());
        assert!(NewPassword::parse(&"é".repeat(128), None, &c, "password").is_ok());
        assert!(
            NewPassword::parse(
                "alice@example.com",
                Some("Alice@Example.com"),
                &c,
                "password"
            )
            .is_err()
        );
        assert!(NewPassword::parse("tangerine-otter-42", Some("a@b.co"), &c, "password").is_ok());
        // 40 two-byte chars = 80 bytes: fine for argon2, refused for bcrypt.
        let long = "é".repeat(40);
        assert!(NewPassword::parse(&long, None, &c, "password").is_ok());
        let err =
            NewPassword::parse(&long, None, &cfg(HasherKind::Bcrypt), "new_password").unwrap_err();
        assert_eq!(err.field, "new_password");
    }

    #[test]
    fn list_has_ten_thousand_entries() {
        assert!(COMMON.len() > 9_000);
        assert!(is_common_password("123456"));
        assert!(!is_common_password("tangerine-otter-42"));
    }
}
