//! What superusers and the `user` commands do to other accounts: listing,
//! changing flags, deleting, revoking sessions. Each change runs in one
//! transaction together with the security event that records it.

use serde_json::{Map, Value, json};
use sqlx::Row;

use super::events::{Actor, insert_event};
use super::one_time::void_one_time_tokens;
use super::sessions::revoke_user_sessions;
use super::{Store, User, UserRecord, WriteTx, email_key};
use crate::clock::now_unix;
use crate::domain::SecurityEvent;
use crate::error::Result;

/// What a superuser may change of an account (SPEC §6 `PATCH /api/users/{id}`);
/// `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserChanges {
    /// The display name (`Some(None)` clears it).
    pub name: Option<Option<String>>,
    /// Active or deactivated (deactivation revokes every session and voids
    /// the one-time tokens).
    pub is_active: Option<bool>,
    /// E-mail verified.
    pub is_verified: Option<bool>,
    /// Superuser.
    pub is_superuser: Option<bool>,
}

/// What a change to an account did: the user (as changed, or as it was
/// before a deletion) and how many open sessions it revoked.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountChange {
    /// The user.
    pub user: User,
    /// Sessions that were open and are now revoked.
    pub sessions_revoked: u64,
}

/// `term` as a `LIKE` pattern matching any e-mail key that contains it:
/// the term gets the e-mail's normalisation (NFKC, lower case), and `\`, `%`
/// and `_` in it match themselves.
fn contains_pattern(term: &str) -> String {
    let mut pattern = String::from("%");
    for c in email_key(term).chars() {
        if matches!(c, '\\' | '%' | '_') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// `{"from": before, "to": after}` under `field` when they differ.
fn note_change<T: PartialEq + Into<Value> + Clone>(
    changes: &mut Map<String, Value>,
    field: &str,
    before: &T,
    after: &T,
) {
    if before != after {
        changes.insert(
            field.into(),
            json!({"from": before.clone().into(), "to": after.clone().into()}),
        );
    }
}

impl Store {
    /// A page of users in id order, optionally only those whose e-mail
    /// contains `email` (case-insensitively, after the same normalisation
    /// as e-mails), and how many match in all.
    pub async fn list_users(
        &self,
        email: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<User>, i64)> {
        let (filter, pattern) = match email.map(str::trim).filter(|e| !e.is_empty()) {
            Some(term) => (
                " WHERE email_key LIKE $1 ESCAPE '\\'",
                Some(contains_pattern(term)),
            ),
            None => ("", None),
        };
        let count_sql = format!("SELECT COUNT(*) AS n FROM users{filter}");
        let mut count = sqlx::query(sqlx::AssertSqlSafe(count_sql));
        if let Some(pattern) = &pattern {
            count = count.bind(pattern.as_str());
        }
        let total: i64 = count.fetch_one(&self.pool).await?.try_get("n")?;
        let (limit_at, offset_at) = if pattern.is_some() { (2, 3) } else { (1, 2) };
        let page_sql = format!(
            concat!(
                "SELECT ",
                user_columns!(),
                " FROM users{} ORDER BY id LIMIT ${} OFFSET ${}"
            ),
            filter, limit_at, offset_at
        );
        let mut page = sqlx::query(sqlx::AssertSqlSafe(page_sql));
        if let Some(pattern) = &pattern {
            page = page.bind(pattern.as_str());
        }
        let rows = page.bind(limit).bind(offset).fetch_all(&self.pool).await?;
        let users = rows
            .iter()
            .map(|r| UserRecord::from_row(r).map(|r| r.user))
            .collect::<Result<_, _>>()?;
        Ok((users, total))
    }

    /// The user `id`, read under the write lock of `tx`.
    async fn locked_user(&self, tx: &mut WriteTx, id: i64) -> Result<Option<User>> {
        let sql = format!(
            concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1{}"),
            self.lock_clause()
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
        Ok(row
            .map(|r| UserRecord::from_row(&r))
            .transpose()?
            .map(|r| r.user))
    }

    /// Applies `changes` to user `id` as `actor`, in one transaction with
    /// what follows from them and their events: a deactivation revokes every
    /// session, voids the one-time tokens and records `user_deactivated`; a
    /// reactivation records `user_activated`; other changes record one
    /// `user_updated` naming each field with its old and new value. Nothing
    /// is written (and nothing recorded) when nothing changes. The user as
    /// it is now, or `None` if there is no user `id`.
    pub async fn update_user(
        &self,
        id: i64,
        changes: &UserChanges,
        actor: &Actor<'_>,
    ) -> Result<Option<AccountChange>> {
        let now = now_unix();
        let mut tx = self.begin_write().await?;
        let Some(before) = self.locked_user(&mut tx, id).await? else {
            return Ok(None);
        };
        let mut after = before.clone();
        if let Some(name) = &changes.name {
            after.name.clone_from(name);
        }
        after.is_active = changes.is_active.unwrap_or(before.is_active);
        after.is_verified = changes.is_verified.unwrap_or(before.is_verified);
        after.is_superuser = changes.is_superuser.unwrap_or(before.is_superuser);
        if after == before {
            return Ok(Some(AccountChange {
                user: before,
                sessions_revoked: 0,
            }));
        }
        sqlx::query(
            "UPDATE users SET name = $1, is_active = $2, is_verified = $3, is_superuser = $4, \
             updated_at = $5 WHERE id = $6",
        )
        .bind(after.name.as_deref())
        .bind(after.is_active)
        .bind(after.is_verified)
        .bind(after.is_superuser)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let mut updated = Map::new();
        note_change(&mut updated, "name", &before.name, &after.name);
        note_change(
            &mut updated,
            "is_verified",
            &before.is_verified,
            &after.is_verified,
        );
        note_change(
            &mut updated,
            "is_superuser",
            &before.is_superuser,
            &after.is_superuser,
        );
        if !updated.is_empty() {
            let details = json!({ "changes": updated });
            insert_event(
                &mut tx,
                Some(id),
                SecurityEvent::UserUpdated,
                actor,
                Some(&details),
                now,
            )
            .await?;
        }
        let mut sessions_revoked = 0;
        match (before.is_active, after.is_active) {
            (true, false) => {
                sessions_revoked = revoke_user_sessions(&mut tx, id, now).await?;
                void_one_time_tokens(&mut tx, id, now).await?;
                let details = json!({ "sessions_revoked": sessions_revoked });
                insert_event(
                    &mut tx,
                    Some(id),
                    SecurityEvent::UserDeactivated,
                    actor,
                    Some(&details),
                    now,
                )
                .await?;
            }
            (false, true) => {
                insert_event(
                    &mut tx,
                    Some(id),
                    SecurityEvent::UserActivated,
                    actor,
                    None,
                    now,
                )
                .await?;
            }
            _ => {}
        }
        tx.commit().await?;
        Ok(Some(AccountChange {
            user: after,
            sessions_revoked,
        }))
    }

    /// Deletes user `id` as `actor`: revokes every session (so that tokens
    /// answer `TOKEN_REVOKED` on every instance however they cache), deletes
    /// the account with its sessions and tokens, and records `user_deleted`
    /// (keeping the e-mail in `details`), in one transaction. The user as it
    /// was, or `None` if there is no user `id`. Their security events stay
    /// until the retention purge.
    pub async fn delete_user(&self, id: i64, actor: &Actor<'_>) -> Result<Option<AccountChange>> {
        let now = now_unix();
        let mut tx = self.begin_write().await?;
        let Some(user) = self.locked_user(&mut tx, id).await? else {
            return Ok(None);
        };
        let revoked = revoke_user_sessions(&mut tx, id, now).await?;
        sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let details = json!({ "email": user.email, "sessions_revoked": revoked });
        insert_event(
            &mut tx,
            Some(id),
            SecurityEvent::UserDeleted,
            actor,
            Some(&details),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(Some(AccountChange {
            user,
            sessions_revoked: revoked,
        }))
    }

    /// Revokes every session of user `id` as `actor` and records
    /// `sessions_revoked`, in one transaction; how many were open, or `None`
    /// if there is no user `id`.
    pub async fn revoke_sessions_of(&self, id: i64, actor: &Actor<'_>) -> Result<Option<u64>> {
        let now = now_unix();
        let mut tx = self.begin_write().await?;
        if self.locked_user(&mut tx, id).await?.is_none() {
            return Ok(None);
        }
        let revoked = revoke_user_sessions(&mut tx, id, now).await?;
        let details = json!({ "sessions_revoked": revoked });
        insert_event(
            &mut tx,
            Some(id),
            SecurityEvent::SessionsRevoked,
            actor,
            Some(&details),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(Some(revoked))
    }

    /// Whether user `id` has ever had a security event recorded (the trail
    /// of a deleted user stays readable until the retention purge).
    pub async fn has_events(&self, user_id: i64) -> Result<bool> {
        Ok(
            sqlx::query("SELECT 1 AS one FROM security_events WHERE user_id = $1 LIMIT 1")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?
                .is_some(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_terms_match_themselves() {
        assert_eq!(contains_pattern(" Ab "), "%ab%");
        assert_eq!(contains_pattern("a_b%c\\"), "%a\\_b\\%c\\\\%");
    }
}
