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
