//! Overload (SPEC §7): a full hashing queue answers 503 with `Retry-After`
//! instead of waiting without bound, and token checks never wait behind it.

#[macro_use]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use reqwest::StatusCode;
use serde_json::json;
use tokio::task::JoinSet;

both_backends!(
    a_full_hashing_queue_answers_503_and_token_checks_do_not_wait,
    vars[("HASH_WORKERS", "1"), ("HASH_QUEUE", "64")],
    |app| async move {
        let email = unique_email("flood");
        let user = app.register(&email, PASSWORD).await;
        let app = Arc::new(app);
        let done = Arc::new(AtomicUsize::new(0));
        let mut flood = JoinSet::new();
        const LOGINS: usize = 150;
        for _ in 0..LOGINS {
            let (app, email, done) = (app.clone(), email.clone(), done.clone());
            flood.spawn(async move {
                let reply = app
                    .post_json("/login/json", &json!({"email": email, "password": PASSWORD}))
                    .await;
                done.fetch_add(1, Ordering::SeqCst);
                reply
            });
        }
        // While the queue is full, a protected request still answers at once.
        // (A login may be answered 200 before the first 503: kept too.)
        let mut replies = Vec::new();
        while !replies
            .iter()
            .any(|r: &Reply| r.status == StatusCode::SERVICE_UNAVAILABLE)
        {
            replies.push(flood.join_next().await.expect("a login answer").unwrap());
        }
        let me = app.me(&user.access).await;
        me.expect_ok(StatusCode::OK);
        let finished_when_me_answered = done.load(Ordering::SeqCst);
        assert!(
            finished_when_me_answered < LOGINS,
            "GET /me waited until every queued login had been hashed"
        );

        while let Some(reply) = flood.join_next().await {
            replies.push(reply.unwrap());
        }
        let ok = replies.iter().filter(|r| r.status == StatusCode::OK).count();
        let busy: Vec<_> = replies
            .iter()
            .filter(|r| r.status == StatusCode::SERVICE_UNAVAILABLE)
            .collect();
        let odd: Vec<String> = replies
            .iter()
            .filter(|r| r.status != StatusCode::OK && r.status != StatusCode::SERVICE_UNAVAILABLE)
            .map(|r| format!("{} {}", r.status, r.text()))
            .collect();
        assert!(odd.is_empty(), "only 200 or 503 expected, also got {odd:?}");
        assert_eq!(ok + busy.len(), LOGINS, "only 200 or 503 expected");
        assert!(ok >= 65, "the 1 worker + 64 queued logins succeed, got {ok}");
        for reply in busy {
            reply.expect_error(StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE");
            assert!(reply.header("retry-after").is_some(), "503 without Retry-After");
        }
    }
);
