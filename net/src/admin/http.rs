//! The admin listener's HTTP/1.1, as little as it needs: the request head of a GET, parsed only once it has
//! fully arrived and only within [`MAX_HEAD_BYTES`], and responses that close the connection.
//!
//! The parser borrows from the bytes received and allocates nothing; bodies are never read (a request with one
//! is answered and the connection closed, so the body is never taken for a next request).

use std::fmt::Write as _;

/// The most bytes a request head (request line and headers) may take.
pub const MAX_HEAD_BYTES: usize = 8 << 10;

/// A request head, borrowed from the bytes received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHead<'a> {
    pub method: &'a str,
    /// The target's path, without its query string.
    pub path: &'a str,
    /// Bytes the head took, its blank line included.
    pub head_bytes: usize,
    /// The client accepts OpenMetrics (`Accept: application/openmetrics-text`, as Prometheus sends).
    pub accepts_openmetrics: bool,
}

/// Why a head cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("request head over {MAX_HEAD_BYTES} bytes")]
    TooLarge,
    #[error("malformed request head: {0}")]
    Malformed(&'static str),
}

impl HeadError {
    pub fn status(&self) -> Status {
        match self {
            HeadError::TooLarge => Status::HeaderFieldsTooLarge,
            HeadError::Malformed(_) => Status::BadRequest,
        }
    }
}

fn is_token(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Parses the request head at the start of `received`: `Ok(None)` while it has not fully arrived (and is
/// still within [`MAX_HEAD_BYTES`]), the head once its blank line is there, or why it cannot be served.
pub fn parse_head(received: &[u8]) -> Result<Option<RequestHead<'_>>, HeadError> {
    let window = &received[..received.len().min(MAX_HEAD_BYTES)];
    let Some(end) = window.windows(4).position(|w| w == b"\r\n\r\n").map(|at| at + 4) else {
        return if received.len() >= MAX_HEAD_BYTES { Err(HeadError::TooLarge) } else { Ok(None) };
    };
    let head = std::str::from_utf8(&window[..end - 4]).map_err(|_| HeadError::Malformed("not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::Malformed("request line is not METHOD TARGET VERSION"));
    };
    if !is_token(method) {
        return Err(HeadError::Malformed("bad method"));
    }
    if !target.starts_with('/') || target.bytes().any(|b| b.is_ascii_control()) {
        return Err(HeadError::Malformed("target is not an absolute path"));
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(HeadError::Malformed("not HTTP/1.0 or HTTP/1.1"));
    }
    let mut accepts_openmetrics = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(HeadError::Malformed("header line without a colon"));
        };
        if !is_token(name) {
            return Err(HeadError::Malformed("bad header name"));
        }
        if name.eq_ignore_ascii_case("accept") && value.contains("application/openmetrics-text") {
            accepts_openmetrics = true;
        }
    }
    let path = target.split_once('?').map_or(target, |(path, _query)| path);
    Ok(Some(RequestHead { method, path, head_bytes: end, accepts_openmetrics }))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    BadRequest,
    NotFound,
    MethodNotAllowed,
    RequestTimeout,
    HeaderFieldsTooLarge,
    ServiceUnavailable,
}

impl Status {
    pub fn code(self) -> u16 {
        match self {
            Status::Ok => 200,
            Status::BadRequest => 400,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::RequestTimeout => 408,
            Status::HeaderFieldsTooLarge => 431,
            Status::ServiceUnavailable => 503,
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::BadRequest => "Bad Request",
            Status::NotFound => "Not Found",
            Status::MethodNotAllowed => "Method Not Allowed",
            Status::RequestTimeout => "Request Timeout",
            Status::HeaderFieldsTooLarge => "Request Header Fields Too Large",
            Status::ServiceUnavailable => "Service Unavailable",
        }
    }
}

/// A whole response that closes the connection.
pub fn response(status: Status, content_type: &str, body: &str) -> Vec<u8> {
    let mut head = String::with_capacity(160);
    let _ = write!(
        head,
        "HTTP/1.1 {} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        status.code(),
        status.reason(),
        body.len()
    );
    if status == Status::MethodNotAllowed {
        head.push_str("Allow: GET\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body.as_bytes());
    bytes
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_get_parses_once_its_blank_line_arrives() {
        let request = b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\nrest";
        for cut in 0..request.len() - 4 {
            assert_eq!(parse_head(&request[..cut]), Ok(None), "cut at {cut}");
        }
        let head = parse_head(request).unwrap().unwrap();
        let expected =
            RequestHead { method: "GET", path: "/metrics", head_bytes: request.len() - 4, accepts_openmetrics: false };
        assert_eq!(head, expected);
        let head = parse_head(b"POST /health/ready HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert_eq!((head.method, head.path), ("POST", "/health/ready"));
        let prometheus =
            b"GET /metrics HTTP/1.1\r\naccept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5\r\n\r\n";
        assert!(parse_head(prometheus).unwrap().unwrap().accepts_openmetrics);
    }

    #[test]
    fn a_head_that_passes_the_limit_is_too_large_whether_or_not_it_ends() {
        let mut huge = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
        huge.resize(MAX_HEAD_BYTES - 1, b'a');
        assert_eq!(parse_head(&huge), Ok(None));
        huge.push(b'a');
        assert_eq!(parse_head(&huge), Err(HeadError::TooLarge));
        huge.extend_from_slice(b"\r\n\r\n");
        assert_eq!(parse_head(&huge), Err(HeadError::TooLarge));
    }

    #[test]
    fn garbage_is_malformed() {
        for bad in [
            &b"\x00\x00\x00\x10\x00\x12\x00\x03\r\n\r\n"[..],
            b"GET\r\n\r\n",
            b"GET /metrics\r\n\r\n",
            b"GET metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/2.0\r\n\r\n",
            b"GET /metrics HTTP/1.1 extra\r\n\r\n",
            b"G(T /metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\nbad name: x\r\n\r\n",
            b"GET /\xff HTTP/1.1\r\n\r\n",
        ] {
            assert!(matches!(parse_head(bad), Err(HeadError::Malformed(_))), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn responses_close_and_say_their_length() {
        let bytes = response(Status::MethodNotAllowed, "text/plain", "only GET\n");
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"), "{text}");
        assert!(text.contains("Content-Length: 9\r\n"), "{text}");
        assert!(text.contains("Connection: close\r\n"), "{text}");
        assert!(text.contains("Allow: GET\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\nonly GET\n"), "{text}");
    }
}
