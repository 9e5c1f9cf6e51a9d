//! The one way engines are made: what every engine of a run shares (the
//! snapshot, the units, the host names learned by any worker)
//! and the options each is set up with. Replay, the pipeline's workers, the
//! live sensor, `gatewatch bench` and the test kit all go through [`Recipe`],
//! so a switch honoured by one is honoured by all.

use super::Engine;
use super::attribution::Units;
use super::heuristics::{Rules, Settings};
use super::hygiene::HygieneSettings;
use crate::intel::Intel;
use crate::protocols::hostnames::known::KnownNames;
use crate::tcp::flow::FlowConfig;
use std::net::IpAddr;
use std::sync::Arc;

/// How engines are set up (`gatewatch.toml`, or the flags of `replay` and
/// `bench`).
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// DNS-to-connection correlation: a flow to an address a host got in an
    /// answer for a listed domain is a hit on that domain.
    pub correlate: bool,
    /// TCP flow table and stream reassembly; off, each segment is read
    /// alone and no `flow` events are written.
    pub reassemble: bool,
    /// Internal DNS resolvers: their DNS hits are marked `via_resolver`, and
    /// the addresses they look up for listed names match any internal host.
    pub resolvers: Vec<IpAddr>,
    /// The flow table of all engines together: `max_flows` is split evenly.
    pub flows: FlowConfig,
    /// `[heuristics]`: what each finds, at which thresholds.
    pub heuristics: Settings,
    /// `[hygiene]`: which signs of cracked software are reported.
    pub hygiene: HygieneSettings,
    /// Pass what hosts do to the sink for the retro-hunt's history (on when
    /// there is a store to keep it).
    pub history: bool,
    /// (host, day, item) entries each engine remembers for it.
    pub history_entries: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            correlate: true,
            reassemble: true,
            resolvers: Vec::new(),
            flows: FlowConfig::default(),
            heuristics: Settings::default(),
            hygiene: HygieneSettings::default(),
            history: false,
            history_entries: super::history::ENTRIES,
        }
    }
}

/// What the engines of one run share, and how each is made.
pub struct Recipe {
    intel: Arc<Intel>,
    units: Arc<Units>,
    /// Host names, likewise: a DHCP exchange and the host's hits are
    /// different flows.
    known: Arc<KnownNames>,
    options: EngineOptions,
    workers: usize,
    /// The heuristics' settings compiled, for this many workers.
    rules: Arc<Rules>,
}

impl Recipe {
    /// A recipe for one engine; see [`Recipe::workers`] for more.
    pub fn new(intel: Arc<Intel>, units: Arc<Units>, options: EngineOptions) -> Recipe {
        let rules = Arc::new(Rules::new(options.heuristics.clone(), 1));
        Recipe {
            intel,
            units,
            known: Arc::new(KnownNames::default()),
            options,
            workers: 1,
            rules,
        }
    }

    /// `n` engines will run at once: each gets an `n`th of the flow table.
    pub fn workers(mut self, n: usize) -> Recipe {
        self.workers = n.max(1);
        self.rules = Arc::new(Rules::new(self.options.heuristics.clone(), self.workers));
        self
    }

    /// Engine number `worker` (0-based; it keeps flow ids apart).
    pub fn engine(&self, worker: usize) -> Engine {
        Engine::from_recipe(self, worker)
    }

    /// One engine's share of the flow table and the reassembly budget.
    pub fn flow_share(&self) -> FlowConfig {
        let f = self.options.flows;
        FlowConfig {
            max_flows: (f.max_flows / self.workers).max(1),
            reassembly_bytes: f.reassembly_bytes / self.workers,
            ..f
        }
    }

    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    pub fn intel(&self) -> &Arc<Intel> {
        &self.intel
    }

    pub fn units(&self) -> &Arc<Units> {
        &self.units
    }

    pub fn known_names(&self) -> &Arc<KnownNames> {
        &self.known
    }

    pub fn rules(&self) -> &Arc<Rules> {
        &self.rules
    }
}
