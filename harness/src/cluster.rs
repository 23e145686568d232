//! The simulated cluster: a turmoil `Sim` (seed and epoch always set) with one host per storage
//! node and the chain host (whose state the harness also reads directly), each node's simulated disk and switches (held outside the host so
//! they survive crashes), the fail-point registry, and the trace recorder.

use crate::trace::{HarnessEvent, Recorder, TraceKind};
use shardstorm_faults::{LockExt, Registry};
use shardstorm_node::blob::EncodingConfig;
use shardstorm_node::ctx::Switches;
use shardstorm_node::storage::{Disk, SimDisk};
use shardstorm_node::wire::{node_keypair, CHAIN_HOST};
use shardstorm_node::{Chain, NodeConfig, NodeCtx, NodeHandle, NodeId, NodeSetup, ShardIndex};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

/// Simulated time after which turmoil ends a run as unfinished ([`ClusterBuilder::sim_duration`]
/// by default); [`crate::RunSpec::validate`] keeps runs well inside it.
pub const SIMULATION_LIMIT: Duration = Duration::from_secs(3600);

/// Maximum message latency outside latency spikes ([`ClusterBuilder::max_latency`] by
/// default; the driver restores it when a spike heals).
pub const MAX_LATENCY: Duration = Duration::from_millis(20);

/// How to build a cluster.
#[derive(Clone)]
pub struct ClusterBuilder {
    pub seed: u64,
    pub nodes: u16,
    pub shards: u16,
    /// Shard → node of the genesis committee; default: round-robin over all but the last node
    /// (which starts as a `Standby` candidate for joining) when there are at least 4 nodes.
    pub genesis: Option<BTreeMap<ShardIndex, NodeId>>,
    pub config: NodeConfig,
    /// Per-node overrides of the configuration.
    pub node_configs: BTreeMap<NodeId, NodeConfig>,
    pub process_events: bool,
    pub tick: Duration,
    pub min_latency: Duration,
    pub max_latency: Duration,
    pub sim_duration: Duration,
}

impl ClusterBuilder {
    pub fn new(seed: u64, nodes: u16, shards: u16) -> Self {
        Self {
            seed,
            nodes,
            shards,
            genesis: None,
            config: NodeConfig::simulation(),
            node_configs: BTreeMap::new(),
            process_events: true,
            tick: Duration::from_millis(10),
            min_latency: Duration::from_millis(1),
            max_latency: MAX_LATENCY,
            sim_duration: SIMULATION_LIMIT,
        }
    }

    fn genesis(&self) -> BTreeMap<ShardIndex, NodeId> {
        self.genesis.clone().unwrap_or_else(|| {
            let members = if self.nodes >= 4 {
                self.nodes - 1
            } else {
                self.nodes
            };
            (0..self.shards)
                .map(|i| (ShardIndex(i), NodeId(i % members)))
                .collect()
        })
    }

    /// Builds the simulation and registers every node host.
    pub fn build(&self) -> Cluster {
        let mut sim = turmoil::Builder::new()
            .rng_seed(self.seed)
            .epoch(UNIX_EPOCH)
            .tick_duration(self.tick)
            .min_message_latency(self.min_latency)
            .max_message_latency(self.max_latency)
            .simulation_duration(self.sim_duration)
            .tcp_capacity(1024)
            // Every port above the node port: turmoil leaks the port of an abandoned connect.
            .ephemeral_ports(10_000..=65_535)
            .build();
        let chain = Chain::new(self.genesis());
        let (served, limit) = (chain.clone(), self.config.max_frame_bytes);
        sim.host(CHAIN_HOST, move || {
            shardstorm_node::chain_host::serve(served.clone(), limit)
        });
        let registry = Registry::new(self.seed ^ 0x6661_756c_7473);
        let recorder = Recorder::default();
        install_hit_observer(&registry, &recorder);
        let encoding =
            EncodingConfig::new(self.shards).expect("shard count accepted by the builder");
        let mut nodes = BTreeMap::new();
        for i in 0..self.nodes {
            let id = NodeId(i);
            let host = NodeHost {
                disk: SimDisk::new(
                    self.seed
                        .wrapping_add(u64::from(i))
                        .wrapping_mul(0x9e37_79b9),
                ),
                switches: Arc::default(),
                slot: Arc::default(),
                up: true,
            };
            let key = node_keypair(self.seed, id);
            chain.register_node(id, key.public());
            let setup = NodeSetup {
                ctx: NodeCtx {
                    id,
                    fail: registry.handle(&id.host()),
                    probe: Arc::new(recorder.clone()),
                    switches: host.switches.clone(),
                    seed: self.seed ^ u64::from(i),
                },
                config: self
                    .node_configs
                    .get(&id)
                    .cloned()
                    .unwrap_or_else(|| self.config.clone()),
                disk: Disk::Sim(host.disk.clone()),
                encoding: encoding.clone(),
                key,
                handle_slot: host.slot.clone(),
                process_events: self.process_events,
            };
            sim.host(id.host(), move || shardstorm_node::run(setup.clone()));
            nodes.insert(id, host);
        }
        Cluster {
            sim,
            chain,
            registry,
            recorder,
            nodes,
            encoding,
        }
    }
}

/// Puts every fired fail point into the trace.
fn install_hit_observer(registry: &Registry, recorder: &Recorder) {
    let recorder = recorder.clone();
    registry.set_hit_observer(Box::new(move |node, point, action| {
        let node = NodeId::from_host(node);
        recorder.record(
            node,
            TraceKind::FailPoint {
                point: point.to_string(),
                action: action.to_string(),
            },
        );
    }));
}

/// What the harness keeps of one node outside its host.
pub struct NodeHost {
    pub disk: SimDisk,
    pub switches: Arc<Switches>,
    pub slot: Arc<Mutex<Option<NodeHandle>>>,
    pub up: bool,
}

/// A built cluster.
pub struct Cluster {
    pub sim: turmoil::Sim<'static>,
    pub chain: Chain,
    pub registry: Registry,
    pub recorder: Recorder,
    pub nodes: BTreeMap<NodeId, NodeHost>,
    pub encoding: EncodingConfig,
}

impl Cluster {
    /// The admin handle of a running node (None while it is down or starting).
    pub fn handle(&self, node: NodeId) -> Option<NodeHandle> {
        self.nodes.get(&node).and_then(|h| h.slot.lock_ok().clone())
    }

    /// Shared handle slots, for test clients that outlive restarts.
    pub fn slots(&self) -> BTreeMap<NodeId, Arc<Mutex<Option<NodeHandle>>>> {
        self.nodes
            .iter()
            .map(|(id, h)| (*id, h.slot.clone()))
            .collect()
    }

    /// Crashes a node: its runtime is dropped and its disk loses unsynced writes.
    pub fn crash(&mut self, node: NodeId) {
        let Some(host) = self.nodes.get_mut(&node) else {
            return;
        };
        if !host.up {
            return;
        }
        // The disk first: the dying process's storage is fenced off, so it cannot flush a clean
        // shutdown, and the next open runs redb's crash recovery.
        host.disk.crash();
        // Halted, the first task the runtime drops reaps the others in spawn order, so the
        // sockets close (and draw from the world RNG) in an order that is the same in every
        // process (see `shardstorm_faults::ProcessLife`).
        let name = node.host();
        self.registry.set_halted(&name, true);
        self.sim.crash(node.host());
        self.registry.set_halted(&name, false);
        host.up = false;
        *host.slot.lock_ok() = None;
        self.recorder.record_at(
            self.now_ms(),
            Some(node),
            TraceKind::Harness(HarnessEvent::Crashed),
        );
    }

    /// Restarts a node (from its host factory); a running node is crashed first.
    pub fn restart(&mut self, node: NodeId) {
        if self.nodes.get(&node).is_some_and(|h| h.up) {
            self.crash(node);
        }
        let Some(host) = self.nodes.get_mut(&node) else {
            return;
        };
        self.sim.bounce(node.host());
        host.up = true;
        self.recorder.record_at(
            self.now_ms(),
            Some(node),
            TraceKind::Harness(HarnessEvent::Restarted),
        );
    }

    /// Simulated time in milliseconds.
    pub fn now_ms(&self) -> u64 {
        self.sim.elapsed().as_millis() as u64
    }
}
