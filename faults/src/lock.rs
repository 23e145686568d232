//! Poison-tolerant locking. A simulated host that panics (a crash point, an injected panic, a
//! bug) may do so while it holds a lock shared with the harness; the data is still what the
//! harness needs to judge the run, so every lock in shardstorm ignores poisoning.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// [`Mutex`] access that ignores poisoning.
pub trait LockExt<T: ?Sized> {
    /// Locks, taking the guard even if another thread panicked while holding it.
    fn lock_ok(&self) -> MutexGuard<'_, T>;

    /// The value, even if another thread panicked while holding the lock.
    fn into_inner_ok(self) -> T
    where
        Self: Sized,
        T: Sized;
}

impl<T: ?Sized> LockExt<T> for Mutex<T> {
    fn lock_ok(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn into_inner_ok(self) -> T
    where
        T: Sized,
    {
        self.into_inner().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_poisoned_lock_still_yields_its_value() {
        let m = Arc::new(Mutex::new(1));
        let m2 = m.clone();
        let _ = std::thread::spawn(move || {
            let _guard = m2.lock().unwrap();
            panic!("poison it");
        })
        .join();
        assert!(m.is_poisoned());
        *m.lock_ok() += 1;
        assert_eq!(*m.lock_ok(), 2);
        let m = Arc::try_unwrap(m).expect("sole owner");
        assert_eq!(m.into_inner_ok(), 2);
    }
}
