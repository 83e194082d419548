//! Test harness: a real Portcullis server on a random local port, backed by a
//! fresh SQLite file or a fresh PostgreSQL database, and helpers that speak
//! HTTP to it and check the contract of SPEC §3 on every answer.
//!
//! Each integration test is written once with [`both_backends!`] and runs
//! against both databases; `db.rs` makes a test's database (PostgreSQL at
//! `PORTCULLIS_TEST_PG`, see there). The mail tests (`tests/mail_support`)
//! build on this harness too.

// Every test binary uses a different part of the harness.
#![allow(dead_code, unused_macros)]

mod app;
mod db;
mod jwt;
mod reply;

// What a test binary does not use is not a warning there.
#[allow(unused_imports)]
pub use app::{Session, TestApp};
#[allow(unused_imports)]
pub use db::{Backend, TestDb};
#[allow(unused_imports)]
pub use jwt::{b64, jwt_parts, sid_of, token_service, verify_independently};
#[allow(unused_imports)]
pub use reply::{Reply, expect_token_pair, keys};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;

/// The HMAC secret every test server signs with.
pub const SECRET: &str = "portcullis-integration-test-secret-0123456789";
/// A password that satisfies the policy (not common, long enough).
pub const PASSWORD: &str = "Tangerine-Otter-42";
/// Another good password.
pub const OTHER_PASSWORD: &str = "Marmalade-Heron-77";
/// Where the auth endpoints live by default.
pub const PREFIX: &str = "/api/auth";

/// Writes one test body and instantiates it for both backends as
/// `<name>::sqlite` and `<name>::postgres`.
///
/// ```ignore
/// both_backends!(register_then_me, |app| async move { ... });
/// both_backends!(no_grace, vars [("REFRESH_REUSE_GRACE_SECONDS", "0")], |app| async move { ... });
/// both_backends!(two_apps, backend |backend| async move {
///     let a = TestApp::spawn(backend, &[]).await; ...
/// });
/// ```
/// Attributes (e.g. `#[ignore = "BUG: …"]`) may precede the name; those
/// for one backend only are written `@sqlite #[…]` or `@postgres #[…]`.
macro_rules! both_backends {
    (
        $(#[$meta:meta])* $(@sqlite #[$sq:meta])* $(@postgres #[$pg:meta])*
        $name:ident, |$app:ident| $body:expr
    ) => {
        both_backends!(
            $(#[$meta])* $(@sqlite #[$sq])* $(@postgres #[$pg])*
            $name, vars [], |$app| $body
        );
    };
    (
        $(#[$meta:meta])* $(@sqlite #[$sq:meta])* $(@postgres #[$pg:meta])*
        $name:ident, vars [$($var:expr),* $(,)?], |$app:ident| $body:expr
    ) => {
        both_backends!(
            $(#[$meta])* $(@sqlite #[$sq])* $(@postgres #[$pg])*
            $name, backend |backend| async move {
                let $app = $crate::common::TestApp::spawn(backend, &[$($var),*]).await;
                $body.await
            }
        );
    };
    (
        $(#[$meta:meta])* $(@sqlite #[$sq:meta])* $(@postgres #[$pg:meta])*
        $name:ident, backend |$backend:ident| $body:expr
    ) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            $(#[$meta])*
            $(#[$sq])*
            async fn sqlite() {
                let $backend = $crate::common::Backend::Sqlite;
                $body.await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            $(#[$meta])*
            $(#[$pg])*
            async fn postgres() {
                let $backend = $crate::common::Backend::Postgres;
                $body.await
            }
        }
    };
}

/// A fresh, unique e-mail address.
pub fn unique_email(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{tag}.{}.{}@example.com",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

// ---- ports ---------------------------------------------------------------------

/// A TCP port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("cannot find a free port")
}

/// Waits until something accepts connections on `127.0.0.1:port`.
pub async fn wait_for_port(port: u16, timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

// ---- time ----------------------------------------------------------------------

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Parses an RFC 3339 timestamp into Unix seconds, panicking if it is not one.
#[track_caller]
pub fn rfc3339(v: &Value) -> i64 {
    let s = v.as_str().unwrap_or_else(|| panic!("not a string: {v}"));
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("not RFC 3339: {s}: {e}"))
        .unix_timestamp()
}
