//! Storage: the node's persisted state (spec section 1.1) in one redb database per node, on a
//! [`Disk`] seam (a real directory or a simulated disk). This module owns opening the database,
//! running each operation as one transaction (atomic, immediately durable, panics inside redb
//! caught and reported as `Corrupted`, the handle reopened after an I/O or corruption error) and
//! the storage crash points (`db.*` fail points). The operations live in submodules by concept:
//! node state, shards and their sync state, slivers, blob metadata and blob info.
//!
//! Outcomes: `Ok` from a write means committed and durable. `Io` from a write means the outcome
//! is unknown (a commit whose final sync failed may still be visible, and becomes durable with
//! the next successful commit); it is never partially applied. After a `SimDisk::crash` this
//! handle only returns `Crashed`: open a new `Storage` (the next incarnation).

use crate::fail_points;
use shardstorm_faults::LockExt;
mod blobs;
mod disk;
mod dump;
mod error;
mod node_state;
mod shard;
mod slivers;
mod sync;
mod tables;

#[cfg(test)]
mod tests;

pub use disk::{Disk, DiskImage, DiskStats, SimDisk, DB_FILE_NAME, SECTOR_SIZE};
pub use dump::{dump_disk, StoredShard, StoredState};
pub use error::StorageError;
pub use sync::Progress;

use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, TableHandle, WriteTransaction,
};
use shardstorm_faults::{FailPoints, Hit};
use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, PoisonError};

/// Read and write cache of one node's database.
const CACHE_SIZE: usize = 4 << 20;

/// One node's database. Every method is one transaction.
pub struct Storage {
    disk: Disk,
    /// `None` after an I/O error or a panic: the next operation reopens the database.
    db: Mutex<Option<Database>>,
    /// The simulated disk's crash count at open: after a crash this handle is dead.
    generation: Option<u64>,
    fail_points: Option<FailPoints>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage").field("disk", &self.disk).finish()
    }
}

impl Drop for Storage {
    /// Closing a database whose pages were corrupted may panic inside redb: contained here.
    fn drop(&mut self) {
        let slot = self.db.get_mut().unwrap_or_else(PoisonError::into_inner);
        close_quietly(slot.take());
    }
}

/// Which crash points surround a write.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum WriteKind {
    /// A multi-key atomic batch: `db.write_batch.before/.after`.
    Batch,
    /// A single put: `db.put.before/.after`.
    Put,
    /// A single delete (or a shard drop, or a table clear): `db.delete.before/.after`.
    Delete,
    /// Creating a shard's storage: `db.create_shard.before`.
    CreateShard,
}

impl WriteKind {
    fn before(self) -> &'static str {
        match self {
            WriteKind::Batch => fail_points::DB_WRITE_BATCH_BEFORE,
            WriteKind::Put => fail_points::DB_PUT_BEFORE,
            WriteKind::Delete => fail_points::DB_DELETE_BEFORE,
            WriteKind::CreateShard => fail_points::DB_CREATE_SHARD_BEFORE,
        }
    }

    fn after(self) -> Option<&'static str> {
        match self {
            WriteKind::Batch => Some(fail_points::DB_WRITE_BATCH_AFTER),
            WriteKind::Put => Some(fail_points::DB_PUT_AFTER),
            WriteKind::Delete => Some(fail_points::DB_DELETE_AFTER),
            WriteKind::CreateShard => None,
        }
    }
}

impl Storage {
    /// Opens (creating if needed) the database on `disk` and its tables. Recovers from an
    /// unclean shutdown to the last committed transaction.
    pub fn open(disk: &Disk) -> Result<Storage, StorageError> {
        let generation = disk_generation(disk);
        let db = open_database(disk)?;
        Ok(Storage {
            disk: disk.clone(),
            db: Mutex::new(Some(db)),
            generation,
            fail_points: None,
        })
    }

    /// Arms the `db.*` crash points of this node.
    pub fn set_fail_points(&mut self, fp: FailPoints) {
        self.fail_points = Some(fp);
    }

    pub fn disk(&self) -> &Disk {
        &self.disk
    }

    /// Runs `f` in one read transaction.
    pub(crate) fn read<T>(
        &self,
        f: impl FnOnce(&ReadTransaction) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        self.with_db(|db| f(&db.begin_read()?))
    }

    /// Runs `f` in one write transaction and commits it (immediate durability) unless `f`
    /// fails, surrounded by the crash points of `kind`.
    pub(crate) fn write<T>(
        &self,
        kind: WriteKind,
        f: impl FnOnce(&WriteTransaction) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        self.fail_point(kind.before())?;
        let out = self.with_db(|db| {
            let mut txn = db.begin_write()?;
            txn.set_durability(Durability::Immediate)?;
            let out = f(&txn)?;
            txn.commit()?;
            Ok(out)
        })?;
        if let Some(point) = kind.after() {
            self.fail_point(point)?;
        }
        Ok(out)
    }

    fn fail_point(&self, point: &str) -> Result<(), StorageError> {
        let Some(fp) = &self.fail_points else {
            return Ok(());
        };
        match fp.eval_sync(point) {
            Hit::Pass => Ok(()),
            // Inside a simulation the process dies right here: the node's task wrapper catches
            // the unwind and stops the node. Elsewhere (unit tests) it is an error.
            Hit::Crash if turmoil::in_simulation() => shardstorm_faults::unwind_crash(),
            Hit::Crash => Err(StorageError::Crashed),
            Hit::Return(None) => Err(StorageError::Io("injected".into())),
            Hit::Return(Some(msg)) => Err(StorageError::Io(format!("injected: {msg}"))),
        }
    }

    /// Runs `f` on the open database (reopening it first if an earlier error closed it),
    /// catching panics. An I/O or corruption error closes the handle.
    fn with_db<T>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let mut slot = self.db.lock_ok();
        if disk_generation(&self.disk) != self.generation {
            // The disk crashed under this handle: it belongs to a dead incarnation.
            close_quietly(slot.take());
            return Err(StorageError::Crashed);
        }
        if slot.is_none() {
            *slot = Some(open_database(&self.disk)?);
        }
        let result = match slot.as_ref() {
            Some(db) => catch(|| f(db)),
            None => Err(StorageError::Io("database not open".into())),
        };
        if matches!(&result, Err(e) if e.needs_reopen()) {
            close_quietly(slot.take());
        }
        result
    }
}

fn disk_generation(disk: &Disk) -> Option<u64> {
    match disk {
        Disk::Sim(sim) => Some(sim.generation()),
        Disk::Dir(_) => None,
    }
}

fn open_database(disk: &Disk) -> Result<Database, StorageError> {
    catch(|| {
        let mut builder = Database::builder();
        builder.set_cache_size(CACHE_SIZE);
        let db = match disk {
            Disk::Sim(sim) => builder.create_with_backend(sim.backend())?,
            Disk::Dir(dir) => builder.create(dir.join(DB_FILE_NAME))?,
        };
        if let Err(e) = create_tables(&db) {
            close_quietly(Some(db));
            return Err(e);
        }
        Ok(db)
    })
}

/// Creates the tables on first open (later opens do not write).
fn create_tables(db: &Database) -> Result<(), StorageError> {
    let existing: BTreeSet<String> = db
        .begin_read()?
        .list_tables()?
        .map(|t| t.name().to_string())
        .collect();
    if tables::ALL_NAMES.iter().all(|n| existing.contains(*n)) {
        return Ok(());
    }
    let txn = db.begin_write()?;
    txn.open_table(tables::NODE)?;
    txn.open_table(tables::SHARD_STATUS)?;
    txn.open_table(tables::PROGRESS)?;
    txn.open_table(tables::PENDING)?;
    txn.open_table(tables::SLIVERS)?;
    txn.open_table(tables::METADATA)?;
    txn.open_table(tables::BLOB_INFO)?;
    txn.commit()?;
    Ok(())
}

/// Drops a database handle; a panic while closing a broken database is swallowed.
fn close_quietly(db: Option<Database>) {
    let _ = catch_unwind(AssertUnwindSafe(move || drop(db)));
}

/// Runs `f`, turning a panic (redb on a corrupted page) into `Corrupted`.
fn catch<T>(f: impl FnOnce() -> Result<T, StorageError>) -> Result<T, StorageError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(StorageError::Corrupted(format!("panic in redb: {msg}")))
    })
}
