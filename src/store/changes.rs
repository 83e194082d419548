//! The session check from memory, and the change feed that keeps it honest
//! (SPEC §9).
//!
//! What a protected request needs, a session's state and its user's
//! snapshot, is kept in two bounded caches (`moka`): session id → open (and
//! whose) or ended, and user id → the user as stored. The database writes
//! a row into `change_feed` in the same transaction as every change that
//! could make a kept answer wrong (triggers on `users`, any update or delete,
//! and on `sessions`, a revocation or a delete; see
//! `migrations/*/0004_change_feed.sql`), whoever writes: this process,
//! another instance, a `user` command, code added later. Every instance
//! follows the feed ([`Store::follow_changes`]): it polls every
//! [`POLL_INTERVAL`], and on PostgreSQL a `NOTIFY` from the triggers wakes it
//! at once. Each row drops the entries it names.
//!
//! Honesty rules:
//! - The caches are trusted only while the last complete read of the feed
//!   began less than [`TRUST_WINDOW`] ago; otherwise (a stalled poll, the
//!   database unreachable, no follower running, as in a `user` command) every
//!   check reads the database.
//! - A write committed by this process ([`super::WriteTx::commit`]) makes
//!   the next check read the feed first: a revocation holds at once on the
//!   instance that made it.
//! - An answer read from the database is kept only if no invalidation was
//!   applied while it was being read (it might predate it).
//! - On PostgreSQL feed ids are handed out before commit, so a later id can
//!   be visible before an earlier one: ids missing below the highest seen
//!   are waited for (up to [`GAP_PATIENCE`]) before the cursor passes them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use moka::sync::Cache;
use sqlx::Row;
use tokio_util::sync::CancellationToken;

use super::{Backend, SessionLookup, Store, User};
use crate::error::Result;

/// How long the caches are trusted after the feed was last read to its end.
pub const TRUST_WINDOW: Duration = Duration::from_millis(900);
/// How often every instance reads the feed, whatever woke it before.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// How long an id missing from the feed is waited for.
const GAP_PATIENCE: Duration = Duration::from_secs(10);
/// Rows read from the feed at a time.
const BATCH: i64 = 1000;
/// The `NOTIFY` channel of the feed's triggers.
pub const CHANNEL: &str = "portcullis_changes";
/// The `application_name` of the connection that listens for the feed.
pub const LISTENER_NAME: &str = "portcullis-listener";
/// How stale a session's `last_used_at` may get before a check refreshes it.
pub const TOUCH_INTERVAL_SECS: i64 = 60;
/// Feed rows older than this are deleted by the purge.
pub const FEED_RETENTION_SECS: i64 = 3600;

/// A session as kept in memory.
#[derive(Clone)]
enum Kept {
    /// Open, for `user_id`; `last_used_at` as last recorded.
    Open {
        user_id: i64,
        last_used_at: Arc<AtomicI64>,
    },
    /// Revoked or gone: it never comes back.
    Ended,
}

/// How far the feed has been read.
#[derive(Debug, Default)]
struct Cursor {
    /// Whether the cursor has been placed at the feed's end yet.
    placed: bool,
    /// Every id up to here has been applied (or given up on).
    low: i64,
    /// Ids above `low` already applied.
    seen: BTreeSet<i64>,
    /// Ids above `low` not seen yet, with when they were first missed.
    gaps: BTreeMap<i64, Instant>,
}

/// The caches and the state of the feed; one per [`Store`] (shared by clones).
pub(super) struct Changes {
    sessions: Option<Cache<String, Kept>>,
    users: Option<Cache<i64, Arc<User>>>,
    /// Bumped for every invalidation applied.
    epoch: AtomicU64,
    /// Checks answered from memory, and checks that read the database.
    hits: AtomicU64,
    misses: AtomicU64,
    /// Bumped after every write this process committed.
    local_writes: AtomicU64,
    /// The value of `local_writes` the feed was last read after.
    synced_writes: AtomicU64,
    /// When the last complete read of the feed began, in milliseconds
    /// since `base` (0: never).
    confirmed_ms: AtomicU64,
    base: Instant,
    cursor: tokio::sync::Mutex<Cursor>,
}

impl std::fmt::Debug for Changes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Changes")
            .field("cached", &self.sessions.is_some())
            .field("epoch", &self.epoch.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Changes {
    /// Caches of at most `capacity` sessions (and as many users); 0 keeps
    /// nothing, and every check reads the database.
    pub(super) fn new(capacity: u64) -> Self {
        let (sessions, users) = if capacity == 0 {
            (None, None)
        } else {
            (
                Some(Cache::builder().max_capacity(capacity).build()),
                Some(Cache::builder().max_capacity(capacity).build()),
            )
        };
        Self {
            sessions,
            users,
            epoch: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            local_writes: AtomicU64::new(0),
            synced_writes: AtomicU64::new(0),
            confirmed_ms: AtomicU64::new(0),
            base: Instant::now(),
            cursor: tokio::sync::Mutex::new(Cursor::default()),
        }
    }

    /// Records that this process committed a write.
    pub(super) fn local_commit(&self) {
        self.local_writes.fetch_add(1, Ordering::SeqCst);
    }

    /// Whether the feed was read to its end less than [`TRUST_WINDOW`] ago.
    fn trusted(&self) -> bool {
        let confirmed = self.confirmed_ms.load(Ordering::SeqCst);
        if confirmed == 0 {
            return false;
        }
        let now = self.base.elapsed().as_millis() as u64;
        now.saturating_sub(confirmed) < TRUST_WINDOW.as_millis() as u64
    }

    fn invalidate_session(&self, session_id: &str) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        if let Some(sessions) = &self.sessions {
            sessions.invalidate(session_id);
        }
    }

    fn invalidate_user(&self, user_id: i64) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        if let Some(users) = &self.users {
            users.invalidate(&user_id);
        }
    }

    fn invalidate_all(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        if let (Some(sessions), Some(users)) = (&self.sessions, &self.users) {
            sessions.invalidate_all();
            users.invalidate_all();
        }
    }

    /// The kept answer for `session_id`, if there is one to trust. Claims
    /// the session's touch: of the checks that find it unrecorded for
    /// [`TOUCH_INTERVAL_SECS`], one gets the old `last_used_at` back.
    fn get(&self, session_id: &str) -> Option<SessionLookup> {
        let (sessions, users) = (self.sessions.as_ref()?, self.users.as_ref()?);
        match sessions.get(session_id)? {
            Kept::Ended => Some(SessionLookup::Revoked),
            Kept::Open {
                user_id,
                last_used_at,
            } => {
                let user = users.get(&user_id)?;
                let now = crate::clock::now_unix();
                let previous = last_used_at.load(Ordering::Relaxed);
                let last_used_at = if now - previous > TOUCH_INTERVAL_SECS
                    && last_used_at
                        .compare_exchange(previous, now, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                {
                    previous
                } else {
                    now.max(previous)
                };
                Some(SessionLookup::Active { user, last_used_at })
            }
        }
    }

    /// Keeps `found`, read from the database after the epoch was `epoch`,
    /// unless an invalidation was applied since (it might predate it).
    fn remember(&self, session_id: &str, found: &SessionLookup, epoch: u64) {
        let (Some(sessions), Some(users)) = (&self.sessions, &self.users) else {
            return;
        };
        if self.epoch.load(Ordering::SeqCst) != epoch {
            return;
        }
        match found {
            SessionLookup::Active { user, last_used_at } => {
                users.insert(user.id, Arc::clone(user));
                sessions.insert(
                    session_id.to_string(),
                    Kept::Open {
                        user_id: user.id,
                        last_used_at: Arc::new(AtomicI64::new(*last_used_at)),
                    },
                );
                if self.epoch.load(Ordering::SeqCst) != epoch {
                    users.invalidate(&user.id);
                    sessions.invalidate(session_id);
                }
            }
            SessionLookup::Revoked | SessionLookup::Missing => {
                sessions.insert(session_id.to_string(), Kept::Ended);
            }
        }
    }
}

impl Store {
    /// The session `session_id` with its user, for checking an access token:
    /// from memory when that can be trusted, else from the database.
    pub async fn lookup_session(&self, session_id: &str) -> Result<SessionLookup> {
        let changes = &self.changes;
        if changes.sessions.is_some() && changes.trusted() {
            let writes = changes.local_writes.load(Ordering::SeqCst);
            let synced = writes == changes.synced_writes.load(Ordering::SeqCst)
                || self.catch_up().await.is_ok();
            if synced
                && changes.trusted()
                && let Some(found) = changes.get(session_id)
            {
                changes.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(found);
            }
        }
        changes.misses.fetch_add(1, Ordering::Relaxed);
        let epoch = changes.epoch.load(Ordering::SeqCst);
        let found = self.lookup_session_in_db(session_id).await?;
        changes.remember(session_id, &found, epoch);
        Ok(found)
    }

    /// How many session checks were answered from memory, and how many
    /// read the database, since this store was made.
    pub fn session_cache_stats(&self) -> (u64, u64) {
        (
            self.changes.hits.load(Ordering::Relaxed),
            self.changes.misses.load(Ordering::Relaxed),
        )
    }

    /// Reads the feed from where it was left and drops what its new rows
    /// name. Concurrent calls queue; one that finds the work done since it
    /// was asked returns at once.
    pub async fn catch_up(&self) -> Result<()> {
        let changes = &self.changes;
        let asked = Instant::now();
        let writes = changes.local_writes.load(Ordering::SeqCst);
        let mut cursor = changes.cursor.lock().await;
        let confirmed = changes.confirmed_ms.load(Ordering::SeqCst);
        let asked_ms = asked.duration_since(changes.base).as_millis() as u64;
        if cursor.placed
            && confirmed >= asked_ms
            && changes.synced_writes.load(Ordering::SeqCst) >= writes
        {
            return Ok(());
        }
        let began = Instant::now();
        if !cursor.placed {
            // Nothing is kept yet: start near the end, re-reading a little
            // in case a transaction with an earlier id has not committed.
            let last: i64 = sqlx::query("SELECT COALESCE(MAX(id), 0) AS last FROM change_feed")
                .fetch_one(&self.pool)
                .await?
                .try_get("last")?;
            cursor.low = (last - 256).max(0);
            cursor.placed = true;
        }
        let mut after = cursor.low;
        loop {
            let rows = sqlx::query(
                "SELECT id, user_id, session_id FROM change_feed WHERE id > $1 ORDER BY id LIMIT $2",
            )
            .bind(after)
            .bind(BATCH)
            .fetch_all(&self.pool)
            .await?;
            for row in &rows {
                let id: i64 = row.try_get("id")?;
                after = id;
                if id <= cursor.low || !cursor.seen.insert(id) {
                    continue;
                }
                match row.try_get::<Option<String>, _>("session_id")? {
                    Some(session_id) => changes.invalidate_session(&session_id),
                    None => changes.invalidate_user(row.try_get("user_id")?),
                }
            }
            if (rows.len() as i64) < BATCH {
                break;
            }
        }
        advance(&mut cursor, changes);
        changes.synced_writes.fetch_max(writes, Ordering::SeqCst);
        let began_ms = began.duration_since(changes.base).as_millis().max(1) as u64;
        changes.confirmed_ms.fetch_max(began_ms, Ordering::SeqCst);
        Ok(())
    }

    /// Follows the feed until `stop`: reads it every [`POLL_INTERVAL`], and
    /// at once when PostgreSQL notifies a change. The first read places the
    /// cursor; after a failed read the caches stay untrusted until one
    /// succeeds (and after an hour without one, everything kept is dropped,
    /// since the feed's rows are purged after [`FEED_RETENTION_SECS`]).
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
            tokio::select! {
                biased;
                () = stop.cancelled() => return,
                () = wake.notified() => {}
                _ = every.tick() => {}
            }
            match self.catch_up().await {
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

/// Moves the cursor past every id applied, and past ids missing for longer
/// than [`GAP_PATIENCE`] (a rolled-back transaction).
fn advance(cursor: &mut Cursor, changes: &Changes) {
    let now = Instant::now();
    let high = cursor.seen.last().copied().unwrap_or(cursor.low);
    if high - cursor.low > 100_000 {
        // Something wrote ids far apart: do not track that many gaps.
        changes.invalidate_all();
        cursor.low = high;
        cursor.seen.clear();
        cursor.gaps.clear();
        return;
    }
    for id in cursor.low + 1..high {
        if !cursor.seen.contains(&id) {
            cursor.gaps.entry(id).or_insert(now);
        }
    }
    loop {
        let next = cursor.low + 1;
        let given_up = || {
            cursor
                .gaps
                .get(&next)
                .is_some_and(|missed| now.duration_since(*missed) > GAP_PATIENCE)
        };
        if !cursor.seen.contains(&next) && !given_up() {
            break;
        }
        cursor.seen.remove(&next);
        cursor.gaps.remove(&next);
        cursor.low = next;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_waits_for_gaps_then_passes_them() {
        let changes = Changes::new(10);
        let mut cursor = Cursor {
            placed: true,
            ..Cursor::default()
        };
        cursor.seen.extend([1, 2, 4, 5]);
        advance(&mut cursor, &changes);
        assert_eq!(cursor.low, 2);
        assert!(cursor.gaps.contains_key(&3));
        cursor.seen.insert(3);
        advance(&mut cursor, &changes);
        assert_eq!(cursor.low, 5);
        assert!(cursor.gaps.is_empty() && cursor.seen.is_empty());
        cursor.seen.insert(7);
        advance(&mut cursor, &changes);
        assert_eq!(cursor.low, 5);
        if let Some(missed) = cursor.gaps.get_mut(&6)
            && let Some(earlier) = missed.checked_sub(GAP_PATIENCE * 2)
        {
            *missed = earlier;
        }
        advance(&mut cursor, &changes);
        assert_eq!(cursor.low, 7);
    }
}
