//! A small HTTP/1.1 server for the operator endpoints (`/metrics`, `/commands/…`):
//! GET (and HEAD) only, one request per connection, the request head bounded in size
//! and time, answered and closed. Enough for Prometheus, curl and a browser; nothing a
//! client sends can make it hold more than [`MAX_HEAD`] bytes or a task for longer
//! than [`ANSWER_WITHIN`].

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Largest request head read (request line and headers).
pub const MAX_HEAD: usize = 8 * 1024;
/// How long one connection may take from accept to answer.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// What a handler answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code (200, 404, …).
    pub status: u16,
    /// The `Content-Type` header.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

impl HttpResponse {
    /// A JSON answer.
    pub fn json(status: u16, body: &serde_json::Value) -> HttpResponse {
        HttpResponse {
            status,
            content_type: "application/json",
            body: format!("{body}\n"),
        }
    }

    /// A plain-text answer.
    pub fn text(status: u16, content_type: &'static str, body: String) -> HttpResponse {
        HttpResponse {
            status,
            content_type,
            body,
        }
    }
}

/// Serves `listener` until `shutdown`, answering each GET with `handler(path)` (the
/// path without its query string).
pub async fn serve<F>(listener: TcpListener, shutdown: CancellationToken, handler: F)
where
    F: Fn(&str) -> HttpResponse + Send + Sync + 'static,
{
    let handler = Arc::new(handler);
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "http accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(ANSWER_WITHIN, answer(stream, &*handler)).await;
        });
    }
}

/// Reads one request head and answers it.
async fn answer<F>(mut stream: TcpStream, handler: &F) -> io::Result<()>
where
    F: Fn(&str) -> HttpResponse,
{
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&chunk[..n]);
        if ends_head(&head) {
            break;
        }
        if head.len() > MAX_HEAD {
            let refused = HttpResponse::text(431, "text/plain", "request head too large\n".into());
            return write(&mut stream, &refused, true).await;
        }
    }
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let response = match method {
        "GET" | "HEAD" => {
            let path = target.split('?').next().unwrap_or("");
            handler(path)
        }
        _ => HttpResponse::text(405, "text/plain", "only GET is served\n".into()),
    };
    write(&mut stream, &response, method != "HEAD").await
}

/// Whether `head` holds a whole request head (a blank line ends it).
fn ends_head(head: &[u8]) -> bool {
    head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n")
}

async fn write(stream: &mut TcpStream, r: &HttpResponse, with_body: bool) -> io::Result<()> {
    let reason = match r.status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "",
    };
    let mut out = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        r.status,
        r.content_type,
        r.body.len()
    )
    .into_bytes();
    if with_body {
        out.extend_from_slice(r.body.as_bytes());
    }
    stream.write_all(&out).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(addr: std::net::SocketAddr, request: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(request).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn answers_get_and_refuses_the_rest() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        tokio::spawn(serve(listener, stop.clone(), |path| {
            HttpResponse::text(200, "text/plain", format!("you asked for {path}\n"))
        }));
        let ok = get(addr, b"GET /commands/ruok?x=1 HTTP/1.1\r\nHost: a\r\n\r\n").await;
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(
            ok.ends_with("\r\n\r\nyou asked for /commands/ruok\n"),
            "{ok}"
        );
        assert!(ok.contains("Content-Length: 29\r\n"), "{ok}");
        let post = get(addr, b"POST / HTTP/1.1\r\n\r\n").await;
        assert!(post.starts_with("HTTP/1.1 405 "), "{post}");
        let mut huge = b"GET /".to_vec();
        huge.extend(std::iter::repeat_n(b'a', MAX_HEAD + 10));
        let refused = get(addr, &huge).await;
        assert!(refused.starts_with("HTTP/1.1 431 "), "{refused}");
        stop.cancel();
    }
}
