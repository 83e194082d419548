//! E-mail addresses, parsed once at the edge (SPEC §4).

use crate::error::FieldError;

/// Longest accepted e-mail address, in characters (RFC 5321 path limit).
pub const MAX_EMAIL_CHARS: usize = 254;

/// Whether `c` is an invisible formatting character (Unicode category Cf,
/// such as zero-width spaces, joiners and bidirectional overrides, or a soft
/// hyphen). They let two addresses or names that look identical differ, or
/// make one look like another, so they are refused wherever people read.
pub fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
    )
}

/// A syntactically valid e-mail address, trimmed, as the user typed it.
///
/// Accepted: `local@domain` where the local part is a dot-atom of printable
/// characters (ASCII specials of RFC 5322 or any non-ASCII letter) and the
/// domain has at least two labels of letters, digits and hyphens. Quoted
/// local parts and IP-literal domains are refused: no one registers with them
/// and they complicate every downstream system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Parses `raw`, reporting problems against `field`.
    pub fn parse(raw: &str, field: &str) -> Result<Self, FieldError> {
        let email = raw.trim();
        let fail = |m: &str| Err(FieldError::new(field, m));
        if email.is_empty() {
            return fail("Email is required");
        }
        if email.chars().count() > MAX_EMAIL_CHARS {
            return fail("Email must be at most 254 characters");
        }
        let Some((local, domain)) = email.rsplit_once('@') else {
            return fail("Enter a valid email address");
        };
        let local_ok = !local.is_empty()
            && local.chars().count() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local.chars().all(|c| {
                c.is_ascii_alphanumeric()
                    || "!#$%&'*+/=?^_`{|}~.-".contains(c)
                    || (!c.is_ascii()
                        && !c.is_whitespace()
                        && !c.is_control()
                        && !is_invisible_format(c))
            });
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = domain.len() <= 253
            && labels.len() >= 2
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
            && labels.last().is_some_and(|tld| {
                tld.chars().all(|c| c.is_ascii_alphanumeric()) && tld.len() >= 2
            });
        if !local_ok || !domain_ok {
            return fail("Enter a valid email address");
        }
        Ok(Self(email.to_string()))
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        for ok in [
            "a@b.co",
            "  John.Doe+tag@Example.COM ",
            "o'brien@mail.example.org",
            "jürgen@example.de",
        ] {
            assert!(EmailAddress::parse(ok, "email").is_ok(), "{ok}");
        }
        assert_eq!(
            EmailAddress::parse(" A@b.co ", "email").unwrap().as_str(),
            "A@b.co"
        );
        for bad in [
            "",
            "plain",
            "@b.co",
            "a@",
            "a@b",
            "a@@b.co",
            "a b@c.co",
            ".a@b.co",
            "a..b@c.co",
            "a@-b.co",
            "a@b.c",
            "a@b..co",
            "ad\u{200B}min@b.co",
            "evil\u{202E}moc.b@b.co",
            "\u{FEFF}a@b.co",
        ] {
            assert!(EmailAddress::parse(bad, "email").is_err(), "{bad}");
        }
        let long = format!("{}@{}.com", "a".repeat(64), "b".repeat(200));
        assert!(EmailAddress::parse(&long, "email").is_err());
    }
}
