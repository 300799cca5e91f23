//! The SMTP connection settings, and sending one email.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::compose::Email;
use super::config::{SmtpConfig, SmtpTls};

/// How long one SMTP command may take before the attempt counts as failed.
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

/// Sends notification emails through the configured SMTP server.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    public_url: Option<String>,
}

/// Why a [`Mailer`] cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    /// No SMTP host: notifications are off by configuration, not by mistake.
    #[error("no SMTP host is configured (PORTCULLIS_SMTP_HOST)")]
    NotConfigured,
    /// The TLS settings for the host could not be prepared (for example, no usable root
    /// certificates on this machine).
    #[error("cannot prepare TLS for the SMTP host: {0}")]
    Tls(#[source] lettre::transport::smtp::Error),
}

/// Why one email did not go out.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The message could not be built (an address or header lettre refuses).
    #[error("cannot build the email: {0}")]
    Build(#[from] lettre::error::Error),
    /// The SMTP server refused it, or could not be reached.
    #[error("SMTP: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
}

impl SendError {
    /// Whether the server itself is out of reach (no SMTP reply at all: connection, TLS,
    /// timeout), so that the other emails of this pass would fail the same way.
    pub fn is_outage(&self) -> bool {
        matches!(self, Self::Smtp(e) if e.status().is_none())
    }
}

impl Mailer {
    /// A mailer for the configured server. Nothing is contacted until the first email.
    pub fn new(config: &SmtpConfig) -> Result<Self, MailerError> {
        let host = config
            .host
            .as_deref()
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .ok_or(MailerError::NotConfigured)?;
        type Transport = AsyncSmtpTransport<Tokio1Executor>;
        let builder = match config.tls {
            SmtpTls::None => Transport::builder_dangerous(host),
            SmtpTls::Starttls => Transport::starttls_relay(host).map_err(MailerError::Tls)?,
            SmtpTls::Tls => Transport::relay(host).map_err(MailerError::Tls)?,
        };
        let mut builder = builder.port(config.port).timeout(Some(SMTP_TIMEOUT));
        if let (Some(user), Some(password)) = (&config.username, &config.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Self {
            transport: builder.build(),
            from: config.from.clone(),
            public_url: config.public_url.clone(),
        })
    }

    /// The address links in emails start with.
    pub fn public_url(&self) -> Option<&str> {
        self.public_url.as_deref()
    }

    /// Sends one plain-text email.
    pub(crate) async fn send(&self, to: Mailbox, email: &Email) -> Result<(), SendError> {
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(email.body.clone())?;
        self.transport.send(message).await?;
        Ok(())
    }
}
