//! tally's collector: what turns bytes from producers into events in a [`tally_core::Engine`].
//!
//! - [`decode`]: per-payload format detection and the decoders (JSON, msgpack, StatsD, zlib).

pub mod decode;
