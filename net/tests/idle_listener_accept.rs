//! Scenario: a listener nobody connects to, whose accept is polled again and again by a select against a
//! stop future that wakes its task every few milliseconds (Sluice's accept loop, `server::accept_or_stop`).
//!
//! glommio 0.9.0 added the task's waker to the listener's source once per poll, and after 32 767 polls the
//! task's reference count overflowed and glommio panicked, stopping an idle broker about 11 minutes after it
//! started (third_party/glommio/PATCHES.md). Here 40 000 polls must pass, and the listener must still accept.
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::future::{self, Either};
use glommio::net::TcpListener;
use glommio::{LocalExecutorBuilder, Placement};

const POLLS: u32 = 40_000;

/// Pending for `left` polls, waking its task at once each time (as a timer that keeps firing would).
struct WakeSelf {
    left: u32,
}

impl Future for WakeSelf {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.left == 0 {
            return Poll::Ready(());
        }
        self.left -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[test]
fn an_accept_polled_forty_thousand_times_does_not_overflow_its_task() {
    LocalExecutorBuilder::new(Placement::Unbound)
        .name("idle-listener")
        .io_memory(512 << 10)
        .spawn(|| async move {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let address = listener.local_addr().unwrap();
            {
                let accept = listener.accept();
                futures::pin_mut!(accept);
                let stop = WakeSelf { left: POLLS };
                futures::pin_mut!(stop);
                match future::select(accept, stop).await {
                    Either::Left(_) => panic!("nobody connected, yet accept returned"),
                    Either::Right(((), _)) => {}
                }
            }
            // The same listener still accepts a connection.
            let connect = std::thread::spawn(move || std::net::TcpStream::connect(address).unwrap());
            let accepted = listener.accept().await.unwrap();
            let client = connect.join().unwrap();
            assert_eq!(accepted.peer_addr().unwrap(), client.local_addr().unwrap());
        })
        .unwrap()
        .join()
        .unwrap();
}
