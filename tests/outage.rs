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

/// Cuts every connection to database `name` and renames it away, so that
/// no new connection finds it; returns its hidden name.
async fn take_away(admin: &mut sqlx::PgConnection, name: &str) -> String {
    let hidden = format!("{name}_away");
    for _ in 0..20 {
        run(
            admin,
            format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
            ),
        )
        .await;
        let rename = format!("ALTER DATABASE \"{name}\" RENAME TO \"{hidden}\"");
        if sqlx::raw_sql(sqlx::AssertSqlSafe(rename))
            .execute(&mut *admin)
            .await
            .is_ok()
        {
            return hidden;
        }
    }
    panic!("could not take the database away");
}

// Under load (protected requests answered from memory, registrations
// writing), the database goes away: once the server can no longer confirm
// that its memory is up to date, nothing is answered from it; every answer
// is 503 with Retry-After within a few seconds, never a hang or a 500; and
// when the database is back the server recovers by itself, with every
// registration it acknowledged present.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_under_load_trusts_no_unconfirmed_memory_and_loses_no_acknowledged_write() {
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    let app = Arc::new(TestApp::spawn(Backend::Postgres, &[]).await);
    let user = app.register(&unique_email("load"), PASSWORD).await;
    for _ in 0..3 {
        app.me(&user.access).await.expect_ok(StatusCode::OK);
    }
    let name = app.db.url.rsplit('/').next().unwrap().to_string();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // (sent at, took, what, status, retry-after present)
    type Seen = Vec<(Instant, Duration, &'static str, StatusCode, bool)>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut load = tokio::task::JoinSet::new();
    for worker in 0..4 {
        let (app, stop, seen, acknowledged) = (
            app.clone(),
            stop.clone(),
            seen.clone(),
            acknowledged.clone(),
        );
        let token = user.access.clone();
        load.spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let sent = Instant::now();
                let (what, reply, email) = if worker == 0 {
                    let email = unique_email("ack");
                    let reply = app.register_raw(&email, PASSWORD).await;
                    ("register", reply, Some(email))
                } else {
                    ("me", app.me(&token).await, None)
                };
                if reply.status == StatusCode::CREATED
                    && let Some(email) = email
                {
                    acknowledged.lock().unwrap().push(email);
                }
                let retry = reply.header("retry-after").is_some();
                seen.lock()
                    .unwrap()
                    .push((sent, sent.elapsed(), what, reply.status, retry));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut admin = pg_admin().await;
    let hidden = take_away(&mut admin, &name).await;
    let away = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    run(
        &mut admin,
        format!("ALTER DATABASE \"{hidden}\" RENAME TO \"{name}\""),
    )
    .await;
    let back = Instant::now();
    // It recovers by itself.
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.get_root("/readyz").await.status != StatusCode::OK {
        assert!(
            Instant::now() < deadline,
            "not ready 10 s after the database came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    while load.join_next().await.is_some() {}

    let seen = seen.lock().unwrap().clone();
    let mut during = 0;
    for (sent, took, what, status, retry) in &seen {
        assert!(
            *took < Duration::from_secs(7),
            "{what} took {took:?} (status {status})"
        );
        match *status {
            StatusCode::OK | StatusCode::CREATED => {
                // Nothing answered from memory more than a second after the
                // database went away, until it was back.
                assert!(
                    *sent < away + Duration::from_secs(1) || *sent + *took > back,
                    "{what} answered {status} {:?} into the outage",
                    sent.duration_since(away)
                );
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(retry, "503 without Retry-After");
                during += 1;
            }
            other => panic!("{what} answered {other}"),
        }
    }
    assert!(during > 0, "no request met the outage");
    // Every acknowledged registration is there; the memory works again.
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(!acknowledged.is_empty());
    for email in &acknowledged {
        assert_eq!(app.count_users_in_db(email).await, 1, "{email} was lost");
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let (hits_before, _) = app.store().session_cache_stats();
        app.me(&user.access).await.expect_ok(StatusCode::OK);
        if app.store().session_cache_stats().0 > hits_before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the memory is not trusted again after the outage"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
