//! Client connections on one shard.
//!
//! Every shard accepts on the same port (SO_REUSEPORT), so the kernel spreads connections over cores; the
//! accepting shard owns the connection for its life. Per connection, a reader decodes frames and starts one
//! task per request, so requests run concurrently, and a writer awaits those tasks in arrival order, so
//! responses leave in request order (Kafka's rule). At most `queued.max.requests.per.connection` requests are
//! in flight; past that the reader stops reading, which pushes back on the client through TCP.
//!
//! Request memory is bounded per shard by `queued.max.request.bytes` (`budget.rs`): before a frame's body is
//! allocated, the reader reserves its declared size from the shard's budget, and the reservation lives in the
//! request's task until the handler has answered (forwarded work included). While the budget is spent, readers
//! wait for their turn and read nothing, so the shard never holds more request bytes than the budget, however
//! many connections send large frames at once. A connection that stops sending in the middle of a frame
//! while others wait for the budget is closed after [`STALLED_FRAME`], so slow senders cannot keep a shard's
//! intake stalled.
//!
//! A malformed frame, an oversized one, or an idle connection closes that connection with a log line; no other
//! connection notices.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::future::{self, Either};
use futures::io::{ReadHalf, WriteHalf};
use futures::{AsyncReadExt, AsyncWrite};
use glommio::channels::local_channel;
use glommio::net::{TcpListener, TcpStream};
use kafka_protocol::messages::ApiKey;
use sluice_replication::config::broker;
use tracing::Instrument;

use crate::budget::{RequestBudget, Reservation};
use crate::error::ConnectionError;
use crate::framing::FrameBuffer;
use crate::handlers::{self, decode_frame, Decoded};
use crate::response::{self, Response};
use crate::sasl::{SaslSession, Step};
use crate::shard::Shard;

#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// `socket.request.max.bytes`.
    pub max_request_bytes: usize,
    /// `max.connections`, divided over the shards.
    pub max_connections_per_shard: usize,
    /// `connections.max.idle.ms`.
    pub idle_timeout: Duration,
    /// `queued.max.requests.per.connection`.
    pub max_in_flight: usize,
    /// `queued.max.request.bytes`: request bytes a shard holds in memory at once (`u64::MAX`: unbounded).
    pub max_queued_request_bytes: u64,
}

impl ConnectionLimits {
    pub fn from_shard(shard: &Shard) -> ConnectionLimits {
        let image = shard.image();
        shard.with_config(&image, |config| ConnectionLimits {
            max_request_bytes: config.get(broker::SOCKET_REQUEST_MAX_BYTES) as usize,
            max_connections_per_shard: (config.get(broker::MAX_CONNECTIONS) as usize).div_ceil(shard.shards()),
            idle_timeout: Duration::from_millis(config.get(broker::CONNECTIONS_MAX_IDLE_MS) as u64),
            max_in_flight: config.get(broker::QUEUED_MAX_REQUESTS_PER_CONNECTION) as usize,
            max_queued_request_bytes: queued_request_bytes(
                config.get(broker::QUEUED_MAX_REQUEST_BYTES),
                config.get(broker::SOCKET_REQUEST_MAX_BYTES),
            ),
        })
    }
}

/// How long a frame in progress may receive nothing while other connections wait for the request budget.
/// A client that stops in the middle of a frame would otherwise keep its share of the budget, and the shard's
/// intake with it, until `connections.max.idle.ms` (10 minutes by default).
pub const STALLED_FRAME: Duration = Duration::from_secs(10);

/// A shard's request budget from `queued.max.request.bytes`: Kafka's `-1` (any value <= 0) leaves it
/// unbounded; a positive value is raised to `socket.request.max.bytes` if below it, so that a request of the
/// largest size always fits (the broker refuses such a configuration at startup; this keeps the invariant
/// for any caller).
pub fn queued_request_bytes(queued_max_request_bytes: i64, socket_request_max_bytes: i32) -> u64 {
    match u64::try_from(queued_max_request_bytes) {
        Ok(0) | Err(_) => u64::MAX,
        Ok(bytes) => bytes.max(u64::try_from(socket_request_max_bytes).unwrap_or(0)),
    }
}

/// A listening socket with SO_REUSEPORT, made with socket2 so a bad address is an error, not a panic.
pub fn bind_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let domain = if addr.is_ipv6() { socket2::Domain::IPV6 } else { socket2::Domain::IPV4 };
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    // SAFETY: the fd was just created by socket2 and ownership moves to glommio's listener.
    Ok(unsafe { TcpListener::from_raw_fd(socket.into_raw_fd()) })
}

/// The next connection `listener` accepts, or `None` once `stop` resolves. A failed accept (out of file
/// descriptors, say) is logged and retried 10 ms later. Shared by the client, controller and admin listeners.
pub(crate) async fn accept_or_stop(
    listener: &TcpListener,
    mut stop: Pin<&mut impl std::future::Future<Output = ()>>,
    listener_name: &str,
) -> Option<TcpStream> {
    loop {
        let accept = listener.accept();
        futures::pin_mut!(accept);
        match future::select(accept, stop.as_mut()).await {
            Either::Left((Ok(stream), _)) => return Some(stream),
            Either::Left((Err(error), _)) => {
                tracing::warn!(%error, listener = listener_name, "accept failed");
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
            Either::Right(_) => return None,
        }
    }
}

/// Accepts connections until `stop` resolves.
pub async fn accept_loop(
    shard: Rc<Shard>,
    listener: TcpListener,
    limits: ConnectionLimits,
    stop: impl std::future::Future<Output = ()>,
) {
    futures::pin_mut!(stop);
    let budget = RequestBudget::new(limits.max_queued_request_bytes);
    crate::metrics::register_budget(&budget);
    loop {
        let Some(stream) = accept_or_stop(&listener, stop.as_mut(), "client listener").await else { return };
        let peer = stream.peer_addr().ok();
        if shard.connections.get() >= limits.max_connections_per_shard {
            tracing::warn!(
                shard = shard.id,
                ?peer,
                limit = limits.max_connections_per_shard,
                "connection refused: max.connections reached"
            );
            continue;
        }
        if let Err(error) = response::set_nonblocking(stream.as_raw_fd())
            .and_then(|()| stream.set_nodelay(true).map_err(io::Error::from))
        {
            tracing::warn!(?peer, %error, "could not configure a new connection");
            continue;
        }
        let shard = shard.clone();
        let budget = budget.clone();
        glommio::spawn_local(async move {
            shard.connections.set(shard.connections.get() + 1);
            if let Err(error) = serve_connection(&shard, stream, limits, &budget).await {
                tracing::warn!(shard = shard.id, ?peer, %error, "connection closed");
            }
            shard.connections.set(shard.connections.get() - 1);
        })
        .detach();
    }
}

/// The writing half plus the raw fd, so fetch responses can `sendfile` into it.
struct Writer {
    half: WriteHalf<TcpStream>,
    fd: RawFd,
}

impl AsRawFd for Writer {
    fn as_raw_fd(&self) -> RawFd {
        self.fd
    }
}

impl AsyncWrite for Writer {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.half).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.half).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.half).poll_close(cx)
    }
}

async fn serve_connection(
    shard: &Rc<Shard>,
    stream: TcpStream,
    limits: ConnectionLimits,
    budget: &RequestBudget,
) -> Result<(), ConnectionError> {
    let fd = stream.as_raw_fd();
    let stream_peer = stream.peer_addr().ok();
    let (reader, writer) = stream.split();
    let mut writer = Writer { half: writer, fd };
    let (queue, responses) = local_channel::new_bounded::<glommio::Task<Response>>(limits.max_in_flight.max(1));
    let write_failed = Rc::new(Cell::new(None::<io::Error>));
    let failed = write_failed.clone();
    let writer_task = glommio::spawn_local(async move {
        while let Some(task) = responses.recv().await {
            let response = task.await;
            if let Err(error) = response::send(&mut writer, response).await {
                failed.set(Some(error));
                return;
            }
        }
    });
    let peer_host = stream_peer.map(|peer| format!("/{}", peer.ip())).unwrap_or_default();
    let result = read_requests(shard, reader, &queue, limits, budget, &write_failed, &peer_host).await;
    drop(queue);
    writer_task.await;
    if let Some(error) = write_failed.take() {
        return Err(ConnectionError::Io { operation: "send", source: error });
    }
    result
}

#[allow(clippy::too_many_arguments)]
async fn read_requests(
    shard: &Rc<Shard>,
    mut reader: ReadHalf<TcpStream>,
    queue: &local_channel::LocalSender<glommio::Task<Response>>,
    limits: ConnectionLimits,
    budget: &RequestBudget,
    write_failed: &Rc<Cell<Option<io::Error>>>,
    peer_host: &String,
) -> Result<(), ConnectionError> {
    let mut frames = FrameBuffer::new(limits.max_request_bytes);
    let mut client_id = ClientId::default();
    // The budget held by the frame in progress; it moves into that request's task.
    let mut reservation: Option<Reservation> = None;
    // On a SASL listener: the exchange, run here frame by frame until the connection has a principal.
    let mut sasl = SaslSession::for_listener(shard);
    loop {
        loop {
            if let Some(frame) = frames.take_frame() {
                let held = reservation.take();
                if let Some(session) = sasl.as_mut().filter(|session| session.principal().is_none()) {
                    if let Step::Answer { bytes, close } = session.step(shard, frame.clone())? {
                        drop(held);
                        let task = glommio::spawn_local(async move { Response::Frame(bytes) });
                        if queue.send(task).await.is_err() {
                            return Ok(());
                        }
                        match close {
                            Some(reason) => return Err(ConnectionError::AuthenticationFailed(reason)),
                            None => continue,
                        }
                    }
                }
                let mut decoded = decode_frame(frame)?;
                if let Decoded::Request(header, _) = &mut decoded {
                    header.client_host.clone_from(peer_host);
                    header.principal = sasl.as_ref().and_then(|session| session.principal()).map(String::from);
                }
                let shard = shard.clone();
                let header = match &decoded {
                    Decoded::Request(header, _) | Decoded::Unsupported(header) => header,
                };
                let (api_key, api_version, correlation_id) =
                    (header.api_key, header.api_version, header.correlation_id);
                client_id.update(header.client_id.as_deref());
                let client = client_id.current();
                // Disabled (the default below RUST_LOG=debug), this is `Span::none()`: no field is evaluated
                // and nothing is allocated.
                let span = tracing::debug_span!(
                    "request",
                    api = ?ApiName(api_key),
                    version = api_version,
                    correlation_id,
                    client_id = &*client,
                );
                let in_flight = crate::metrics::InFlight::start();
                let decoded_at = Instant::now();
                let task = glommio::spawn_local(async move {
                    let _in_flight = in_flight;
                    let started = Instant::now();
                    let response = handlers::dispatch(&shard, decoded).instrument(span.clone()).await;
                    let answered = Instant::now();
                    crate::metrics::record_request(api_key, answered - started);
                    if crate::metrics::is_slow_request(api_key, answered - decoded_at) {
                        let _in_span = span.enter();
                        tracing::warn!(
                            api = ?ApiName(api_key),
                            version = api_version,
                            correlation_id,
                            client_id = &*client,
                            queue_ms = millis(started - decoded_at),
                            handle_ms = millis(answered - started),
                            total_ms = millis(answered - decoded_at),
                            "slow request"
                        );
                    }
                    // The request's bytes are dropped with `dispatch`: give them back to the budget.
                    drop(held);
                    response
                });
                if queue.send(task).await.is_err() {
                    return Ok(());
                }
                continue;
            }
            match frames.next_size()? {
                Some(size) => {
                    // Past the budget this waits, reading nothing, until other requests are answered.
                    reservation = Some(budget.reserve(size as u64).await);
                    frames.start_frame(size);
                }
                None => break,
            }
        }
        if write_failed.take().is_some() {
            return Ok(());
        }
        let frame_in_progress = frames.frame_in_progress();
        let received = {
            let read = reader.read(frames.read_space());
            let idle = glommio::timer::sleep(limits.idle_timeout);
            futures::pin_mut!(read);
            futures::pin_mut!(idle);
            loop {
                // A frame in progress holds its size of the budget: a sender that stops mid-frame while others
                // wait for the budget is closed after STALLED_FRAME, not after connections.max.idle.ms.
                let stall_check = glommio::timer::sleep(STALLED_FRAME.min(limits.idle_timeout));
                futures::pin_mut!(stall_check);
                let deadline = future::select(idle.as_mut(), stall_check);
                match future::select(read.as_mut(), deadline).await {
                    Either::Left((received, _)) => break received,
                    Either::Right((Either::Left(_), _)) => return Err(ConnectionError::Idle),
                    Either::Right((Either::Right(_), _)) => {
                        if let Some(size) = frame_in_progress.filter(|_| budget.waiting() > 0) {
                            let stalled_ms = STALLED_FRAME.as_millis() as u64;
                            return Err(ConnectionError::StalledFrame { size, stalled_ms });
                        }
                    }
                }
            }
        };
        match received {
            Ok(0) => return Ok(()),
            Ok(n) => frames.commit_read(n),
            Err(error) => {
                if matches!(error.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe) {
                    return Ok(());
                }
                return Err(ConnectionError::Io { operation: "receive", source: error });
            }
        }
    }
}

/// A connection's client id, shared by its requests' spans and slow-request lines. Clients send the same id
/// on every request of a connection, so it is allocated when it changes, not per request.
#[derive(Default)]
struct ClientId(Option<Rc<str>>);

impl ClientId {
    fn update(&mut self, sent: Option<&str>) {
        let sent = sent.unwrap_or("");
        if self.0.as_deref() != Some(sent) {
            self.0 = Some(Rc::from(sent));
        }
    }

    fn current(&self) -> Rc<str> {
        self.0.clone().unwrap_or_else(|| Rc::from(""))
    }
}

/// An API key as Kafka names the API (`Produce`), or its number when Sluice does not know it; formatted only
/// when a log line or an enabled span asks.
struct ApiName(i16);

impl std::fmt::Debug for ApiName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match ApiKey::try_from(self.0) {
            Ok(key) => write!(f, "{key:?}"),
            Err(()) => write!(f, "{}", self.0),
        }
    }
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_id_is_allocated_when_it_changes_only() {
        let mut id = ClientId::default();
        id.update(Some("rdkafka"));
        let first = id.current();
        id.update(Some("rdkafka"));
        assert!(Rc::ptr_eq(&first, &id.current()));
        id.update(None);
        assert_eq!(&*id.current(), "");
        assert_eq!(format!("{:?} {:?}", ApiName(0), ApiName(999)), "Produce 999");
    }
}
