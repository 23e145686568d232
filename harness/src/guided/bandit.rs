//! How a guided campaign shares its runs between its generators (fresh swarm seeds, mutated
//! corpus entries, forks of rare moments): in proportion to the new features each has yielded
//! per run so far, with a floor so that none starves. A campaign thus learns from its own runs
//! which generator pays on this system, instead of a fixed split. Updated in run order, so the
//! shares are as deterministic as the rest of the campaign.

use rand::Rng;

/// The generators of a guided campaign.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Generator {
    Fresh,
    Mutated,
    Forked,
}

impl Generator {
    const ALL: [Generator; 3] = [Generator::Fresh, Generator::Mutated, Generator::Forked];

    fn index(self) -> usize {
        match self {
            Generator::Fresh => 0,
            Generator::Mutated => 1,
            Generator::Forked => 2,
        }
    }
}

/// The share every available generator gets at least.
pub const MIN_SHARE: f64 = 0.1;

/// Runs and new features per generator.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Bandit {
    runs: [u64; 3],
    new_features: [u64; 3],
}

impl Bandit {
    /// Counts one finished run of `generator` that added `new` features to the campaign.
    pub fn record(&mut self, generator: Generator, new: usize) {
        let i = generator.index();
        self.runs[i] += 1;
        self.new_features[i] += new as u64;
    }

    /// New features per run (with one imagined run of one feature, so an untried generator
    /// starts optimistic).
    fn score(&self, generator: Generator) -> f64 {
        let i = generator.index();
        (self.new_features[i] + 1) as f64 / (self.runs[i] + 1) as f64
    }

    /// The share of each generator in `available` (the others get none), in `ALL` order.
    pub fn shares(&self, available: impl Fn(Generator) -> bool) -> [f64; 3] {
        let on: Vec<Generator> = Generator::ALL
            .into_iter()
            .filter(|g| available(*g))
            .collect();
        let mut shares = [0.0; 3];
        if on.is_empty() {
            return shares;
        }
        let floor = MIN_SHARE.min(1.0 / on.len() as f64);
        let total: f64 = on.iter().map(|g| self.score(*g)).sum();
        let spread = 1.0 - floor * on.len() as f64;
        for g in &on {
            shares[g.index()] = floor + spread * self.score(*g) / total;
        }
        shares
    }

    /// Draws the generator of the next run among `available` (`Fresh` when none is).
    pub fn pick(&self, rng: &mut impl Rng, available: impl Fn(Generator) -> bool) -> Generator {
        let shares = self.shares(available);
        let mut x: f64 = rng.random::<f64>() * shares.iter().sum::<f64>();
        for g in Generator::ALL {
            let share = shares[g.index()];
            if share > 0.0 && x < share {
                return g;
            }
            x -= share;
        }
        Generator::Fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn the_generator_that_finds_more_gets_more_runs_and_none_starves() {
        let mut b = Bandit::default();
        let all = |_| true;
        let even = b.shares(all);
        assert!(
            even.iter().all(|s| (s - 1.0 / 3.0).abs() < 1e-9),
            "{even:?}"
        );
        for _ in 0..100 {
            b.record(Generator::Fresh, 10);
            b.record(Generator::Mutated, 1);
            b.record(Generator::Forked, 0);
        }
        let shares = b.shares(all);
        assert!(shares[0] > 0.7, "{shares:?}");
        assert!(
            shares[1] >= MIN_SHARE && shares[2] >= MIN_SHARE,
            "{shares:?}"
        );
        assert!((shares.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let fresh = (0..1000)
            .filter(|_| b.pick(&mut rng, all) == Generator::Fresh)
            .count();
        assert!((700..900).contains(&fresh), "{fresh}");
    }

    #[test]
    fn unavailable_generators_get_no_runs() {
        let b = Bandit::default();
        let fresh_only = |g| g == Generator::Fresh;
        assert_eq!(b.shares(fresh_only), [1.0, 0.0, 0.0]);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        assert!((0..100).all(|_| b.pick(&mut rng, fresh_only) == Generator::Fresh));
        let none = |_| false;
        assert_eq!(b.pick(&mut rng, none), Generator::Fresh);
    }
}
