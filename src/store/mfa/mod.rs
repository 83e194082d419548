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
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | the limits, [`TotpRecord`], [`FactorProof`] and spending one |
//! | `factor.rs` | the factor's life: setup, confirm, disable, new recovery codes, admin reset |
//! | `tokens.rs` | `mfa_token`s and a login's second step |
//! | `failures.rs` | wrong codes: the login's counters and lock, and those sent with a session |

mod factor;
mod failures;
mod tokens;

use sqlx::Row;

use super::{Store, WriteTx};
use crate::error::Result;

pub use failures::FailureRecorded;
pub(super) use failures::clear_factor_lock;
pub(super) use tokens::void_mfa_tokens;
pub use tokens::{MfaTokenRecord, SecondStep};

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
/// secret by the caller), the keyed hash of a recovery code, or a passkey
/// assertion (verified, and its counter moved, by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FactorProof {
    /// The matched time step of a right TOTP code.
    TotpStep(i64),
    /// The keyed hash of a recovery code as typed.
    RecoveryCode(String),
    /// A passkey assertion that verified: nothing of the factor is spent
    /// (the passkey's counter is its own replay guard), the failures in a
    /// row are cleared as a right code clears them.
    Passkey,
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
        FactorProof::Passkey => sqlx::query(
            "UPDATE mfa_totp SET failed_in_row = 0 \
             WHERE user_id = $1 AND enabled_at IS NOT NULL AND locked_at IS NULL",
        )
        .bind(user_id)
        .execute(&mut **tx)
        .await?
        .rows_affected(),
    };
    Ok(spent == 1)
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
}
