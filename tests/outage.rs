//! The database goes away under a running server (SPEC §3, §6): answers are
//! 503 `SERVICE_UNAVAILABLE` with `Retry-After`, never a 500, `/readyz` says
//! so, and everything works again once the database is back. PostgreSQL
//! only: an SQLite file has no server to lose.

#[macro_use]
mod common;

use common::*;
use reqwest::StatusCode;

async fn run(conn: &mut sqlx::PgConnection, sql: String) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(conn)
        .await
        .expect("admin statement");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_answers_503_and_recovers() {
    let app = TestApp::spawn(Backend::Postgres, &[]).await;
    let user = app.register(&unique_email("outage"), PASSWORD).await;
    let name = app.db.url.rsplit('/').next().unwrap().to_string();
    let hidden = format!("{name}_away");

    // Cut every connection and hide the database (the mail worker may
    // reconnect in between, so try a few times).
    let mut admin = pg_admin().await;
    let mut hidden_ok = false;
    for _ in 0..10 {
        run(
            &mut admin,
            format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
            ),
        )
        .await;
        let rename = format!("ALTER DATABASE \"{name}\" RENAME TO \"{hidden}\"");
        if sqlx::raw_sql(sqlx::AssertSqlSafe(rename))
            .execute(&mut admin)
            .await
            .is_ok()
        {
            hidden_ok = true;
            break;
        }
    }
    assert!(hidden_ok, "could not take the database away");

    let me = app.me(&user.access).await;
    me.expect_error(StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE");
    assert!(me.header("retry-after").is_some());
    let ready = app.get_root("/readyz").await;
    ready.expect_error(StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE");
    let health = app.get_root("/healthz").await;
    health.expect_ok(StatusCode::OK);

    // Back again: the same token works without a restart.
    run(
        &mut admin,
        format!("ALTER DATABASE \"{hidden}\" RENAME TO \"{name}\""),
    )
    .await;
    app.get_root("/readyz").await.expect_ok(StatusCode::OK);
    app.me(&user.access).await.expect_ok(StatusCode::OK);
}
