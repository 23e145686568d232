//! Configuration swarm ("buggify", after FoundationDB): every run draws the nodes' tuning knobs
//! from its seed, so that some runs recover metadata one blob at a time, sync one sliver per
//! request, retry fast or slow, or switch to recovery early. Extreme settings stretch the
//! windows where concurrent work interleaves; the spec's behaviour must hold under all of them.

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shardstorm_node::NodeConfig;
use std::time::Duration;

/// RNG stream of the configuration draw (independent of the nemesis and the workload).
const STREAM: u64 = 0x6275_6767;

fn pick<T: Copy>(rng: &mut ChaCha8Rng, default: T, choices: &[T]) -> T {
    if rng.random_bool(0.5) {
        *choices.choose(rng).unwrap_or(&default)
    } else {
        default
    }
}

/// The simulation defaults with about half the knobs drawn away from them.
pub fn node_config(seed: u64) -> NodeConfig {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(STREAM);
    let mut c = NodeConfig::simulation();
    let ms = Duration::from_millis;
    c.max_concurrent_metadata_fetch =
        pick(&mut rng, c.max_concurrent_metadata_fetch, &[1, 2, 4, 100]);
    c.sliver_count_per_sync_request =
        pick(&mut rng, c.sliver_count_per_sync_request, &[1, 3, 10, 1000]);
    c.shard_sync_concurrency = pick(&mut rng, c.shard_sync_concurrency, &[1, 2]);
    c.max_concurrent_blob_recovery = pick(&mut rng, c.max_concurrent_blob_recovery, &[1, 5]);
    c.switch_to_recovery_interval = pick(
        &mut rng,
        c.switch_to_recovery_interval,
        &[ms(3000), ms(30_000)],
    );
    let (min, max) = pick(
        &mut rng,
        (c.backoff_min, c.backoff_max),
        &[(ms(200), ms(2000)), (ms(1000), ms(10_000))],
    );
    (c.backoff_min, c.backoff_max) = (min, max);
    c.recovery_round_interval = pick(&mut rng, c.recovery_round_interval, &[ms(200), ms(3000)]);
    c.event_poll_interval = pick(&mut rng, c.event_poll_interval, &[ms(20), ms(200)]);
    c
}

/// A named knob and how to read it from a configuration.
type Knob = (&'static str, fn(&NodeConfig) -> String);

/// The knobs that differ from the simulation defaults, for the trace.
pub fn describe(c: &NodeConfig) -> String {
    let knobs: [Knob; 8] = [
        ("metadata_fetch", |c| {
            c.max_concurrent_metadata_fetch.to_string()
        }),
        ("slivers_per_request", |c| {
            c.sliver_count_per_sync_request.to_string()
        }),
        ("sync_concurrency", |c| c.shard_sync_concurrency.to_string()),
        ("blob_recovery", |c| {
            c.max_concurrent_blob_recovery.to_string()
        }),
        ("switch_ms", |c| {
            c.switch_to_recovery_interval.as_millis().to_string()
        }),
        ("backoff_min_ms", |c| c.backoff_min.as_millis().to_string()),
        ("recovery_round_ms", |c| {
            c.recovery_round_interval.as_millis().to_string()
        }),
        ("event_poll_ms", |c| {
            c.event_poll_interval.as_millis().to_string()
        }),
    ];
    let defaults = NodeConfig::simulation();
    let changed: Vec<String> = knobs
        .iter()
        .filter(|(_, value)| value(c) != value(&defaults))
        .map(|(name, value)| format!("{name}={}", value(c)))
        .collect();
    if changed.is_empty() {
        "defaults".into()
    } else {
        changed.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_deterministic_and_vary() {
        assert_eq!(node_config(7), node_config(7));
        let distinct: std::collections::BTreeSet<String> =
            (0..40).map(|s| describe(&node_config(s))).collect();
        assert!(distinct.len() > 20, "{distinct:?}");
        assert!(distinct.contains("defaults") || distinct.len() == 40);
    }
}
