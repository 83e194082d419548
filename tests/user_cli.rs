//! The `portcullis user …` commands as an operator runs them: the real
//! binary against the real database (SQLite and PostgreSQL) of a server
//! that is running, whose answers show what the command changed.

#[macro_use]
mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::{Backend, OTHER_PASSWORD, PASSWORD, SECRET, TestApp};
use portcullis::password::{HashPolicy, hash_password};
use reqwest::{Method, StatusCode};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

/// `portcullis user <args>` on `app`'s database, with `stdin` as its input.
fn user(app: &TestApp, args: &[&str], stdin: &str) -> Output {
    let dir = app.db.dir.path();
    let mut child = Command::new(BIN)
        .arg("user")
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &app.db.url)
        .env("SECRET_KEY", SECRET)
        .env("DATA_DIR", dir.join("cli-data"))
        .env("LOG_FORMAT", "json")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn portcullis");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[track_caller]
fn expect_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        stdout(out),
        stderr(out)
    );
}

/// The kinds and `details` of `user_id`'s events, newest first.
async fn trail(app: &TestApp, user_id: i64) -> Vec<(String, serde_json::Value)> {
    let (events, _) = app.store().user_events(user_id, 100, 0).await.unwrap();
    events
        .into_iter()
        .map(|e| (e.kind, e.details.unwrap_or_default()))
        .collect()
}

both_backends!(
    the_first_admin_is_created_from_the_shell,
    |app| async move {
        let out = user(
            &app,
            &[
                "create",
                "--email",
                "Admin@Example.com",
                "--name",
                "Ada",
                "--superuser",
                "--verified",
            ],
            &format!("{PASSWORD}\n"),
        );
        expect_exit(&out, 0);
        let id: i64 = stdout(&out).trim().parse().expect("the id is printed");
        let login = app.login_json("admin@example.com", PASSWORD).await;
        let token = login.expect_ok(StatusCode::OK)["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        let me = app.me(&token).await;
        let me = me.expect_ok(StatusCode::OK);
        assert_eq!(me["id"], id);
        assert_eq!(me["email"], "Admin@Example.com");
        assert_eq!(me["name"], "Ada");
        assert_eq!(
            (&me["is_superuser"], &me["is_verified"]),
            (&json!(true), &json!(true))
        );
        let users = app
            .send(app.client.get(app.url("/api/users")).bearer_auth(&token))
            .await;
        users.expect_ok(StatusCode::OK);
        let events = trail(&app, id).await;
        assert_eq!(events[events.len() - 1].0, "user_created");
        assert_eq!(events[events.len() - 1].1["via"], "cli");

        // A plain user, without the flags: not a superuser, not verified.
        let out = user(
            &app,
            &["create", "--email", "plain@example.com"],
            &format!("{OTHER_PASSWORD}\r\n"),
        );
        expect_exit(&out, 0);
        let plain = app
            .store()
            .user_by_email("plain@example.com")
            .await
            .unwrap()
            .unwrap()
            .user;
        assert!(!plain.is_superuser && !plain.is_verified && plain.is_active);
        app.login_json("plain@example.com", OTHER_PASSWORD)
            .await
            .expect_ok(StatusCode::OK);

        // Refusals exit 1 saying why, and create nothing.
        for (args, input, says) in [
            (
                vec!["create", "--email", "ADMIN@example.com"],
                format!("{PASSWORD}\n"),
                "exists already",
            ),
            (
                vec!["create", "--email", "weak@example.com"],
                "password\n".to_string(),
                "password",
            ),
            (
                vec!["create", "--email", "short@example.com"],
                "abc\n".to_string(),
                "password",
            ),
            (
                vec!["create", "--email", "empty@example.com"],
                String::new(),
                "password",
            ),
            (
                vec!["create", "--email", "not-an-email"],
                format!("{PASSWORD}\n"),
                "--email",
            ),
        ] {
            let out = user(&app, &args, &input);
            expect_exit(&out, 1);
            assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
            assert!(stdout(&out).is_empty(), "{args:?}: {}", stdout(&out));
        }
        for email in ["weak@example.com", "short@example.com", "empty@example.com"] {
            assert_eq!(app.count_users_in_db(email).await, 0);
        }
    }
);

/// Waits until the running server refuses `token` as revoked: a `user`
/// command is another process, so the server learns of its change from the
/// change feed, within a second (SPEC §1, §9).
async fn revoked_within_a_second(app: &TestApp, token: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        let answer = app.me(token).await;
        if answer.status == StatusCode::UNAUTHORIZED || std::time::Instant::now() > deadline {
            answer.expect_error(StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

both_backends!(user_commands_hold_on_the_running_server, |app| async move {
    let jo = app.register("jo@example.com", PASSWORD).await;
    let jo_phone = app.login(&jo, PASSWORD).await;

    let out = user(&app, &["revoke-sessions", "JO@example.com"], "");
    expect_exit(&out, 0);
    assert!(stdout(&out).contains("revoked 2"), "{}", stdout(&out));
    for token in [&jo.access, &jo_phone.access] {
        revoked_within_a_second(&app, token).await;
    }

    let jo = app.login(&jo, PASSWORD).await;
    let out = user(&app, &["set-active", "jo@example.com", "false"], "");
    expect_exit(&out, 0);
    revoked_within_a_second(&app, &jo.access).await;
    app.login_json("jo@example.com", PASSWORD)
        .await
        .expect_error(StatusCode::FORBIDDEN, "INACTIVE_USER");
    let out = user(&app, &["set-active", "jo@example.com", "true"], "");
    expect_exit(&out, 0);
    let jo = app.login(&jo, PASSWORD).await;
    app.me(&jo.access).await.expect_ok(StatusCode::OK);
    let out = user(&app, &["set-active", "jo@example.com", "maybe"], "");
    expect_exit(&out, 2);

    let out = user(&app, &["delete", "jo@example.com"], "");
    expect_exit(&out, 0);
    revoked_within_a_second(&app, &jo.access).await;
    app.login_json("jo@example.com", PASSWORD)
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    let kinds: Vec<String> = trail(&app, jo.user_id)
        .await
        .into_iter()
        .map(|(k, d)| {
            if k != "login_succeeded" && k != "user_created" {
                assert_eq!(d["via"], "cli", "{k}: {d}");
            }
            k
        })
        .collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| !k.starts_with("login"))
            .cloned()
            .collect::<Vec<_>>(),
        [
            "user_deleted",
            "user_activated",
            "user_deactivated",
            "sessions_revoked",
            "user_created"
        ]
    );

    // An unknown e-mail exits 1 with a message, for every command.
    for args in [
        vec!["set-active", "nobody@example.com", "false"],
        vec!["delete", "nobody@example.com"],
        vec!["revoke-sessions", "nobody@example.com"],
        vec!["reset-mfa", "nobody@example.com"],
        vec!["delete", "jo@example.com"],
    ] {
        let out = user(&app, &args, "");
        expect_exit(&out, 1);
        assert!(
            stderr(&out).contains("no user with e-mail"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
});

/// A bcrypt hash of `password` at the lowest cost.
fn bcrypt(password: &str) -> String {
    hash_password(
        password,
        HashPolicy {
            kind: portcullis::config::HasherKind::Bcrypt,
            bcrypt_rounds: 4,
        },
    )
    .unwrap()
}

both_backends!(
    /// SPEC §7: an imported hash with argon2 memory over 256 MiB, time or
    /// parallelism over 16, or a bcrypt cost over 16 is a bad line (named
    /// with its number); nothing is imported and the exit status is 1.
    an_import_refuses_hashes_past_the_parameter_bounds,
    |app| async move {
        let argon = |params: &str| {
            format!(
                "$argon2id$v=19${params}$c29tZXNhbHRzb21lc2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
            )
        };
        let hashes = [
            bcrypt(PASSWORD),
            argon("m=262145,t=1,p=1"),
            argon("m=19456,t=17,p=1"),
            argon("m=19456,t=2,p=17"),
            format!("$2b$17${}", "a".repeat(53)),
        ];
        let lines: Vec<String> = hashes
            .iter()
            .enumerate()
            .map(|(i, h)| json!({"email": format!("b{i}@example.com"), "password_hash": h}).to_string())
            .collect();
        let out = user(&app, &["import", "-"], &lines.join("\n"));
        expect_exit(&out, 1);
        let err = stderr(&out);
        for line in 2..=5 {
            assert!(
                err.lines().any(|l| l.starts_with(&format!("line {line}: password_hash: "))
                    && l.contains("out of bounds")),
                "line {line} not reported: {err}"
            );
        }
        assert!(!err.contains("line 1:"), "{err}");
        assert!(err.contains("4 bad line(s)"), "{err}");
        assert!(!err.contains("c29tZXNhbHRz"), "a hash in the report: {err}");
        assert_eq!(app.count_users_in_db("b0@example.com").await, 0);
    }
);

both_backends!(
    an_import_is_checked_whole_then_written_whole,
    |app| async move {
        app.register("taken@example.com", PASSWORD).await;
        let hash = bcrypt(PASSWORD);
        let argon = hash_password(PASSWORD, HashPolicy::default()).unwrap();
        let bad = [
            json!({"email": "one@example.com", "password_hash": hash}).to_string(),
            "{not json".to_string(),
            json!({"email": "two@example.com", "password_hash": "md5$abc$def"}).to_string(),
            json!({"email": "ONE@example.com", "password_hash": hash}).to_string(),
            json!({"email": "Taken@Example.com", "password_hash": argon}).to_string(),
            json!({"email": "three@example.com"}).to_string(),
            String::new(),
            json!({"email": "four@example.com", "password_hash": argon, "is_superuser": true})
                .to_string(),
        ]
        .join("\n");
        let file = app.db.dir.path().join("bad.jsonl");
        std::fs::write(&file, &bad).unwrap();
        let out = user(&app, &["import", file.to_str().unwrap()], "");
        expect_exit(&out, 1);
        let err = stderr(&out);
        for (line, says) in [
            (2, "malformed"),
            (3, "unknown hash format"),
            (4, "repeated (first on line 1)"),
            (5, "already registered"),
            (6, "malformed: missing field `password_hash`"),
        ] {
            assert!(
                err.lines()
                    .any(|l| l.starts_with(&format!("line {line}: ")) && l.contains(says)),
                "line {line} ({says}) not reported: {err}"
            );
        }
        assert!(
            !err.contains("line 1:") && !err.contains("line 8:"),
            "{err}"
        );
        assert!(
            err.contains("5 bad line(s)") && err.contains("nothing was imported"),
            "{err}"
        );
        for email in ["one@example.com", "four@example.com"] {
            assert_eq!(app.count_users_in_db(email).await, 0, "{email} was written");
        }

        // A good input goes in whole, from standard input too, and logs in.
        let good = (0..1200)
        .map(|i| json!({"email": format!("u{i}@example.com"), "password_hash": if i % 2 == 0 { &hash } else { &argon }, "name": format!("U {i}"), "created_at": "2020-01-02T03:04:05Z"}).to_string())
        .chain([json!({"email": "boss@example.com", "password_hash": hash.replacen("$2b$", "$2y$", 1), "is_superuser": true, "is_verified": true}).to_string()])
        .collect::<Vec<_>>()
        .join("\n");
        let out = user(&app, &["import", "-"], &format!("{good}\n"));
        expect_exit(&out, 0);
        assert!(
            stdout(&out).contains("imported 1201 user(s)"),
            "{}",
            stdout(&out)
        );
        // Each imported user's trail starts with the import (a superuser's
        // too), one event each, naming no actor.
        let events: Vec<(i64, String, Option<i64>, Option<String>)> = sqlx::query_as(
            "SELECT e.user_id, e.kind, e.actor_id, e.details FROM security_events e \
             JOIN users u ON u.id = e.user_id WHERE u.email LIKE 'u%@example.com' \
             OR u.email = 'boss@example.com' ORDER BY e.user_id",
        )
        .fetch_all(app.store().pool())
        .await
        .unwrap();
        assert_eq!(events.len(), 1201);
        let users: std::collections::HashSet<i64> = events.iter().map(|e| e.0).collect();
        assert_eq!(users.len(), 1201, "one event per imported user");
        for (_, kind, actor, details) in &events {
            assert_eq!((kind.as_str(), *actor), ("user_created", None));
            let details: serde_json::Value =
                serde_json::from_str(details.as_deref().unwrap_or("null")).unwrap();
            assert_eq!(details["via"], "cli", "{details}");
            assert_eq!(details["imported"], true, "{details}");
        }
        let (boss_details,): (String,) = sqlx::query_as(
            "SELECT e.details FROM security_events e JOIN users u ON u.id = e.user_id \
             WHERE u.email = 'boss@example.com'",
        )
        .fetch_one(app.store().pool())
        .await
        .unwrap();
        let boss_details: serde_json::Value = serde_json::from_str(&boss_details).unwrap();
        assert_eq!(
            (&boss_details["is_superuser"], &boss_details["is_verified"]),
            (&json!(true), &json!(true))
        );

        let boss = app.login_json("boss@example.com", PASSWORD).await;
        let token = boss.expect_ok(StatusCode::OK)["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        let page = app
            .send(
                app.client
                    .request(Method::GET, app.url("/api/users?email=u11&per_page=100"))
                    .bearer_auth(&token),
            )
            .await;
        let page = page.expect_ok(StatusCode::OK);
        // u11, u110..u119, u1100..u1199
        assert_eq!(page["total"], 1 + 10 + 100);
        assert_eq!(page["items"][0]["email"], "u11@example.com");
        assert_eq!(page["items"][0]["name"], "U 11");
        assert_eq!(page["items"][0]["created_at"], "2020-01-02T03:04:05Z");
        assert_eq!(page["items"][0]["is_superuser"], false);
        app.login_json("u11@example.com", PASSWORD)
            .await
            .expect_ok(StatusCode::OK);
        app.login_json("u12@example.com", PASSWORD)
            .await
            .expect_ok(StatusCode::OK);

        // Importing the same again: every line is already registered.
        let out = user(&app, &["import", "-"], &good);
        expect_exit(&out, 1);
        assert!(
            stderr(&out).contains("1201 bad line(s)"),
            "{}",
            stderr(&out)
        );
        let out = user(&app, &["import", "/no/such/file.jsonl"], "");
        expect_exit(&out, 1);
        assert!(stderr(&out).contains("cannot read"), "{}", stderr(&out));
    }
);

#[test]
fn every_user_command_has_help() {
    for args in [
        vec!["user", "--help"],
        vec!["user", "create", "--help"],
        vec!["user", "set-active", "--help"],
        vec!["user", "delete", "--help"],
        vec!["user", "revoke-sessions", "--help"],
        vec!["user", "reset-mfa", "--help"],
        vec!["user", "import", "--help"],
    ] {
        let out = Command::new(BIN).args(&args).env_clear().output().unwrap();
        expect_exit(&out, 0);
        let text = stdout(&out);
        assert!(text.contains("Usage: portcullis user"), "{args:?}: {text}");
    }
    let out = Command::new(BIN)
        .args(["user", "--help"])
        .env_clear()
        .output()
        .unwrap();
    let text = stdout(&out);
    for sub in [
        "create",
        "set-active",
        "delete",
        "revoke-sessions",
        "reset-mfa",
        "import",
    ] {
        assert!(
            text.contains(sub),
            "{sub} missing from `user --help`: {text}"
        );
    }
    let _ = Backend::Sqlite;
}
