//! `OffsetWatch`: a shard-local value that only grows (log end, durable offset, high watermark), with futures
//! that wait for it to reach a target. Appends and flushes wake waiters directly, so long polls and acks=all
//! never poll on a timer. Single shard only: it is `!Send` by construction.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::task::{Poll, Waker};

#[derive(Debug)]
pub struct OffsetWatch {
    value: Cell<i64>,
    failed: Cell<bool>,
    next_waiter_id: Cell<u64>,
    /// (waiter id, target, waker). A waiter removes its own entry when dropped, so abandoned long polls leave
    /// nothing behind.
    waiters: RefCell<Vec<(u64, i64, Waker)>>,
}

/// The watch failed (the log was poisoned or closed) before reaching the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchFailed;

impl OffsetWatch {
    pub fn new(value: i64) -> Self {
        OffsetWatch {
            value: Cell::new(value),
            failed: Cell::new(false),
            next_waiter_id: Cell::new(0),
            waiters: RefCell::new(Vec::new()),
        }
    }

    pub fn get(&self) -> i64 {
        self.value.get()
    }

    /// Raises the value (never lowers it) and wakes every waiter whose target is now reached.
    pub fn advance(&self, value: i64) {
        if value <= self.value.get() {
            return;
        }
        self.value.set(value);
        let ready: Vec<Waker> = {
            let mut waiters = self.waiters.borrow_mut();
            let mut ready = Vec::new();
            waiters.retain(|(_, target, waker)| {
                if *target <= value {
                    ready.push(waker.clone());
                    false
                } else {
                    true
                }
            });
            ready
        };
        ready.into_iter().for_each(Waker::wake);
    }

    /// Sets the value outright, also downwards (truncation). Waiters above the new value keep waiting.
    pub fn reset(&self, value: i64) {
        self.value.set(value);
    }

    /// Fails every present and future waiter that is not already satisfied.
    pub fn fail(&self) {
        self.failed.set(true);
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        waiters.into_iter().for_each(|(_, _, waker)| waker.wake());
    }

    pub fn is_failed(&self) -> bool {
        self.failed.get()
    }

    /// Number of registered waiters (for tests and metrics).
    pub fn waiter_count(&self) -> usize {
        self.waiters.borrow().len()
    }

    /// Resolves once the value is at least `target`.
    pub async fn wait_for(&self, target: i64) -> Result<(), WatchFailed> {
        let id = self.next_waiter_id.get();
        self.next_waiter_id.set(id + 1);
        let _guard = WaiterGuard { watch: self, id };
        poll_fn(|cx| {
            if self.value.get() >= target {
                return Poll::Ready(Ok(()));
            }
            if self.failed.get() {
                return Poll::Ready(Err(WatchFailed));
            }
            let mut waiters = self.waiters.borrow_mut();
            match waiters.iter_mut().find(|(waiter, _, _)| *waiter == id) {
                Some(entry) => entry.2.clone_from(cx.waker()),
                None => waiters.push((id, target, cx.waker().clone())),
            }
            Poll::Pending
        })
        .await
    }
}

/// Removes a waiter's entry when its future completes or is dropped.
struct WaiterGuard<'a> {
    watch: &'a OffsetWatch,
    id: u64,
}

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        self.watch.waiters.borrow_mut().retain(|(waiter, _, _)| *waiter != self.id);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::rc::Rc;

    #[test]
    fn waiters_wake_on_advance_and_fail() {
        let ex = glommio::LocalExecutorBuilder::default().io_memory(512 << 10).make().unwrap();
        ex.run(async {
            let watch = Rc::new(OffsetWatch::new(0));
            let w = watch.clone();
            let waiter = glommio::spawn_local(async move { w.wait_for(10).await });
            glommio::yield_if_needed().await;
            watch.advance(5);
            watch.advance(10);
            assert_eq!(waiter.await, Ok(()));
            let w = watch.clone();
            let failing = glommio::spawn_local(async move { w.wait_for(20).await });
            glommio::executor().yield_now().await;
            watch.fail();
            assert_eq!(failing.await, Err(WatchFailed));
        });
    }

    #[test]
    fn dropped_waiters_leave_no_entry() {
        let ex = glommio::LocalExecutorBuilder::default().io_memory(512 << 10).make().unwrap();
        ex.run(async {
            let watch = Rc::new(OffsetWatch::new(0));
            for _ in 0..100 {
                let w = watch.clone();
                let waiter = glommio::spawn_local(async move { w.wait_for(10).await });
                glommio::executor().yield_now().await;
                assert_eq!(watch.waiter_count(), 1);
                drop(waiter.cancel());
                glommio::executor().yield_now().await;
                assert_eq!(watch.waiter_count(), 0);
            }
        });
    }
}
