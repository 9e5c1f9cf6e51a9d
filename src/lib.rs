//! gatewatch: a network sensor that finds malware-infected hosts from gateway
//! traffic and attributes them to organisational units.
//!
//! The modules are layers, declared here in data-flow order; each imports
//! only from the layers declared before it (`docs/ARCHITECTURE.md` gives the
//! order and what each owns; `tests/architecture.rs` checks both).

// The types every stage shares: a captured frame, its flow, why input failed.
pub mod packet;

// Frames from capture files and live interfaces.
pub mod capture;

// Link, IP and transport headers.
pub mod decode;

// DNS, TLS, QUIC, HTTP and host-name announcements, over borrowed bytes.
pub mod protocols;

// TCP flow table and stream ordering, per worker.
pub mod tcp;

// Feeds, indicators and the immutable lookup snapshot.
pub mod intel;

// The per-packet engine: match, correlate, attribute; what it produces.
pub mod detect;

// The offender store (SQLite) and its read-only API.
pub mod store;

// The one sink: EVE alerts, aggregation, offender table, store, counts.
pub mod output;

// Prometheus metrics and the HTTP listener.
pub mod metrics;

// Config, pipeline, replay, live sensor, benchmark.
pub mod run;

// Per-unit exports and the campaign report.
pub mod reports;

// The web console: accounts' pages over the store and the reports.
pub mod console;

// Command-line commands.
pub mod cli;

// The fixture kit of tests, benchmarks and fuzz targets; compiled for
// `cargo test` and with the `testkit` feature only.
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
