//! The life of one simulated node process, shared by every task of the node: the halt flag a
//! crash sets, and the reaper that drops the dead process's tasks in spawn order.
//!
//! Why a reaper: turmoil crashes a host by dropping its tokio runtime, and a current-thread
//! runtime drops its tasks shard by shard, keyed by the process-global task id. Dropping a
//! task closes its sockets, and every FIN or RST draws from the simulation's RNG, so that
//! order would make a crash depend on how many tasks other simulations in the same process
//! spawned before. The first task the runtime drops while the node is halted reaps all the
//! others in the order they were spawned instead.

use crate::lock::LockExt;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Weak};

/// Something a reaper can drop: the future of one task.
pub trait Reap: Send + Sync {
    /// Drops what this holds now (a no-op if it is in use or already gone).
    fn reap(&self);
}

/// Halt flag and reaper of one node process (see the module docs).
#[derive(Default)]
pub struct ProcessLife {
    halted: AtomicBool,
    reaper: Mutex<Reaper>,
}

#[derive(Default)]
struct Reaper {
    next: u64,
    tasks: BTreeMap<u64, Weak<dyn Reap>>,
}

impl std::fmt::Debug for ProcessLife {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessLife")
            .field("halted", &self.halted())
            .field("tasks", &self.reaper().tasks.len())
            .finish()
    }
}

impl ProcessLife {
    /// True while the process is dead: none of its tasks may progress.
    pub fn halted(&self) -> bool {
        self.halted.load(Ordering::Relaxed)
    }

    /// Marks the process dead (a crash fired or the harness is crashing it) or alive again.
    pub fn set_halted(&self, halted: bool) {
        self.halted.store(halted, Ordering::Relaxed);
    }

    fn reaper(&self) -> std::sync::MutexGuard<'_, Reaper> {
        self.reaper.lock_ok()
    }

    /// Registers a task; the returned ticket orders it among the process's tasks.
    pub fn register(&self, task: Weak<dyn Reap>) -> u64 {
        let mut reaper = self.reaper();
        let ticket = reaper.next;
        reaper.next += 1;
        reaper.tasks.insert(ticket, task);
        ticket
    }

    /// Forgets a task that ended or was dropped.
    pub fn forget(&self, ticket: u64) {
        self.reaper().tasks.remove(&ticket);
    }

    /// Drops every registered task in spawn order (called from the first task dropped while
    /// the process is halted; later calls find nothing left).
    pub fn reap_all(&self) {
        let tasks = std::mem::take(&mut self.reaper().tasks);
        for task in tasks.into_values() {
            if let Some(task) = task.upgrade() {
                task.reap();
            }
        }
    }

    /// Number of live registered tasks (for tests and diagnostics).
    pub fn task_count(&self) -> usize {
        self.reaper().tasks.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    struct Probe {
        id: u32,
        log: Arc<Mutex<Vec<u32>>>,
    }

    impl Reap for Probe {
        fn reap(&self) {
            self.log.lock().unwrap().push(self.id);
        }
    }

    #[test]
    fn reaps_in_spawn_order_and_skips_forgotten_tasks() {
        let life = ProcessLife::default();
        let log = Arc::new(Mutex::new(Vec::new()));
        let probes: Vec<Arc<dyn Reap>> = (0..5)
            .map(|id| {
                Arc::new(Probe {
                    id,
                    log: log.clone(),
                }) as Arc<dyn Reap>
            })
            .collect();
        // Registered in a scrambled order: tickets follow registration, not ids.
        let mut tickets = Vec::new();
        for i in [3usize, 0, 4, 1, 2] {
            tickets.push(life.register(Arc::downgrade(&probes[i])));
        }
        life.forget(tickets[2]); // probe 4 ended normally
        assert_eq!(life.task_count(), 4);
        life.reap_all();
        assert_eq!(*log.lock().unwrap(), vec![3, 0, 1, 2]);
        assert_eq!(life.task_count(), 0);
        life.reap_all();
        assert_eq!(log.lock().unwrap().len(), 4, "a second reap finds nothing");
    }

    #[test]
    fn the_halt_flag_toggles() {
        let life = ProcessLife::default();
        assert!(!life.halted());
        life.set_halted(true);
        assert!(life.halted());
        life.set_halted(false);
        assert!(!life.halted());
    }
}
