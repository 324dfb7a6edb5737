//! A first-come, first-served async lock for one shard.
//!
//! glommio's `Semaphore` lets a newcomer take a permit that was just released to a woken waiter which has
//! not run yet, and glommio runs a spawned task right away, so two appends to one partition could swap
//! places: a producer pipelining requests on one connection would see its batches stored out of order.
//! This lock hands the partition over strictly in the order `lock` was first polled. A waiter dropped
//! before its turn gives its turn up.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::future::poll_fn;
use std::task::{Poll, Waker};

#[derive(Debug, Default)]
pub struct FifoLock {
    next_ticket: Cell<u64>,
    serving: Cell<u64>,
    held: Cell<bool>,
    closed: Cell<bool>,
    waiters: RefCell<BTreeMap<u64, Waker>>,
    abandoned: RefCell<BTreeSet<u64>>,
}

/// The lock is closed (the log is closing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockClosed;

pub struct FifoGuard<'a> {
    lock: &'a FifoLock,
}

struct Ticket<'a> {
    lock: &'a FifoLock,
    ticket: u64,
    done: bool,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.lock.waiters.borrow_mut().remove(&self.ticket);
            self.lock.abandoned.borrow_mut().insert(self.ticket);
            if !self.lock.held.get() {
                self.lock.advance_to_next();
            }
        }
    }
}

impl FifoLock {
    pub fn new() -> Self {
        Self::default()
    }

    /// Waits for this caller's turn. The turn is fixed when this is first polled.
    pub async fn lock(&self) -> Result<FifoGuard<'_>, LockClosed> {
        let ticket = self.next_ticket.get();
        self.next_ticket.set(ticket + 1);
        let mut pending = Ticket { lock: self, ticket, done: false };
        poll_fn(|cx| {
            if self.closed.get() {
                pending.done = true;
                return Poll::Ready(Err(LockClosed));
            }
            if self.serving.get() == ticket && !self.held.get() {
                pending.done = true;
                self.held.set(true);
                return Poll::Ready(Ok(FifoGuard { lock: self }));
            }
            self.waiters.borrow_mut().insert(ticket, cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Refuses every present and future waiter.
    pub fn close(&self) {
        self.closed.set(true);
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        waiters.into_values().for_each(Waker::wake);
    }

    /// Moves the turn past the holder and any abandoned tickets, and wakes the next waiter.
    fn advance_to_next(&self) {
        let mut serving = self.serving.get();
        {
            let mut abandoned = self.abandoned.borrow_mut();
            while abandoned.remove(&serving) {
                serving += 1;
            }
        }
        self.serving.set(serving);
        if let Some(waker) = self.waiters.borrow_mut().remove(&serving) {
            waker.wake();
        }
    }
}

impl Drop for FifoGuard<'_> {
    fn drop(&mut self) {
        self.lock.held.set(false);
        self.lock.serving.set(self.lock.serving.get() + 1);
        self.lock.advance_to_next();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::rc::Rc;

    #[test]
    fn turns_follow_arrival_even_with_newcomers_and_dropped_waiters() {
        let ex = glommio::LocalExecutorBuilder::default().io_memory(512 << 10).make().unwrap();
        ex.run(async {
            let lock = Rc::new(FifoLock::new());
            let order = Rc::new(RefCell::new(Vec::new()));
            let first = lock.lock().await.unwrap();
            let mut tasks = Vec::new();
            for i in 0..5 {
                let (lock, order) = (lock.clone(), order.clone());
                tasks.push(glommio::spawn_local(async move {
                    let _guard = lock.lock().await.unwrap();
                    order.borrow_mut().push(i);
                    glommio::executor().yield_now().await;
                }));
            }
            // Waiter 2 gives up its turn.
            let dropped = tasks.remove(2);
            drop(dropped.cancel());
            drop(first);
            // A newcomer right after the release must not overtake the woken waiter.
            let (lock2, order2) = (lock.clone(), order.clone());
            let late = glommio::spawn_local(async move {
                let _guard = lock2.lock().await.unwrap();
                order2.borrow_mut().push(99);
            });
            for task in tasks {
                task.await;
            }
            late.await;
            assert_eq!(*order.borrow(), vec![0, 1, 3, 4, 99]);
            lock.close();
            assert!(lock.lock().await.is_err());
        });
    }
}
