//! Metrics (SPEC §6): requests are counted from the start, not only after
//! someone first scrapes `/metrics`. Kept in its own test binary because the
//! Prometheus recorder is process-wide: here no scrape happens before the
//! requests under test.

#[macro_use]
mod common;

use reqwest::StatusCode;

/// The two backends' runs take turns, so that each one's requests and scrape
/// are not interleaved with the other's.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

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
        // Five unauthenticated /me requests, then a scrape: in this process
        // the first run's scrape is the first one ever.
        for _ in 0..5 {
            app.get("/me")
                .await
                .expect_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
        }
        let reply = app.get_root("/metrics").await;
        assert_eq!(reply.status, StatusCode::OK);
        let counted = requests_counted(&reply.text(), "/api/auth/me", "401").unwrap_or(0.0);
        assert!(counted >= 5.0, "only {counted} of 5 requests counted");
    }
);

both_backends!(invented_methods_do_not_grow_the_metrics, |app| async move {
    let _turn = TURN.lock().await;
    for i in 0..3 {
        let method = reqwest::Method::from_bytes(format!("ZZTOP{i}").as_bytes()).unwrap();
        let reply = app
            .send(app.client.request(method, app.url("/healthz")))
            .await;
        reply.expect_error(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
    }
    let metrics = app.get_root("/metrics").await.text();
    assert!(
        !metrics.contains("ZZTOP"),
        "a client-chosen method became a label"
    );
    let other: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("portcullis_http_requests_total{"))
        .filter(|l| l.contains("route=\"/healthz\"") && l.contains("method=\"OTHER\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(other >= 3.0, "{other} requests counted as OTHER");
});

both_backends!(
    undelivered_mail_shows_in_the_pending_gauge,
    vars[
        ("SMTP_HOST", "127.0.0.1"),
        ("SMTP_PORT", "9"),
        ("SMTP_TLS", "none"),
    ],
    |app| async move {
        let _turn = TURN.lock().await;
        // The SMTP server is down: the verification mail waits in the queue.
        app.register(&common::unique_email("pending"), common::PASSWORD)
            .await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let metrics = app.get_root("/metrics").await.text();
            let pending = metrics
                .lines()
                .find(|l| l.starts_with("portcullis_mail_pending "))
                .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok());
            if pending.is_some_and(|n| n >= 1.0) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no pending mail reported: {pending:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
);
