//! Mail delivered over TLS by the `portcullis` binary to a real SMTP server
//! (aiosmtpd) whose certificate a private CA signed, trusted through
//! `SMTP_CA_FILE`: over STARTTLS and over implicit TLS; a certificate from
//! another CA is refused and the message stays queued for a retry.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::SinkProcess;
use common::process::{command, register, start_logged, terminate, wait_for_log};

/// The certificate-making script (Python `cryptography`).
const MAKE_CERTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/make_certs.py");

/// A password no log line or stored error may show.
const SMTP_PASSWORD: &str = "smtp-secret-5f1e9a7c3b";

/// A private CA in `dir/<ca_name>`: `ca.pem`, `server.pem`, `server.key`.
fn make_certs(dir: &Path, ca_name: &str) -> PathBuf {
    let out = dir.join(ca_name);
    let made = common::python()
        .arg(MAKE_CERTS)
        .arg(&out)
        .arg(ca_name)
        .output()
        .expect("run python");
    assert!(
        made.status.success(),
        "make_certs.py failed ({}): {}",
        common::PYTHON_PACKAGES_HINT,
        String::from_utf8_lossy(&made.stderr)
    );
    out
}

/// An SMTP server speaking `mode` (`--starttls` or `--tls`) with the
/// server certificate of `certs`.
fn tls_sink(mode: &str, certs: &Path) -> SinkProcess {
    let cert = certs.join("server.pem");
    let key = certs.join("server.key");
    SinkProcess::start(&[
        mode,
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ])
}

/// Registers an account with the binary delivering to `sink` over `tls`
/// (`starttls` or `tls`), trusting `ca`; waits until the worker logs
/// `outcome`, stops the server, and returns its log up to there.
fn deliver(
    dir: &Path,
    sink: &SinkProcess,
    tls: &str,
    ca: &Path,
    extra: &[(&str, &str)],
    outcome: &str,
) -> Vec<String> {
    let port = sink.port.to_string();
    let mut envs = vec![
        ("SMTP_HOST", "127.0.0.1"),
        ("SMTP_PORT", port.as_str()),
        ("SMTP_TLS", tls),
        ("SMTP_CA_FILE", ca.to_str().unwrap()),
    ];
    envs.extend_from_slice(extra);
    let (child, addr, log) = start_logged(dir, &envs);
    let body = register(&addr, "tls@example.com");
    assert_eq!(body["success"], true, "{body}");
    let lines = wait_for_log(&log, outcome, Duration::from_secs(30));
    assert_eq!(terminate(child).code(), Some(0));
    lines
}

#[test]
fn mail_is_delivered_over_starttls_to_a_server_a_private_ca_signed() {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_certs(dir.path(), "Portcullis Test CA");
    let sink = tls_sink("--starttls", &certs);
    deliver(
        dir.path(),
        &sink,
        "starttls",
        &certs.join("ca.pem"),
        &[],
        "mail sent over SMTP",
    );
    let received = sink.received();
    assert_eq!(received.len(), 1, "{received:?}");
    assert!(received[0].1.contains("tls@example.com"));
}

#[test]
fn mail_is_delivered_over_implicit_tls_to_a_server_a_private_ca_signed() {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_certs(dir.path(), "Portcullis Test CA");
    let sink = tls_sink("--tls", &certs);
    deliver(
        dir.path(),
        &sink,
        "tls",
        &certs.join("ca.pem"),
        &[],
        "mail sent over SMTP",
    );
    let received = sink.received();
    assert_eq!(received.len(), 1, "{received:?}");
    assert!(received[0].1.contains("tls@example.com"));
}

#[test]
fn a_certificate_from_another_ca_is_refused_and_the_mail_stays_queued() {
    for (mode, tls) in [("--starttls", "starttls"), ("--tls", "tls")] {
        let dir = tempfile::tempdir().unwrap();
        let trusted = make_certs(dir.path(), "Portcullis Test CA");
        let rogue = make_certs(dir.path(), "Rogue CA");
        let sink = tls_sink(mode, &rogue);
        let log = deliver(
            dir.path(),
            &sink,
            tls,
            &trusted.join("ca.pem"),
            &[
                ("SMTP_USERNAME", "portcullis"),
                ("SMTP_PASSWORD", SMTP_PASSWORD),
            ],
            "mail delivery failed; will retry",
        );
        assert!(sink.received().is_empty(), "{tls}: mail went out");
        let failure = log.last().unwrap();
        assert!(
            failure.to_ascii_lowercase().contains("certificate"),
            "{tls}: the failure does not say why: {failure}"
        );
        assert!(
            !log.iter().any(|line| line.contains(SMTP_PASSWORD)),
            "{tls}: the SMTP password was logged:\n{}",
            log.join("\n")
        );
        // Still queued, for a retry: not sent, one attempt, the reason kept
        // (without the password).
        let row = queued(&dir.path().join("data/portcullis.db"));
        assert_eq!(row[0], "unsent", "{tls}: {row:?}");
        assert_eq!(row[1], "1", "{tls}: {row:?}");
        assert!(row[2].contains("certificate"), "{tls}: {row:?}");
        assert!(!row[2].contains(SMTP_PASSWORD), "{tls}: {row:?}");
    }
}

/// `[sent or unsent, attempts, last_error]` of the one queued message.
fn queued(db: &Path) -> Vec<String> {
    let read = common::python()
        .args([
            "-c",
            "import sqlite3, sys\n\
             c = sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', uri=True)\n\
             rows = c.execute('SELECT sent_at, attempts, last_error FROM mail_queue').fetchall()\n\
             assert len(rows) == 1, rows\n\
             sent, attempts, error = rows[0]\n\
             print('unsent' if sent is None else 'sent')\n\
             print(attempts)\n\
             print((error or '').replace('\\n', ' '))\n",
        ])
        .arg(db)
        .output()
        .expect("run python");
    assert!(
        read.status.success(),
        "{}",
        String::from_utf8_lossy(&read.stderr)
    );
    String::from_utf8(read.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_bad_smtp_ca_file_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "not a certificate\n").unwrap();
    let missing = dir.path().join("missing.pem");
    for (tls, file) in [
        ("starttls", &not_pem),
        ("tls", &missing),
        ("none", &not_pem),
    ] {
        let out = command(dir.path())
            .arg("serve")
            .env("SMTP_HOST", "127.0.0.1")
            .env("SMTP_TLS", tls)
            .env("SMTP_CA_FILE", file)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{tls} {}", file.display());
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.contains("SMTP_CA_FILE"), "{stderr}");
    }
}
