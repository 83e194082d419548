//! The memory check never misses a change (SPEC §9), whatever the timing:
//! a change committed long after its feed row got its id is still seen, and
//! a feed whose ids went backwards (a restore, a failover, a sequence reset)
//! makes the instance forget what it kept. Each test changes the database
//! behind the instance's back, as another instance or a `user` command would,
//! after the instance has answered the session from memory.

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use common::*;
use reqwest::StatusCode;

/// How long an instance may take to follow a change (SPEC §9).
const WITHIN: Duration = Duration::from_secs(1);

/// Asks `app` for `/me` until it answers 403 `INACTIVE_USER` (the user was
/// deactivated in the database, as `UPDATE users` alone does, without the
/// revocations of the admin API); fails if that takes longer than
/// [`WITHIN`] from `since`, or if anything else comes back.
async fn refused_within(app: &TestApp, token: &str, since: Instant, what: &str) {
    loop {
        let reply = app.me(token).await;
        if reply.status != StatusCode::OK {
            reply.expect_error(StatusCode::FORBIDDEN, "INACTIVE_USER");
            eprintln!("{:?}: {what} seen after {:?}", app.backend, since.elapsed());
            return;
        }
        reply.expect_ok(StatusCode::OK);
        assert!(
            since.elapsed() < WITHIN,
            "{:?}: {what}: still accepted {:?} later",
            app.backend,
            since.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

both_backends!(
    a_deactivation_committed_fifteen_seconds_after_its_feed_row_is_seen_within_a_second,
    |backend: Backend| async move {
        let app = TestApp::spawn(backend, &[]).await;
        let victim = app.register(&unique_email("late"), PASSWORD).await;
        app.warm(&victim.access).await;

        // A transaction deactivates the user (its feed row gets its id now)
        // and stays open: a stalled connection, a paused process.
        let mut slow = app.store().pool().begin().await.unwrap();
        sqlx::query("UPDATE users SET is_active = FALSE WHERE id = $1")
            .bind(victim.user_id)
            .execute(&mut *slow)
            .await
            .unwrap();
        if backend == Backend::Postgres {
            // Meanwhile later feed ids commit and are read (a logout made
            // through this instance is read at once): the deactivation's id
            // is now missing below them. (SQLite lets one writer in at a
            // time, so there nothing can commit past the open transaction.)
            let bystander = app.register(&unique_email("bystander"), PASSWORD).await;
            app.auth_post_empty("/logout", &bystander.access)
                .await
                .expect_ok(StatusCode::OK);
            app.me(&bystander.access)
                .await
                .expect_error(StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");
        }
        // Longer than any patience a follower might have had for a gap.
        let hold = Duration::from_secs(15);
        let held = Instant::now();
        while held.elapsed() < hold {
            // Not committed: the user is still active, from memory.
            app.me(&victim.access).await.expect_ok(StatusCode::OK);
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        slow.commit().await.unwrap();
        let since = Instant::now();
        refused_within(&app, &victim.access, since, "a late deactivation").await;
    }
);

both_backends!(
    a_feed_whose_ids_went_back_is_noticed,
    |backend: Backend| async move {
        let app = TestApp::spawn(backend, &[]).await;
        // Some feed rows, read by the instance: its cursor is past id 1.
        for n in 0..3 {
            let other = app
                .register(&unique_email(&format!("past{n}")), PASSWORD)
                .await;
            app.auth_post_empty("/logout", &other.access)
                .await
                .expect_ok(StatusCode::OK);
        }
        let victim = app.register(&unique_email("reset"), PASSWORD).await;
        app.warm(&victim.access).await;

        // The feed is emptied and its ids start again (a restore of an
        // older backup, a failover to a standby behind, a reset sequence).
        let store = app.store();
        let pool = store.pool();
        sqlx::query("DELETE FROM change_feed")
            .execute(pool)
            .await
            .unwrap();
        let reset = match backend {
            Backend::Sqlite => "UPDATE sqlite_sequence SET seq = 0 WHERE name = 'change_feed'",
            Backend::Postgres => "ALTER TABLE change_feed ALTER COLUMN id RESTART WITH 1",
        };
        sqlx::query(reset).execute(pool).await.unwrap();
        // Then a deactivation writes feed row 1.
        sqlx::query("UPDATE users SET is_active = FALSE WHERE id = $1")
            .bind(victim.user_id)
            .execute(pool)
            .await
            .unwrap();
        let since = Instant::now();
        refused_within(&app, &victim.access, since, "a deactivation after a reset").await;
    }
);
