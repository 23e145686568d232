//! Scenario presets: named cluster sizes (nodes, shards, epochs, blobs) that a run starts
//! from; `standard` is the scenario of the performance goals, `walrus` a Walrus-scale one.

use crate::RunSpec;

/// A named scenario size.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Preset {
    /// 5 nodes, 20 shards, 6 epochs, 100 blobs ([`RunSpec::standard`]).
    Standard,
    /// Walrus scale: 25 nodes, 1,000 shards, 4 epochs, 1,000 blobs.
    Walrus,
}

/// A preset name that is not one of [`Preset::ALL`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown preset {0:?} (expected one of: standard, walrus)")]
pub struct UnknownPreset(pub String);

impl Preset {
    pub const ALL: [Preset; 2] = [Preset::Standard, Preset::Walrus];

    pub fn name(self) -> &'static str {
        match self {
            Preset::Standard => "standard",
            Preset::Walrus => "walrus",
        }
    }

    /// One line for `--help`: the sizes.
    pub fn describe(self) -> String {
        let s = self.spec(0);
        format!(
            "{} nodes, {} shards, {} epochs, {} blobs",
            s.nodes, s.shards, s.epochs, s.blobs
        )
    }

    /// The preset's run for `seed`: the standard scenario with the preset's sizes.
    pub fn spec(self, seed: u64) -> RunSpec {
        let standard = RunSpec::standard(seed);
        match self {
            Preset::Standard => standard,
            Preset::Walrus => RunSpec {
                nodes: 25,
                shards: 1_000,
                epochs: 4,
                blobs: 1_000,
                ..standard
            },
        }
    }

    /// The preset whose sizes `spec` has, if any.
    pub fn of(spec: &RunSpec) -> Option<Preset> {
        let sizes = |s: &RunSpec| (s.nodes, s.shards, s.epochs, s.blobs);
        Preset::ALL
            .into_iter()
            .find(|p| sizes(&p.spec(spec.seed)) == sizes(spec))
    }
}

impl std::fmt::Display for Preset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Preset {
    type Err = UnknownPreset;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Preset::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| UnknownPreset(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid_and_named() {
        assert_eq!(Preset::Standard.spec(3), RunSpec::standard(3));
        for p in Preset::ALL {
            assert_eq!(p.spec(1).validate(), Ok(()), "{p}");
            assert_eq!(p.name().parse::<Preset>(), Ok(p));
            assert_eq!(Preset::of(&p.spec(9)), Some(p));
        }
        let walrus = Preset::Walrus.spec(0);
        assert_eq!(
            (walrus.nodes, walrus.shards, walrus.epochs, walrus.blobs),
            (25, 1000, 4, 1000)
        );
        assert_eq!(
            Preset::Walrus.describe(),
            "25 nodes, 1000 shards, 4 epochs, 1000 blobs"
        );
        let other = RunSpec {
            shards: 21,
            ..RunSpec::standard(0)
        };
        assert_eq!(Preset::of(&other), None);
        assert_eq!(
            "Walrus".parse::<Preset>().unwrap_err().to_string(),
            "unknown preset \"Walrus\" (expected one of: standard, walrus)"
        );
    }
}
