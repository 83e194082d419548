//! The admin API's rules (SPEC §6, superusers): listing, reading, changing
//! and deleting users, their sessions, passkeys and security events, and the
//! pagination that `GET /events` shares.
//!
//! - Ids are positive integers; anything else (`abc`, `-1`, a UUID) is
//!   treated as an unknown id: 404 `NOT_FOUND`.
//! - `page` counts from 1; `per_page` is 20 by default and at most 100: a
//!   value out of range (`per_page=1000`) is refused with 422
//!   `VALIDATION_ERROR`, not clamped, so that a client never silently gets
//!   less than it asked for.
//! - A superuser cannot deactivate, demote or delete themself, nor remove
//!   their own second factor: 409 `CANNOT_MODIFY_SELF`.
//! - Every change is recorded, in the transaction that makes it, as a
//!   security event on the target's trail naming the acting superuser.
//!   Reads are not recorded (the request log has them).

use serde_json::{Map, Value};

use super::{Flows, PasskeyInfo, reject_if_any};
use crate::domain::{ClientInfo, DisplayName};
use crate::error::{Error, FieldError, Result};
use crate::store::{Actor, EventRecord, SessionInfo, User, UserChanges};

/// Items per page when `per_page` is not given.
pub const DEFAULT_PER_PAGE: i64 = 20;
/// The largest accepted `per_page`.
pub const MAX_PER_PAGE: i64 = 100;
/// The largest accepted `page` (far beyond any table: it keeps the offset
/// in range).
pub const MAX_PAGE: i64 = 10_000_000;

/// The keys `PATCH /api/users/{id}` accepts.
pub const ADMIN_PATCH_KEYS: [&str; 4] = ["name", "is_active", "is_verified", "is_superuser"];

/// Which page of a list, checked: `page` from 1, `per_page` from 1 to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// From 1.
    pub page: i64,
    /// From 1 to [`MAX_PER_PAGE`].
    pub per_page: i64,
}

impl Default for Page {
    fn default() -> Self {
        Self {
            page: 1,
            per_page: DEFAULT_PER_PAGE,
        }
    }
}

impl Page {
    /// Parses the `page` and `per_page` query parameters as sent (absent:
    /// the default; present, even empty, it must be a number in range);
    /// every problem is reported at once.
    pub fn parse(page: Option<&str>, per_page: Option<&str>) -> Result<Self> {
        let mut errors = Vec::new();
        let mut number = |raw: Option<&str>, field: &str, default: i64, max: i64| {
            let Some(raw) = raw else {
                return default;
            };
            match raw.trim().parse::<i64>() {
                Ok(n) if (1..=max).contains(&n) => n,
                _ => {
                    errors.push(FieldError::new(
                        field,
                        format!("Must be a whole number from 1 to {max}"),
                    ));
                    default
                }
            }
        };
        let page = number(page, "page", 1, MAX_PAGE);
        let per_page = number(per_page, "per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE);
        reject_if_any(errors)?;
        Ok(Self { page, per_page })
    }

    /// How many items come before this page.
    pub fn offset(&self) -> i64 {
        (self.page - 1) * self.per_page
    }
}

/// One page of a list: `{"items", "total", "page", "per_page"}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Paginated<T> {
    /// This page's items.
    pub items: Vec<T>,
    /// How many items there are in all.
    pub total: i64,
    /// The page number.
    pub page: i64,
    /// The page size asked for.
    pub per_page: i64,
}

impl<T> Paginated<T> {
    fn of((items, total): (Vec<T>, i64), page: Page) -> Self {
        Self {
            items,
            total,
            page: page.page,
            per_page: page.per_page,
        }
    }
}

/// Counts `n` revoked sessions in `portcullis_revocations_total{reason}`.
fn count_revocations(reason: &'static str, n: u64) {
    if n > 0 {
        metrics::counter!("portcullis_revocations_total", "reason" => reason).increment(n);
    }
}

/// A user id as it appears in a path: a positive integer, else unknown.
fn user_id(raw: &str) -> Result<i64> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::NotFound);
    }
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or(Error::NotFound)
}

/// The changes of a `PATCH /api/users/{id}` body; every problem at once.
fn parse_changes(body: &Map<String, Value>) -> Result<UserChanges> {
    let mut errors = Vec::new();
    let mut changes = UserChanges::default();
    for (key, value) in body {
        let flag = |value: &Value| {
            value
                .as_bool()
                .ok_or_else(|| FieldError::new(key.as_str(), "Must be true or false"))
        };
        let parsed = match key.as_str() {
            "name" => match value {
                Value::Null => {
                    changes.name = Some(None);
                    Ok(())
                }
                Value::String(s) => DisplayName::parse(Some(s), "name")
                    .map(|n| changes.name = Some(n.as_deref().map(str::to_string))),
                _ => Err(FieldError::new("name", "Must be a string or null")),
            },
            "is_active" => flag(value).map(|b| changes.is_active = Some(b)),
            "is_verified" => flag(value).map(|b| changes.is_verified = Some(b)),
            "is_superuser" => flag(value).map(|b| changes.is_superuser = Some(b)),
            _ => Err(FieldError::new(
                key.as_str(),
                format!(
                    "Unknown field: only {} can be changed",
                    ADMIN_PATCH_KEYS.join(", ")
                ),
            )),
        };
        if let Err(e) = parsed {
            errors.push(e);
        }
    }
    reject_if_any(errors)?;
    Ok(changes)
}

impl Flows {
    /// A page of users in id order, only those whose e-mail contains
    /// `email` (case-insensitively) when given.
    pub async fn admin_list_users(
        &self,
        page: Page,
        email: Option<&str>,
    ) -> Result<Paginated<User>> {
        let found = self
            .store
            .list_users(email, page.per_page, page.offset())
            .await?;
        Ok(Paginated::of(found, page))
    }

    /// The user `id`.
    pub async fn admin_get_user(&self, id: &str) -> Result<User> {
        let id = user_id(id)?;
        Ok(self
            .store
            .user_by_id(id)
            .await?
            .ok_or(Error::NotFound)?
            .user)
    }

    /// Changes `name`, `is_active`, `is_verified` and `is_superuser` of user
    /// `id` as `admin` (see [`Store::update_user`](crate::store::Store::update_user));
    /// the user as it is now. Unknown keys and wrong types are 422; the
    /// admin's own deactivation or demotion is 409 `CANNOT_MODIFY_SELF`.
    pub async fn admin_update_user(
        &self,
        admin: &User,
        id: &str,
        body: &Map<String, Value>,
        client: &ClientInfo,
    ) -> Result<User> {
        let id = user_id(id)?;
        let changes = parse_changes(body)?;
        if id == admin.id
            && (changes.is_active == Some(false) || changes.is_superuser == Some(false))
        {
            return Err(Error::CannotModifySelf);
        }
        let actor = Actor::Admin {
            id: admin.id,
            client,
        };
        let change = self
            .store
            .update_user(id, &changes, &actor)
            .await?
            .ok_or(Error::NotFound)?;
        count_revocations("user_deactivated", change.sessions_revoked);
        Ok(change.user)
    }

    /// Deletes user `id` as `admin`; their own account is 409
    /// `CANNOT_MODIFY_SELF`.
    pub async fn admin_delete_user(
        &self,
        admin: &User,
        id: &str,
        client: &ClientInfo,
    ) -> Result<()> {
        let id = user_id(id)?;
        if id == admin.id {
            return Err(Error::CannotModifySelf);
        }
        let actor = Actor::Admin {
            id: admin.id,
            client,
        };
        let change = self
            .store
            .delete_user(id, &actor)
            .await?
            .ok_or(Error::NotFound)?;
        count_revocations("user_deleted", change.sessions_revoked);
        Ok(())
    }

    /// The open sessions of user `id`, newest first.
    pub async fn admin_user_sessions(&self, id: &str) -> Result<Vec<SessionInfo>> {
        let id = user_id(id)?;
        if self.store.user_by_id(id).await?.is_none() {
            return Err(Error::NotFound);
        }
        self.store.list_sessions(id).await
    }

    /// Revokes every session of user `id` as `admin`; how many were open.
    pub async fn admin_revoke_sessions(
        &self,
        admin: &User,
        id: &str,
        client: &ClientInfo,
    ) -> Result<u64> {
        let id = user_id(id)?;
        let actor = Actor::Admin {
            id: admin.id,
            client,
        };
        let revoked = self
            .store
            .revoke_sessions_of(id, &actor)
            .await?
            .ok_or(Error::NotFound)?;
        count_revocations("admin_revoked", revoked);
        Ok(revoked)
    }

    /// Removes the second factor of user `id` as `admin` (SPEC §10): every
    /// session of theirs is revoked and the owner is mailed (see
    /// [`Flows::reset_mfa`]). 404 `MFA_NOT_ENABLED` when they have none;
    /// the admin's own factor is 409 `CANNOT_MODIFY_SELF`.
    pub async fn admin_reset_mfa(&self, admin: &User, id: &str, client: &ClientInfo) -> Result<()> {
        let id = user_id(id)?;
        self.reset_mfa(admin, id, client).await
    }

    /// The passkeys of user `id`, oldest first, as their owner lists them
    /// (SPEC §11).
    pub async fn admin_user_passkeys(&self, id: &str) -> Result<Vec<PasskeyInfo>> {
        let id = user_id(id)?;
        self.passkeys_of_user(id).await
    }

    /// Removes user `id`'s passkey `passkey_id` as `admin`, without a
    /// password: the owner is mailed as for their own removal, and
    /// `passkey_removed` names the superuser, in the deletion's transaction
    /// (SPEC §11). 404 `NOT_FOUND` for an unknown user and for an unknown,
    /// malformed or another user's passkey id. Their own passkey is 409
    /// `CANNOT_MODIFY_SELF`, as for their own second factor: a stolen
    /// superuser session must not remove a passkey without the password
    /// (`DELETE /passkeys/{id}` is the owner's way).
    pub async fn admin_remove_passkey(
        &self,
        admin: &User,
        id: &str,
        passkey_id: &str,
        client: &ClientInfo,
    ) -> Result<()> {
        let id = user_id(id)?;
        if id == admin.id {
            return Err(Error::CannotModifySelf);
        }
        let user = self
            .store
            .user_by_id(id)
            .await?
            .ok_or(Error::NotFound)?
            .user;
        let actor = Actor::Admin {
            id: admin.id,
            client,
        };
        self.delete_passkey_of(&user, passkey_id, &actor).await
    }

    /// A page of user `id`'s security events, newest first. A deleted
    /// user's trail stays readable (until the retention purge); an id that
    /// never had a user or an event is 404.
    pub async fn admin_user_events(&self, id: &str, page: Page) -> Result<Paginated<EventRecord>> {
        let id = user_id(id)?;
        if self.store.user_by_id(id).await?.is_none() && !self.store.has_events(id).await? {
            return Err(Error::NotFound);
        }
        let found = self
            .store
            .user_events(id, page.per_page, page.offset())
            .await?;
        Ok(Paginated::of(found, page))
    }

    /// A page of the signed-in user's own security events, newest first
    /// (SPEC §6 `GET /events`).
    pub async fn own_events(&self, user: &User, page: Page) -> Result<Paginated<EventRecord>> {
        let found = self
            .store
            .user_events(user.id, page.per_page, page.offset())
            .await?;
        Ok(Paginated::of(found, page))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_parse_or_name_the_field() {
        assert_eq!(Page::parse(None, None).unwrap(), Page::default());
        assert_eq!(
            Page::parse(Some("3"), Some("100")).unwrap(),
            Page {
                page: 3,
                per_page: 100
            }
        );
        assert_eq!(Page::parse(Some("3"), Some("7")).unwrap().offset(), 14);
        for (page, per_page, field) in [
            ("0", "20", "page"),
            ("x", "20", "page"),
            ("", "20", "page"),
            (" ", "20", "page"),
            ("10000001", "20", "page"),
            ("1", "", "per_page"),
            ("1", "1000", "per_page"),
            ("1", "0", "per_page"),
            ("1", "-5", "per_page"),
        ] {
            let Err(Error::Validation(errors)) = Page::parse(Some(page), Some(per_page)) else {
                panic!("{page} {per_page} accepted");
            };
            assert_eq!(errors[0].field, field);
        }
    }

    #[test]
    fn ids_are_positive_integers() {
        assert_eq!(user_id("42").unwrap(), 42);
        for bad in ["", "0", "-1", "+1", "abc", "1.5", "99999999999999999999"] {
            assert!(matches!(user_id(bad), Err(Error::NotFound)), "{bad}");
        }
    }

    #[test]
    fn changes_refuse_unknown_fields_and_wrong_types() {
        let body = serde_json::json!({"name": null, "is_active": false});
        let changes = parse_changes(body.as_object().unwrap()).unwrap();
        assert_eq!(changes.name, Some(None));
        assert_eq!(changes.is_active, Some(false));
        let body = serde_json::json!({"email": "x@y.z", "is_superuser": "yes"});
        let Err(Error::Validation(errors)) = parse_changes(body.as_object().unwrap()) else {
            panic!("accepted");
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["email", "is_superuser"]);
    }
}
