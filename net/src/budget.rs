//! The shard's budget for request bytes held in memory (`queued.max.request.bytes`, per shard).
//!
//! Runs on one shard and is shared by every connection that shard accepted; nothing crosses shards. A
//! connection reserves a frame's declared size here *before* it allocates the frame's body, and the
//! reservation lives until the request's task has finished with the frame (its response is built, including
//! work forwarded to other shards, which the task awaits). Past the budget a connection waits here, and a
//! waiting connection reads nothing more from its socket, so TCP pushes back on the client.
//!
//! Reservations are granted strictly in arrival order: a large request waiting for room is never overtaken by
//! smaller ones arriving after it (glommio's `Semaphore` wakes any waiter that fits, which would starve a
//! maximum-size request behind a stream of small ones). A waiter dropped before its turn gives its turn up.
//!
//! **Invariant:** the bytes reserved never exceed the budget, and a single reservation never asks for more
//! than the whole budget (the configuration guarantees `queued.max.request.bytes >= socket.request.max.bytes`,
//! and the frame size is checked against the latter before reserving).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

/// A shard's request-memory budget. Cloning shares it.
#[derive(Debug, Clone)]
pub struct RequestBudget {
    inner: Rc<Inner>,
}

#[derive(Debug)]
struct Inner {
    capacity_bytes: u64,
    reserved_bytes: Cell<u64>,
    peak_reserved_bytes: Cell<u64>,
    next_ticket: Cell<u64>,
    /// Tickets still waiting, in arrival order, with the waker of their last poll.
    waiters: RefCell<BTreeMap<u64, Option<Waker>>>,
}

/// Bytes held against the budget until dropped.
#[derive(Debug)]
#[must_use = "the bytes are released as soon as the reservation is dropped"]
pub struct Reservation {
    inner: Rc<Inner>,
    bytes: u64,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let reserved = self.inner.reserved_bytes.get();
        assert!(reserved >= self.bytes, "request budget: released {} of {reserved} reserved bytes", self.bytes);
        self.inner.reserved_bytes.set(reserved - self.bytes);
        self.inner.wake_first();
    }
}

impl Reservation {
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

/// Removes a ticket that was dropped before it was granted, and lets the next one look.
struct Ticket<'a> {
    inner: &'a Inner,
    ticket: u64,
    granted: bool,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if !self.granted {
            self.inner.waiters.borrow_mut().remove(&self.ticket);
            self.inner.wake_first();
        }
    }
}

impl Inner {
    fn wake_first(&self) {
        let waker = self.waiters.borrow_mut().first_entry().and_then(|mut first| first.get_mut().take());
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl RequestBudget {
    /// A budget of `capacity_bytes` (`u64::MAX`: unbounded).
    pub fn new(capacity_bytes: u64) -> Self {
        RequestBudget {
            inner: Rc::new(Inner {
                capacity_bytes,
                reserved_bytes: Cell::new(0),
                peak_reserved_bytes: Cell::new(0),
                next_ticket: Cell::new(0),
                waiters: RefCell::new(BTreeMap::new()),
            }),
        }
    }

    pub fn capacity_bytes(&self) -> u64 {
        self.inner.capacity_bytes
    }

    /// Bytes reserved now.
    pub fn reserved_bytes(&self) -> u64 {
        self.inner.reserved_bytes.get()
    }

    /// The most bytes ever reserved at once.
    pub fn peak_reserved_bytes(&self) -> u64 {
        self.inner.peak_reserved_bytes.get()
    }

    /// Connections waiting for room.
    pub fn waiting(&self) -> usize {
        self.inner.waiters.borrow().len()
    }

    /// Waits until `bytes` fit in the budget and every earlier waiter has been served, then holds them.
    pub async fn reserve(&self, bytes: u64) -> Reservation {
        let inner = &*self.inner;
        assert!(
            bytes <= inner.capacity_bytes,
            "request budget: a reservation of {bytes} bytes exceeds the whole budget of {}",
            inner.capacity_bytes
        );
        let ticket = inner.next_ticket.get();
        inner.next_ticket.set(ticket + 1);
        inner.waiters.borrow_mut().insert(ticket, None);
        let mut pending = Ticket { inner, ticket, granted: false };
        poll_fn(|cx| {
            let first = inner.waiters.borrow().first_key_value().map(|(first, _)| *first);
            let reserved = inner.reserved_bytes.get();
            if first == Some(ticket) && inner.capacity_bytes - reserved >= bytes {
                inner.waiters.borrow_mut().remove(&ticket);
                pending.granted = true;
                let now = reserved + bytes;
                inner.reserved_bytes.set(now);
                inner.peak_reserved_bytes.set(inner.peak_reserved_bytes.get().max(now));
                // The next waiter may fit in what is left.
                inner.wake_first();
                return Poll::Ready(());
            }
            if let Some(slot) = inner.waiters.borrow_mut().get_mut(&ticket) {
                *slot = Some(cx.waker().clone());
            }
            Poll::Pending
        })
        .await;
        Reservation { inner: self.inner.clone(), bytes }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use futures::FutureExt;

    fn run<T>(future: impl std::future::Future<Output = T>) -> T {
        glommio::LocalExecutorBuilder::default().io_memory(512 << 10).make().unwrap().run(future)
    }

    #[test]
    fn a_reservation_past_the_budget_waits_until_bytes_are_released() {
        run(async {
            let budget = RequestBudget::new(100);
            let first = budget.reserve(60).await;
            let mut second = Box::pin(budget.reserve(60));
            assert!((&mut second).now_or_never().is_none(), "60 + 60 bytes fit in a budget of 100");
            assert_eq!(budget.reserved_bytes(), 60);
            assert_eq!(budget.waiting(), 1);
            drop(first);
            let second = second.await;
            assert_eq!(budget.reserved_bytes(), 60);
            assert_eq!(budget.peak_reserved_bytes(), 60);
            drop(second);
            assert_eq!(budget.reserved_bytes(), 0);
            assert_eq!(budget.waiting(), 0);
        });
    }

    #[test]
    fn reservations_are_granted_in_arrival_order() {
        run(async {
            let budget = RequestBudget::new(100);
            let held = budget.reserve(90).await;
            let mut large = Box::pin(budget.reserve(100));
            assert!((&mut large).now_or_never().is_none());
            // 10 bytes are free, but the large request came first: the small one waits behind it.
            let mut small = Box::pin(budget.reserve(10));
            assert!((&mut small).now_or_never().is_none());
            drop(held);
            let large = large.await;
            assert!((&mut small).now_or_never().is_none());
            drop(large);
            let small = small.await;
            assert_eq!(small.bytes(), 10);
        });
    }

    #[test]
    fn a_waiter_dropped_before_its_turn_lets_the_next_one_in() {
        run(async {
            let budget = RequestBudget::new(100);
            let held = budget.reserve(50).await;
            let mut large = Box::pin(budget.reserve(100));
            assert!((&mut large).now_or_never().is_none());
            let mut small = Box::pin(budget.reserve(50));
            assert!((&mut small).now_or_never().is_none());
            drop(large);
            let small = small.await;
            assert_eq!(budget.reserved_bytes(), 100);
            drop((held, small));
            assert_eq!(budget.reserved_bytes(), 0);
            assert_eq!(budget.waiting(), 0);
        });
    }
}
