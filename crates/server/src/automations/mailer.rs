//! Email through SMTP (lettre), configured once per deployment.

use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// How to reach the SMTP server.
#[derive(Clone)]
pub struct SmtpConfig {
    /// `smtp://[user:pass@]host[:port]` (plain; `?tls=required` for STARTTLS, or
    /// `?tls=opportunistic`), or `smtps://…` (TLS from the start).
    pub url: String,
    /// The sender, e.g. `Shop <orders@shop.example>`.
    pub from: String,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("url", &waybill_store::redact_url(&self.url))
            .field("from", &self.from)
            .finish()
    }
}

/// Why a message was not sent.
#[derive(Debug)]
pub enum MailError {
    /// Worth another attempt later (connection refused, 4xx answer, timeout).
    Transient(String),
    /// Retrying will not help (bad address, 5xx answer).
    Permanent(String),
}

/// Sends mail through one SMTP server.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    pub fn new(config: &SmtpConfig) -> anyhow::Result<Mailer> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&config.url)
            .map_err(|e| {
                anyhow::anyhow!(
                    "the SMTP URL '{}' is not valid: {e}",
                    waybill_store::redact_url(&config.url)
                )
            })?
            .timeout(Some(std::time::Duration::from_secs(20)))
            .build();
        let from = config
            .from
            .parse()
            .map_err(|e| anyhow::anyhow!("the SMTP sender '{}' is not valid: {e}", config.from))?;
        Ok(Mailer { transport, from })
    }

    /// Sends an HTML message.
    pub async fn send(&self, to: &str, subject: &str, html: String) -> Result<(), MailError> {
        let to: Mailbox = to
            .parse()
            .map_err(|e| MailError::Permanent(format!("'{to}' is not an email address: {e}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_HTML)
            .body(html)
            .map_err(|e| MailError::Permanent(format!("the message could not be built: {e}")))?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(MailError::Permanent(e.to_string())),
            Err(e) => Err(MailError::Transient(e.to_string())),
        }
    }
}

/// Checks a sender such as `Shop <orders@shop.example>`.
pub fn check_mailbox(text: &str) -> Result<(), String> {
    text.parse::<Mailbox>()
        .map(|_| ())
        .map_err(|e| format!("not a mailbox such as 'Shop <orders@shop.example>': {e}"))
}
