//! Harness for the mail tests, with real parts only:
//!
//! - a real SMTP server (Python's aiosmtpd, `smtp_sink.py` next to this file)
//!   that writes every message it receives, byte for byte, to a directory;
//! - a Portcullis server from `tests/common` (built in-process from
//!   `Config::from_vars` and served by axum on `127.0.0.1:0`, with its own
//!   base URL as `APP_URL`) on a database from `tests/common` (SQLite or a
//!   fresh PostgreSQL database per test), configured to send its mail here;
//! - a small RFC 5322 / MIME reader for the delivered messages.
//!
//! A test binary using it declares both modules: `mod common; mod mail_support;`.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

pub use crate::common::{Backend, TestDb, free_port, wait_for_port};

/// A password the policy accepts.
pub const PASSWORD: &str = "Tall-Granite-Lantern-42";
/// Another password the policy accepts.
pub const NEW_PASSWORD: &str = "Quiet-Copper-Harbour-77";
/// `MAIL_FROM` of every test server.
pub const MAIL_FROM: &str = "Portcullis <no-reply@portcullis.test>";
/// How long a message may take to arrive.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

// ---- SMTP server -----------------------------------------------------------

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
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mail_support/smtp_sink.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg("127.0.0.1")
            .arg(port.to_string())
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run python3 for the test SMTP server (install Python 3 and `python3 -m pip install aiosmtpd`): {e}")
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
                "the test SMTP server (aiosmtpd) did not start on port {port}; \
                 is it installed (`python3 -m pip install aiosmtpd`)?\n{stderr}"
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

// ---- RFC 5322 / MIME reader --------------------------------------------------

/// One part of a multipart message, its body decoded.
#[derive(Debug, Clone)]
pub struct Part {
    /// The part's headers, unfolded.
    pub headers: Vec<(String, String)>,
    /// `type/subtype`, lower case.
    pub mime_type: String,
    /// The body after undoing its transfer encoding.
    pub body: String,
}

/// A delivered message.
#[derive(Debug, Clone)]
pub struct Mail {
    /// The message as delivered.
    pub raw: String,
    /// Top-level headers, unfolded, in order.
    pub headers: Vec<(String, String)>,
    /// `type/subtype` of the message, lower case.
    pub mime_type: String,
    /// The leaf parts (the message itself if it is not multipart).
    pub parts: Vec<Part>,
    /// SMTP envelope recipients (empty for outbox files).
    pub envelope_to: Vec<String>,
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Splits a header block from a body; checks RFC 5322 header syntax.
fn split_entity(text: &str) -> Result<(Vec<(String, String)>, String), String> {
    let (head, body) = match text.find("\n\n") {
        Some(i) => (&text[..i], &text[i + 2..]),
        None => (text, ""),
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.split('\n') {
        if line.starts_with([' ', '\t']) {
            let last = headers
                .last_mut()
                .ok_or_else(|| format!("continuation line before any header: {line:?}"))?;
            last.1.push(' ');
            last.1.push_str(line.trim());
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("not a header line: {line:?}"))?;
        if name.is_empty() || !name.bytes().all(|b| (33..=126).contains(&b) && b != b':') {
            return Err(format!("bad header name: {name:?}"));
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }
    Ok((headers, body.to_string()))
}

/// The value of `param` in a header such as `multipart/alternative; boundary="x"`.
fn header_param(value: &str, param: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(param)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

fn mime_type_of(headers: &[(String, String)]) -> String {
    header(headers, "Content-Type")
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_else(|| "text/plain".to_string())
}

fn decode_quoted_printable(body: &str) -> Result<String, String> {
    let mut out = Vec::new();
    let lines: Vec<&str> = body.split('\n').collect();
    for (i, line) in lines.iter().enumerate() {
        let line = line.trim_end_matches([' ', '\t']);
        let (line, soft) = match line.strip_suffix('=') {
            Some(l) => (l, true),
            None => (line, false),
        };
        let bytes = line.as_bytes();
        let mut j = 0;
        while j < bytes.len() {
            if bytes[j] == b'=' {
                let hex = line
                    .get(j + 1..j + 3)
                    .ok_or_else(|| format!("bad quoted-printable escape in {line:?}"))?;
                out.push(
                    u8::from_str_radix(hex, 16)
                        .map_err(|_| format!("bad quoted-printable escape ={hex}"))?,
                );
                j += 3;
            } else {
                out.push(bytes[j]);
                j += 1;
            }
        }
        if !soft && i + 1 < lines.len() {
            out.push(b'\n');
        }
    }
    String::from_utf8(out).map_err(|e| format!("quoted-printable body is not UTF-8: {e}"))
}

fn decode_body(headers: &[(String, String)], body: &str) -> Result<String, String> {
    let encoding = header(headers, "Content-Transfer-Encoding")
        .unwrap_or("7bit")
        .to_ascii_lowercase();
    match encoding.as_str() {
        "7bit" | "8bit" | "binary" => Ok(body.to_string()),
        "quoted-printable" => decode_quoted_printable(body),
        "base64" => {
            use base64::Engine;
            let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map_err(|e| format!("bad base64 body: {e}"))?;
            String::from_utf8(bytes).map_err(|e| format!("base64 body is not UTF-8: {e}"))
        }
        other => Err(format!("unknown Content-Transfer-Encoding {other:?}")),
    }
}

fn leaf_parts(
    headers: Vec<(String, String)>,
    body: &str,
    out: &mut Vec<Part>,
) -> Result<(), String> {
    let mime_type = mime_type_of(&headers);
    if !mime_type.starts_with("multipart/") {
        let body = decode_body(&headers, body)?;
        out.push(Part {
            headers,
            mime_type,
            body,
        });
        return Ok(());
    }
    let content_type = header(&headers, "Content-Type").unwrap_or_default();
    let boundary = header_param(content_type, "boundary")
        .ok_or_else(|| format!("multipart without a boundary: {content_type:?}"))?;
    let delimiter = format!("--{boundary}");
    let mut sections = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    let mut closed = false;
    for line in body.split('\n') {
        if line.trim_end() == delimiter {
            if let Some(section) = current.take() {
                sections.push(section.join("\n"));
            }
            current = Some(Vec::new());
        } else if line.trim_end() == format!("{delimiter}--") {
            if let Some(section) = current.take() {
                sections.push(section.join("\n"));
            }
            closed = true;
            break;
        } else if let Some(section) = current.as_mut() {
            section.push(line);
        }
    }
    if !closed {
        return Err(format!("multipart body never closes with {delimiter}--"));
    }
    if sections.is_empty() {
        return Err("multipart body without parts".into());
    }
    for section in sections {
        let (part_headers, part_body) = split_entity(&section)?;
        leaf_parts(part_headers, &part_body, out)?;
    }
    Ok(())
}

impl Mail {
    /// Reads an RFC 5322 message, checking its syntax along the way: CRLF
    /// line ends, lines of at most 998 characters, well-formed headers, the
    /// mandatory `Date` and `From`, and MIME structure.
    pub fn parse(raw: &str) -> Result<Mail, String> {
        for (i, line) in raw.split("\r\n").enumerate() {
            if line.contains('\n') || line.contains('\r') {
                return Err(format!("line {} has a bare CR or LF", i + 1));
            }
            if line.len() > 998 {
                return Err(format!("line {} is longer than 998 characters", i + 1));
            }
        }
        let text = raw.replace("\r\n", "\n");
        let (headers, body) = split_entity(&text)?;
        for required in ["Date", "From"] {
            if header(&headers, required).is_none() {
                return Err(format!("no {required} header"));
            }
        }
        let mime_type = mime_type_of(&headers);
        let mut parts = Vec::new();
        leaf_parts(headers.clone(), &body, &mut parts)?;
        Ok(Mail {
            raw: raw.to_string(),
            headers,
            mime_type,
            parts,
            envelope_to: Vec::new(),
        })
    }

    /// A top-level header, unfolded.
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The `Subject`.
    pub fn subject(&self) -> &str {
        self.header("Subject").unwrap_or("")
    }

    /// The decoded body of the first part of type `mime_type`.
    pub fn part(&self, mime_type: &str) -> Option<&str> {
        self.parts
            .iter()
            .find(|p| p.mime_type == mime_type)
            .map(|p| p.body.as_str())
    }

    /// The plain-text part.
    pub fn text(&self) -> &str {
        self.part("text/plain")
            .unwrap_or_else(|| panic!("no text/plain part in:\n{}", self.raw))
    }

    /// The HTML part.
    pub fn html(&self) -> &str {
        self.part("text/html")
            .unwrap_or_else(|| panic!("no text/html part in:\n{}", self.raw))
    }

    /// The link `{app_url}{path}?token=…` of the plain-text part.
    pub fn link(&self, app_url: &str, path: &str) -> String {
        let prefix = format!("{app_url}{path}?token=");
        let text = self.text();
        let start = text
            .find(&prefix)
            .unwrap_or_else(|| panic!("no link {prefix}… in the text part:\n{text}"));
        let token: String = text[start + prefix.len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | '%'))
            .collect();
        assert!(!token.is_empty(), "empty token in {text}");
        format!("{prefix}{token}")
    }

    /// The token of the link `{app_url}{path}?token=…`.
    pub fn token(&self, app_url: &str, path: &str) -> String {
        let link = self.link(app_url, path);
        link.split_once("?token=").unwrap().1.to_string()
    }
}

// ---- the server under test ---------------------------------------------------

/// Where the server under test sends mail.
pub enum MailTo {
    /// SMTP at `127.0.0.1:port`, no TLS.
    Smtp(u16),
    /// `.eml` files in this directory.
    Outbox(PathBuf),
}

/// A Portcullis server ([`crate::common::TestApp`]) on `127.0.0.1`, serving
/// until the test ends, with requests that answer an [`Answer`].
pub struct TestApp {
    /// `http://127.0.0.1:PORT`, also its `APP_URL`.
    pub base: String,
    /// A plain HTTP client (no proxy, no cookies).
    pub http: reqwest::Client,
    app: crate::common::TestApp,
}

/// A JSON answer: status and body.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body as JSON (`Null` if it was not JSON).
    pub body: Value,
    /// The body as text.
    pub text: String,
}

impl Answer {
    /// `error.code` of an error envelope.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// A response header as text.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

impl TestApp {
    /// Builds and serves Portcullis on `db` with `mail` and `extra` settings.
    pub async fn start(db: &Arc<TestDb>, mail: MailTo, extra: &[(&str, &str)]) -> Self {
        let mut vars: Vec<(String, String)> = vec![("MAIL_FROM".into(), MAIL_FROM.into())];
        match mail {
            MailTo::Smtp(port) => {
                vars.push(("SMTP_HOST".into(), "127.0.0.1".into()));
                vars.push(("SMTP_PORT".into(), port.to_string()));
                vars.push(("SMTP_TLS".into(), "none".into()));
            }
            MailTo::Outbox(dir) => {
                vars.push(("MAIL_OUTBOX_DIR".into(), dir.display().to_string()));
            }
        }
        let vars: Vec<(&str, &str)> = vars
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(extra.iter().copied())
            .collect();
        let app = crate::common::TestApp::spawn_on(db.clone(), &vars).await;
        Self {
            base: app.base_url.clone(),
            http: app.client.clone(),
            app,
        }
    }

    /// `{base}{API prefix}{path}`.
    pub fn api(&self, path: &str) -> String {
        self.app.auth_url(path)
    }

    /// Sends a request and reads the whole answer, checking nothing.
    async fn answer(&self, request: reqwest::RequestBuilder) -> Answer {
        let reply = self.app.send_unchecked(request).await;
        Answer {
            status: reply.status.as_u16(),
            text: reply.text(),
            headers: reply.headers,
            body: reply.body,
        }
    }

    /// `POST {api}{path}` with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.answer(self.http.post(self.api(path)).json(&body))
            .await
    }

    /// `POST {api}{path}` with a JSON body and a bearer token.
    pub async fn post_auth(&self, path: &str, token: &str, body: Value) -> Answer {
        self.answer(
            self.http
                .post(self.api(path))
                .bearer_auth(token)
                .json(&body),
        )
        .await
    }

    /// `GET {base}{path}` (a page or any root path).
    pub async fn get_root(&self, path: &str) -> Answer {
        self.answer(self.http.get(self.app.url(path))).await
    }

    /// `GET {api}/me` with `token`.
    pub async fn me(&self, token: &str) -> Answer {
        self.answer(self.http.get(self.api("/me")).bearer_auth(token))
            .await
    }

    /// Registers `email` with [`PASSWORD`]; asserts 201.
    pub async fn register(&self, email: &str) -> Answer {
        let answer = self
            .post(
                "/register",
                json!({"email": email, "password": PASSWORD, "name": "Test User"}),
            )
            .await;
        assert_eq!(answer.status, 201, "register {email}: {}", answer.text);
        answer
    }

    /// `POST /login` (the OAuth2 form).
    pub async fn login(&self, email: &str, password: &str) -> Answer {
        let form = [("username", email), ("password", password)];
        self.answer(self.http.post(self.api("/login")).form(&form))
            .await
    }

    /// Logs in and returns the access token; asserts 200.
    pub async fn access_token(&self, email: &str, password: &str) -> String {
        let answer = self.login(email, password).await;
        assert_eq!(answer.status, 200, "login {email}: {}", answer.text);
        answer.body["data"]["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }
}
