//! The database of one test, for every test binary: a fresh SQLite file in a
//! temporary directory, or a fresh database on the PostgreSQL test server.
//!
//! PostgreSQL is found at `postgres://postgres@127.0.0.1:5432` (override with
//! `PORTCULLIS_TEST_PG`, a base URL without database name); each test gets its
//! own database `pc_<pid>_<n>`, so that test binaries running at the same time
//! never share one, dropped when the test ends. Databases left behind by
//! earlier runs whose process is gone are dropped once per test process.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use portcullis::store::Store;
use sqlx::Connection;
use sqlx::postgres::PgConnection;
use tempfile::TempDir;

/// Which database a test server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A fresh SQLite file in a temporary directory.
    Sqlite,
    /// A fresh database on the PostgreSQL test server.
    Postgres,
}

/// The PostgreSQL server, as a base URL without database name.
fn pg_base() -> String {
    std::env::var("PORTCULLIS_TEST_PG")
        .ok()
        .map(|v| v.trim().trim_end_matches('/').to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432".to_string())
}

fn pg_admin_url() -> String {
    format!("{}/test", pg_base())
}

static PG_COUNTER: AtomicUsize = AtomicUsize::new(0);
static PG_CLEANUP: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();

/// A connection to the PostgreSQL test server's maintenance database, for
/// what a test does to databases as a whole (create, drop, rename).
pub async fn pg_admin() -> PgConnection {
    let url = pg_admin_url();
    PgConnection::connect(&url).await.unwrap_or_else(|e| {
        panic!("cannot reach the PostgreSQL test server at {url} (set PORTCULLIS_TEST_PG): {e}")
    })
}

async fn drop_pg_database(conn: &mut PgConnection, name: &str) {
    let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
    if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(conn).await {
        eprintln!("could not drop test database {name}: {e}");
    }
}

/// Drops `pc_<pid>_<n>` databases whose process is gone (earlier, killed runs).
async fn drop_pg_leftovers() {
    let mut conn = pg_admin().await;
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'pc\\_%'")
            .fetch_all(&mut conn)
            .await
            .expect("list databases");
    for name in names {
        let pid = name.split('_').nth(1).and_then(|p| p.parse::<u32>().ok());
        let Some(pid) = pid else { continue };
        let alive = std::path::Path::new(&format!("/proc/{pid}")).exists();
        if !alive {
            drop_pg_database(&mut conn, &name).await;
        }
    }
    let _ = conn.close().await;
}

/// A PostgreSQL database owned by one test; dropped with it.
struct PgDatabase {
    name: String,
}

impl PgDatabase {
    async fn create() -> (Self, String) {
        PG_CLEANUP.get_or_init(drop_pg_leftovers).await;
        let name = format!(
            "pc_{}_{}",
            std::process::id(),
            PG_COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let mut conn = pg_admin().await;
        drop_pg_database(&mut conn, &name).await;
        let create = format!("CREATE DATABASE \"{name}\"");
        let mut attempt = 0;
        loop {
            match sqlx::raw_sql(sqlx::AssertSqlSafe(create.clone()))
                .execute(&mut conn)
                .await
            {
                Ok(_) => break,
                // Concurrent CREATE DATABASE may find the template busy.
                Err(e) if attempt < 20 && e.to_string().contains("being accessed") => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("CREATE DATABASE {name}: {e}"),
            }
        }
        let _ = conn.close().await;
        let url = format!("{}/{name}", pg_base());
        (Self { name }, url)
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime: do the async work on a thread
        // with its own runtime.
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(mut conn) = PgConnection::connect(&pg_admin_url()).await {
                    drop_pg_database(&mut conn, &name).await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}

/// A test's database and a scratch directory (the SQLite file, the outbox,
/// browser profiles), shared by every server of the test.
pub struct TestDb {
    /// `DATABASE_URL` of this database.
    pub url: String,
    /// Which backend.
    pub backend: Backend,
    /// Scratch space, removed with the database.
    pub dir: TempDir,
    _pg: Option<PgDatabase>,
}

impl TestDb {
    /// A fresh, empty database on `backend`.
    pub async fn create(backend: Backend) -> Arc<Self> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let (url, pg) = match backend {
            Backend::Sqlite => (format!("sqlite://{}/t.db", dir.path().display()), None),
            Backend::Postgres => {
                let (db, url) = PgDatabase::create().await;
                (url, Some(db))
            }
        };
        Arc::new(Self {
            url,
            backend,
            dir,
            _pg: pg,
        })
    }

    /// A fresh database on `backend` with Portcullis's migrations applied,
    /// as a server applies them when it starts.
    pub async fn migrated(backend: Backend) -> Arc<Self> {
        let db = Self::create(backend).await;
        db.migrate().await;
        db
    }

    /// Applies Portcullis's migrations of this backend (`Store::migrate`).
    pub async fn migrate(&self) {
        let store = Store::connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", self.url));
        store
            .migrate()
            .await
            .unwrap_or_else(|e| panic!("migrating {}: {e}", self.url));
        store.close().await;
    }

    /// The tables of the database and the names of their columns, as the
    /// database itself reports them (SQLite: `sqlite_master` and
    /// `pragma_table_info`; PostgreSQL: `information_schema.columns` of the
    /// schema `public`), leaving out sqlx's `_sqlx_migrations`.
    pub async fn schema(&self) -> BTreeMap<String, BTreeSet<String>> {
        let sql = match self.backend {
            Backend::Sqlite => {
                "SELECT m.name, c.name FROM sqlite_master AS m \
                 JOIN pragma_table_info(m.name) AS c \
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
                 AND m.name <> '_sqlx_migrations'"
            }
            Backend::Postgres => {
                "SELECT table_name::text, column_name::text FROM information_schema.columns \
                 WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations'"
            }
        };
        let mut conn = self.connect().await;
        let rows: Vec<(String, String)> = sqlx::query_as(sql)
            .fetch_all(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let _ = conn.close().await;
        let mut schema: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (table, column) in rows {
            schema.entry(table).or_default().insert(column);
        }
        schema
    }

    /// The triggers of the database as `table.trigger` (SQLite:
    /// `sqlite_master`; PostgreSQL: `information_schema.triggers` of the
    /// schema `public`, one name per trigger whatever its events).
    pub async fn triggers(&self) -> BTreeSet<String> {
        let sql = match self.backend {
            Backend::Sqlite => {
                "SELECT tbl_name || '.' || name FROM sqlite_master WHERE type = 'trigger'"
            }
            Backend::Postgres => {
                "SELECT DISTINCT (event_object_table || '.' || trigger_name)::text \
                 FROM information_schema.triggers WHERE trigger_schema = 'public'"
            }
        };
        self.strings(sql).await.into_iter().collect()
    }

    /// Runs `sql` (a query with one text column) on the database; the values.
    pub async fn strings(&self, sql: &'static str) -> Vec<String> {
        let mut conn = self.connect().await;
        let rows: Vec<Option<String>> = sqlx::query_scalar(sql)
            .fetch_all(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let _ = conn.close().await;
        rows.into_iter().flatten().collect()
    }

    /// Runs a statement on the database.
    pub async fn execute(&self, sql: &'static str) {
        let mut conn = self.connect().await;
        sqlx::query(sql)
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let _ = conn.close().await;
    }

    /// A connection of its own to the database, behind the server's back.
    async fn connect(&self) -> sqlx::AnyConnection {
        sqlx::any::install_default_drivers();
        sqlx::AnyConnection::connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", self.url))
    }
}
