//! SMTP settings: flags and environment variables, part of [`crate::config::Config`].

use std::fmt;

use clap::{Args, ValueEnum};
use lettre::message::Mailbox;

/// How email leaves Portcullis. Without a host, no email is sent (the queue still fills:
/// see [`crate::notify`]).
#[derive(Clone, Args)]
pub struct SmtpConfig {
    /// SMTP server (relay) that sends notification emails. Unset: email notifications are
    /// off, and nothing is sent.
    #[arg(
        id = "smtp_host",
        value_name = "SMTP_HOST",
        long = "smtp-host",
        env = "PORTCULLIS_SMTP_HOST",
        global = true
    )]
    pub host: Option<String>,

    /// SMTP server port: usually 587 with STARTTLS, 465 with TLS, 25 without encryption.
    #[arg(
        id = "smtp_port",
        value_name = "SMTP_PORT",
        long = "smtp-port",
        env = "PORTCULLIS_SMTP_PORT",
        default_value_t = 587,
        global = true
    )]
    pub port: u16,

    /// Encryption to the SMTP server: `starttls` (upgrade, and refuse to send if the server
    /// cannot), `tls` (TLS from the first byte) or `none` (plain text: only for a relay on
    /// the same host or a trusted network). Certificates are checked against the system's
    /// trusted roots.
    #[arg(id = "smtp_tls", value_name = "SMTP_TLS", long = "smtp-tls",
          env = "PORTCULLIS_SMTP_TLS", value_enum, default_value_t = SmtpTls::Starttls,
          global = true)]
    pub tls: SmtpTls,

    /// User name for SMTP authentication (with --smtp-password); unset: no authentication.
    #[arg(
        id = "smtp_username",
        value_name = "SMTP_USERNAME",
        long = "smtp-username",
        env = "PORTCULLIS_SMTP_USERNAME",
        requires = "smtp_password",
        global = true
    )]
    pub username: Option<String>,

    /// Password for SMTP authentication (with --smtp-username).
    #[arg(
        id = "smtp_password",
        value_name = "SMTP_PASSWORD",
        long = "smtp-password",
        env = "PORTCULLIS_SMTP_PASSWORD",
        requires = "smtp_username",
        hide_env_values = true,
        global = true
    )]
    pub password: Option<String>,

    /// Sender of notification emails, as `Name <address>` or a bare address.
    #[arg(id = "smtp_from", value_name = "SMTP_FROM", long = "smtp-from",
          env = "PORTCULLIS_SMTP_FROM", default_value = "Portcullis <portcullis@localhost>",
          value_parser = parse_mailbox, global = true)]
    pub from: Mailbox,

    /// The address users reach Portcullis at (for example https://portcullis.example.com),
    /// used for links in emails. Unset: emails carry no links.
    #[arg(long, env = "PORTCULLIS_PUBLIC_URL", value_parser = parse_public_url, global = true)]
    pub public_url: Option<String>,
}

impl fmt::Debug for SmtpConfig {
    /// Everything but the password, so the configuration can be logged.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("from", &self.from.to_string())
            .field("public_url", &self.public_url)
            .finish()
    }
}

/// Encryption to the SMTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SmtpTls {
    /// Plain text.
    None,
    /// Plain connection upgraded with STARTTLS; refused if the server does not offer it.
    Starttls,
    /// TLS from the start (SMTPS, "implicit TLS").
    Tls,
}

fn parse_mailbox(value: &str) -> Result<Mailbox, String> {
    value
        .trim()
        .parse::<Mailbox>()
        .map_err(|e| format!("not an email address (\"Name <address>\" or \"address\"): {e}"))
}

fn parse_public_url(value: &str) -> Result<String, String> {
    let url = value.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("the public URL must start with https:// or http://")?;
    if rest.is_empty() || rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the public URL needs a host name and no spaces".into());
    }
    Ok(url.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        smtp: SmtpConfig,
    }

    fn parse(args: &[&str]) -> Result<SmtpConfig, clap::Error> {
        Wrapper::try_parse_from(std::iter::once("portcullis").chain(args.iter().copied()))
            .map(|w| w.smtp)
    }

    #[test]
    fn defaults_leave_notifications_off_with_starttls_on_587() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.host, None);
        assert_eq!(c.port, 587);
        assert_eq!(c.tls, SmtpTls::Starttls);
        assert_eq!(c.from.to_string(), "Portcullis <portcullis@localhost>");
        assert_eq!(c.public_url, None);
    }

    #[test]
    fn credentials_come_in_pairs() {
        assert!(parse(&["--smtp-username", "mailer"]).is_err());
        assert!(parse(&["--smtp-password", "secret"]).is_err());
        let c = parse(&["--smtp-username", "mailer", "--smtp-password", "secret"]).unwrap();
        assert_eq!(c.username.as_deref(), Some("mailer"));
        assert!(
            !format!("{c:?}").contains("secret"),
            "the password is not logged"
        );
    }

    #[test]
    fn the_sender_and_public_url_are_checked() {
        assert!(parse(&["--smtp-from", "not an address"]).is_err());
        assert!(parse(&["--public-url", "portcullis.example"]).is_err());
        let c = parse(&[
            "--smtp-tls",
            "tls",
            "--smtp-from",
            "ops@example.com",
            "--public-url",
            "https://pc.example/",
        ])
        .unwrap();
        assert_eq!(c.tls, SmtpTls::Tls);
        assert_eq!(c.from.email.to_string(), "ops@example.com");
        assert_eq!(c.public_url.as_deref(), Some("https://pc.example"));
    }
}
