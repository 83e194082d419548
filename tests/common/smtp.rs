//! A real SMTP server for the mail tests: Python's aiosmtpd running
//! `smtp_sink.py` (next to this file), which writes every message it
//! receives, byte for byte, to a directory, read back as [`Mail`].

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::{Mail, PYTHON_PACKAGES_HINT, free_port, python, python_program, wait_for_port};

/// The SMTP sink script: `python smtp_sink.py HOST PORT DIR [DELAY]`.
pub const SMTP_SINK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/smtp_sink.py");

/// How long a message may take to arrive.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// A real SMTP server (aiosmtpd) for one test; stopped when dropped.
pub struct SmtpServer {
    child: Child,
    stdin: Option<ChildStdin>,
    /// The port it listens on, at `127.0.0.1`.
    pub port: u16,
    dir: TempDir,
}

impl SmtpServer {
    /// Starts a server on a free port.
    pub async fn start() -> Self {
        Self::start_on(free_port()).await
    }

    /// Starts a server on `port` and waits until it accepts connections.
    pub async fn start_on(port: u16) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut child = python()
            .arg(SMTP_SINK)
            .arg("127.0.0.1")
            .arg(port.to_string())
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} for the test SMTP server: {e}; {PYTHON_PACKAGES_HINT}",
                    python_program()
                )
            });
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout");
        // The script prints "ready" once it listens (or exits with an error).
        let first_line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            line
        });
        let line = tokio::time::timeout(Duration::from_secs(20), first_line)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        if line.trim() != "ready" {
            let _ = child.kill();
            let output = child.wait_with_output().ok();
            let stderr = output
                .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                .unwrap_or_default();
            panic!(
                "the test SMTP server (aiosmtpd, run by {}) did not start on port {port}; \
                 is aiosmtpd installed? {PYTHON_PACKAGES_HINT}\n{stderr}",
                python_program()
            );
        }
        assert!(
            wait_for_port(port, Duration::from_secs(10)).await,
            "the test SMTP server does not accept connections on port {port}"
        );
        Self {
            child,
            stdin,
            port,
            dir,
        }
    }

    /// Every message received so far, in order of arrival.
    pub fn messages(&self) -> Vec<Mail> {
        read_mail_dir(self.dir.path(), "eml")
            .into_iter()
            .map(|(path, raw)| {
                let mut mail =
                    Mail::parse(&raw).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let rcpt = std::fs::read_to_string(path.with_extension("rcpt")).unwrap_or_default();
                mail.envelope_to = rcpt.lines().map(str::to_string).collect();
                mail
            })
            .collect()
    }

    /// The messages received for `to` (SMTP envelope recipient).
    pub fn messages_to(&self, to: &str) -> Vec<Mail> {
        self.messages()
            .into_iter()
            .filter(|m| m.envelope_to.iter().any(|r| r.eq_ignore_ascii_case(to)))
            .collect()
    }

    /// Waits until at least `n` messages for `to` whose subject contains
    /// `subject` have arrived; returns them all.
    pub async fn wait_for(&self, to: &str, subject: &str, n: usize) -> Vec<Mail> {
        self.wait_for_within(to, subject, n, DELIVERY_TIMEOUT).await
    }

    /// [`Self::wait_for`] with a custom timeout.
    pub async fn wait_for_within(
        &self,
        to: &str,
        subject: &str,
        n: usize,
        timeout: Duration,
    ) -> Vec<Mail> {
        let deadline = Instant::now() + timeout;
        loop {
            let found: Vec<Mail> = self
                .messages_to(to)
                .into_iter()
                .filter(|m| m.subject().contains(subject))
                .collect();
            if found.len() >= n {
                return found;
            }
            if Instant::now() >= deadline {
                let all: Vec<String> = self
                    .messages()
                    .iter()
                    .map(|m| format!("{:?} -> {:?}", m.subject(), m.envelope_to))
                    .collect();
                panic!(
                    "expected {n} message(s) to {to} with subject containing {subject:?} within {timeout:?}; \
                     got {}; all messages: {all:?}",
                    found.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `(path, contents)` of the `*.ext` files of `dir`, sorted by name.
pub fn read_mail_dir(dir: &Path, ext: &str) -> Vec<(PathBuf, String)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .filter_map(|p| {
            let raw = std::fs::read(&p).ok()?;
            Some((p, String::from_utf8(raw).expect("a message is not UTF-8")))
        })
        .collect()
}

/// The SMTP sink as a plain process, for tests that drive the binary from
/// blocking code: started with extra `args` (`--hold`, `--starttls`, ...),
/// its standard output read line by line; stopped when dropped.
pub struct SinkProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: std::sync::mpsc::Receiver<String>,
    /// The port it listens on, at `127.0.0.1`.
    pub port: u16,
    dir: TempDir,
}

impl SinkProcess {
    /// Starts the sink on a free port with `args`; returns once it is ready.
    pub fn start(args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let port = free_port();
        let mut child = python()
            .arg(SMTP_SINK)
            .arg("127.0.0.1")
            .arg(port.to_string())
            .arg(dir.path())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} for the test SMTP server: {e}; {PYTHON_PACKAGES_HINT}",
                    python_program()
                )
            });
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut sink = Self {
            child,
            stdin,
            lines,
            port,
            dir,
        };
        if sink.next_line(Duration::from_secs(20)).as_deref() != Some("ready") {
            panic!(
                "the test SMTP server (aiosmtpd, run by {}) did not start; {PYTHON_PACKAGES_HINT}",
                python_program()
            );
        }
        sink
    }

    /// The next line it prints, if one comes within `patience`.
    pub fn next_line(&mut self, patience: Duration) -> Option<String> {
        self.lines.recv_timeout(patience).ok()
    }

    /// With `--hold`: lets the message being held be accepted.
    pub fn release(&mut self) {
        use std::io::Write as _;
        let stdin = self.stdin.as_mut().expect("the sink's standard input");
        stdin.write_all(b"go\n").expect("release the held message");
        stdin.flush().expect("release the held message");
    }

    /// `(path, raw message)` of every message received, in order.
    pub fn received(&self) -> Vec<(PathBuf, String)> {
        read_mail_dir(self.dir.path(), "eml")
    }
}

impl Drop for SinkProcess {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
