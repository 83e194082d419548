//! Where messages go: a real SMTP server, or `.eml` files in the outbox.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::OutgoingMail;
use crate::config::{Config, SmtpTls};

/// A boxed future, so transports can be used as trait objects.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Delivers one built message. Implement it to send mail another way.
pub trait MailTransport: Send + Sync {
    /// Sends `message` (built from `mail`); the error text is logged and kept
    /// in the queue.
    fn send<'a>(&'a self, message: &'a lettre::Message, mail: &'a OutgoingMail) -> SendFuture<'a>;
}

/// Real SMTP delivery through lettre.
pub struct SmtpTransport(AsyncSmtpTransport<Tokio1Executor>);

impl SmtpTransport {
    /// A transport for the `SMTP_*` settings.
    pub fn new(cfg: &crate::config::SmtpConfig) -> anyhow::Result<Self> {
        let builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.host);
        let builder = match cfg.tls {
            SmtpTls::None => builder,
            SmtpTls::StartTls => builder.tls(Tls::Required(tls_parameters(cfg)?)),
            SmtpTls::Tls => builder.tls(Tls::Wrapper(tls_parameters(cfg)?)),
        };
        let mut builder = builder
            .port(cfg.port)
            .timeout(Some(Duration::from_secs(15)));
        if let (Some(user), Some(password)) = (&cfg.username, &cfg.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Self(builder.build()))
    }
}

/// The certificate checks for `cfg.host`: the built-in web roots, plus the
/// certificates of `SMTP_CA_FILE` if set.
fn tls_parameters(cfg: &crate::config::SmtpConfig) -> anyhow::Result<TlsParameters> {
    let mut builder = TlsParameters::builder(cfg.host.clone());
    if let Some(pem) = &cfg.ca_certificates {
        builder = builder.add_root_certificate(Certificate::from_pem(pem)?);
    }
    Ok(builder.build()?)
}

impl MailTransport for SmtpTransport {
    fn send<'a>(&'a self, message: &'a lettre::Message, mail: &'a OutgoingMail) -> SendFuture<'a> {
        Box::pin(async move {
            self.0
                .send(message.clone())
                .await
                .map(|_| tracing::info!(to_domain = domain_of(&mail.to), "mail sent over SMTP"))
                .map_err(|e| e.to_string())
        })
    }
}

/// Writes each message as an RFC 5322 `.eml` file (development default).
pub struct OutboxTransport {
    dir: PathBuf,
}

impl OutboxTransport {
    /// An outbox in `dir` (created if missing).
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }
}

impl MailTransport for OutboxTransport {
    fn send<'a>(&'a self, message: &'a lettre::Message, mail: &'a OutgoingMail) -> SendFuture<'a> {
        Box::pin(async move {
            let dir = self.dir.clone();
            let name = format!(
                "{}-{}.eml",
                time::OffsetDateTime::now_utc().unix_timestamp_nanos(),
                crate::random::random_id()
            );
            let path = self.dir.join(name);
            let written = path.clone();
            let contents = message.formatted();
            tokio::task::spawn_blocking(move || write_private_eml(&dir, &written, &contents))
                .await
                .map_err(|e| format!("cannot write {}: {e}", path.display()))??;
            tracing::info!(
                file = %path.display(),
                link = mail.link.as_deref().unwrap_or(""),
                subject = %mail.subject,
                "mail written to the outbox"
            );
            Ok(())
        })
    }
}

/// Writes an outbox message: into a temporary file created with mode 0600
/// (it carries a live link, SPEC §1), renamed into place once complete so
/// that readers never see half a message. `dir` is created (mode 0700) if
/// it went missing.
fn write_private_eml(dir: &Path, path: &Path, contents: &[u8]) -> Result<(), String> {
    use std::io::Write as _;
    crate::files::create_private_dir_all(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let tmp = path.with_extension("eml.tmp");
    let write = || -> std::io::Result<()> {
        let mut file = crate::files::private_file_options()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("cannot write {}: {e}", tmp.display()));
    }
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map_or("", |(_, d)| d)
}

/// The transport the configuration asks for.
pub fn transport_for(config: &Config) -> anyhow::Result<Arc<dyn MailTransport>> {
    Ok(match &config.smtp {
        Some(smtp) => Arc::new(SmtpTransport::new(smtp)?),
        None => Arc::new(OutboxTransport::new(config.mail_outbox_dir.clone())),
    })
}
