//! The `portcullis` binary as an operator runs it: zero configuration, bad
//! configuration, `.env`, `gen-secret`, `migrate`, stalled clients (stopping it:
//! `tests/shutdown.rs`).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::process::{command, me_status, register, start, terminate};

#[test]
fn zero_configuration_start_restart_and_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (child, addr) = start(dir.path(), &[]);
    assert!(dir.path().join("data/portcullis.db").exists());
    let key = dir.path().join("data/secret.key");
    let secret = std::fs::read_to_string(&key).unwrap();
    let body = register(&addr, "first@example.com");
    assert_eq!(body["success"], true, "{body}");
    let token = body["data"]["access_token"].as_str().unwrap().to_string();
    assert_eq!(me_status(&addr, &token), "200");
    // SPEC §1: what the server made under data/ is its user's alone, the
    // verification mail in the outbox (a live link) included.
    let eml = wait_for_eml(&dir.path().join("data/outbox"));
    let data = dir.path().join("data");
    expect_private(&[
        (data.clone(), 0o700),
        (data.join("secret.key"), 0o600),
        (data.join("portcullis.db"), 0o600),
        (data.join("portcullis.db-wal"), 0o600),
        (data.join("portcullis.db-shm"), 0o600),
        (data.join("outbox"), 0o700),
        (eml, 0o600),
    ]);
    assert_eq!(terminate(child).code(), Some(0));

    // The generated secret and the data survive a restart.
    let (child, addr) = start(dir.path(), &[]);
    assert_eq!(std::fs::read_to_string(&key).unwrap(), secret);
    assert_eq!(me_status(&addr, &token), "200");
    assert_eq!(terminate(child).code(), Some(0));
}

/// The first `.eml` file to appear in `outbox` (waits up to 10 s).
fn wait_for_eml(outbox: &Path) -> std::path::PathBuf {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = std::fs::read_dir(outbox).ok().and_then(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|x| x == "eml"))
        });
        if let Some(path) = found {
            return path;
        }
        assert!(Instant::now() < deadline, "no mail in {}", outbox.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Checks the permission bits of each path (the test runs under a umask of
/// 022 or looser, so a default mode would show as 0644 / 0755).
#[track_caller]
fn expect_private(paths: &[(std::path::PathBuf, u32)]) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let wrong: Vec<String> = paths
            .iter()
            .filter_map(|(path, want)| {
                let mode = std::fs::metadata(path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                    .permissions()
                    .mode()
                    & 0o777;
                (mode != *want).then(|| format!("{} is {mode:o}, not {want:o}", path.display()))
            })
            .collect();
        assert!(wrong.is_empty(), "{wrong:#?}");
    }
}

#[test]
fn bad_configuration_exits_2_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    for (var, value) in [
        ("PORT", "eighty"),
        ("ACCESS_TOKEN_EXPIRE_MINUTES", "-5"),
        ("ALGORITHM", "none"),
        ("AUTH_PASSWORD_HASHER", "md5"),
        ("CORS_ORIGINS", "*, https://app.example.com"),
        ("CORS_ORIGINS", "https://app.example.com/login"),
        ("MAIL_FROM", "not an address"),
        ("APP_URL", "http://"),
        ("METRICS_ADDR", "localhost:9464"),
        ("METRICS_ADDR", "9464"),
    ] {
        let out = command(dir.path())
            .arg("serve")
            .env(var, value)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}={value}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(var.trim_start_matches("AUTH_")), "{stderr}");
    }
    let out = command(dir.path())
        .env("PORTCULLIS_ENV", "production")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("SECRET_KEY")
    );
    assert!(
        !dir.path().join("data/secret.key").exists(),
        "production must not generate a secret"
    );
}

#[test]
fn bad_page_settings_exit_2_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    for (vars, named) in [
        (
            &[("PAGES_ACCENT_COLOR", "red")][..],
            &["PAGES_ACCENT_COLOR"][..],
        ),
        (&[("PAGES_ACCENT_COLOR", "#12345")], &["PAGES_ACCENT_COLOR"]),
        (
            &[("PAGES_LOGO_URL", "//evil.example/logo.png")],
            &["PAGES_LOGO_URL"],
        ),
        (
            &[("PAGES_LOGO_URL", "https://evil.example/l.png")],
            &["PAGES_LOGO_URL"],
        ),
        (
            &[("REDIRECT_ORIGINS", "https://app.example.com/x")],
            &["REDIRECT_ORIGINS"],
        ),
        (
            &[("REGISTRATION_ENABLED", "maybe")],
            &["REGISTRATION_ENABLED"],
        ),
        (&[("PAGES_ENABLED", "maybe")], &["PAGES_ENABLED"]),
        // The pages keep the session in the refresh cookie: both named.
        (
            &[("REFRESH_COOKIE", "false")],
            &["PAGES_ENABLED", "REFRESH_COOKIE"],
        ),
        (
            &[("PAGES_ENABLED", "true"), ("REFRESH_COOKIE", "false")],
            &["PAGES_ENABLED", "REFRESH_COOKIE"],
        ),
    ] {
        let mut cmd = command(dir.path());
        cmd.arg("serve");
        for (var, value) in vars {
            cmd.env(var, value);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{vars:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        for name in named {
            assert!(stderr.contains(name), "{vars:?}: {stderr}");
        }
    }
    // Without the pages, no cookie is needed.
    let (child, _addr) = start(
        dir.path(),
        &[("PAGES_ENABLED", "false"), ("REFRESH_COOKIE", "false")],
    );
    assert_eq!(terminate(child).code(), Some(0));
}

/// `GET http://{addr}{path}`: the status and the body.
fn get(addr: &str, path: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args([
            "-s",
            "-w",
            "\n%{http_code}",
            &format!("http://{addr}{path}"),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    (status.parse().unwrap_or(0), body.to_string())
}

/// Checks a 404 `NOT_FOUND` in the envelope.
#[track_caller]
fn expect_not_found((status, body): (u16, String)) {
    assert_eq!(status, 404, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).expect("a JSON body");
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["error"]["code"], "NOT_FOUND", "{body}");
}

/// Checks a Prometheus scrape that counted a request to `/healthz`.
#[track_caller]
fn expect_metrics((status, body): (u16, String)) {
    assert_eq!(status, 200, "{body}");
    assert!(
        body.lines()
            .any(|l| l.starts_with("portcullis_http_requests_total{")
                && l.contains("route=\"/healthz\"")),
        "no request counted in:\n{body}"
    );
}

#[test]
fn metrics_addr_serves_metrics_alone_beside_the_main_listener() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = format!("127.0.0.1:{}", common::free_port());
    let (child, addr) = start(dir.path(), &[("METRICS_ADDR", &metrics)]);
    assert_eq!(get(&addr, "/healthz").0, 200);
    // Development: /metrics on both listeners.
    expect_metrics(get(&addr, "/metrics"));
    expect_metrics(get(&metrics, "/metrics"));
    // The metrics listener serves nothing else.
    for path in ["/healthz", "/api/auth/me", "/docs", "/metrics/x"] {
        expect_not_found(get(&metrics, path));
    }
    // One signal stops both.
    assert_eq!(terminate(child).code(), Some(0));
    assert!(std::net::TcpStream::connect(&metrics).is_err());
}

#[test]
fn in_production_metrics_are_served_only_on_metrics_addr() {
    let dir = tempfile::tempdir().unwrap();
    let production = [
        ("PORTCULLIS_ENV", "production"),
        ("SECRET_KEY", "production-test-secret-7f3a9c2e5b8d1f4a6c0e"),
        (
            "MFA_ENCRYPTION_KEY",
            "cG9ydGN1bGxpcy10ZXN0LW1mYS1rZXktMzItYnl0ZXM=",
        ),
    ];
    // Without METRICS_ADDR, nowhere.
    let (child, addr) = start(dir.path(), &production);
    assert_eq!(get(&addr, "/healthz").0, 200);
    expect_not_found(get(&addr, "/metrics"));
    assert_eq!(terminate(child).code(), Some(0));

    let metrics = format!("127.0.0.1:{}", common::free_port());
    let mut envs = production.to_vec();
    envs.push(("METRICS_ADDR", &metrics));
    let (child, addr) = start(dir.path(), &envs);
    assert_eq!(get(&addr, "/healthz").0, 200);
    expect_not_found(get(&addr, "/metrics"));
    expect_metrics(get(&metrics, "/metrics"));
    expect_not_found(get(&metrics, "/api/auth/me"));
    assert_eq!(terminate(child).code(), Some(0));
}

#[test]
fn dotenv_is_read_and_the_environment_wins() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "AUTH_ACCESS_TOKEN_EXPIRE_MINUTES=5\nREFRESH_TOKEN_EXPIRE_DAYS=oops\n",
    )
    .unwrap();
    // The bad value in .env is overridden by the environment.
    let (child, addr) = start(dir.path(), &[("REFRESH_TOKEN_EXPIRE_DAYS", "3")]);
    let body = register(&addr, "env@example.com");
    assert_eq!(body["data"]["expires_in"], 300, "{body}");
    assert_eq!(terminate(child).code(), Some(0));
}

#[test]
fn the_environment_wins_whichever_spelling_each_uses() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), "ACCESS_TOKEN_EXPIRE_MINUTES=5\n").unwrap();
    // The prefixed name in the environment beats the plain name in .env.
    let (child, addr) = start(dir.path(), &[("AUTH_ACCESS_TOKEN_EXPIRE_MINUTES", "7")]);
    let body = register(&addr, "prefixed@example.com");
    assert_eq!(body["data"]["expires_in"], 420, "{body}");
    assert_eq!(terminate(child).code(), Some(0));
}

#[test]
fn gen_secret_prints_a_long_random_secret() {
    let dir = tempfile::tempdir().unwrap();
    let a = command(dir.path()).arg("gen-secret").output().unwrap();
    let b = command(dir.path()).arg("gen-secret").output().unwrap();
    let (a, b) = (
        String::from_utf8(a.stdout).unwrap(),
        String::from_utf8(b.stdout).unwrap(),
    );
    assert!(a.trim().len() >= 32);
    assert_ne!(a, b);
}

#[test]
fn migrate_creates_the_database_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let out = command(dir.path()).arg("migrate").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The schema is there: every table the migrations create, and every
    // migration recorded as applied.
    let migrations = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    let mut versions = Vec::new();
    let mut tables = Vec::new();
    for entry in std::fs::read_dir(&migrations).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        versions.push(name.split('_').next().unwrap().parse::<i64>().unwrap());
        let sql = std::fs::read_to_string(&path).unwrap();
        for part in sql.split("CREATE TABLE ").skip(1) {
            let table: String = part
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            tables.push(table);
        }
    }
    versions.sort();
    tables.sort();
    assert!(versions.len() >= 5 && tables.contains(&"users".to_string()));
    let read = common::python()
        .args([
            "-c",
            "import sqlite3, sys\n\
             c = sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', uri=True)\n\
             print(' '.join(sorted(r[0] for r in c.execute(\n\
                 \"SELECT name FROM sqlite_master WHERE type = 'table' \"\n\
                 \"AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations'\"))))\n\
             print(' '.join(str(r[0]) for r in c.execute(\n\
                 'SELECT version FROM _sqlx_migrations WHERE success ORDER BY version')))\n",
        ])
        .arg(dir.path().join("data/portcullis.db"))
        .output()
        .expect("run python");
    assert!(
        read.status.success(),
        "{}",
        String::from_utf8_lossy(&read.stderr)
    );
    let read = String::from_utf8(read.stdout).unwrap();
    let mut lines = read.lines();
    let found: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    let applied: Vec<i64> = lines
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(found, tables, "tables in the database");
    assert_eq!(applied, versions, "migrations recorded as applied");
}

#[test]
fn stalled_clients_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let (child, addr) = start(dir.path(), &[]);
    let patience = Duration::from_secs(40);

    // Slowloris: a request head that never ends. The connection is closed
    // after the header deadline (10 s), without an answer.
    let head_addr = addr.clone();
    let head = std::thread::spawn(move || {
        common::stall(
            &head_addr,
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n",
            patience,
        )
    });
    // A body that never arrives: 408 in the envelope after 20 s.
    let body = common::stall(
        &addr,
        b"POST /api/auth/login/json HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"email\"",
        patience,
    );
    let head = head.join().unwrap();

    assert!(
        head.0.is_empty(),
        "an unfinished head got an answer: {}",
        head.0
    );
    assert!(
        head.1 >= Duration::from_secs(9) && head.1 < Duration::from_secs(20),
        "an unfinished head was held {:?}",
        head.1
    );
    assert!(
        body.0.starts_with("HTTP/1.1 408"),
        "a stalled body got: {}",
        body.0
    );
    assert!(body.0.contains(r#""code":"REQUEST_TIMEOUT""#), "{}", body.0);
    assert!(
        body.1 >= Duration::from_secs(19) && body.1 < Duration::from_secs(35),
        "a stalled body was held {:?}",
        body.1
    );

    // The server is still fine, and still stops cleanly.
    assert_eq!(register(&addr, "after@example.com")["success"], true);
    assert_eq!(terminate(child).code(), Some(0));
}
