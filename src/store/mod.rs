//! Persistence on SQLite or PostgreSQL through the same SQL, one file per
//! aggregate: [`users`](Store::user_by_id), sessions and their refresh tokens,
//! one-time tokens, security events, the mail queue, passkeys, the clients
//! of Sign in with Portcullis, and the purge.
//!
//! The SQL is written once, in the dialect both databases share (`$n`
//! placeholders, `RETURNING`, `TRUE`/`FALSE`), and runs through sqlx's `Any`
//! driver. Times are Unix seconds. Writes that belong together run in one
//! transaction; on SQLite write transactions start with `BEGIN IMMEDIATE` so
//! that concurrent writers queue instead of failing.

/// The user columns that [`UserRecord::from_row`] reads, for `concat!`.
macro_rules! user_columns {
    () => {
        "id, email, name, password_hash, is_active, is_verified, is_superuser, extra, created_at"
    };
}

mod admin;
mod changes;
mod clients;
mod data_migrations;
mod events;
mod import;
mod mail_queue;
mod mfa;
mod models;
mod one_time;
mod passkeys;
mod purge;
mod sessions;
mod users;

pub use admin::{AccountChange, UserChanges};
pub use changes::{
    CHANNEL as CHANGE_CHANNEL, FEED_RETENTION_SECS, LISTENER_NAME as CHANGE_LISTENER_NAME,
    POLL_INTERVAL as CHANGE_POLL_INTERVAL, TOUCH_INTERVAL_SECS, TRUST_WINDOW,
};
pub use clients::{ClientChanges, NewClient};
pub use events::{Actor, EventRecord};
pub use import::{IMPORT_BATCH, ImportedUser};
pub use mfa::{
    FAILURE_WINDOW_SECS, FactorProof, FailureRecorded, LOCK_AFTER_FAILURES, MfaTokenRecord,
    SESSION_WINDOW_FAILURE_LIMIT, SecondStep, TOKEN_FAILURE_LIMIT, TotpRecord,
    WINDOW_FAILURE_LIMIT,
};
pub use one_time::TokenPurpose;
pub use passkeys::{Ceremony, CeremonyPurpose, NewPasskey, PasskeyRecord, PasskeyUse};

pub use crate::domain::ClientInfo;
pub use crate::fields::ExtraFields;
pub use models::{
    Lifetimes, NewSession, NewUser, RefreshOutcome, Refusal, SessionInfo, SessionLookup,
    SessionOpening, StillValid, User, UserRecord,
};

use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::AnyPool;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};

use crate::error::Error;

/// A write transaction, begun by [`Store::begin_write`]: a transaction
/// whose [`commit`](WriteTx::commit) also tells this process's session
/// cache that the feed may have news (SPEC §9: a revocation holds at once
/// on the instance that made it). Use `&mut *tx` as the executor.
pub(crate) struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    changes: Arc<changes::Changes>,
    /// On SQLite, this process's turn to write (see [`Store::begin_write`]);
    /// released when the transaction ends.
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl WriteTx {
    /// Commits, then has the next session check read the change feed first.
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await?;
        self.changes.local_commit();
        Ok(())
    }
}

impl Deref for WriteTx {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

/// How long a write waits for its turn on SQLite before answering 503 (as
/// long as SQLite's own busy timeout).
const WRITE_QUEUE_PATIENCE: Duration = Duration::from_secs(5);

/// How often SQLite's migrations are tried before their error is reported
/// (another process may be applying them at the same moment).
const MIGRATION_ATTEMPTS: u32 = 30;

/// Sessions kept in memory by default (`SESSION_CACHE_SIZE`).
pub const DEFAULT_SESSION_CACHE_SIZE: u64 = 100_000;

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// A handle on the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    /// Where write transactions run: on SQLite a connection of their own,
    /// on PostgreSQL the same pool.
    writer: AnyPool,
    backend: Backend,
    /// The URL connected to (the change listener opens its own connection).
    url: Arc<str>,
    /// The session cache and the change feed's state (SPEC §9).
    changes: Arc<changes::Changes>,
    /// On SQLite, the queue of this process's write transactions.
    writers: Arc<tokio::sync::Mutex<()>>,
}

/// The form of an e-mail that uniqueness and look-ups use (SPEC §4):
/// trimmed, NFKC-normalised and lower-cased with Rust's full Unicode rules,
/// so that the composed and decomposed spellings of `jürgen@…`, or a
/// full-width `ａ`, are one account. Computed here, not in SQL, so both
/// databases agree.
pub fn email_key(email: &str) -> String {
    use unicode_normalization::UnicodeNormalization as _;
    let folded = email.trim().nfkc().collect::<String>().to_lowercase();
    // Lower-casing can leave a sequence that NFKC writes differently.
    folded.nfkc().collect()
}

/// SHA-256 of a secret, hex: what is stored instead of tokens themselves.
pub fn hash_secret(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let mut out = String::with_capacity(64);
    for byte in digest {
        use std::fmt::Write;
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// The `Error` for a failed insert of a user.
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    /// The e-mail is taken (case-insensitively).
    #[error("email already registered")]
    EmailTaken,
    /// Anything else.
    #[error(transparent)]
    Other(#[from] Error),
}

impl From<CreateUserError> for Error {
    fn from(e: CreateUserError) -> Self {
        match e {
            CreateUserError::EmailTaken => Error::EmailAlreadyExists,
            CreateUserError::Other(e) => e,
        }
    }
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

impl Store {
    /// Connects to `database_url` (`sqlite://path` or `postgres://…`),
    /// creating an SQLite file and its directory when missing.
    pub async fn connect(database_url: &str) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let (url, backend) = if database_url.starts_with("sqlite:") {
            (prepare_sqlite_url(database_url)?, Backend::Sqlite)
        } else {
            (database_url.to_string(), Backend::Postgres)
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = pool_options(
            backend,
            match backend {
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            },
        )
        .connect_with(options.clone())
        .await?;
        let writer = match backend {
            // SQLite has one writer at a time anyway. Writing always through
            // the same connection keeps its page cache valid from one write
            // transaction to the next (a connection that finds the database
            // changed by another drops its cache and reads the pages again):
            // a refresh read a dozen pages less.
            Backend::Sqlite => pool_options(backend, 1).connect_with(options).await?,
            Backend::Postgres => pool.clone(),
        };
        Ok(Self {
            pool,
            writer,
            backend,
            url: url.into(),
            changes: Arc::new(changes::Changes::new(DEFAULT_SESSION_CACHE_SIZE)),
            writers: Arc::default(),
        })
    }

    /// Keeps at most `capacity` sessions in memory (0: none, every check
    /// reads the database). Call before cloning: clones share one cache.
    pub fn with_session_cache(mut self, capacity: u64) -> Self {
        self.changes = Arc::new(changes::Changes::new(capacity));
        self
    }

    /// Records a write made outside [`Store::begin_write`], so that the
    /// next session check reads the change feed first.
    fn wrote(&self) {
        self.changes.local_commit();
    }

    /// Applies the migrations of this backend.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self.backend {
            Backend::Sqlite => {
                // PostgreSQL's migrations run under an advisory lock; SQLite
                // has none, so two processes starting at once on a new file
                // (two servers, a server and a `user` command) can both try
                // to apply a migration. Each runs in a transaction: the
                // loser's rolls back, and on a retry it finds it applied.
                let migrator = sqlx::migrate!("migrations/sqlite");
                let mut attempts = 1;
                loop {
                    match migrator.run(&self.pool).await {
                        Ok(()) => break,
                        Err(e) if attempts < MIGRATION_ATTEMPTS => {
                            tracing::debug!(error = %e, "retrying the migrations");
                            attempts += 1;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            Backend::Postgres => {
                sqlx::migrate!("migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        self.rekey_emails().await?;
        Ok(())
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The connection pool, for applications that keep their own tables beside ours.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes every connection (at shutdown).
    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// ` FOR UPDATE` on PostgreSQL (SQLite's write transactions hold the
    /// database lock already): for a read that a decision in the same
    /// transaction depends on.
    fn lock_clause(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        }
    }

    /// Begins a write transaction: `BEGIN IMMEDIATE` on SQLite, so that
    /// concurrent writers queue for the lock instead of failing.
    ///
    /// On SQLite the writers of this process first queue in order (a fair
    /// async mutex) and only then take the database's lock: SQLite's own
    /// busy handler makes waiting writers sleep and retry (up to 100 ms at a
    /// time), so under a stream of writes some lost every race and waited
    /// seconds (1.5 s for a refresh at 16 concurrent clients). Other
    /// processes still meet the busy handler, as before.
    async fn begin_write(&self) -> crate::error::Result<WriteTx> {
        let (begin, turn) = match self.backend {
            Backend::Sqlite => {
                let turn =
                    tokio::time::timeout(WRITE_QUEUE_PATIENCE, self.writers.clone().lock_owned())
                        .await
                        .map_err(|_| crate::error::Error::Unavailable)?;
                ("BEGIN IMMEDIATE", Some(turn))
            }
            Backend::Postgres => ("BEGIN", None),
        };
        Ok(WriteTx {
            tx: self.writer.begin_with(begin).await?,
            changes: self.changes.clone(),
            _turn: turn,
        })
    }
}

/// The options of a pool of at most `max` connections to `backend`.
fn pool_options(backend: Backend, max: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(5))
        // sqlx pings every connection it hands out. An SQLite connection is
        // a file and a thread of this process: nothing to find dead, and the
        // ping was a thread hand-off (about 60 µs here) before every
        // statement and transaction. A PostgreSQL connection may have been
        // cut (a restart, a failover): checked before use.
        .test_before_acquire(backend == Backend::Postgres)
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    // WAL survives a killed process without losing committed
                    // transactions; NORMAL skips the fsync per commit.
                    sqlx::raw_sql(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                         PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
                    )
                    .execute(conn)
                    .await?;
                }
                Ok(())
            })
        })
}

/// Adds `mode=rwc` to an SQLite URL and prepares its file: the directory
/// is created with mode 0700 and the database file with mode 0600 when they
/// do not exist (SPEC §1), before SQLite would create them with the umask's
/// default. SQLite gives the `-wal` and `-shm` files the database file's
/// mode. An existing database that others can read is left as it is, with a
/// warning.
fn prepare_sqlite_url(url: &str) -> anyhow::Result<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let in_memory = path == ":memory:" || path.is_empty() || query.contains("mode=memory");
    let creates = !query.contains("mode=") || query.contains("mode=rwc");
    if !in_memory && creates {
        let path = Path::new(path);
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            crate::files::create_private_dir_all(parent)?;
        }
        crate::files::create_private_file_if_missing(path)?;
        if crate::files::readable_by_others(path).unwrap_or(false) {
            tracing::warn!(
                path = %path.display(),
                "the database file can be read by other users: `chmod 600` it (and its -wal and -shm files)"
            );
        }
    }
    if query.contains("mode=") {
        Ok(url.to_string())
    } else if query.is_empty() {
        Ok(format!("{url}?mode=rwc"))
    } else {
        Ok(format!("{url}&mode=rwc"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_get_create_mode() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/sub/x.db", dir.path().display());
        assert_eq!(prepare_sqlite_url(&url).unwrap(), format!("{url}?mode=rwc"));
        assert!(dir.path().join("sub").is_dir());
        assert!(dir.path().join("sub/x.db").is_file());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &str| {
                std::fs::metadata(dir.path().join(p))
                    .unwrap()
                    .permissions()
                    .mode()
                    & 0o777
            };
            assert_eq!(mode("sub"), 0o700);
            assert_eq!(mode("sub/x.db"), 0o600);
        }
        assert_eq!(
            prepare_sqlite_url("sqlite::memory:?mode=memory").unwrap(),
            "sqlite::memory:?mode=memory"
        );
    }

    #[test]
    fn secrets_are_hashed_hex() {
        assert_eq!(hash_secret("abc").len(), 64);
        assert_ne!(hash_secret("abc"), hash_secret("abd"));
    }
}
