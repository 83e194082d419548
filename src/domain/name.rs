//! Display names, parsed once at the edge (SPEC §4).

use super::email::is_invisible_format;
use crate::error::FieldError;

/// Longest accepted display name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// An optional display name of at most 100 characters, trimmed; blank is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(Option<String>);

impl DisplayName {
    /// Parses an optional name.
    pub fn parse(raw: Option<&str>, field: &str) -> Result<Self, FieldError> {
        let Some(name) = raw.map(str::trim).filter(|n| !n.is_empty()) else {
            return Ok(Self(None));
        };
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(FieldError::new(
                field,
                "Name must be at most 100 characters",
            ));
        }
        // Zero-width (non-)joiners stay allowed in names: some scripts and
        // emoji sequences need them.
        let joiner = |c: char| matches!(c, '\u{200C}' | '\u{200D}');
        if name
            .chars()
            .any(|c| c.is_control() || (is_invisible_format(c) && !joiner(c)))
        {
            return Err(FieldError::new(
                field,
                "Name must not contain control or invisible formatting characters",
            ));
        }
        Ok(Self(Some(name.to_string())))
    }

    /// The name, if any.
    pub fn as_deref(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            DisplayName::parse(Some("  "), "name").unwrap().as_deref(),
            None
        );
        assert_eq!(
            DisplayName::parse(Some(" Ada "), "name")
                .unwrap()
                .as_deref(),
            Some("Ada")
        );
        assert!(DisplayName::parse(Some(&"x".repeat(101)), "name").is_err());
        assert!(DisplayName::parse(Some(&"é".repeat(100)), "name").is_ok());
        assert!(DisplayName::parse(Some("Ad\u{200B}a"), "name").is_err());
        assert!(DisplayName::parse(Some("\u{1F469}\u{200D}\u{1F4BB}"), "name").is_ok());
        assert!(DisplayName::parse(Some("Ada\u{202E}"), "name").is_err());
    }
}
