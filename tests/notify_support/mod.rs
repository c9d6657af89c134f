//! Local receivers for the notification tests: a minimal SMTP sink and an HTTP webhook receiver,
//! both on loopback ports chosen by the OS, both recording what they received before answering.
#![allow(dead_code)]

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// One message as the SMTP sink received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

/// Speaks just enough SMTP: greeting, EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT.
/// A recipient starting with `bounce` is refused for good (550); one starting with `busy` is
/// refused for now (451) the first time it is seen and accepted after that.
#[derive(Clone, Default)]
pub struct SmtpSink {
    pub received: Arc<Mutex<Vec<Received>>>,
    busy_seen: Arc<Mutex<HashMap<String, u32>>>,
}

impl SmtpSink {
    /// Starts the sink; returns it and its `smtp://127.0.0.1:PORT` URL.
    pub async fn start() -> (SmtpSink, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("smtp://{}", listener.local_addr().unwrap());
        let sink = SmtpSink::default();
        let handle = sink.clone();
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let sink = handle.clone();
                tokio::spawn(async move {
                    let _ = sink.session(socket).await;
                });
            }
        });
        (sink, url)
    }

    pub fn messages(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    async fn session(&self, socket: tokio::net::TcpStream) -> std::io::Result<()> {
        let (read, mut write) = socket.into_split();
        let mut lines = BufReader::new(read);
        write.write_all(b"220 sink.test ESMTP ready\r\n").await?;
        let (mut from, mut to) = (String::new(), Vec::new());
        let mut line = String::new();
        loop {
            line.clear();
            if lines.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let command = line.trim_end().to_owned();
            let upper = command.to_ascii_uppercase();
            let reply: String = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                "250 sink.test\r\n".into()
            } else if upper.starts_with("MAIL FROM:") {
                from = address(&command);
                to.clear();
                "250 2.1.0 OK\r\n".into()
            } else if upper.starts_with("RCPT TO:") {
                let rcpt = address(&command);
                if rcpt.starts_with("bounce") {
                    "550 5.1.1 No such user here\r\n".into()
                } else if rcpt.starts_with("busy") && self.first_time(&rcpt) {
                    "451 4.3.0 Try again later\r\n".into()
                } else {
                    to.push(rcpt);
                    "250 2.1.5 OK\r\n".into()
                }
            } else if upper == "DATA" {
                write
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" {
                        break;
                    }
                    // Dot-stuffing: a leading ".." stands for ".".
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                self.received.lock().unwrap().push(Received {
                    from: from.clone(),
                    to: to.clone(),
                    data,
                });
                "250 2.0.0 OK queued\r\n".into()
            } else if upper == "QUIT" {
                write.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            } else if upper == "RSET" || upper == "NOOP" {
                "250 2.0.0 OK\r\n".into()
            } else {
                "502 5.5.2 Command not implemented\r\n".into()
            };
            write.write_all(reply.as_bytes()).await?;
        }
    }

    fn first_time(&self, rcpt: &str) -> bool {
        let mut seen = self.busy_seen.lock().unwrap();
        let n = seen.entry(rcpt.to_owned()).or_insert(0);
        *n += 1;
        *n == 1
    }
}

/// The address inside `<...>` of a MAIL FROM or RCPT TO command.
fn address(command: &str) -> String {
    command
        .split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(a, _)| a.to_owned())
        .unwrap_or_default()
}

/// A received email taken apart: unfolded headers, and the decoded text and HTML parts.
#[derive(Debug)]
pub struct ParsedEmail {
    pub headers: String,
    pub text: String,
    pub html: String,
}

impl ParsedEmail {
    pub fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        self.headers
            .split("\r\n")
            .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
            .map(|l| l[prefix.len()..].trim().to_owned())
    }
}

/// Parses the `multipart/alternative` message lettre writes (quoted-printable, base64 or 7bit).
pub fn parse_email(raw: &str) -> ParsedEmail {
    let (head, body) = raw.split_once("\r\n\r\n").expect("headers and body");
    let headers = unfold(head);
    let content_type = headers
        .split("\r\n")
        .find(|l| l.to_ascii_lowercase().starts_with("content-type:"))
        .expect("content-type")
        .to_owned();
    let boundary = content_type
        .split("boundary=")
        .nth(1)
        .expect("a multipart boundary")
        .trim_matches('"')
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let (mut text, mut html) = (String::new(), String::new());
    for part in body.split(&format!("--{boundary}")) {
        let Some((part_head, part_body)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        let part_head = unfold(part_head).to_ascii_lowercase();
        let decoded = if part_head.contains("content-transfer-encoding: quoted-printable") {
            decode_qp(part_body)
        } else if part_head.contains("content-transfer-encoding: base64") {
            use base64::Engine as _;
            let compact: String = part_body.split_whitespace().collect();
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .unwrap(),
            )
            .unwrap()
        } else {
            part_body.to_owned()
        };
        if part_head.contains("text/plain") {
            text = decoded;
        } else if part_head.contains("text/html") {
            html = decoded;
        }
    }
    ParsedEmail {
        headers,
        text,
        html,
    }
}

/// RFC 5322 unfolding: a line break followed by white space continues the header.
fn unfold(head: &str) -> String {
    head.replace("\r\n ", " ").replace("\r\n\t", "\t")
}

fn decode_qp(encoded: &str) -> String {
    let joined = encoded.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            if let Some(Ok(b)) = joined.get(i + 1..i + 3).map(|h| u8::from_str_radix(h, 16)) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// One request as the webhook receiver saw it.
#[derive(Debug, Clone)]
pub struct Hit {
    pub path: String,
    pub headers: HeaderMap,
    pub body: String,
}

/// Records every POST; `/fail` always answers 500 "boom", `/flaky` answers 503 the first time
/// for each `webhook-id` and 200 after that; anything else answers 200 "ok" (as Slack does).
#[derive(Clone, Default)]
pub struct Receiver {
    pub hits: Arc<Mutex<Vec<Hit>>>,
}

impl Receiver {
    /// Starts the receiver; returns it and its base URL (`http://127.0.0.1:PORT`).
    pub async fn start() -> (Receiver, String) {
        let receiver = Receiver::default();
        let state = receiver.clone();
        let app = axum::Router::new().route(
            "/{*path}",
            post(
                move |axum::extract::Path(path): axum::extract::Path<String>,
                      headers: HeaderMap,
                      body: String| {
                    let state = state.clone();
                    async move { state.record(path, headers, body) }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (receiver, url)
    }

    fn record(&self, path: String, headers: HeaderMap, body: String) -> (StatusCode, &'static str) {
        let id = headers
            .get("webhook-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let mut hits = self.hits.lock().unwrap();
        let earlier = hits
            .iter()
            .filter(|h| {
                h.path == path
                    && h.headers
                        .get("webhook-id")
                        .is_some_and(|v| v == id.as_str())
            })
            .count();
        hits.push(Hit {
            path: path.clone(),
            headers,
            body,
        });
        match path.as_str() {
            "fail" => (StatusCode::INTERNAL_SERVER_ERROR, "boom"),
            "flaky" if earlier == 0 => (StatusCode::SERVICE_UNAVAILABLE, "try later"),
            _ => (StatusCode::OK, "ok"),
        }
    }

    pub fn hits(&self, path: &str) -> Vec<Hit> {
        let hits = self.hits.lock().unwrap();
        hits.iter().filter(|h| h.path == path).cloned().collect()
    }
}

/// Verifies a Standard Webhooks signature independently of the server's code.
pub fn verify_signature(secret: &str, headers: &HeaderMap, body: &str) -> bool {
    use base64::Engine as _;
    use hmac::{Hmac, Mac};
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .unwrap();
    let signed = format!(
        "{}.{}.{}",
        headers["webhook-id"].to_str().unwrap(),
        headers["webhook-timestamp"].to_str().unwrap(),
        body
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(signed.as_bytes());
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    headers["webhook-signature"]
        .to_str()
        .unwrap()
        .split(' ')
        .any(|s| s == expected)
}
