//! Detection: from a decoded packet to hits attributed to internal hosts.
//!
//! One [`Engine`] per worker thread, made by a [`Recipe`]. It owns its
//! counters, scratch buffers and TCP flow table (the router sends both
//! directions of a flow to one worker), reads the intel snapshot through
//! arc-swap (no lock), and hands every hit and every finished flow that hit
//! to a [`Sink`]. A hit is the only thing that allocates on the in-order
//! path: matching borrows packet bytes and fixed buffers; TCP bytes are
//! copied only to wait for the rest of a message (see [`crate::tcp::stream`]).
//!
//! - `engine.rs`: the per-packet path (decode, track, dispatch);
//! - `dns.rs`, `tcp.rs`, `udp.rs`: each payload kind;
//! - `emit.rs`: matching and turning a match into a [`Hit`];
//! - [`heuristics`]: behaviour no list names (scans, DGA, tunnels, beacons);
//!   `behave.rs` feeds them packets and turns their findings into hits;
//! - [`correlate`]: addresses learned from DNS answers, shared by engines;
//! - [`attribution`]: units and internal networks, address -> unit;
//! - [`history`]: what each host resolved, named and contacted per day,
//!   for the retro-hunt;
//! - [`hygiene`]: signs of cracked software per host (estimates, not hits);
//! - `recipe.rs`: the one way engines are made; `stats.rs`: their counters.

pub mod attribution;
mod behave;
mod contain;
pub mod correlate;
mod dns;
mod emit;
mod engine;
pub mod heuristics;
pub mod history;
mod hit;
pub mod hygiene;
mod recipe;
mod stats;
mod tcp;
mod udp;

pub use engine::Engine;
pub use heuristics::{Behaviour, Heuristic};
pub use hit::{Context, Event, FlowAlert, FlowRecord, Hit, Observation, Sink};
pub use recipe::{EngineOptions, Recipe};
pub use stats::{HitSource, Stats};
pub use udp::MAX_NAMES_PER_DATAGRAM;
