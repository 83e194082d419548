//! `user import`: many users at once, batched, in one transaction.

use std::collections::HashSet;

use sqlx::Row;

use super::{CreateUserError, Store, is_unique_violation};
use crate::clock::now_unix;
use crate::error::{Error, Result};

/// Rows per `INSERT` statement (10 parameters each: well under SQLite's
/// 32,766 and PostgreSQL's 65,535 parameters per statement).
pub const IMPORT_BATCH: usize = 500;

/// Keys per look-up of already registered e-mails.
const LOOKUP_BATCH: usize = 1000;

/// A user to import, checked: a valid e-mail and its key, a known hash format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedUser {
    /// The address as given (trimmed).
    pub email: String,
    /// Its uniqueness key ([`email_key`](super::email_key)).
    pub email_key: String,
    /// Display name.
    pub name: Option<String>,
    /// bcrypt or argon2 PHC hash, as it will be stored.
    pub password_hash: String,
    /// Active.
    pub is_active: bool,
    /// E-mail verified.
    pub is_verified: bool,
    /// Superuser.
    pub is_superuser: bool,
    /// Creation time to keep, Unix seconds; `None` for now.
    pub created_at: Option<i64>,
}

impl Store {
    /// Which of `keys` (e-mail keys) are registered already.
    pub async fn registered_email_keys(&self, keys: &[&str]) -> Result<HashSet<String>> {
        let mut found = HashSet::new();
        for chunk in keys.chunks(LOOKUP_BATCH) {
            let placeholders = (1..=chunk.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!("SELECT email_key FROM users WHERE email_key IN ({placeholders})");
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for key in chunk {
                query = query.bind(*key);
            }
            for row in query.fetch_all(&self.pool).await? {
                found.insert(row.try_get::<String, _>("email_key")?);
            }
        }
        Ok(found)
    }

    /// Inserts `users` in batches of [`IMPORT_BATCH`] rows, all in one
    /// transaction: all or nothing. `progress` is told how many rows are in
    /// after each batch. An e-mail registered meanwhile fails the whole
    /// import with [`CreateUserError::EmailTaken`].
    pub async fn import_users(
        &self,
        users: &[ImportedUser],
        mut progress: impl FnMut(usize),
    ) -> Result<usize, CreateUserError> {
        let now = now_unix();
        let mut tx = self.begin_write().await?;
        let sqlite = self.backend == super::Backend::Sqlite;
        if sqlite {
            // A page cache that holds the e-mail index (SQLite's default is
            // 2 MB): inserting keys in file order touches its pages at random.
            sqlx::query("PRAGMA cache_size = -262144")
                .execute(&mut *tx)
                .await
                .map_err(Error::from)?;
        }
        let mut done = 0;
        let mut full_batch_sql = None;
        for chunk in users.chunks(IMPORT_BATCH) {
            let sql = if chunk.len() == IMPORT_BATCH {
                full_batch_sql
                    .get_or_insert_with(|| insert_sql(IMPORT_BATCH, sqlite))
                    .clone()
            } else {
                insert_sql(chunk.len(), sqlite)
            };
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for user in chunk {
                query = query
                    .bind(user.email.as_str())
                    .bind(user.email_key.as_str())
                    .bind(user.name.as_deref())
                    .bind(user.password_hash.as_str())
                    .bind(user.is_active)
                    .bind(user.is_verified)
                    .bind(user.is_superuser)
                    .bind("{}")
                    .bind(user.created_at.unwrap_or(now))
                    .bind(now);
            }
            match query.execute(&mut *tx).await {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => return Err(CreateUserError::EmailTaken),
                Err(e) => return Err(CreateUserError::Other(e.into())),
            }
            done += chunk.len();
            progress(done);
        }
        if sqlite {
            sqlx::query("PRAGMA cache_size = -2000")
                .execute(&mut *tx)
                .await
                .map_err(Error::from)?;
        }
        tx.commit().await.map_err(Error::from)?;
        Ok(done)
    }
}

/// `INSERT INTO users … VALUES (…), (…), …` for `rows` rows. On SQLite
/// the parameters are anonymous (`?`, bound in order): SQLite finds a
/// numbered one by a linear search, which made a 5,000-parameter statement
/// quadratic (the one place where the SQL differs between the backends).
fn insert_sql(rows: usize, anonymous: bool) -> String {
    let mut sql = String::from(
        "INSERT INTO users (email, email_key, name, password_hash, is_active, is_verified, \
         is_superuser, extra, created_at, updated_at) VALUES ",
    );
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        let base = row * 10;
        sql.push('(');
        for col in 1..=10 {
            if col > 1 {
                sql.push_str(", ");
            }
            if anonymous {
                sql.push('?');
            } else {
                sql.push('$');
                sql.push_str(&(base + col).to_string());
            }
        }
        sql.push(')');
    }
    sql
}

#[cfg(test)]
mod tests {
    #[test]
    fn insert_sql_numbers_every_parameter() {
        let sql = super::insert_sql(2, false);
        assert!(sql.ends_with("VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10), ($11, $12, $13, $14, $15, $16, $17, $18, $19, $20)"), "{sql}");
        let sql = super::insert_sql(2, true);
        assert!(
            sql.ends_with("VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?), (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
            "{sql}"
        );
    }
}
