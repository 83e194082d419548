//! The user's own profile (SPEC §6 `PATCH /me`).

use serde_json::{Map, Value};

use super::{Flows, reject_if_any};
use crate::domain::DisplayName;
use crate::error::{Error, FieldError, Result};
use crate::store::User;

/// Keys a user may not change through their profile.
pub const LOCKED_PROFILE_KEYS: [&str; 6] = [
    "email",
    "password",
    "is_active",
    "is_verified",
    "is_superuser",
    "id",
];

impl Flows {
    /// Updates `name` (a string, or null to clear it) and the application's
    /// own fields from `changes`; the updated user. Locked keys (e-mail,
    /// password, flags, id) are refused, every problem at once.
    pub async fn update_profile(&self, user: &User, changes: &Map<String, Value>) -> Result<User> {
        let mut errors = Vec::new();
        let name = match changes.get("name") {
            None => None,
            Some(Value::Null) => Some(DisplayName::parse(None, "name")),
            Some(Value::String(s)) => Some(DisplayName::parse(Some(s), "name")),
            Some(_) => Some(Err(FieldError::new("name", "Must be a string or null"))),
        }
        .transpose()
        .map_err(|e| errors.push(e))
        .ok()
        .flatten();
        for locked in LOCKED_PROFILE_KEYS {
            if changes.contains_key(locked) {
                errors.push(FieldError::new(locked, "Cannot be changed here"));
            }
        }
        let extra = self
            .fields
            .extract(changes, true)
            .map_err(|e| errors.extend(e))
            .ok();
        reject_if_any(errors)?;
        self.store
            .update_profile(
                user.id,
                name.as_ref().map(DisplayName::as_deref),
                extra.as_ref(),
            )
            .await?
            .ok_or(Error::TokenRevoked)
    }
}
