//! The HTTP/1.1 server of the operator endpoints (`/metrics`, `/commands/…`), on
//! hyper: GET (and HEAD) only, one request per connection, answered and closed. Enough
//! for Prometheus, curl and a browser. What a client sends is bounded ([`Limits`]): the
//! request head in size (431 past [`MAX_HEAD`]) and in time (a client that has not sent
//! its whole head within [`READ_WITHIN`] is dropped), the body in size (413 past
//! [`MAX_BODY`]), and the whole exchange in time ([`ANSWER_WITHIN`]), so nothing a
//! client sends can make it hold more than that or a task for longer.
//!
//! Answers carry `Content-Type`, `Content-Length` and `Connection: close`, in that
//! order and case, and no `Date`: the bytes the hand-written server before it wrote.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Largest request head read (request line and headers).
pub const MAX_HEAD: usize = 8 * 1024;
/// Largest request body read (the endpoints take none; a small one is read and ignored).
pub const MAX_BODY: usize = 16 * 1024;
/// How long a client may take to send its request head.
pub const READ_WITHIN: Duration = Duration::from_secs(10);
/// How long one connection may take from accept to answer.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// The bounds on one connection: what a client may send and how long it may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request head (request line and headers), in bytes.
    pub max_head: usize,
    /// Largest request body, in bytes.
    pub max_body: usize,
    /// How long a client may take to send its request head.
    pub read_within: Duration,
    /// How long one connection may take from accept to answer.
    pub answer_within: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_head: MAX_HEAD,
            max_body: MAX_BODY,
            read_within: READ_WITHIN,
            answer_within: ANSWER_WITHIN,
        }
    }
}

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
/// path without its query string), within the default [`Limits`].
pub async fn serve<F>(listener: TcpListener, shutdown: CancellationToken, handler: F)
where
    F: Fn(&str) -> HttpResponse + Send + Sync + 'static,
{
    serve_with(listener, shutdown, Limits::default(), handler).await;
}

/// [`serve`] within `limits`.
pub async fn serve_with<F>(
    listener: TcpListener,
    shutdown: CancellationToken,
    limits: Limits,
    handler: F,
) where
    F: Fn(&str) -> HttpResponse + Send + Sync + 'static,
{
    let handler = Arc::new(handler);
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.read_within)
        .max_header_size(limits.max_head)
        .keep_alive(false)
        // `printf 'GET / HTTP/1.0\r\n\r\n' | nc` closes its side once it has sent.
        .half_close(true)
        .title_case_headers(true)
        .auto_date_header(false);
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "http accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let handler = handler.clone();
        let service = service_fn(move |request| {
            let handler = handler.clone();
            async move { Ok::<_, Infallible>(answer(request, &*handler, limits.max_body).await) }
        });
        let connection = http.serve_connection(TokioIo::new(stream), service);
        tokio::spawn(async move {
            match tokio::time::timeout(limits.answer_within, connection).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "http connection failed"),
                Err(_) => tracing::debug!(%peer, "http connection not answered in time; dropped"),
            }
        });
    }
}

/// Reads the body of `request` (at most `max_body` bytes) and answers it.
async fn answer<F>(
    request: Request<Incoming>,
    handler: &F,
    max_body: usize,
) -> Response<Full<Bytes>>
where
    F: Fn(&str) -> HttpResponse,
{
    let too_large = || HttpResponse::text(413, "text/plain", "request body too large\n".into());
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body as u64) {
        return response(too_large());
    }
    let (head, body) = request.into_parts();
    if let Err(e) = Limited::new(body, max_body).collect().await {
        return response(if e.downcast_ref::<LengthLimitError>().is_some() {
            too_large()
        } else {
            HttpResponse::text(400, "text/plain", "unreadable request body\n".into())
        });
    }
    response(match head.method {
        Method::GET | Method::HEAD => handler(head.uri.path()),
        _ => HttpResponse::text(405, "text/plain", "only GET is served\n".into()),
    })
}

/// The hyper response of `r` (hyper leaves the body out when answering a HEAD).
fn response(r: HttpResponse) -> Response<Full<Bytes>> {
    let length = HeaderValue::from(r.body.len());
    let mut out = Response::new(Full::new(Bytes::from(r.body)));
    *out.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = out.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_str(r.content_type).unwrap_or(HeaderValue::from_static("text/plain")),
    );
    headers.insert(CONTENT_LENGTH, length);
    headers.insert(CONNECTION, HeaderValue::from_static("close"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// A server answering `you asked for <path>` within `limits`.
    async fn start(limits: Limits) -> (SocketAddr, CancellationToken) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        tokio::spawn(serve_with(listener, stop.clone(), limits, |path| {
            HttpResponse::text(200, "text/plain", format!("you asked for {path}\n"))
        }));
        (addr, stop)
    }

    /// Sends raw `request` bytes and reads everything until the server closes.
    async fn raw(addr: SocketAddr, request: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(request).await.unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        String::from_utf8_lossy(&out).into_owned()
    }

    /// `GET path` through hyper's client: status and body.
    async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        let request = Request::get(path)
            .header("host", "test")
            .body(http_body_util::Empty::<Bytes>::new())
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn answers_get_and_refuses_the_rest() {
        let (addr, stop) = start(Limits::default()).await;
        // Byte for byte what the hand-written server before hyper answered.
        let ok = raw(addr, b"GET /commands/ruok?x=1 HTTP/1.1\r\nHost: a\r\n\r\n").await;
        assert_eq!(
            ok,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 29\r\n\
             Connection: close\r\n\r\nyou asked for /commands/ruok\n"
        );
        let head = raw(addr, b"HEAD /x HTTP/1.1\r\nHost: a\r\n\r\n").await;
        assert_eq!(
            head,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 17\r\n\
             Connection: close\r\n\r\n"
        );
        // HTTP/1.0, the writer closing its side once sent, as `nc` does.
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /ten HTTP/1.0\r\n\r\n").await.unwrap();
        s.shutdown().await.unwrap();
        let mut old = String::new();
        s.read_to_string(&mut old).await.unwrap();
        assert!(old.ends_with("\r\n\r\nyou asked for /ten\n"), "{old}");
        let post = raw(
            addr,
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi",
        )
        .await;
        assert!(
            post.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
            "{post}"
        );
        assert_eq!(
            get(addr, "/a/b?c=d").await,
            (200, "you asked for /a/b\n".into())
        );
        stop.cancel();
    }

    #[tokio::test]
    async fn an_oversize_head_is_refused() {
        let (addr, stop) = start(Limits::default()).await;
        // Exactly MAX_HEAD bytes and no end of the head: the server reads them all
        // (nothing left unread to turn its close into a reset) and refuses.
        let mut huge = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
        huge.resize(MAX_HEAD, b'a');
        let refused = raw(addr, &huge).await;
        assert!(
            refused.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            "{refused}"
        );
        let mut path = b"GET /".to_vec();
        path.resize(MAX_HEAD, b'a');
        let refused = raw(addr, &path).await;
        assert!(refused.starts_with("HTTP/1.1 431 "), "{refused}");
        assert_eq!(get(addr, "/after").await.0, 200);
        stop.cancel();
    }

    #[tokio::test]
    async fn an_oversize_body_is_refused() {
        let limits = Limits {
            max_body: 64,
            ..Limits::default()
        };
        let (addr, stop) = start(limits).await;
        let declared = raw(
            addr,
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n",
        )
        .await;
        assert!(
            declared.starts_with("HTTP/1.1 413 Payload Too Large\r\n"),
            "{declared}"
        );
        // Chunked, so no length up front: refused once more than the bound has come.
        let mut chunked =
            b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n41\r\n".to_vec();
        chunked.extend([b'x'; 65]);
        let refused = raw(addr, &chunked).await;
        assert!(refused.starts_with("HTTP/1.1 413 "), "{refused}");
        // Within the bound, a body is read and ignored.
        let small = raw(
            addr,
            b"GET /s HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody",
        )
        .await;
        assert!(small.ends_with("\r\n\r\nyou asked for /s\n"), "{small}");
        stop.cancel();
    }

    #[tokio::test]
    async fn a_stalled_client_is_dropped() {
        let limits = Limits {
            read_within: Duration::from_millis(300),
            answer_within: Duration::from_millis(600),
            ..Limits::default()
        };
        let (addr, stop) = start(limits).await;
        let dropped_within = |request: &'static [u8]| async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(request).await.unwrap();
            let mut out = Vec::new();
            let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
            // Closed (or reset) by the server, with no answer, long before the 5 s.
            assert!(read.is_ok(), "still connected: {request:?}");
            assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
        };
        // The head never ends: the header read timeout.
        dropped_within(b"GET / HTTP/1.1\r\nHost: a\r\n").await;
        // The head, then a body that never comes: the connection's timeout.
        dropped_within(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nab").await;
        // Nothing at all.
        dropped_within(b"").await;
        assert_eq!(get(addr, "/after").await.0, 200);
        stop.cancel();
    }

    #[tokio::test]
    async fn garbage_is_a_bad_request_not_a_panic() {
        let (addr, stop) = start(Limits::default()).await;
        for garbage in [
            &b"\0\0\0\0\r\n\r\n"[..],
            b"GET\r\n\r\n",
            b"GET / HTTP/9.9\r\n\r\n",
            b"GET /\xff\xfe HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n",
        ] {
            let answer = raw(addr, garbage).await;
            assert!(
                answer.is_empty() || answer.starts_with("HTTP/1.1 400 "),
                "{garbage:?}: {answer}"
            );
        }
        assert_eq!(get(addr, "/after").await.0, 200);
        stop.cancel();
    }
}
