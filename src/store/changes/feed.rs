//! Reading the change feed: catching up after a write, following it in the
//! background, and the statements each database needs for that.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use sqlx::Row;
use sqlx::any::AnyRow;
use tokio_util::sync::CancellationToken;

use super::cursor::{Cursor, Mark, Settled};
use super::{CHANNEL, Changes, FEED_RETENTION_SECS, LISTENER_NAME, POLL_INTERVAL};
use crate::error::Result;
use crate::store::{Backend, Store};

/// Rows read from the feed at a time.
const BATCH: i64 = 1000;

/// The feed's last id as its sequence knows it, and the row at `$1`.
const SQLITE_TOP: &str = "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'change_feed'), 0) AS top, \
     f.user_id, f.session_id, f.changed_at FROM (SELECT 1 AS one) o LEFT JOIN change_feed f ON f.id = $1";
const POSTGRES_TOP: &str = "SELECT COALESCE(pg_sequence_last_value(pg_get_serial_sequence('change_feed', 'id')::regclass), 0) AS top, \
     f.user_id, f.session_id, f.changed_at FROM (SELECT 1 AS one) o LEFT JOIN change_feed f ON f.id = $1";

impl Store {
    /// Reads the feed from where it was left and drops what its new rows
    /// name. Concurrent calls queue; one that finds the work done since it
    /// was asked returns at once.
    pub async fn catch_up(&self) -> Result<()> {
        self.read_feed(false).await
    }

    /// One read of the feed; with `verify`, also checks first that the feed
    /// did not go backwards (done by the follower's polls, not by the
    /// catch-up after each local write).
    async fn read_feed(&self, verify: bool) -> Result<()> {
        let changes = &self.changes;
        let asked = Instant::now();
        let writes = changes.local_writes.load(Ordering::SeqCst);
        let mut cursor = changes.cursor.lock().await;
        let confirmed = changes.confirmed_ms.load(Ordering::SeqCst);
        let asked_ms = asked.duration_since(changes.base).as_millis() as u64;
        if !verify
            && cursor.placed
            && confirmed >= asked_ms
            && changes.synced_writes.load(Ordering::SeqCst) >= writes
        {
            return Ok(());
        }
        let began = Instant::now();
        if !cursor.placed {
            self.place(&mut cursor).await?;
        } else if verify {
            let top = self.feed_top(cursor.high).await?;
            if cursor.went_back(top.0, top.1.as_ref()) {
                tracing::warn!(
                    last_read = cursor.high,
                    feed_top = top.0,
                    "the change feed went backwards (a restore, a failover or a reset): \
                     forgetting every session kept in memory"
                );
                self.place(&mut cursor).await?;
            }
        }
        // Which watched transactions still run, asked before the owed ids
        // are read again: one that had ended by now would show its row.
        let watched = cursor.watched();
        let running = if watched.is_empty() {
            BTreeSet::new()
        } else {
            self.running_among(&watched).await?
        };
        if cursor.owes() {
            let owed = join(cursor.owed());
            let rows = sqlx::query(
                "SELECT id, user_id, session_id, changed_at FROM change_feed \
                 WHERE id = ANY(string_to_array($1, ',')::bigint[])",
            )
            .bind(owed)
            .fetch_all(&self.pool)
            .await?;
            for row in &rows {
                apply(changes, &mut cursor, row)?;
            }
        }
        loop {
            let rows = sqlx::query(
                "SELECT id, user_id, session_id, changed_at FROM change_feed \
                 WHERE id > $1 ORDER BY id LIMIT $2",
            )
            .bind(cursor.high)
            .bind(BATCH)
            .fetch_all(&self.pool)
            .await?;
            for row in &rows {
                apply(changes, &mut cursor, row)?;
            }
            if (rows.len() as i64) < BATCH {
                break;
            }
        }
        if cursor.settle(&running) == Settled::ForgetAll {
            changes.invalidate_all();
        }
        if cursor.unnoted() {
            let in_progress = self.in_progress().await?;
            cursor.note(&in_progress);
        }
        if cursor.overloaded() {
            tracing::warn!(
                "too many change-feed ids or transactions to wait for: \
                 forgetting every session kept in memory"
            );
            self.place(&mut cursor).await?;
        }
        changes.synced_writes.fetch_max(writes, Ordering::SeqCst);
        let began_ms = began.duration_since(changes.base).as_millis().max(1) as u64;
        changes.confirmed_ms.fetch_max(began_ms, Ordering::SeqCst);
        Ok(())
    }

    /// Places the cursor at the feed's end and forgets everything kept:
    /// what is read from now on is read after this point.
    async fn place(&self, cursor: &mut Cursor) -> Result<()> {
        cursor.out_of_order = self.backend == Backend::Postgres;
        let row = sqlx::query(
            "SELECT f.id, f.user_id, f.session_id, f.changed_at FROM change_feed f \
             WHERE f.id = (SELECT MAX(id) FROM change_feed)",
        )
        .fetch_optional(&self.pool)
        .await?;
        let (high, mark) = match row {
            Some(row) => (row.try_get("id")?, Some(mark_of(&row)?)),
            None => (0, None),
        };
        // Read after the end was: a transaction still running then may
        // commit a row below it.
        let in_progress = if cursor.out_of_order {
            self.in_progress().await?
        } else {
            Vec::new()
        };
        cursor.place(high, mark, in_progress);
        self.changes.invalidate_all();
        Ok(())
    }

    /// The feed's last id as its sequence has it, and what the row at
    /// `high` holds now.
    async fn feed_top(&self, high: i64) -> Result<(i64, Option<Mark>)> {
        let sql = match self.backend {
            Backend::Sqlite => SQLITE_TOP,
            Backend::Postgres => POSTGRES_TOP,
        };
        let row = sqlx::query(sql).bind(high).fetch_one(&self.pool).await?;
        let top: i64 = row.try_get("top")?;
        let at_high = match row.try_get::<Option<i64>, _>("user_id")? {
            Some(_) => Some(mark_of(&row)?),
            None => None,
        };
        Ok((top, at_high))
    }

    /// The transactions in progress on the PostgreSQL server now (none on
    /// SQLite, where nothing can arrive out of order).
    async fn in_progress(&self) -> Result<Vec<i64>> {
        if self.backend != Backend::Postgres {
            return Ok(Vec::new());
        }
        let listed: String = sqlx::query(
            "SELECT COALESCE(string_agg(x::text, ','), '') AS xids \
             FROM pg_snapshot_xip(pg_current_snapshot()) AS x",
        )
        .fetch_one(&self.pool)
        .await?
        .try_get("xids")?;
        Ok(listed.split(',').filter_map(|x| x.parse().ok()).collect())
    }

    /// Which of `xids` are still in progress.
    async fn running_among(&self, xids: &BTreeSet<i64>) -> Result<BTreeSet<i64>> {
        if self.backend != Backend::Postgres {
            return Ok(BTreeSet::new());
        }
        let listed: String = sqlx::query(
            "SELECT COALESCE(string_agg(x::text, ','), '') AS xids \
             FROM unnest(string_to_array($1, ',')::xid8[]) AS x \
             WHERE pg_xact_status(x) = 'in progress'",
        )
        .bind(join(xids.iter().copied()))
        .fetch_one(&self.pool)
        .await?
        .try_get("xids")?;
        Ok(listed.split(',').filter_map(|x| x.parse().ok()).collect())
    }

    /// Follows the feed until `stop`: reads it every [`POLL_INTERVAL`], and
    /// at once when PostgreSQL notifies a change. The first read places the
    /// cursor; after a failed read the caches stay untrusted until one
    /// succeeds (and after half an hour without one, everything kept is
    /// dropped, since the feed's rows are purged after
    /// [`FEED_RETENTION_SECS`]).
    pub async fn follow_changes(self, stop: CancellationToken) {
        let wake = Arc::new(tokio::sync::Notify::new());
        if self.backend == Backend::Postgres {
            let url = self.url.to_string();
            let wake = wake.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                tokio::select! {
                    () = stop.cancelled() => {}
                    () = listen(url, wake) => {}
                }
            });
        }
        let mut every = tokio::time::interval(POLL_INTERVAL);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing_since: Option<Instant> = None;
        loop {
            let verify = tokio::select! {
                biased;
                () = stop.cancelled() => return,
                () = wake.notified() => false,
                _ = every.tick() => true,
            };
            match self.read_feed(verify).await {
                Ok(()) => {
                    if let Some(since) = failing_since.take() {
                        tracing::info!(after = ?since.elapsed(), "the change feed is followed again");
                    }
                }
                Err(e) => {
                    let since = *failing_since.get_or_insert_with(|| {
                        tracing::warn!(error = %e, "cannot read the change feed: sessions are checked in the database");
                        Instant::now()
                    });
                    if since.elapsed() > Duration::from_secs(FEED_RETENTION_SECS as u64 / 2) {
                        self.changes.invalidate_all();
                    }
                }
            }
        }
    }
}

/// Drops what a feed row names, if the cursor had not read it yet.
fn apply(changes: &Changes, cursor: &mut Cursor, row: &AnyRow) -> Result<()> {
    let id: i64 = row.try_get("id")?;
    let mark = mark_of(row)?;
    if cursor.read(id, mark.clone()) {
        match mark.session_id {
            Some(session_id) => changes.invalidate_session(&session_id),
            None => changes.invalidate_user(mark.user_id),
        }
    }
    Ok(())
}

fn mark_of(row: &AnyRow) -> Result<Mark> {
    Ok(Mark {
        user_id: row.try_get("user_id")?,
        session_id: row.try_get("session_id")?,
        changed_at: row.try_get("changed_at")?,
    })
}

/// `1,2,3`: a list passed to PostgreSQL as one text parameter (sqlx's `Any`
/// driver binds no arrays).
fn join(ids: impl Iterator<Item = i64>) -> String {
    let mut out = String::new();
    for id in ids {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(&id.to_string());
    }
    out
}

/// Listens for the feed's `NOTIFY` and wakes the follower; reconnects after
/// a lost connection (the polls cover the time in between).
async fn listen(url: String, wake: Arc<tokio::sync::Notify>) {
    let sep = if url.contains('?') { '&' } else { '?' };
    let url = format!("{url}{sep}application_name={LISTENER_NAME}");
    loop {
        let mut listener = match sqlx::postgres::PgListener::connect(&url).await {
            Ok(listener) => listener,
            Err(e) => {
                tracing::warn!(error = %e, "cannot connect to listen for changes");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::warn!(error = %e, "cannot listen for changes");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        wake.notify_one();
        loop {
            match listener.try_recv().await {
                Ok(Some(_)) => wake.notify_one(),
                Ok(None) => {
                    tracing::warn!("the connection listening for changes was lost; reconnecting");
                    wake.notify_one();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "listening for changes failed; reconnecting");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    break;
                }
            }
        }
    }
}
