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
//! follows the feed ([`feed`]): it polls every [`POLL_INTERVAL`], and on
//! PostgreSQL a `NOTIFY` from the triggers wakes it at once. Each row drops
//! the entries it names.
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
//! - An id that is missing below the highest one read (a transaction that
//!   has not committed yet, however long it takes) is read again on every
//!   poll until it is known never to come ([`cursor`]); no timer gives it up.
//! - A feed whose ids went backwards (a restore, a failover, a sequence
//!   reset) makes the follower forget everything and start again at its end.
//! - Nothing is kept longer than [`KEPT_AT_MOST`] without being read again,
//!   as a last bound whatever else goes wrong.

mod cursor;
mod feed;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use moka::sync::Cache;

use self::cursor::Cursor;
use super::{SessionLookup, Store, User};
use crate::error::Result;

/// How long the caches are trusted after the feed was last read to its end.
pub const TRUST_WINDOW: Duration = Duration::from_millis(900);
/// How often every instance reads the feed, whatever woke it before.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// How long a session or user is kept in memory at most before it is read
/// from the database again, whatever the feed says.
pub const KEPT_AT_MOST: Duration = Duration::from_secs(120);
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
                Some(
                    Cache::builder()
                        .max_capacity(capacity)
                        .time_to_live(KEPT_AT_MOST)
                        .build(),
                ),
                Some(
                    Cache::builder()
                        .max_capacity(capacity)
                        .time_to_live(KEPT_AT_MOST)
                        .build(),
                ),
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
}
