//! Metrics (SPEC §6): requests are counted from the start, not only after
//! someone first scrapes `/metrics`. In a test binary of its own because the
//! Prometheus recorder is process-wide: here no other test scrapes, so the
//! first run's scrape is the first one ever in the process.

#[macro_use]
mod common;

use std::sync::atomic::{AtomicU64, Ordering};

use reqwest::StatusCode;

/// The two backends' runs take turns, so that each one's requests and scrape
/// are not interleaved with the other's.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How many runs have made their requests (under [`TURN`]).
static RUNS: AtomicU64 = AtomicU64::new(0);

/// The value of the counter line for `route` and `status`, if any.
fn requests_counted(metrics: &str, route: &str, status: &str) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| l.starts_with("portcullis_http_requests_total{"))
        .filter(|l| {
            l.contains(&format!("route=\"{route}\"")) && l.contains(&format!("status=\"{status}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .reduce(|a, b| a + b)
}

both_backends!(
    requests_before_the_first_scrape_are_counted,
    |app| async move {
        let _turn = TURN.lock().await;
        // Five unauthenticated /me requests, then a scrape. Only this test
        // makes /me requests here: each run adds exactly five.
        for _ in 0..5 {
            app.get("/me")
                .await
                .expect_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
        }
        let runs = RUNS.fetch_add(1, Ordering::SeqCst) + 1;
        let reply = app.get_root("/metrics").await;
        assert_eq!(reply.status, StatusCode::OK);
        let counted = requests_counted(&reply.text(), "/api/auth/me", "401").unwrap_or(0.0);
        assert_eq!(
            counted,
            (5 * runs) as f64,
            "{counted} /me requests counted after {runs} runs of 5"
        );
    }
);
