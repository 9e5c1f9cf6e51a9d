//! TCP state per worker: the flow table ([`flow`]: one entry per connection,
//! timeouts, bounded eviction) and the ordering of each direction's payload
//! ([`stream`]) so parsers read whole messages. Nothing here knows what a
//! hit is: the engine attaches its own mark to a flow.

pub mod flow;
pub mod stream;
