//! Where hits go: EVE JSON lines ([`eve`]), repeat aggregation into
//! `alert_summary` events ([`aggregate`]), the per-unit offender table
//! ([`offenders`]) and the one sink that drives them all, the store and the
//! counters ([`sink`]), for replay and the live sensor alike.

pub mod aggregate;
pub mod eve;
pub mod offenders;
pub mod sink;
