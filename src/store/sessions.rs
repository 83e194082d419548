//! Sessions (one per login) and the refresh tokens that renew them.

use sqlx::Row;

use super::{
    Backend, Lifetimes, NewSession, RefreshOutcome, Refusal, SessionInfo, SessionLookup,
    SessionOpening, StillValid, Store, UserRecord, WriteTx, hash_secret,
};
use crate::clock::now_unix;
use crate::domain::SessionAuth;
use crate::error::{Error, Result};

impl Store {
    /// Opens a session for `user_id` and records its first refresh token,
    /// in one transaction that first re-reads the user under a lock: the
    /// session is opened only if the account still exists, is active (and
    /// verified, when `check.require_verified`), and still has the password
    /// hash the login verified (`check.password_hash`). A reset, a change,
    /// a deactivation or a deletion that raced the login's slow hashing
    /// therefore leaves no session behind (SPEC §5).
    pub async fn open_session(
        &self,
        new: &NewSession<'_>,
        check: &StillValid<'_>,
    ) -> Result<SessionOpening> {
        self.open_session_as(new, check, SessionAuth::Password)
            .await
    }

    /// [`Store::open_session`] for a session authenticated by `auth`
    /// (SPEC §10), recorded on the session and copied into its tokens. A
    /// session on the password alone is also refused when the user has a
    /// second factor by then ([`Refusal::SecondFactorRequired`]): a login
    /// that raced the enabling of TOTP gets no token that skips it (the
    /// enabling locks the same user row, and revokes the sessions opened
    /// before it).
    pub async fn open_session_as(
        &self,
        new: &NewSession<'_>,
        check: &StillValid<'_>,
        auth: SessionAuth,
    ) -> Result<SessionOpening> {
        let now = new.now;
        let mut tx = self.begin_write().await?;
        let lock = self.lock_clause();
        let sql =
            format!("SELECT password_hash, is_active, is_verified FROM users WHERE id = $1{lock}");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(new.user_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Ok(SessionOpening::Refused(Refusal::UserGone));
        };
        let stored: String = row.try_get("password_hash")?;
        if check
            .password_hash
            .is_some_and(|expected| expected != stored)
        {
            return Ok(SessionOpening::Refused(Refusal::PasswordChanged));
        }
        if !super::models::flag(&row, "is_active")? {
            return Ok(SessionOpening::Refused(Refusal::Inactive));
        }
        if check.require_verified && !super::models::flag(&row, "is_verified")? {
            return Ok(SessionOpening::Refused(Refusal::Unverified));
        }
        if !auth.is_multi_factor() && has_second_factor(&mut tx, new.user_id).await? {
            return Ok(SessionOpening::Refused(Refusal::SecondFactorRequired));
        }
        let expires_at = now + new.lifetimes.first_refresh_secs();
        sqlx::query(
            "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, ip, user_agent, amr, aal) \
             VALUES ($1, $2, $3, $3, $4, $5, $6, $7, $8)",
        )
        .bind(new.session_id)
        .bind(new.user_id)
        .bind(now)
        .bind(expires_at)
        .bind(new.client.ip.as_deref())
        .bind(new.client.user_agent.as_deref())
        .bind(auth.stored())
        .bind(auth.aal())
        .execute(&mut *tx)
        .await?;
        insert_refresh_token(&mut tx, new.session_id, new.refresh_jti, now, expires_at).await?;
        tx.commit().await?;
        Ok(SessionOpening::Opened {
            refresh_expires_at: expires_at,
        })
    }

    /// The session `session_id` with its user, read from the database.
    pub(super) async fn lookup_session_in_db(&self, session_id: &str) -> Result<SessionLookup> {
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
            user: std::sync::Arc::new(UserRecord::from_row(&row)?.user),
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

    /// The write of a rotation, in one round trip to the database: spend
    /// the token (`$2`, at `$1`) if it is unspent, and only then record its
    /// successor (`$3`, session `$4`, expiring at `$5`) and carry the
    /// session's use and expiry forward. Affects no row when the token was
    /// spent already. (A statement to the database is a thread hand-off on
    /// SQLite and a network round trip on PostgreSQL, and the write lock is
    /// held across them: three statements in one halved a refresh's time.)
    ///
    /// SQLite runs the three statements of one query string in order, each
    /// gated on `changes()`, the rows the previous one changed; PostgreSQL
    /// chains them as data-modifying `WITH` clauses.
    fn rotation_sql(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => {
                "UPDATE refresh_tokens SET spent_at = $1 WHERE jti_hash = $2 AND spent_at IS NULL; \
                 INSERT INTO refresh_tokens (jti_hash, session_id, issued_at, expires_at) \
                     SELECT $3, $4, $1, $5 WHERE changes() = 1; \
                 UPDATE sessions SET last_used_at = $1, expires_at = $5 WHERE id = $4 AND changes() = 1"
            }
            Backend::Postgres => {
                "WITH spent AS ( \
                     UPDATE refresh_tokens SET spent_at = $1 WHERE jti_hash = $2 AND spent_at IS NULL \
                     RETURNING session_id), \
                 successor AS ( \
                     INSERT INTO refresh_tokens (jti_hash, session_id, issued_at, expires_at) \
                     SELECT $3, $4, $1, $5 FROM spent RETURNING session_id) \
                 UPDATE sessions SET last_used_at = $1, expires_at = $5 \
                 WHERE id IN (SELECT session_id FROM successor)"
            }
        }
    }

    /// Spends refresh token `jti` of session `session_id` and records its
    /// `successor` (SPEC §5), deciding in one transaction between:
    /// - rotation: `jti` was live; the successor is recorded, expiring at
    ///   the refresh lifetime or the session's absolute end, whichever is first;
    /// - grace: `jti` is the most recently spent token of the session (its
    ///   successor is still unspent) and was spent within `grace`: the same
    ///   successor is handed out again, nothing new is recorded;
    /// - reuse: anything else already spent; the session is revoked;
    /// - expiry: the session reached its absolute lifetime.
    ///
    /// `now` is the time of the refresh, also the successor's `iat`.
    pub async fn rotate_refresh_token(
        &self,
        session_id: &str,
        jti: &str,
        successor: &str,
        lifetimes: &Lifetimes,
        now: i64,
    ) -> Result<RefreshOutcome> {
        let jti_hash = hash_secret(jti);
        let successor_hash = hash_secret(successor);
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "SELECT s.revoked_at, s.created_at AS session_created_at, s.amr, \
                    u.id, u.email, u.name, u.password_hash, u.is_active, u.is_verified, \
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
        let session_end = row
            .try_get::<i64, _>("session_created_at")?
            .saturating_add(lifetimes.session_max_secs);
        if now >= session_end {
            return Ok(RefreshOutcome::Expired);
        }
        let user = UserRecord::from_row(&row)?.user;
        let auth = SessionAuth::from_stored(&row.try_get::<String, _>("amr")?);
        let expires_at = (now + lifetimes.refresh_secs).min(session_end);
        let rotated = sqlx::query(self.rotation_sql())
            .bind(now)
            .bind(&jti_hash)
            .bind(&successor_hash)
            .bind(session_id)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        if rotated {
            tx.commit().await?;
            return Ok(RefreshOutcome::Rotated {
                user,
                expires_at,
                auth,
            });
        }
        // Spent before. Only the latest spent token, within the window, may
        // come back, and it gets the successor it already got. (Read again:
        // on PostgreSQL the first read may predate a concurrent rotation.)
        let spent_at: Option<i64> =
            sqlx::query("SELECT spent_at FROM refresh_tokens WHERE jti_hash = $1")
                .bind(&jti_hash)
                .fetch_one(&mut *tx)
                .await?
                .try_get("spent_at")?;
        let within_grace =
            lifetimes.grace_secs > 0 && spent_at.is_some_and(|at| now - at <= lifetimes.grace_secs);
        let successor_row = sqlx::query(
            "SELECT spent_at, expires_at FROM refresh_tokens WHERE jti_hash = $1 AND session_id = $2",
        )
        .bind(&successor_hash)
        .bind(session_id)
        .fetch_optional(&mut *tx)
        .await?;
        if within_grace
            && let Some(next) = successor_row
            && next.try_get::<Option<i64>, _>("spent_at")?.is_none()
        {
            let expires_at: i64 = next.try_get("expires_at")?;
            return Ok(RefreshOutcome::Grace {
                user,
                expires_at,
                auth,
            });
        }
        sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(session_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(RefreshOutcome::Reused { user_id: user.id })
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
}

pub(super) async fn insert_refresh_token(
    tx: &mut WriteTx,
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

pub(super) async fn revoke_user_sessions(tx: &mut WriteTx, user_id: i64, now: i64) -> Result<u64> {
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

/// Whether `user_id` has TOTP enabled, read inside the caller's transaction:
/// a password-only session is not opened for such a user (SPEC §10), and the
/// second factor's own writes ask the same under their lock.
pub(super) async fn has_second_factor(tx: &mut WriteTx, user_id: i64) -> Result<bool> {
    Ok(
        sqlx::query("SELECT 1 FROM mfa_totp WHERE user_id = $1 AND enabled_at IS NOT NULL")
            .bind(user_id)
            .fetch_optional(&mut **tx)
            .await?
            .is_some(),
    )
}
