//! The failure-injection scenarios of spec section 10 (besides T1–T3), each with the spec's
//! assertions, on the section 9 fixture (hand-driven nodes) or, where the scenario needs the
//! node's own event processing, on a cluster that processes chain events. Every scenario runs
//! under the safety oracle and snapshots its condensed trace.

use shardstorm_harness::oracle::SafetyOracle;
use shardstorm_harness::Cluster;
use shardstorm_node::blob::EncodedBlob;
use shardstorm_node::node::SeedBlob;
use shardstorm_node::ShardIndex;
use shardstorm_node::{
    AdminRequest, BlobInfo, Bug, NodeConfig, NodeId, NodeStatus, ShardStatus, SliverType,
};
use shardstorm_suites::scenario::{
    config_with, processing_cluster, run_scenario, run_scenario_with_oracle, Ctl, Outcome,
    Retirement, ScenarioError, TFixture,
};
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

const SEED: u64 = 10;
const N0: NodeId = NodeId(0);
const N1: NodeId = NodeId(1);

fn snapshot(outcome: &Outcome) {
    shardstorm_suites::assert_outcome_snapshot!("failure_injection", outcome);
}

/// Passes, and matches its snapshot.
fn verify(outcome: Outcome) {
    outcome.assert_passed();
    snapshot(&outcome);
}

/// The simulation configuration with `count` slivers per sync request.
fn sync_config(count: u32) -> NodeConfig {
    let mut config = config_with(&[]);
    config.sliver_count_per_sync_request = count;
    config
}

/// Shard 0 on node 1 is `Active`, holds every certified blob's slivers, has no progress
/// record and no pending recovery.
async fn assert_shard0_synced(ctl: &Ctl, fx: &TFixture) -> Result<(), ScenarioError> {
    let s = ctl.snapshot(N1).await?;
    ctl.check_shard_status(&s, 0, ShardStatus::Active);
    ctl.soft(fx.fully_synced_with_metadata(&s, 0));
    if let Some(shard) = s.shards.get(&shardstorm_node::ShardIndex(0)) {
        ctl.check_eq(
            "shard 0 progress (cleared at completion)",
            shard.progress,
            None,
        );
        ctl.check_eq("shard 0 pending recovery", shard.pending.len(), 0);
    }
    Ok(())
}

/// After a simulated crash at fail point `point` (with `sync.no_retry`): clears both points,
/// runs `restart_syncs` on node 1 and checks that shard 0 ends fully synced.
async fn resume_after_simulated_crash(
    ctl: &Ctl,
    fx: &TFixture,
    point: &str,
) -> Result<(), ScenarioError> {
    ctl.clear(point);
    ctl.clear("sync.no_retry");
    ctl.note("restart_syncs");
    ctl.restart_syncs(N1).await?;
    ctl.wait_until_no_sync_tasks(N1).await;
    assert_shard0_synced(ctl, fx).await
}

/// Number of slivers node 1 stored into shard 0 (sync and recovery), from the trace.
fn slivers_stored(ctl: &Ctl) -> usize {
    ctl.trace_lines_of(N1, "sliver-stored s0 ").len()
}

/// Slivers of shard 0 node 1 stored more than once (fetched twice), from the trace.
fn stored_twice(ctl: &Ctl) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    let mut twice = Vec::new();
    for line in ctl.trace_lines_of(N1, "sliver-stored s0 ") {
        let key = line
            .split("sliver-stored ")
            .nth(1)
            .unwrap_or_default()
            .to_string();
        if !seen.insert(key.clone()) {
            twice.push(key);
        }
    }
    twice
}

// ----- sync_shard_start_from_progress (x12) -----

/// `sync.fetch_sliver(type, n, false)` with `sync.no_retry` (a simulated crash); then
/// `restart_syncs` resumes from the progress record: all blobs synced, progress cleared, no
/// sliver fetched twice.
fn start_from_progress(ty: SliverType, n: usize) -> Outcome {
    let fx = TFixture::standard();
    let cluster = fx.cluster(SEED, sync_config(10));
    let name = format!("sync_shard_start_from_progress_{ty}_{n}");
    run_scenario(cluster, &name, SEED, move |ctl| async move {
        fx.seed(&ctl).await?;
        ctl.configure(N1, "sync.fetch_sliver", &format!("return({ty},{n},false)"))?;
        ctl.configure(N1, "sync.no_retry", "return")?;
        ctl.start_sync_shards(N1, &[0]).await?;
        ctl.wait_until_no_sync_tasks(N1).await;
        let s = ctl.snapshot(N1).await?;
        ctl.check_eq(
            "shard 0 status after the simulated crash",
            TFixture::shard_status(&s, 0),
            Some(ShardStatus::ActiveSync),
        );
        // Pages of 10: the page during which n slivers were fetched is discarded.
        let committed = 10 * ((n - 1) / 10);
        let (primary, secondary) = TFixture::sliver_counts(&s, 0);
        let expected = match ty {
            SliverType::Primary => (committed, 0),
            SliverType::Secondary => (23, committed),
        };
        ctl.check_eq(
            "(primary, secondary) slivers kept across the crash",
            (primary, secondary),
            expected,
        );
        resume_after_simulated_crash(&ctl, &fx, "sync.fetch_sliver").await?;
        ctl.check_eq(
            "slivers stored in shard 0 (none fetched twice)",
            slivers_stored(&ctl),
            46,
        );
        ctl.check_eq(
            "slivers stored twice",
            stored_twice(&ctl),
            Vec::<String>::new(),
        );
        Ok(())
    })
}

macro_rules! start_from_progress_cases {
    ($($name:ident: $ty:expr, $n:expr;)*) => {$(
        #[test]
        fn $name() {
            verify(start_from_progress($ty, $n));
        }
    )*};
}

start_from_progress_cases! {
    sync_shard_start_from_progress_primary_1: SliverType::Primary, 1;
    sync_shard_start_from_progress_primary_5: SliverType::Primary, 5;
    sync_shard_start_from_progress_primary_10: SliverType::Primary, 10;
    sync_shard_start_from_progress_primary_11: SliverType::Primary, 11;
    sync_shard_start_from_progress_primary_15: SliverType::Primary, 15;
    sync_shard_start_from_progress_primary_23: SliverType::Primary, 23;
    sync_shard_start_from_progress_secondary_1: SliverType::Secondary, 1;
    sync_shard_start_from_progress_secondary_5: SliverType::Secondary, 5;
    sync_shard_start_from_progress_secondary_10: SliverType::Secondary, 10;
    sync_shard_start_from_progress_secondary_11: SliverType::Secondary, 11;
    sync_shard_start_from_progress_secondary_15: SliverType::Secondary, 15;
    sync_shard_start_from_progress_secondary_23: SliverType::Secondary, 23;
}

// ----- sync_shard_restart_recover_retry_transfer (x4) -----

/// A non-retryable fetch error forces direct recovery; `sync.recovery.after_start` then fails
/// the sync in `ActiveRecover` (terminally). After a node restart the shard goes back to the
/// transfer (S5) and completes without recovering a single blob (`sync.recovery.recover_blob`
/// panics if it is reached).
fn restart_recover_retry_transfer(ty: SliverType, n: usize) -> Outcome {
    let fx = TFixture::standard();
    let cluster = fx.cluster(SEED, sync_config(10));
    let name = format!("sync_shard_restart_recover_retry_transfer_{ty}_{n}");
    run_scenario(cluster, &name, SEED, move |ctl| async move {
        fx.seed(&ctl).await?;
        ctl.configure(N1, "sync.fetch_sliver", &format!("return({ty},{n},false)"))?;
        ctl.configure(N1, "sync.recovery.after_start", "return")?;
        ctl.start_sync_shards(N1, &[0]).await?;
        ctl.wait_until_no_sync_tasks(N1).await;
        let s = ctl.snapshot(N1).await?;
        ctl.check_eq(
            "shard 0 status before the restart",
            TFixture::shard_status(&s, 0),
            Some(ShardStatus::ActiveRecover),
        );
        ctl.check(
            s.sync_tasks_failed
                .contains(&shardstorm_node::ShardIndex(0)),
            "the sync of shard 0 failed terminally",
        );
        ctl.check(
            ctl.reached(N1, "sync.direct_recovery") >= 1,
            "the fetch error forced direct recovery",
        );
        ctl.clear("sync.fetch_sliver");
        ctl.clear("sync.recovery.after_start");
        ctl.configure(
            N1,
            "sync.recovery.recover_blob",
            "panic(recovery used after restart)",
        )?;
        ctl.restart(N1).await?;
        ctl.wait_until_no_sync_tasks(N1).await;
        assert_shard0_synced(&ctl, &fx).await?;
        ctl.check_eq(
            "blobs recovered",
            ctl.reached(N1, "sync.recovery.recover_blob"),
            0,
        );
        Ok(())
    })
}

#[test]
fn sync_shard_restart_recover_retry_transfer_primary_5() {
    verify(restart_recover_retry_transfer(SliverType::Primary, 5));
}

#[test]
fn sync_shard_restart_recover_retry_transfer_primary_15() {
    verify(restart_recover_retry_transfer(SliverType::Primary, 15));
}

#[test]
fn sync_shard_restart_recover_retry_transfer_secondary_5() {
    verify(restart_recover_retry_transfer(SliverType::Secondary, 5));
}

#[test]
fn sync_shard_restart_recover_retry_transfer_secondary_15() {
    verify(restart_recover_retry_transfer(SliverType::Secondary, 15));
}

// ----- sync_shard_repeated_failures (x2) -----

/// Retryable fetch errors repeat; 2 slivers per request, backoff 1–5 s, switch interval 10 s.
/// With progress (an error once 4 slivers were fetched: every attempt commits one page) the
/// sync never enters recovery; without progress (error at 1) it must.
fn repeated_failures(with_progress: bool, bugs: &[Bug]) -> Outcome {
    let fx = TFixture::standard().with_recovery_symbols();
    let mut config = config_with(bugs);
    config.sliver_count_per_sync_request = 2;
    config.backoff_min = Duration::from_secs(1);
    config.backoff_max = Duration::from_secs(5);
    config.switch_to_recovery_interval = Duration::from_secs(10);
    let switch_ms = config.switch_to_recovery_interval.as_millis() as u64;
    let cluster = fx.cluster(SEED, config);
    let oracle = SafetyOracle::with_switch_interval(cluster.chain.clone(), switch_ms);
    let n = if with_progress { 4 } else { 1 };
    let name = format!(
        "sync_shard_repeated_failures_{}",
        if with_progress {
            "with_progress"
        } else {
            "without_progress"
        }
    );
    run_scenario_with_oracle(cluster, oracle, &name, SEED, move |ctl| async move {
        fx.seed(&ctl).await?;
        ctl.configure(
            N1,
            "sync.fetch_sliver",
            &format!("return(primary,{n},true)"),
        )?;
        ctl.start_sync_shards(N1, &[0]).await?;
        ctl.wait_until_no_sync_tasks_for(N1, Duration::from_secs(300))
            .await;
        assert_shard0_synced(&ctl, &fx).await?;
        let direct = ctl.reached(N1, "sync.direct_recovery");
        let recovery = ctl.reached(N1, "sync.recovery.start");
        let recover_written = !ctl.trace_lines_of(N1, "-> ActiveRecover").is_empty();
        if with_progress {
            ctl.check_eq("sync.direct_recovery reached", direct, 0);
            ctl.check_eq("sync.recovery.start reached", recovery, 0);
            ctl.check(
                !recover_written,
                "ActiveRecover written although every attempt made progress",
            );
        } else {
            ctl.check(
                direct >= 1,
                "without progress the sync must switch to direct recovery",
            );
            ctl.check(recovery >= 1, "without progress the sync must recover");
        }
        ctl.clear("sync.fetch_sliver");
        Ok(())
    })
}

#[test]
fn sync_shard_repeated_failures_with_progress() {
    verify(repeated_failures(true, &[]));
}

#[test]
fn sync_shard_repeated_failures_without_progress() {
    verify(repeated_failures(false, &[]));
}

#[test]
fn sync_shard_repeated_failures_catches_progress_timer_never_reset() {
    let outcome = repeated_failures(true, &[Bug::ProgressTimerNeverReset]);
    let evidence = outcome.assert_caught(
        &[],
        &[
            "sync.direct_recovery reached",
            "sync.recovery.start reached",
            "ActiveRecover written",
        ],
    );
    eprintln!("progress-timer-never-reset caught:\n{evidence}");
}

// ----- sync_shard_src_abnormal_return (x2) -----

/// The source returns empty pages or an internal error: everything is still synced, through
/// recovery.
fn src_abnormal_return(point: &'static str) -> Outcome {
    let fx = TFixture::standard().with_recovery_symbols();
    let cluster = fx.cluster(SEED, config_with(&[]));
    let name = format!(
        "sync_shard_src_abnormal_return_{}",
        point.trim_start_matches("source.return_")
    );
    run_scenario(cluster, &name, SEED, move |ctl| async move {
        fx.seed(&ctl).await?;
        ctl.configure(N0, point, "return")?;
        ctl.start_sync_shards(N1, &[0]).await?;
        ctl.wait_until_no_sync_tasks(N1).await;
        assert_shard0_synced(&ctl, &fx).await?;
        ctl.check(
            ctl.reached(N1, "sync.recovery.start") >= 1,
            "the slivers came through recovery",
        );
        ctl.check(
            ctl.reached(N0, point) >= 1,
            format!("the source evaluated {point}"),
        );
        ctl.clear(point);
        Ok(())
    })
}

#[test]
fn sync_shard_src_abnormal_return_empty() {
    verify(src_abnormal_return("source.return_empty"));
}

#[test]
fn sync_shard_src_abnormal_return_error() {
    verify(src_abnormal_return("source.return_error"));
}

// ----- sync_shard_ignore_non_certified_blobs -----

/// 20 blobs expired at epoch 3, the cluster is at epoch 4: only the 3 certified blobs are
/// synced and recovery never starts.
#[test]
fn sync_shard_ignore_non_certified_blobs() {
    let fx = TFixture::standard().expiring(20, 3).at_epoch(4);
    let cluster = fx.cluster(SEED, config_with(&[]));
    verify(run_scenario(
        cluster,
        "sync_shard_ignore_non_certified_blobs",
        SEED,
        move |ctl| async move {
            fx.seed(&ctl).await?;
            ctl.start_sync_shards(N1, &[0]).await?;
            ctl.wait_until_no_sync_tasks(N1).await;
            assert_shard0_synced(&ctl, &fx).await?;
            let s = ctl.snapshot(N1).await?;
            ctl.check_eq(
                "(primary, secondary) slivers of shard 0",
                TFixture::sliver_counts(&s, 0),
                (3, 3),
            );
            ctl.check_eq(
                "sync.recovery.start reached",
                ctl.reached(N1, "sync.recovery.start"),
                0,
            );
            Ok(())
        },
    ));
}

// ----- sync_shard_shard_recovery_restart (x7) -----

/// The source lacks 12 of the 23 blobs. A fetch error (or `sync.recovery.after_start`) with
/// `sync.no_retry`, then `restart_syncs`: the shard ends `Active` with every blob.
fn shard_recovery_restart(fault: Option<(SliverType, usize)>) -> Outcome {
    let fx = TFixture::standard()
        .source_lacking(12)
        .with_recovery_symbols();
    let cluster = fx.cluster(SEED, sync_config(10));
    let name = match fault {
        Some((ty, n)) => format!("sync_shard_shard_recovery_restart_{ty}_{n}"),
        None => "sync_shard_shard_recovery_restart_after_recovery".to_string(),
    };
    run_scenario(cluster, &name, SEED, move |ctl| async move {
        fx.seed(&ctl).await?;
        let point = match fault {
            Some((ty, n)) => {
                ctl.configure(N1, "sync.fetch_sliver", &format!("return({ty},{n},false)"))?;
                "sync.fetch_sliver"
            }
            None => {
                ctl.configure(N1, "sync.recovery.after_start", "return")?;
                "sync.recovery.after_start"
            }
        };
        ctl.configure(N1, "sync.no_retry", "return")?;
        ctl.start_sync_shards(N1, &[0]).await?;
        ctl.wait_until_no_sync_tasks(N1).await;
        let s = ctl.snapshot(N1).await?;
        let expected = if fault.is_some() {
            ShardStatus::ActiveSync
        } else {
            ShardStatus::ActiveRecover
        };
        ctl.check_eq(
            "shard 0 status after the simulated crash",
            TFixture::shard_status(&s, 0),
            Some(expected),
        );
        resume_after_simulated_crash(&ctl, &fx, point).await?;
        ctl.check(
            ctl.reached(N1, "sync.recovery.start") >= 1,
            "the 12 missing blobs came through recovery",
        );
        Ok(())
    })
}

macro_rules! shard_recovery_restart_cases {
    ($($name:ident: $fault:expr;)*) => {$(
        #[test]
        fn $name() {
            verify(shard_recovery_restart($fault));
        }
    )*};
}

shard_recovery_restart_cases! {
    sync_shard_shard_recovery_restart_primary_1: Some((SliverType::Primary, 1));
    sync_shard_shard_recovery_restart_primary_5: Some((SliverType::Primary, 5));
    sync_shard_shard_recovery_restart_primary_10: Some((SliverType::Primary, 10));
    sync_shard_shard_recovery_restart_secondary_1: Some((SliverType::Secondary, 1));
    sync_shard_shard_recovery_restart_secondary_5: Some((SliverType::Secondary, 5));
    sync_shard_shard_recovery_restart_secondary_10: Some((SliverType::Secondary, 10));
    sync_shard_shard_recovery_restart_after_recovery: None;
}

// ----- sync_shard_recovery_metadata_restart (x2) -----

/// Metadata recovery fails before the first fetch or during the fetch (at a scan count drawn
/// from the seed): the shard stays `None` and the node `RecoverMetadata`; after
/// `restart_syncs` shard 0 is fully synced with metadata and the node `Active`.
fn recovery_metadata_restart(during: bool) -> Outcome {
    let fx = TFixture::standard();
    let cluster = fx.cluster(SEED, config_with(&[]));
    let name = format!(
        "sync_shard_recovery_metadata_restart_{}",
        if during {
            "during_fetch"
        } else {
            "before_fetch"
        }
    );
    // "random n": a scan count in 1..=23 derived from the seed.
    let n = 1 + (SEED.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 59) % 23;
    run_scenario(cluster, &name, SEED, move |ctl| async move {
        fx.seed(&ctl).await?;
        ctl.clear_metadata(N1).await?;
        ctl.set_status(N1, NodeStatus::RecoverMetadata).await?;
        let point = if during {
            ctl.configure(
                N1,
                "sync.metadata.error_during_fetch",
                &format!("return({n})"),
            )?;
            "sync.metadata.error_during_fetch"
        } else {
            ctl.configure(N1, "sync.metadata.error_before_fetch", "return")?;
            "sync.metadata.error_before_fetch"
        };
        ctl.start_sync_shards(N1, &[0]).await?;
        ctl.wait_until_no_sync_tasks(N1).await;
        let s = ctl.snapshot(N1).await?;
        ctl.check_eq(
            "shard 0 status after the failed metadata recovery",
            TFixture::shard_status(&s, 0),
            Some(ShardStatus::None),
        );
        ctl.check_eq(
            "node status after the failed metadata recovery",
            s.status,
            Some(NodeStatus::RecoverMetadata),
        );
        ctl.check(
            !ctl.trace_lines_of(N1, "metadata-finish").is_empty(),
            "metadata recovery ran and finished (failed)",
        );
        ctl.clear(point);
        ctl.note("restart_syncs");
        ctl.restart_syncs(N1).await?;
        ctl.wait_until_no_sync_tasks(N1).await;
        let s = ctl.snapshot(N1).await?;
        ctl.check_eq("node status", s.status, Some(NodeStatus::Active));
        assert_shard0_synced(&ctl, &fx).await?;
        Ok(())
    })
}

#[test]
fn sync_shard_recovery_metadata_restart_before_fetch() {
    verify(recovery_metadata_restart(false));
}

#[test]
fn sync_shard_recovery_metadata_restart_during_fetch() {
    verify(recovery_metadata_restart(true));
}

// ----- shard_recovery_blob_not_recover_expired_invalid_deleted_blobs (x2) -----

/// Blob `i`'s retirement when the blobs 1..=n are split in three equal runs: deleted,
/// invalidated, expired.
fn thirds(i: u8, run: u8) -> (u8, Retirement) {
    let how = [
        Retirement::Deleted,
        Retirement::Invalidated,
        Retirement::Expired,
    ];
    (i, how[usize::from((i - 1) / run)])
}

/// Every blob goes to recovery (the source answers empty); while recovery is held at its start,
/// blobs 1–3 are deleted, 4–6 invalidated and 7–9 expire. Recovery skips them (with
/// `sync.recovery.skip_initial_cert_check` the first check is skipped and the later retirement
/// check drops them), stores none of their slivers, and the shard reaches `Active`.
fn not_recover_retired(skip_initial_check: bool) -> Outcome {
    let fx = TFixture::standard().with_recovery_symbols();
    let cluster = fx.cluster(SEED, config_with(&[]));
    let name = format!(
        "shard_recovery_blob_not_recover_expired_invalid_deleted_blobs{}",
        if skip_initial_check {
            "_skip_initial_check"
        } else {
            ""
        }
    );
    run_scenario(cluster, &name, SEED, move |ctl| async move {
        fx.seed(&ctl).await?;
        ctl.configure(N0, "source.return_empty", "return")?;
        ctl.configure(N1, "sync.recovery.start", "pause")?;
        if skip_initial_check {
            ctl.configure(N1, "sync.recovery.skip_initial_cert_check", "return")?;
        }
        ctl.start_sync_shards(N1, &[0]).await?;
        ctl.wait_reached(N1, "sync.recovery.start", 1, Duration::from_secs(30))
            .await;
        ctl.note("retire blobs 1-3 (deleted), 4-6 (invalid), 7-9 (expired)");
        let retired: Vec<_> = (1..=9u8).map(|i| thirds(i, 3)).collect();
        fx.retire(&ctl, N1, &retired).await?;
        ctl.open_gate(N1, "sync.recovery.start");
        ctl.wait_until_no_sync_tasks(N1).await;
        let s = ctl.snapshot(N1).await?;
        ctl.check_shard_status(&s, 0, ShardStatus::Active);
        let live: Vec<_> = fx.blobs.iter().filter(|b| b.index > 9).collect();
        let retired: Vec<_> = fx.blobs.iter().filter(|b| b.index <= 9).collect();
        let problems = fx.sliver_mismatches(&s, 0, &live);
        ctl.check(
            problems.is_empty(),
            format!("live blobs recovered into shard 0: {problems:?}"),
        );
        let stored_retired = fx.sliver_mismatches(&s, 0, &retired).len();
        ctl.check_eq(
            "retired slivers not stored (missing entries)",
            stored_retired,
            18,
        );
        let attempted = ctl.reached(N1, "sync.recovery.recover_blob");
        let expected = if skip_initial_check { 46 } else { 28 };
        ctl.check_eq("blob recoveries attempted", attempted, expected);
        ctl.check_eq(
            "blob_sync.before_put_sliver reached",
            ctl.reached(N1, "blob_sync.before_put_sliver"),
            28,
        );
        Ok(())
    })
}

#[test]
fn shard_recovery_blob_not_recover_expired_invalid_deleted_blobs() {
    verify(not_recover_retired(false));
}

#[test]
fn shard_recovery_blob_not_recover_expired_invalid_deleted_blobs_skip_initial_check() {
    verify(not_recover_retired(true));
}

// ----- shard_recovery_cancel_metadata_sync_when_blob_expired_deleted_invalidated -----

/// Metadata fetches never succeed (`sync.metadata.unavailable`); while the node stays in
/// `RecoverMetadata` every blob is deleted, invalidated or expires. Metadata recovery then skips
/// them, and the shard and the node reach `Active`.
#[test]
fn shard_recovery_cancel_metadata_sync_when_blob_expired_deleted_invalidated() {
    let fx = TFixture::standard();
    let cluster = fx.cluster(SEED, config_with(&[]));
    let name = "shard_recovery_cancel_metadata_sync_when_blob_expired_deleted_invalidated";
    verify(run_scenario(cluster, name, SEED, move |ctl| async move {
        fx.seed(&ctl).await?;
        ctl.clear_metadata(N1).await?;
        ctl.set_status(N1, NodeStatus::RecoverMetadata).await?;
        ctl.configure(N1, "sync.metadata.unavailable", "return")?;
        ctl.start_sync_shards(N1, &[0]).await?;
        // Every blob's fetch has failed at least twice.
        ctl.wait_reached(N1, "sync.metadata.unavailable", 46, Duration::from_secs(60))
            .await;
        let s = ctl.snapshot(N1).await?;
        ctl.check_eq(
            "node status while metadata is unavailable",
            s.status,
            Some(NodeStatus::RecoverMetadata),
        );
        ctl.check_eq(
            "shard 0 status while metadata is unavailable",
            TFixture::shard_status(&s, 0),
            Some(ShardStatus::None),
        );
        ctl.note("retire every blob: 1-8 deleted, 9-16 invalid, 17-23 expired");
        let retired: Vec<_> = (1..=23u8).map(|i| thirds(i, 8)).collect();
        fx.retire(&ctl, N1, &retired).await?;
        ctl.wait_until_no_sync_tasks(N1).await;
        let s = ctl.snapshot(N1).await?;
        ctl.check_eq("node status", s.status, Some(NodeStatus::Active));
        ctl.check_shard_status(&s, 0, ShardStatus::Active);
        ctl.check_eq("metadata stored", s.metadata.len(), 0);
        ctl.clear("sync.metadata.unavailable");
        Ok(())
    }));
}

// ----- scenarios on a cluster that processes chain events -----

/// Two nodes that process chain events: node 0 owns shards 0 and 1, node 1 shards 2 and 3.
fn two_node_cluster() -> Cluster {
    processing_cluster(SEED, 2, &[0, 0, 1, 1], config_with(&[]))
}

/// Two more epoch changes with the epoch-1 committee, each forced done, before the nodes start:
/// the chain's event history is three epochs long. Returns that committee.
fn three_epochs_of_history(cluster: &Cluster) -> BTreeMap<ShardIndex, NodeId> {
    let committee = cluster
        .chain
        .committee(1)
        .map(|c| c.shards)
        .unwrap_or_default();
    for _ in 0..2 {
        cluster.chain.force_epoch_change_done();
        cluster
            .chain
            .start_epoch_change(committee.clone())
            .expect("complete committee");
    }
    committee
}

// ----- finish_epoch_change_start_should_not_block_event_processing -----

/// `epoch.finisher.block` parks node 1's finisher of the epoch-2 change: later events are still
/// processed, the persisted cursor stays at the epoch change until release, and the epoch change
/// ends only after release.
#[test]
fn finish_epoch_change_start_should_not_block_event_processing() {
    let cluster = two_node_cluster();
    let name = "finish_epoch_change_start_should_not_block_event_processing";
    verify(run_scenario(cluster, name, SEED, move |ctl| async move {
        let chain = ctl.chain.clone();
        ctl.wait_until("epoch change 1 done", Duration::from_secs(60), || {
            chain.is_epoch_change_done(1)
        })
        .await;
        for node in [N0, N1] {
            let count = chain.event_count();
            ctl.wait_snapshot(
                node,
                "every genesis event complete",
                Duration::from_secs(60),
                |s| s.event_cursor == count,
            )
            .await;
        }
        ctl.configure(N1, "epoch.finisher.block", "pause")?;
        // The genesis finisher already evaluated the point once; wait for the next hit.
        let finisher_hits = ctl.reached(N1, "epoch.finisher.block");
        let change = chain.event_count();
        let committee = chain.committee(1).map(|c| c.shards).unwrap_or_default();
        chain.start_epoch_change(committee)?;
        ctl.note(format!("epoch change 2 started (event {change})"));
        ctl.wait_reached(
            N1,
            "epoch.finisher.block",
            finisher_hits + 1,
            Duration::from_secs(30),
        )
        .await;
        let processed = ctl.reached(N1, "events.before_process");
        for i in 0..3u8 {
            chain.register_blob(shardstorm_node::BlobId([0xb0 + i; 32]), 10)?;
        }
        ctl.note("3 blobs registered after the epoch change");
        let registry = ctl.registry.clone();
        ctl.wait_until(
            "node 1 processed the 3 later events",
            Duration::from_secs(30),
            || registry.reached(&N1.host(), "events.before_process") >= processed + 3,
        )
        .await;
        let s = ctl.snapshot(N1).await?;
        ctl.check_eq(
            "persisted cursor while the finisher is parked",
            s.event_cursor,
            change,
        );
        ctl.check(
            !chain.is_epoch_change_done(2),
            "epoch change 2 must wait for node 1's finisher",
        );
        ctl.open_gate(N1, "epoch.finisher.block");
        let count = chain.event_count();
        ctl.wait_snapshot(
            N1,
            "cursor advanced past every event",
            Duration::from_secs(30),
            |s| s.event_cursor >= count,
        )
        .await;
        ctl.wait_until("epoch change 2 done", Duration::from_secs(30), || {
            chain.is_epoch_change_done(2)
        })
        .await;
        ctl.clear("epoch.finisher.block");
        Ok(())
    }));
}

// ----- node_loses_the_chain_mid_epoch_change_and_recovers -----

/// Node 1 is cut off the chain host (both ways) while it processes the epoch-2 change, in
/// which it gains node 0's shards. Its epoch change waits for the chain, node 0's does not,
/// and the epoch change cannot end without node 1 (node 0 alone owns half the shards). Once the
/// cut heals, node 1 reads the committee, syncs its gained shards from node 0, attests, and the
/// epoch change ends; the chain's log holds node 1's attestation.
#[test]
fn node_loses_the_chain_mid_epoch_change_and_recovers() {
    use shardstorm_faults::{Fault, LinkDirection};
    let cluster = two_node_cluster();
    let name = "node_loses_the_chain_mid_epoch_change_and_recovers";
    verify(run_scenario(cluster, name, SEED, move |ctl| async move {
        let chain = ctl.chain.clone();
        ctl.wait_until("epoch change 1 done", Duration::from_secs(60), || {
            chain.is_epoch_change_done(1)
        })
        .await;
        ctl.configure(N1, "epoch.change_start.entry", "pause")?;
        let entered = ctl.reached(N1, "epoch.change_start.entry");
        let swapped = (0..4).map(|i| (ShardIndex(i), NodeId(1 - i / 2))).collect();
        chain.start_epoch_change(swapped)?;
        ctl.note("epoch change 2 started: node 1 gains s0, s1");
        ctl.wait_reached(
            N1,
            "epoch.change_start.entry",
            entered + 1,
            Duration::from_secs(30),
        )
        .await;
        ctl.inject(Fault::ChainPartition {
            nodes: vec![N1.host()],
            direction: LinkDirection::Both,
            duration: Duration::from_secs(8),
        });
        ctl.sleep(Duration::from_millis(100)).await;
        ctl.open_gate(N1, "epoch.change_start.entry");
        ctl.sleep(Duration::from_secs(5)).await;
        let s = ctl.snapshot(N1).await?;
        ctl.check(
            !chain.is_epoch_change_done(2),
            "epoch change 2 must wait for node 1, which cannot reach the chain",
        );
        ctl.check(
            s.shards.keys().all(|shard| shard.0 >= 2),
            "node 1 must not create its gained shards before it read the new committee",
        );
        ctl.check(
            !chain.attestations(2).contains(&N1),
            "node 1 cannot attest while cut off",
        );
        ctl.note("the cut heals at 8 s");
        ctl.wait_until("epoch change 2 done", Duration::from_secs(60), || {
            chain.is_epoch_change_done(2)
        })
        .await;
        ctl.check(
            chain.attestations(2).contains(&N1),
            "node 1 attested epoch 2 after the cut healed",
        );
        let s = ctl
            .wait_snapshot(N1, "gained shards synced", Duration::from_secs(30), |s| {
                [0, 1].iter().all(|i| {
                    s.shards.get(&ShardIndex(*i)).map(|sh| sh.status) == Some(ShardStatus::Active)
                })
            })
            .await;
        if let Some(s) = s {
            for shard in [0, 1] {
                ctl.check_shard_status(&s, shard, ShardStatus::Active);
            }
        }
        ctl.clear("epoch.change_start.entry");
        Ok(())
    }));
}

// ----- event_blob_cursor_should_not_affect_node_state -----

/// With `events.initial_cursor` = 10000 and `events.epoch_check` = 100, node 1 starts at the
/// end of an event history three epochs long and must not enter catch-up; node 0, without
/// the overrides, replays the history, detects the lag and catches up (the control).
#[test]
fn event_blob_cursor_should_not_affect_node_state() {
    let cluster = two_node_cluster();
    three_epochs_of_history(&cluster);
    let overrides = [
        ("events.initial_cursor", "return(10000)"),
        ("events.epoch_check", "return(100)"),
    ];
    for (point, action) in overrides {
        cluster
            .registry
            .configure(shardstorm_faults::Selector::Node(N1.host()), point, action)
            .expect("valid action");
    }
    let name = "event_blob_cursor_should_not_affect_node_state";
    verify(run_scenario(cluster, name, SEED, move |ctl| async move {
        ctl.wait_snapshot(N0, "node 0 caught up", Duration::from_secs(60), |s| {
            s.status == Some(NodeStatus::Active)
        })
        .await;
        ctl.chain
            .register_blob(shardstorm_node::BlobId([0xc0; 32]), 10)?;
        ctl.note("a new event");
        ctl.wait_reached(N1, "events.before_process", 1, Duration::from_secs(30))
            .await;
        ctl.sleep(Duration::from_secs(1)).await;
        let s = ctl.snapshot(N1).await?;
        ctl.check_eq("node 1 status", s.status, Some(NodeStatus::Standby));
        ctl.check(
            ctl.trace_lines_of(N1, "RecoveryCatchUp").is_empty(),
            "node 1 entered catch-up",
        );
        ctl.check(
            !ctl.trace_lines_of(N0, "-> RecoveryCatchUp").is_empty(),
            "control: node 0 replays old events and catches up",
        );
        Ok(())
    }));
}

// ----- recovery with incomplete history (cluster-level scenario) -----

/// The chain pruned its history before the nodes started: both take N2
/// (`RecoveryCatchUpWithIncompleteHistory`, `node.incomplete_history` reached); the next epoch
/// change brings them through full recovery (N7) to `Active` (N11), and the epoch change ends.
#[test]
fn recovery_with_incomplete_history() {
    let cluster = two_node_cluster();
    let committee = three_epochs_of_history(&cluster);
    cluster
        .chain
        .prune_events_before(cluster.chain.event_count());
    let name = "recovery_with_incomplete_history";
    verify(run_scenario(cluster, name, SEED, move |ctl| async move {
        let incomplete = |s: &shardstorm_node::NodeSnapshot| {
            matches!(
                s.status,
                Some(NodeStatus::RecoveryCatchUpWithIncompleteHistory { .. })
            )
        };
        for node in [N0, N1] {
            ctl.wait_snapshot(
                node,
                "incomplete-history catch-up",
                Duration::from_secs(30),
                incomplete,
            )
            .await;
            ctl.check_eq(
                "node.incomplete_history reached",
                ctl.reached(node, "node.incomplete_history"),
                1,
            );
        }
        ctl.chain.force_epoch_change_done();
        ctl.chain.start_epoch_change(committee)?;
        ctl.note("epoch change 4 started");
        for node in [N0, N1] {
            let s = ctl
                .wait_snapshot(
                    node,
                    "Active after full recovery",
                    Duration::from_secs(60),
                    |s| s.status == Some(NodeStatus::Active),
                )
                .await;
            if let Some(s) = s {
                let active = s.shards.values().all(|sh| sh.status == ShardStatus::Active);
                ctl.check(
                    active && s.shards.len() == 2,
                    format!(
                        "{node} owns two Active shards: {:?}",
                        s.shards.keys().collect::<Vec<_>>()
                    ),
                );
            }
        }
        let chain = ctl.chain.clone();
        ctl.wait_until("epoch change 4 done", Duration::from_secs(30), || {
            chain.is_epoch_change_done(4)
        })
        .await;
        Ok(())
    }));
}

// ----- a real crash at a storage crash point during a transfer -----

/// Node 1 crashes (a real process crash, not `sync.no_retry`) right after the third committed
/// write batch of its transfer (`db.write_batch.after`), 2 slivers per request. After the
/// restart, `restart_syncs` resumes the transfer from the persisted progress: the shard ends
/// `Active` with every blob and no sliver is fetched twice.
#[test]
fn sync_shard_crash_at_write_batch_resumes_after_restart() {
    let fx = TFixture::standard();
    let cluster = fx.cluster(SEED, sync_config(2));
    let name = "sync_shard_crash_at_write_batch_resumes_after_restart";
    verify(run_scenario(cluster, name, SEED, move |ctl| async move {
        fx.seed(&ctl).await?;
        ctl.configure(N1, "db.write_batch.after", "3*off->1*crash")?;
        ctl.start_sync_shards(N1, &[0]).await?;
        let registry = ctl.registry.clone();
        ctl.wait_until("the crash fired", Duration::from_secs(30), || {
            registry.fired(&N1.host(), "db.write_batch.after") >= 1
        })
        .await;
        ctl.sleep(Duration::from_secs(1)).await;
        ctl.clear("db.write_batch.after");
        ctl.restart(N1).await?;
        ctl.wait_until_no_sync_tasks(N1).await;
        assert_shard0_synced(&ctl, &fx).await?;
        // The batch committed right before the crash reported no probe events (the process died
        // after the durable write), so fewer than 46 stores show; none may show twice.
        ctl.check_eq(
            "slivers stored twice",
            stored_twice(&ctl),
            Vec::<String>::new(),
        );
        ctl.check(
            slivers_stored(&ctl) < 46,
            "the crashed batch was not fetched again",
        );
        Ok(())
    }));
}

// ----- blob-event scenarios (cluster processing events) -----

/// A 4-node cluster (node i owns shard i) past its genesis epoch change, and one blob
/// (64 bytes of 0x5b) registered on the chain and stored, with its metadata, on every node but
/// node 1. Returns the blob's encoding.
async fn blob_on_all_but_n1(ctl: &Ctl) -> Result<EncodedBlob, ScenarioError> {
    let chain = ctl.chain.clone();
    ctl.wait_until("epoch change 1 done", Duration::from_secs(60), || {
        chain.is_epoch_change_done(1)
    })
    .await;
    let encoded = shardstorm_node::blob::encode(&ctl.encoding, &[0x5b; 64])
        .map_err(|e| ScenarioError(e.to_string()))?;
    let blob = encoded.blob_id;
    chain.register_blob(blob, 10)?;
    for node in [0u16, 2, 3] {
        let shard = shardstorm_node::ShardIndex(node);
        let slivers = SliverType::ALL
            .iter()
            .filter_map(|ty| encoded.sliver(shard, *ty).map(|s| (shard, *ty, s.to_vec())))
            .collect();
        let info = BlobInfo {
            registered_epoch: 1,
            end_epoch: 11,
            certified_epoch: None,
            deleted: false,
            invalid: false,
        };
        let seed = SeedBlob {
            blob,
            info,
            metadata: Some(encoded.metadata.clone()),
            slivers,
        };
        ctl.request(NodeId(node), AdminRequest::Seed(vec![seed]))
            .await?;
    }
    ctl.note(format!("blob {blob} registered, stored on n0, n2, n3"));
    Ok(encoded)
}

/// Runs `steps` on a 4-node cluster that processes chain events (node i owns shard i), after
/// arming `point` with `action` on node 1 and storing a blob on every node but node 1
/// ([`blob_on_all_but_n1`]); `steps` get the blob's encoding.
fn blob_event_scenario<F, Fut>(
    name: &str,
    (point, action): (&'static str, &'static str),
    steps: F,
) -> Outcome
where
    F: FnOnce(Ctl, EncodedBlob) -> Fut + 'static,
    Fut: Future<Output = Result<(), ScenarioError>> + 'static,
{
    let cluster = processing_cluster(SEED, 4, &[0, 1, 2, 3], config_with(&[]));
    run_scenario(cluster, name, SEED, move |ctl| async move {
        ctl.configure(N1, point, action)?;
        let encoded = blob_on_all_but_n1(&ctl).await?;
        steps(ctl, encoded).await
    })
}

/// Certified handling is delayed 5 s on node 1 (`blob_sync.certified_event`); the blob is
/// certified, then deleted. The delayed blob sync must not store the deleted blob (the control
/// without the delete shows the blob sync does store it after the delay).
fn certify_then_delete(delete: bool) -> Outcome {
    let name = if delete {
        "no_out_of_order_blob_certify_and_delete_event_processing"
    } else {
        "no_out_of_order_blob_certify_and_delete_event_processing_control"
    };
    let delay = ("blob_sync.certified_event", "delay(5000)");
    blob_event_scenario(name, delay, move |ctl, encoded| async move {
        let blob = encoded.blob_id;
        ctl.chain.certify_blob(blob)?;
        if delete {
            ctl.chain.delete_blob(blob)?;
        }
        ctl.note(if delete {
            "certified, then deleted"
        } else {
            "certified"
        });
        if !delete {
            ctl.wait_reached(N1, "blob_sync.certified_event", 1, Duration::from_secs(10))
                .await;
        }
        // (With the delete processed right after the certification, the blob sync may be
        // cancelled before it even reaches the delay.)
        ctl.sleep(Duration::from_secs(10)).await;
        let s = ctl.snapshot(N1).await?;
        let shard = s.shards.get(&shardstorm_node::ShardIndex(1));
        let stored = shard.map_or(0, |sh| {
            usize::from(sh.primary.contains_key(&blob))
                + usize::from(sh.secondary.contains_key(&blob))
        });
        if delete {
            ctl.check_eq("slivers of the deleted blob on node 1", stored, 0);
            ctl.check(
                s.blob_syncs_running.is_empty(),
                format!(
                    "blob syncs remain on node 1 after the delete: {:?}",
                    s.blob_syncs_running
                ),
            );
            ctl.check_eq(
                "blob_sync.before_put_sliver reached",
                ctl.reached(N1, "blob_sync.before_put_sliver"),
                0,
            );
        } else {
            ctl.check_eq(
                "slivers of the certified blob on node 1 after the delay",
                stored,
                2,
            );
        }
        Ok(())
    })
}

/// Checked: no sliver of the deleted blob is stored, and no blob sync remains on node 1
/// (`NodeSnapshot::blob_syncs_running`, the spec's "no blob sync may remain").
#[test]
fn no_out_of_order_blob_certify_and_delete_event_processing() {
    verify(certify_then_delete(true));
}

#[test]
fn no_out_of_order_blob_certify_and_delete_event_processing_control() {
    verify(certify_then_delete(false));
}

/// `blob_sync.certified_event` blocks certified-event processing on node 1; the epoch change
/// that follows must wait for every pending event of the epoch (spec 6.1 step 3) until release.
/// While it waits, node 1 has entered the epoch change (its `epoch-change-start` probe is emitted
/// at entry, before step 2) but has not read the new committee, and the certified event is
/// still pending; after release the epoch change completes.
#[test]
fn test_blob_event_processor_wait_for_all_events_to_be_processed() {
    let name = "test_blob_event_processor_wait_for_all_events_to_be_processed";
    let pause = ("blob_sync.certified_event", "pause");
    verify(blob_event_scenario(
        name,
        pause,
        |ctl, encoded| async move {
            ctl.chain.certify_blob(encoded.blob_id)?;
            ctl.wait_reached(N1, "blob_sync.certified_event", 1, Duration::from_secs(10))
                .await;
            let committee = ctl.chain.committee(1).map(|c| c.shards).unwrap_or_default();
            ctl.chain.start_epoch_change(committee)?;
            ctl.sleep(Duration::from_secs(5)).await;
            ctl.check(
                !ctl.trace_lines_of(N1, "epoch-change-waits epoch=2 pending-events=1")
                    .is_empty(),
                "the epoch change did not wait for the pending certified event",
            );
            let s = ctl.snapshot(N1).await?;
            ctl.check_eq(
                "node 1 committee epoch while a certified event is pending",
                s.committee_epoch,
                1,
            );
            if ctl.check_eq("node 1 pending certified events", s.pending_events.len(), 1) {
                ctl.note("n1 waits in the epoch change with one pending certified event");
            }
            ctl.open_gate(N1, "blob_sync.certified_event");
            let chain = ctl.chain.clone();
            ctl.wait_until("epoch change 2 done", Duration::from_secs(30), || {
                chain.is_epoch_change_done(2)
            })
            .await;
            // Nodes 0, 2 and 3 own three of the four shards, so the chain ends epoch change 2
            // without node 1: wait until node 1 itself got through it (its attestation).
            let trace = ctl.clone();
            ctl.wait_until("node 1 attests epoch 2", Duration::from_secs(30), || {
                !trace
                    .trace_lines_of(N1, "epoch-sync-done epoch=2")
                    .is_empty()
            })
            .await;
            let s = ctl.snapshot(N1).await?;
            ctl.check_eq("node 1 committee epoch after release", s.committee_epoch, 2);
            ctl.check(
                s.pending_events.is_empty(),
                "a certified event is still pending after release",
            );
            Ok(())
        },
    ));
}

/// `events.flush_pending_caches` blocks the flush after a registration; certified handling must
/// wait for it.
#[test]
fn flush_after_registration() {
    verify(blob_event_scenario(
        "flush_after_registration",
        ("events.flush_pending_caches", "pause"),
        |ctl, encoded| async move {
            ctl.wait_reached(
                N1,
                "events.flush_pending_caches",
                1,
                Duration::from_secs(10),
            )
            .await;
            ctl.chain.certify_blob(encoded.blob_id)?;
            ctl.sleep(Duration::from_secs(2)).await;
            ctl.check_eq(
                "certified handling while the flush is blocked",
                ctl.reached(N1, "blob_sync.certified_event"),
                0,
            );
            ctl.open_gate(N1, "events.flush_pending_caches");
            if ctl
                .wait_reached(N1, "blob_sync.certified_event", 1, Duration::from_secs(10))
                .await
            {
                ctl.note("certified handling on n1 went on after the flush");
            }
            Ok(())
        },
    ));
}

/// With `blob_sync.skip_non_extension`, only an extension event may start a blob sync: the
/// certification of a blob node 1 lacks starts none, the extension of its end epoch does, and
/// node 1 then stores its slivers.
#[test]
fn blob_extension_triggers_blob_sync() {
    verify(blob_event_scenario(
        "blob_extension_triggers_blob_sync",
        ("blob_sync.skip_non_extension", "return"),
        |ctl, encoded| async move {
            let blob = encoded.blob_id;
            ctl.chain.certify_blob(blob)?;
            ctl.wait_reached(
                N1,
                "blob_sync.skip_non_extension",
                1,
                Duration::from_secs(10),
            )
            .await;
            ctl.sleep(Duration::from_secs(2)).await;
            ctl.check_eq(
                "blob syncs started by a non-extension event",
                ctl.reached(N1, "blob_sync.certified_event"),
                0,
            );
            let end = ctl.chain.extend_blob(blob, 5)?;
            ctl.note(format!("blob {blob} extended to end epoch {end}"));
            ctl.wait_reached(N1, "blob_sync.certified_event", 1, Duration::from_secs(10))
                .await;
            let shard = shardstorm_node::ShardIndex(1);
            let stored = ctl
                .wait_snapshot(
                    N1,
                    "node 1 stores both slivers of the extended blob",
                    Duration::from_secs(30),
                    |s| {
                        s.shards.get(&shard).is_some_and(|sh| {
                            sh.primary.contains_key(&blob) && sh.secondary.contains_key(&blob)
                        }) && s.blob_syncs_running.is_empty()
                    },
                )
                .await;
            if stored.is_some() {
                ctl.note("node 1 stored both slivers of the extended blob");
            }
            Ok(())
        },
    ));
}
