//! `user import`: many users at once, batched, in one transaction.

use std::collections::HashSet;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::models::flag;
use super::{CreateUserError, Store, WriteTx, is_unique_violation};
use crate::clock::now_unix;
use crate::domain::SecurityEvent;
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
            let inserted = match query.fetch_all(&mut *tx).await {
                Ok(rows) => rows,
                Err(e) if is_unique_violation(&e) => return Err(CreateUserError::EmailTaken),
                Err(e) => return Err(CreateUserError::Other(e.into())),
            };
            record_imports(&mut tx, &inserted, sqlite, now).await?;
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

/// Records `user_created` for each user of a batch just inserted (the rows
/// `RETURNING id, is_superuser, is_verified`), in the import's transaction,
/// so that an imported account (a superuser's too) starts its trail with
/// the import, or the import writes nothing at all. Like the other `user`
/// commands, the event names no actor and says `"via": "cli"`, with
/// `"imported": true` and the flags it was given.
async fn record_imports(
    tx: &mut WriteTx,
    inserted: &[AnyRow],
    anonymous: bool,
    now: i64,
) -> Result<()> {
    if inserted.is_empty() {
        return Ok(());
    }
    let sql = placeholders_sql(
        "INSERT INTO security_events (user_id, kind, created_at, details) VALUES ",
        inserted.len(),
        4,
        anonymous,
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for row in inserted {
        let id: i64 = row.try_get("id")?;
        let superuser = flag(row, "is_superuser")?;
        let verified = flag(row, "is_verified")?;
        let details = serde_json::json!({
            "via": "cli",
            "imported": true,
            "is_superuser": superuser,
            "is_verified": verified,
        });
        query = query
            .bind(id)
            .bind(SecurityEvent::UserCreated.as_str())
            .bind(now)
            .bind(details.to_string());
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

/// `INSERT INTO users … VALUES (…), (…), … RETURNING …` for `rows` rows.
fn insert_sql(rows: usize, anonymous: bool) -> String {
    let mut sql = placeholders_sql(
        "INSERT INTO users (email, email_key, name, password_hash, is_active, is_verified, \
         is_superuser, extra, created_at, updated_at) VALUES ",
        rows,
        10,
        anonymous,
    );
    sql.push_str(" RETURNING id, is_superuser, is_verified");
    sql
}

/// `head` followed by `rows` tuples of `columns` parameters each. On SQLite
/// the parameters are anonymous (`?`, bound in order): SQLite finds a
/// numbered one by a linear search, which made a 5,000-parameter statement
/// quadratic (the one place where the SQL differs between the backends).
fn placeholders_sql(head: &str, rows: usize, columns: usize, anonymous: bool) -> String {
    let mut sql = String::from(head);
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        let base = row * columns;
        sql.push('(');
        for col in 1..=columns {
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
        assert!(sql.ends_with("VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10), ($11, $12, $13, $14, $15, $16, $17, $18, $19, $20) RETURNING id, is_superuser, is_verified"), "{sql}");
        let sql = super::insert_sql(2, true);
        assert!(
            sql.ends_with("VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?), (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id, is_superuser, is_verified"),
            "{sql}"
        );
    }
}
