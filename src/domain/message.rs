//! A message on its way out: what the flows compose, the store queues and
//! the mailer delivers. It lives here so that the store and the mailer can
//! both use it without importing each other.

/// A message to send, as the queue keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    /// Recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text part.
    pub text: String,
    /// HTML part.
    pub html: String,
    /// The action link it carries (logged in outbox mode only).
    pub link: Option<String>,
}

/// A queued message claimed for delivery.
#[derive(Debug, Clone)]
pub struct QueuedMail {
    /// Queue row id.
    pub id: i64,
    /// Attempts so far, this one included.
    pub attempts: i64,
    /// The message.
    pub mail: OutgoingMail,
}
