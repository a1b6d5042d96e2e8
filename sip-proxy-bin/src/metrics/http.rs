//! Just enough HTTP/1.1 (RFC 9110, RFC 9112) for a Prometheus scrape: one request per
//! connection, its head read within [`MAX_HEAD`] bytes and [`DEADLINE`], `GET` or `HEAD`
//! of `/metrics` answered 200 with the text format, anything else 404 / 405 / 400 / 431, and
//! the connection closed (`Connection: close`, RFC 9112 §9.6). A body sent with the request
//! is not read: a scrape has none.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Largest request head read (request line and headers).
pub const MAX_HEAD: usize = 8192;

/// Longest time one connection may take, reading and writing.
pub const DEADLINE: Duration = Duration::from_secs(2);

/// The `Content-Type` of the Prometheus text format, version 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// What a request head asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /metrics` (`head_only` for `HEAD`, RFC 9110 §9.3.2: the same header, no body).
    Metrics {
        /// `HEAD`: no body.
        head_only: bool,
    },
    /// Another path: 404.
    NotFound,
    /// Another method: 405 with `Allow: GET, HEAD` (RFC 9110 §15.5.6).
    MethodNotAllowed,
    /// Not an HTTP/1.x request line: 400.
    BadRequest,
}

/// Routes a request head: the request line `method SP request-target SP HTTP-version`
/// (RFC 9112 §3). The query of the target is ignored (`/metrics?x=1` is `/metrics`).
pub fn route(head: &[u8]) -> Route {
    let line_end = head
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or(head.len());
    let mut parts = head[..line_end].split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Route::BadRequest;
    };
    if !version.starts_with(b"HTTP/1.") || method.is_empty() || target.is_empty() {
        return Route::BadRequest;
    }
    let path = target.split(|&b| b == b'?').next().unwrap_or(target);
    let head_only = match method {
        b"GET" => false,
        b"HEAD" => true,
        _ => return Route::MethodNotAllowed,
    };
    if path == b"/metrics" {
        Route::Metrics { head_only }
    } else {
        Route::NotFound
    }
}

/// Reads the head of the request on `stream`, answers it (the body from `body` for a
/// scrape) and closes. Errors are the connection's (timeout, reset); nothing is retried.
pub fn answer(mut stream: TcpStream, body: impl FnOnce() -> String) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    let start = Instant::now();
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let complete = loop {
        if head.windows(4).any(|w| w == b"\r\n\r\n") {
            break true;
        }
        if head.len() >= MAX_HEAD {
            break false;
        }
        let left = DEADLINE
            .checked_sub(start.elapsed())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "request head too slow"))?;
        stream.set_read_timeout(Some(left))?;
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed before the end of the request head",
            ));
        }
        head.extend_from_slice(&buf[..n.min(MAX_HEAD - head.len())]);
    };
    let (status, extra, payload) = if complete {
        match route(&head) {
            Route::Metrics { head_only } => {
                let b = body();
                let len = b.len();
                let b = if head_only { String::new() } else { b };
                (
                    "200 OK",
                    format!("Content-Type: {CONTENT_TYPE}\r\nContent-Length: {len}\r\n"),
                    b,
                )
            }
            Route::NotFound => plain("404 Not Found", "", "only /metrics here\n"),
            Route::MethodNotAllowed => plain(
                "405 Method Not Allowed",
                "Allow: GET, HEAD\r\n",
                "GET /metrics\n",
            ),
            Route::BadRequest => plain("400 Bad Request", "", "not an HTTP/1.x request\n"),
        }
    } else {
        plain(
            "431 Request Header Fields Too Large",
            "",
            "request head over 8192 bytes\n",
        )
    };
    let left = DEADLINE
        .checked_sub(start.elapsed())
        .unwrap_or(Duration::from_millis(1))
        .max(Duration::from_millis(1));
    stream.set_write_timeout(Some(left))?;
    stream
        .write_all(format!("HTTP/1.1 {status}\r\n{extra}Connection: close\r\n\r\n").as_bytes())?;
    stream.write_all(payload.as_bytes())?;
    stream.flush()?;
    // Lingering close: closing with unread input would reset the connection and could lose
    // the answer (a 431 to a head still coming); send FIN, drain a little, then close.
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut drained = 0;
    while drained < 4 * MAX_HEAD {
        let Some(left) = DEADLINE
            .checked_sub(start.elapsed())
            .filter(|d| !d.is_zero())
        else {
            break;
        };
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
    Ok(())
}

fn plain(status: &'static str, extra: &str, body: &str) -> (&'static str, String, String) {
    (
        status,
        format!(
            "{extra}Content-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n",
            body.len()
        ),
        body.to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn request_lines() {
        // RFC 9112 §3: request-line = method SP request-target SP HTTP-version.
        let get = Route::Metrics { head_only: false };
        assert_eq!(route(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), get);
        assert_eq!(route(b"GET /metrics?name[]=x HTTP/1.0\r\n\r\n"), get);
        assert_eq!(
            route(b"HEAD /metrics HTTP/1.1\r\n\r\n"),
            Route::Metrics { head_only: true }
        );
        assert_eq!(route(b"GET / HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(route(b"GET /metricsx HTTP/1.1\r\n\r\n"), Route::NotFound);
        // RFC 9110 §9.1: the method token is case-sensitive.
        assert_eq!(
            route(b"get /metrics HTTP/1.1\r\n\r\n"),
            Route::MethodNotAllowed
        );
        assert_eq!(
            route(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Route::MethodNotAllowed
        );
        assert_eq!(route(b"GET /metrics\r\n\r\n"), Route::BadRequest);
        assert_eq!(route(b"GET  /metrics HTTP/1.1\r\n\r\n"), Route::BadRequest);
        assert_eq!(route(b"GET /metrics HTTP/2\r\n\r\n"), Route::BadRequest);
        assert_eq!(route(b""), Route::BadRequest);
    }

    proptest! {
        /// Any bytes route without panicking, and only a GET or HEAD request line for
        /// /metrics is a scrape.
        #[test]
        fn any_head_routes(head in proptest::collection::vec(any::<u8>(), 0..300)) {
            let r = route(&head);
            if let Route::Metrics { head_only } = r {
                let prefix: &[u8] = if head_only { b"HEAD /metrics" } else { b"GET /metrics" };
                prop_assert!(head.starts_with(prefix));
            }
        }
    }
}
