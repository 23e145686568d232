//! The corpus of a guided campaign: run specs (seed, knobs, schedule) that each added coverage,
//! with their features, and its directory form (`--corpus DIR`):
//!
//! ```text
//! DIR/coverage.json            {"campaigns": {"<id>": CoverageMap, ...}}
//! DIR/corpus.json              [{"file": "entries/<name>.run", "features": [...], ...}, ...]
//! DIR/entries/<name>.run       ordinary run files (replay, shrink and report take them)
//! ```
//!
//! A campaign stores its own runs' coverage under its id next to the maps it loaded, so
//! merging directories (the nightly matrix's shards) unions campaigns by id and entries by
//! name and never counts a shared base twice.

use crate::coverage::CoverageMap;
use crate::run_spec::RunSpec;
use crate::runfile::{RunFile, RunFileError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The most entries a directory keeps (the most energetic ones).
pub const MAX_SAVED: usize = 512;

/// One corpus entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// Knobs and schedule always `Some`.
    pub spec: RunSpec,
    pub features: Vec<u64>,
    /// How often it was picked as a parent.
    pub picks: u64,
    /// How it was made (`fresh`, `mutated add+move`, `fork at 12.300s`, `loaded`).
    pub origin: String,
}

impl Entry {
    /// The entry's file name: a hash of its run file text (the same run has the same name on
    /// every machine).
    pub fn name(&self) -> String {
        let text = RunFile::from_spec(&self.spec).to_string();
        let hash = blake3::hash(text.as_bytes());
        let hex: String = hash.as_bytes()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("seed-{}-{hex}.run", self.spec.seed)
    }
}

/// The corpus and the coverage maps of every campaign that fed it.
#[derive(Clone, Debug, Default)]
pub struct Corpus {
    pub entries: Vec<Entry>,
    /// Campaign id -> the coverage of that campaign's own runs.
    pub campaigns: BTreeMap<String, CoverageMap>,
}

/// A corpus directory that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(transparent)]
    RunFile(#[from] RunFileError),
}

#[derive(Serialize, Deserialize)]
struct CoverageFile {
    campaigns: BTreeMap<String, CoverageMap>,
}

#[derive(Serialize, Deserialize)]
struct IndexEntry {
    file: String,
    features: Vec<u64>,
    #[serde(default)]
    picks: u64,
    #[serde(default)]
    origin: String,
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, CorpusError> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|source| CorpusError::Json {
                path: path.to_path_buf(),
                source,
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CorpusError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn write(path: &Path, text: &str) -> Result<(), CorpusError> {
    let err = |source| CorpusError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

impl Corpus {
    /// The coverage of every campaign together.
    pub fn coverage(&self) -> CoverageMap {
        let mut map = CoverageMap::default();
        for m in self.campaigns.values() {
            map.merge(m);
        }
        map
    }

    /// Loads `dir` (an absent or empty directory is an empty corpus).
    pub fn load(dir: &Path) -> Result<Self, CorpusError> {
        let mut corpus = Corpus::default();
        if let Some(c) = read_json::<CoverageFile>(&dir.join("coverage.json"))? {
            corpus.campaigns = c.campaigns;
        }
        let index: Vec<IndexEntry> = read_json(&dir.join("corpus.json"))?.unwrap_or_default();
        for e in index {
            let file = RunFile::load(dir.join(&e.file))?;
            corpus.entries.push(Entry {
                spec: file.spec,
                features: e.features,
                picks: e.picks,
                origin: if e.origin.is_empty() {
                    "loaded".into()
                } else {
                    e.origin
                },
            });
        }
        Ok(corpus)
    }

    /// Adds `other`'s campaigns (by id) and entries (by name) that this corpus lacks.
    pub fn absorb(&mut self, other: Corpus) {
        for (id, map) in other.campaigns {
            self.campaigns.entry(id).or_insert(map);
        }
        let names: std::collections::BTreeSet<String> =
            self.entries.iter().map(Entry::name).collect();
        for e in other.entries {
            if !names.contains(&e.name()) {
                self.entries.push(e);
            }
        }
    }

    /// Writes the corpus to `dir`: at most [`MAX_SAVED`] entries, the rarest first.
    pub fn save(&self, dir: &Path) -> Result<(), CorpusError> {
        let map = self.coverage();
        let mut order: Vec<(usize, f64)> = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (i, map.rarity(&e.features)))
            .collect();
        order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        order.truncate(MAX_SAVED);
        order.sort_by_key(|(i, _)| *i);
        let entries = dir.join("entries");
        std::fs::create_dir_all(&entries).map_err(|source| CorpusError::Write {
            path: entries.clone(),
            source,
        })?;
        let mut index = Vec::new();
        for (i, _) in order {
            let e = &self.entries[i];
            let file = format!("entries/{}", e.name());
            RunFile::from_spec(&e.spec).save(dir.join(&file))?;
            index.push(IndexEntry {
                file,
                features: e.features.clone(),
                picks: e.picks,
                origin: e.origin.clone(),
            });
        }
        write(&dir.join("corpus.json"), &to_json(&index))?;
        let coverage = CoverageFile {
            campaigns: self.campaigns.clone(),
        };
        write(&dir.join("coverage.json"), &to_json(&coverage))
    }
}

/// JSON text (the index types hold only strings, numbers and maps: this cannot fail).
fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coverage::RunCoverage;
    use shardstorm_faults::{Knobs, Schedule};

    fn entry(seed: u64) -> Entry {
        let mut spec = RunSpec::standard(seed);
        spec.knobs = Some(Knobs::quiet());
        spec.schedule = Some(
            "1.000s crash n1\n2.000s restart n1\n"
                .parse::<Schedule>()
                .expect("parses"),
        );
        Entry {
            spec,
            features: vec![seed, 100],
            picks: 1,
            origin: "fresh".into(),
        }
    }

    #[test]
    fn a_corpus_round_trips_and_merges_without_double_counting() {
        let dir = std::env::temp_dir().join(format!("shardstorm-corpus-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut a = Corpus::default();
        a.entries.push(entry(1));
        let mut map = CoverageMap::default();
        map.add(&RunCoverage {
            features: vec![1, 100],
            ..RunCoverage::default()
        });
        a.campaigns.insert("base".into(), map.clone());
        a.save(&dir).expect("saves");
        let loaded = Corpus::load(&dir).expect("loads");
        assert_eq!(loaded.entries[0].spec, a.entries[0].spec);
        assert_eq!(loaded.entries[0].features, vec![1, 100]);
        assert_eq!(loaded.coverage(), map);
        // Two shards that both loaded `base` and each ran a campaign of their own.
        let (mut x, mut y) = (loaded.clone(), loaded);
        x.entries.push(entry(2));
        x.campaigns.insert("x".into(), map.clone());
        y.entries.push(entry(3));
        y.campaigns.insert("y".into(), map.clone());
        x.absorb(y);
        assert_eq!(x.entries.len(), 3);
        assert_eq!(x.coverage().runs, 3);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
