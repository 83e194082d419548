//! Stopping the `portcullis` binary: SIGTERM lets the work in flight finish
//! (a request, a mail delivery) and exits 0; SIGKILL loses nothing that was
//! acknowledged. Each signal is sent only once the work is shown to be in
//! flight, and the work is let to finish only once the server has shown it
//! is shutting down.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::SinkProcess;
use common::process::{
    me_status, register, sigterm, start, start_logged, terminate, wait_exit, wait_for_log,
};

/// What the server logs when SIGTERM arrives.
const SHUTTING_DOWN: &str = "shutting down: finishing requests in flight";
/// What it logs once the listeners are closed and background work drains.
const DRAINING_WORK: &str = "shutting down: waiting for background work";

#[test]
fn sigterm_lets_a_request_in_flight_finish() {
    let dir = tempfile::tempdir().unwrap();
    let (child, addr, log) = start_logged(dir.path(), &[]);
    let body = r#"{"email":"slow@example.com","password":"tangerine-otter-42"}"#;
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "POST /api/auth/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    // The server asks for the body once the request is being handled.
    let interim = read_head(&mut stream);
    assert!(interim.starts_with("HTTP/1.1 100 "), "got {interim:?}");

    sigterm(&child);
    wait_for_log(&log, SHUTTING_DOWN, Duration::from_secs(15));
    // Only now the body: the request in flight is still answered.
    stream.write_all(body.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 201 "), "{answer}");
    assert!(answer.contains(r#""success":true"#), "{answer}");
    assert_eq!(wait_exit(child).code(), Some(0));
}

/// Reads a response head (up to the blank line) byte by byte, so that
/// nothing after it is consumed.
fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

#[test]
fn sigterm_lets_a_mail_delivery_in_flight_finish() {
    let dir = tempfile::tempdir().unwrap();
    // A real SMTP server that holds each message until the test lets it go.
    let mut smtp = SinkProcess::start(&["--hold"]);
    let port = smtp.port.to_string();
    let (mut child, addr, log) = start_logged(
        dir.path(),
        &[
            ("SMTP_HOST", "127.0.0.1"),
            ("SMTP_PORT", &port),
            ("SMTP_TLS", "none"),
        ],
    );
    assert_eq!(register(&addr, "flight@example.com")["success"], true);
    // The verification mail is being sent: its DATA has reached the server.
    assert_eq!(
        smtp.next_line(Duration::from_secs(30)).as_deref(),
        Some("data"),
        "the verification mail never reached the SMTP server"
    );

    sigterm(&child);
    wait_for_log(&log, DRAINING_WORK, Duration::from_secs(15));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the server exited with the delivery in flight"
    );
    // Only now is the message accepted: the delivery was not cut off.
    smtp.release();
    assert_eq!(wait_exit(child).code(), Some(0));
    wait_for_log(&log, "mail sent over SMTP", Duration::from_secs(5));
    let received = smtp.received();
    assert_eq!(received.len(), 1);
    assert!(received[0].1.contains("flight@example.com"));
}

#[test]
fn sigkill_loses_no_acknowledged_write_and_no_queued_mail() {
    let dir = tempfile::tempdir().unwrap();
    // The SMTP server is down, so every verification mail waits in the queue.
    let smtp_down = [
        ("SMTP_HOST", "127.0.0.1"),
        ("SMTP_PORT", "9"),
        ("SMTP_TLS", "none"),
    ];
    let (mut child, addr) = start(dir.path(), &smtp_down);
    let emails: Vec<String> = (0..8).map(|i| format!("kill{i}@example.com")).collect();
    let tokens: Vec<String> = emails
        .iter()
        .map(|email| {
            let body = register(&addr, email);
            assert_eq!(body["success"], true, "{body}");
            body["data"]["access_token"].as_str().unwrap().to_string()
        })
        .collect();

    // Once the worker has recorded a failed delivery for every message (the
    // refused connection is instant), the mail waits in the queue rather
    // than in a claim; then SIGKILL: no drain, no clean close.
    let db = dir.path().join("data/portcullis.db");
    let deadline = Instant::now() + Duration::from_secs(30);
    while failed_deliveries(&db) < emails.len() {
        assert!(
            Instant::now() < deadline,
            "the worker did not try every message"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // Restarted with the outbox instead of SMTP: every acknowledged account
    // and session is there, and every queued mail is delivered (a message
    // the killed process had just claimed waits out its 60 s reservation).
    let (child, addr) = start(dir.path(), &[]);
    for token in &tokens {
        assert_eq!(me_status(&addr, token), "200");
    }
    let outbox = dir.path().join("data/outbox");
    let deadline = Instant::now() + Duration::from_secs(90);
    let missing = loop {
        let delivered: String = common::read_mail_dir(&outbox, "eml")
            .into_iter()
            .map(|(_, raw)| raw)
            .collect();
        let missing: Vec<&String> = emails
            .iter()
            .filter(|email| !delivered.contains(&format!("To: {email}")))
            .collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing.into_iter().cloned().collect::<Vec<_>>();
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    assert!(missing.is_empty(), "mail lost for {missing:?}");
    assert_eq!(terminate(child).code(), Some(0));
}

/// How many queued messages have a failed delivery recorded and are not
/// claimed now (read-only, beside the running server).
fn failed_deliveries(db: &std::path::Path) -> usize {
    let read = common::python()
        .args([
            "-c",
            "import sqlite3, sys\n\
             c = sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', uri=True)\n\
             print(c.execute('SELECT count(*) FROM mail_queue \
             WHERE last_error IS NOT NULL AND locked_until = 0').fetchone()[0])\n",
        ])
        .arg(db)
        .output()
        .expect("run python");
    String::from_utf8_lossy(&read.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}
