//! tally's collector: what turns bytes from producers into events in a [`tally_core::Engine`].
//!
//! - [`decode`]: per-payload format detection and the decoders (JSON, msgpack, StatsD, zlib).
//! - [`udp`]: the UDP listener; [`stream`]: TCP and Unix listeners; [`demo`]: demo traffic.
//! - [`collector`]: an engine and its sources, started from [`config::Settings`].
//! - [`source`]: the health and counters every source reports.
//! - [`stat`] and [`send`]: the headless commands, as library functions.

pub mod collector;
pub mod config;
pub mod decode;
pub mod demo;
pub mod hub;
pub mod logging;
pub mod send;
pub mod source;
pub mod stat;
pub mod stream;
pub mod udp;
