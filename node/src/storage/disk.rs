//! The `Disk` seam under the node's database: a real file in a directory, or a simulated disk
//! (`SimDisk`) that lives outside the simulated host, so it survives crash and restart, and
//! models the page cache: writes are visible to reads at once but only durable after
//! `sync_data`; a crash discards unsynced writes (or tears them). It can also fail every I/O
//! with EIO and corrupt reads. Deterministic: one seeded ChaCha8 RNG per disk.
//!
//! Corrupted reads model a disk under a checksumming filesystem (btrfs/ZFS data checksums, or
//! RocksDB's block checksums in Walrus): one byte of the read flips and the flip is detected,
//! so the read fails with `InvalidData` ("checksum mismatch"). The bytes never reach redb,
//! which verifies no checksums on reads and panics on malformed pages, sometimes inside a
//! destructor, which aborts the process.
//!
//! A crash fences off every backend handle opened before it: the database handle of the
//! crashed incarnation can no longer read or write the disk (its drop-time flush fails), so
//! only a new `Storage::open` sees the disk again.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shardstorm_faults::LockExt;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

/// The database file inside a [`Disk::Dir`] directory.
pub const DB_FILE_NAME: &str = "node.redb";

/// Torn writes are cut at multiples of this many bytes (a sector).
pub const SECTOR_SIZE: u64 = 512;

/// Where a node's database lives.
#[derive(Clone, Debug)]
pub enum Disk {
    /// A simulated disk created by the harness outside the turmoil host.
    Sim(SimDisk),
    /// A directory holding a real file [`DB_FILE_NAME`] (unit tests, real processes).
    Dir(PathBuf),
}

impl Disk {
    /// The database file of a [`Disk::Dir`].
    pub fn db_path(&self) -> Option<PathBuf> {
        match self {
            Disk::Sim(_) => None,
            Disk::Dir(dir) => Some(dir.join(DB_FILE_NAME)),
        }
    }
}

/// Which bytes of a [`SimDisk`] an image copies.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum DiskImage {
    /// What reads see now: durable bytes plus unsynced writes.
    Visible,
    /// What survives a crash: durable bytes only.
    Durable,
}

/// Counters and sizes of a [`SimDisk`].
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct DiskStats {
    /// Length as reads see it (durable plus unsynced operations).
    pub len: u64,
    /// Length that survives a crash.
    pub durable_len: u64,
    /// Writes and length changes not yet synced.
    pub unsynced_writes: u64,
    pub syncs: u64,
    pub eio_errors: u64,
    pub corrupted_reads: u64,
}

/// A simulated disk holding one file. Cheap to clone; clones share the same disk.
#[derive(Clone)]
pub struct SimDisk {
    state: Arc<Mutex<SimDiskState>>,
}

/// One unsynced operation, in issue order.
#[derive(Clone, Debug, PartialEq, Eq)]
enum PendingOp {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

struct SimDiskState {
    /// Bytes that survive a crash.
    durable: Vec<u8>,
    /// `durable` with every pending operation applied: what reads see.
    visible: Vec<u8>,
    pending: Vec<PendingOp>,
    rng: ChaCha8Rng,
    /// Incremented by every crash; handles of older generations are fenced off.
    generation: u64,
    eio: bool,
    /// EIO turns on after this many more successful operations.
    eio_countdown: Option<u64>,
    torn_writes: bool,
    corrupt_per_mille: u32,
    syncs: u64,
    eio_errors: u64,
    corrupted_reads: u64,
    /// Incremented by every change of the visible bytes (a write, a length change, a crash).
    version: u64,
}

impl SimDisk {
    /// An empty disk whose faults draw from an RNG seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        let state = SimDiskState {
            durable: Vec::new(),
            visible: Vec::new(),
            pending: Vec::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            generation: 0,
            eio: false,
            eio_countdown: None,
            torn_writes: false,
            corrupt_per_mille: 0,
            syncs: 0,
            eio_errors: 0,
            corrupted_reads: 0,
            version: 0,
        };
        Self {
            state: Arc::new(Mutex::new(state)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SimDiskState> {
        self.state.lock_ok()
    }

    /// A power loss: unsynced operations are discarded, or, with torn writes on, a random prefix
    /// of them is applied with the last write cut at a sector boundary. The host is expected to
    /// be crashed at the same time (the database handle must not be used afterwards).
    pub fn crash(&self) {
        self.lock().crash();
    }

    /// While on, every read, write, set_len and sync_data fails with EIO.
    pub fn set_eio(&self, on: bool) {
        let mut s = self.lock();
        s.eio = on;
        s.eio_countdown = None;
    }

    /// EIO turns on (as with `set_eio(true)`) after `ops` more successful reads, writes,
    /// set_lens and syncs: an I/O failure in the middle of a transaction or commit.
    pub fn set_eio_after(&self, ops: u64) {
        let mut s = self.lock();
        s.eio = ops == 0;
        s.eio_countdown = (ops > 0).then_some(ops);
    }

    /// Whether a crash tears the unsynced writes instead of discarding them all.
    pub fn set_torn_writes(&self, on: bool) {
        self.lock().torn_writes = on;
    }

    /// Each read flips one random byte with probability `per_mille / 1000` (capped at 1000);
    /// the flip is detected and the read fails with `InvalidData`.
    pub fn set_corrupt_reads(&self, per_mille: u32) {
        self.lock().corrupt_per_mille = per_mille.min(1000);
    }

    pub fn stats(&self) -> DiskStats {
        let s = self.lock();
        DiskStats {
            len: s.visible.len() as u64,
            durable_len: s.durable.len() as u64,
            unsynced_writes: s.pending.len() as u64,
            syncs: s.syncs,
            eio_errors: s.eio_errors,
            corrupted_reads: s.corrupted_reads,
        }
    }

    /// The version of the visible bytes: equal versions mean equal bytes, so an auditor may
    /// reuse what it read at an earlier version.
    pub fn version(&self) -> u64 {
        self.lock().version
    }

    /// A new, fault-free disk holding a copy of this disk's bytes (an auditor's copy: reading
    /// or opening it never touches this disk, its fault switches or its RNG).
    pub fn image(&self, image: DiskImage) -> SimDisk {
        let copy = SimDisk::new(0);
        let bytes = {
            let s = self.lock();
            match image {
                DiskImage::Visible => s.visible.clone(),
                DiskImage::Durable => s.durable.clone(),
            }
        };
        {
            let mut c = copy.lock();
            c.durable = bytes.clone();
            c.visible = bytes;
        }
        copy
    }

    /// The number of crashes so far.
    pub(crate) fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// A redb backend on this disk, valid until the next crash.
    pub(crate) fn backend(&self) -> SimDiskBackend {
        SimDiskBackend {
            disk: self.clone(),
            generation: self.lock().generation,
        }
    }
}

/// The redb backend of one database incarnation on a [`SimDisk`]; fenced off by a crash.
#[derive(Debug)]
pub(crate) struct SimDiskBackend {
    disk: SimDisk,
    generation: u64,
}

impl SimDiskBackend {
    fn lock(&self) -> io::Result<MutexGuard<'_, SimDiskState>> {
        let s = self.disk.lock();
        if s.generation != self.generation {
            return Err(io::Error::other("simulated disk crashed: stale handle"));
        }
        Ok(s)
    }
}

impl fmt::Debug for SimDisk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimDisk")
            .field("stats", &self.stats())
            .finish()
    }
}

fn eio() -> io::Error {
    io::Error::from_raw_os_error(5)
}

fn out_of_range(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("{what} out of range"))
}

fn to_usize(v: u64) -> io::Result<usize> {
    usize::try_from(v).map_err(|_| out_of_range("offset"))
}

fn apply(buf: &mut Vec<u8>, op: &PendingOp) {
    match op {
        PendingOp::SetLen(len) => buf.resize(usize::try_from(*len).unwrap_or(usize::MAX), 0),
        PendingOp::Write { offset, data } => {
            let start = usize::try_from(*offset).unwrap_or(usize::MAX);
            let end = start.saturating_add(data.len());
            if buf.len() < end {
                buf.resize(end, 0);
            }
            buf[start..end].copy_from_slice(data);
        }
    }
}

impl SimDiskState {
    fn check_eio(&mut self) -> io::Result<()> {
        if self.eio {
            self.eio_errors += 1;
            return Err(eio());
        }
        if let Some(left) = self.eio_countdown {
            self.eio_countdown = left.checked_sub(1).filter(|&l| l > 0);
            self.eio = self.eio_countdown.is_none();
        }
        Ok(())
    }

    fn read(&mut self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.check_eio()?;
        let start = to_usize(offset)?;
        let end = start
            .checked_add(out.len())
            .ok_or_else(|| out_of_range("read"))?;
        let src = self
            .visible
            .get(start..end)
            .ok_or_else(|| out_of_range("read"))?;
        out.copy_from_slice(src);
        if self.maybe_corrupt(out) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("checksum mismatch reading {} bytes at {offset}", out.len()),
            ));
        }
        Ok(())
    }

    /// Flips one random byte of `out` with the configured probability; returns whether it did.
    fn maybe_corrupt(&mut self, out: &mut [u8]) -> bool {
        if self.corrupt_per_mille == 0 || out.is_empty() {
            return false;
        }
        if self.rng.random_range(0..1000) >= self.corrupt_per_mille {
            return false;
        }
        let i = self.rng.random_range(0..out.len());
        out[i] ^= self.rng.random_range(1..=255u8);
        self.corrupted_reads += 1;
        true
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.check_eio()?;
        let start = to_usize(offset)?;
        start
            .checked_add(data.len())
            .ok_or_else(|| out_of_range("write"))?;
        self.push(PendingOp::Write {
            offset,
            data: data.to_vec(),
        });
        Ok(())
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.check_eio()?;
        to_usize(len)?;
        self.push(PendingOp::SetLen(len));
        Ok(())
    }

    fn push(&mut self, op: PendingOp) {
        self.version += 1;
        apply(&mut self.visible, &op);
        self.pending.push(op);
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.check_eio()?;
        for op in std::mem::take(&mut self.pending) {
            apply(&mut self.durable, &op);
        }
        self.syncs += 1;
        Ok(())
    }

    fn crash(&mut self) {
        self.generation += 1;
        self.version += 1;
        let pending = std::mem::take(&mut self.pending);
        if self.torn_writes && !pending.is_empty() {
            let keep = self.rng.random_range(0..=pending.len());
            for op in &pending[..keep] {
                apply(&mut self.durable, op);
            }
            if let Some(op) = pending.get(keep) {
                if let Some(torn) = self.tear(op) {
                    apply(&mut self.durable, &torn);
                }
            }
        }
        self.visible = self.durable.clone();
    }

    /// A prefix of a write cut at a random sector boundary strictly inside it, or nothing.
    fn tear(&mut self, op: &PendingOp) -> Option<PendingOp> {
        let PendingOp::Write { offset, data } = op else {
            return None;
        };
        let end = offset + data.len() as u64;
        // Sector boundaries strictly inside the write are first..=last; last + 1 = "nothing".
        let first = offset / SECTOR_SIZE + 1;
        let last = end.div_ceil(SECTOR_SIZE).saturating_sub(1);
        let pick = self.rng.random_range(first..=last.max(first - 1) + 1);
        if pick > last {
            return None;
        }
        let cut = pick * SECTOR_SIZE;
        let len = usize::try_from(cut - offset).ok()?;
        Some(PendingOp::Write {
            offset: *offset,
            data: data.get(..len)?.to_vec(),
        })
    }
}

impl redb::StorageBackend for SimDiskBackend {
    fn len(&self) -> Result<u64, io::Error> {
        Ok(self.lock()?.visible.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        self.lock()?.read(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        self.lock()?.set_len(len)
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        self.lock()?.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        self.lock()?.write(offset, data)
    }

    // close() and the lock methods keep their defaults: no locks are supported, which redb's
    // default `ConcurrencyMode::ExclusiveWriter` accepts (one process owns the disk).
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::StorageBackend;

    fn read_all(d: &SimDisk) -> Vec<u8> {
        let b = d.backend();
        let mut out = vec![0; b.len().unwrap() as usize];
        b.read(0, &mut out).unwrap();
        out
    }

    #[test]
    fn unsynced_writes_are_visible_then_lost_on_crash() {
        let d = SimDisk::new(1);
        let b = d.backend();
        b.write(0, &[1, 2, 3]).unwrap();
        b.sync_data().unwrap();
        b.write(1, &[9, 9, 9, 9]).unwrap();
        assert_eq!(read_all(&d), vec![1, 9, 9, 9, 9]);
        let s = d.stats();
        assert_eq!(
            (s.len, s.durable_len, s.unsynced_writes, s.syncs),
            (5, 3, 1, 1)
        );
        d.crash();
        assert_eq!(read_all(&d), vec![1, 2, 3]);
        assert_eq!(d.stats().unsynced_writes, 0);
    }

    #[test]
    fn the_version_moves_with_every_change_of_the_visible_bytes_only() {
        let d = SimDisk::new(1);
        let b = d.backend();
        let v0 = d.version();
        b.write(0, &[1, 2, 3]).unwrap();
        let v1 = d.version();
        assert!(v1 > v0);
        b.sync_data().unwrap();
        let mut out = [0; 3];
        b.read(0, &mut out).unwrap();
        let _ = d.image(DiskImage::Visible);
        assert_eq!(
            d.version(),
            v1,
            "syncs, reads and images change nothing visible"
        );
        b.set_len(8).unwrap();
        let v2 = d.version();
        assert!(v2 > v1);
        d.crash();
        assert!(d.version() > v2, "a crash may drop visible writes");
    }

    #[test]
    fn a_crash_fences_off_older_handles() {
        let d = SimDisk::new(1);
        let old = d.backend();
        old.write(0, &[1]).unwrap();
        old.sync_data().unwrap();
        d.crash();
        assert!(old.write(0, &[2]).is_err());
        assert!(old.sync_data().is_err());
        assert!(old.len().is_err());
        let mut out = [0; 1];
        assert!(old.read(0, &mut out).is_err());
        assert_eq!(read_all(&d), vec![1]);
    }

    #[test]
    fn set_len_zero_fills_and_is_durable_after_sync() {
        let d = SimDisk::new(1);
        let b = d.backend();
        b.set_len(4).unwrap();
        b.write(0, &[7]).unwrap();
        b.sync_data().unwrap();
        b.set_len(1).unwrap();
        assert_eq!(read_all(&d), vec![7]);
        d.crash();
        assert_eq!(read_all(&d), vec![7, 0, 0, 0]);
        let mut out = [0; 2];
        assert!(d.backend().read(3, &mut out).is_err());
    }

    #[test]
    fn torn_crash_applies_a_sector_aligned_prefix() {
        let mut outcomes = std::collections::BTreeSet::new();
        for seed in 0..300 {
            let d = SimDisk::new(seed);
            d.set_torn_writes(true);
            let b = d.backend();
            b.write(0, &[0xaa; 2048]).unwrap();
            b.sync_data().unwrap();
            b.write(100, &[1; 1000]).unwrap();
            b.write(0, &[2; 2048]).unwrap();
            d.crash();
            let got = read_all(&d);
            assert_eq!(got.len(), 2048);
            let twos = got.iter().take_while(|&&b| b == 2).count();
            if twos > 0 {
                // The second write is torn at a sector boundary (or whole) and the first one
                // was applied in full.
                assert_eq!(twos % 512, 0, "seed {seed}");
                assert!(got[twos..].iter().enumerate().all(|(i, &b)| {
                    let at = twos + i;
                    b == if (100..1100).contains(&at) { 1 } else { 0xaa }
                }));
            } else {
                let ones = got[100..].iter().take_while(|&&b| b == 1).count();
                assert!(
                    ones == 0 || ones == 1000 || (100 + ones) % 512 == 0,
                    "seed {seed}"
                );
                assert!(got[100 + ones..].iter().all(|&b| b == 0xaa));
                assert!(got[..100].iter().all(|&b| b == 0xaa));
            }
            outcomes.insert(twos * 10_000 + got.iter().filter(|&&b| b == 1).count());
        }
        // Nothing, 412 or 924 bytes of the first write, all of it, the second torn at
        // 512/1024/1536, or both whole.
        assert!(outcomes.len() >= 7, "{outcomes:?}");
    }

    #[test]
    fn crash_without_torn_writes_discards_all_unsynced() {
        let d = SimDisk::new(3);
        let b = d.backend();
        b.write(0, &[5; 1024]).unwrap();
        d.crash();
        assert!(read_all(&d).is_empty());
    }

    #[test]
    fn eio_fails_every_operation_until_turned_off() {
        let d = SimDisk::new(1);
        let b = d.backend();
        b.write(0, &[1]).unwrap();
        d.set_eio(true);
        let mut out = [0; 1];
        assert_eq!(b.read(0, &mut out).unwrap_err().raw_os_error(), Some(5));
        assert!(b.write(0, &[2]).is_err());
        assert!(b.set_len(3).is_err());
        assert!(b.sync_data().is_err());
        assert_eq!(d.stats().eio_errors, 4);
        d.set_eio(false);
        b.read(0, &mut out).unwrap();
        assert_eq!(out, [1]);
    }

    #[test]
    fn eio_after_counts_successful_operations() {
        let d = SimDisk::new(1);
        let b = d.backend();
        d.set_eio_after(2);
        b.write(0, &[1]).unwrap();
        b.sync_data().unwrap();
        assert!(b.write(0, &[2]).is_err());
        d.set_eio(false);
        b.write(0, &[3]).unwrap();
        d.set_eio_after(0);
        assert!(b.sync_data().is_err());
    }

    #[test]
    fn corrupt_reads_are_seeded_flip_one_byte_and_are_detected() {
        let run = |seed| {
            let d = SimDisk::new(seed);
            let b = d.backend();
            b.write(0, &[0; 64]).unwrap();
            d.set_corrupt_reads(500);
            let mut flips = Vec::new();
            for _ in 0..100 {
                let mut out = [0; 64];
                let result = b.read(0, &mut out);
                let changed: Vec<usize> = (0..64).filter(|&i| out[i] != 0).collect();
                assert!(changed.len() <= 1);
                assert_eq!(result.is_err(), changed.len() == 1);
                if let Err(e) = result {
                    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
                }
                flips.push(changed.first().copied());
            }
            (flips, d.stats().corrupted_reads)
        };
        let (a, n) = run(7);
        assert_eq!(run(7), (a.clone(), n));
        assert!(n > 20 && n < 80, "{n}");
        assert_eq!(a.iter().filter(|f| f.is_some()).count() as u64, n);
        assert_ne!(run(8).0, a);
    }
}
