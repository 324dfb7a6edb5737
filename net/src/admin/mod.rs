//! The admin listener (`admin.listeners`): `GET /metrics`, `GET /health/live` and `GET /health/ready` over
//! a small HTTP/1.1 server on glommio ([`http`] parses the request head).
//!
//! It runs on shard 0 only, on a listener of its own without SO_REUSEPORT: scrapes come every few seconds
//! and gather from every shard over the mesh anyway ([`crate::metrics::gather`]), so spreading them over the
//! shards would buy nothing, while one accept loop keeps the connection bound exact and lets a second broker on
//! the same address fail to bind instead of sharing the port.
//!
//! Bounded like the Kafka port: at most [`MAX_CONNECTIONS`] connections at once (more are closed on accept),
//! a request head of at most [`http::MAX_HEAD_BYTES`] (431, then close), a head that has not arrived within
//! [`READ_TIMEOUT`] closes the connection, and an answer not taken within [`WRITE_TIMEOUT`] too. One request
//! per connection (`Connection: close`); only GET (405 otherwise); unknown paths get 404.

pub mod http;

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::time::Duration;

use futures::future::{self, Either};
use futures::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};

use self::http::{parse_head, response, HeadError, Status, MAX_HEAD_BYTES};
use crate::metrics::{self, ProcessStats};
use crate::shard::Shard;

/// Admin connections open at once.
pub const MAX_CONNECTIONS: usize = 64;
/// How long a connection may take to send its request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client may take to receive the answer.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether the node serves: `Ok` when ready, else a short reason.
pub type Readiness = Rc<dyn Fn() -> Result<(), String>>;

/// What the admin server answers with.
#[derive(Clone)]
pub struct AdminSettings {
    /// `metrics.per.partition.enabled`: a log end and size series per partition.
    pub per_partition: bool,
    pub readiness: Readiness,
}

/// A listening socket for the admin listener: SO_REUSEADDR (a restart does not wait out TIME_WAIT) but not
/// SO_REUSEPORT, so an address another process serves is an error.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let domain = if addr.is_ipv6() { socket2::Domain::IPV6 } else { socket2::Domain::IPV4 };
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(128)?;
    // SAFETY: the fd was just created by socket2 and ownership moves to glommio's listener.
    Ok(unsafe { TcpListener::from_raw_fd(socket.into_raw_fd()) })
}

/// Serves the admin listener on this shard until `stop` resolves.
pub async fn serve(shard: Rc<Shard>, listener: TcpListener, settings: AdminSettings, stop: impl Future<Output = ()>) {
    futures::pin_mut!(stop);
    let open = Rc::new(Cell::new(0usize));
    loop {
        let Some(stream) = crate::server::accept_or_stop(&listener, stop.as_mut(), "admin listener").await else {
            return;
        };
        if open.get() >= MAX_CONNECTIONS {
            tracing::debug!(peer = ?stream.peer_addr().ok(), "admin connection refused: {MAX_CONNECTIONS} open");
            continue;
        }
        open.set(open.get() + 1);
        let (shard, settings, open) = (shard.clone(), settings.clone(), open.clone());
        glommio::spawn_local(async move {
            let peer = stream.peer_addr().ok();
            if let Err(error) = serve_connection(&shard, stream, &settings).await {
                tracing::debug!(?peer, %error, "admin connection closed");
            }
            open.set(open.get() - 1);
        })
        .detach();
    }
}

/// Awaits `operation` for at most `limit`.
async fn within<T>(limit: Duration, operation: impl Future<Output = io::Result<T>>) -> io::Result<T> {
    futures::pin_mut!(operation);
    let timer = glommio::timer::sleep(limit);
    futures::pin_mut!(timer);
    match future::select(operation, timer).await {
        Either::Left((result, _)) => result,
        Either::Right(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "admin connection too slow")),
    }
}

async fn serve_connection(shard: &Rc<Shard>, mut stream: TcpStream, settings: &AdminSettings) -> io::Result<()> {
    let answer = match read_head(&mut stream).await? {
        Ok((method, path, openmetrics)) => route(shard, settings, &method, &path, openmetrics).await,
        Err(error) => response(error.status(), "text/plain", &format!("{error}\n")),
    };
    within(WRITE_TIMEOUT, async {
        stream.write_all(&answer).await?;
        stream.close().await
    })
    .await
}

/// Reads the request head: its method and path, or the HTTP error to answer. The whole head must arrive
/// within [`READ_TIMEOUT`].
async fn read_head(stream: &mut TcpStream) -> io::Result<Result<(String, String, bool), HeadError>> {
    let mut received = vec![0u8; MAX_HEAD_BYTES];
    let mut filled = 0;
    let deadline = glommio::timer::sleep(READ_TIMEOUT);
    futures::pin_mut!(deadline);
    loop {
        match parse_head(&received[..filled]) {
            Ok(Some(head)) => {
                return Ok(Ok((head.method.to_string(), head.path.to_string(), head.accepts_openmetrics)))
            }
            Ok(None) => {}
            Err(error) => return Ok(Err(error)),
        }
        let read = stream.read(&mut received[filled..]);
        futures::pin_mut!(read);
        match future::select(read, deadline.as_mut()).await {
            Either::Left((Ok(0), _)) => {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed before a whole request head"))
            }
            Either::Left((Ok(n), _)) => filled += n,
            Either::Left((Err(error), _)) => return Err(error),
            Either::Right(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "request head too slow")),
        }
    }
}

async fn route(shard: &Rc<Shard>, settings: &AdminSettings, method: &str, path: &str, openmetrics: bool) -> Vec<u8> {
    const TEXT: &str = "text/plain; charset=utf-8";
    if !matches!(path, "/metrics" | "/health/live" | "/health/ready") {
        return response(Status::NotFound, TEXT, "not found; try /metrics, /health/live or /health/ready\n");
    }
    if method != "GET" {
        return response(Status::MethodNotAllowed, TEXT, "only GET\n");
    }
    match path {
        "/metrics" => {
            let snapshots = metrics::gather(shard, settings.per_partition).await;
            let text = metrics::encode(snapshots, ProcessStats::read());
            // OpenMetrics for a client that asks for it (Prometheus does); the classic text format otherwise,
            // which curl users and `promtool check metrics` read.
            if openmetrics {
                response(Status::Ok, "application/openmetrics-text; version=1.0.0; charset=utf-8", &text)
            } else {
                response(Status::Ok, "text/plain; version=0.0.4; charset=utf-8", &metrics::classic_text(&text))
            }
        }
        "/health/live" => response(Status::Ok, TEXT, "live\n"),
        _ => match (settings.readiness)() {
            Ok(()) => response(Status::Ok, TEXT, "ready\n"),
            Err(reason) => response(Status::ServiceUnavailable, TEXT, &format!("not ready: {reason}\n")),
        },
    }
}
