//! Accounts: creating, reading and changing users.

use sqlx::Row;

use super::{
    CreateUserError, NewUser, Store, User, UserRecord, email_key, is_unique_violation,
    mail_queue::insert_mail,
    one_time::{void_one_time_tokens, void_reset_tokens},
    sessions::revoke_user_sessions,
};
use crate::clock::now_unix;
use crate::domain::OutgoingMail;
use crate::error::{Error, Result};

impl Store {
    /// Inserts a user; fails with [`CreateUserError::EmailTaken`] when the
    /// e-mail exists in any letter case.
    pub async fn create_user(&self, new: &NewUser<'_>) -> Result<User, CreateUserError> {
        let now = now_unix();
        let row = sqlx::query(concat!(
            "INSERT INTO users (email, email_key, name, password_hash, is_active, is_verified, is_superuser, extra, created_at, updated_at) \
             VALUES ($1, $9, $2, $3, $4, $5, $6, $7, $8, $8) \
             RETURNING ",
            user_columns!()
        ),
        )
        .bind(new.email)
        .bind(new.name)
        .bind(new.password_hash)
        .bind(new.is_active)
        .bind(new.is_verified)
        .bind(new.is_superuser)
        .bind(serde_json::Value::Object(new.extra.clone()).to_string())
        .bind(new.created_at.unwrap_or(now))
        .bind(email_key(new.email))
        .fetch_one(&self.pool)
        .await;
        match row {
            Ok(row) => Ok(UserRecord::from_row(&row).map_err(Error::from)?.user),
            Err(e) if is_unique_violation(&e) => Err(CreateUserError::EmailTaken),
            Err(e) => Err(CreateUserError::Other(e.into())),
        }
    }

    /// The user with this e-mail (any letter case), with the password hash.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE email_key = $1"
        ))
        .bind(email_key(email))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| UserRecord::from_row(&r))
            .transpose()
            .map_err(Error::from)
    }

    /// The user with this id, with the password hash.
    pub async fn user_by_id(&self, id: i64) -> Result<Option<UserRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| UserRecord::from_row(&r))
            .transpose()
            .map_err(Error::from)
    }

    /// Sets a password hash as it is, without touching sessions (tools and
    /// imports; a login's re-hash uses [`Store::replace_password_hash`]).
    pub async fn set_password_hash(&self, user_id: i64, hash: &str) -> Result<()> {
        sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
            .bind(hash)
            .bind(now_unix())
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        self.wrote();
        Ok(())
    }

    /// Replaces the password hash `old` by `new` (a re-hash after login; no
    /// session changes), only if `old` is still the stored hash: a re-hash
    /// racing a reset never writes the old password back. Whether it did.
    pub async fn replace_password_hash(&self, user_id: i64, old: &str, new: &str) -> Result<bool> {
        let replaced = sqlx::query(
            "UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3 AND password_hash = $4",
        )
        .bind(new)
        .bind(now_unix())
        .bind(user_id)
        .bind(old)
        .execute(&self.pool)
        .await?
        .rows_affected();
        self.wrote();
        Ok(replaced == 1)
    }

    /// Changes the password, revokes every session but `keep_session`, and
    /// voids outstanding reset tokens, in one transaction.
    pub async fn change_password(
        &self,
        user_id: i64,
        hash: &str,
        keep_session: Option<&str>,
        notice: &OutgoingMail,
    ) -> Result<()> {
        let now = now_unix();
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
            .bind(hash)
            .bind(now)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL AND id <> $3",
        )
        .bind(now)
        .bind(user_id)
        .bind(keep_session.unwrap_or(""))
        .execute(&mut *tx)
        .await?;
        void_reset_tokens(&mut tx, user_id, now).await?;
        super::mfa::void_mfa_tokens(&mut tx, user_id, now).await?;
        insert_mail(&mut tx, notice, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Updates the name and merges `extra` into the application fields, in
    /// one transaction (the stored fields are read under the write lock, so
    /// concurrent updates of different fields both survive); returns the user.
    pub async fn update_profile(
        &self,
        user_id: i64,
        name: Option<Option<&str>>,
        extra: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> Result<Option<User>> {
        let now = now_unix();
        let mut tx = self.begin_write().await?;
        if let Some(name) = name {
            sqlx::query("UPDATE users SET name = $1, updated_at = $2 WHERE id = $3")
                .bind(name)
                .bind(now)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(extra) = extra.filter(|e| !e.is_empty()) {
            let lock = self.lock_clause();
            let sql = format!("SELECT extra FROM users WHERE id = $1{lock}");
            let stored = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(stored) = stored {
                let mut merged = match serde_json::from_str(&stored.try_get::<String, _>("extra")?)
                {
                    Ok(serde_json::Value::Object(map)) => map,
                    _ => serde_json::Map::new(),
                };
                merged.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
                sqlx::query("UPDATE users SET extra = $1, updated_at = $2 WHERE id = $3")
                    .bind(serde_json::Value::Object(merged).to_string())
                    .bind(now)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        let row = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE id = $1"
        ))
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row
            .map(|r| UserRecord::from_row(&r))
            .transpose()?
            .map(|r| r.user))
    }

    /// Activates or deactivates a user; deactivation revokes every session
    /// (and they stay revoked after reactivation).
    pub async fn set_active(&self, user_id: i64, active: bool) -> Result<bool> {
        let now = now_unix();
        let mut tx = self.begin_write().await?;
        let updated = sqlx::query("UPDATE users SET is_active = $1, updated_at = $2 WHERE id = $3")
            .bind(active)
            .bind(now)
            .bind(user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if !active {
            revoke_user_sessions(&mut tx, user_id, now).await?;
            void_one_time_tokens(&mut tx, user_id, now).await?;
        }
        tx.commit().await?;
        Ok(updated == 1)
    }

    /// Marks the e-mail verified.
    pub async fn set_verified(&self, user_id: i64, verified: bool) -> Result<()> {
        sqlx::query("UPDATE users SET is_verified = $1, updated_at = $2 WHERE id = $3")
            .bind(verified)
            .bind(now_unix())
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        self.wrote();
        Ok(())
    }
}
