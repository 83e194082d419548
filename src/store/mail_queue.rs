//! The mail queue table: messages wait here until delivered.

use sqlx::Row;

use super::Store;
use crate::clock::now_unix;
use crate::domain::{OutgoingMail, QueuedMail};
use crate::error::Result;

/// The `next_attempt_at` of a message given up: never due.
const NEVER: i64 = i64::MAX / 2;

/// Queues `mail` on `conn` (inside the caller's transaction).
pub(super) async fn insert_mail(
    conn: &mut sqlx::AnyConnection,
    mail: &OutgoingMail,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO mail_queue (recipient, subject, text_body, html_body, link, next_attempt_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(&mail.to)
    .bind(&mail.subject)
    .bind(&mail.text)
    .bind(&mail.html)
    .bind(mail.link.as_deref())
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

impl Store {
    /// Queues a message for delivery.
    pub async fn enqueue_mail(&self, mail: &OutgoingMail) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        insert_mail(&mut conn, mail, now_unix()).await
    }

    /// Reserves up to `limit` due messages until `locked_until` and returns
    /// them; another worker (on any instance) will not claim them meanwhile.
    pub async fn claim_due_mail(
        &self,
        now: i64,
        locked_until: i64,
        limit: i64,
    ) -> Result<Vec<QueuedMail>> {
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(
            "UPDATE mail_queue SET locked_until = $1, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM mail_queue WHERE sent_at IS NULL AND next_attempt_at <= $2 \
                          AND locked_until <= $2 ORDER BY id LIMIT $3) \
               AND sent_at IS NULL AND locked_until <= $2 \
             RETURNING id, attempts, recipient, subject, text_body, html_body, link",
        )
        .bind(locked_until)
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(QueuedMail {
                id: row.try_get("id")?,
                attempts: row.try_get("attempts")?,
                mail: OutgoingMail {
                    to: row.try_get("recipient")?,
                    subject: row.try_get("subject")?,
                    text: row.try_get("text_body")?,
                    html: row.try_get("html_body")?,
                    link: row.try_get("link")?,
                },
            });
        }
        out.sort_by_key(|m| m.id);
        Ok(out)
    }

    /// Records a delivery and blanks the message: its body carries a raw
    /// one-time token, which must not outlive the delivery in the database.
    pub async fn mark_mail_sent(&self, id: i64) -> Result<()> {
        sqlx::query(
            "UPDATE mail_queue SET sent_at = $1, last_error = NULL, text_body = '', html_body = '', link = NULL \
             WHERE id = $2",
        )
            .bind(now_unix())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records a failed attempt and when to try again.
    pub async fn mark_mail_failed(&self, id: i64, error: &str, next_attempt_at: i64) -> Result<()> {
        let error: String = error.chars().take(1000).collect();
        sqlx::query(
            "UPDATE mail_queue SET last_error = $1, next_attempt_at = $2, locked_until = 0 WHERE id = $3",
        )
        .bind(error)
        .bind(next_attempt_at)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Sets a message aside after its last failed attempt: it is never tried
    /// again and stays (recipient, subject, attempts, `last_error`) for an
    /// operator, but its body is blanked as a delivered one's is, since the
    /// link it carries is live until the token expires and nobody will
    /// receive it now.
    pub async fn give_up_mail(&self, id: i64, error: &str) -> Result<()> {
        let error: String = error.chars().take(1000).collect();
        sqlx::query(
            "UPDATE mail_queue SET last_error = $1, next_attempt_at = $2, locked_until = 0, \
             text_body = '', html_body = '', link = NULL WHERE id = $3 AND sent_at IS NULL",
        )
        .bind(error)
        .bind(NEVER)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Messages not yet delivered.
    pub async fn pending_mail_count(&self) -> Result<i64> {
        Ok(
            sqlx::query("SELECT COUNT(*) AS n FROM mail_queue WHERE sent_at IS NULL")
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?,
        )
    }
}
