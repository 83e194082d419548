//! Persistence: users, sessions, refresh tokens, one-time tokens, the mail
//! queue and security events, on SQLite or PostgreSQL through the same SQL.
//!
//! The SQL is written once, in the dialect both databases share (`$n`
//! placeholders, `RETURNING`, `TRUE`/`FALSE`), and runs through sqlx's `Any`
//! driver. Times are Unix seconds. Writes that belong together run in one
//! transaction; on SQLite write transactions start with `BEGIN IMMEDIATE` so
//! that concurrent writers queue instead of failing.

mod mail_queue;
mod models;
mod one_time;

pub use one_time::TokenPurpose;

pub use models::{
    ClientInfo, ExtraFields, NewUser, RefreshOutcome, SessionInfo, SessionLookup, User, UserRecord,
};

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Row};

use crate::error::{Error, Result};
use crate::token::now_unix;

/// The user columns that [`UserRecord::from_row`] reads, for `concat!`.
macro_rules! user_columns {
    () => {
        "id, email, name, password_hash, is_active, is_verified, is_superuser, extra, created_at"
    };
}

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// A handle on the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

/// The form of an e-mail that uniqueness and look-ups use: trimmed and
/// lower-cased with Rust's full Unicode rules (identical on both databases).
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// SHA-256 of a secret, hex: what is stored instead of tokens themselves.
pub fn hash_secret(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let mut out = String::with_capacity(64);
    for byte in digest {
        use std::fmt::Write;
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// The `Error` for a failed insert of a user.
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    /// The e-mail is taken (case-insensitively).
    #[error("email already registered")]
    EmailTaken,
    /// Anything else.
    #[error(transparent)]
    Other(#[from] Error),
}

impl From<CreateUserError> for Error {
    fn from(e: CreateUserError) -> Self {
        match e {
            CreateUserError::EmailTaken => Error::EmailAlreadyExists,
            CreateUserError::Other(e) => e,
        }
    }
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

impl Store {
    /// Connects to `database_url` (`sqlite://path` or `postgres://…`),
    /// creating an SQLite file and its directory when missing.
    pub async fn connect(database_url: &str) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let (url, backend) = if database_url.starts_with("sqlite:") {
            (prepare_sqlite_url(database_url)?, Backend::Sqlite)
        } else {
            (database_url.to_string(), Backend::Postgres)
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL survives a killed process without losing committed
                        // transactions; NORMAL skips the fsync per commit.
                        sqlx::raw_sql("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;")
                            .execute(conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Self { pool, backend })
    }

    /// Applies the migrations of this backend.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self.backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite").run(&self.pool).await?,
            Backend::Postgres => {
                sqlx::migrate!("migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The connection pool, for applications that keep their own tables beside ours.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes every connection (at shutdown).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        let begin = match self.backend {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        };
        Ok(self.pool.begin_with(begin).await?)
    }

    // ---- users -------------------------------------------------------------

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

    /// Inserts many users in one transaction: all or nothing.
    pub async fn import_users(&self, users: &[NewUser<'_>]) -> Result<usize, CreateUserError> {
        let mut tx = self.begin_write().await?;
        let now = now_unix();
        for new in users {
            let result = sqlx::query(
                "INSERT INTO users (email, email_key, name, password_hash, is_active, is_verified, is_superuser, extra, created_at, updated_at) \
                 VALUES ($1, $10, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(new.email)
            .bind(new.name)
            .bind(new.password_hash)
            .bind(new.is_active)
            .bind(new.is_verified)
            .bind(new.is_superuser)
            .bind(serde_json::Value::Object(new.extra.clone()).to_string())
            .bind(new.created_at.unwrap_or(now))
            .bind(now)
            .bind(email_key(new.email))
            .execute(&mut *tx)
            .await;
            match result {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => return Err(CreateUserError::EmailTaken),
                Err(e) => return Err(CreateUserError::Other(e.into())),
            }
        }
        tx.commit().await.map_err(Error::from)?;
        Ok(users.len())
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

    /// Replaces a password hash (a re-hash after login; no session changes).
    pub async fn set_password_hash(&self, user_id: i64, hash: &str) -> Result<()> {
        sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
            .bind(hash)
            .bind(now_unix())
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Changes the password, revokes every session but `keep_session`, and
    /// voids outstanding reset tokens, in one transaction.
    pub async fn change_password(
        &self,
        user_id: i64,
        hash: &str,
        keep_session: Option<&str>,
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
            let lock = match self.backend {
                Backend::Sqlite => "",
                Backend::Postgres => " FOR UPDATE",
            };
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
        Ok(())
    }

    // ---- sessions ----------------------------------------------------------

    /// Opens a session for a login and records its first refresh token.
    pub async fn create_session(
        &self,
        session_id: &str,
        user_id: i64,
        refresh_jti: &str,
        refresh_expires_at: i64,
        client: &ClientInfo,
    ) -> Result<()> {
        let now = now_unix();
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, ip, user_agent) \
             VALUES ($1, $2, $3, $3, $4, $5, $6)",
        )
        .bind(session_id)
        .bind(user_id)
        .bind(now)
        .bind(refresh_expires_at)
        .bind(client.ip.as_deref())
        .bind(client.user_agent.as_deref())
        .execute(&mut *tx)
        .await?;
        insert_refresh_token(&mut tx, session_id, refresh_jti, now, refresh_expires_at).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The session `session_id` with its user, for checking an access token.
    pub async fn lookup_session(&self, session_id: &str) -> Result<SessionLookup> {
        let row = sqlx::query(
            "SELECT s.revoked_at, s.last_used_at, u.id, u.email, u.name, u.password_hash, u.is_active, \
                    u.is_verified, u.is_superuser, u.extra, u.created_at \
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1",
        )
        .bind(session_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(SessionLookup::Missing);
        };
        let revoked: Option<i64> = row.try_get("revoked_at")?;
        if revoked.is_some() {
            return Ok(SessionLookup::Revoked);
        }
        let last_used_at: i64 = row.try_get("last_used_at")?;
        Ok(SessionLookup::Active {
            user: UserRecord::from_row(&row)?.user,
            last_used_at,
        })
    }

    /// Records that the session was used now.
    pub async fn touch_session(&self, session_id: &str) -> Result<()> {
        sqlx::query("UPDATE sessions SET last_used_at = $1 WHERE id = $2")
            .bind(now_unix())
            .bind(session_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Spends refresh token `jti` of session `session_id` and records
    /// `new_jti` in its place (SPEC §5), deciding between rotation, the grace
    /// window and reuse (theft) in one transaction.
    pub async fn rotate_refresh_token(
        &self,
        session_id: &str,
        jti: &str,
        new_jti: &str,
        new_expires_at: i64,
        grace: Duration,
    ) -> Result<RefreshOutcome> {
        let now = now_unix();
        let jti_hash = hash_secret(jti);
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "SELECT s.revoked_at, u.id, u.email, u.name, u.password_hash, u.is_active, u.is_verified, \
                    u.is_superuser, u.extra, u.created_at \
             FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id JOIN users u ON u.id = s.user_id \
             WHERE r.jti_hash = $1 AND r.session_id = $2",
        )
        .bind(&jti_hash)
        .bind(session_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(RefreshOutcome::Unknown);
        };
        if row.try_get::<Option<i64>, _>("revoked_at")?.is_some() {
            return Ok(RefreshOutcome::Revoked);
        }
        let user = UserRecord::from_row(&row)?.user;
        let spent_now = sqlx::query(
            "UPDATE refresh_tokens SET spent_at = $1 WHERE jti_hash = $2 AND spent_at IS NULL",
        )
        .bind(now)
        .bind(&jti_hash)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        let outcome = if spent_now {
            RefreshOutcome::Rotated(user)
        } else {
            let spent_at: Option<i64> =
                sqlx::query("SELECT spent_at FROM refresh_tokens WHERE jti_hash = $1")
                    .bind(&jti_hash)
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get("spent_at")?;
            let within_grace =
                !grace.is_zero() && spent_at.is_some_and(|at| now - at <= grace.as_secs() as i64);
            if !within_grace {
                sqlx::query(
                    "UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                )
                .bind(now)
                .bind(session_id)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                return Ok(RefreshOutcome::Reused { user_id: user.id });
            }
            RefreshOutcome::Grace(user)
        };
        insert_refresh_token(&mut tx, session_id, new_jti, now, new_expires_at).await?;
        sqlx::query("UPDATE sessions SET last_used_at = $1, expires_at = $2 WHERE id = $3")
            .bind(now)
            .bind(new_expires_at)
            .bind(session_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// Revokes one session of `user_id`; `false` if it is not theirs or unknown.
    pub async fn revoke_session(&self, user_id: i64, session_id: &str) -> Result<bool> {
        let now = now_unix();
        let mut tx = self.begin_write().await?;
        let found = sqlx::query("SELECT revoked_at FROM sessions WHERE id = $1 AND user_id = $2")
            .bind(session_id)
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(found) = found else {
            return Ok(false);
        };
        if found.try_get::<Option<i64>, _>("revoked_at")?.is_some() {
            return Ok(false);
        }
        sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2")
            .bind(now)
            .bind(session_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Revokes every session of `user_id`; returns how many were open.
    pub async fn revoke_all_sessions(&self, user_id: i64) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let n = revoke_user_sessions(&mut tx, user_id, now_unix()).await?;
        tx.commit().await?;
        Ok(n)
    }

    /// The user's open sessions, newest first.
    pub async fn list_sessions(&self, user_id: i64) -> Result<Vec<SessionInfo>> {
        let rows = sqlx::query(
            "SELECT id, created_at, last_used_at, ip, user_agent FROM sessions \
             WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 \
             ORDER BY created_at DESC, id",
        )
        .bind(user_id)
        .bind(now_unix())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(SessionInfo::from_row)
            .collect::<Result<_, _>>()
            .map_err(Error::from)
    }

    // ---- audit ------------------------------------------------------------

    /// Records a security event (login, logout, password change, …).
    pub async fn record_event(
        &self,
        user_id: Option<i64>,
        kind: &str,
        client: &ClientInfo,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO security_events (user_id, kind, ip, user_agent, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(user_id)
        .bind(kind)
        .bind(client.ip.as_deref())
        .bind(client.user_agent.as_deref())
        .bind(now_unix())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes what can no longer matter: refresh tokens and sessions past
    /// their expiry, one-time tokens past theirs, and delivered mail older
    /// than a day. Returns how many rows went. Safe to run on any instance.
    pub async fn purge_expired(&self, now: i64) -> Result<u64> {
        let mut removed = 0;
        for (sql, cutoff) in [
            ("DELETE FROM refresh_tokens WHERE expires_at < $1", now),
            ("DELETE FROM sessions WHERE expires_at < $1", now),
            ("DELETE FROM one_time_tokens WHERE expires_at < $1", now),
            (
                "DELETE FROM mail_queue WHERE sent_at IS NOT NULL AND sent_at < $1",
                now - 86_400,
            ),
        ] {
            removed += sqlx::query(sql)
                .bind(cutoff)
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        Ok(removed)
    }

    /// The kinds of the user's latest security events, newest first.
    pub async fn recent_events(&self, user_id: i64, limit: i64) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT kind FROM security_events WHERE user_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(user_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("kind"))
            .collect::<Result<_, _>>()
            .map_err(Error::from)
    }
}

async fn insert_refresh_token(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    session_id: &str,
    jti: &str,
    now: i64,
    expires_at: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO refresh_tokens (jti_hash, session_id, issued_at, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(hash_secret(jti))
    .bind(session_id)
    .bind(now)
    .bind(expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Marks every outstanding reset token of `user_id` used.
async fn void_reset_tokens(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    user_id: i64,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE one_time_tokens SET used_at = $1 WHERE user_id = $2 AND purpose = 'reset' AND used_at IS NULL",
    )
    .bind(now)
    .bind(user_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn revoke_user_sessions(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    user_id: i64,
    now: i64,
) -> Result<u64> {
    Ok(
        sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(user_id)
        .execute(&mut **tx)
        .await?
        .rows_affected(),
    )
}

/// Adds `mode=rwc` to an SQLite URL and creates the file's directory.
fn prepare_sqlite_url(url: &str) -> anyhow::Result<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let parent = Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty());
    if let Some(parent) = parent.filter(|_| path != ":memory:" && !path.is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    if query.contains("mode=") {
        Ok(url.to_string())
    } else if query.is_empty() {
        Ok(format!("{url}?mode=rwc"))
    } else {
        Ok(format!("{url}&mode=rwc"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_get_create_mode() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/sub/x.db", dir.path().display());
        assert_eq!(prepare_sqlite_url(&url).unwrap(), format!("{url}?mode=rwc"));
        assert!(dir.path().join("sub").is_dir());
        assert_eq!(
            prepare_sqlite_url("sqlite::memory:?mode=memory").unwrap(),
            "sqlite::memory:?mode=memory"
        );
    }

    #[test]
    fn secrets_are_hashed_hex() {
        assert_eq!(hash_secret("abc").len(), 64);
        assert_ne!(hash_secret("abc"), hash_secret("abd"));
    }
}
