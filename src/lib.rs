//! gatewatch: a network sensor that finds malware-infected hosts from gateway
//! traffic and attributes them to organisational units.
//!
//! The modules are layers, listed here in data-flow order. Each imports only
//! from the layers above it in this list (`tests/architecture.rs` checks it;
//! `docs/ARCHITECTURE.md` explains each):
//!
//! [`packet`] (shared types) -> [`capture`] -> [`decode`] -> [`protocols`] ->
//! [`tcp`] -> [`intel`] -> [`detect`] -> [`store`] -> [`output`] ->
//! [`metrics`] -> [`run`] -> [`reports`] -> [`cli`].

pub mod packet;

pub mod capture;

pub mod decode;

pub mod protocols;

pub mod tcp;

pub mod intel;

pub mod detect;

pub mod store;

pub mod output;

pub mod metrics;

pub mod run;

pub mod reports;

pub mod cli;

/// Builders, capture writers and harnesses for tests, benchmarks and fuzz
/// targets; compiled for `cargo test` and with the `testkit` feature only.
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
