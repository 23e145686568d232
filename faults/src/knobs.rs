//! Swarm-testing knobs: which fault kinds are on, their rates, epoch length, committee churn
//! and workload rate; drawn per seed, printed one `key=value` per line and parsed back exactly.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::fault_kind::FaultKind;
use crate::shape::Shape;

/// The RNG stream of knob draws.
const KNOBS_STREAM: u64 = 0x6b6e;

/// Whether a kind is on and how often it strikes.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KindKnob {
    pub enabled: bool,
    /// Mean faults per simulated minute.
    pub rate: f64,
}

impl KindKnob {
    /// Off, at the default rate (what a run file written before this kind existed means).
    pub fn off() -> Self {
        Self {
            enabled: false,
            rate: 1.0,
        }
    }
}

/// All swarm knobs of one run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Knobs {
    pub crash: KindKnob,
    pub partition: KindKnob,
    pub loss: KindKnob,
    pub latency: KindKnob,
    pub disk_eio: KindKnob,
    pub disk_torn: KindKnob,
    pub disk_corrupt: KindKnob,
    pub status_change: KindKnob,
    pub byzantine: KindKnob,
    pub failpoint_pause: KindKnob,
    pub failpoint_error: KindKnob,
    pub failpoint_crash: KindKnob,
    pub failpoint_delay: KindKnob,
    #[serde(default = "KindKnob::off")]
    pub triggered: KindKnob,
    #[serde(default = "KindKnob::off")]
    pub chain_partition: KindKnob,
    /// Epoch length in simulated ms.
    pub epoch_ms: u64,
    /// Probability that a given epoch moves shards between nodes.
    pub churn_move: f64,
    /// Probability that a given epoch adds or removes a committee member.
    pub churn_membership: f64,
    /// Probability that a shard move sends a shard back to a node that owned it in one of the
    /// last epochs (committees that flap). Drawn from its own stream; 0 when a run file
    /// predates it.
    #[serde(default)]
    pub churn_return: f64,
    /// Workload operations per simulated second.
    pub workload_rate: f64,
}

impl Default for Knobs {
    fn default() -> Self {
        Self::quiet()
    }
}

fn quantize(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

impl Knobs {
    /// No faults, no churn, a 10 s epoch and 10 operations per second.
    pub fn quiet() -> Self {
        let off = KindKnob {
            enabled: false,
            rate: 1.0,
        };
        Self {
            crash: off,
            partition: off,
            loss: off,
            latency: off,
            disk_eio: off,
            disk_torn: off,
            disk_corrupt: off,
            status_change: off,
            byzantine: off,
            failpoint_pause: off,
            failpoint_error: off,
            failpoint_crash: off,
            failpoint_delay: off,
            triggered: off,
            chain_partition: off,
            epoch_ms: 10_000,
            churn_move: 0.0,
            churn_membership: 0.0,
            churn_return: 0.0,
            workload_rate: 10.0,
        }
    }

    /// The knob of one kind.
    pub fn kind(&self, kind: FaultKind) -> &KindKnob {
        match kind {
            FaultKind::Crash => &self.crash,
            FaultKind::Partition => &self.partition,
            FaultKind::Loss => &self.loss,
            FaultKind::Latency => &self.latency,
            FaultKind::DiskEio => &self.disk_eio,
            FaultKind::DiskTorn => &self.disk_torn,
            FaultKind::DiskCorrupt => &self.disk_corrupt,
            FaultKind::StatusChange => &self.status_change,
            FaultKind::Byzantine => &self.byzantine,
            FaultKind::FailpointPause => &self.failpoint_pause,
            FaultKind::FailpointError => &self.failpoint_error,
            FaultKind::FailpointCrash => &self.failpoint_crash,
            FaultKind::FailpointDelay => &self.failpoint_delay,
            FaultKind::Triggered => &self.triggered,
            FaultKind::ChainPartition => &self.chain_partition,
        }
    }

    /// The knob of one kind, to edit.
    pub fn kind_mut(&mut self, kind: FaultKind) -> &mut KindKnob {
        match kind {
            FaultKind::Crash => &mut self.crash,
            FaultKind::Partition => &mut self.partition,
            FaultKind::Loss => &mut self.loss,
            FaultKind::Latency => &mut self.latency,
            FaultKind::DiskEio => &mut self.disk_eio,
            FaultKind::DiskTorn => &mut self.disk_torn,
            FaultKind::DiskCorrupt => &mut self.disk_corrupt,
            FaultKind::StatusChange => &mut self.status_change,
            FaultKind::Byzantine => &mut self.byzantine,
            FaultKind::FailpointPause => &mut self.failpoint_pause,
            FaultKind::FailpointError => &mut self.failpoint_error,
            FaultKind::FailpointCrash => &mut self.failpoint_crash,
            FaultKind::FailpointDelay => &mut self.failpoint_delay,
            FaultKind::Triggered => &mut self.triggered,
            FaultKind::ChainPartition => &mut self.chain_partition,
        }
    }

    /// True if the kind is on.
    pub fn enabled(&self, kind: FaultKind) -> bool {
        self.kind(kind).enabled
    }

    /// The kinds that are on, in knob order.
    pub fn enabled_kinds(&self) -> Vec<FaultKind> {
        FaultKind::ALL
            .into_iter()
            .filter(|k| self.enabled(*k))
            .collect()
    }

    /// Swarm testing: each kind the shape supports is on with probability 1/2; rates, epoch
    /// length, churn and workload rate are drawn from fixed ranges (three decimals). Every
    /// value is drawn whatever the shape, so a shape change only switches kinds off.
    ///
    /// Epochs last 3–30 simulated seconds: long next to a shard sync, as in production, so
    /// syncs usually finish inside their epoch; the `triggered` kind's early epoch changes are
    /// what catches a node half-way. (Measured against 1–8 s epochs over 120 seeds per catalogue
    /// bug: as many or more bugs found, and quiet simulated time costs little wall time.)
    pub fn draw(seed: u64, shape: &Shape) -> Knobs {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(KNOBS_STREAM);
        let mut knobs = Knobs::quiet();
        for kind in FaultKind::ALL {
            if kind.own_knob_stream().is_some() {
                continue; // drawn from its own stream below, so older kinds keep their draws
            }
            let on = rng.random_bool(0.5);
            let (lo, hi) = kind.rate_range();
            let rate = quantize(rng.random_range(lo..hi));
            *knobs.kind_mut(kind) = KindKnob {
                enabled: on && shape.supports(kind),
                rate,
            };
        }
        knobs.epoch_ms = rng.random_range(30..=300u64) * 100;
        knobs.churn_move = quantize(rng.random_range(0.2..1.0));
        knobs.churn_membership = quantize(rng.random_range(0.1..0.9));
        knobs.workload_rate = quantize(rng.random_range(1.0..50.0));
        for kind in FaultKind::ALL {
            if let Some(stream) = kind.own_knob_stream() {
                *knobs.kind_mut(kind) = draw_own_stream(seed, shape, kind, stream);
            }
        }
        knobs.churn_return = draw_churn_return(seed);
        knobs
    }

    /// The knobs that are not fault kinds, as `(key, value)` in text order.
    pub fn scalar_lines(&self) -> [(&'static str, String); 5] {
        [
            ("epoch_ms", self.epoch_ms.to_string()),
            ("churn_move", self.churn_move.to_string()),
            ("churn_membership", self.churn_membership.to_string()),
            ("churn_return", self.churn_return.to_string()),
            ("workload_rate", self.workload_rate.to_string()),
        ]
    }
}

/// The RNG stream of `churn_return`, apart from every other knob's.
const CHURN_RETURN_STREAM: u64 = KNOBS_STREAM + 0x100;

/// `churn_return`: off for half the seeds, else up to 0.8.
fn draw_churn_return(seed: u64) -> f64 {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(CHURN_RETURN_STREAM);
    let on = rng.random_bool(0.5);
    let p = quantize(rng.random_range(0.0..0.8));
    if on {
        p
    } else {
        0.0
    }
}

/// The knob of a kind added after the first ones, from a stream of its own.
fn draw_own_stream(seed: u64, shape: &Shape, kind: FaultKind, stream: u64) -> KindKnob {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(KNOBS_STREAM + stream);
    let on = rng.random_bool(0.5);
    let (lo, hi) = kind.rate_range();
    KindKnob {
        enabled: on && shape.supports(kind),
        rate: quantize(rng.random_range(lo..hi)),
    }
}

/// Floats print in Rust's shortest round-trip form, so `FromStr` gives back identical knobs.
impl fmt::Display for Knobs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for kind in FaultKind::ALL {
            let k = self.kind(kind);
            writeln!(f, "{}.enabled={}", kind.name(), k.enabled)?;
            writeln!(f, "{}.rate={}", kind.name(), k.rate)?;
        }
        for (key, value) in self.scalar_lines() {
            writeln!(f, "{key}={value}")?;
        }
        Ok(())
    }
}

/// Knobs text that does not parse (unknown, duplicate, missing or out-of-range knob).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KnobsError(pub String);

/// `key=value` pairs with the line each came from.
struct Pairs<'a>(BTreeMap<&'a str, (usize, &'a str)>);

impl<'a> Pairs<'a> {
    fn parse(text: &'a str) -> Result<Self, KnobsError> {
        let mut map = BTreeMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(KnobsError(format!(
                    "line {}: expected key=value, found {line:?}",
                    i + 1
                )));
            };
            if map.insert(key.trim(), (i + 1, value.trim())).is_some() {
                return Err(KnobsError(format!(
                    "line {}: knob {:?} given twice",
                    i + 1,
                    key.trim()
                )));
            }
        }
        Ok(Self(map))
    }

    fn take<T: FromStr>(&mut self, key: &str, valid: impl Fn(&T) -> bool) -> Result<T, KnobsError> {
        let Some((line, value)) = self.0.remove(key) else {
            return Err(KnobsError(format!("missing knob {key:?}")));
        };
        match value.parse::<T>() {
            Ok(v) if valid(&v) => Ok(v),
            _ => Err(KnobsError(format!(
                "line {line}: bad value {value:?} for knob {key:?}"
            ))),
        }
    }

    fn finish(self) -> Result<(), KnobsError> {
        match self.0.into_iter().next() {
            None => Ok(()),
            Some((key, (line, _))) => Err(KnobsError(format!("line {line}: unknown knob {key:?}"))),
        }
    }
}

fn rate_ok(x: &f64) -> bool {
    x.is_finite() && *x >= 0.0
}

fn probability_ok(x: &f64) -> bool {
    (0.0..=1.0).contains(x)
}

impl FromStr for Knobs {
    type Err = KnobsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut pairs = Pairs::parse(s)?;
        let mut knobs = Knobs::quiet();
        for kind in FaultKind::ALL {
            let name = kind.name();
            let key = format!("{name}.enabled");
            if kind.own_knob_stream().is_some() && !pairs.0.contains_key(key.as_str()) {
                continue; // run files from before the kind existed: off
            }
            *knobs.kind_mut(kind) = KindKnob {
                enabled: pairs.take(&format!("{name}.enabled"), |_| true)?,
                rate: pairs.take(&format!("{name}.rate"), rate_ok)?,
            };
        }
        knobs.epoch_ms = pairs.take("epoch_ms", |ms: &u64| *ms > 0)?;
        knobs.churn_move = pairs.take("churn_move", probability_ok)?;
        knobs.churn_membership = pairs.take("churn_membership", probability_ok)?;
        if pairs.0.contains_key("churn_return") {
            knobs.churn_return = pairs.take("churn_return", probability_ok)?;
        }
        knobs.workload_rate = pairs.take("workload_rate", rate_ok)?;
        pairs.finish()?;
        Ok(knobs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::tests::shape;

    #[test]
    fn display_lists_every_knob_and_round_trips() {
        let knobs = Knobs::draw(3, &shape(5));
        let text = knobs.to_string();
        assert_eq!(text.lines().count(), FaultKind::ALL.len() * 2 + 5);
        assert!(text.contains("failpoint_delay.rate="), "{text}");
        assert!(text.contains("epoch_ms="), "{text}");
        let back: Knobs = text.parse().expect("display parses");
        assert_eq!(back, knobs);
        assert_eq!(back.to_string(), text);
    }

    #[test]
    fn knobs_written_before_the_later_kinds_parse_with_them_off() {
        let mut knobs = Knobs::draw(3, &shape(5));
        knobs.chain_partition.enabled = true;
        let old: String = knobs
            .to_string()
            .lines()
            .filter(|l| {
                !l.starts_with("chain_partition.")
                    && !l.starts_with("triggered.")
                    && !l.starts_with("churn_return=")
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let back: Knobs = old.parse().expect("old knobs parse");
        assert_eq!(back.chain_partition, KindKnob::off());
        assert_eq!(back.churn_return, 0.0);
        assert_eq!(back.triggered, KindKnob::off());
        assert_eq!(back.crash, knobs.crash);
        let broken = old.replace("crash.rate=", "crash.rat=");
        assert!(
            broken.parse::<Knobs>().is_err(),
            "an older kind stays required"
        );
    }

    #[test]
    fn knobs_written_before_triggered_faults_existed_still_parse() {
        let knobs = Knobs::draw(3, &shape(5));
        let old: String = knobs
            .to_string()
            .lines()
            .filter(|l| !l.starts_with("triggered."))
            .map(|l| format!("{l}\n"))
            .collect();
        let back: Knobs = old.parse().expect("old knobs parse");
        assert!(!back.triggered.enabled);
        assert_eq!(back.epoch_ms, knobs.epoch_ms);
    }

    #[test]
    fn round_trips_odd_floats() {
        let mut knobs = Knobs::quiet();
        knobs.crash.rate = 0.1 + 0.2;
        knobs.churn_move = 1.0 / 3.0;
        let back: Knobs = knobs.to_string().parse().expect("parses");
        assert_eq!(back, knobs);
    }

    #[test]
    fn draw_is_deterministic_and_varies() {
        let s = shape(5);
        for seed in 0..200 {
            assert_eq!(Knobs::draw(seed, &s), Knobs::draw(seed, &s), "seed {seed}");
        }
        let distinct: std::collections::BTreeSet<String> = (0..50)
            .map(|seed| Knobs::draw(seed, &s).to_string())
            .collect();
        assert!(distinct.len() > 45);
        let on: usize = (0..400)
            .map(|seed| Knobs::draw(seed, &s).enabled_kinds().len())
            .sum();
        let mean = on as f64 / 400.0;
        assert!(
            (5.0..8.0).contains(&mean),
            "about half of 13 kinds on: {mean}"
        );
    }

    #[test]
    fn unsupported_kinds_stay_off() {
        let mut s = shape(3); // f = 0: no node faults at all
        s.fail_points.clear();
        s.statuses.clear();
        for seed in 0..100 {
            let kinds = Knobs::draw(seed, &s).enabled_kinds();
            assert!(
                kinds
                    .iter()
                    .all(|k| matches!(k, FaultKind::Loss | FaultKind::Latency)),
                "{kinds:?}"
            );
        }
    }

    #[test]
    fn serde_round_trip() {
        let knobs = Knobs::draw(9, &shape(4));
        let json = serde_json::to_string(&knobs).expect("serializes");
        assert_eq!(serde_json::from_str::<Knobs>(&json).expect("parses"), knobs);
    }

    #[test]
    fn rejects_bad_text() {
        let good = Knobs::quiet().to_string();
        let cases = [
            (
                good.replace("crash.rate=1", "crash.rate=-1"),
                "bad value \"-1\"",
            ),
            (good.replace("churn_move=0", "churn_move=1.5"), "bad value"),
            (
                good.replace("epoch_ms=10000\n", ""),
                "missing knob \"epoch_ms\"",
            ),
            (format!("{good}frob=1\n"), "unknown knob \"frob\""),
            (format!("{good}epoch_ms=5\n"), "given twice"),
            (format!("{good}oops\n"), "expected key=value"),
            (
                good.replace("loss.enabled=false", "loss.enabled=yes"),
                "bad value",
            ),
        ];
        for (text, needle) in cases {
            let err = text.parse::<Knobs>().expect_err(needle).to_string();
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }
}
