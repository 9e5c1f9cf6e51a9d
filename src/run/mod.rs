//! Running the pipeline: sources -> workers -> the sink.
//!
//! - [`config`]: `gatewatch.toml`, command-line overrides applied in one
//!   place; [`inputs`]: loading the feeds (or a snapshot file) and units
//!   it names;
//! - [`pipeline`]: the router and the worker threads; [`batch`]: how packets
//!   cross to a worker; [`route`]: which worker (the internal host's);
//! - [`replay`]: capture files, inline on one thread or through the pipeline;
//! - [`sensor`]: `gatewatch run` on live interfaces, until a signal;
//!   [`ship`] and [`fetch`]: its threads to and from the central;
//! - [`bench`](mod@bench): the floor-versus-pipeline table of `gatewatch bench`.

pub mod batch;
pub mod bench;
pub mod central;
pub mod config;
pub mod console;
pub mod contain;
pub mod fetch;
pub mod inputs;
pub mod overrides;
pub mod pipeline;
pub mod replay;
pub mod retro;
pub mod route;
pub mod sensor;
pub mod ship;
pub mod status;
