//! `portcullis user import FILE|-`: users from another system, with their
//! password hashes, so that their passwords keep working (SPEC §1).
//!
//! One JSON object a line: `{"email", "name"?, "password_hash",
//! "is_active"?, "is_verified"?, "is_superuser"?, "created_at"?}`.
//! - `password_hash` (also read as `hashed_password`, FastAPI's name):
//!   bcrypt `$2a$`/`$2b$`/`$2y$` or an argon2 PHC string; Django's
//!   `bcrypt$…` and `argon2$…` forms are read too (their prefix is dropped).
//!   Logging in verifies them, and the upgrade on login re-hashes them with
//!   `PASSWORD_HASHER`.
//! - `created_at`: Unix seconds or an RFC 3339 time (`2024-05-01 12:00:00`
//!   is read as UTC); absent, the time of the import.
//! - Flags default to active, not verified, not a superuser. Other keys
//!   (`id`, `updated_at`, …) are ignored. Blank lines are skipped.
//!
//! The whole input is checked before anything is written: every bad line
//! (not JSON, a missing or wrong field, an invalid e-mail, an unknown hash
//! format, an e-mail repeated in the input or already registered) is
//! reported with its number and reason, and then nothing is written and the
//! exit status is 1. Otherwise the users go in, in batches of
//! [`IMPORT_BATCH`](crate::store::IMPORT_BATCH) rows, all in one transaction. A progress bar shows on a
//! terminal; elsewhere, plain progress lines go to standard error.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;

use crate::domain::{DisplayName, EmailAddress};
use crate::password::{check_bounds, is_known_hash_format};
use crate::store::{CreateUserError, ImportedUser, Store, email_key};

/// Plain progress lines come every this many lines or rows.
const PLAIN_PROGRESS_EVERY: usize = 100_000;

/// One line of the input, as sent.
#[derive(Debug, Deserialize)]
struct Line {
    email: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(alias = "hashed_password")]
    password_hash: String,
    #[serde(default)]
    is_active: Option<bool>,
    #[serde(default)]
    is_verified: Option<bool>,
    #[serde(default)]
    is_superuser: Option<bool>,
    #[serde(default)]
    created_at: Option<CreatedAt>,
}

/// `created_at` as Unix seconds or as text.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum CreatedAt {
    Unix(i64),
    Text(String),
}

/// A bad line: its number (from 1) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// The line number, from 1.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

/// A hash as it will be stored: Django's `bcrypt$` and `argon2$` prefixes
/// dropped.
fn normalise_hash(hash: &str) -> &str {
    let hash = hash.trim();
    if let Some(rest) = hash.strip_prefix("bcrypt$")
        && rest.starts_with("$2")
    {
        return rest;
    }
    if let Some(rest) = hash.strip_prefix("argon2$argon2") {
        // "argon2$argon2id$v=19$…" → "$argon2id$v=19$…"
        return &hash[hash.len() - rest.len() - "$argon2".len()..];
    }
    hash
}

/// Unix seconds of an RFC 3339 time, or of `YYYY-MM-DD HH:MM:SS[.f]` read as UTC.
fn parse_time(text: &str) -> Option<i64> {
    use time::format_description::well_known::Rfc3339;
    let text = text.trim();
    if let Ok(t) = time::OffsetDateTime::parse(text, &Rfc3339) {
        return Some(t.unix_timestamp());
    }
    let iso = format!("{}Z", text.replacen(' ', "T", 1));
    time::OffsetDateTime::parse(&iso, &Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// Checks one line; the user to import or why not.
pub fn parse_line(text: &str) -> Result<ImportedUser, String> {
    let line: Line = serde_json::from_str(text).map_err(|e| {
        let message = e.to_string();
        let message = message.split(" at line ").next().unwrap_or(&message);
        format!("malformed: {message}")
    })?;
    let email =
        EmailAddress::parse(&line.email, "email").map_err(|e| format!("email: {}", e.message))?;
    let name = DisplayName::parse(line.name.as_deref(), "name")
        .map_err(|e| format!("name: {}", e.message))?;
    let hash = normalise_hash(&line.password_hash);
    if !is_known_hash_format(hash) {
        return Err(
            "password_hash: unknown hash format (expected bcrypt $2a$/$2b$/$2y$ or an argon2 PHC string)"
                .into(),
        );
    }
    if let Err(e) = check_bounds(hash) {
        return Err(format!("password_hash: {e}"));
    }
    let created_at =
        match line.created_at {
            None => None,
            Some(CreatedAt::Unix(secs)) => Some(secs),
            Some(CreatedAt::Text(text)) => Some(parse_time(&text).ok_or_else(|| {
                "created_at: expected Unix seconds or an RFC 3339 time".to_string()
            })?),
        };
    Ok(ImportedUser {
        email_key: email_key(email.as_str()),
        email: email.as_str().to_string(),
        name: name.as_deref().map(str::to_string),
        password_hash: hash.to_string(),
        is_active: line.is_active.unwrap_or(true),
        is_verified: line.is_verified.unwrap_or(false),
        is_superuser: line.is_superuser.unwrap_or(false),
        created_at,
    })
}

/// What the check of a whole input found.
#[derive(Debug, Default)]
pub struct Checked {
    /// The good lines' users, with their line numbers.
    pub users: Vec<ImportedUser>,
    /// The line number of each user in `users`.
    pub lines: Vec<usize>,
    /// The bad lines, in order.
    pub bad: Vec<BadLine>,
}

/// Reads and checks every line of `input` (everything but the database):
/// `progress` is told how many bytes were read, now and then.
pub fn check_lines(input: impl Read, mut progress: impl FnMut(u64, usize)) -> Checked {
    let mut reader = BufReader::with_capacity(1 << 20, input);
    let mut checked = Checked::default();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut buf = String::new();
    let mut bytes = 0u64;
    let mut number = 0;
    loop {
        buf.clear();
        let read = match reader.read_line(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                number += 1;
                checked.bad.push(BadLine {
                    line: number,
                    reason: format!("unreadable: {e}"),
                });
                break;
            }
        };
        bytes += read as u64;
        number += 1;
        if number % 10_000 == 0 {
            progress(bytes, number);
        }
        let text = buf.trim();
        if text.is_empty() {
            continue;
        }
        match parse_line(text) {
            Ok(user) => match seen.get(&user.email_key) {
                Some(first) => checked.bad.push(BadLine {
                    line: number,
                    reason: format!("email: {} is repeated (first on line {first})", user.email),
                }),
                None => {
                    seen.insert(user.email_key.clone(), number);
                    checked.users.push(user);
                    checked.lines.push(number);
                }
            },
            Err(reason) => checked.bad.push(BadLine {
                line: number,
                reason,
            }),
        }
    }
    progress(bytes, number);
    checked
}

/// How progress is shown: a bar on a terminal, plain lines elsewhere.
enum Progress {
    Bar(ProgressBar),
    Plain { last: usize, what: &'static str },
}

impl Progress {
    fn new(total: Option<u64>, what: &'static str, unit_bytes: bool) -> Self {
        if !std::io::stderr().is_terminal() {
            return Progress::Plain { last: 0, what };
        }
        let bar = match total {
            Some(total) => ProgressBar::new(total),
            None => ProgressBar::new_spinner(),
        };
        let template = match (total.is_some(), unit_bytes) {
            (true, true) => "{msg} [{bar:40}] {bytes}/{total_bytes} ({eta})",
            (true, false) => "{msg} [{bar:40}] {pos}/{len} ({eta})",
            (false, _) => "{msg} {spinner} {pos} lines",
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what);
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress::Bar(bar)
    }

    /// `position` (bytes or rows) and the count of lines or rows so far.
    fn update(&mut self, position: u64, count: usize) {
        match self {
            Progress::Bar(bar) => bar.set_position(position),
            Progress::Plain { last, what } => {
                if count >= *last + PLAIN_PROGRESS_EVERY {
                    *last = count - count % PLAIN_PROGRESS_EVERY;
                    eprintln!("{what}: {count}");
                }
            }
        }
    }

    fn finish(self) {
        if let Progress::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

/// Reads `source` (a path, or `-` for standard input), checks it whole, and
/// imports it in one transaction, or reports every bad line and writes
/// nothing (an error, so exit 1).
pub async fn import(store: &Store, source: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    let (reader, size): (Box<dyn Read + Send>, Option<u64>) = if source == "-" {
        (Box::new(std::io::stdin()), None)
    } else {
        let file = File::open(source).map_err(|e| anyhow::anyhow!("cannot read {source}: {e}"))?;
        let size = file.metadata().ok().map(|m| m.len());
        (Box::new(file), size)
    };
    let mut checked = tokio::task::spawn_blocking(move || {
        let mut progress = Progress::new(size, "checking", size.is_some());
        let checked = check_lines(reader, |bytes, lines| {
            progress.update(if size.is_some() { bytes } else { lines as u64 }, lines)
        });
        progress.finish();
        checked
    })
    .await?;

    // E-mails registered already (looked up once the input is known good
    // line by line, in batches).
    let keys: Vec<&str> = checked.users.iter().map(|u| u.email_key.as_str()).collect();
    let registered = store.registered_email_keys(&keys).await?;
    if !registered.is_empty() {
        for (user, line) in checked.users.iter().zip(&checked.lines) {
            if registered.contains(&user.email_key) {
                checked.bad.push(BadLine {
                    line: *line,
                    reason: format!("email: {} is already registered", user.email),
                });
            }
        }
        checked.bad.sort_by_key(|b| b.line);
    }
    if !checked.bad.is_empty() {
        for bad in &checked.bad {
            eprintln!("line {}: {}", bad.line, bad.reason);
        }
        anyhow::bail!(
            "{} bad line(s) in {source}: nothing was imported",
            checked.bad.len()
        );
    }

    let total = checked.users.len();
    eprintln!(
        "checked {total} user(s) in {:.1} s; writing",
        started.elapsed().as_secs_f64()
    );
    let mut progress = Progress::new(Some(total as u64), "importing", false);
    let result = store
        .import_users(&checked.users, |done| progress.update(done as u64, done))
        .await;
    progress.finish();
    match result {
        Ok(n) => {
            println!(
                "imported {n} user(s) in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Err(CreateUserError::EmailTaken) => anyhow::bail!(
            "an e-mail of the input was registered while the import ran: nothing was imported"
        ),
        Err(CreateUserError::Other(e)) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BCRYPT: &str = "$2b$04$0123456789012345678901uQvBvG5Q8vM0z0G0mC3pQ3vQWmS9cWa";

    #[test]
    fn django_prefixes_are_dropped() {
        assert_eq!(normalise_hash(&format!("bcrypt${BCRYPT}")), BCRYPT);
        assert_eq!(
            normalise_hash("argon2$argon2id$v=19$m=512,t=2,p=2$c2FsdA$aGFzaA"),
            "$argon2id$v=19$m=512,t=2,p=2$c2FsdA$aGFzaA"
        );
        assert_eq!(normalise_hash("$2y$x"), "$2y$x");
    }

    #[test]
    fn times_are_unix_or_rfc3339() {
        assert_eq!(parse_time("1970-01-01T00:01:00Z"), Some(60));
        assert_eq!(parse_time("1970-01-01 00:01:00"), Some(60));
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn every_bad_line_is_reported_with_its_number() {
        let hash = crate::password::hash_password(
            "correct horse battery",
            crate::password::HashPolicy {
                kind: crate::config::HasherKind::Bcrypt,
                bcrypt_rounds: 4,
            },
        )
        .unwrap();
        let input = format!(
            "{{\"email\":\"a@example.com\",\"password_hash\":\"{hash}\"}}\n\
             not json\n\
             \n\
             {{\"email\":\"A@example.com\",\"password_hash\":\"{hash}\"}}\n\
             {{\"email\":\"b@example.com\",\"password_hash\":\"md5$abc\"}}\n\
             {{\"email\":\"nope\",\"password_hash\":\"{hash}\"}}\n\
             {{\"email\":\"c@example.com\",\"hashed_password\":\"{hash}\",\"created_at\":\"2024-05-01 12:00:00\",\"id\":7}}\n"
        );
        let checked = check_lines(input.as_bytes(), |_, _| {});
        let bad: Vec<usize> = checked.bad.iter().map(|b| b.line).collect();
        assert_eq!(bad, [2, 4, 5, 6], "{:?}", checked.bad);
        assert!(checked.bad[0].reason.starts_with("malformed"));
        assert!(checked.bad[1].reason.contains("first on line 1"));
        assert!(checked.bad[2].reason.contains("unknown hash format"));
        assert!(checked.bad[3].reason.starts_with("email"));
        assert_eq!(checked.lines, [1, 7]);
        assert_eq!(checked.users[1].created_at, Some(1_714_564_800));
    }
}
