//! Clients of Sign in with Portcullis (SPEC §13): the `oauth_clients` table.
//! The rules (what a redirect URI may be, how secrets are made) are in
//! `flows::clients` and `domain::oauth_client`; this is SQL only.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::events::{Actor, insert_event};
use super::models::flag;
use super::{Store, hash_secret};
use crate::clock::now_unix;
use crate::domain::{OAuthClient, SecurityEvent, constant_time_eq};
use crate::error::{Error, Result};

const CLIENT_COLUMNS: &str = "client_id, name, secret_hash, redirect_uris, \
     post_logout_redirect_uris, first_party, created_at, updated_at";

/// A client to insert.
#[derive(Debug)]
pub struct NewClient<'a> {
    /// The opaque `client_id`.
    pub client_id: &'a str,
    /// Its name.
    pub name: &'a str,
    /// The secret of a confidential client (stored as its SHA-256 only).
    pub secret: Option<&'a str>,
    /// Its redirect URIs, checked.
    pub redirect_uris: &'a [String],
    /// Its post-logout redirect URIs, checked.
    pub post_logout_redirect_uris: &'a [String],
    /// Whether it skips consent.
    pub first_party: bool,
}

/// What an update of a client changes (`None`: left as it is).
#[derive(Debug, Default)]
pub struct ClientChanges {
    /// A new name.
    pub name: Option<String>,
    /// New redirect URIs.
    pub redirect_uris: Option<Vec<String>>,
    /// New post-logout redirect URIs.
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// Whether it skips consent.
    pub first_party: Option<bool>,
}

fn uris(row: &AnyRow, column: &str) -> Result<Vec<String>> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(Error::internal)
}

fn client_from_row(row: &AnyRow) -> Result<OAuthClient> {
    let secret_hash: Option<String> = row.try_get("secret_hash")?;
    Ok(OAuthClient {
        client_id: row.try_get("client_id")?,
        name: row.try_get("name")?,
        confidential: secret_hash.is_some(),
        first_party: flag(row, "first_party")?,
        redirect_uris: uris(row, "redirect_uris")?,
        post_logout_redirect_uris: uris(row, "post_logout_redirect_uris")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn json(list: &[String]) -> Result<String> {
    serde_json::to_string(list).map_err(Error::internal)
}

/// The event details that name a client.
fn client_details(client_id: &str, name: &str) -> serde_json::Value {
    serde_json::json!({"client_id": client_id, "name": name})
}

/// The trail an event about a client goes on: the acting superuser's own.
fn trail_of(actor: &Actor<'_>) -> Option<i64> {
    match actor {
        Actor::Admin { id, .. } => Some(*id),
        Actor::Owner { .. } | Actor::Cli => None,
    }
}

impl Store {
    /// Inserts a client and records `client_created` by `actor`, in one
    /// transaction.
    pub async fn insert_client(
        &self,
        new: &NewClient<'_>,
        actor: &Actor<'_>,
    ) -> Result<OAuthClient> {
        let now = now_unix();
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "INSERT INTO oauth_clients (client_id, name, secret_hash, redirect_uris, \
                                        post_logout_redirect_uris, first_party, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING {CLIENT_COLUMNS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(new.client_id)
            .bind(new.name)
            .bind(new.secret.map(hash_secret))
            .bind(json(new.redirect_uris)?)
            .bind(json(new.post_logout_redirect_uris)?)
            .bind(new.first_party)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
        let client = client_from_row(&row)?;
        let details = client_details(new.client_id, new.name);
        let kind = SecurityEvent::ClientCreated;
        insert_event(&mut tx, trail_of(actor), kind, actor, Some(&details), now).await?;
        tx.commit().await?;
        Ok(client)
    }

    /// Every client, oldest first.
    pub async fn list_clients(&self) -> Result<Vec<OAuthClient>> {
        let sql =
            format!("SELECT {CLIENT_COLUMNS} FROM oauth_clients ORDER BY created_at, client_id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(client_from_row).collect()
    }

    /// The client `client_id`, if registered.
    pub async fn client_by_id(&self, client_id: &str) -> Result<Option<OAuthClient>> {
        let sql = format!("SELECT {CLIENT_COLUMNS} FROM oauth_clients WHERE client_id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(client_from_row).transpose()
    }

    /// Whether `secret` is the secret of the confidential client
    /// `client_id` (compared as hashes, in constant time); `false` for an
    /// unknown or public client.
    pub async fn client_secret_matches(&self, client_id: &str, secret: &str) -> Result<bool> {
        let stored: Option<Option<String>> =
            sqlx::query("SELECT secret_hash FROM oauth_clients WHERE client_id = $1")
                .bind(client_id)
                .fetch_optional(&self.pool)
                .await?
                .map(|row| row.try_get("secret_hash"))
                .transpose()?;
        // Hash even when there is nothing to compare with: the same work
        // for a known and an unknown client.
        let presented = hash_secret(secret);
        Ok(match stored.flatten() {
            Some(hash) => constant_time_eq(hash.as_bytes(), presented.as_bytes()),
            None => false,
        })
    }

    /// Applies `changes` to client `client_id`; the client as changed, or
    /// `None` if there is none.
    pub async fn update_client(
        &self,
        client_id: &str,
        changes: &ClientChanges,
    ) -> Result<Option<OAuthClient>> {
        let mut tx = self.begin_write().await?;
        // Locks the row on PostgreSQL: two updates apply one after the other.
        let lock = self.lock_clause();
        let sql = format!("SELECT {CLIENT_COLUMNS} FROM oauth_clients WHERE client_id = $1{lock}");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(client_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut client = client_from_row(&row)?;
        if let Some(name) = &changes.name {
            client.name.clone_from(name);
        }
        if let Some(list) = &changes.redirect_uris {
            client.redirect_uris.clone_from(list);
        }
        if let Some(list) = &changes.post_logout_redirect_uris {
            client.post_logout_redirect_uris.clone_from(list);
        }
        if let Some(first_party) = changes.first_party {
            client.first_party = first_party;
        }
        client.updated_at = now_unix();
        sqlx::query(
            "UPDATE oauth_clients SET name = $1, redirect_uris = $2, \
                 post_logout_redirect_uris = $3, first_party = $4, updated_at = $5 \
             WHERE client_id = $6",
        )
        .bind(&client.name)
        .bind(json(&client.redirect_uris)?)
        .bind(json(&client.post_logout_redirect_uris)?)
        .bind(client.first_party)
        .bind(client.updated_at)
        .bind(client_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(client))
    }

    /// Deletes client `client_id` and records `client_deleted` by `actor`,
    /// in one transaction; `false` (nothing written) if there is none.
    pub async fn delete_client(&self, client_id: &str, actor: &Actor<'_>) -> Result<bool> {
        let now = now_unix();
        let mut tx = self.begin_write().await?;
        let row = sqlx::query("DELETE FROM oauth_clients WHERE client_id = $1 RETURNING name")
            .bind(client_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        let name: String = row.try_get("name")?;
        let details = client_details(client_id, &name);
        let kind = SecurityEvent::ClientDeleted;
        insert_event(&mut tx, trail_of(actor), kind, actor, Some(&details), now).await?;
        tx.commit().await?;
        Ok(true)
    }
}
