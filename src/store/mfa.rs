//! The second factor (SPEC §10): a user's TOTP secret (encrypted by the
//! caller), pending or enabled; the last accepted time step, moved forward
//! only by a conditional update so that no step is accepted twice, on any
//! instance; recovery codes, one keyed hash a row, each spent by a
//! conditional update; the `mfa_token`s between a login's password and its
//! second step; and the per-user failure counters and lock.
//!
//! Every write that depends on the factor's state locks the user's row first
//! (`FOR UPDATE` on PostgreSQL; SQLite's write transactions hold the lock),
//! as [`Store::open_session`] does, so that a login racing an enable or a
//! disable is ordered with it.

use sqlx::Row;

use super::events::insert_event;
use super::sessions::revoke_user_sessions;
use super::{Actor, Store, WriteTx, hash_secret, mail_queue::insert_mail};
use crate::domain::{OutgoingMail, SecurityEvent};
use crate::error::Result;

/// Wrong codes within [`FAILURE_WINDOW_SECS`] after which the second step
/// answers 429 (SPEC §10).
pub const WINDOW_FAILURE_LIMIT: i64 = 10;
/// The window of [`WINDOW_FAILURE_LIMIT`], seconds.
pub const FAILURE_WINDOW_SECS: i64 = 15 * 60;
/// Wrong codes in a row that lock the second step.
pub const LOCK_AFTER_FAILURES: i64 = 20;
/// Wrong codes that burn an `mfa_token`.
pub const TOKEN_FAILURE_LIMIT: i64 = 5;
/// Wrong codes sent with a session (confirm, disable, regenerate) within
/// [`FAILURE_WINDOW_SECS`] after which those answer 429. Counted apart from
/// the login's second step, and never a lock: a stolen session must not be
/// able to throttle or lock its owner's logins.
pub const SESSION_WINDOW_FAILURE_LIMIT: i64 = 10;

/// A user's TOTP factor as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpRecord {
    /// The encrypted secret (see [`crate::mfa::MfaKeys`]).
    pub secret_ciphertext: String,
    /// When the setup began.
    pub created_at: i64,
    /// Until when a pending setup may be confirmed.
    pub pending_expires_at: Option<i64>,
    /// When it was confirmed; `None` while pending.
    pub enabled_at: Option<i64>,
    /// When a code was last accepted.
    pub last_used_at: Option<i64>,
    /// Wrong codes since the last right one.
    pub failed_in_row: i64,
    /// Start of the current failure window.
    pub window_started_at: i64,
    /// Wrong codes in the current window.
    pub window_failures: i64,
    /// When the second step was locked.
    pub locked_at: Option<i64>,
    /// Start of the current window of wrong codes sent with a session.
    pub session_window_started_at: i64,
    /// Wrong codes sent with a session in that window.
    pub session_window_failures: i64,
}

impl TotpRecord {
    fn from_row(row: &sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            secret_ciphertext: row.try_get("secret_ciphertext")?,
            created_at: row.try_get("created_at")?,
            pending_expires_at: row.try_get("pending_expires_at")?,
            enabled_at: row.try_get("enabled_at")?,
            last_used_at: row.try_get("last_used_at")?,
            failed_in_row: row.try_get("failed_in_row")?,
            window_started_at: row.try_get("window_started_at")?,
            window_failures: row.try_get("window_failures")?,
            locked_at: row.try_get("locked_at")?,
            session_window_started_at: row.try_get("session_window_started_at")?,
            session_window_failures: row.try_get("session_window_failures")?,
        })
    }

    /// Whether TOTP is on (confirmed).
    pub fn enabled(&self) -> bool {
        self.enabled_at.is_some()
    }

    /// Seconds until the second step may be tried again, if it may not now:
    /// locked, or too many wrong codes in the window.
    pub fn throttled_for(&self, now: i64) -> Option<u64> {
        if self.locked_at.is_some() {
            return Some(FAILURE_WINDOW_SECS as u64);
        }
        window_wait(
            self.window_started_at,
            self.window_failures,
            WINDOW_FAILURE_LIMIT,
            now,
        )
    }

    /// Seconds until a code may be sent with a session again (confirm,
    /// disable, regenerate), if it may not now: the factor is locked, or
    /// too many wrong codes were sent with a session in the window. The
    /// login's own window does not count here.
    pub fn session_throttled_for(&self, now: i64) -> Option<u64> {
        if self.locked_at.is_some() {
            return Some(FAILURE_WINDOW_SECS as u64);
        }
        window_wait(
            self.session_window_started_at,
            self.session_window_failures,
            SESSION_WINDOW_FAILURE_LIMIT,
            now,
        )
    }
}

/// Seconds left of a failure window that started at `started_at` and holds
/// `failures` (at least `limit`), if it is still running.
fn window_wait(started_at: i64, failures: i64, limit: i64, now: i64) -> Option<u64> {
    let window_end = started_at + FAILURE_WINDOW_SECS;
    (failures >= limit && now < window_end)
        .then(|| u64::try_from(window_end - now).unwrap_or(1).max(1))
}

/// What proves the second factor: a TOTP step (already checked against the
/// secret by the caller) or the keyed hash of a recovery code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FactorProof {
    /// The matched time step of a right TOTP code.
    TotpStep(i64),
    /// The keyed hash of a recovery code as typed.
    RecoveryCode(String),
}

/// A live `mfa_token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaTokenRecord {
    /// Whose login it continues.
    pub user_id: i64,
    /// SHA-256 of the password hash it was issued against.
    pub password_stamp: String,
}

/// The result of [`Store::complete_second_step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondStep {
    /// The token and the proof were spent; with a recovery code, how many
    /// codes are left.
    Passed {
        /// Unspent recovery codes left (after a recovery code only).
        recovery_codes_left: Option<i64>,
    },
    /// The token is unknown, expired, spent or burnt, or the factor is gone.
    InvalidToken,
    /// The second step is locked or throttled.
    Throttled(u64),
    /// The code was wrong, its step used, or the recovery code spent.
    WrongCode,
}

/// The result of [`Store::record_factor_failure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureRecorded {
    /// This failure locked the second step.
    pub locked_now: bool,
}

/// Voids every pending `mfa_token` of `user_id` (a password change or reset).
pub(super) async fn void_mfa_tokens(tx: &mut WriteTx, user_id: i64, now: i64) -> Result<()> {
    sqlx::query("UPDATE mfa_tokens SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL")
        .bind(now)
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Clears the failure counters and the lock of `user_id` (a password reset).
pub(super) async fn clear_factor_lock(tx: &mut WriteTx, user_id: i64) -> Result<()> {
    sqlx::query(
        "UPDATE mfa_totp SET failed_in_row = 0, window_failures = 0, locked_at = NULL, \
         session_window_failures = 0 WHERE user_id = $1",
    )
    .bind(user_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Spends `proof` for `user_id` inside the caller's transaction: a TOTP step
/// only above the last accepted one (compare-and-set), a recovery code only
/// if unspent. Whether it was spent.
async fn spend_proof(
    tx: &mut WriteTx,
    user_id: i64,
    proof: &FactorProof,
    now: i64,
) -> Result<bool> {
    let spent = match proof {
        FactorProof::TotpStep(step) => sqlx::query(
            "UPDATE mfa_totp SET last_step = $1, last_used_at = $2, failed_in_row = 0 \
             WHERE user_id = $3 AND last_step < $1 AND enabled_at IS NOT NULL AND locked_at IS NULL",
        )
        .bind(*step)
        .bind(now)
        .bind(user_id)
        .execute(&mut **tx)
        .await?
        .rows_affected(),
        FactorProof::RecoveryCode(hash) => {
            let spent = sqlx::query(
                "UPDATE mfa_recovery_codes SET used_at = $1 \
                 WHERE code_hash = $2 AND user_id = $3 AND used_at IS NULL",
            )
            .bind(now)
            .bind(hash)
            .bind(user_id)
            .execute(&mut **tx)
            .await?
            .rows_affected();
            if spent == 1 {
                sqlx::query(
                    "UPDATE mfa_totp SET last_used_at = $1, failed_in_row = 0 WHERE user_id = $2",
                )
                .bind(now)
                .bind(user_id)
                .execute(&mut **tx)
                .await?;
            }
            spent
        }
    };
    Ok(spent == 1)
}

/// Stores a new set of recovery codes (their keyed hashes), voiding the old.
async fn replace_recovery_codes(
    tx: &mut WriteTx,
    user_id: i64,
    hashes: &[String],
    now: i64,
) -> Result<()> {
    sqlx::query("DELETE FROM mfa_recovery_codes WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    for hash in hashes {
        sqlx::query(
            "INSERT INTO mfa_recovery_codes (code_hash, user_id, created_at) VALUES ($1, $2, $3)",
        )
        .bind(hash)
        .bind(user_id)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Removes the factor of `user_id` entirely: TOTP, recovery codes, pending tokens.
async fn remove_factor(tx: &mut WriteTx, user_id: i64) -> Result<bool> {
    let removed = sqlx::query("DELETE FROM mfa_totp WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    for sql in [
        "DELETE FROM mfa_recovery_codes WHERE user_id = $1",
        "DELETE FROM mfa_tokens WHERE user_id = $1",
    ] {
        sqlx::query(sql).bind(user_id).execute(&mut **tx).await?;
    }
    Ok(removed == 1)
}

impl Store {
    /// Locks the user's row for the rest of `tx`; whether the user exists.
    async fn lock_user(&self, tx: &mut WriteTx, user_id: i64) -> Result<bool> {
        let sql = format!("SELECT id FROM users WHERE id = $1{}", self.lock_clause());
        Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user_id)
            .fetch_optional(&mut **tx)
            .await?
            .is_some())
    }

    /// The TOTP factor of `user_id`, pending or enabled, if any.
    pub async fn totp(&self, user_id: i64) -> Result<Option<TotpRecord>> {
        let row = sqlx::query("SELECT * FROM mfa_totp WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(TotpRecord::from_row).transpose()?)
    }

    /// Unspent recovery codes of `user_id`.
    pub async fn recovery_codes_left(&self, user_id: i64) -> Result<i64> {
        Ok(sqlx::query(
            "SELECT COUNT(*) AS n FROM mfa_recovery_codes WHERE user_id = $1 AND used_at IS NULL",
        )
        .bind(user_id)
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?)
    }

    /// Records a pending TOTP setup (replacing an earlier pending one);
    /// `false`, and nothing written, when TOTP is already enabled.
    pub async fn begin_totp_setup(
        &self,
        user_id: i64,
        secret_ciphertext: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        if !self.lock_user(&mut tx, user_id).await? {
            return Ok(false);
        }
        if super::sessions::has_second_factor(&mut tx, user_id).await? {
            return Ok(false);
        }
        sqlx::query("DELETE FROM mfa_totp WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO mfa_totp (user_id, secret_ciphertext, created_at, pending_expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(user_id)
        .bind(secret_ciphertext)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Enables the pending TOTP setup whose secret is `secret_ciphertext`,
    /// with `step` (the confirming code's) as its last used step, stores the
    /// recovery codes, revokes every session of the user and queues
    /// `notice`, in one transaction under the user's lock. `false`, and
    /// nothing written, if that setup is no longer pending (expired,
    /// replaced, confirmed meanwhile).
    pub async fn confirm_totp(
        &self,
        user_id: i64,
        secret_ciphertext: &str,
        step: i64,
        recovery_hashes: &[String],
        notice: &OutgoingMail,
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        if !self.lock_user(&mut tx, user_id).await? {
            return Ok(false);
        }
        let enabled = sqlx::query(
            "UPDATE mfa_totp SET enabled_at = $1, pending_expires_at = NULL, last_step = $2, \
                    last_used_at = $1, failed_in_row = 0 \
             WHERE user_id = $3 AND secret_ciphertext = $4 AND enabled_at IS NULL \
               AND pending_expires_at > $1 AND locked_at IS NULL",
        )
        .bind(now)
        .bind(step)
        .bind(user_id)
        .bind(secret_ciphertext)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if enabled != 1 {
            return Ok(false);
        }
        replace_recovery_codes(&mut tx, user_id, recovery_hashes, now).await?;
        revoke_user_sessions(&mut tx, user_id, now).await?;
        insert_mail(&mut tx, notice, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Spends `proof` and, with it, turns the factor off: TOTP, recovery
    /// codes and pending `mfa_token`s go, every session but `keep_session`
    /// is revoked and `notice` queued, in one transaction. `false`, and
    /// nothing written, if the proof is not accepted (wrong, used, or the
    /// factor is locked or gone).
    pub async fn disable_totp(
        &self,
        user_id: i64,
        proof: &FactorProof,
        keep_session: &str,
        notice: &OutgoingMail,
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        if !self.lock_user(&mut tx, user_id).await? {
            return Ok(false);
        }
        if !self.unlocked_factor(&mut tx, user_id).await? {
            return Ok(false);
        }
        if !spend_proof(&mut tx, user_id, proof, now).await? {
            return Ok(false);
        }
        remove_factor(&mut tx, user_id).await?;
        sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL AND id <> $3",
        )
        .bind(now)
        .bind(user_id)
        .bind(keep_session)
        .execute(&mut *tx)
        .await?;
        insert_mail(&mut tx, notice, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Spends the TOTP `step` and replaces the recovery codes by
    /// `recovery_hashes`, in one transaction; `false`, and nothing written,
    /// if the step is not accepted.
    pub async fn regenerate_recovery_codes(
        &self,
        user_id: i64,
        step: i64,
        recovery_hashes: &[String],
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        if !self.lock_user(&mut tx, user_id).await? {
            return Ok(false);
        }
        if !spend_proof(&mut tx, user_id, &FactorProof::TotpStep(step), now).await? {
            return Ok(false);
        }
        replace_recovery_codes(&mut tx, user_id, recovery_hashes, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Whether the enabled factor of `user_id` is not locked (inside `tx`,
    /// its row locked on PostgreSQL).
    async fn unlocked_factor(&self, tx: &mut WriteTx, user_id: i64) -> Result<bool> {
        let sql = format!(
            "SELECT locked_at FROM mfa_totp WHERE user_id = $1 AND enabled_at IS NOT NULL{}",
            self.lock_clause()
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user_id)
            .fetch_optional(&mut **tx)
            .await?;
        Ok(match row {
            Some(row) => row.try_get::<Option<i64>, _>("locked_at")?.is_none(),
            None => false,
        })
    }

    /// Stores a new `mfa_token` (its hash) for `user_id`, bound to the
    /// password hash the login verified.
    pub async fn issue_mfa_token(
        &self,
        token: &str,
        user_id: i64,
        password_hash: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO mfa_tokens (token_hash, user_id, password_stamp, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(hash_secret(token))
        .bind(user_id)
        .bind(hash_secret(password_hash))
        .bind(now)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The live `mfa_token` `token` (unspent, unexpired, not burnt), without
    /// spending it.
    pub async fn live_mfa_token(&self, token: &str, now: i64) -> Result<Option<MfaTokenRecord>> {
        let row = sqlx::query(
            "SELECT user_id, password_stamp FROM mfa_tokens \
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 AND failures < $3",
        )
        .bind(hash_secret(token))
        .bind(now)
        .bind(TOKEN_FAILURE_LIMIT)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(row) => Some(MfaTokenRecord {
                user_id: row.try_get("user_id")?,
                password_stamp: row.try_get("password_stamp")?,
            }),
            None => None,
        })
    }

    /// The second step of a login, in one transaction under the user's
    /// lock: the `mfa_token` is spent (if still live), then `proof` (if
    /// accepted). Either both are spent or neither.
    pub async fn complete_second_step(
        &self,
        token: &str,
        user_id: i64,
        proof: &FactorProof,
        now: i64,
    ) -> Result<SecondStep> {
        let mut tx = self.begin_write().await?;
        if !self.lock_user(&mut tx, user_id).await? {
            return Ok(SecondStep::InvalidToken);
        }
        let sql = format!(
            "SELECT * FROM mfa_totp WHERE user_id = $1 AND enabled_at IS NOT NULL{}",
            self.lock_clause()
        );
        let factor = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(factor) = factor.as_ref().map(TotpRecord::from_row).transpose()? else {
            return Ok(SecondStep::InvalidToken);
        };
        if let Some(wait) = factor.throttled_for(now) {
            return Ok(SecondStep::Throttled(wait));
        }
        let spent = sqlx::query(
            "UPDATE mfa_tokens SET used_at = $1 \
             WHERE token_hash = $2 AND user_id = $3 AND used_at IS NULL AND expires_at > $1 \
               AND failures < $4",
        )
        .bind(now)
        .bind(hash_secret(token))
        .bind(user_id)
        .bind(TOKEN_FAILURE_LIMIT)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if spent != 1 {
            return Ok(SecondStep::InvalidToken);
        }
        if !spend_proof(&mut tx, user_id, proof, now).await? {
            return Ok(SecondStep::WrongCode);
        }
        let recovery_codes_left = match proof {
            FactorProof::RecoveryCode(_) => Some(
                sqlx::query(
                    "SELECT COUNT(*) AS n FROM mfa_recovery_codes WHERE user_id = $1 AND used_at IS NULL",
                )
                .bind(user_id)
                .fetch_one(&mut *tx)
                .await?
                .try_get("n")?,
            ),
            FactorProof::TotpStep(_) => None,
        };
        tx.commit().await?;
        Ok(SecondStep::Passed {
            recovery_codes_left,
        })
    }

    /// Counts a wrong code of a login's second step against `user_id` and
    /// its `mfa_token`: the failure window, the failures in a row (locking
    /// the second step at [`LOCK_AFTER_FAILURES`], with `lock_notice` queued).
    pub async fn record_factor_failure(
        &self,
        user_id: i64,
        token: &str,
        lock_notice: &OutgoingMail,
        now: i64,
    ) -> Result<FailureRecorded> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE mfa_tokens SET failures = failures + 1 WHERE token_hash = $1")
            .bind(hash_secret(token))
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query(
            "UPDATE mfa_totp SET \
                failed_in_row = failed_in_row + 1, \
                window_failures = CASE WHEN window_started_at + $2 <= $1 THEN 1 ELSE window_failures + 1 END, \
                window_started_at = CASE WHEN window_started_at + $2 <= $1 THEN $1 ELSE window_started_at END, \
                locked_at = CASE WHEN locked_at IS NULL AND failed_in_row + 1 >= $3 THEN $1 ELSE locked_at END \
             WHERE user_id = $4 RETURNING failed_in_row, locked_at",
        )
        .bind(now)
        .bind(FAILURE_WINDOW_SECS)
        .bind(LOCK_AFTER_FAILURES)
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await?;
        let locked_now = match row {
            Some(row) => {
                row.try_get::<i64, _>("failed_in_row")? == LOCK_AFTER_FAILURES
                    && row.try_get::<Option<i64>, _>("locked_at")? == Some(now)
            }
            None => false,
        };
        if locked_now {
            insert_mail(&mut tx, lock_notice, now).await?;
        }
        tx.commit().await?;
        Ok(FailureRecorded { locked_now })
    }

    /// Counts a wrong code sent with a session (confirm, disable,
    /// regenerate) against `user_id`, in its own window: the login's
    /// counters and lock are left alone.
    pub async fn record_session_factor_failure(&self, user_id: i64, now: i64) -> Result<()> {
        sqlx::query(
            "UPDATE mfa_totp SET \
                session_window_failures = CASE WHEN session_window_started_at + $2 <= $1 \
                    THEN 1 ELSE session_window_failures + 1 END, \
                session_window_started_at = CASE WHEN session_window_started_at + $2 <= $1 \
                    THEN $1 ELSE session_window_started_at END \
             WHERE user_id = $3",
        )
        .bind(now)
        .bind(FAILURE_WINDOW_SECS)
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes the second factor of `user_id` (an admin reset): TOTP,
    /// recovery codes, pending `mfa_token`s, the lock; every session is
    /// revoked, `notice` queued and the trail written (`mfa_reset` on the
    /// user naming `actor`, and `admin_mfa_reset` on an acting superuser's
    /// own trail), in one transaction. `false` when the user had no factor
    /// (then nothing is written).
    pub async fn reset_second_factor(
        &self,
        user_id: i64,
        notice: &OutgoingMail,
        actor: &Actor<'_>,
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        if !self.lock_user(&mut tx, user_id).await? {
            return Ok(false);
        }
        if !remove_factor(&mut tx, user_id).await? {
            return Ok(false);
        }
        revoke_user_sessions(&mut tx, user_id, now).await?;
        insert_mail(&mut tx, notice, now).await?;
        insert_event(
            &mut tx,
            Some(user_id),
            SecurityEvent::MfaReset,
            actor,
            None,
            now,
        )
        .await?;
        if let Actor::Admin { id, .. } = actor {
            let kind = SecurityEvent::AdminMfaReset;
            insert_event(&mut tx, Some(*id), kind, actor, None, now).await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}
