//! tally's collector: what turns bytes from producers into events in a [`tally_core::Engine`].
//!
//! - [`decode`]: per-payload format detection and the decoders (JSON, msgpack, StatsD, zlib).
//! - [`udp`]: the UDP listener.
//! - [`source`]: the health and counters every source reports.

pub mod decode;
pub mod source;
pub mod udp;
