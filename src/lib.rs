//! gatewatch: a network sensor that finds malware-infected hosts from gateway
//! traffic and attributes them to organisational units.
//!
//! Data flows one way: [`capture`] -> [`decode`] -> protocol parsers
//! ([`dns`], [`tls`], [`http`]) -> [`detect`] (match against [`intel`],
//! attribute with [`attribution`]) -> sinks ([`alert`], [`offenders`]).

pub mod aggregate;
pub mod alert;
pub mod api;
pub mod attribution;
pub mod benchmark;
pub mod capture;
pub mod cli;
pub mod cli_feeds;
pub mod cli_report;
pub mod cli_run;
pub mod config;
pub mod correlate;
pub mod decode;
pub mod detect;
pub mod dns;
pub mod export;
pub mod flow;
pub mod hostnames;
pub mod http;
pub mod intel;
pub mod metrics;
pub mod name;
pub mod netrange;
pub mod offenders;
pub mod pipeline;
pub mod quic;
pub mod replay;
pub mod report;
pub mod sensor;
pub mod stats;
pub mod store;
pub mod stream;
pub mod testkit;
pub mod tls;
