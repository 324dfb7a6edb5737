//! The controller listener on shard 0: accepts other nodes' connections and hands what they send to this
//! node's [`PeerService`].
//!
//! Each connection must open with a hello the service accepts (same cluster, same voter set, another node
//! id); otherwise it gets a `Refused` frame with the reason, the refusal is logged, and it is closed.
//! Requests run concurrently (a metadata fetch long-polls) and their responses carry the request's id.
//! Connections are capped, and a connection's frames are bounded like the Kafka port's.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use futures::future::{self, Either};
use futures::AsyncReadExt;
use glommio::channels::local_channel;
use glommio::net::{TcpListener, TcpStream};
use sluice_replication::transport::PeerService;

use super::{read_frame, write_frame, PeerFrame};

/// Controller-listener connections accepted at once.
const MAX_PEER_CONNECTIONS: usize = 1024;
/// Responses queued per connection before its requests wait.
const RESPONSE_QUEUE: usize = 256;

/// Accepts until `stop` resolves.
pub async fn serve(listener: TcpListener, service: Rc<dyn PeerService>, stop: impl std::future::Future<Output = ()>) {
    futures::pin_mut!(stop);
    let open = Rc::new(Cell::new(0usize));
    loop {
        let Some(stream) = crate::server::accept_or_stop(&listener, stop.as_mut(), "controller listener").await else {
            return;
        };
        if open.get() >= MAX_PEER_CONNECTIONS {
            tracing::warn!(limit = MAX_PEER_CONNECTIONS, "controller listener: connection refused, too many open");
            continue;
        }
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        let open = open.clone();
        glommio::spawn_local(async move {
            open.set(open.get() + 1);
            let peer = stream.peer_addr().ok();
            if let Err(reason) = serve_connection(stream, service).await {
                tracing::debug!(?peer, %reason, "controller listener: connection closed");
            }
            open.set(open.get() - 1);
        })
        .detach();
    }
}

async fn serve_connection(stream: TcpStream, service: Rc<dyn PeerService>) -> Result<(), String> {
    let peer_addr = stream.peer_addr().ok();
    let (mut reader, mut writer) = stream.split();
    let first = {
        let read = read_frame(&mut reader);
        let timer = glommio::timer::sleep(Duration::from_secs(10));
        futures::pin_mut!(read);
        futures::pin_mut!(timer);
        match future::select(read, timer).await {
            Either::Left((result, _)) => result.map_err(|e| e.to_string())?,
            Either::Right(_) => return Err("no hello within 10 s".into()),
        }
    };
    let hello = match first {
        Some(PeerFrame::Hello(hello)) => hello,
        Some(other) => return Err(format!("expected a hello, got {other:?}")),
        None => return Ok(()),
    };
    if let Err(reason) = service.accept(&hello) {
        tracing::error!(peer = hello.node_id, addr = ?peer_addr, %reason, "refused a controller peer");
        let refusal = PeerFrame::Refused { reason: reason.clone(), cluster_id: service.hello().cluster_id };
        let _ = write_frame(&mut writer, &refusal).await;
        return Err(reason);
    }
    write_frame(&mut writer, &PeerFrame::Hello(service.hello())).await.map_err(|e| e.to_string())?;
    let from = hello.node_id;
    let (responses, outgoing) = local_channel::new_bounded::<PeerFrame>(RESPONSE_QUEUE);
    let writer_task = glommio::spawn_local(async move {
        while let Some(frame) = outgoing.recv().await {
            if write_frame(&mut writer, &frame).await.is_err() {
                return;
            }
        }
    });
    let responses = Rc::new(responses);
    let result = loop {
        match read_frame(&mut reader).await {
            Ok(Some(PeerFrame::Raft(bytes))) => service.on_raft(from, &bytes),
            Ok(Some(PeerFrame::Request { id, request })) => {
                let service = service.clone();
                let responses = responses.clone();
                glommio::spawn_local(async move {
                    let response = service.handle(from, request).await;
                    let _ = responses.send(PeerFrame::Response { id, response }).await;
                })
                .detach();
            }
            Ok(Some(other)) => break Err(format!("unexpected frame {other:?}")),
            Ok(None) => break Ok(()),
            Err(error) => break Err(error.to_string()),
        }
    };
    service.on_disconnect(from);
    drop(responses);
    writer_task.cancel().await;
    result
}
