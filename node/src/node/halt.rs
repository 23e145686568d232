//! Process death inside the simulation. A crash that fires at a fail point kills the node at
//! that instant, but turmoil can only crash a host between steps; until then every task of the
//! node is wrapped in `Halting`, which stops polling it once the node is halted, and which
//! catches the `CrashUnwind` a synchronous crash point unwinds with.

use shardstorm_faults::{CrashUnwind, FailPoints};
use std::future::Future;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

/// A future that makes no progress once its node is halted.
pub struct Halting<F> {
    fail: FailPoints,
    inner: Pin<Box<F>>,
    dead: bool,
}

impl<F: Future> Halting<F> {
    pub fn new(fail: FailPoints, inner: F) -> Self {
        Self {
            fail,
            inner: Box::pin(inner),
            dead: false,
        }
    }
}

impl<F: Future> Future for Halting<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        if self.dead || self.fail.halted() {
            return Poll::Pending;
        }
        let inner = self.inner.as_mut();
        match catch_unwind(AssertUnwindSafe(move || inner.poll(cx))) {
            Ok(poll) => poll,
            Err(payload) if payload.is::<CrashUnwind>() => {
                self.dead = true;
                Poll::Pending
            }
            Err(payload) => resume_unwind(payload),
        }
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
}
