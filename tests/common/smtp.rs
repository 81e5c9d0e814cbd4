//! A small SMTP server speaking real SMTP over TCP, recording what it receives.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
};

#[derive(Clone, Debug)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

#[derive(Clone, Default)]
pub struct Mailbox(Arc<Mutex<Vec<Received>>>);

impl Mailbox {
    pub fn messages(&self) -> Vec<Received> {
        self.0.lock().unwrap().clone()
    }

    /// Waits until at least `count` messages arrived (`seconds` at most);
    /// returns those received, however many.
    pub async fn wait_for(&self, count: usize, seconds: u64) -> Vec<Received> {
        super::poll_until(
            Duration::from_secs(seconds),
            async || self.messages(),
            |messages| messages.len() >= count,
        )
        .await
    }
}

/// Serves SMTP on `listener` until the test ends.
pub fn serve(listener: TcpListener) -> Mailbox {
    let mailbox = Mailbox::default();
    let received = mailbox.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let received = received.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"220 test ESMTP\r\n").await;
                let (mut from, mut to) = (String::new(), Vec::new());
                while let Ok(Some(line)) = lines.next_line().await {
                    let upper = line.to_ascii_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                        b"250-test\r\n250 8BITMIME\r\n"
                    } else if upper.starts_with("MAIL FROM:") {
                        from = line[10..].trim().trim_matches(['<', '>']).to_owned();
                        b"250 OK\r\n"
                    } else if upper.starts_with("RCPT TO:") {
                        to.push(line[8..].trim().trim_matches(['<', '>']).to_owned());
                        b"250 OK\r\n"
                    } else if upper == "DATA" {
                        let _ = write.write_all(b"354 go ahead\r\n").await;
                        let mut data = String::new();
                        while let Ok(Some(line)) = lines.next_line().await {
                            if line == "." {
                                break;
                            }
                            data.push_str(
                                line.strip_prefix('.')
                                    .filter(|_| line.starts_with(".."))
                                    .unwrap_or(&line),
                            );
                            data.push('\n');
                        }
                        received.0.lock().unwrap().push(Received {
                            from: from.clone(),
                            to: std::mem::take(&mut to),
                            data,
                        });
                        b"250 queued\r\n"
                    } else if upper == "QUIT" {
                        let _ = write.write_all(b"221 bye\r\n").await;
                        break;
                    } else {
                        b"250 OK\r\n"
                    };
                    if write.write_all(reply).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    mailbox
}

/// Undoes quoted-printable soft breaks and `=3D`, enough to read links.
pub fn unfold(data: &str) -> String {
    data.replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=")
}

/// The claim token in a message, if any.
pub fn claim_token(data: &str) -> Option<String> {
    let text = unfold(data);
    let start = text.find("token=")? + "token=".len();
    Some(
        text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect(),
    )
}
