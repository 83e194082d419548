//! Data migrations: changes to stored values that SQL alone cannot make,
//! run once after the schema migrations and recorded in `data_migrations`.

use std::collections::HashMap;

use sqlx::Row;

use super::{Store, email_key};
use crate::clock::now_unix;

/// The e-mail keys computed before NFKC normalisation (SPEC §4) recomputed.
const EMAIL_KEY_NFKC: &str = "email_key_nfkc";

impl Store {
    /// Recomputes every stored `email_key` with today's [`email_key`], once.
    /// Two accounts whose addresses only differed by Unicode spelling would
    /// now share a key: those keep their old key (they still log in as
    /// before) and are named in a warning for an operator to merge.
    pub(super) async fn rekey_emails(&self) -> anyhow::Result<()> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("SELECT name FROM data_migrations WHERE name = $1")
            .bind(EMAIL_KEY_NFKC)
            .fetch_optional(&mut *tx)
            .await?;
        if done.is_some() {
            return Ok(());
        }
        let rows = sqlx::query("SELECT id, email, email_key FROM users")
            .fetch_all(&mut *tx)
            .await?;
        let mut owners: HashMap<String, Vec<i64>> = HashMap::new();
        let mut changes = Vec::new();
        for row in &rows {
            let id: i64 = row.try_get("id")?;
            let old: String = row.try_get("email_key")?;
            let new = email_key(&row.try_get::<String, _>("email")?);
            owners.entry(new.clone()).or_default().push(id);
            if new != old {
                changes.push((id, new));
            }
        }
        let mut changed = 0;
        for (id, new) in changes {
            let holders = &owners[&new];
            if holders.len() > 1 {
                tracing::warn!(
                    user_ids = ?holders,
                    "accounts whose e-mails differ only in Unicode spelling: user {id} keeps its old key"
                );
                continue;
            }
            sqlx::query("UPDATE users SET email_key = $1 WHERE id = $2")
                .bind(&new)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            changed += 1;
        }
        sqlx::query("INSERT INTO data_migrations (name, applied_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(EMAIL_KEY_NFKC)
            .bind(now_unix())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if changed > 0 {
            tracing::info!(
                users = changed,
                "e-mail keys recomputed after NFKC normalisation"
            );
        }
        Ok(())
    }
}
