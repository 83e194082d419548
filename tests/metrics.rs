//! Metrics (SPEC §6): what the counters and gauges say. The Prometheus
//! recorder is process-wide, so each check reads a label only its own test
//! produces, as an exact difference, and each test starts its server only
//! once it holds [`TURN`]: no other server of this binary then runs (an idle
//! server's mail worker would set `portcullis_mail_pending` to its own 0). (Counting from before
//! the first scrape is `tests/metrics_first_scrape.rs`.)

#[macro_use]
mod common;

use reqwest::StatusCode;

/// The tests take turns, so that one server's requests, gauges and scrapes
/// are not interleaved with another's.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The requests to `/healthz` counted with the method `OTHER`.
async fn other_methods_on_healthz(app: &common::TestApp) -> f64 {
    app.get_root("/metrics")
        .await
        .text()
        .lines()
        .filter(|l| l.starts_with("portcullis_http_requests_total{"))
        .filter(|l| l.contains("route=\"/healthz\"") && l.contains("method=\"OTHER\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

both_backends!(
    invented_methods_do_not_grow_the_metrics,
    |backend: Backend| async move {
        let _turn = TURN.lock().await;
        let app = common::TestApp::spawn(backend, &[]).await;
        // Only this test sends invented methods: the count moves by its three.
        let before = other_methods_on_healthz(&app).await;
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
        let after = other_methods_on_healthz(&app).await;
        assert_eq!(
            after - before,
            3.0,
            "requests counted as OTHER: {before} → {after}"
        );
    }
);

both_backends!(
    undelivered_mail_shows_in_the_pending_gauge,
    |backend: Backend| async move {
        let _turn = TURN.lock().await;
        let app = common::TestApp::spawn(
            backend,
            &[
                ("SMTP_HOST", "127.0.0.1"),
                ("SMTP_PORT", "9"),
                ("SMTP_TLS", "none"),
            ],
        )
        .await;
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
