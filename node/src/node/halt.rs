//! Process death inside the simulation. A crash that fires at a fail point kills the node at
//! that instant, but turmoil can only crash a host between steps; until then every task of the
//! node is wrapped in `Halting`, which stops polling it once the node is halted, and which
//! catches the `CrashUnwind` a synchronous crash point unwinds with.

use shardstorm_faults::LockExt;
use shardstorm_faults::{CrashUnwind, FailPoints, Reap};
use std::future::Future;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};

/// The future of one task, owned jointly by its `Halting` wrapper and the process reaper.
struct Slot<F>(Mutex<Option<Pin<Box<F>>>>);

impl<F: Future + Send> Reap for Slot<F> {
    fn reap(&self) {
        // `try_lock`: a slot being polled right now is dropped by its own wrapper later.
        let taken = match self.0.try_lock() {
            Ok(mut guard) => guard.take(),
            Err(_) => None,
        };
        drop(taken);
    }
}

/// A future that makes no progress once its node is halted, and whose inner future is
/// dropped in spawn order when the node's process dies (see `shardstorm_faults::ProcessLife`).
pub struct Halting<F: Future + Send + 'static> {
    fail: FailPoints,
    slot: Arc<Slot<F>>,
    ticket: u64,
    dead: bool,
}

impl<F: Future + Send + 'static> Halting<F> {
    pub fn new(fail: FailPoints, inner: F) -> Self {
        let slot = Arc::new(Slot(Mutex::new(Some(Box::pin(inner)))));
        let weak: Weak<dyn Reap> = Arc::downgrade(&slot) as Weak<dyn Reap>;
        let ticket = fail.life().register(weak);
        Self {
            fail,
            slot,
            ticket,
            dead: false,
        }
    }
}

impl<F: Future + Send + 'static> Future for Halting<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        if this.dead || this.fail.halted() {
            return Poll::Pending;
        }
        let mut guard = this.slot.0.lock_ok();
        let Some(inner) = guard.as_mut() else {
            return Poll::Pending; // reaped: the process is gone
        };
        let inner = inner.as_mut();
        match catch_unwind(AssertUnwindSafe(move || inner.poll(cx))) {
            Ok(poll) => poll,
            Err(payload) if payload.is::<CrashUnwind>() => {
                this.dead = true;
                Poll::Pending
            }
            Err(payload) => {
                drop(guard);
                resume_unwind(payload)
            }
        }
    }
}

impl<F: Future + Send + 'static> Drop for Halting<F> {
    fn drop(&mut self) {
        let life = self.fail.life();
        if life.halted() {
            life.reap_all();
        }
        life.forget(self.ticket);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crash_unwind_parks_the_task_and_other_panics_propagate() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            let crashed = Halting::new(FailPoints::disabled("n1"), async {
                shardstorm_faults::unwind_crash()
            });
            let outcome = tokio::time::timeout(std::time::Duration::from_secs(1), crashed).await;
            assert!(outcome.is_err(), "a crashed task must never complete");
            let fine = Halting::new(FailPoints::disabled("n1"), async { 7 });
            assert_eq!(fine.await, 7);
        });
        let result = std::panic::catch_unwind(|| {
            rt.block_on(Halting::new(FailPoints::disabled("n1"), async {
                panic!("real bug")
            }))
        });
        assert!(result.is_err(), "ordinary panics are not swallowed");
    }

    /// Drops `log.push(id)` into the log when dropped.
    struct OnDrop(u32, Arc<Mutex<Vec<u32>>>);

    impl Drop for OnDrop {
        fn drop(&mut self) {
            self.1.lock().unwrap().push(self.0);
        }
    }

    #[test]
    fn a_halted_process_drops_its_tasks_in_spawn_order() {
        let fail = FailPoints::disabled("n1");
        let log = Arc::new(Mutex::new(Vec::new()));
        let tasks: Vec<_> = (0..4)
            .map(|id| {
                let guard = OnDrop(id, log.clone());
                Halting::new(fail.clone(), async move {
                    let _guard = guard;
                    std::future::pending::<()>().await
                })
            })
            .collect();
        let mut tasks: Vec<Option<_>> = tasks.into_iter().map(Some).collect();
        // A task that ends while the process lives drops only itself.
        tasks[1] = None;
        assert_eq!(*log.lock().unwrap(), vec![1]);
        fail.life().set_halted(true);
        // The runtime drops the rest in whatever order; the first drop reaps in spawn order.
        tasks[3] = None;
        assert_eq!(*log.lock().unwrap(), vec![1, 0, 2, 3]);
        drop(tasks);
        assert_eq!(log.lock().unwrap().len(), 4);
        assert_eq!(fail.life().task_count(), 0);
    }
}
