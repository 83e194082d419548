//! The flows that go through a mailbox (SPEC §6), with real parts: mail is
//! delivered over SMTP to a real server (aiosmtpd) or written to the outbox,
//! the links are read out of the delivered messages, and every flow runs on
//! SQLite and on PostgreSQL.

#[macro_use]
mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{
    DELIVERY_TIMEOUT, Mail, MailMode, OTHER_PASSWORD, PASSWORD, Reply, SmtpServer, TestApp,
    free_port, read_mail_dir,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

const VERIFY_SUBJECT: &str = "Confirm your email address";
const RESET_SUBJECT: &str = "Reset your password";

/// The mail flows, on a [`TestApp`] that delivers to its own SMTP server
/// ([`MailMode::Smtp`]).
trait MailFlows {
    /// The `n`th mail with `subject` to `to` (waits for it).
    async fn nth_mail(&self, to: &str, subject: &str, n: usize) -> Mail;
    /// The token of the `n`th verification mail to `to`.
    async fn verify_token(&self, to: &str, n: usize) -> String;
    /// The token of the `n`th reset mail to `to`.
    async fn reset_token(&self, to: &str, n: usize) -> String;
    /// Asks for a reset link for `email`; asserts the 200.
    async fn forgot(&self, email: &str) -> Reply;
    /// `POST /reset-password`.
    async fn reset(&self, token: &str, new_password: &str) -> Reply;
    /// `POST /verify-email`.
    async fn verify(&self, token: &str) -> Reply;
    /// Shuts the server down (so that every request's background work has
    /// ended), then reads the mail it queued: how many messages each
    /// recipient was sent or is still to be sent. The server answers no
    /// more requests after this.
    async fn mail_counts_after_shutdown(&self) -> std::collections::BTreeMap<String, usize>;
}

impl MailFlows for TestApp {
    async fn nth_mail(&self, to: &str, subject: &str, n: usize) -> Mail {
        let mails = self.smtp().wait_for(to, subject, n).await;
        mails[n - 1].clone()
    }

    async fn verify_token(&self, to: &str, n: usize) -> String {
        self.nth_mail(to, VERIFY_SUBJECT, n)
            .await
            .token(&self.base_url, "/verify-email")
    }

    async fn reset_token(&self, to: &str, n: usize) -> String {
        self.nth_mail(to, RESET_SUBJECT, n)
            .await
            .token(&self.base_url, "/reset-password")
    }

    async fn forgot(&self, email: &str) -> Reply {
        let reply = self
            .post_json("/forgot-password", &json!({ "email": email }))
            .await;
        assert_eq!(reply.status, 200, "forgot-password: {}", reply.text());
        reply
    }

    async fn reset(&self, token: &str, new_password: &str) -> Reply {
        self.post_json(
            "/reset-password",
            &json!({ "token": token, "new_password": new_password }),
        )
        .await
    }

    async fn verify(&self, token: &str) -> Reply {
        self.post_json("/verify-email", &json!({ "token": token }))
            .await
    }

    async fn mail_counts_after_shutdown(&self) -> std::collections::BTreeMap<String, usize> {
        assert!(
            self.portcullis.shutdown(Duration::from_secs(10)).await,
            "background work did not finish"
        );
        let store = portcullis::store::Store::connect(&self.db.url)
            .await
            .expect("reopen the store");
        let recipients =
            sqlx::query_scalar::<sqlx::Any, String>("SELECT recipient FROM mail_queue")
                .fetch_all(store.pool())
                .await
                .expect("read mail_queue");
        store.close().await;
        let mut counts = std::collections::BTreeMap::new();
        for recipient in recipients {
            *counts.entry(recipient).or_default() += 1;
        }
        counts
    }
}

/// Logs in with the OAuth2 form and checks the 200; the access token.
async fn access_token(app: &TestApp, email: &str, password: &str) -> String {
    let reply = app.login_form(email, password).await;
    assert_eq!(reply.status, 200, "login {email}: {}", reply.text());
    reply.body["data"]["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

/// Checks an error envelope with `status` and `code` (SPEC §3).
#[track_caller]
fn assert_error(reply: &Reply, status: u16, code: &str) {
    reply.expect_error(StatusCode::from_u16(status).expect("a status code"), code);
}

fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// SPEC §6: one-time tokens are stored only as hashes, so a delivered message
/// (which carries the raw token) must not stay readable in `mail_queue`.
const RAW_TOKENS_KEPT: &str = "a delivered message keeps its raw one-time token in mail_queue";

// ---- verification ------------------------------------------------------------

both_backends!(
    registration_mails_a_verification_link_that_verifies_once,
    smtp,
    |app| async move {
        let email = "alice@example.com";
        let registered = app.register_raw(email, PASSWORD).await;
        let data = registered.expect_ok(StatusCode::CREATED);
        assert_eq!(data["user"]["is_verified"], false);
        let access = data["access_token"]
            .as_str()
            .expect("access_token")
            .to_string();

        let mail = app.nth_mail(email, VERIFY_SUBJECT, 1).await;
        assert_eq!(mail.envelope_to, vec![email.to_string()]);
        assert!(mail.header("To").unwrap_or("").contains(email), "{mail:?}");
        assert!(
            mail.header("From")
                .unwrap_or("")
                .contains("no-reply@portcullis.test"),
            "{mail:?}"
        );
        assert_eq!(mail.mime_type, "multipart/alternative");
        assert!(mail.text().contains("Portcullis"), "{}", mail.text());
        assert!(mail.html().contains("Portcullis"), "{}", mail.html());
        let link = mail.link(&app.base_url, "/verify-email");
        assert!(
            mail.html().contains(&link),
            "the HTML part lacks {link}:\n{}",
            mail.html()
        );
        let token = mail.token(&app.base_url, "/verify-email");
        assert!(
            token.len() >= 22,
            "a token of at least 128 bits, got {token:?}"
        );

        let before = app.me(&access).await;
        assert_eq!(
            before.body["data"]["is_verified"],
            false,
            "{}",
            before.text()
        );

        let verified = app.verify(&token).await;
        assert_eq!(verified.status, 200, "{}", verified.text());
        assert_eq!(verified.body["success"], true);
        assert_eq!(verified.body["data"]["email"], email);
        assert_eq!(verified.body["data"]["is_verified"], true);
        assert!(verified.body["data"]["id"].is_i64(), "{}", verified.text());

        let me = app.me(&access).await;
        assert_eq!(me.status, 200, "{}", me.text());
        assert_eq!(me.body["data"]["is_verified"], true, "{}", me.text());

        let again = app.verify(&token).await;
        assert_error(&again, 400, "INVALID_VERIFICATION_TOKEN");
        let garbage = app.verify("not-a-token-at-all").await;
        assert_error(&garbage, 400, "INVALID_VERIFICATION_TOKEN");
        assert_eq!(again.body, garbage.body);
        let empty = app.verify("").await;
        assert_error(&empty, 400, "INVALID_VERIFICATION_TOKEN");
        // A reset token is not a verification token.
        app.forgot(email).await;
        let reset_token = app.reset_token(email, 1).await;
        assert_error(
            &app.verify(&reset_token).await,
            400,
            "INVALID_VERIFICATION_TOKEN",
        );
    }
);

both_backends!(
    resend_answers_the_same_and_mails_only_unverified_users,
    smtp,
    |app| async move {
        let alice = "alice@example.com"; // registered, not verified
        let bob = "bob@example.com"; // registered and verified
        let nobody = "nobody@example.com"; // not registered
        app.register(alice, PASSWORD).await;
        app.register(bob, PASSWORD).await;
        let bob_token = app.verify_token(bob, 1).await;
        assert_eq!(app.verify(&bob_token).await.status, 200);
        let first_alice_token = app.verify_token(alice, 1).await;

        let mut bodies = Vec::new();
        for path in ["/verify-email/resend", "/send-verification"] {
            for email in [nobody, bob, alice] {
                let answer = app.post_json(path, &json!({ "email": email })).await;
                assert_eq!(answer.status, 200, "{path} {email}: {}", answer.text());
                assert_eq!(answer.body["success"], true);
                assert!(
                    answer.body["data"]["message"].is_string(),
                    "{}",
                    answer.text()
                );
                bodies.push(answer.body);
            }
        }
        assert!(
            bodies.windows(2).all(|w| w[0] == w[1]),
            "the answers differ: {bodies:?}"
        );

        // Registration's mail plus one per resend.
        let alice_mails = app.smtp().wait_for(alice, VERIFY_SUBJECT, 3).await;

        let tokens: BTreeSet<String> = alice_mails
            .iter()
            .map(|m| m.token(&app.base_url, "/verify-email"))
            .collect();
        assert_eq!(tokens.len(), 3, "each mail carries a new token");
        // Older verification tokens stay valid until they expire (SPEC §6).
        let verified = app.verify(&first_alice_token).await;
        assert_eq!(verified.status, 200, "{}", verified.text());
        assert_eq!(verified.body["data"]["is_verified"], true);

        // Once every request's work has ended: registration's mail plus one
        // per resend for alice, none more for the verified bob, none for
        // an unknown address.
        let sent = app.mail_counts_after_shutdown().await;
        assert_eq!(
            sent,
            [(alice.to_string(), 3), (bob.to_string(), 1)].into(),
            "mail queued per recipient"
        );
    }
);

// ---- forgotten and reset passwords ---------------------------------------------

both_backends!(
    forgot_password_answers_the_same_and_mails_only_known_users,
    smtp,
    |app| async move {
        let alice = "alice@example.com";
        let nobody = "nobody@example.com";
        app.register(alice, PASSWORD).await;
        app.nth_mail(alice, VERIFY_SUBJECT, 1).await;

        let known = app.forgot(alice).await;
        let unknown = app.forgot(nobody).await;
        let other_case = app.forgot("  ALICE@Example.com ").await;
        assert_eq!(known.body, unknown.body);
        assert_eq!(known.body, other_case.body);
        assert_eq!(known.body["success"], true);
        assert!(
            known.body["data"]["message"].is_string(),
            "{}",
            known.text()
        );
        let keys: BTreeSet<&String> = known.body.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            BTreeSet::from([&"data".to_string(), &"success".to_string()])
        );

        let resets = app.smtp().wait_for(alice, RESET_SUBJECT, 2).await;
        let mail = &resets[0];
        assert_eq!(mail.mime_type, "multipart/alternative");
        assert!(mail.text().contains("Portcullis"));
        assert!(mail.html().contains("Portcullis"));
        let link = mail.link(&app.base_url, "/reset-password");
        assert!(mail.html().contains(&link), "{}", mail.html());
        // Once every request's work has ended: the verification mail and
        // two resets for alice, nothing for the unknown address.
        let sent = app.mail_counts_after_shutdown().await;
        assert_eq!(
            sent,
            [(alice.to_string(), 3)].into(),
            "mail queued per recipient"
        );
    }
);

both_backends!(
    reset_password_with_the_mailed_token,
    smtp,
    |app| async move {
        let email = "alice@example.com";
        let registered = app.register(email, PASSWORD).await;
        let access1 = registered.access.clone();
        let refresh1 = registered.refresh.clone();
        let access2 = access_token(&app, email, PASSWORD).await;
        assert_eq!(app.me(&access1).await.status, 200);

        app.forgot(email).await;
        let token = app.reset_token(email, 1).await;
        let reset = app.reset(&token, OTHER_PASSWORD).await;
        assert_eq!(reset.status, 200, "{}", reset.text());
        assert_eq!(reset.body["success"], true);
        assert!(
            reset.body["data"]["message"].is_string(),
            "{}",
            reset.text()
        );

        assert_error(
            &app.login_form(email, PASSWORD).await,
            401,
            "INVALID_CREDENTIALS",
        );
        let access3 = access_token(&app, email, OTHER_PASSWORD).await;

        // Every earlier session is revoked.
        for old in [&access1, &access2] {
            let me = app.me(old).await;
            assert_error(&me, 401, "TOKEN_REVOKED");
        }
        let refreshed = app
            .post_json("/refresh", &json!({ "refresh_token": refresh1 }))
            .await;
        assert_error(&refreshed, 401, "TOKEN_REVOKED");

        // A reset proves the mailbox: the address is verified.
        let me = app.me(&access3).await;
        assert_eq!(me.status, 200, "{}", me.text());
        assert_eq!(me.body["data"]["is_verified"], true, "{}", me.text());

        let again = app.reset(&token, "Another-Fine-Password-5").await;
        assert_error(&again, 400, "INVALID_RESET_TOKEN");
        let garbage = app.reset("garbage-token", "Another-Fine-Password-5").await;
        assert_error(&garbage, 400, "INVALID_RESET_TOKEN");
        assert_eq!(again.body, garbage.body);
        // The reuse changed nothing.
        assert_eq!(app.login_form(email, OTHER_PASSWORD).await.status, 200);
    }
);

both_backends!(
    a_new_reset_request_voids_the_older_token,
    smtp,
    |app| async move {
        let email = "alice@example.com";
        app.register(email, PASSWORD).await;
        app.forgot(email).await;
        let first = app.reset_token(email, 1).await;
        app.forgot(email).await;
        let second = app.reset_token(email, 2).await;
        assert_ne!(first, second);

        let page = app
            .get_page(&format!("/reset-password?token={first}"))
            .await;
        assert_eq!(page.status, 400, "the voided link still shows a form");
        assert!(!page.text().contains("<form"), "{}", page.text());
        assert_error(
            &app.reset(&first, OTHER_PASSWORD).await,
            400,
            "INVALID_RESET_TOKEN",
        );
        let reset = app.reset(&second, OTHER_PASSWORD).await;
        assert_eq!(reset.status, 200, "{}", reset.text());
        assert_eq!(app.login_form(email, OTHER_PASSWORD).await.status, 200);
    }
);

both_backends!(
    change_password_voids_an_outstanding_reset_token,
    smtp,
    |app| async move {
        let email = "alice@example.com";
        let access = app.register(email, PASSWORD).await.access;
        app.forgot(email).await;
        let token = app.reset_token(email, 1).await;

        let changed = app
            .auth_post_json(
                "/change-password",
                &access,
                &json!({ "current_password": PASSWORD, "new_password": OTHER_PASSWORD }),
            )
            .await;
        assert_eq!(changed.status, 200, "{}", changed.text());
        // This session stays valid.
        assert_eq!(app.me(&access).await.status, 200);

        let reset = app.reset(&token, "Another-Fine-Password-5").await;
        assert_error(&reset, 400, "INVALID_RESET_TOKEN");
        assert_eq!(app.login_form(email, OTHER_PASSWORD).await.status, 200);
        assert_error(
            &app.login_form(email, "Another-Fine-Password-5").await,
            401,
            "INVALID_CREDENTIALS",
        );
    }
);

both_backends!(
    one_time_tokens_are_stored_only_as_hashes,
    smtp,
    |app| async move {
        // RESET_TOKEN_EXPIRE_MINUTES cannot go below 1, so expiry is not waited
        // for here; what is checked is that the database never holds a usable token.
        let email = "alice@example.com";
        app.register(email, PASSWORD).await;
        let verify_token = app.verify_token(email, 1).await;
        app.forgot(email).await;
        let reset_token = app.reset_token(email, 1).await;

        let stored = app
            .db
            .strings("SELECT token_hash FROM one_time_tokens ORDER BY created_at")
            .await;
        assert_eq!(stored.len(), 2, "{stored:?}");
        let purposes = app.db.strings("SELECT purpose FROM one_time_tokens").await;
        for token in [&verify_token, &reset_token] {
            for value in stored.iter().chain(&purposes) {
                assert!(
                    !value.contains(token.as_str()),
                    "the raw token {token} is stored in one_time_tokens"
                );
            }
            assert!(
                stored.contains(&sha256_hex(token)),
                "no SHA-256 of {token} in {stored:?}"
            );
        }
        // And the stored hash is what makes the token work.
        assert_eq!(app.verify(&verify_token).await.status, 200);
        assert_eq!(app.reset(&reset_token, OTHER_PASSWORD).await.status, 200);
    }
);

both_backends!(
    delivered_mail_leaves_no_raw_token_in_the_database,
    smtp,
    |app| async move {
        let email = "alice@example.com";
        app.register(email, PASSWORD).await;
        let verify_token = app.verify_token(email, 1).await;
        app.forgot(email).await;
        let reset_token = app.reset_token(email, 1).await;
        // Wait until both are recorded as sent.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !app
            .db
            .strings("SELECT subject FROM mail_queue WHERE sent_at IS NULL")
            .await
            .is_empty()
        {
            assert!(Instant::now() < deadline, "mail still pending");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut stored = Vec::new();
        for sql in [
            "SELECT text_body FROM mail_queue",
            "SELECT html_body FROM mail_queue",
            "SELECT link FROM mail_queue",
            "SELECT subject FROM mail_queue",
        ] {
            stored.extend(app.db.strings(sql).await);
        }
        for token in [&verify_token, &reset_token] {
            assert!(
                stored.iter().all(|v| !v.contains(token.as_str())),
                "{RAW_TOKENS_KEPT}: the usable token {token} is in the database after delivery"
            );
        }
    }
);

both_backends!(
    weak_new_password_on_reset_leaves_the_token_usable,
    smtp,
    |app| async move {
        let email = "alice@example.com";
        app.register(email, PASSWORD).await;
        app.forgot(email).await;
        let token = app.reset_token(email, 1).await;

        for weak in ["password", "short", email, "QWERTY123"] {
            let answer = app.reset(&token, weak).await;
            assert_error(&answer, 422, "VALIDATION_ERROR");
            let details = answer.body["error"]["details"]
                .as_array()
                .unwrap_or_else(|| panic!("no details: {}", answer.text()));
            assert!(
                details.iter().any(|d| d["field"] == "new_password"),
                "{}",
                answer.text()
            );
        }
        assert_eq!(app.login_form(email, PASSWORD).await.status, 200);
        let reset = app.reset(&token, OTHER_PASSWORD).await;
        assert_eq!(reset.status, 200, "{}", reset.text());
        assert_eq!(app.login_form(email, OTHER_PASSWORD).await.status, 200);
    }
);

both_backends!(deactivated_users_get_no_links, smtp, |app| async move {
    let email = "alice@example.com";
    app.register(email, PASSWORD).await;
    app.nth_mail(email, VERIFY_SUBJECT, 1).await;
    app.db
        .execute("UPDATE users SET is_active = FALSE WHERE email = 'alice@example.com'")
        .await;
    let unknown = app.forgot("nobody@example.com").await;
    let forgot = app.forgot(email).await;
    assert_eq!(forgot.body, unknown.body);
    let resend = app
        .post_json("/verify-email/resend", &json!({ "email": email }))
        .await;
    assert_eq!(resend.status, 200, "{}", resend.text());
    // Once every request's work has ended: only the registration's mail.
    let sent = app.mail_counts_after_shutdown().await;
    assert_eq!(
        sent,
        [(email.to_string(), 1)].into(),
        "a deactivated user was mailed a link"
    );
});

// ---- REQUIRE_EMAIL_VERIFICATION ---------------------------------------------------

fn without_created_at(user: &Value) -> Value {
    let mut user = user.clone();
    user.as_object_mut().unwrap().remove("created_at");
    user
}

both_backends!(
    required_verification_blocks_login_and_hides_existing_accounts,
    smtp,
    vars[("REQUIRE_EMAIL_VERIFICATION", "true")],
    |app| async move {
        let email = "alice@example.com";
        let body = json!({ "email": email, "password": PASSWORD, "name": "Alice" });
        let first = app.post_json("/register", &body).await;
        assert_eq!(first.status, 201, "{}", first.text());
        let data = first.body["data"].as_object().expect("data");
        assert_eq!(
            data.keys().collect::<Vec<_>>(),
            ["user"],
            "no tokens while verification is required: {}",
            first.text()
        );
        let user = &first.body["data"]["user"];
        assert!(user.get("id").is_none(), "the user carries an id: {user}");
        assert_eq!(user["email"], email);
        assert_eq!(user["is_verified"], false);
        assert!(user["created_at"].is_string(), "{user}");

        assert_error(
            &app.login_form(email, PASSWORD).await,
            403,
            "EMAIL_NOT_VERIFIED",
        );
        let json_login = app
            .post_json(
                "/login/json",
                &json!({ "email": email, "password": PASSWORD }),
            )
            .await;
        assert_error(&json_login, 403, "EMAIL_NOT_VERIFIED");
        // A wrong password still says nothing about verification.
        assert_error(
            &app.login_form(email, "Wrong-Password-Entirely-1").await,
            401,
            "INVALID_CREDENTIALS",
        );

        // Registering the address again answers the same way and mails the owner.
        let second = app
            .post_json(
                "/register",
                &json!({ "email": email, "password": OTHER_PASSWORD, "name": "Alice" }),
            )
            .await;
        assert_eq!(second.status, 201, "{}", second.text());
        assert_eq!(
            second.body["data"]
                .as_object()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            ["user"]
        );
        let second_user = &second.body["data"]["user"];
        assert_eq!(
            without_created_at(user),
            without_created_at(second_user),
            "the answers differ"
        );
        let user_keys: Vec<_> = user.as_object().unwrap().keys().collect();
        let second_keys: Vec<_> = second_user.as_object().unwrap().keys().collect();
        assert_eq!(user_keys, second_keys);
        assert!(second_user["created_at"].is_string(), "{second_user}");
        assert_eq!(first.header("content-type"), second.header("content-type"));

        let notice = app.nth_mail(email, "You already have an account", 1).await;
        assert!(notice.text().contains("already have"), "{}", notice.text());
        assert!(notice.html().contains("Portcullis"));

        // The owner's password is unchanged; verification lets them in.
        let token = app.verify_token(email, 1).await;
        assert_error(
            &app.login_form(email, PASSWORD).await,
            403,
            "EMAIL_NOT_VERIFIED",
        );
        let verified = app.verify(&token).await;
        assert_eq!(verified.status, 200, "{}", verified.text());
        assert_eq!(verified.body["data"]["is_verified"], true);
        assert_eq!(app.login_form(email, PASSWORD).await.status, 200);
        assert_error(
            &app.login_form(email, OTHER_PASSWORD).await,
            401,
            "INVALID_CREDENTIALS",
        );
        // Once every request's work has ended: one verification mail and
        // one notice.
        let sent = app.mail_counts_after_shutdown().await;
        assert_eq!(sent.get(email), Some(&2), "mail queued: {sent:?}");
    }
);

// ---- delivery ---------------------------------------------------------------------

both_backends!(outbox_mode_writes_rfc5322_files, |app| async move {
    assert_eq!(app.mail, MailMode::Outbox);
    let outbox = app.outbox();
    let email = "alice@example.com";
    app.register(email, PASSWORD).await;

    let deadline = Instant::now() + DELIVERY_TIMEOUT;
    let files = loop {
        let files = read_mail_dir(&outbox, "eml");
        if !files.is_empty() {
            break files;
        }
        assert!(
            Instant::now() < deadline,
            "no .eml file in {}",
            outbox.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(files.len(), 1, "{files:?}");
    let (path, raw) = &files[0];
    let mail = Mail::parse(raw)
        .unwrap_or_else(|e| panic!("{} is not RFC 5322: {e}\n{raw}", path.display()));
    assert_eq!(mail.mime_type, "multipart/alternative");
    assert_eq!(
        mail.parts
            .iter()
            .map(|p| p.mime_type.as_str())
            .collect::<Vec<_>>(),
        ["text/plain", "text/html"]
    );
    assert!(mail.header("To").unwrap().contains(email));
    assert!(
        mail.header("From")
            .unwrap()
            .contains("no-reply@portcullis.test")
    );
    assert_eq!(mail.subject(), VERIFY_SUBJECT);
    assert_eq!(mail.header("MIME-Version"), Some("1.0"));
    // Message-ID is only a SHOULD in RFC 5322 (§3.6.4), so it is not required here.
    let date = mail.header("Date").unwrap();
    time::OffsetDateTime::parse(date, &time::format_description::well_known::Rfc2822)
        .unwrap_or_else(|e| panic!("Date {date:?} is not RFC 5322: {e}"));
    let no_tmp = std::fs::read_dir(&outbox)
        .unwrap()
        .filter_map(Result::ok)
        .all(|e| !e.file_name().to_string_lossy().ends_with(".tmp"));
    assert!(no_tmp, "a temporary file was left in the outbox");

    let token = mail.token(&app.base_url, "/verify-email");
    let verified = app
        .post_json("/verify-email", &json!({ "token": token }))
        .await;
    assert_eq!(verified.status, 200, "{}", verified.text());
    assert_eq!(verified.body["data"]["is_verified"], true);
});

both_backends!(
    mail_is_retried_until_the_smtp_server_is_up,
    |backend: Backend| async move {
        // Nothing listens on the port yet.
        let port = free_port();
        let app = TestApp::builder(backend)
            .mail(MailMode::SmtpAt(port))
            .spawn()
            .await;
        let db = &app.db;
        let email = "alice@example.com";
        app.register(email, PASSWORD).await;
        let forgot = app
            .post_json("/forgot-password", &json!({ "email": email }))
            .await;
        assert_eq!(forgot.status, 200, "{}", forgot.text());

        // Wait until the first attempt at the reset mail has failed.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let failed = db
            .strings(
                "SELECT subject FROM mail_queue WHERE last_error IS NOT NULL AND sent_at IS NULL",
            )
            .await;
            if failed.iter().any(|s| s == RESET_SUBJECT) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the reset mail was never attempted (failed so far: {failed:?})"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        let smtp = SmtpServer::start_on(port).await;
        let mails = smtp
            .wait_for_within(email, RESET_SUBJECT, 1, Duration::from_secs(25))
            .await;
        smtp.wait_for_within(email, VERIFY_SUBJECT, 1, Duration::from_secs(25))
            .await;
        let token = mails[0].token(&app.base_url, "/reset-password");
        let reset = app
            .post_json(
                "/reset-password",
                &json!({ "token": token, "new_password": OTHER_PASSWORD }),
            )
            .await;
        assert_eq!(reset.status, 200, "{}", reset.text());

        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let pending = db
                .strings("SELECT subject FROM mail_queue WHERE sent_at IS NULL")
                .await;
            if pending.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "delivered mail is still pending: {pending:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The verification and reset mails, and the notice of the reset
        // (SPEC §6), each delivered once.
        let mut subjects: Vec<String> = smtp
            .messages()
            .iter()
            .map(|m| m.subject().to_string())
            .collect();
        subjects.sort();
        assert_eq!(
            subjects,
            [VERIFY_SUBJECT, RESET_SUBJECT, "Your password was changed"],
            "each message delivered once"
        );
    }
);

/// What `mail_queue` holds of a message.
#[derive(Debug)]
struct QueuedRow {
    /// The text and HTML bodies, one after the other.
    body: String,
    link: Option<String>,
    last_error: Option<String>,
    attempts: i64,
    next_attempt_at: i64,
    sent: bool,
}

/// The `mail_queue` row of the only message to `to`.
async fn queued_row(app: &TestApp, to: &str) -> QueuedRow {
    type Row = (
        String,
        String,
        Option<String>,
        Option<String>,
        i64,
        i64,
        Option<i64>,
    );
    let (text, html, link, last_error, attempts, next_attempt_at, sent_at): Row = sqlx::query_as(
        "SELECT text_body, html_body, link, last_error, attempts, next_attempt_at, sent_at \
         FROM mail_queue WHERE recipient = $1",
    )
    .bind(to)
    .fetch_one(app.store().pool())
    .await
    .expect("one queued message");
    QueuedRow {
        body: text + &html,
        link,
        last_error,
        attempts,
        next_attempt_at,
        sent: sent_at.is_some(),
    }
}

both_backends!(
    mail_given_up_after_the_last_attempt_loses_its_link,
    |backend: Backend| async move {
        // Nothing ever listens on the SMTP port.
        let app = TestApp::builder(backend)
            .mail(MailMode::SmtpAt(free_port()))
            .spawn()
            .await;
        let email = "alice@example.com";
        app.register(email, PASSWORD).await;

        // After a failed attempt that is not the last, the message keeps its
        // body and link, to be retried.
        let deadline = Instant::now() + Duration::from_secs(10);
        let row = loop {
            let row = queued_row(&app, email).await;
            if row.last_error.is_some() {
                break row;
            }
            assert!(Instant::now() < deadline, "the mail was never attempted");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let link = row.link.expect("a verification mail carries its link");
        assert!(
            row.body.contains(&link),
            "the body lost its link before the last attempt"
        );

        // Make the next attempt the last one, and due now (the first retry
        // waits 5 s, so the worker is not sending it at this moment).
        let max = portcullis::mail::MAX_ATTEMPTS;
        sqlx::query(
            "UPDATE mail_queue SET attempts = $1, next_attempt_at = 0 WHERE recipient = $2",
        )
        .bind(max - 1)
        .bind(email)
        .execute(app.store().pool())
        .await
        .unwrap();

        // It fails too: the message is set aside for good, without the live
        // link (SPEC §1, §6), as a delivered message is.
        let far = common::now() + 365 * 86_400;
        let deadline = Instant::now() + Duration::from_secs(10);
        let row = loop {
            let row = queued_row(&app, email).await;
            if row.attempts >= max && row.next_attempt_at > far {
                break row;
            }
            assert!(
                Instant::now() < deadline,
                "the last attempt was not made or the mail not set aside: {row:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(row.attempts, max, "{row:?}");
        assert!(!row.sent, "an undelivered mail counts as sent");
        assert!(
            row.last_error.is_some_and(|e| !e.is_empty()),
            "the reason is not kept for an operator"
        );
        assert_eq!(row.link, None, "a given-up mail keeps its link");
        assert_eq!(row.body, "", "a given-up mail keeps its body");
        // Whom it was for and what it was stay, for the operator.
        let subjects = app
            .db
            .strings("SELECT subject FROM mail_queue WHERE sent_at IS NULL")
            .await;
        assert_eq!(subjects, [VERIFY_SUBJECT]);
    }
);

// ---- pages ---------------------------------------------------------------------

fn assert_page_headers(page: &Reply) {
    assert!(
        page.header("content-type")
            .unwrap_or("")
            .starts_with("text/html"),
        "not HTML: {:?}",
        page.headers
    );
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    assert!(
        page.header("content-security-policy")
            .unwrap_or("")
            .contains("frame-ancestors 'none'"),
        "{:?}",
        page.headers
    );
    assert!(
        page.header("cache-control")
            .unwrap_or("")
            .contains("no-store"),
        "{:?}",
        page.headers
    );
    assert!(page.body.is_null(), "a page answered JSON: {}", page.text());
    assert!(page.text().contains("<html"), "{}", page.text());
}

both_backends!(
    link_pages_are_safe_html_and_do_not_spend_tokens,
    smtp,
    |app| async move {
        let email = "alice@example.com";
        app.register(email, PASSWORD).await;
        let verify_token = app.verify_token(email, 1).await;
        app.forgot(email).await;
        let reset_token = app.reset_token(email, 1).await;

        let reset_path = format!("/reset-password?token={reset_token}");
        for _ in 0..2 {
            let page = app.get_page(&reset_path).await;
            assert_eq!(page.status, 200, "{}", page.text());
            assert_page_headers(&page);
            assert!(page.text().contains("<form"), "{}", page.text());
            assert!(
                page.text().contains("name=\"new_password\""),
                "{}",
                page.text()
            );
            assert!(
                page.text().contains("name=\"confirm_password\""),
                "{}",
                page.text()
            );
            assert!(page.text().contains(&reset_token), "{}", page.text());
        }
        let verify_path = format!("/verify-email?token={verify_token}");
        for _ in 0..2 {
            let page = app.get_page(&verify_path).await;
            assert_eq!(page.status, 200, "{}", page.text());
            assert_page_headers(&page);
            assert!(page.text().contains("<button"), "{}", page.text());
        }

        for bad in [
            "/reset-password?token=not-a-real-token",
            "/reset-password",
            "/verify-email?token=not-a-real-token",
            "/verify-email?token=",
        ] {
            let page = app.get_page(bad).await;
            assert!(
                (400..500).contains(&page.status.as_u16()),
                "{bad}: {} {}",
                page.status,
                page.text()
            );
            assert_page_headers(&page);
            assert!(!page.text().contains("<form"), "{bad}: {}", page.text());
            let lower = page.text().to_lowercase();
            assert!(
                lower.contains("expired") || lower.contains("already been used"),
                "{bad}: no clear explanation: {}",
                page.text()
            );
        }

        // The form, submitted with two different passwords, keeps the token.
        let mismatch = app
            .client
            .post(format!("{}/reset-password", app.base_url))
            .form(&[
                ("token", reset_token.as_str()),
                ("new_password", OTHER_PASSWORD),
                ("confirm_password", "Something-Else-Entirely-3"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(mismatch.status().as_u16(), 422);
        let text = mismatch.text().await.unwrap();
        assert!(text.contains("do not match"), "{text}");

        // Neither page spent its token.
        let verified = app.verify(&verify_token).await;
        assert_eq!(verified.status, 200, "{}", verified.text());
        let reset = app.reset(&reset_token, OTHER_PASSWORD).await;
        assert_eq!(reset.status, 200, "{}", reset.text());

        // Once spent, the links show the explanation, not the form.
        let spent = app.get_page(&reset_path).await;
        assert_eq!(spent.status, 400, "{}", spent.text());
        assert_page_headers(&spent);
        assert!(!spent.text().contains("<form"), "{}", spent.text());
        let spent = app.get_page(&verify_path).await;
        assert_eq!(spent.status, 400, "{}", spent.text());
        assert!(!spent.text().contains("<form"), "{}", spent.text());
    }
);
