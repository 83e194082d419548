//! The two sets of migrations, `migrations/sqlite` and `migrations/postgres`,
//! make the same tables with the same columns: the store's queries are
//! written once for both, so a column added to one backend only would break
//! the other at run time. Each is applied to a fresh database as a server
//! applies it, and the databases themselves are asked what they hold.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{Backend, TestDb};

type Schema = BTreeMap<String, BTreeSet<String>>;

/// What `a` (named `a_name`) has that `b` has not: whole tables, and
/// columns of the tables both have.
fn missing_from(a: &Schema, a_name: &str, b: &Schema, b_name: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (table, columns) in a {
        match b.get(table) {
            None => found.push(format!("table {table} is only in {a_name}")),
            Some(other) => {
                for column in columns.difference(other) {
                    found.push(format!(
                        "column {table}.{column} is only in {a_name}, not in {b_name}"
                    ));
                }
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_and_postgres_migrations_make_the_same_tables_and_columns() {
    let sqlite_db = TestDb::migrated(Backend::Sqlite).await;
    let postgres_db = TestDb::migrated(Backend::Postgres).await;
    let sqlite = sqlite_db.schema().await;
    let postgres = postgres_db.schema().await;

    // The change feed's triggers (SPEC §9) exist on both, under the same
    // names: a change made on one backend only would not reach the caches.
    let sqlite_triggers = sqlite_db.triggers().await;
    let postgres_triggers = postgres_db.triggers().await;
    for trigger in [
        "users.users_feed_update",
        "users.users_feed_delete",
        "sessions.sessions_feed_revoke",
        "sessions.sessions_feed_delete",
    ] {
        assert!(
            sqlite_triggers.contains(trigger),
            "SQLite lacks {trigger}: {sqlite_triggers:?}"
        );
    }
    assert_eq!(
        sqlite_triggers, postgres_triggers,
        "migrations/sqlite and migrations/postgres make different triggers"
    );

    // The comparison sees the real schema: the tables the store uses, with
    // their columns.
    for schema in [&sqlite, &postgres] {
        for table in [
            "users",
            "sessions",
            "refresh_tokens",
            "one_time_tokens",
            "mail_queue",
            "security_events",
        ] {
            assert!(
                schema.get(table).is_some_and(|columns| columns.len() >= 2),
                "no table {table} with columns in {schema:?}"
            );
        }
        assert!(schema["users"].contains("email_key"), "{schema:?}");
        assert!(!schema.contains_key("_sqlx_migrations"), "{schema:?}");
    }

    let mut differences = missing_from(&sqlite, "SQLite", &postgres, "PostgreSQL");
    differences.extend(missing_from(&postgres, "PostgreSQL", &sqlite, "SQLite"));
    assert!(
        differences.is_empty(),
        "migrations/sqlite and migrations/postgres disagree:\n  {}",
        differences.join("\n  ")
    );
    assert_eq!(sqlite, postgres);
}

/// Two processes starting at once on a new SQLite file both migrate it (a
/// server and a `user` command, or two servers in one directory): both
/// succeed and the schema is applied once.
#[tokio::test]
async fn sqlite_migrations_started_at_once_both_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("shared.db").display());
    for _ in 0..5 {
        std::fs::remove_file(dir.path().join("shared.db")).ok();
        let a = portcullis::store::Store::connect(&url).await.unwrap();
        let b = portcullis::store::Store::connect(&url).await.unwrap();
        let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
        ra.unwrap();
        rb.unwrap();
        a.close().await;
        b.close().await;
    }
}
