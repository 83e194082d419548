//! Passkeys and their ceremonies (SPEC §11): the `passkeys` and
//! `passkey_ceremonies` tables.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::events::{Actor, insert_event};
use super::mail_queue::insert_mail;
use super::models::flag;
use super::{Store, hash_secret, is_unique_violation};
use crate::clock::now_unix;
use crate::domain::{OutgoingMail, SecurityEvent};
use crate::error::{Error, Result};

/// What a ceremony is for; stored with it and required at its finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeremonyPurpose {
    /// Registering a passkey for a signed-in user.
    Register,
    /// Signing in with a passkey (first factor).
    SignIn,
    /// Passing a password login's second step with a passkey.
    SecondStep,
}

impl CeremonyPurpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::SignIn => "sign_in",
            Self::SecondStep => "second_step",
        }
    }
}

/// A ceremony taken (and so spent) by its finish.
#[derive(Debug, Clone)]
pub struct Ceremony {
    /// The user it was started for, if known.
    pub user_id: Option<i64>,
    /// The challenge state as webauthn-rs serialised it.
    pub state: String,
}

/// A stored passkey.
#[derive(Debug, Clone)]
pub struct PasskeyRecord {
    /// The opaque id of the API (`/passkeys/{id}`).
    pub id: String,
    /// Its owner.
    pub user_id: i64,
    /// The WebAuthn user handle it was registered with.
    pub user_handle: String,
    /// The name its owner gave it.
    pub name: String,
    /// The credential as webauthn-rs serialises it.
    pub passkey: String,
    /// The signature counter last accepted.
    pub sign_count: i64,
    /// Flag BE: the credential may be synced.
    pub backup_eligible: bool,
    /// Flag BS as last seen: the credential is backed up.
    pub backed_up: bool,
    /// When it was registered (Unix seconds).
    pub created_at: i64,
    /// When it last signed someone in, if ever.
    pub last_used_at: Option<i64>,
}

/// A passkey to insert.
#[derive(Debug)]
pub struct NewPasskey<'a> {
    /// The opaque id.
    pub id: &'a str,
    /// Its owner.
    pub user_id: i64,
    /// The credential id, base64url.
    pub credential_id: &'a str,
    /// The WebAuthn user handle.
    pub user_handle: &'a str,
    /// Its name.
    pub name: &'a str,
    /// The credential as webauthn-rs serialises it.
    pub passkey: &'a str,
    /// Flag BE.
    pub backup_eligible: bool,
    /// Flag BS.
    pub backed_up: bool,
}

/// What a use of a passkey moves forward.
#[derive(Debug)]
pub struct PasskeyUse<'a> {
    /// The passkey's opaque id.
    pub id: &'a str,
    /// The credential after the use, as webauthn-rs serialises it.
    pub passkey: &'a str,
    /// The counter the authenticator reported.
    pub sign_count: i64,
    /// Flag BS as now seen.
    pub backed_up: bool,
}

const PASSKEY_COLUMNS: &str = "id, user_id, user_handle, name, passkey, sign_count, \
     backup_eligible, backed_up, created_at, last_used_at";

fn passkey_from_row(row: &AnyRow) -> Result<PasskeyRecord, sqlx::Error> {
    Ok(PasskeyRecord {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        user_handle: row.try_get("user_handle")?,
        name: row.try_get("name")?,
        passkey: row.try_get("passkey")?,
        sign_count: row.try_get("sign_count")?,
        backup_eligible: flag(row, "backup_eligible")?,
        backed_up: flag(row, "backed_up")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}

impl Store {
    /// Stores a ceremony under the hash of `ceremony_id` until `expires_at`.
    pub async fn insert_passkey_ceremony(
        &self,
        ceremony_id: &str,
        purpose: CeremonyPurpose,
        user_id: Option<i64>,
        state: &str,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO passkey_ceremonies (id_hash, purpose, user_id, state, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(hash_secret(ceremony_id))
        .bind(purpose.as_str())
        .bind(user_id)
        .bind(state)
        .bind(now_unix())
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Takes the ceremony `ceremony_id` if it is unexpired, of `purpose`
    /// and (when `user_id` is given) that user's: it is deleted by the
    /// statement that reads it, so of two finishes (on any instances) at
    /// most one gets it. A mismatch leaves another's ceremony alone.
    pub async fn take_passkey_ceremony(
        &self,
        ceremony_id: &str,
        purpose: CeremonyPurpose,
        user_id: Option<i64>,
    ) -> Result<Option<Ceremony>> {
        let user_clause = if user_id.is_some() {
            " AND user_id = $4"
        } else {
            ""
        };
        let sql = format!(
            "DELETE FROM passkey_ceremonies WHERE id_hash = $1 AND purpose = $2 AND expires_at > $3{user_clause} \
             RETURNING user_id, state"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(hash_secret(ceremony_id))
            .bind(purpose.as_str())
            .bind(now_unix());
        if let Some(user_id) = user_id {
            query = query.bind(user_id);
        }
        let row = query.fetch_optional(&self.pool).await?;
        self.wrote();
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(Ceremony {
            user_id: row.try_get("user_id")?,
            state: row.try_get("state")?,
        }))
    }

    /// The passkeys of `user_id`, oldest first.
    pub async fn passkeys_of(&self, user_id: i64) -> Result<Vec<PasskeyRecord>> {
        let sql = format!(
            "SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE user_id = $1 ORDER BY created_at, id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(passkey_from_row)
            .collect::<Result<_, _>>()?)
    }

    /// Whether `user_id` has at least one passkey.
    pub async fn has_passkey(&self, user_id: i64) -> Result<bool> {
        Ok(
            sqlx::query("SELECT 1 AS one FROM passkeys WHERE user_id = $1 LIMIT 1")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?
                .is_some(),
        )
    }

    /// The passkey whose credential id (base64url) is `credential_id`.
    pub async fn passkey_by_credential(
        &self,
        credential_id: &str,
    ) -> Result<Option<PasskeyRecord>> {
        let sql = format!("SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE credential_id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(credential_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(passkey_from_row).transpose()?)
    }

    /// Inserts `new` and queues `notice`, in one transaction, if its user
    /// has fewer than `limit` passkeys: 409 `PASSKEY_LIMIT_REACHED`
    /// otherwise, and 409 `PASSKEY_ALREADY_REGISTERED` when the credential
    /// is registered already (to any account).
    pub async fn insert_passkey(
        &self,
        new: &NewPasskey<'_>,
        limit: u32,
        notice: &OutgoingMail,
    ) -> Result<PasskeyRecord> {
        let now = now_unix();
        let mut tx = self.begin_write().await?;
        // Locks the user's row on PostgreSQL, so that two registrations of
        // one user count one after the other.
        let lock = self.lock_clause();
        let sql = format!("SELECT id FROM users WHERE id = $1{lock}");
        if sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(new.user_id)
            .fetch_optional(&mut *tx)
            .await?
            .is_none()
        {
            return Err(Error::TokenRevoked);
        }
        let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM passkeys WHERE user_id = $1")
            .bind(new.user_id)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        if count >= i64::from(limit) {
            return Err(Error::PasskeyLimitReached);
        }
        let inserted = sqlx::query(
            "INSERT INTO passkeys (id, user_id, credential_id, user_handle, name, passkey, sign_count, \
                                   backup_eligible, backed_up, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $9)",
        )
        .bind(new.id)
        .bind(new.user_id)
        .bind(new.credential_id)
        .bind(new.user_handle)
        .bind(new.name)
        .bind(new.passkey)
        .bind(new.backup_eligible)
        .bind(new.backed_up)
        .bind(now)
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => return Err(Error::PasskeyAlreadyRegistered),
            other => other?,
        };
        insert_mail(&mut tx, notice, now).await?;
        tx.commit().await?;
        Ok(PasskeyRecord {
            id: new.id.to_string(),
            user_id: new.user_id,
            user_handle: new.user_handle.to_string(),
            name: new.name.to_string(),
            passkey: new.passkey.to_string(),
            sign_count: 0,
            backup_eligible: new.backup_eligible,
            backed_up: new.backed_up,
            created_at: now,
            last_used_at: None,
        })
    }

    /// Records a use of a passkey. With a non-zero counter the row moves
    /// only if its stored counter is lower (a conditional update, so two
    /// uses with one value cannot both pass, across instances); `false`
    /// when it did not move: the counter did not grow.
    pub async fn record_passkey_use(&self, used: &PasskeyUse<'_>) -> Result<bool> {
        let moved = sqlx::query(
            "UPDATE passkeys SET passkey = $1, sign_count = $2, backed_up = $3, last_used_at = $4 \
             WHERE id = $5 AND ($2 = 0 OR sign_count < $2)",
        )
        .bind(used.passkey)
        .bind(used.sign_count)
        .bind(used.backed_up)
        .bind(now_unix())
        .bind(used.id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(moved == 1)
    }

    /// Renames `user_id`'s passkey `id`; the passkey, or `None` if that
    /// user has no such passkey.
    pub async fn rename_passkey(
        &self,
        user_id: i64,
        id: &str,
        name: &str,
    ) -> Result<Option<PasskeyRecord>> {
        let sql = format!(
            "UPDATE passkeys SET name = $1 WHERE id = $2 AND user_id = $3 RETURNING {PASSKEY_COLUMNS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(name)
            .bind(id)
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(passkey_from_row).transpose()?)
    }

    /// Deletes `user_id`'s passkey `id`, queues `notice` and records
    /// `passkey_removed` by `actor` (the owner, or a superuser named in
    /// it) with `details`, in one transaction; `false` (and nothing
    /// written) if that user has no such passkey: another user's id
    /// deletes nothing.
    pub async fn delete_passkey(
        &self,
        user_id: i64,
        id: &str,
        notice: &OutgoingMail,
        actor: &Actor<'_>,
        details: Option<&serde_json::Value>,
    ) -> Result<bool> {
        let now = now_unix();
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query("DELETE FROM passkeys WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Ok(false);
        }
        insert_mail(&mut tx, notice, now).await?;
        let kind = SecurityEvent::PasskeyRemoved;
        insert_event(&mut tx, Some(user_id), kind, actor, details, now).await?;
        tx.commit().await?;
        Ok(true)
    }
}
