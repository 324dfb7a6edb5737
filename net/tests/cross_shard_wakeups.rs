//! Scenario: two shards call each other over the channel mesh while each keeps parking between calls.
//!
//! Sluice carries a patch of glommio (third_party/glommio/PATCHES.md) that replaces the `membarrier` IPI a
//! reactor issued before parking with a SeqCst fence paired with one in the sender's notify. If that
//! handshake could lose a wakeup, a parked shard would sleep on a message it never sees, and a call would
//! hang. Each round here parks the receiver first (a short timer sleep, so it is idle in the kernel when the
//! message lands) or sends at once (racing the receiver on its way to park). A watchdog turns a hang into a
//! failure instead of a stuck test run.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{LocalExecutorBuilder, Placement};

const ROUNDS: u64 = 20_000;

#[test]
fn parked_shards_always_see_cross_shard_messages() {
    let mesh = MeshBuilder::<u64, _>::full(2, 64);
    let progress = Arc::new(AtomicU64::new(0));
    let mut executors = Vec::new();
    for shard in 0..2 {
        let (mesh, progress) = (mesh.clone(), progress.clone());
        let executor = LocalExecutorBuilder::new(Placement::Fixed(shard % 2))
            .name(&format!("wake-{shard}"))
            .io_memory(512 << 10)
            .spawn(move || async move {
                let (senders, receivers) = mesh.join().await.unwrap();
                let me = senders.peer_id();
                let peer = 1 - me;
                for round in 0..ROUNDS {
                    if me == 0 {
                        // Every third round, let the peer park before the message arrives.
                        if round % 3 == 0 {
                            glommio::timer::sleep(Duration::from_micros(50)).await;
                        }
                        senders.send_to(peer, round).await.unwrap();
                        assert_eq!(receivers.recv_from(peer).await.unwrap(), Some(round));
                        progress.store(round + 1, Ordering::Relaxed);
                    } else {
                        let got = receivers.recv_from(peer).await.unwrap();
                        assert_eq!(got, Some(round));
                        if round % 5 == 0 {
                            glommio::timer::sleep(Duration::from_micros(30)).await;
                        }
                        senders.send_to(peer, round).await.unwrap();
                    }
                }
            })
            .unwrap();
        executors.push(executor);
    }
    // A lost wakeup stalls progress for good; a slow machine only slows it.
    let mut last = (0, Instant::now());
    while progress.load(Ordering::Relaxed) < ROUNDS {
        std::thread::sleep(Duration::from_millis(100));
        let now = progress.load(Ordering::Relaxed);
        if now != last.0 {
            last = (now, Instant::now());
        }
        assert!(
            last.1.elapsed() < Duration::from_secs(30),
            "no cross-shard round trip completed for 30 s, stuck at round {now}: a lost wakeup"
        );
    }
    for executor in executors {
        executor.join().unwrap();
    }
}
