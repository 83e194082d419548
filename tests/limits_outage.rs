//! Redis going away and coming back (SPEC §2 `REDIS_URL`): requests keep
//! being answered with limits counted in memory, the metrics say so, and the
//! instance goes back to Redis when it answers again.
//!
//! Each test starts its own `redis-server` on a free port and kills it. Kept
//! in its own test binary because the backend gauge is process-wide: the two
//! runs take turns, and nothing else here touches it.

#[macro_use]
mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{PASSWORD, Reply, TestApp, unique_email, wait_for_port};
use portcullis::limits::Backend;
use reqwest::StatusCode;

/// The two backends' runs take turns (the gauge is process-wide).
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A throwaway `redis-server` on `port`, without persistence; killed on drop.
struct RedisServer {
    child: Child,
}

impl RedisServer {
    async fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server (apt-get install redis-server)");
        assert!(
            wait_for_port(port, Duration::from_secs(10)).await,
            "redis-server did not listen on {port}"
        );
        Self { child }
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of a metric line starting with `prefix` (`name{labels}`).
async fn metric(app: &TestApp, prefix: &str) -> Option<f64> {
    app.get_root("/metrics")
        .await
        .text()
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// A wrong login, timed; never a 5xx.
async fn attempt(app: &TestApp) -> (Reply, Duration) {
    let started = Instant::now();
    let reply = app.login_json(&unique_email("outage"), PASSWORD).await;
    let took = started.elapsed();
    assert!(
        !reply.status.is_server_error(),
        "{}: {}",
        reply.status,
        reply.text()
    );
    (reply, took)
}

both_backends!(
    redis_outage_falls_back_to_memory_and_back,
    |backend: Backend| async move {
        let _turn = TURN.lock().await;
        let port = common::free_port();
        let redis = RedisServer::start(port).await;
        let url = format!("redis://127.0.0.1:{port}");
        let app = TestApp::spawn(
            backend,
            &[
                ("RATE_LIMIT_ENABLED", "true"),
                ("RATE_LIMIT_LOGIN_PER_IP", "3/minute"),
                ("REDIS_URL", &url),
            ],
        )
        .await;
        let limits = &app.portcullis.flows().limits;
        assert_eq!(limits.backend(), Backend::Redis);
        assert_eq!(
            metric(&app, "portcullis_rate_limit_backend{backend=\"redis\"}").await,
            Some(1.0)
        );
        let (reply, _) = attempt(&app).await;
        reply.expect_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
        let fallbacks = metric(&app, "portcullis_rate_limit_fallbacks_total")
            .await
            .unwrap_or(0.0);

        redis.kill();
        // Every request is answered, at once, with the limit counted in
        // memory (which starts afresh): three attempts, then 429.
        for _ in 0..3 {
            let (reply, took) = attempt(&app).await;
            reply.expect_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
            assert!(took < Duration::from_secs(1), "a request waited {took:?}");
        }
        let (reply, took) = attempt(&app).await;
        reply.expect_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
        assert!(took < Duration::from_secs(1), "a request waited {took:?}");
        assert_eq!(limits.backend(), Backend::Memory);
        assert_eq!(
            metric(&app, "portcullis_rate_limit_backend{backend=\"memory\"}").await,
            Some(1.0)
        );
        assert_eq!(
            metric(&app, "portcullis_rate_limit_backend{backend=\"redis\"}").await,
            Some(0.0)
        );
        // The fallback is counted (once per outage; the counter is process-wide).
        let deadline = Instant::now() + Duration::from_secs(5);
        while metric(&app, "portcullis_rate_limit_fallbacks_total")
            .await
            .unwrap_or(0.0)
            < fallbacks + 1.0
        {
            assert!(Instant::now() < deadline, "the fallback was not counted");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // Redis comes back on the same port: the instance returns to it by
        // itself, and counts there again (a fresh Redis: a fresh allowance).
        let redis = RedisServer::start(port).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while limits.backend() != Backend::Redis {
            assert!(Instant::now() < deadline, "did not go back to Redis");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            metric(&app, "portcullis_rate_limit_backend{backend=\"redis\"}").await,
            Some(1.0)
        );
        for _ in 0..3 {
            let (reply, _) = attempt(&app).await;
            reply.expect_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
        }
        let (reply, _) = attempt(&app).await;
        reply.expect_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
        let client = redis::Client::open(url.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("portcullis:rl:login_per_ip:*")
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            keys.len(),
            1,
            "the counter is not in the new Redis: {keys:?}"
        );
        drop(redis);
    }
);

both_backends!(
    an_unreachable_redis_at_start_is_no_obstacle,
    |backend: Backend| async move {
        let _turn = TURN.lock().await;
        let port = common::free_port();
        let url = format!("redis://127.0.0.1:{port}");
        let started = Instant::now();
        let app = TestApp::spawn(
            backend,
            &[
                ("RATE_LIMIT_ENABLED", "true"),
                ("RATE_LIMIT_LOGIN_PER_IP", "2/minute"),
                ("REDIS_URL", &url),
            ],
        )
        .await;
        assert!(started.elapsed() < Duration::from_secs(10));
        let limits = &app.portcullis.flows().limits;
        assert_eq!(limits.backend(), Backend::Memory);
        for _ in 0..2 {
            attempt(&app)
                .await
                .0
                .expect_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
        }
        attempt(&app)
            .await
            .0
            .expect_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
        // Redis appears: the instance starts sharing its counters.
        let _redis = RedisServer::start(port).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while limits.backend() != Backend::Redis {
            assert!(Instant::now() < deadline, "never connected to Redis");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
);
