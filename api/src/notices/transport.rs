//! Where notices go: an SMTP server (lettre), or, in development without one,
//! `.eml` files in a folder (like Django's file e-mail backend), so a new user
//! can read what would have been sent.

use std::path::PathBuf;

use anyhow::Context;
use entity::notices;
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Tokio1Executor,
    message::{Mailbox, MultiPart},
};

#[derive(Clone)]
pub enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(PathBuf),
}

impl Transport {
    /// SMTP when a URL is configured (`smtp://user:pass@host:port`, with
    /// `?tls=required` for STARTTLS, or `smtps://` for implicit TLS), files otherwise.
    pub fn from_config(smtp_url: Option<&str>, mail_dir: PathBuf) -> anyhow::Result<Self> {
        match smtp_url {
            Some(url) => Ok(Self::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .context("TWEETMEET_SMTP_URL is not a valid SMTP URL")?
                    .build(),
            )),
            None => Ok(Self::Files(mail_dir)),
        }
    }

    /// The transport's kind, as metrics label it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Smtp(_) => "smtp",
            Self::Files(_) => "files",
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Smtp(_) => "SMTP".to_owned(),
            Self::Files(dir) => format!(".eml files in {}", dir.display()),
        }
    }

    /// Whether notices could be sent now: the SMTP server answers (and
    /// accepts the credentials), or the mail directory can be written.
    pub async fn check(&self) -> anyhow::Result<String> {
        match self {
            Self::Smtp(smtp) => {
                let answers = smtp
                    .test_connection()
                    .await
                    .context("the SMTP server cannot be reached")?;
                anyhow::ensure!(answers, "the SMTP server did not answer NOOP");
                Ok("the SMTP server answers".to_owned())
            }
            Self::Files(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                let probe = dir.join(".tweetmeet-check");
                std::fs::write(&probe, b"")
                    .with_context(|| format!("cannot write in {}", dir.display()))?;
                std::fs::remove_file(&probe).ok();
                Ok(self.describe())
            }
        }
    }

    /// What a failed send says of the mail server: `Some(false)` when it
    /// could not be reached (refused, timed out, TLS failed, the connection
    /// dropped, or it answered 421, "service not available"), `Some(true)`
    /// when it answered and refused this message or recipient, `None` when
    /// the send failed before reaching it (a bad address, a full disk).
    pub fn reached(err: &anyhow::Error) -> Option<bool> {
        let smtp = err
            .chain()
            .find_map(|cause| cause.downcast_ref::<lettre::transport::smtp::Error>())?;
        let service_unavailable = smtp.status().is_some_and(|code| code.to_string() == "421");
        let answered =
            smtp.is_response() || smtp.is_client() || smtp.is_permanent() || smtp.is_transient();
        Some(answered && !service_unavailable)
    }

    pub async fn send(&self, from: &str, notice: &notices::Model) -> anyhow::Result<()> {
        let message = lettre::Message::builder()
            .from(
                from.parse::<Mailbox>()
                    .context("TWEETMEET_MAIL_FROM is not a mailbox")?,
            )
            .to(notice
                .recipient
                .parse::<Mailbox>()
                .context("recipient is not a mailbox")?)
            .subject(&notice.subject)
            .message_id(Some(format!("<{}@tweetmeet>", notice.id)))
            .multipart(MultiPart::alternative_plain_html(
                notice.body_text.clone(),
                notice.body_html.clone(),
            ))?;
        match self {
            Self::Smtp(transport) => {
                transport.send(message).await?;
            }
            Self::Files(dir) => {
                tokio::fs::create_dir_all(dir).await?;
                // Named by the notice's id: a retried write overwrites, never duplicates.
                tokio::fs::write(dir.join(format!("{}.eml", notice.id)), message.formatted())
                    .await?;
            }
        }
        Ok(())
    }
}
