//! Guided campaigns on a small scenario: deterministic per campaign seed whatever the job
//! count, and they mutate and fork once they have a corpus.

use super::*;
use crate::explore::SeedSource;

fn config(jobs: usize, n: u64, mode: Mode, campaign_seed: u64) -> ExploreConfig {
    let mut template = RunSpec::standard(0);
    template.blobs = 6;
    template.epochs = 2;
    ExploreConfig {
        seeds: SeedSource::Count { start: 0, n },
        jobs,
        shard: None,
        template,
        stop_after_first: false,
        out: None,
        guidance: Some(Guidance {
            mode,
            campaign_seed,
            corpus: None,
        }),
    }
}

fn campaign(jobs: usize, n: u64, mode: Mode, seed: u64) -> Outcome {
    let c = config(jobs, n, mode, seed);
    explore_guided(&c, c.guidance.as_ref().expect("guided"), &|_| {})
}

#[test]
fn a_guided_campaign_is_deterministic_per_campaign_seed_and_job_count() {
    let a = campaign(2, 28, Mode::Guided, 7);
    let b = campaign(2, 28, Mode::Guided, 7);
    let one_job = campaign(1, 28, Mode::Guided, 7);
    assert_eq!(a.runs, 28);
    assert_eq!(a.explored, b.explored);
    assert_eq!(a.coverage, b.coverage);
    assert_eq!(
        a.explored, one_job.explored,
        "the job count changes nothing"
    );
    let text = a.explored.join("\n");
    assert!(text.contains("mutated"), "{text}");
    assert!(a.corpus_entries > 0 && a.coverage.feature_count() > 0);
    // Fresh seeds come from the seed range, in order.
    let fresh: Vec<&String> = a.explored.iter().filter(|l| l.contains("fresh")).collect();
    assert!(
        fresh[0].contains("seed=0 ") && fresh[1].contains("seed=1 "),
        "{text}"
    );
    let other = campaign(2, 28, Mode::Guided, 8);
    assert_ne!(
        a.explored, other.explored,
        "another campaign seed explores otherwise"
    );
}

#[test]
fn rare_points_mode_runs_fresh_seeds_with_steered_schedules() {
    let a = campaign(2, 20, Mode::RarePoints, 1);
    assert_eq!(a.runs, 20);
    assert!(a.explored.iter().all(|l| l.contains("fresh")));
    let seeds: Vec<String> = (0..20).map(|s| format!(" seed={s} ")).collect();
    for (line, seed) in a.explored.iter().zip(&seeds) {
        assert!(line.contains(seed.as_str()), "{line}");
    }
    assert_eq!(a.corpus_entries, 0);
}

#[test]
fn pick_weighted_prefers_energy_and_spreads_over_picks() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let energy = [1.0, 9.0];
    let heavy = (0..1000)
        .filter(|_| pick_weighted(&mut rng, &energy, |_| 0) == Some(1))
        .count();
    assert!(heavy > 850, "{heavy}");
    assert_eq!(pick_weighted(&mut rng, &[], |_| 0), None);
}

/// The committees a run's epoch changes installed, with their start times (ms).
fn committees(spec: &RunSpec) -> Vec<(u64, String)> {
    let result = crate::run::run(spec);
    result
        .trace
        .events()
        .iter()
        .filter_map(|e| match &e.kind {
            crate::trace::TraceKind::Chain(crate::trace::ChainNote::EpochChange {
                summary,
                ..
            }) => Some((e.t_ms, summary.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_reshuffle_keeps_the_committees_before_it_and_redraws_the_later_ones() {
    let mut spec = RunSpec::standard(5);
    spec.blobs = 4;
    spec.epochs = 4;
    let mut knobs = Knobs::quiet();
    knobs.churn_move = 1.0;
    knobs.churn_membership = 0.5;
    knobs.epoch_ms = 5_000;
    spec.knobs = Some(knobs);
    spec.schedule = Some(shardstorm_faults::Schedule::default());
    let plain = committees(&spec);
    assert!(plain.len() >= 4, "{plain:?}");
    // A reshuffle between the second and the third epoch change.
    let at = (plain[1].0 + plain[2].0) / 2;
    let mut schedule = shardstorm_faults::Schedule::default();
    schedule.at(
        Duration::from_millis(at),
        shardstorm_faults::Fault::Reshuffle { seed: 99 },
    );
    spec.schedule = Some(schedule);
    let reshuffled = committees(&spec);
    assert_eq!(reshuffled[..2], plain[..2], "the prefix replays exactly");
    assert_ne!(reshuffled[2..], plain[2..], "later committees are redrawn");
}
