//! Connections to the other voters' controller listeners: [`PeerClient`] implements
//! [`PeerTransport`] for shard 0.
//!
//! One link per voter, opened on first use and kept: a task connects (and reconnects with a back-off),
//! exchanges hellos, then writes queued frames while a reader task hands responses to their waiting
//! requests. Raft messages wait in a bounded queue and are dropped past it (Raft resends); requests wait
//! for their answer or their timeout. A connection that fails fails every request waiting on it.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::channel::oneshot;
use futures::future::{self, Either};
use futures::AsyncReadExt;
use glommio::net::TcpStream;
use sluice_engine::watch::OffsetWatch;
use sluice_replication::metadata::NodeId;
use sluice_replication::transport::{
    LocalFuture, PeerRequest, PeerResponse, PeerService, PeerTransport, TransportError,
};

use super::{read_frame, write_frame, PeerFrame};

/// Raft messages queued per peer before new ones are dropped.
const RAFT_QUEUE_LIMIT: usize = 4096;
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const RECONNECT_BACKOFF: Duration = Duration::from_millis(200);
/// After a peer refused this node (another cluster, other voters): wait longer, and say so once a minute.
const REFUSED_BACKOFF: Duration = Duration::from_secs(5);

struct Link {
    node: NodeId,
    addr: SocketAddr,
    outbox: RefCell<VecDeque<PeerFrame>>,
    queued_raft: Cell<usize>,
    pending: RefCell<HashMap<u64, oneshot::Sender<PeerResponse>>>,
    next_id: Cell<u64>,
    wake: OffsetWatch,
    last_refusal_log: Cell<Option<Instant>>,
}

impl Link {
    fn push(&self, frame: PeerFrame) {
        self.outbox.borrow_mut().push_back(frame);
        self.wake.advance(self.wake.get() + 1);
    }
}

pub struct PeerClient {
    this: Weak<PeerClient>,
    peers: BTreeMap<NodeId, SocketAddr>,
    links: RefCell<HashMap<NodeId, Rc<Link>>>,
    service: RefCell<Option<Weak<dyn PeerService>>>,
}

impl PeerClient {
    /// A client for `peers` (the voters' controller listeners).
    pub fn new(peers: BTreeMap<NodeId, SocketAddr>) -> Rc<PeerClient> {
        Rc::new_cyclic(|this| PeerClient {
            this: this.clone(),
            peers,
            links: RefCell::new(HashMap::new()),
            service: RefCell::new(None),
        })
    }

    /// The node this client speaks for: its hello, and its judgement of the peers' hellos.
    pub fn set_service(&self, service: Weak<dyn PeerService>) {
        *self.service.borrow_mut() = Some(service);
    }

    fn service(&self) -> Option<Rc<dyn PeerService>> {
        self.service.borrow().as_ref().and_then(Weak::upgrade)
    }

    /// The link to `node`, started on first use.
    fn link(&self, node: NodeId) -> Result<Rc<Link>, TransportError> {
        if let Some(link) = self.links.borrow().get(&node) {
            return Ok(link.clone());
        }
        let addr = *self.peers.get(&node).ok_or(TransportError::UnknownPeer { node })?;
        let link = Rc::new(Link {
            node,
            addr,
            outbox: RefCell::new(VecDeque::new()),
            queued_raft: Cell::new(0),
            pending: RefCell::new(HashMap::new()),
            next_id: Cell::new(1),
            wake: OffsetWatch::new(0),
            last_refusal_log: Cell::new(None),
        });
        self.links.borrow_mut().insert(node, link.clone());
        let client = self.this.clone();
        let running = link.clone();
        glommio::spawn_local(async move { run_link(client, running).await }).detach();
        Ok(link)
    }
}

/// Keeps one peer's connection up for as long as the client lives.
async fn run_link(client: Weak<PeerClient>, link: Rc<Link>) {
    loop {
        let Some(service) = client.upgrade().and_then(|c| c.service()) else {
            glommio::timer::sleep(RECONNECT_BACKOFF).await;
            if client.upgrade().is_none() {
                return;
            }
            continue;
        };
        let backoff = match connect_and_serve(&link, service).await {
            Ok(()) => RECONNECT_BACKOFF,
            Err(LinkError::Refused { reason, peer_cluster_id }) => {
                if let Some(service) = client.upgrade().and_then(|c| c.service()) {
                    service.on_refused(link.node, &peer_cluster_id, &reason);
                }
                let due = link.last_refusal_log.get().is_none_or(|at| at.elapsed() >= Duration::from_secs(60));
                if due {
                    link.last_refusal_log.set(Some(Instant::now()));
                    tracing::error!(peer = link.node, addr = %link.addr, %reason, "controller peer refused this node");
                }
                REFUSED_BACKOFF
            }
            Err(LinkError::Failed(error)) => {
                tracing::debug!(peer = link.node, addr = %link.addr, %error, "controller peer connection failed");
                RECONNECT_BACKOFF
            }
        };
        // Everything waiting on this connection fails, and is not sent later behind the caller's back: the
        // callers retry as they see fit.
        link.pending.borrow_mut().clear();
        link.outbox.borrow_mut().retain(|frame| !matches!(frame, PeerFrame::Request { .. }));
        glommio::timer::sleep(backoff).await;
        if client.upgrade().is_none() {
            return;
        }
    }
}

enum LinkError {
    /// The peer will not talk to this node; its cluster id when it said (in its hello or refusal).
    Refused {
        reason: String,
        peer_cluster_id: String,
    },
    Failed(String),
}

async fn connect_and_serve(link: &Rc<Link>, service: Rc<dyn PeerService>) -> Result<(), LinkError> {
    let stream = TcpStream::connect_timeout(link.addr, CONNECT_TIMEOUT)
        .await
        .map_err(|e| LinkError::Failed(format!("connect: {e}")))?;
    stream.set_nodelay(true).map_err(|e| LinkError::Failed(e.to_string()))?;
    let (mut reader, mut writer) = stream.split();
    write_frame(&mut writer, &PeerFrame::Hello(service.hello())).await.map_err(|e| LinkError::Failed(e.to_string()))?;
    let hello = {
        let read = read_frame(&mut reader);
        let timer = glommio::timer::sleep(Duration::from_secs(5));
        futures::pin_mut!(read);
        futures::pin_mut!(timer);
        match future::select(read, timer).await {
            Either::Left((Ok(Some(frame)), _)) => frame,
            Either::Left((Ok(None), _)) => return Err(LinkError::Failed("closed during the hello".into())),
            Either::Left((Err(error), _)) => return Err(LinkError::Failed(error.to_string())),
            Either::Right(_) => return Err(LinkError::Failed("no hello within 5 s".into())),
        }
    };
    match hello {
        PeerFrame::Hello(peer) => {
            if peer.node_id != link.node {
                return Err(LinkError::Refused {
                    reason: format!(
                        "the controller listener at {} is node {}, but controller.quorum.voters says node {}",
                        link.addr, peer.node_id, link.node
                    ),
                    peer_cluster_id: String::new(),
                });
            }
            service
                .accept(&peer)
                .map_err(|reason| LinkError::Refused { reason, peer_cluster_id: peer.cluster_id.clone() })?;
        }
        PeerFrame::Refused { reason, cluster_id } => {
            return Err(LinkError::Refused { reason, peer_cluster_id: cluster_id });
        }
        other => return Err(LinkError::Failed(format!("expected a hello, got {other:?}"))),
    }
    tracing::debug!(peer = link.node, addr = %link.addr, "controller peer connected");
    let reading = link.clone();
    let closed = Rc::new(Cell::new(false));
    let reader_closed = closed.clone();
    let reader_task = glommio::spawn_local(async move {
        loop {
            match read_frame(&mut reader).await {
                Ok(Some(PeerFrame::Response { id, response })) => {
                    if let Some(waiter) = reading.pending.borrow_mut().remove(&id) {
                        let _ = waiter.send(response);
                    }
                }
                Ok(Some(other)) => {
                    tracing::debug!(peer = reading.node, ?other, "unexpected frame from a controller peer")
                }
                Ok(None) | Err(_) => break,
            }
        }
        reader_closed.set(true);
        reading.wake.advance(reading.wake.get() + 1);
    });
    let result = loop {
        let frames: Vec<PeerFrame> = link.outbox.borrow_mut().drain(..).collect();
        link.queued_raft.set(0);
        let mut failed = None;
        for frame in &frames {
            if let Err(error) = write_frame(&mut writer, frame).await {
                failed = Some(error.to_string());
                break;
            }
        }
        if let Some(error) = failed {
            break Err(LinkError::Failed(error));
        }
        if closed.get() {
            break Err(LinkError::Failed("the peer closed the connection".into()));
        }
        let seen = link.wake.get();
        if link.outbox.borrow().is_empty() {
            let _ = link.wake.wait_for(seen + 1).await;
        }
    };
    drop(writer);
    reader_task.cancel().await;
    result
}

impl PeerTransport for PeerClient {
    fn send_raft(&self, to: NodeId, message: Vec<u8>) {
        let Ok(link) = self.link(to) else {
            tracing::debug!(to, "raft message for a node that is not a voter dropped");
            return;
        };
        if link.queued_raft.get() >= RAFT_QUEUE_LIMIT {
            return;
        }
        link.queued_raft.set(link.queued_raft.get() + 1);
        link.push(PeerFrame::Raft(Bytes::from(message)));
    }

    fn request(
        &self,
        to: NodeId,
        request: PeerRequest,
        timeout: Duration,
    ) -> LocalFuture<'_, Result<PeerResponse, TransportError>> {
        Box::pin(async move {
            let link = self.link(to)?;
            let id = link.next_id.get();
            link.next_id.set(id + 1);
            let (done, answer) = oneshot::channel();
            link.pending.borrow_mut().insert(id, done);
            link.push(PeerFrame::Request { id, request });
            let timer = glommio::timer::sleep(timeout);
            futures::pin_mut!(timer);
            match future::select(answer, timer).await {
                Either::Left((Ok(response), _)) => Ok(response),
                Either::Left((Err(_), _)) => {
                    Err(TransportError::Unreachable { node: to, reason: "the connection failed".into() })
                }
                Either::Right(_) => {
                    link.pending.borrow_mut().remove(&id);
                    Err(TransportError::TimedOut { node: to, timeout_ms: timeout.as_millis() as u64 })
                }
            }
        })
    }
}
