//! Outgoing mail: messages are written to a queue in the database and a
//! background worker delivers them over SMTP (when `SMTP_HOST` is set) or to
//! `.eml` files in the outbox directory. A request never waits on the mail
//! server; a failed send is retried with backoff and never silently dropped.

mod templates;
mod transport;

pub use templates::{
    MfaNotice, already_registered_mail, escape as escape_html, login_budget_used_up_mail, mfa_mail,
    passkey_mail, password_changed_mail, reset_mail, verification_mail,
};
pub use transport::{MailTransport, OutboxTransport, SmtpTransport, transport_for};

use std::sync::Arc;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
pub use crate::domain::{OutgoingMail, QueuedMail};

use crate::clock::now_unix;
use crate::store::Store;
use crate::tasks::Tasks;

/// Builds the RFC 5322 message with a plain-text and an HTML part.
pub fn build_message(from: &Mailbox, mail: &OutgoingMail) -> Result<lettre::Message, String> {
    let to: Mailbox = mail
        .to
        .parse()
        .map_err(|e| format!("bad recipient address: {e}"))?;
    lettre::Message::builder()
        .from(from.clone())
        .to(to)
        .subject(&mail.subject)
        .message_id(None)
        .multipart(MultiPart::alternative_plain_html(
            mail.text.clone(),
            mail.html.clone(),
        ))
        .map_err(|e| format!("cannot build message: {e}"))
}

/// Attempts before a message is set aside (about 2½ hours of backoff); its
/// body, which carries a live link, is then blanked ([`Store::give_up_mail`]).
pub const MAX_ATTEMPTS: i64 = 12;
/// How long a claimed message is reserved for one worker: well over the
/// time one SMTP delivery may take. A message claimed by a process that is
/// then killed waits this long before another worker takes it.
const CLAIM_SECS: i64 = 60;

/// Seconds to wait before attempt `attempts + 1`: 5 s doubling, at most an hour.
pub fn backoff_secs(attempts: i64) -> i64 {
    let exp = attempts.clamp(1, 20) as u32 - 1;
    (5i64 << exp.min(10)).min(3600)
}

/// The mail queue's front: wakes the delivery worker after an enqueue. The
/// worker runs under the app's [`Tasks`]; at shutdown it finishes the
/// delivery it is making, if any, and stops. Mail still queued stays queued
/// for the next start.
#[derive(Clone)]
pub struct Mailer {
    notify: Arc<Notify>,
    outbox: bool,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("outbox", &self.outbox)
            .finish()
    }
}

impl Mailer {
    /// Starts the delivery worker for `config` under `tasks`.
    pub fn start(store: Store, config: &Config, tasks: &Tasks) -> anyhow::Result<Self> {
        let transport = transport_for(config)?;
        let from: Mailbox = config
            .mail_from
            .parse()
            .map_err(|e| anyhow::anyhow!("MAIL_FROM: {e}"))?;
        let notify = Arc::new(Notify::new());
        let outbox = config.smtp.is_none();
        if outbox {
            // Fail at start-up, not at the first mail, if the outbox is unusable.
            crate::files::create_private_dir_all(&config.mail_outbox_dir).map_err(|e| {
                anyhow::anyhow!(
                    "MAIL_OUTBOX_DIR: cannot create {}: {e}",
                    config.mail_outbox_dir.display()
                )
            })?;
        }
        if outbox && config.production {
            tracing::warn!(
                dir = %config.mail_outbox_dir.display(),
                "SMTP_HOST is not set: mail is written to the outbox directory, not delivered"
            );
        }
        let wake = notify.clone();
        tasks.spawn_service(move |stop| worker(store, transport, from, wake, stop));
        Ok(Self { notify, outbox })
    }

    /// Tells the worker that mail is waiting.
    pub fn wake(&self) {
        self.notify.notify_one();
    }
}

async fn worker(
    store: Store,
    transport: Arc<dyn MailTransport>,
    from: Mailbox,
    notify: Arc<Notify>,
    stop: CancellationToken,
) {
    // The stop signal is looked at between deliveries only, so that a
    // delivery in progress is finished rather than cut off.
    while !stop.is_cancelled() {
        match deliver_due(&store, transport.as_ref(), &from).await {
            Ok(0) => {}
            Ok(_) => continue,
            Err(e) => tracing::warn!(error = %e, "mail queue unavailable"),
        }
        // Idle now: report the backlog (messages waiting for a retry, or set
        // aside after the last attempt) for alerting.
        if let Ok(pending) = store.pending_mail_count().await {
            metrics::gauge!("portcullis_mail_pending").set(pending as f64);
        }
        tokio::select! {
            () = notify.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
            () = stop.cancelled() => {}
        }
    }
}

/// Claims and sends the next due message; returns how many were attempted.
/// One at a time, so that a claim never outlives its reservation while
/// earlier messages of a batch are still being sent (another instance would
/// then send it again).
async fn deliver_due(
    store: &Store,
    transport: &dyn MailTransport,
    from: &Mailbox,
) -> crate::error::Result<usize> {
    let now = now_unix();
    let batch = store.claim_due_mail(now, now + CLAIM_SECS, 1).await?;
    for queued in &batch {
        let outcome = match build_message(from, &queued.mail) {
            Ok(message) => transport.send(&message, &queued.mail).await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => {
                metrics::counter!("portcullis_mail_total", "outcome" => "sent").increment(1);
                store.mark_mail_sent(queued.id).await?;
            }
            Err(error) => {
                metrics::counter!("portcullis_mail_total", "outcome" => "failed").increment(1);
                if queued.attempts >= MAX_ATTEMPTS {
                    tracing::error!(mail_id = queued.id, attempts = queued.attempts, error = %error,
                        "mail could not be delivered; kept in mail_queue (without its body) for an operator");
                    store.give_up_mail(queued.id, &error).await?;
                } else {
                    tracing::warn!(mail_id = queued.id, attempts = queued.attempts, error = %error,
                        "mail delivery failed; will retry");
                    let next = now_unix() + backoff_secs(queued.attempts);
                    store.mark_mail_failed(queued.id, &error, next).await?;
                }
            }
        }
    }
    Ok(batch.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff_secs(1), 5);
        assert_eq!(backoff_secs(2), 10);
        assert_eq!(backoff_secs(5), 80);
        assert_eq!(backoff_secs(12), 3600);
    }

    #[test]
    fn messages_have_text_and_html_parts() {
        let from: Mailbox = "Portcullis <no-reply@example.com>".parse().unwrap();
        let mail = verification_mail("http://localhost:8000", "a@b.co", "tok123", 24);
        let raw = String::from_utf8(build_message(&from, &mail).unwrap().formatted()).unwrap();
        assert!(raw.contains("multipart/alternative"));
        assert!(raw.contains("text/plain"));
        assert!(raw.contains("text/html"));
        assert!(raw.contains("Subject: "));
        assert_eq!(
            mail.link.as_deref(),
            Some("http://localhost:8000/verify-email?token=tok123")
        );
    }
}
