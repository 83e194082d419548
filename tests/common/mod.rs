//! The one test harness of every test binary: a real Portcullis server
//! ([`TestApp`]) on a random local port, backed by a fresh SQLite file or a
//! fresh PostgreSQL database ([`TestDb`]), helpers that speak HTTP to it and
//! check the contract of SPEC §3 on every answer ([`Reply`]), and the real
//! parts some tests need around it: an SMTP server ([`SmtpServer`]) whose
//! messages are read as [`Mail`], and the Python interpreter of the helper
//! scripts ([`python`]).
//!
//! Each test that touches a database is written once with
//! [`both_backends!`] and runs on both; `db.rs` makes a test's database
//! (PostgreSQL at `PORTCULLIS_TEST_PG`, see there).
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | [`both_backends!`], the constants, ports, the Python interpreter, time |
//! | `app.rs` | [`TestApp`]: spawning it ([`AppBuilder`], [`MailMode`]), sending to it |
//! | `requests.rs` | the requests and flows of the API ([`Session`]) |
//! | `reply.rs` | [`Reply`] and its checks |
//! | `db.rs` | [`Backend`], [`TestDb`] (fresh or migrated, and its schema), [`pg_admin`] |
//! | `jwt.rs` | tokens looked at from outside Portcullis |
//! | `keys.rs` | [`KeyFiles`]: asymmetric key pairs in PEM files |
//! | `smtp.rs`, `smtp_sink.py` | [`SmtpServer`], [`SinkProcess`] (aiosmtpd) |
//! | `mime.rs` | [`Mail`], an RFC 5322 / MIME reader |
//! | `raw.rs` | [`stall`]: raw TCP, for requests no HTTP client sends |
//! | `process.rs` | the `portcullis` binary run as a process, its log, signals |
//! | `secrets.rs` | mailed tokens from the outbox, [`enroll_totp`], `mfa_token`s |

// Every test binary uses a different part of the harness.
#![allow(dead_code, unused_macros)]

mod app;
mod db;
mod jwt;
mod keys;
mod mime;
pub mod process;
mod raw;
mod reply;
mod requests;
mod secrets;
mod smtp;

// What a test binary does not use is not a warning there.
#[allow(unused_imports)]
pub use app::{AppBuilder, MailMode, NO_SERVER_URL, TestApp};
#[allow(unused_imports)]
pub use db::{Backend, TestDb, pg_admin};
#[allow(unused_imports)]
pub use jwt::{b64, jwt_parts, sid_of, token_service, verify_independently};
#[allow(unused_imports)]
pub use keys::KeyFiles;
#[allow(unused_imports)]
pub use mime::{Mail, Part};
#[allow(unused_imports)]
pub use raw::stall;
#[allow(unused_imports)]
pub use reply::{Reply, expect_login_pair, expect_token_pair, keys};
#[allow(unused_imports)]
pub use requests::Session;
#[allow(unused_imports)]
pub use secrets::{Enrolled, RESET_SUBJECT, VERIFY_SUBJECT, base32_decode, enroll_totp};
#[allow(unused_imports)]
pub use smtp::{DELIVERY_TIMEOUT, SMTP_SINK, SinkProcess, SmtpServer, read_mail_dir};

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;

/// The HMAC secret every test server signs with.
pub const SECRET: &str = "portcullis-integration-test-secret-0123456789-long-enough-for-HS512";
/// The `MFA_ENCRYPTION_KEY` of every test server (32 bytes, base64).
pub const MFA_KEY: &str = "cG9ydGN1bGxpcy10ZXN0LW1mYS1rZXktMzItYnl0ZXM=";
/// A password that satisfies the policy (not common, long enough): every
/// test user's first password.
pub const PASSWORD: &str = "Tangerine-Otter-42";
/// Another good password: a changed or reset password, or a wrong one.
pub const OTHER_PASSWORD: &str = "Marmalade-Heron-77";
/// `MAIL_FROM` of every test server.
pub const MAIL_FROM: &str = "Portcullis <no-reply@portcullis.test>";
/// Where the auth endpoints live by default.
pub const PREFIX: &str = "/api/auth";

/// The one way to run a test on SQLite and on PostgreSQL: writes the body
/// once and instantiates it as `<name>::sqlite` and `<name>::postgres`
/// (multi-threaded tokio tests), each on a fresh database of its own.
///
/// ```ignore
/// // A server with the test defaults (mail to the outbox):
/// both_backends!(register_then_me, |app| async move { ... });
/// // ... with settings over the defaults:
/// both_backends!(no_grace, vars[("REFRESH_REUSE_GRACE_SECONDS", "0")], |app| async move { ... });
/// // ... delivering its mail over SMTP to a real SMTP server, `app.smtp()`:
/// both_backends!(reset_by_mail, smtp, |app| async move { ... });
/// both_backends!(verification_required, smtp, vars[("REQUIRE_EMAIL_VERIFICATION", "true")], |app| async move { ... });
/// // The test builds what it needs (several servers, TestApp::builder, a TestDb):
/// both_backends!(two_apps, |backend: Backend| async move {
///     let a = TestApp::spawn(backend, &[]).await; ...
/// });
/// ```
/// Attributes (e.g. `#[ignore = "BUG: …"]`) may precede the name; those
/// for one backend only are written `@sqlite #[…]` or `@postgres #[…]`.
macro_rules! both_backends {
    (
        $(#[$meta:meta])* $(@sqlite #[$sq:meta])* $(@postgres #[$pg:meta])*
        $name:ident, |$backend:ident : Backend| $body:expr
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
    (
        $(#[$meta:meta])* $(@sqlite #[$sq:meta])* $(@postgres #[$pg:meta])*
        $name:ident, |$app:ident| $body:expr
    ) => {
        both_backends!(
            $(#[$meta])* $(@sqlite #[$sq])* $(@postgres #[$pg])*
            $name, @app(Outbox) vars[], |$app| $body
        );
    };
    (
        $(#[$meta:meta])* $(@sqlite #[$sq:meta])* $(@postgres #[$pg:meta])*
        $name:ident, vars [$($var:expr),* $(,)?], |$app:ident| $body:expr
    ) => {
        both_backends!(
            $(#[$meta])* $(@sqlite #[$sq])* $(@postgres #[$pg])*
            $name, @app(Outbox) vars[$($var),*], |$app| $body
        );
    };
    (
        $(#[$meta:meta])* $(@sqlite #[$sq:meta])* $(@postgres #[$pg:meta])*
        $name:ident, smtp, |$app:ident| $body:expr
    ) => {
        both_backends!(
            $(#[$meta])* $(@sqlite #[$sq])* $(@postgres #[$pg])*
            $name, @app(Smtp) vars[], |$app| $body
        );
    };
    (
        $(#[$meta:meta])* $(@sqlite #[$sq:meta])* $(@postgres #[$pg:meta])*
        $name:ident, smtp, vars [$($var:expr),* $(,)?], |$app:ident| $body:expr
    ) => {
        both_backends!(
            $(#[$meta])* $(@sqlite #[$sq])* $(@postgres #[$pg])*
            $name, @app(Smtp) vars[$($var),*], |$app| $body
        );
    };
    (
        $(#[$meta:meta])* $(@sqlite #[$sq:meta])* $(@postgres #[$pg:meta])*
        $name:ident, @app($mail:ident) vars [$($var:expr),*], |$app:ident| $body:expr
    ) => {
        both_backends!(
            $(#[$meta])* $(@sqlite #[$sq])* $(@postgres #[$pg])*
            $name, |backend: Backend| async move {
                let $app = $crate::common::TestApp::builder(backend)
                    .mail($crate::common::MailMode::$mail)
                    .vars(&[$($var),*])
                    .spawn()
                    .await;
                $body.await
            }
        );
    };
}

// ---- the Python helpers ------------------------------------------------------------

/// The variable that names the Python interpreter of the helper scripts.
pub const PYTHON_VAR: &str = "PORTCULLIS_TEST_PYTHON";

/// What to do when the helpers' Python packages are missing.
pub const PYTHON_PACKAGES_HINT: &str = "run the tests with `scripts/test`, which installs \
     aiosmtpd and PyJWT (with cryptography) into a virtual environment under \
     target/ and points PORTCULLIS_TEST_PYTHON at it, or install them for python3 \
     yourself: `python3 -m pip install 'aiosmtpd>=1.4' 'pyjwt[crypto]>=2.8'`";

/// The Python 3 interpreter that runs the helper scripts (the SMTP server,
/// PyJWT): `$PORTCULLIS_TEST_PYTHON` when set (`scripts/test` sets it to its
/// virtual environment's), else `python3` from the `PATH`.
pub fn python_program() -> String {
    std::env::var(PYTHON_VAR)
        .ok()
        .filter(|p| !p.trim().is_empty())
        .unwrap_or_else(|| "python3".to_string())
}

/// A command running [`python_program`].
pub fn python() -> Command {
    Command::new(python_program())
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
